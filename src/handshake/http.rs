//! The handshake over types from the `http` crate (feature `http`): for
//! servers whose HTTP stack (hyper, axum, h2) already parsed the request,
//! including WebSockets over HTTP/2 extended CONNECT (RFC 8441), and for
//! clients that send the request through one.
//!
//! A server calls [`upgrade`] with the request and a
//! [`ServerBuilder`]: it validates the request, runs the builder's callback
//! and subprotocol choice, negotiates permessage-deflate per
//! [`Config::deflate`](crate::Config::deflate), and gives back the `101`
//! response and the [`Connection`] to run on the upgraded stream; a refusal
//! ([`Rejected`]) turns into the response to send instead. (With hyper 1,
//! feature `hyper`'s [`rt::hyper::upgrade`](crate::rt) does all of this and
//! hands over the stream; axum has feature `axum`.) By hand, with hyper 1
//! and its `hyper-util` companion:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # #[allow(dead_code)]
//! # mod example {
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming};
//! use hyper_util::rt::TokioIo;
//! use rfc6455::ServerBuilder;
//! use rfc6455::handshake::http::upgrade;
//! use rfc6455::rt::tokio::WebSocketStream;
//!
//! async fn handle(mut request: Request<Incoming>, server: &ServerBuilder) -> Response<Full<Bytes>> {
//!     let (response, conn) = match upgrade(&request, server) {
//!         Ok(accepted) => accepted,
//!         Err(refused) => return refused.into_response().map(Full::new),
//!     };
//!     tokio::spawn(async move {
//!         let Ok(upgraded) = hyper::upgrade::on(&mut request).await else { return };
//!         let mut ws = WebSocketStream::new(TokioIo::new(upgraded), conn);
//!         while let Some(Ok(message)) = ws.next().await {
//!             if message.is_text() || message.is_binary() {
//!                 if ws.send(message).await.is_err() { break }
//!             }
//!         }
//!     });
//!     response.map(|()| Full::default())
//! }
//! # }
//! ```
//!
//! `tests/handshake_http.rs` runs this handler in a hyper server with
//! permessage-deflate negotiated.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};

use super::client::{Accepted, ClientHandshake, ClientRequest};
use super::driver::accept_into;
use super::server::{AcceptOptions, Rejection, RequestView};
use super::{HandshakeError, Headers, accept_key};
use crate::builder::ServerBuilder;
use crate::{ConfigError, Connection, Role};

/// Answers an HTTP/1.1 upgrade request that an HTTP stack parsed, as
/// `server` says: the `101` response to send and the [`Connection`] to run
/// over the upgraded stream (e.g. with
/// [`WebSocketStream::new`](crate::rt::WebSocketStream::new)).
/// permessage-deflate is negotiated per the builder's
/// [`Config::deflate`](crate::Config::deflate) and applied to the
/// connection. The builder's header limits do not apply: the HTTP stack
/// read the request.
///
/// # Errors
///
/// [`Rejected`], whose [`into_response`](Rejected::into_response) is the
/// answer to send.
pub fn upgrade<T, F>(
    request: &Request<T>,
    server: &ServerBuilder<F>,
) -> Result<(Response<()>, Connection), Rejected>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    let view = RequestView::from_http(request).map_err(Rejected::Invalid)?;
    answer(&view, server, |view, options| view.accept_http(options))
}

/// [`upgrade`] for an HTTP/2 extended CONNECT (RFC 8441): `protocol` is
/// the `:protocol` pseudo-header your HTTP/2 stack reports; the response is
/// the `200` that opens the stream.
///
/// # Errors
///
/// As [`upgrade`].
pub fn upgrade_extended_connect<T, F>(
    request: &Request<T>,
    protocol: &str,
    server: &ServerBuilder<F>,
) -> Result<(Response<()>, Connection), Rejected>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    let view = RequestView::from_extended_connect(request, protocol).map_err(Rejected::Invalid)?;
    answer(&view, server, |view, options| {
        view.accept_extended_connect(options)
    })
}

