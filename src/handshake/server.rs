//! The server's side of the opening handshake (RFC 6455 §4.2).

use std::any::Any;
use std::fmt;

use bytes::Bytes;

use crate::conn::Opening;

use super::header::{self, Extension};
use super::{HandshakeError, HandshakeLimits, HeadScanner, Headers, Status};
use crate::ConfigError;

/// Reads an upgrade request, incrementally, within [`HandshakeLimits`].
///
/// Feed it everything received so far (the same buffer, grown) until it
/// returns [`Status::Complete`]. The head is scanned once however it is split,
/// and a head past [`HandshakeLimits::max_head_bytes`] fails with 431 as soon
/// as the limit is crossed.
#[derive(Clone, Debug, Default)]
pub struct ServerHandshake {
    scanner: HeadScanner,
}

impl ServerHandshake {
    /// A reader with the default limits (16 KiB, 64 headers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader with the given limits.
    #[must_use]
    pub fn with_limits(limits: HandshakeLimits) -> Self {
        Self {
            scanner: HeadScanner { limits, scanned: 0 },
        }
    }

    /// The limits this reader applies.
    #[must_use]
    pub fn limits(&self) -> HandshakeLimits {
        self.scanner.limits
    }

    /// Parses and validates the request in `buf` (§4.2.1).
    ///
    /// On [`Status::Complete`] the view borrows `buf`, and the `usize` is the
    /// length of the request: bytes after it are the client's first frames,
    /// for [`Connection::with_leftover`](crate::Connection::with_leftover).
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] whose [`status`](HandshakeError::status) is the
    /// response to send ([`reject_for`] builds it).
    pub fn parse<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Status<(RequestView<'b>, usize)>, HandshakeError> {
        let Some(end) = self.scanner.scan(buf)? else {
            return Ok(Status::Partial);
        };
        let head = buf.get(..end).unwrap_or_default();
        let mut storage = vec![httparse::EMPTY_HEADER; self.scanner.limits.max_headers];
        let mut request = httparse::Request::new(&mut storage);
        let len = match request.parse(head).map_err(super::malformed)? {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => return Err(HandshakeError::Malformed("incomplete head")),
        };
        let view = RequestView {
            method: request.method.unwrap_or_default(),
            target: request.path.unwrap_or_default(),
            http11: request.version == Some(1),
            headers: Headers::from_httparse(request.headers),
        };
        view.validate()?;
        Ok(Status::Complete((view, len)))
    }
}

/// A validated upgrade request, borrowed from the bytes it was parsed from.
///
/// Everything an application checks before accepting: the path and query
/// (tokens in the query), Host, Origin, cookies, `Authorization`, offered
/// subprotocols and extensions, and any header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestView<'b> {
    method: &'b str,
    target: &'b str,
    http11: bool,
    headers: Headers<'b>,
}

impl<'b> RequestView<'b> {
    /// Builds a view from parts an HTTP stack already parsed (feature `http`).
    #[cfg(feature = "http")]
    pub(crate) fn from_parts(
        method: &'b str,
        target: &'b str,
        http11: bool,
        headers: Vec<(&'b str, &'b [u8])>,
    ) -> Self {
        Self {
            method,
            target,
            http11,
            headers: Headers(headers),
        }
    }

    /// The rules of §4.2.1, in the order the RFC lists them.
    pub(crate) fn validate(&self) -> Result<(), HandshakeError> {
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if !self.http11 {
            return Err(HandshakeError::HttpVersion);
        }
        if self.headers.single("host").is_none_or(str::is_empty) {
            return Err(HandshakeError::MissingHost);
        }
        if !self.headers.list_contains("upgrade", "websocket") {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        if !self.headers.list_contains("connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if !self
            .headers
            .single("sec-websocket-key")
            .is_some_and(header::is_valid_key)
        {
            return Err(HandshakeError::InvalidKey);
        }
        self.validate_websocket_headers()
    }

    /// The checks shared with RFC 8441: version 13 and well-formed extensions.
    pub(crate) fn validate_websocket_headers(&self) -> Result<(), HandshakeError> {
        if self.headers.single("sec-websocket-version") != Some("13") {
            return Err(HandshakeError::UnsupportedVersion);
        }
        for value in self.headers.all("sec-websocket-extensions") {
            header::parse_extensions(value).ok_or(HandshakeError::MalformedExtensions)?;
        }
        Ok(())
    }

    /// The request target as sent: path and query.
    #[must_use]
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The path, without the query.
    #[must_use]
    pub fn path(&self) -> &'b str {
        split_target(self.target).0
    }

    /// The query, without the `?`, if there is one.
    #[must_use]
    pub fn query(&self) -> Option<&'b str> {
        split_target(self.target).1
    }

