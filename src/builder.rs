//! What a server or a client wants from its handshakes, said once and
//! finished on any adapter.
//!
//! A [`ServerBuilder`] carries the [`Config`], the header limits, the
//! subprotocols the server speaks, extra response headers and the callback
//! that inspects each request; a [`ClientBuilder`] carries the URL, the
//! subprotocols offered, extra request headers, the limits and the
//! [`Config`]. Each adapter finishes them with the same verbs:
//!
//! | verb | blocking | async (`rt::tokio`, `rt::futures_io`) |
//! | --- | --- | --- |
//! | accept with defaults | `WebSocket::accept(stream)` | `WebSocketStream::accept(stream)` |
//! | accept with a builder | `WebSocket::accept_with(stream, &server)` | `WebSocketStream::accept_with(stream, &server)` |
//! | handshake over a connected stream | `WebSocket::client(stream, &client)` | `WebSocketStream::client(stream, &client)` |
//! | connect over TCP (and TLS) | `WebSocket::connect(url_or_client)` | `WebSocketStream::connect(url_or_client)` (tokio) |

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::handshake::{
    AcceptOptions, BuildError, ClientDriver, ClientRequest, HandshakeFailure, HandshakeLimits,
    Rejection, RequestView, ServerDriver, ServerHandshake,
};
use crate::{Config, ConfigError};

/// The request callback of a [`ServerBuilder`] that sets none: accept every
/// valid request.
pub type AcceptAll = fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>;

/// How a server answers opening handshakes: [`Config`], header limits,
/// subprotocols, extra headers and a callback that may inspect each request
/// (authentication, origin checks) and accept or reject it.
///
/// Build it once and finish it on each accepted stream with the adapters'
/// `accept_with` (it is `Clone` when the callback is, so each task can own
/// one).
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # #[allow(dead_code)]
/// # async fn run() -> Result<(), rfc6455::Error> {
/// use rfc6455::handshake::{AcceptOptions, Rejection};
/// use rfc6455::rt::tokio::WebSocketStream;
/// use rfc6455::ServerBuilder;
///
/// let server = ServerBuilder::new()
///     .protocols(["chat.v2", "chat.v1"])
///     .on_request(|request| match request.bearer_token() {
///         Some("s3cret") => Ok(AcceptOptions::new()),
///         _ => Err(Rejection::new(401).header("WWW-Authenticate", "Bearer")),
///     });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let ws = WebSocketStream::accept_with(tcp, &server).await?;
/// # drop(ws); Ok(()) }
/// ```
///
/// Cloning is cheap (the config, subprotocols and headers are shared), so a
/// clone per accepted connection costs a few words, and every connection
/// made shares one [`Config`].
#[derive(Clone)]
pub struct ServerBuilder<F = AcceptAll> {
    config: Arc<Config>,
    limits: HandshakeLimits,
    protocols: Arc<[String]>,
    headers: Arc<Vec<(String, String)>>,
    on_request: F,
}

impl ServerBuilder {
    /// Default [`Config`] and limits, no subprotocol, every valid request accepted.
    #[must_use]
    pub fn new() -> Self {
        Self {
            config: Arc::default(),
            limits: HandshakeLimits::default(),
            protocols: Arc::new([]),
            headers: Arc::default(),
            on_request: |_| Ok(AcceptOptions::new()),
        }
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> fmt::Debug for ServerBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("limits", &self.limits)
            .field("protocols", &self.protocols)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl<F> ServerBuilder<F>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    /// The connection's [`Config`] (limits, timers, permessage-deflate),
    /// checked here so that no connection fails for it later.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a config that cannot work ([`Config::validate`]).
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Result<Self, ConfigError> {
        let config = config.into();
        config.check()?;
        self.config = config;
        Ok(self)
    }

    /// The config, unchecked: for an upgrade whose answer to a config that
    /// cannot work is a `500` response (axum's extractor).
    #[cfg(feature = "axum")]
    pub(crate) fn config_unchecked(mut self, config: Arc<Config>) -> Self {
        self.config = config;
        self
    }

    /// The limits on the request: head size, header count, deadline.
    #[must_use = "builders are built by value"]
    pub fn limits(mut self, limits: HandshakeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The subprotocols this server speaks, most preferred first. The first
    /// of them that the client offered is chosen unless the callback chose
    /// one; when the client offered none of them, none is chosen (§4.2.2)
    /// and the client decides whether to go on.
    #[must_use = "builders are built by value"]
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// An extra header for every 101 response, e.g. `Server`.
    #[must_use = "builders are built by value"]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.headers).push((name.into(), value.into()));
        self
    }

    /// The callback that sees each valid request and accepts it (with
    /// options: a subprotocol, extra headers) or rejects it with a
    /// [`Rejection`] (status, headers, body).
    #[must_use = "builders are built by value"]
    pub fn on_request<G>(self, on_request: G) -> ServerBuilder<G>
    where
        G: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        ServerBuilder {
            config: self.config,
            limits: self.limits,
            protocols: self.protocols,
            headers: self.headers,
            on_request,
        }
    }

    /// The [`Config`] connections get.
    #[must_use]
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// The first of [`protocols`](Self::protocols) that `request` offers:
    /// the subprotocol chosen unless the callback chooses one.
    #[must_use]
    pub fn choose_protocol(&self, request: &RequestView<'_>) -> Option<&str> {
        self.protocols
            .iter()
            .map(String::as_str)
            .find(|ours| request.protocols().any(|offered| offered == *ours))
    }