fn answer<F>(
    view: &RequestView<'_>,
    server: &ServerBuilder<F>,
    respond: impl FnOnce(&RequestView<'_>, &AcceptOptions) -> Result<Response<()>, ConfigError>,
) -> Result<(Response<()>, Connection), Rejected>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    let options = server
        .decide(view, std::time::Instant::now(), None)
        .map_err(Rejected::Callback)?;
    let mut conn =
        Connection::new(Role::Server, server.shared_config()).map_err(Rejected::Config)?;
    let response = accept_into(&mut conn, view, options, respond).map_err(Rejected::Config)?;
    Ok((response, conn))
}

/// Why our server did not accept an upgrade ([`upgrade`]), and the
/// response that says so: the peer's fault, our callback's or our
/// admission limits' decision, or our own setup's fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejected {
    /// The request is not a valid WebSocket upgrade (its status: 400, 405,
    /// 426 with `Sec-WebSocket-Version`, …).
    Invalid(HandshakeError),
    /// The builder's callback, its admission limits or its drain said no.
    Callback(Rejection),
    /// The builder's [`Config`](crate::Config), or an answer the callback
    /// chose (a header), cannot work: 500.
    Config(ConfigError),
}

impl Rejected {
    /// The status of the response.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(error) => error.status().unwrap_or(400),
            Self::Callback(rejection) => rejection.status(),
            Self::Config(_) => 500,
        }
    }

    /// The response to send.
    #[must_use]
    pub fn into_response(self) -> Response<Bytes> {
        let internal = || plain(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new());
        match &self {
            Self::Invalid(error) => error.to_http_response(),
            // A rejection `http` refuses (a bad header) is a server error.
            Self::Callback(rejection) => {
                rejection.to_http_response().unwrap_or_else(|_| internal())
            }
            Self::Config(_) => internal(),
        }
    }
}

