//! The client's side of the opening handshake (RFC 6455 §4.1, §3).

use std::fmt;

use bytes::Bytes;
use rand::TryRng;
use rand::rngs::SysRng;

use super::header::{self, Extension};
use super::{HandshakeError, HandshakeLimits, HeadScanner, Headers, Status};
use crate::ConfigError;

/// The most body bytes kept from a non-101 response.
const MAX_REJECT_BODY: usize = 16 * 1024;

/// Headers the handshake writes itself; an extra header may not repeat them.
const MANAGED: [&str; 7] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// What a client asks for: the URI, subprotocols, extension offers and extra headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    secure: bool,
    host: String,
    port: u16,
    target: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
    limits: HandshakeLimits,
}

impl ClientRequest {
    /// A request for a `ws://` or `wss://` URI (§3): default ports 80 and
    /// 443, `/` for an empty path, the query kept, IPv6 literals in brackets.
    ///
    /// ```
    /// use rfc6455::handshake::ClientRequest;
    /// let r = ClientRequest::new("wss://[::1]:8443/feed?x=1")?;
    /// assert_eq!((r.host(), r.port(), r.target(), r.is_secure()), ("::1", 8443, "/feed?x=1", true));
    /// assert_eq!(r.host_header(), "[::1]:8443");
    /// # Ok::<(), rfc6455::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUri`] for another scheme, a missing host, a bad
    /// port, user info, a fragment (§3 forbids them), or characters that
    /// must be percent-encoded.
    pub fn new(uri: &str) -> Result<Self, ConfigError> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or(ConfigError::InvalidUri("no scheme"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(ConfigError::InvalidUri("scheme is not ws or wss")),
        };
        if rest.contains('#') {
            return Err(ConfigError::InvalidUri(
                "fragment identifiers are not allowed",
            ));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(ConfigError::InvalidUri("user info is not allowed"));
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(ConfigError::InvalidUri("invalid port"))?,
            None if secure => 443,
            None => 80,
        };
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidUri(
                "path or query needs percent-encoding",
            ));
        }
        let target = if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/{target}")
        };
        Ok(Self {
            secure,
            host: host.to_ascii_lowercase(),
            port,
            target,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            limits: HandshakeLimits::default(),
        })
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference.
    #[must_use = "requests are built by value"]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Offers an extension (`Sec-WebSocket-Extensions`), e.g.
    /// `permessage-deflate; client_max_window_bits`.
    #[must_use = "requests are built by value"]
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        self.extensions.push(offer.into());
        self
    }

    /// Adds a header, e.g. `Authorization`, `Origin` or `Cookie`.
    #[must_use = "requests are built by value"]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the limits on the response.
    #[must_use = "requests are built by value"]
    pub fn with_limits(mut self, limits: HandshakeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits on the response (set with [`with_limits`](Self::with_limits)).
    #[must_use]
    pub fn limits(&self) -> HandshakeLimits {
        self.limits
    }

    /// Whether an extension called `name` is offered.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn offers(&self, name: &str) -> bool {
        self.extensions
            .iter()
            .filter_map(|e| header::parse_extensions(e))
            .flatten()
            .any(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// Whether the URI was `wss://` (TLS is the caller's transport).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host to connect to, without brackets for IPv6.
    #[must_use]
    pub fn host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port to connect to.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header value: the host, with the port unless it is the default (§4.1 item 4).
    #[must_use]
    pub fn host_header(&self) -> String {
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The offered subprotocols.
    pub(crate) fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The request headers after the request line, in order, checked.
    pub(crate) fn header_lines(
        &self,
        key: &str,
    ) -> Result<Vec<(&'static str, String)>, ConfigError> {
        for p in &self.protocols {
            if !header::is_token(p) {
                return Err(ConfigError::InvalidToken(p.clone()));
            }
        }
        for e in &self.extensions {
            if header::parse_extensions(e).is_none_or(|list| list.is_empty()) {
                return Err(ConfigError::InvalidToken(e.clone()));
            }
        }
        let mut lines = vec![
            ("Host", self.host_header()),
            ("Upgrade", "websocket".to_owned()),
            ("Connection", "Upgrade".to_owned()),
            ("Sec-WebSocket-Key", key.to_owned()),
            ("Sec-WebSocket-Version", "13".to_owned()),
        ];
        if !self.protocols.is_empty() {
            lines.push(("Sec-WebSocket-Protocol", self.protocols.join(", ")));
        }
        if !self.extensions.is_empty() {
            lines.push(("Sec-WebSocket-Extensions", self.extensions.join(", ")));
        }
        Ok(lines)
    }

    /// The extra headers, checked against injection and the handshake's own.
    pub(crate) fn extra_headers(&self) -> Result<&[(String, String)], ConfigError> {
        for (name, value) in &self.headers {
            let managed = MANAGED.iter().any(|m| m.eq_ignore_ascii_case(name));
            if managed || !header::is_token(name) || !header::is_header_value(value) {
                return Err(ConfigError::InvalidHeader(name.clone()));
            }
        }
        Ok(&self.headers)
    }

    /// The names of the offered extensions.
    fn extension_names(&self) -> Vec<String> {
        self.extensions
            .iter()
            .filter_map(|e| header::parse_extensions(e))
            .flatten()
            .map(|e| e.name.to_ascii_lowercase())
            .collect()
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), ConfigError> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority
            .find(']')
            .ok_or(ConfigError::InvalidUri("unclosed IPv6 literal"))?;
        let (host, rest) = authority.split_at(close.saturating_add(1));
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port),
            None if rest.is_empty() => None,
            None => return Err(ConfigError::InvalidUri("junk after IPv6 literal")),
        };
        let inner = host
            .get(1..host.len().saturating_sub(1))
            .unwrap_or_default();
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(ConfigError::InvalidUri("invalid IPv6 literal"));
        }
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=[]:".contains(&b);
    if host.is_empty() || !host.bytes().all(valid) {
        return Err(ConfigError::InvalidUri("invalid host"));
    }
    Ok((host, port))
}

