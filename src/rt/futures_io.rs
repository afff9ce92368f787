//! The async adapter over `futures_io::AsyncRead + AsyncWrite` (feature
//! `futures-io`): smol, async-std, or tokio through `tokio_util::compat`.
//! The keepalive, idle and close timers are `futures-timer`'s, which need
//! no runtime, so no executor is assumed.
//!
//! ```no_run
//! use rfc6455::{Message, ServerBuilder};
//! use rfc6455::rt::futures_io::WebSocketStream;
//!
//! # fn main() -> Result<(), rfc6455::Error> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (tcp, _) = listener.accept().await?;
//!         smol::spawn(async move {
//!             let mut ws = WebSocketStream::accept(tcp, &ServerBuilder::new()).await?;
//!             while let Some(message) = ws.next().await {
//!                 if let m @ (Message::Text(_) | Message::Binary(_)) = message? {
//!                     ws.feed(m).await?;
//!                 }
//!             }
//!             Ok::<(), rfc6455::Error>(())
//!         })
//!         .detach();
//!     }
//! })
//! # }
//! ```
//!
//! The handshakes are [`WebSocketStream::accept`],
//! [`client`](crate::rt::WebSocketStream::client) and
//! [`new`](crate::rt::WebSocketStream::new). See [`crate::rt`] for
//! batching and cancel safety.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
use futures_timer::Delay;

use crate::Connection;
use crate::rt::Runtime;

/// The futures-io [`Runtime`]: `futures_io`'s `AsyncRead + AsyncWrite` and
/// `futures-timer`'s timer (the system clock).
#[derive(Copy, Clone, Debug)]
pub struct FuturesIo;

/// A WebSocket over a futures-io byte stream (see [`crate::rt::WebSocketStream`]).
pub type WebSocketStream<S> = crate::rt::WebSocketStream<S, FuturesIo>;
/// The receiving half of a split [`WebSocketStream`].
pub type ReadHalf<S> = crate::rt::ReadHalf<S, FuturesIo>;
/// The sending half of a split [`WebSocketStream`].
pub type WriteHalf<S> = crate::rt::WriteHalf<S, FuturesIo>;

/// A read's poll as a result (`Err(None)`: pending), for the core's readers
/// into initialised memory, and back.
fn read_with(
    read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
) -> impl FnOnce(&mut [u8]) -> Result<usize, Option<io::Error>> {
    |buf| match read(buf) {
        Poll::Ready(result) => result.map_err(Some),
        Poll::Pending => Err(None),
    }
}

fn as_poll(result: Result<usize, Option<io::Error>>) -> Poll<io::Result<usize>> {
    match result {
        Ok(read) => Poll::Ready(Ok(read)),
        Err(Some(error)) => Poll::Ready(Err(error)),
        Err(None) => Poll::Pending,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Runtime<S> for FuturesIo {
    type Timer = Delay;

    fn now() -> Instant {
        Instant::now()
    }

    fn timer(at: Instant) -> Delay {
        Delay::new(at.saturating_duration_since(Instant::now()))
    }

    fn reset(timer: &mut Delay, at: Instant) {
        timer.reset(at.saturating_duration_since(Instant::now()));
    }

    fn poll_timer(timer: &mut Delay, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(timer).poll(cx)
    }

    fn poll_read(
        stream: &mut S,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>> {
        as_poll(conn.read_into(read_with(|buf| Pin::new(stream).poll_read(cx, buf))))
    }

    fn poll_read_slice(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(stream).poll_read(cx, buf)
    }

    fn poll_read_buf(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let read = read_with(|buf| Pin::new(stream).poll_read(cx, buf));
        as_poll(crate::conn::read_zeroed(buf, usize::MAX, read))
    }

    super::forward_writes!(poll_close);
}
