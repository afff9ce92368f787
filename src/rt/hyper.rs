//! hyper 1 (feature `hyper`): a request a hyper server already read
//! becomes a [`WebSocketStream`](crate::rt::WebSocketStream), over HTTP/1.1 `Upgrade` or HTTP/2
//! extended CONNECT (RFC 8441; hyper's server offers it after
//! `http2::Builder::enable_connect_protocol`).
//!
//! [`upgrade`] validates the request, runs the [`ServerBuilder`]'s
//! callback, subprotocol choice and permessage-deflate negotiation, and
//! returns the response to send (`101`, or `200` on HTTP/2) with an
//! [`Upgrade`] that resolves to the WebSocket once hyper has sent it. Bytes
//! the client sent after its request (a first frame in the same packet)
//! are kept by hyper's upgraded stream and read first.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming};
//! use rfc6455::ServerBuilder;
//! use rfc6455::rt::hyper::upgrade;
//!
//! # #[allow(dead_code)]
//! async fn handle(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
//!     let server = ServerBuilder::new().protocols(["chat"]);
//!     let (response, upgrade) = match upgrade(&mut request, &server) {
//!         Ok(accepted) => accepted,
//!         Err(refused) => return Ok(refused.into_response().map(Full::new)),
//!     };
//!     tokio::spawn(async move {
//!         let Ok(mut ws) = upgrade.await else { return };
//!         while let Some(Ok(message)) = ws.next().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//!     Ok(response.map(|()| Full::default()))
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Method, Request, Response};
use hyper::ext::Protocol;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::builder::ServerBuilder;
use crate::conn::Connection;
use crate::error::Error;
use crate::handshake::http::{Rejected, upgrade_extended_connect};
use crate::handshake::{AcceptOptions, Rejection, RequestView};

/// The WebSocket over a hyper upgraded stream.
pub type WebSocket = crate::rt::tokio::WebSocketStream<TokioIo<Upgraded>>;

/// Answers an upgrade request, HTTP/1.1 or HTTP/2 extended CONNECT, as
/// `server` says; takes hyper's upgrade handle out of `request`.
///
/// # Errors
///
/// [`Rejected`]: an invalid request (400, 405, 426 with the headers each
/// needs), the callback's refusal, or a configuration that cannot work;
/// [`Rejected::into_response`] is the answer to send.
pub fn upgrade<B, F>(
    request: &mut Request<B>,
    server: &ServerBuilder<F>,
) -> Result<(Response<()>, Upgrade), Rejected>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    let (response, conn) = answer(request, server)?;
    let on = hyper::upgrade::on(request);
    Ok((response, Upgrade::new(on, conn)))
}

/// The response and connection for `request`: RFC 8441 when it is an
/// extended CONNECT, RFC 6455 otherwise.
pub(crate) fn answer<B, F>(
    request: &Request<B>,
    server: &ServerBuilder<F>,
) -> Result<(Response<()>, Connection), Rejected>
where
    F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    match extended_connect(request) {
        Some(protocol) => upgrade_extended_connect(request, protocol, server),
        None => crate::handshake::http::upgrade(request, server),
    }
}

/// The `:protocol` of an HTTP/2 extended CONNECT (hyper reports it as
/// [`Protocol`]); `None` for any other request.
pub(crate) fn extended_connect<B>(request: &Request<B>) -> Option<&str> {
    let protocol = request.extensions().get::<Protocol>()?;
    (request.method() == Method::CONNECT).then(|| protocol.as_str())
}

/// Resolves to the [`WebSocket`] once hyper has sent the response and
/// handed over the connection (from [`upgrade`]).
#[must_use = "futures do nothing unless polled; spawn it"]
pub struct Upgrade {
    on: OnUpgrade,
    conn: Option<Connection>,
}

impl Upgrade {
    pub(crate) fn new(on: OnUpgrade, conn: Connection) -> Self {
        Self {
            on,
            conn: Some(conn),
        }
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade").finish_non_exhaustive()
    }
}

impl Future for Upgrade {
    type Output = Result<WebSocket, Error>;

    /// # Errors
    ///
    /// [`Error::Io`] when hyper could not hand the connection over (the
    /// client went away, or the response was not sent).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on).poll(cx)).map_err(io::Error::other)?;
        let conn = self
            .conn
            .take()
            .ok_or_else(|| io::Error::other("the upgrade was already taken"))?;
        Poll::Ready(Ok(WebSocket::new(TokioIo::new(upgraded), conn)))
    }
}