/// The server's `101` answer, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Accepted {
    protocol: Option<String>,
    extensions: Vec<String>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Accepted {
    /// The subprotocol the server chose, if any (one of those offered).
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extensions the server accepted, with their parameters (each one offered).
    #[must_use]
    pub fn extensions(&self) -> Vec<Extension<'_>> {
        self.extensions
            .iter()
            .filter_map(|e| header::parse_extensions(e))
            .flatten()
            .collect()
    }

    /// The first value of response header `name` (case-insensitive), e.g. `Set-Cookie`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        first_header(&self.headers, name)
    }

    /// Every response header in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

/// A response other than `101`: what the server said, so a user sees its
/// 401 or 403 and why.
///
/// `Debug` shows header values and the body as text where they are UTF-8.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The start of the body: up to `Content-Length` bytes, at most 16 KiB;
    /// without `Content-Length`, whatever had arrived with the head.
    pub body: Bytes,
}

/// The first value of header `name` (case-insensitive) in `headers`.
fn first_header<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

impl Refusal {
    /// The first value of header `name` (case-insensitive), e.g. `Retry-After`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        first_header(&self.headers, name)
    }
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("protocol", &self.protocol)
            .field("extensions", &self.extensions)
            .field("headers", &TextHeaders(&self.headers))
            .finish()
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &TextHeaders(&self.headers))
            .field("body", &Text(&self.body))
            .finish()
    }
}

/// Header fields shown as `name: value` text.
struct TextHeaders<'a>(&'a [(String, Vec<u8>)]);

impl fmt::Debug for TextHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, value)| (name, Text(value))))
            .finish()
    }
}

/// Bytes shown as a string when they are UTF-8, as bytes otherwise.
struct Text<'a>(&'a [u8]);

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(text) => fmt::Debug::fmt(text, f),
            Err(_) => fmt::Debug::fmt(&Bytes::copy_from_slice(self.0), f),
        }
    }
}

/// A client's handshake in progress: the expected accept value and what was offered.
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    key: String,
    accept: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
    scanner: HeadScanner,
}

