//! The opening handshake (RFC 6455 §4), sans-IO, for both roles.
//!
//! Like the rest of the crate, nothing here reads or writes a socket: the
//! caller feeds the bytes it has, and gets back [`Status::Partial`] (read
//! more), [`Status::Complete`] (with how many bytes the handshake took; what
//! follows belongs to the [`Connection`](crate::Connection)), or an error.
//!
//! - Server: [`ServerHandshake::parse`] validates an upgrade request and
//!   gives a borrowed [`RequestView`] to decide on; then [`accept`] builds
//!   the `101` response, or [`reject`] / [`reject_for`] any other.
//! - Client: [`ClientRequest`] is built from a `ws://` or `wss://` URI,
//!   [`ClientHandshake::new`] gives the request bytes, and
//!   [`ClientHandshake::receive`] checks the response.
//!
//! ```
//! use rfc6455::handshake::{AcceptOptions, ClientHandshake, ClientRequest, ServerHandshake, Status, accept};
//! use rfc6455::{Config, Connection, Message, Role};
//!
//! let request = ClientRequest::new("ws://example.com/chat?room=1")?.protocol("chat");
//! let (mut client, request_bytes) = ClientHandshake::new(&request)?;
//!
//! // Server side: parse, inspect, accept.
//! let mut server = ServerHandshake::new();
//! let Status::Complete((view, used)) = server.parse(&request_bytes)? else { unreachable!() };
//! assert_eq!((view.path(), view.query_param("room")), ("/chat", Some("1")));
//! let response = accept(&view, &AcceptOptions::new().protocol("chat"))?;
//! let mut server_conn = Connection::with_leftover(Role::Server, Config::default(), &request_bytes[used..])?;
//!
//! // Client side: check the response.
//! let Status::Complete((accepted, used)) = client.receive(&response)? else { unreachable!() };
//! assert_eq!(accepted.protocol(), Some("chat"));
//! let mut client_conn = Connection::with_leftover(Role::Client, Config::default(), &response[used..])?;
//!
//! // From here on, frames.
//! client_conn.send(Message::text("hi"))?;
//! let out = client_conn.outgoing();
//! server_conn.receive(bytes::Buf::chunk(out));
//! assert_eq!(server_conn.next_message()?, Some(Message::text("hi")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod client;
mod driver;
#[cfg(feature = "h2")]
pub(crate) use driver::ExtendedConnect;
pub(crate) use driver::sealed as driver_seal;
mod header;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod server;

use crate::ConfigError;

use std::fmt;
use std::time::Duration;

pub use client::{Accepted, ClientHandshake, ClientRequest, Refusal};
pub use driver::{Accepting, ClientDriver, Connecting, HandshakeDriver, Progress, ServerDriver};
pub use header::{Extension, accept_key};
pub(crate) use server::split_target;
pub use server::{
    AcceptOptions, Rejection, RequestView, ServerHandshake, accept, reject, reject_for,
};

/// The result of feeding a partial handshake: like `httparse::Status`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use = "Partial means: read more and call again"]
pub enum Status<T> {
    /// The bytes so far are a valid prefix; read more and call again with all of them.
    Partial,
    /// Done: the value, with the number of bytes the handshake used.
    Complete(T),
}

/// Limits on the handshake a peer may send: its size, and (for the
/// adapters, which own a clock) how long it may take.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// The most bytes of request line (or status line) and headers. Default 16 KiB.
    pub max_head_bytes: usize,
    /// The most header fields. Default 64.
    pub max_headers: usize,
    /// How long the blocking and tokio adapters wait for the whole opening
    /// handshake before giving up with
    /// [`Error::HandshakeTimeout`](crate::Error::HandshakeTimeout), so a
    /// peer that trickles its headers (slowloris) cannot hold a connection.
    /// Default 10 seconds; `None` waits forever. The sans-IO parsers never
    /// read it: a driver with its own clock applies its own deadline.
    pub timeout: Option<Duration>,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            timeout: Some(Duration::from_secs(10)),
        }
    }
}

