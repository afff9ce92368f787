//! The poll loop under every async adapter: moves bytes between a stream
//! and its [`Connection`], runs the timer, and ends the transport.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use super::runtime::{Runtime, write_call};
use crate::prepared::Outbound;
use crate::transport;
use crate::{CloseCode, Connection, Error, Message};

/// Something outside a connection that may ask it to close: a drain, an
/// operator's kick. A stream given one with
/// [`WebSocketStream::set_close_signal`](super::WebSocketStream::set_close_signal)
/// asks it on every poll for messages; once it answers, the stream sends
/// that Close (if it is still open) and reads on to the end of the close
/// handshake. Whoever asks must also wake the task that polls the stream.
///
/// `rfc6455::rt::drain::Drain` is built on this and nothing else
/// (`tests/seams.rs` builds a drain of its own the same way).
pub trait CloseSignal: Send + Sync + fmt::Debug {
    /// The Close to send, once one is asked for.
    fn close_request(&self) -> Option<(CloseCode, &str)>;

    /// The stream ended (its transport shut down); `clean` when its close
    /// handshake completed.
    fn ended(&self, clean: bool) {
        let _ = clean;
    }

    /// Whether the stream is asked to be handed over to another process,
    /// taking the request: asked when the stream is open, between
    /// messages, and could be [frozen](crate::Connection::can_freeze); a
    /// `true` makes the poll for messages return
    /// [`Error::HandoffRequested`] once. Never, by default.
    fn take_handoff_request(&self) -> bool {
        false
    }
}

/// The most read at once into the stack while the connection's input
/// buffer is given back (a small message in one read).
const PROBE_READ: usize = 1024;

/// How far a stream is from its end.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum End {
    /// Messages flow, or the close goes on.
    Live,
    /// The transport's write side was shut: the close lingers, reading (and
    /// discarding) until the peer's end or the close timeout.
    Lingering,
    /// The stream ended (its error, if any, returned): every poll is `None`.
    Ended,
}

/// The connection, its stream and its timer: the whole adapter.
pub(crate) struct Driver<S, R: Runtime<S>> {
    pub(crate) conn: Connection,
    pub(crate) stream: S,
    timer: Option<R::Timer>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
    /// How far the stream is from its end.
    end: End,
    /// A write failed: output is dropped, and what already arrived is still
    /// read and delivered before this is reported.
    write_error: Option<io::Error>,
    /// What has been reported to the `metrics` facade.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ConnectionMetrics,
    /// What may ask this stream to close from outside (a drain).
    pub(crate) close_signal: Option<Arc<dyn CloseSignal>>,
    runtime: PhantomData<fn() -> R>,
}