impl ClientHandshake {
    /// Starts a handshake with a fresh random key from the operating system
    /// (§4.1 item 7), returning the request bytes to send.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an invalid subprotocol, extension offer or header,
    /// or a failed entropy source.
    pub fn new(request: &ClientRequest) -> Result<(Self, Bytes), ConfigError> {
        let mut nonce = [0u8; 16];
        SysRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| ConfigError::Entropy)?;
        Self::with_nonce(request, nonce)
    }

    /// Starts a handshake with the given 16 key bytes. A fixed key is for
    /// tests; the RFC requires a random one per connection.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_nonce(
        request: &ClientRequest,
        nonce: [u8; 16],
    ) -> Result<(Self, Bytes), ConfigError> {
        let key = header::encode_key(nonce);
        let mut out = format!("GET {} HTTP/1.1\r\n", request.target);
        for (name, value) in request.header_lines(&key)? {
            super::write_header(&mut out, name, &value)?;
        }
        for (name, value) in request.extra_headers()? {
            super::write_header(&mut out, name, value)?;
        }
        out.push_str("\r\n");
        let handshake = Self {
            accept: header::accept_key(&key),
            key,
            protocols: request.protocols().to_vec(),
            extensions: request.extension_names(),
            scanner: HeadScanner {
                limits: request.limits,
                scanned: 0,
            },
        };
        Ok((handshake, Bytes::from(out)))
    }

    /// The `Sec-WebSocket-Key` this handshake sent.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Checks the server's response in `buf` (all bytes received so far).
    ///
    /// On [`Status::Complete`], the `usize` is the response's length: bytes
    /// after it are the server's first frames, for
    /// [`Connection::with_leftover`](crate::Connection::with_leftover).
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Refused`] for a non-101 status (with status, headers
    /// and body), or the check that failed.
    pub fn receive(&mut self, buf: &[u8]) -> Result<Status<(Accepted, usize)>, HandshakeError> {
        let Some(end) = self.scanner.scan(buf)? else {
            return Ok(Status::Partial);
        };
        let head = buf.get(..end).unwrap_or_default();
        let mut storage = vec![httparse::EMPTY_HEADER; self.scanner.limits.max_headers];
        let mut response = httparse::Response::new(&mut storage);
        let len = match response.parse(head).map_err(super::malformed)? {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => return Err(HandshakeError::Malformed("incomplete head")),
        };
        let headers = Headers::from_httparse(response.headers);
        let status = response.code.unwrap_or_default();
        let reason = response.reason.unwrap_or_default();
        if status != 101 {
            let available = buf.get(len..).unwrap_or_default();
            let wanted = headers
                .single("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .map_or(available.len(), |n| n.min(MAX_REJECT_BODY));
            if available.len() < wanted {
                return Ok(Status::Partial);
            }
            let body = available
                .get(..wanted.min(MAX_REJECT_BODY))
                .unwrap_or_default();
            return Err(rejected(status, reason, &headers, body));
        }
        self.check(status, reason, &headers, &[])
            .map(|accepted| Status::Complete((accepted, len)))
    }

    /// The response checks of §4.1 on a parsed head.
    pub(crate) fn check(
        &self,
        status: u16,
        reason: &str,
        headers: &Headers<'_>,
        body: &[u8],
    ) -> Result<Accepted, HandshakeError> {
        if status != 101 {
            return Err(rejected(status, reason, headers, body));
        }
        if !headers.list_contains("upgrade", "websocket")
            || !headers.list_contains("connection", "upgrade")
        {
            return Err(HandshakeError::ResponseNotUpgrade);
        }
        if headers.single("sec-websocket-accept") != Some(self.accept.as_str()) {
            return Err(HandshakeError::WrongAccept);
        }
        self.check_negotiation(headers)
    }

    /// What the server chose of what was offered: one of the offered
    /// subprotocols or none, and only offered extensions (§4.1, and RFC
    /// 8441 §5 over HTTP/2).
    pub(crate) fn check_negotiation(
        &self,
        headers: &Headers<'_>,
    ) -> Result<Accepted, HandshakeError> {
        let protocol = match headers.all("sec-websocket-protocol").collect::<Vec<_>>()[..] {
            [] => None,
            [chosen] if self.protocols.iter().any(|p| p == chosen.trim()) => {
                Some(chosen.trim().to_owned())
            }
            _ => return Err(HandshakeError::ProtocolNotOffered),
        };
        let mut extensions = Vec::new();
        for value in headers.all("sec-websocket-extensions") {
            let list =
                header::parse_extensions(value).ok_or(HandshakeError::MalformedExtensions)?;
            if list.iter().any(|e| {
                !self
                    .extensions
                    .iter()
                    .any(|offered| offered.eq_ignore_ascii_case(e.name))
            }) {
                return Err(HandshakeError::ExtensionNotOffered);
            }
            extensions.push(value.to_owned());
        }
        Ok(Accepted {
            protocol,
            extensions,
            headers: owned_headers(headers),
        })
    }
}

fn owned_headers(headers: &Headers<'_>) -> Vec<(String, Vec<u8>)> {
    headers
        .0
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
        .collect()
}

/// The error for a non-101 response.
pub(crate) fn rejected(
    status: u16,
    reason: &str,
    headers: &Headers<'_>,
    body: &[u8],
) -> HandshakeError {
    HandshakeError::Refused(Box::new(Refusal {
        status,
        reason: reason.to_owned(),
        headers: owned_headers(headers),
        body: Bytes::copy_from_slice(body),
    }))
}