by_value_setters! {
    HandshakeLimits {
        /// Sets [`max_head_bytes`](Self::max_head_bytes).
        max_head_bytes: usize;
        /// Sets [`max_headers`](Self::max_headers).
        max_headers: usize;
        /// Sets [`timeout`](Self::timeout).
        timeout: Option<Duration>;
    }
}

/// The peer's handshake was not acceptable.
///
/// For a server, [`status`](Self::status) is the HTTP status to answer with
/// and [`reject_for`] builds that response (a 426 carries
/// `Sec-WebSocket-Version: 13`, a 405 carries `Allow: GET`). For a client,
/// the server's response was not a valid `101`; a non-101 answer is
/// [`Refused`](Self::Refused), with its status, headers and body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response head was larger than [`HandshakeLimits::max_head_bytes`] (431).
    #[error("handshake head larger than the limit")]
    HeadTooLarge,
    /// More header fields than [`HandshakeLimits::max_headers`] (431).
    #[error("too many header fields")]
    TooManyHeaders,
    /// Not parseable as HTTP/1.x (400).
    #[error("malformed HTTP: {0}")]
    Malformed(&'static str),
    /// The request method was not GET (405; §4.2.1 item 1).
    #[error("method is not GET")]
    MethodNotAllowed,
    /// The request was HTTP/1.0 (505; §4.2.1 item 1 requires HTTP/1.1 or higher).
    #[error("HTTP version below 1.1")]
    HttpVersion,
    /// No Host header, or more than one (400; §4.2.1 item 2).
    #[error("missing or repeated Host header")]
    MissingHost,
    /// No `Upgrade: websocket` (426; §4.2.1 item 3).
    #[error("not a WebSocket upgrade request")]
    NotWebSocketUpgrade,
    /// The `Connection` header did not list `upgrade` (400; §4.2.1 item 4).
    #[error("Connection header does not include upgrade")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes (400; §4.2.1 item 5).
    #[error("missing or invalid Sec-WebSocket-Key")]
    InvalidKey,
    /// `Sec-WebSocket-Version` missing or not 13 (426 with `Sec-WebSocket-Version: 13`; §4.2.1 item 6, §4.4).
    #[error("unsupported Sec-WebSocket-Version")]
    UnsupportedVersion,
    /// A `Sec-WebSocket-Extensions` header did not follow the §9.1 grammar (400).
    #[error("malformed Sec-WebSocket-Extensions")]
    MalformedExtensions,
    /// The server answered with a status other than 101 (client side): it
    /// refused the upgrade. (A server's own application turning a request
    /// down is a [`Rejection`], reported as
    /// [`Error::Rejected`](crate::Error::Rejected).)
    #[error("the server refused the upgrade with status {}", .0.status)]
    Refused(Box<Refusal>),
    /// The 101 response lacked `Upgrade: websocket` or `Connection: upgrade` (client side; §4.1).
    #[error("101 response without the WebSocket upgrade headers")]
    ResponseNotUpgrade,
    /// `Sec-WebSocket-Accept` missing or wrong (client side; §4.1 item 4 of the response checks).
    #[error("wrong Sec-WebSocket-Accept")]
    WrongAccept,
    /// The server chose a subprotocol the client did not offer, or several (client side; §4.1).
    #[error("server selected a subprotocol that was not offered")]
    ProtocolNotOffered,
    /// The server accepted an extension the client did not offer (client side; §4.1).
    #[error("server accepted an extension that was not offered")]
    ExtensionNotOffered,
    /// The HTTP/2 server's SETTINGS did not enable extended CONNECT
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441 §3): it cannot carry
    /// WebSockets (client side).
    #[error("the HTTP/2 server does not enable extended CONNECT (RFC 8441)")]
    NoExtendedConnect,
    /// The server did not choose HTTP/2 when TLS offered it (ALPN `h2`)
    /// (client side).
    #[error("the server did not agree to HTTP/2 (ALPN h2)")]
    NoHttp2,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with, or `None` for
    /// errors only a client meets.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::Malformed(_)
            | Self::MissingHost
            | Self::MissingConnectionUpgrade
            | Self::InvalidKey
            | Self::MalformedExtensions => 400,
            Self::MethodNotAllowed => 405,
            Self::HttpVersion => 505,
            Self::NotWebSocketUpgrade | Self::UnsupportedVersion => 426,
            Self::Refused(_)
            | Self::ResponseNotUpgrade
            | Self::WrongAccept
            | Self::ProtocolNotOffered
            | Self::ExtensionNotOffered
            | Self::NoExtendedConnect
            | Self::NoHttp2 => return None,
        })
    }

    /// The headers a server's error response carries for this error.
    #[must_use]
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            Self::NotWebSocketUpgrade => {
                &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
            }
            Self::MethodNotAllowed => &[("Allow", "GET")],
            _ => &[],
        }
    }
}