    /// The raw (not percent-decoded) value of the first `name=value` pair in
    /// the query: `Some("")` for `?name` or `?name=`.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<&'b str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The `Host` header.
    #[must_use]
    pub fn host(&self) -> Option<&'b str> {
        self.headers.single("host")
    }

    /// The `Origin` header, sent by browsers (§4.2.1 item 7, §10.2).
    #[must_use]
    pub fn origin(&self) -> Option<&'b str> {
        self.headers.single("origin")
    }

    /// The `Authorization` header.
    #[must_use]
    pub fn authorization(&self) -> Option<&'b str> {
        self.headers.single("authorization")
    }

    /// The token of an `Authorization: Bearer <token>` header.
    #[must_use]
    pub fn bearer_token(&self) -> Option<&'b str> {
        let value = self.authorization()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The value of cookie `name` from the `Cookie` header(s).
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&'b str> {
        self.headers.all("cookie").find_map(|line| {
            line.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value)
            })
        })
    }

    /// The first value of header `name` (case-insensitive), as sent.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Every header field in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + '_ {
        self.headers.0.iter().copied()
    }

    /// The subprotocols the client offered, in its order of preference (§4.1, §11.3.4).
    pub fn protocols(&self) -> impl Iterator<Item = &'b str> + '_ {
        self.headers
            .all("sec-websocket-protocol")
            .flat_map(header::comma_list)
    }

    /// The extensions the client offered, in order (§9.1). Validation has
    /// already checked the grammar.
    #[must_use]
    pub fn extensions(&self) -> Vec<Extension<'b>> {
        self.headers
            .all("sec-websocket-extensions")
            .filter_map(header::parse_extensions)
            .flatten()
            .collect()
    }

    /// The `Sec-WebSocket-Key` (present and valid in a parsed HTTP/1.1 request).
    #[must_use]
    pub fn key(&self) -> Option<&'b str> {
        self.headers.single("sec-websocket-key")
    }
}

/// A request target split into its path and its query (without the `?`).
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// What the server's 101 response says besides the required headers, and a
/// value to hand on to the code that runs the connection.
///
/// ```
/// use rfc6455::handshake::{AcceptOptions, Rejection};
/// use rfc6455::ServerBuilder;
///
/// struct User {
///     name: String,
/// }
/// let server = ServerBuilder::new().on_request(|request| match request.bearer_token() {
///     Some("s3cret") => Ok(AcceptOptions::new().data(User { name: "ada".into() })),
///     _ => Err(Rejection::new(401).header("WWW-Authenticate", "Bearer")),
/// });
/// // Then, on the accepted stream: `let user = ws.take_data::<User>();`
/// # let _ = |user: User| user.name;
/// # let _ = server;
/// ```
#[derive(Default)]
pub struct AcceptOptions {
    protocol: Option<String>,
    extensions: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<Box<dyn Any + Send + Sync>>,
    /// The connection's place under the admission limits.
    permit: Option<crate::admission::Permit>,
}

impl fmt::Debug for AcceptOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptOptions")
            .field("protocol", &self.protocol)
            .field("extensions", &self.extensions)
            .field("headers", &self.headers)
            .field("data", &self.data.as_ref().map(|_| ".."))
            .finish()
    }
}

impl AcceptOptions {
    /// Nothing but the required headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The chosen subprotocol; it must be one the client offered (§4.2.2).
    #[must_use = "options are built by value"]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// The `Sec-WebSocket-Extensions` response value, as an extension's
    /// negotiation produced it.
    #[must_use = "options are built by value"]
    pub fn extensions(mut self, value: impl Into<String>) -> Self {
        self.extensions = Some(value.into());
        self
    }

    /// An extra header, e.g. `Set-Cookie`.
    #[must_use = "options are built by value"]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A value for the code that runs the accepted connection (the
    /// authenticated user, say): the adapters' streams and
    /// [`Connection::take_data`](crate::Connection::take_data) hand it
    /// back by its type. A later call replaces it.
    #[must_use = "options are built by value"]
    pub fn data<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.data = Some(Box::new(value));
        self
    }

    /// Keeps `permit` with the connection these options accept.
    pub(crate) fn hold(mut self, permit: Option<crate::admission::Permit>) -> Self {
        self.permit = permit;
        self
    }

    /// The chosen subprotocol, the data and the permit, for the
    /// connection's record.
    pub(crate) fn into_opening(self) -> Opening {
        Opening {
            protocol: self.protocol.map(String::into_boxed_str),
            data: self.data,
            permit: self.permit,
        }
    }

    /// Whether a subprotocol was chosen.
    pub(crate) fn has_protocol(&self) -> bool {
        self.protocol.is_some()
    }

    /// Whether an extensions answer was set.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn has_extensions(&self) -> bool {
        self.extensions.is_some()
    }

    /// The headers of a successful response besides the handshake's own:
    /// subprotocol, extensions and extras, checked.
    pub(crate) fn response_headers(
        &self,
        view: &RequestView<'_>,
    ) -> Result<Vec<(&str, &str)>, ConfigError> {
        let mut headers = Vec::new();
        if let Some(protocol) = &self.protocol {
            if !view.protocols().any(|offered| offered == protocol) {
                return Err(ConfigError::ProtocolNotOffered(protocol.clone()));
            }
            headers.push(("Sec-WebSocket-Protocol", protocol.as_str()));
        }
        if let Some(extensions) = &self.extensions {
            headers.push(("Sec-WebSocket-Extensions", extensions.as_str()));
        }
        headers.extend(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        for (name, value) in &headers {
            if !header::is_token(name) || !header::is_header_value(value) {
                return Err(ConfigError::InvalidHeader((*name).to_owned()));
            }
        }
        Ok(headers)
    }
}

