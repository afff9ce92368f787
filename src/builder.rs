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
//! | accept (`stream`, or `(stream, peer)`) | `WebSocket::accept(stream, &server)` | `WebSocketStream::accept(stream, &server)` |
//! | handshake over a connected stream | `WebSocket::client(stream, &client)` | `WebSocketStream::client(stream, &client)` |
//! | connect over TCP (and TLS) | `WebSocket::connect(url_or_client)` | `WebSocketStream::connect(url_or_client)` (tokio) |

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::admission::{Admission, Permit};
use crate::handshake::{
    AcceptOptions, ClientDriver, ClientRequest, HandshakeLimits, Rejection, RequestView,
    ServerDriver, ServerHandshake,
};
use crate::{Config, ConfigError};

/// A config for a builder, once checked it can work.
fn checked(config: impl Into<Arc<Config>>) -> Result<Arc<Config>, ConfigError> {
    let config = config.into();
    config.check()?;
    Ok(config)
}

/// The request callback of a [`ServerBuilder`] that sets none: accept every
/// valid request.
pub type AcceptAll = fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>;

/// How a server answers opening handshakes: [`Config`], header limits,
/// subprotocols, extra headers and a callback that may inspect each request
/// (authentication, origin checks) and accept or reject it.
///
/// Build it once and finish it on each accepted stream with the adapters'
/// `accept` (it is `Clone` when the callback is, so each task can own
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
/// let ws = WebSocketStream::accept(tcp, &server).await?;
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
    admission: Option<Admission>,
    #[cfg(feature = "tokio")]
    drain: Option<crate::rt::drain::Drain>,
    on_request: F,
}

/// A stream to accept, and the address it came from when the server knows
/// it (what [`ServerBuilder::admission`] limits by): what an adapter's
/// `accept` makes of its first argument ([`IntoIncoming`]), `tcp` or
/// `(tcp, peer)`.
#[derive(Debug)]
pub struct Incoming<S> {
    pub(crate) stream: S,
    pub(crate) peer: Option<SocketAddr>,
}

impl<S> Incoming<S> {
    /// A stream from `peer`, if known.
    pub fn new(stream: S, peer: Option<SocketAddr>) -> Self {
        Self { stream, peer }
    }
}

/// What an adapter's `accept` takes: a stream `S`, or a `(S, SocketAddr)`
/// pair as `TcpListener::accept` returns it. `W` is the adapter's
/// WebSocket type, which keeps the stream type from ever being in doubt.
pub trait IntoIncoming<S, W> {
    /// The stream and its peer address.
    fn into_incoming(self) -> Incoming<S>;
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
            admission: None,
            #[cfg(feature = "tokio")]
            drain: None,
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
            .field("admission", &self.admission)
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
        self.config = checked(config)?;
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

