//! The tokio adapter (feature `tokio`): a [`Connection`](crate::Connection) over any tokio
//! `AsyncRead + AsyncWrite` stream, as a `Stream` of messages and a `Sink`
//! for them ([`WebSocketStream`]), and `connect_async` for `ws://` URLs.
//!
//! A tokio timer is re-armed to [`Connection::poll_timeout`](crate::Connection::poll_timeout), so keepalive
//! Pings, the idle timeout and the close timeout run without help, and
//! `tokio::time::pause` drives them in tests.
//!
//! ```no_run
//! use rfc6455::{Message, ServerBuilder};
//! use rfc6455::rt::tokio::WebSocketStream;
//!
//! # #[allow(dead_code)]
//! # async fn run() -> Result<(), rfc6455::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let server = ServerBuilder::new();
//!     tokio::spawn(async move {
//!         let mut ws = WebSocketStream::accept(tcp, &server).await?;
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
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::Error;
use crate::builder::IntoClientBuilder;
use crate::handshake::Accepted;
use crate::rt::Runtime;
use crate::transport::MaybeTls;

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

    fn poll_read_slice(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = tokio::io::ReadBuf::new(buf);
        ready!(Pin::new(stream).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }

    fn poll_read_buf(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
    }

    super::forward_writes!(poll_shutdown);

    /// tokio counts every ready I/O poll against the polling task's budget
    /// (128 per turn) and refuses the rest: a hub's publisher writing to
    /// 10 000 subscribers in one call would reach only the first 128.
    fn unbudgeted(f: impl FnOnce()) {
        let mut f = Some(f);
        let once = tokio::task::coop::unconstrained(std::future::poll_fn(|_| {
            if let Some(f) = f.take() {
                f();
            }
            Poll::Ready(())
        }));
        // Ready at the first poll: the closure runs within it.
        let _ = std::pin::pin!(once).poll(&mut Context::from_waker(std::task::Waker::noop()));
    }
}

impl WebSocketStream<MaybeTlsStream> {
    /// Connects over TCP (with `TCP_NODELAY`), then TLS for `wss://`
    /// (feature `rustls`), and runs the client handshake; `client` is a URL
    /// or a [`ClientBuilder`](crate::ClientBuilder).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad URL, [`Error::TlsRequired`] for `wss://`
    /// without the `rustls` feature, [`Error::Io`] from connecting or from
    /// TLS (a refused certificate is an `InvalidData` I/O error carrying
    /// rustls's error), [`Error::Handshake`] if the server refused,
    /// [`Error::HandshakeTimeout`] past the request's deadline.
    pub async fn connect(client: impl IntoClientBuilder) -> Result<(Self, Accepted), Error> {
        let client = client.into_client_builder()?;
        let tcp = TcpStream::connect(crate::transport::connect_target(&client)?).await?;
        tcp.set_nodelay(true)?;
        let stream = if client.request().is_secure() {
            tls(tcp, &client).await?
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        Self::client(stream, &client).await
    }
}

#[cfg(feature = "rustls")]
async fn tls(tcp: TcpStream, client: &crate::ClientBuilder) -> Result<MaybeTlsStream, Error> {
    let (config, name) = crate::tls::for_client(client)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = connector.connect(name, tcp).await?;
    Ok(MaybeTlsStream::Rustls(Box::new(stream)))
}

#[cfg(not(feature = "rustls"))]
async fn tls(_: TcpStream, _: &crate::ClientBuilder) -> Result<MaybeTlsStream, Error> {
    Err(Error::TlsRequired)
}

/// The stream [`WebSocketStream::connect`] opens: TCP, or TLS over TCP for
/// `wss://` (feature `rustls`).
pub type MaybeTlsStream = MaybeTls<TcpStream, TlsStream>;

/// The TLS stream of a `wss://` connection.
#[cfg(feature = "rustls")]
type TlsStream = Box<tokio_rustls::client::TlsStream<TcpStream>>;
#[cfg(not(feature = "rustls"))]
type TlsStream = crate::connection::NoTls;

impl MaybeTlsStream {
    /// The TCP stream underneath (for socket options and addresses).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.get_ref().0,
            #[cfg(not(feature = "rustls"))]
            Self::Rustls(never) => match *never {},
        }
    }
}

/// Connects to a `ws://` (or, with the `rustls` feature, `wss://`) URL and
/// runs the client handshake: [`WebSocketStream::connect`] by
/// tokio-tungstenite's name. `client` is a URL, a
/// [`ClientRequest`](crate::handshake::ClientRequest) or a
/// [`ClientBuilder`](crate::ClientBuilder).
///
/// # Errors
///
/// As [`WebSocketStream::connect`].
pub async fn connect_async(
    client: impl IntoClientBuilder,
) -> Result<(WebSocketStream<MaybeTlsStream>, Accepted), Error> {
    WebSocketStream::connect(client).await
}
