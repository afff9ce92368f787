//! The handshake over types from the `http` crate (feature `http`): for
//! frameworks whose HTTP stack (hyper, axum, h2) already parsed the request,
//! including WebSockets over HTTP/2 extended CONNECT (RFC 8441).

use http::{Method, Request, Response, StatusCode, Version};

use super::client::{Accepted, ClientHandshake, ClientRequest};
use super::server::{AcceptOptions, RequestView};
use super::{BuildError, HandshakeError, Headers, accept_key};

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
    pub fn accept_http(&self, options: &AcceptOptions) -> Result<Response<()>, BuildError> {
        let key = self
            .key()
            .ok_or_else(|| BuildError::InvalidHeader("Sec-WebSocket-Key".into()))?;
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
    ) -> Result<Response<()>, BuildError> {
        finish(
            Response::builder().status(StatusCode::OK),
            options.response_headers(self)?,
        )
    }
}

fn finish(
    mut response: http::response::Builder,
    headers: Vec<(&str, &str)>,
) -> Result<Response<()>, BuildError> {
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(())
        .map_err(|_| BuildError::InvalidHeader("response".into()))
}

impl ClientHandshake {
    /// Starts a handshake as an `http::Request<()>` for an HTTP client
    /// stack, with a fresh random key.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn new_http(request: &ClientRequest) -> Result<(Self, Request<()>), BuildError> {
        let (handshake, _) = Self::new(request)?;
        let key = handshake.key().to_owned();
        let uri = format!(
            "{}://{}{}",
            if request.is_secure() { "wss" } else { "ws" },
            request.host_header(),
            request.target()
        );
        let mut builder = Request::get(uri);
        for (name, value) in request.header_lines(&key)? {
            builder = builder.header(name, value);
        }
        for (name, value) in request.extra_headers()? {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http = builder
            .body(())
            .map_err(|_| BuildError::InvalidUri("rejected by http"))?;
        Ok((handshake, http))
    }

    /// Checks a response an HTTP client stack already parsed.
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive); a non-101 response is
    /// [`HandshakeError::Refused`] with an empty body.
    pub fn receive_http<T>(&self, response: &Response<T>) -> Result<Accepted, HandshakeError> {
        let headers = Headers(
            response
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .collect(),
        );
        let status = response.status();
        self.check(
            status.as_u16(),
            status.canonical_reason().unwrap_or_default(),
            &headers,
            &[],
        )
    }
}