    /// Per-address and server-wide limits, decided as a connection is
    /// accepted, before its request is read (a trusted proxy's connection
    /// moves to its client's place once the request names it, before the
    /// callback): past them the upgrade is refused with `429` or `503` and
    /// `Retry-After`. The place a connection takes is held by its stream
    /// and given back when the stream drops. The limits key on the peer
    /// address, so accept with it: `accept((tcp, peer), &server)` (without
    /// one, the connection is answered `500`).
    #[must_use = "builders are built by value"]
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = Some(admission);
        self
    }

    /// A [`Drain`](crate::rt::drain::Drain) that refuses upgrades with `503`
    /// and `Retry-After` once it has begun, and closes each stream accepted
    /// in a task it [watches](crate::rt::drain::Drain::watch) when that
    /// task's turn comes.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    #[must_use = "builders are built by value"]
    pub fn drain(mut self, drain: &crate::rt::drain::Drain) -> Self {
        self.drain = Some(drain.clone());
        self
    }

    /// The drain this builder's streams answer to.
    #[cfg(feature = "tokio")]
    pub(crate) fn get_drain(&self) -> Option<&crate::rt::drain::Drain> {
        self.drain.as_ref()
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
            admission: self.admission,
            #[cfg(feature = "tokio")]
            drain: self.drain,
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

    /// What to answer `request`: a drain that has begun refuses it (503
    /// with `Retry-After`, when the builder has a drain), else the
    /// callback's options, completed with the builder's subprotocol choice
    /// and headers. The admission limits are not applied here: they key on
    /// the peer's address, which a request alone does not give (the
    /// adapters' `accept` applies them; elsewhere use
    /// [`Admission`](crate::admission::Admission) directly).
    ///
    /// # Errors
    ///
    /// The drain's or the callback's [`Rejection`].
    pub fn answer(&self, request: &RequestView<'_>) -> Result<AcceptOptions, Rejection> {
        self.check_drain()?;
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

    /// The refusal of a drain that has begun, when the builder has one.
    fn check_drain(&self) -> Result<(), Rejection> {
        #[cfg(feature = "tokio")]
        if let Some(drain) = &self.drain {
            drain.check()?;
        }
        Ok(())
    }

    /// The sans-IO handshake an adapter runs for a stream from `peer`, its
    /// deadline counted from `clock()` now. The admission limits take the
    /// connection's place at once, before its request is read (a refusal
    /// is answered without reading it); once the request is whole, a drain
    /// that has begun refuses first, then a trusted proxy's connection
    /// moves to its client's place, then the callback decides.
    pub(crate) fn driver(
        &self,
        clock: fn() -> Instant,
        peer: Option<SocketAddr>,
    ) -> ServerDriver<impl FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection> + '_> {
        let now = clock();
        let admitted = match &self.admission {
            // Limits that key on an address no one gave: the server's
            // setup is at fault, not the client.
            Some(admission) => peer
                .ok_or_else(|| Rejection::new(500))
                .and_then(|peer| Ok(Some(admission.accept_at(peer.ip(), now)?))),
            None => Ok(None),
        };
        let (permit, refusal) = match admitted {
            Ok(permit) => (permit, None),
            Err(refusal) => (None, Some(refusal)),
        };
        let mut driver = ServerDriver::new(
            Arc::clone(&self.config),
            ServerHandshake::with_limits(self.limits),
            now,
            move |request| self.decide(request, clock(), permit),
        );
        if let Some(refusal) = refusal {
            driver.refuse(&refusal);
        }
        driver
    }

    /// Every server's decision on a valid request at `now`: a drain that
    /// has begun refuses first, then the admission limits (the `permit`
    /// taken at accept resolved to its client, or, for a server that did
    /// not see the connection arrive, a place taken now), then
    /// [`answer`](Self::answer).
    pub(crate) fn decide(
        &self,
        request: &RequestView<'_>,
        now: Instant,
        permit: Option<Permit>,
    ) -> Result<AcceptOptions, Rejection> {
        // A drain that has begun refuses before the proxy's permit moves
        // (and `answer` checks again, for its callers outside the adapters).
        self.check_drain()?;
        let permit = match (permit, &self.admission) {
            (Some(mut permit), _) => {
                permit.resolve(request.headers(), now)?;
                Some(permit)
            }
            // No peer address to key on: the server's setup is at fault.
            (None, Some(_)) => return Err(Rejection::new(500)),
            (None, None) => None,
        };
        Ok(self.answer(request)?.hold(permit))
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
    /// [`ConfigError::InvalidUri`] for a URL that is not a WebSocket URI.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
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
        self.config = checked(config)?;
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
    pub(crate) fn driver(&self, now: Instant) -> Result<ClientDriver, crate::Error> {
        ClientDriver::new(&self.request, Arc::clone(&self.config), now)
    }

    /// The extended CONNECT an HTTP/2 adapter sends, and what makes the
    /// connection of its answer.
    #[cfg(feature = "h2")]
    pub(crate) fn extended_connect(
        &self,
    ) -> Result<(crate::handshake::ExtendedConnect, http::Request<()>), crate::Error> {
        crate::handshake::ExtendedConnect::new(&self.request, Arc::clone(&self.config))
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
    /// [`ConfigError::InvalidUri`] for a URL that is not a WebSocket URI.
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError>;
}

impl IntoClientBuilder for &str {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        ClientBuilder::new(self)
    }
}

impl IntoClientBuilder for String {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        ClientBuilder::new(&self)
    }
}

impl IntoClientBuilder for &String {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        ClientBuilder::new(self)
    }
}

impl IntoClientBuilder for ClientRequest {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        Ok(self.into())
    }
}

impl IntoClientBuilder for &ClientRequest {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        Ok(self.clone().into())
    }
}

impl IntoClientBuilder for ClientBuilder {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        Ok(self)
    }
}

impl IntoClientBuilder for &ClientBuilder {
    fn into_client_builder(self) -> Result<ClientBuilder, ConfigError> {
        Ok(self.clone())
    }
}
