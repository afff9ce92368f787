//! axum 0.8 (feature `axum`, on `axum-core`): [`WebSocketUpgrade`], the
//! extractor axum users know, answering with this crate's handshake and
//! handing over a [`WebSocket`].
//!
//! ```no_run
//! use axum::Router;
//! use axum::response::Response;
//! use axum::routing::any;
//! use rfc6455::rt::axum::{WebSocket, WebSocketUpgrade};
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> Response {
//!     upgrade
//!         .protocols(["chat"])
//!         .on_failed_upgrade(|error| eprintln!("upgrade failed: {error}"))
//!         .on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Some(Ok(message)) = ws.next().await {
//!         if ws.send(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # #[allow(dead_code)]
//! # async fn run() -> std::io::Result<()> {
//! // `any`, not `get`: over HTTP/2 the upgrade is a CONNECT.
//! let app: Router = Router::new().route("/ws", any(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! HTTP/2 extended CONNECT (RFC 8441) is answered as well when the server
//! enables it (`http2().enable_connect_protocol()` on hyper-util's
//! builder); the route must then accept `CONNECT`, as `any` does.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::Request;
use http::request::Parts;
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;

use crate::builder::{AcceptAll, ServerBuilder};
use crate::config::Config;
use crate::error::Error;
use crate::handshake::http::Rejected;
use crate::handshake::{AcceptOptions, HandshakeError, Rejection, RequestView};
use crate::rt::hyper::{Upgrade, answer, extended_connect};

pub use crate::rt::hyper::WebSocket;

/// An extractor for a WebSocket upgrade request: validated when extracted
/// (a bad request is answered with 400, 405 or 426 and the headers each
/// needs, before the handler runs), accepted by
/// [`on_upgrade`](Self::on_upgrade). See the [module docs](self).
///
/// Its subprotocols, config and request callback come from a whole
/// [`ServerBuilder`] ([`server`](Self::server)), or from the shortcuts
/// [`protocols`](Self::protocols) and [`config`](Self::config).
#[must_use = "answer with on_upgrade"]
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade, G = AcceptAll> {
    /// The request's method, URI, version, headers and `:protocol`.
    request: Request<()>,
    on: OnUpgrade,
    server: ServerBuilder<G>,
    on_failed: F,
}

impl<F, G> fmt::Debug for WebSocketUpgrade<F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// What a [`WebSocketUpgrade`] does when the connection cannot be handed
/// over after the response: nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnFailedUpgrade;

/// A callback for a failed upgrade ([`WebSocketUpgrade::on_failed_upgrade`]).
pub trait OnFailedUpgrade: Send + 'static {
    /// Called with the reason.
    fn call(self, error: Error);
}

impl<G: FnOnce(Error) + Send + 'static> OnFailedUpgrade for G {
    fn call(self, error: Error) {
        self(error);
    }
}

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _: Error) {}
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let mut request = Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = parts.headers.clone();
        if let Some(protocol) = parts.extensions.get::<Protocol>() {
            request.extensions_mut().insert(protocol.clone());
        }
        let valid = match extended_connect(&request) {
            Some(protocol) => RequestView::from_extended_connect(&request, protocol).map(drop),
            None => RequestView::from_http(&request).map(drop),
        };
        valid.map_err(|error| refusal(Rejected::Invalid(error)))?;
        // hyper puts the handle there for a connection it can upgrade.
        let on = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refusal(Rejected::Invalid(HandshakeError::NotWebSocketUpgrade)))?;
        Ok(Self {
            request,
            on,
            server: ServerBuilder::new(),
            on_failed: DefaultOnFailedUpgrade,
        })
    }
}

fn refusal(refused: Rejected) -> Response {
    refused.into_response().map(Body::from)
}

impl<F: OnFailedUpgrade, G> WebSocketUpgrade<F, G>
where
    G: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    /// Answers as `server` says: its config, limits' headers, subprotocols
    /// and request callback (whose [`AcceptOptions::data`] the WebSocket's
    /// [`take_data`](crate::rt::WebSocketStream::take_data) hands back).
    /// It replaces what [`protocols`](Self::protocols) and
    /// [`config`](Self::config) set.
    pub fn server<H>(self, server: ServerBuilder<H>) -> WebSocketUpgrade<F, H>
    where
        H: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        WebSocketUpgrade {
            request: self.request,
            on: self.on,
            server,
            on_failed: self.on_failed,
        }
    }

    /// The subprotocol the server's list would choose from those the
    /// client offered ([`ServerBuilder::choose_protocol`]); a request
    /// callback may still choose another.
    #[must_use]
    pub fn selected_protocol(&self) -> Option<&str> {
        let view = match extended_connect(&self.request) {
            Some(protocol) => RequestView::from_extended_connect(&self.request, protocol),
            None => RequestView::from_http(&self.request),
        };
        self.server.choose_protocol(&view.ok()?)
    }

    /// The subprotocols this server speaks, in its order of preference: the
    /// first one the client also offered is chosen
    /// ([`ServerBuilder::protocols`]).
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.server = self.server.protocols(protocols);
        self
    }

    /// The connection's [`Config`]: limits, timeouts, permessage-deflate.
    /// One that cannot work ([`Config::validate`]) makes
    /// [`on_upgrade`](Self::on_upgrade) answer `500`.
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.server = self.server.config_unchecked(config.into());
        self
    }

    /// Calls `callback` if the connection cannot be handed over after the
    /// response was sent (the client went away).
    pub fn on_failed_upgrade<H: OnFailedUpgrade>(self, callback: H) -> WebSocketUpgrade<H, G> {
        WebSocketUpgrade {
            request: self.request,
            on: self.on,
            server: self.server,
            on_failed: callback,
        }
    }

    /// Accepts: the response to return from the handler (`101`, or `200`
    /// over HTTP/2), and a spawned task that runs `callback` on the
    /// WebSocket once hyper has handed the connection over. A refusal
    /// (a configuration that cannot work) is its own response instead.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (response, conn) = match answer(&self.request, &self.server) {
            Ok(accepted) => accepted,
            Err(refused) => return refusal(refused),
        };
        let upgrade = Upgrade::new(self.on, conn);
        let on_failed = self.on_failed;
        let drain = self.server.get_drain().cloned();
        let task = {
            let drain = drain.clone();
            async move {
                match upgrade.await {
                    Ok(mut ws) => {
                        if let Some(drain) = &drain {
                            drain.attach(&mut ws);
                        }
                        callback(ws).await;
                    }
                    Err(error) => on_failed.call(error),
                }
            }
        };
        // A builder's drain watches the connection's task and closes it.
        match drain {
            Some(drain) => drop(tokio::spawn(drain.watch(task))),
            None => drop(tokio::spawn(task)),
        }
        response.map(|()| Body::empty())
    }
}

/// A handler may return a [`Rejection`] (`401` with `WWW-Authenticate`,
/// say) as its response.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        refusal(Rejected::Callback(self))
    }
}

/// A handler may return a [`Rejected`] (from [`crate::handshake::http::upgrade`]).
impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        refusal(self)
    }
}