    /// The [`Config`], to share with a connection made outside a handshake
    /// driver (an upgrade through an HTTP server).
    #[cfg(feature = "http")]
    pub(crate) fn shared_config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// What to answer `request`: the callback's options, completed with the
    /// builder's subprotocol choice and headers.
    ///
    /// # Errors
    ///
    /// The callback's [`Rejection`].
    pub fn answer(&self, request: &RequestView<'_>) -> Result<AcceptOptions, Rejection> {
        let mut options = (self.on_request)(request)?;
        if !options.has_protocol()
            && let Some(chosen) = self.choose_protocol(request)
        {
            options = options.protocol(chosen);
        }
        for (name, value) in self.headers.iter() {
            options = options.header(name.clone(), value.clone());
        }
        Ok(options)
    }

    /// The sans-IO handshake an adapter runs, its deadline counted from `now`.
    pub(crate) fn driver(
        &self,
        now: Instant,
    ) -> ServerDriver<impl FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection> + '_> {
        self.driver_with(now, |_| Ok(()))
    }

    /// Like [`driver`](Self::driver), with `first` deciding on a valid
    /// request before the builder's callback does (admission limits).
    pub(crate) fn driver_with<'a>(
        &'a self,
        now: Instant,
        first: impl FnOnce(&RequestView<'_>) -> Result<(), Rejection> + 'a,
    ) -> ServerDriver<impl FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection> + 'a> {
        ServerDriver::new(
            Arc::clone(&self.config),
            ServerHandshake::with_limits(self.limits),
            now,
            move |request| {
                first(request)?;
                self.answer(request)
            },
        )
    }
}

/// What a client asks for and how its connection runs: the URL,
/// subprotocols, extra headers, response limits and the [`Config`].
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # #[allow(dead_code)]
/// # async fn run() -> Result<(), rfc6455::Error> {
/// use rfc6455::rt::tokio::WebSocketStream;
/// use rfc6455::{ClientBuilder, Config};
///
/// let client = ClientBuilder::new("ws://127.0.0.1:9001/chat")?
///     .protocol("chat.v2")
///     .header("Authorization", "Bearer s3cret")
///     .config(Config::default().max_message_size(1 << 20))?;
/// let (ws, accepted) = WebSocketStream::connect(&client).await?;
/// assert_eq!(accepted.protocol(), Some("chat.v2"));
/// # drop(ws); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    request: ClientRequest,
    config: Arc<Config>,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// A client for a `ws://` or `wss://` URL (see [`ClientRequest::new`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidUri`] for a URL that is not a WebSocket URI.
    pub fn new(url: &str) -> Result<Self, BuildError> {
        Ok(ClientRequest::new(url)?.into())
    }

    /// Offers a subprotocol, in order of preference.
    #[must_use = "builders are built by value"]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.request = self.request.protocol(protocol);
        self
    }

    /// Adds a request header, e.g. `Authorization`, `Origin` or `Cookie`.
    #[must_use = "builders are built by value"]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// The limits on the response: head size, header count, deadline.
    #[must_use = "builders are built by value"]
    pub fn limits(mut self, limits: HandshakeLimits) -> Self {
        self.request = self.request.with_limits(limits);
        self
    }

    /// The connection's [`Config`], checked here; its
    /// [`deflate`](Config::deflate) setting is offered to the server.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a config that cannot work ([`Config::validate`]).
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Result<Self, ConfigError> {
        let config = config.into();
        config.check()?;
        self.config = config;
        Ok(self)
    }

    /// The rustls client configuration for `wss://` (feature `rustls`), for
    /// private roots or client certificates. Without it `connect` uses the
    /// roots its features choose: `rustls-tls-webpki-roots`,
    /// `rustls-tls-native-roots`, or none (every certificate is refused).
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    #[must_use = "builders are built by value"]
    pub fn tls_config(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The request the handshake sends.
    #[must_use]
    pub fn request(&self) -> &ClientRequest {
        &self.request
    }

    /// The [`Config`] the connection gets.
    #[must_use]
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// The rustls configuration `connect` uses for `wss://`.
    #[cfg(feature = "rustls")]
    pub(crate) fn tls(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// The sans-IO handshake an adapter runs, its deadline counted from `now`.
    pub(crate) fn driver(&self, now: Instant) -> Result<ClientDriver, HandshakeFailure> {
        ClientDriver::new(&self.request, Arc::clone(&self.config), now)
    }
}

impl From<ClientRequest> for ClientBuilder {
    fn from(request: ClientRequest) -> Self {
        Self {
            request,
            config: Arc::default(),
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }
}

/// What `connect` accepts: a URL (`&str`, `String`), a [`ClientRequest`] or
/// a [`ClientBuilder`] (by value or by reference).
pub trait IntoClientBuilder {
    /// The builder.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidUri`] for a URL that is not a WebSocket URI.
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError>;
}

impl IntoClientBuilder for &str {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        ClientBuilder::new(self)
    }
}

impl IntoClientBuilder for String {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        ClientBuilder::new(&self)
    }
}

impl IntoClientBuilder for &String {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        ClientBuilder::new(self)
    }
}

impl IntoClientBuilder for ClientRequest {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        Ok(self.into())
    }
}

impl IntoClientBuilder for &ClientRequest {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        Ok(self.clone().into())
    }
}

impl IntoClientBuilder for ClientBuilder {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        Ok(self)
    }
}

impl IntoClientBuilder for &ClientBuilder {
    fn into_client_builder(self) -> Result<ClientBuilder, BuildError> {
        Ok(self.clone())
    }
}