/// A response with a status and a body, nothing else.
fn plain(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

impl HandshakeError {
    /// The response to a request that failed validation, as an
    /// `http::Response`: the [`status`](Self::status) (400 when it has
    /// none), the [`response_headers`](Self::response_headers) and the
    /// error as a short text body.
    #[must_use]
    pub fn to_http_response(&self) -> Response<Bytes> {
        let status =
            StatusCode::from_u16(self.status().unwrap_or(400)).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = plain(status, Bytes::from(self.to_string()));
        for (name, value) in self.response_headers() {
            // Every name here is a valid header name: the branch always runs.
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                let value = http::HeaderValue::from_static(value);
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl Rejection {
    /// The rejection as an `http::Response`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStatus`] outside 200–599,
    /// [`ConfigError::InvalidHeader`] for a header `http` refuses.
    pub fn to_http_response(&self) -> Result<Response<Bytes>, ConfigError> {
        let status = StatusCode::from_u16(self.status())
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or_else(|| ConfigError::InvalidStatus(self.status()))?;
        let mut builder = Response::builder().status(status);
        for (name, value) in self.headers() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(self.body_bytes().clone())
            .map_err(|_| ConfigError::InvalidHeader("rejection".into()))
    }
}

fn header_pairs<T>(request: &Request<T>) -> Vec<(&str, &[u8])> {
    request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect()
}

fn target<T>(request: &Request<T>) -> &str {
    request.uri().path_and_query().map_or("/", |pq| pq.as_str())
}

impl<'b> RequestView<'b> {
    /// Validates an HTTP/1.1 upgrade request that an HTTP stack already
    /// parsed (§4.2.1), as [`ServerHandshake::parse`](super::ServerHandshake::parse) does for bytes.
    ///
    /// ```
    /// use rfc6455::handshake::{AcceptOptions, RequestView};
    /// let request = http::Request::get("/ws")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .body(())?;
    /// let view = RequestView::from_http(&request)?;
    /// let response = view.accept_http(&AcceptOptions::new())?;
    /// assert_eq!(response.status(), 101);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] with the status to answer with.
    pub fn from_http<T>(request: &'b Request<T>) -> Result<Self, HandshakeError> {
        let view = Self::from_parts(
            request.method().as_str(),
            target(request),
            request.version() == Version::HTTP_11,
            header_pairs(request),
        );
        view.validate()?;
        Ok(view)
    }

    /// Validates an HTTP/2 extended CONNECT request (RFC 8441 §4, §5):
    /// `:method` CONNECT, `:protocol` websocket (pass the value your HTTP/2
    /// stack reports), `Sec-WebSocket-Version: 13`. There is no key. The
    /// view's `host()` is the `:authority`.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::MethodNotAllowed`] for another method,
    /// [`HandshakeError::NotWebSocketUpgrade`] for another `:protocol`,
    /// [`HandshakeError::UnsupportedVersion`] and
    /// [`HandshakeError::MalformedExtensions`] as over HTTP/1.1.
    pub fn from_extended_connect<T>(
        request: &'b Request<T>,
        protocol: &str,
    ) -> Result<Self, HandshakeError> {
        if request.method() != Method::CONNECT {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if !protocol.eq_ignore_ascii_case("websocket") {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        let mut headers = header_pairs(request);
        if let Some(authority) = request.uri().authority() {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("host"));
            headers.push(("host", authority.as_str().as_bytes()));
        }
        let view = Self::from_parts("CONNECT", target(request), true, headers);
        view.validate_websocket_headers()?;
        Ok(view)
    }

    /// The `101 Switching Protocols` response as an `http::Response`, for an
    /// HTTP/1.1 view. The framework sends it and hands the upgraded stream
    /// to a [`Connection`](crate::Connection).
    ///
    /// # Errors
    ///
    /// As [`accept`](super::accept).
    pub fn accept_http(&self, options: &AcceptOptions) -> Result<Response<()>, ConfigError> {
        let key = self
            .key()
            .ok_or_else(|| ConfigError::InvalidHeader("Sec-WebSocket-Key".into()))?;
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::SEC_WEBSOCKET_ACCEPT, accept_key(key));
        finish(response, options.response_headers(self)?)
    }

    /// The `200` response to an extended CONNECT (RFC 8441 §5); the HTTP/2
    /// stream then carries frames for a [`Connection`](crate::Connection).
    ///
    /// # Errors
    ///
    /// As [`accept`](super::accept).
    pub fn accept_extended_connect(
        &self,
        options: &AcceptOptions,
    ) -> Result<Response<()>, ConfigError> {
        finish(
            Response::builder().status(StatusCode::OK),
            options.response_headers(self)?,
        )
    }
}

fn finish(
    mut response: http::response::Builder,
    headers: Vec<(&str, &str)>,
) -> Result<Response<()>, ConfigError> {
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(())
        .map_err(|_| ConfigError::InvalidHeader("response".into()))
}

impl ClientHandshake {
    /// Starts a handshake as an `http::Request<()>` for an HTTP client
    /// stack, with a fresh random key.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn new_http(request: &ClientRequest) -> Result<(Self, Request<()>), ConfigError> {
        let (handshake, _) = Self::new(request)?;
        let key = handshake.key().to_owned();
        let uri = format!(
            "{}://{}{}",
            if request.is_secure() { "wss" } else { "ws" },
            request.host_header(),
            request.target()
        );
        let lines = request.header_lines(&key)?;
        let http = finish_request(Request::get(uri), request, lines)?;
        Ok((handshake, http))
    }

    /// Starts a handshake as an HTTP/2 extended CONNECT request (RFC 8441
    /// §4, §5): `CONNECT` to the request's URI (`:scheme` `https` for
    /// `wss://`, `http` for `ws://`; `:authority` and `:path` from it),
    /// `sec-websocket-version: 13`, the offered subprotocols and
    /// extensions, the extra headers; no key, `Upgrade` or `Connection`.
    /// The HTTP/2 stack adds `:protocol: websocket` from its own request
    /// extension (hyper and h2: `Protocol::from_static("websocket")`), and
    /// may send it only once the server's SETTINGS enabled it
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441 §3).
    ///
    /// ```
    /// use rfc6455::handshake::{ClientHandshake, ClientRequest};
    ///
    /// let request = ClientRequest::new("wss://example.com/chat")?.protocol("chat");
    /// let (handshake, connect) = ClientHandshake::new_extended_connect(&request)?;
    /// assert_eq!(connect.method(), "CONNECT");
    /// assert_eq!(connect.uri(), "https://example.com/chat");
    /// assert_eq!(connect.headers()["sec-websocket-version"], "13");
    /// assert!(connect.headers().get("sec-websocket-key").is_none());
    ///
    /// // The server's 200 accepts; it may choose an offered subprotocol.
    /// let response = http::Response::builder()
    ///     .status(200)
    ///     .header("sec-websocket-protocol", "chat")
    ///     .body(())?;
    /// let accepted = handshake.receive_extended_connect(&response)?;
    /// assert_eq!(accepted.protocol(), Some("chat"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn new_extended_connect(
        request: &ClientRequest,
    ) -> Result<(Self, Request<()>), ConfigError> {
        let (handshake, _) = Self::new(request)?;
        let uri = format!(
            "{}://{}{}",
            if request.is_secure() { "https" } else { "http" },
            request.host_header(),
            request.target()
        );
        let builder = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri(uri);
        // Host is the :authority over HTTP/2 (RFC 9113 §8.3.1); Upgrade,
        // Connection and the key have no place in an extended CONNECT.
        let over_h2 = [
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Extensions",
        ];
        let mut lines = request.header_lines("")?;
        lines.retain(|(name, _)| over_h2.contains(name));
        let http = finish_request(builder, request, lines)?;
        Ok((handshake, http))
    }

    /// Checks the response to an extended CONNECT (RFC 8441 §5): a 2xx
    /// status accepts (there is no `Sec-WebSocket-Accept`), with at most one
    /// offered subprotocol and only offered extensions.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Refused`] (with an empty body) for any other
    /// status, [`HandshakeError::ProtocolNotOffered`],
    /// [`HandshakeError::ExtensionNotOffered`] and
    /// [`HandshakeError::MalformedExtensions`] as over HTTP/1.1.
    pub fn receive_extended_connect<T>(
        &self,
        response: &Response<T>,
    ) -> Result<Accepted, HandshakeError> {
        let headers = response_headers(response);
        let status = response.status();
        if !status.is_success() {
            return Err(super::client::rejected(
                status.as_u16(),
                status.canonical_reason().unwrap_or_default(),
                &headers,
                &[],
            ));
        }
        self.check_negotiation(&headers)
    }

    /// Checks a response an HTTP client stack already parsed.
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive); a non-101 response is
    /// [`HandshakeError::Refused`] with an empty body.
    pub fn receive_http<T>(&self, response: &Response<T>) -> Result<Accepted, HandshakeError> {
        let headers = response_headers(response);
        let status = response.status();
        self.check(
            status.as_u16(),
            status.canonical_reason().unwrap_or_default(),
            &headers,
            &[],
        )
    }
}

/// Adds the handshake's header lines and the request's extra headers to
/// `builder` and finishes it: the tail both request forms share.
fn finish_request(
    mut builder: http::request::Builder,
    request: &ClientRequest,
    lines: Vec<(&'static str, String)>,
) -> Result<Request<()>, ConfigError> {
    for (name, value) in lines {
        builder = builder.header(name, value);
    }
    for (name, value) in request.extra_headers()? {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(())
        .map_err(|_| ConfigError::InvalidUri("rejected by http"))
}

/// A parsed response's headers, as the checks read them.
fn response_headers<T>(response: &Response<T>) -> Headers<'_> {
    Headers(
        response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect(),
    )
}
