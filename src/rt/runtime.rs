//! The runtime an async WebSocket runs on: its I/O traits and its timer.

use std::fmt;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;

use crate::Connection;
use crate::transport::WriteCall;

/// A runtime the async WebSocket runs on, for byte streams of type `S`: its
/// clock and timer, and its I/O traits. The adapters implement it
/// ([`Tokio`](crate::rt::tokio::Tokio), [`FuturesIo`](crate::rt::futures_io::FuturesIo));
/// another executor or stream kind implements it the same way, and
/// [`WebSocketStream<S, R>`](crate::rt::WebSocketStream) then runs on it.
///
/// Every method is a thin forward: a read, write, flush or shutdown of the
/// stream's own trait, or the timer's. The WebSocket decides when to call
/// them.
pub trait Runtime<S>: Sized {
    /// A timer that can be moved to a new deadline.
    type Timer: Unpin + Send + fmt::Debug;

    /// The time by the timer's clock (a paused test clock, say).
    fn now() -> Instant;

    /// A timer that fires at `at`.
    fn timer(at: Instant) -> Self::Timer;

    /// Moves `timer` to fire at `at`.
    fn reset(timer: &mut Self::Timer, at: Instant);

    /// `Ready` once `timer`'s deadline has passed; `Pending` (with the task
    /// woken at the deadline) before.
    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()>;

    /// Reads once into the connection's input buffer
    /// ([`Connection::read_buf`]); the number of bytes read, 0 at EOF.
    fn poll_read(
        stream: &mut S,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>> {
        Self::poll_read_buf(stream, cx, conn.read_buf())
    }

    /// Reads once into `buf`; the number of bytes read, 0 at EOF.
    fn poll_read_slice(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;

    /// Reads once into the spare capacity of `buf`, advancing its length;
    /// the number of bytes read, 0 at EOF.
    fn poll_read_buf(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;

    /// Writes from `buf` once; the number of bytes written.
    fn poll_write(stream: &mut S, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from `bufs` once, in order; the number of bytes written.
    fn poll_write_vectored(
        stream: &mut S,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Flushes what the stream buffers.
    fn poll_flush(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts the stream's write side down (a TCP FIN, a TLS close_notify).
    fn poll_shutdown(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Runs `f` outside the calling task's I/O budget, where the runtime
    /// keeps one: a [`DirectWriter`](super::DirectWriter) writes to other
    /// tasks' streams, and a publisher reaching thousands of them in one
    /// call must not find the later ones refused for its own task's
    /// budget. Runs `f` as it is, by default.
    fn unbudgeted(f: impl FnOnce()) {
        f();
    }
}

/// The four writing methods of a [`Runtime`] impl, forwarded to the
/// stream's own trait (whose shutdown method is `$shutdown`).
macro_rules! forward_writes {
    ($shutdown:ident) => {
        fn poll_write(stream: &mut S, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(stream).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            stream: &mut S,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(stream).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(stream).poll_flush(cx)
        }

        fn poll_shutdown(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(stream).$shutdown(cx)
        }
    };
}
pub(crate) use forward_writes;

/// One write call through the runtime.
pub(super) fn write_call<S, R: Runtime<S>>(
    stream: &mut S,
    cx: &mut Context<'_>,
    call: WriteCall<'_>,
) -> Poll<io::Result<usize>> {
    match call {
        WriteCall::Plain(buf) => R::poll_write(stream, cx, buf),
        WriteCall::Vectored(bufs) => R::poll_write_vectored(stream, cx, bufs),
    }
}
