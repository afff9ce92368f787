//! What every adapter does with its transport, written once: where a
//! client connects, how queued bytes are written out (how many buffers a
//! vectored write passes, when a plain write is used instead), what a
//! read's result means for the connection (end of input, a timeout, an
//! error), and how a handshake's outcome is reported.
//!
//! The loops are poll-shaped so the blocking adapter (which answers
//! `Ready` at once) and the async adapters share them.

use std::io::{self, IoSlice};
use std::ops::ControlFlow;
use std::task::{Poll, ready};
use std::time::Instant;

use bytes::Buf;

use crate::builder::ClientBuilder;
use crate::handshake::driver_seal::Advance;
use crate::{CloseCode, Connection, Error, Message, SendError};

/// Where a client's `connect` goes: the host and port of its URL, once it
/// is known that the build can speak its scheme (`wss://` needs a `rustls`
/// feature).
pub(crate) fn connect_target(client: &ClientBuilder) -> Result<(&str, u16), Error> {
    let request = client.request();
    if request.is_secure() && cfg!(not(feature = "rustls")) {
        return Err(Error::TlsRequired);
    }
    Ok((request.host(), request.port()))
}

/// A handshake's outcome on its way to the caller, reported to the
/// `metrics` facade (feature `metrics`) by the role that ran it.
pub(crate) fn handshake_done<H: Advance>(result: Result<H::Done, Error>) -> Result<H::Done, Error> {
    #[cfg(feature = "metrics")]
    crate::metrics::handshake(H::ROLE, &result);
    result
}

/// Queues this end's Close to start a close handshake; one sent already
/// (the handshake resumed, or the connection closed it) is no error.
pub(crate) fn start_close(
    conn: &mut Connection,
    code: CloseCode,
    reason: &str,
) -> Result<(), Error> {
    match conn.close(code, reason) {
        Ok(()) | Err(SendError::Closed) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What a close handshake makes of the next read (`None`: the stream
/// ended). Messages that arrive meanwhile are dropped; a peer that hangs up
/// instead of answering has been closed too; any other error ends it.
pub(crate) fn close_step(next: Option<Result<Message, Error>>) -> ControlFlow<Result<(), Error>> {
    match next {
        None => ControlFlow::Break(Ok(())),
        Some(Ok(_)) => ControlFlow::Continue(()),
        Some(Err(Error::Protocol(error))) if error.is_peer_gone() => ControlFlow::Continue(()),
        Some(Err(error)) => ControlFlow::Break(Err(error)),
    }
}

/// How many buffers one vectored write passes: a hub subscriber's writer
/// finds up to two batches of 64 shared frames behind it (the hub's pace),
/// and one call writes them all (benches/echo `fanout.sh unpaced`, 1 000 ×
/// 1 KiB; Linux takes up to 1 024).
const MAX_IOVECS: usize = 128;

/// A single buffer shorter than this is written with a plain write, one this
/// long or longer with the vectored call. Below it a socket's `send` saves
/// the work `writev` does per call; above it that saving is nothing beside
/// the copy, and a partial write matters more: tokio's `poll_write` takes
/// one as a full socket and waits for the next readiness event, while the
/// vectored call writes again at once as the peer drains the socket.
/// Guarded by the `tests/tokio.rs` write-call tests and `benches/echo`.
const SINGLE_WRITE_MAX: usize = 64 * 1024;

/// One write call an adapter makes.
#[derive(Debug)]
pub(crate) enum WriteCall<'a> {
    /// `write` / `poll_write` with this buffer.
    Plain(&'a [u8]),
    /// `write_vectored` / `poll_write_vectored` with these buffers.
    Vectored(&'a [IoSlice<'a>]),
}

/// Writes all of `buf` through `write`, one call at a time, retrying
/// `Interrupted`. `Ready(Ok(()))` once it is empty.
pub(crate) fn poll_write_buf(
    buf: &mut impl Buf,
    mut write: impl FnMut(WriteCall<'_>) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<()>> {
    while buf.has_remaining() {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = buf.chunks_vectored(&mut slices);
        let slices = slices.get(..count).unwrap_or_default();
        let call = match slices {
            [one] if one.len() < SINGLE_WRITE_MAX => WriteCall::Plain(one),
            _ => WriteCall::Vectored(slices),
        };
        match ready!(write(call)) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(written) => buf.advance(written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

/// Writes everything the connection has queued (Pongs waiting for the
/// backlog to drain included), without flushing.
pub(crate) fn poll_write_out(
    conn: &mut Connection,
    mut write: impl FnMut(WriteCall<'_>) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<()>> {
    while conn.wants_write() {
        ready!(poll_write_buf(conn.outgoing(), &mut write))?;
    }
    Poll::Ready(Ok(()))
}

/// Tells the connection what a read into it returned, at `now`: 0 bytes (or
/// a TLS stream's `UnexpectedEof`, a TCP close without close_notify, which
/// the close handshake already guards against) is the end of input; a
/// read that timed out (`WouldBlock`, `TimedOut`) still lets the timers
/// run, and is returned. `Interrupted` is the caller's to retry.
pub(crate) fn after_read(
    conn: &mut Connection,
    result: io::Result<usize>,
    now: Instant,
) -> io::Result<()> {
    let outcome = match result {
        Ok(0) => {
            conn.receive_eof();
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            conn.receive_eof();
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(e)
        }
        Err(e) => return Err(e),
    };
    if conn.wants_clock() {
        conn.handle_timeout(now);
    }
    outcome
}

/// A client's transport as `connect` opens it: TCP for `ws://`, TLS over
/// TCP for `wss://`. One enum for every adapter; each names its streams
/// (`blocking::MaybeTlsStream`, `rt::tokio::MaybeTlsStream`), and reads and
/// writes go to whichever is inside, in the I/O model both speak.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<P, T> {
    /// A `ws://` connection.
    Plain(P),
    /// A `wss://` connection (feature `rustls`; without it, `T` is
    /// [`NoTls`] and this variant has no values).
    Rustls(T),
}

/// The TLS stream of a build without a `rustls` feature: there is none, so
/// no value of this type exists.
#[derive(Debug)]
pub enum NoTls {}

/// Forwards a call to whichever stream is inside.
macro_rules! either {
    ($value:expr, $s:ident => $e:expr) => {
        match $value {
            MaybeTls::Plain($s) => $e,
            MaybeTls::Rustls($s) => $e,
        }
    };
}

impl<P: io::Read, T: io::Read> io::Read for MaybeTls<P, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        either!(self, s => s.read(buf))
    }
}

impl<P: io::Write, T: io::Write> io::Write for MaybeTls<P, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        either!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        either!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        either!(self, s => s.flush())
    }
}

impl io::Read for NoTls {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

impl io::Write for NoTls {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}

#[cfg(feature = "tokio")]
mod tokio_io {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::{MaybeTls, NoTls};

    impl<P, T> AsyncRead for MaybeTls<P, T>
    where
        P: AsyncRead + Unpin,
        T: AsyncRead + Unpin,
    {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
        }
    }

    impl<P, T> AsyncWrite for MaybeTls<P, T>
    where
        P: AsyncWrite + Unpin,
        T: AsyncWrite + Unpin,
    {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            either!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            either!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
        }

        fn is_write_vectored(&self) -> bool {
            either!(self, s => s.is_write_vectored())
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
        }
    }

    impl AsyncRead for NoTls {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match *self {}
        }
    }

    impl AsyncWrite for NoTls {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match *self {}
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
    }
}