/// Finds the end of an HTTP head (the byte after the blank line), scanning
/// from `from` so a head fed byte by byte is scanned once.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let window = buf.get(start..)?;
    let mut prev_lf = None;
    for (i, &b) in window.iter().enumerate() {
        if b == b'\n' {
            let pos = start.saturating_add(i);
            if let Some(last) = prev_lf {
                // "\n\n" or "\n\r\n"
                let between = pos.saturating_sub(last);
                if between == 1 || (between == 2 && buf.get(pos.saturating_sub(1)) == Some(&b'\r'))
                {
                    return Some(pos.saturating_add(1));
                }
            }
            prev_lf = Some(pos);
        }
    }
    None
}

/// Incremental head scanning shared by both roles.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadScanner {
    limits: HandshakeLimits,
    scanned: usize,
}

impl HeadScanner {
    /// `Ok(Some(len))` once the head is complete, `Ok(None)` for more, or 431.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        let from = self.scanned.min(buf.len());
        match find_head_end(buf, from) {
            Some(end) if end > self.limits.max_head_bytes => Err(HandshakeError::HeadTooLarge),
            Some(end) => Ok(Some(end)),
            None if buf.len() > self.limits.max_head_bytes => Err(HandshakeError::HeadTooLarge),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

/// Maps an httparse error.
fn malformed(error: httparse::Error) -> HandshakeError {
    match error {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
        other => HandshakeError::Malformed(match other {
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status line",
            httparse::Error::Token => "invalid token",
            httparse::Error::Version => "invalid HTTP version",
            _ => "invalid HTTP",
        }),
    }
}

/// Header fields as (name, value) pairs borrowed from a buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Headers<'b>(pub(crate) Vec<(&'b str, &'b [u8])>);

impl<'b> Headers<'b> {
    fn from_httparse(headers: &[httparse::Header<'b>]) -> Self {
        Self(headers.iter().map(|h| (h.name, h.value)).collect())
    }

    /// Every value of `name`, as text (values that are not UTF-8 are skipped).
    fn all(&self, name: &str) -> impl Iterator<Item = &'b str> + '_ {
        let name = name.to_owned();
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The only value of `name`: `None` if absent or repeated.
    fn single(&self, name: &str) -> Option<&'b str> {
        let mut values = self.all(name);
        let first = values.next()?;
        values.next().is_none().then_some(first.trim())
    }

    /// Whether any value of `name` is a list containing `token`.
    fn list_contains(&self, name: &str, token: &str) -> bool {
        self.all(name).any(|v| header::list_contains(v, token))
    }
}

/// Writes `Name: value\r\n`, after checking both.
fn write_header(out: &mut String, name: &str, value: &str) -> Result<(), ConfigError> {
    if !header::is_token(name) || !header::is_header_value(value) {
        return Err(ConfigError::InvalidHeader(name.to_owned()));
    }
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value.trim());
    out.push_str("\r\n");
    Ok(())
}

/// The reason phrase for a status code.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

struct Reason(u16);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(reason_phrase(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_with_crlf_and_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nxx", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nxx", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), None);
        // Resuming near the end still finds a terminator split across calls.
        let buf = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        assert_eq!(find_head_end(buf, 23), Some(24));
    }
}
