//! The tokio adapter (feature `tokio`): a [`Connection`] over any tokio
//! `AsyncRead + AsyncWrite` stream, as a `Stream` of messages and a `Sink`
//! for them ([`WebSocketStream`]), and `connect_async` for `ws://` URLs.
//!
//! A tokio timer is re-armed to [`Connection::poll_timeout`], so keepalive
//! Pings, the idle timeout and the close timeout run without help, and
//! `tokio::time::pause` drives them in tests.
//!
//! ```no_run
//! use rfc6455::Message;
//! use rfc6455::rt::tokio::accept_async;
//!
//! # #[allow(dead_code)]
//! # async fn run() -> Result<(), rfc6455::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = accept_async(tcp).await?;
//!         while let Some(message) = ws.next().await {
//!             if let m @ (Message::Text(_) | Message::Binary(_)) = message? {
//!                 ws.feed(m).await?;
//!             }
//!         }
//!         Ok::<(), rfc6455::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! See [`crate::rt`] for batching and cancel safety.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::handshake::{
    AcceptOptions, Accepted, ClientRequest, Rejection, RequestView, ServerHandshake,
};
use crate::rt::{Runtime, sealed};
use crate::{Config, Connection, Error};

/// The tokio [`Runtime`]: tokio's `AsyncRead + AsyncWrite` and its timer
/// (so `tokio::time::pause` drives the WebSocket's timers in tests).
#[derive(Copy, Clone, Debug)]
pub struct Tokio;

/// A WebSocket over a tokio byte stream (see [`crate::rt::WebSocketStream`]).
pub type WebSocketStream<S> = crate::rt::WebSocketStream<S, Tokio>;
/// The receiving half of a split [`WebSocketStream`].
pub type ReadHalf<S> = crate::rt::ReadHalf<S, Tokio>;
/// The sending half of a split [`WebSocketStream`].
pub type WriteHalf<S> = crate::rt::WriteHalf<S, Tokio>;

impl sealed::Sealed for Tokio {}

impl<S: AsyncRead + AsyncWrite + Unpin> Runtime<S> for Tokio {
    type Timer = Pin<Box<tokio::time::Sleep>>;

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(at: Instant) -> Self::Timer {
        Box::pin(tokio::time::sleep_until(at.into()))
    }

    fn reset(timer: &mut Self::Timer, at: Instant) {
        timer.as_mut().reset(at.into());
    }

    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.as_mut().poll(cx)
    }

    fn poll_read(
        stream: &mut S,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>> {
        Self::poll_read_buf(stream, cx, conn.read_buf())
    }

    fn poll_read_buf(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
    }

    super::forward_writes!(poll_shutdown);
}

/// Connects to a `ws://` URL over TCP (with `TCP_NODELAY`) and runs the
/// client handshake. For `wss://`, connect a TLS stream (e.g. with
/// tokio-rustls) and use [`client_async`].
///
/// # Errors
///
/// [`Error::Build`] for a bad URL, [`Error::TlsRequired`] for `wss://`,
/// [`Error::Io`] from connecting, [`Error::Handshake`] if the server refused.
pub async fn connect_async(url: &str) -> Result<(WebSocketStream<TcpStream>, Accepted), Error> {
    connect_async_with(&ClientRequest::new(url)?, Config::default()).await
}

/// [`connect_async`] with a prepared request and a [`Config`].
///
/// # Errors
///
/// As [`connect_async`].
pub async fn connect_async_with(
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocketStream<TcpStream>, Accepted), Error> {
    if request.is_secure() {
        return Err(Error::TlsRequired);
    }
    let stream = TcpStream::connect((request.host(), request.port())).await?;
    stream.set_nodelay(true)?;
    client_async_with(stream, request, config).await
}

/// Runs the client handshake over a connected stream.
///
/// # Errors
///
/// [`Error::Build`] for an invalid request, [`Error::Io`] from the stream,
/// [`Error::Handshake`] if the response is not an acceptable 101,
/// [`Error::HandshakeTimeout`] past the request's
/// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout).
pub async fn client_async<S>(
    stream: S,
    request: &ClientRequest,
) -> Result<(WebSocketStream<S>, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client_async_with(stream, request, Config::default()).await
}

/// [`client_async`] with a [`Config`].
///
/// # Errors
///
/// As [`client_async`].
pub async fn client_async_with<S>(
    stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocketStream<S>, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::client(stream, request, config).await
}

/// Runs the server handshake, accepting any valid request with default
/// options and answering an invalid one with the right status.
///
/// # Errors
///
/// [`Error::Handshake`] for an invalid request (after the error response was
/// written), [`Error::Io`] from the stream, [`Error::HandshakeTimeout`] when
/// the request did not arrive within
/// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout)
/// (10 seconds unless the [`ServerHandshake`] says otherwise).
pub async fn accept_async<S>(stream: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_hdr_async(stream, |_| Ok(AcceptOptions::new())).await
}

/// Runs the server handshake, letting `callback` inspect a valid request
/// and accept it (with options) or reject it.
///
/// # Errors
///
/// As [`accept_async`], and [`Error::Rejected`] when `callback` rejected.
pub async fn accept_hdr_async<S, F>(stream: S, callback: F) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    accept_hdr_async_with(stream, Config::default(), ServerHandshake::new(), callback).await
}

/// [`accept_hdr_async`] with a [`Config`] and a [`ServerHandshake`]
/// carrying the header limits.
///
/// # Errors
///
/// As [`accept_hdr_async`].
pub async fn accept_hdr_async_with<S, F>(
    stream: S,
    config: Config,
    parser: ServerHandshake,
    callback: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    WebSocketStream::accept_with(stream, config, parser, callback).await
}