impl<S: fmt::Debug, R: Runtime<S>> fmt::Debug for Driver<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("conn", &self.conn)
            .field("stream", &self.stream)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl<S, R: Runtime<S>> Driver<S, R> {
    pub(crate) fn new(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(R::now());
        Self {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ConnectionMetrics::new(conn.role()),
            conn,
            stream,
            timer: None,
            armed: None,
            end: End::Live,
            write_error: None,
            close_signal: None,
            runtime: PhantomData,
        }
    }

    /// Writes everything queued (vectored), without flushing the stream.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = &mut self.stream;
        transport::poll_write_out(&mut self.conn, |call| write_call::<S, R>(stream, cx, call))
    }

    /// Writes everything queued and flushes the stream, no timers.
    pub(crate) fn poll_flush_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        R::poll_flush(&mut self.stream, cx)
    }

    /// Whether messages still flow: no write failed, the transport is not shut.
    pub(crate) fn is_live(&self) -> bool {
        self.end == End::Live && self.write_error.is_none()
    }

    /// A write failed: output is dropped, and what already arrived is still
    /// read and delivered before the error is reported.
    pub(crate) fn write_failed(&mut self, error: io::Error) {
        self.conn.discard_output();
        self.write_error.get_or_insert(error);
    }

    /// Writes everything queued and flushes, with the timers running while
    /// the transport takes no more: the close and write timeouts end the
    /// wait for a peer that reads nothing, and its output is dropped. A
    /// flush is what `send` and `flush` promise, so dropped output is an
    /// error: the failure that ended the connection (the write or idle
    /// timeout), else [`Error::ConnectionClosed`] (the close timeout).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_flush_or_drop(cx))?;
        Poll::Ready(if self.conn.dropped_output() > 0 {
            // What ended the connection (an idle timeout, say), if it failed.
            Err(self
                .conn
                .failure()
                .map_or(Error::ConnectionClosed, Into::into))
        } else {
            Ok(())
        })
    }

    /// [`poll_flush`](Self::poll_flush) where output the close timeout
    /// dropped is the end it is meant to be (a Close that waited its turn).
    fn poll_flush_or_drop(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.poll_flush_io(cx)?.is_ready() {
                return Poll::Ready(match self.conn.failure() {
                    Some(error @ crate::ProtocolError::WriteTimeout) => Err(error.into()),
                    _ => Ok(()),
                });
            }
            if !self.poll_timer(cx) {
                return Poll::Pending;
            }
        }
    }

    /// Re-arms the timer to the connection's deadline; true if it fired
    /// (and `handle_timeout` ran).
    pub(crate) fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            // No timer is kept while none is armed (an idle connection).
            self.timer = None;
            self.armed = None;
            return false;
        };
        let timer = self.timer.get_or_insert_with(|| R::timer(deadline));
        if self.armed != Some(deadline) {
            R::reset(timer, deadline);
            self.armed = Some(deadline);
        }
        if R::poll_timer(timer, cx).is_ready() {
            self.armed = None;
            self.conn.handle_timeout(R::now());
            // Progress means the deadline moved; never loop on one that did not.
            return self.conn.poll_timeout() != Some(deadline);
        }
        false
    }

    /// Reads once into the connection; `Ready(Ok(()))` after any input or EOF.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let read = if self.conn.is_input_released() {
            // An idle connection waits with a stack buffer, not its own.
            let mut probe = [0u8; PROBE_READ];
            let read = ready!(R::poll_read_slice(&mut self.stream, cx, &mut probe));
            if let Ok(n) = read {
                self.conn
                    .fill_from(probe.get(..n).unwrap_or_default(), n == PROBE_READ);
            }
            read
        } else {
            ready!(R::poll_read(&mut self.stream, cx, &mut self.conn))
        };
        Poll::Ready(transport::after_read(&mut self.conn, read, R::now()))
    }

    /// Shuts the transport's write side once (flushing it first): the
    /// peer sees the whole Close and then the end of the stream. Errors from
    /// a transport that is going away are moot. `Ready` once done.
    fn poll_shut(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.end == End::Live {
            let _ = ready!(R::poll_flush(&mut self.stream, cx));
            let _ = ready!(R::poll_shutdown(&mut self.stream, cx));
            self.end = End::Lingering;
        }
        Poll::Ready(())
    }

    /// Ends the stream: its write side is shut if that can be done at once
    /// (a stream kept after its end must not leave the peer waiting), and no
    /// more I/O follows; dropping it closes the transport.
    fn finish(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let _ = self.poll_shut(cx);
        self.end(None)
    }

    /// Ends the stream, telling the close signal how. The connection's
    /// failure (else `error`) is the stream's last item: a caller that
    /// stops at its first error has let the close run its course.
    fn end(&mut self, error: Option<Error>) -> Poll<Option<Result<Message, Error>>> {
        self.end = End::Ended;
        if let Some(signal) = &self.close_signal {
            let clean = self
                .conn
                .close_frame()
                .is_some_and(|close| close.code != CloseCode::ABNORMAL);
            signal.ended(clean);
        }
        let error = self.conn.failure().map(Error::Protocol).or(error);
        Poll::Ready(error.map(Err))
    }

    /// Writes the echo of the peer's Close at once (if the transport takes
    /// it), for a caller that stops at the Close; errors are the next
    /// poll's to see.
    #[cold]
    #[inline(never)]
    fn write_close_echo(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_write_out(cx);
    }

    /// Queues the Close a [`CloseSignal`] asks for, while the connection is open.
    #[inline]
    fn heed_close_signal(&mut self) {
        if let Some(signal) = &self.close_signal
            && self.conn.state() == crate::State::Open
            && let Some((code, reason)) = signal.close_request()
        {
            let _ = self.conn.close(code, reason);
        }
    }

    /// Whether a handoff is asked for and the connection can go (open,
    /// and no compressed message half-received); the request is taken.
    #[inline]
    fn handoff_requested(&self) -> bool {
        self.close_signal.as_ref().is_some_and(|signal| {
            self.conn.state() == crate::State::Open
                && self.conn.can_freeze().is_ok()
                && signal.take_handoff_request()
        })
    }

    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        // A requested Close goes out before anything else is read.
        self.heed_close_signal();
        let poll = self.poll_next_inner(cx);
        // Metrics catch up when the connection waits, and once when it ends.
        #[cfg(feature = "metrics")]
        match &poll {
            Poll::Pending | Poll::Ready(Some(Err(Error::HandoffRequested))) => {
                self.metrics.update(self.conn.stats());
            }
            Poll::Ready(None | Some(Err(_))) => self.metrics.end(self.conn.stats()),
            Poll::Ready(Some(Ok(_))) => {}
        }
        poll
    }

    pub(crate) fn poll_next_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if self.end == End::Ended {
                return Poll::Ready(None);
            }
            match self.conn.next_message() {
                Ok(Some(message)) => {
                    if let Message::Close(_) = message {
                        self.write_close_echo(cx);
                    }
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
                // The connection failed: its Close goes out and the close
                // runs its course; the error ends the stream.
                Err(_) => {}
            }
            // Past the close timeout nothing more is written or awaited.
            if self.conn.is_finished() {
                return self.finish(cx);
            }
            // Between messages, before waiting for more: a handoff asked for.
            if self.handoff_requested() {
                return Poll::Ready(Some(Err(Error::HandoffRequested)));
            }
            // What is queued goes out before waiting for input. A transport
            // that takes no more does not stop reading: the peer's Ping or
            // Close must still be seen (and a writer of the other half keep
            // going; tests/hub.rs, pongs_are_not_held_behind_the_queue).
            let written = match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(error)) => {
                    self.write_failed(error);
                    true
                }
                Poll::Pending => false,
            };
            // The lingering close: the write side is shut, and reading goes
            // on (discarding) until the peer's end, so the transport is
            // never closed with unread input (tests/endings.rs).
            if written
                && self.conn.should_close_transport()
                && self.poll_shut(cx).is_ready()
                && self.conn.is_finished()
            {
                return self.finish(cx);
            }
            if self.poll_timer(cx) {
                continue;
            }
            // After a failed write, the input already there is delivered
            // (the peer's last messages, its Close); then the error.
            let read = if self.conn.wants_read() {
                self.poll_fill(cx)
            } else {
                Poll::Pending
            };
            match (read, self.write_error.take()) {
                (Poll::Ready(Ok(())), write_error) => self.write_error = write_error,
                (Poll::Ready(Err(error)), write_error) => {
                    return self.transport_failed(write_error.unwrap_or(error));
                }
                (Poll::Pending, Some(error)) => return self.transport_failed(error),
                (Poll::Pending, None) => return Poll::Pending,
            }
        }
    }

    /// The transport failed: the stream ends with its error (reported
    /// once; a transport that failed is not written to or shut down again).
    pub(crate) fn transport_failed(
        &mut self,
        error: io::Error,
    ) -> Poll<Option<Result<Message, Error>>> {
        // A transport that fails while the close lingers is done, not broken.
        let error = (self.end != End::Lingering).then(|| error.into());
        self.end(error)
    }

    /// Ready to queue a message of `len` payload bytes (0 when unknown).
    #[inline]
    pub(crate) fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<Result<(), Error>> {
        // The common case stays small where `feed` inlines it (benches/echo).
        if !self.conn.is_write_backlogged(len) {
            return Poll::Ready(Ok(()));
        }
        self.poll_backlogged(cx, len)
    }

    /// [`poll_ready`](Self::poll_ready) past the mark.
    #[inline(never)]
    fn poll_backlogged(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<Result<(), Error>> {
        // Write what the transport takes; wait only while still past the
        // mark, with the timers running: the close and write timeouts end
        // the wait for a peer that reads nothing. A Close asked for reaches
        // a task that waits here too.
        while self.conn.is_write_backlogged(len)
            && self.poll_write_out(cx)?.is_pending()
            && self.conn.is_write_backlogged(len)
        {
            self.heed_close_signal();
            if !self.poll_timer(cx) {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn start_send(&mut self, message: impl Outbound) -> Result<(), Error> {
        Ok(message.queue_on(&mut self.conn)?)
    }

    /// Sends a Close (unless one was sent) and flushes it.
    pub(crate) fn poll_send_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        transport::start_close(&mut self.conn, code, reason)?;
        self.poll_flush_or_drop(cx)
    }

    /// Runs the close handshake to its end, discarding messages that arrive
    /// meanwhile. A peer that goes away instead of answering has still been
    /// closed: only an error the connection reports as one is returned.
    pub(crate) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        // The Close is written by the reading loop, whose timers bound the
        // wait for a peer that takes nothing.
        if self.end != End::Ended {
            transport::start_close(&mut self.conn, code, reason)?;
        }
        loop {
            if let ControlFlow::Break(result) = transport::close_step(ready!(self.poll_next(cx))) {
                return Poll::Ready(result);
            }
        }
    }
}