/// The `101 Switching Protocols` response for a validated request (§4.2.2).
///
/// # Errors
///
/// [`ConfigError::ProtocolNotOffered`] if the chosen subprotocol was not
/// offered, [`ConfigError::InvalidHeader`] for a header that could inject
/// lines. Nothing is produced on error.
pub fn accept(view: &RequestView<'_>, options: &AcceptOptions) -> Result<Bytes, ConfigError> {
    let key = view
        .key()
        .ok_or_else(|| ConfigError::InvalidHeader("Sec-WebSocket-Key".into()))?;
    let mut out = String::with_capacity(160);
    out.push_str(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    super::write_header(&mut out, "Sec-WebSocket-Accept", &header::accept_key(key))?;
    for (name, value) in options.response_headers(view)? {
        super::write_header(&mut out, name, value)?;
    }
    out.push_str("\r\n");
    Ok(Bytes::from(out))
}

/// A response refusing the handshake: any status from 200 to 599, headers
/// and a body (e.g. 401 with `WWW-Authenticate`, 403, 429 with `Retry-After`).
/// It carries `Content-Length` and `Connection: close`.
///
/// ```
/// use rfc6455::handshake::reject;
/// let response = reject(401, &[("WWW-Authenticate", "Bearer")], b"token required")?;
/// assert!(response.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
/// assert!(response.ends_with(b"\r\n\r\ntoken required"));
/// # Ok::<(), rfc6455::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError::InvalidStatus`] outside 200–599, [`ConfigError::InvalidHeader`]
/// for a header that could inject lines.
pub fn reject(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<Bytes, ConfigError> {
    if !(200..=599).contains(&status) {
        return Err(ConfigError::InvalidStatus(status));
    }
    let mut out = format!("HTTP/1.1 {status} {}\r\n", super::Reason(status));
    for (name, value) in headers {
        super::write_header(&mut out, name, value)?;
    }
    super::write_header(&mut out, "Content-Length", &body.len().to_string())?;
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Ok(Bytes::from(bytes))
}

/// The response for a request that failed validation: its
/// [`status`](HandshakeError::status) and
/// [`response_headers`](HandshakeError::response_headers), with the error
/// as a short text body.
#[must_use]
pub fn reject_for(error: &HandshakeError) -> Bytes {
    let status = error.status().unwrap_or(400);
    let body = error.to_string();
    reject(status, error.response_headers(), body.as_bytes()).unwrap_or_default()
}

/// An application's refusal of a handshake: a status from 200 to 599,
/// headers and a body. Returned from the callback of the adapters'
/// `accept` functions.
///
/// ```
/// use rfc6455::handshake::Rejection;
/// let no = Rejection::new(401).header("WWW-Authenticate", "Bearer").body("token required");
/// assert!(no.to_bytes()?.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
/// # Ok::<(), rfc6455::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Rejection {
    /// A rejection with `status` and no body.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds `Retry-After` with `wait` in whole seconds (rounded up, at least 1).
    #[must_use = "rejections are built by value"]
    pub fn retry_after(self, wait: std::time::Duration) -> Self {
        let seconds = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        self.header("Retry-After", seconds.max(1).to_string())
    }

    /// Adds a header.
    #[must_use = "rejections are built by value"]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use = "rejections are built by value"]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers.
    #[cfg(feature = "http")]
    pub(crate) fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    #[cfg(feature = "http")]
    pub(crate) fn body_bytes(&self) -> &Bytes {
        &self.body
    }

    /// The response bytes, as [`reject`] builds them.
    ///
    /// # Errors
    ///
    /// As [`reject`].
    pub fn to_bytes(&self) -> Result<Bytes, ConfigError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        reject(self.status, &headers, &self.body)
    }
}
