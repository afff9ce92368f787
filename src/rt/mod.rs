//! The async WebSocket, written once for every runtime: [`WebSocketStream`]
//! is a [`Stream`] of received messages and a [`Sink`] of messages to send
//! over any async byte stream, with its halves for two tasks.
//!
//! The runtime is a type parameter, a [`Runtime`]: which `AsyncRead` /
//! `AsyncWrite` traits the byte stream has and whose timer runs the
//! keepalive, idle and close timeouts. The adapter modules name it for you
//! (`rfc6455::rt::tokio::WebSocketStream<S>`, `rfc6455::futures_io::WebSocketStream<S>`).
//!
//! It only moves bytes: every protocol decision (Pongs, Close echoes, when to
//! close the transport, which errors end the stream) is the [`Connection`]'s.
//!
//! # Batching
//!
//! [`feed`](WebSocketStream::feed) queues a message without writing;
//! [`next`](WebSocketStream::next) writes everything queued (one vectored
//! write) before it waits for input. An echo loop of `next` + `feed`
//! therefore answers every message already read with a single write.
//!
//! # Cancel safety
//!
//! - [`next`](WebSocketStream::next), [`flush`](WebSocketStream::flush) and
//!   [`close`](WebSocketStream::close) are cancel-safe: no message is lost,
//!   and calling again resumes.
//! - [`feed`](WebSocketStream::feed) and [`send`](WebSocketStream::send) are
//!   cancel-safe once the message is queued: if cancelled while waiting for
//!   room in the write buffer, the message is dropped; once queued, it is
//!   written by a later `flush`, `send` or `next`.
//! - The handshake functions are not: a cancelled handshake leaves the
//!   stream in an unknown state; drop it.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Instant;

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;

use crate::admission::{Admission, Permit};
use crate::builder::{ClientBuilder, ServerBuilder};
use crate::connection::Stats;
use crate::handshake::{
    AcceptOptions, Accepted, HandshakeDriver, HandshakeRole, Progress, Rejection, RequestView,
    ServerDriver,
};
use crate::prepared::Outbound;
use crate::transport::{self, WriteCall};
use crate::{CloseCode, CloseFrame, Connection, Error, Message, SendError};

/// A runtime the async WebSocket runs on, for byte streams of type `S`: its
/// I/O traits and its timer. Implemented by the adapters' markers only.
pub trait Runtime<S>: sealed::Sealed + Sized {
    /// The timer type.
    #[doc(hidden)]
    type Timer: Unpin + Send + fmt::Debug;
    /// The time by the timer's clock.
    #[doc(hidden)]
    fn now() -> Instant;
    /// A timer that fires at `at`.
    #[doc(hidden)]
    fn timer(at: Instant) -> Self::Timer;
    /// Moves a timer to `at`.
    #[doc(hidden)]
    fn reset(timer: &mut Self::Timer, at: Instant);
    /// Whether the timer fired.
    #[doc(hidden)]
    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()>;
    /// Reads once into the connection's input (its read policy).
    #[doc(hidden)]
    fn poll_read(
        stream: &mut S,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>>;
    /// Reads once into `buf`.
    #[doc(hidden)]
    fn poll_read_slice(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;
    /// Reads once into the spare room of `buf`.
    #[doc(hidden)]
    fn poll_read_buf(
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;
    /// Writes one buffer.
    #[doc(hidden)]
    fn poll_write(stream: &mut S, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Writes several buffers.
    #[doc(hidden)]
    fn poll_write_vectored(
        stream: &mut S,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Flushes the stream.
    #[doc(hidden)]
    fn poll_flush(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts the stream's write side down.
    #[doc(hidden)]
    fn poll_shutdown(stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

pub(crate) mod sealed {
    /// Only the adapters' markers are runtimes.
    #[allow(unnameable_types)]
    pub trait Sealed {}
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
use forward_writes;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod drain;
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
pub mod futures_io;
pub mod hub;
#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod reconnect;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

/// One write call through the runtime.
fn write_call<S, R: Runtime<S>>(
    stream: &mut S,
    cx: &mut Context<'_>,
    call: WriteCall<'_>,
) -> Poll<io::Result<usize>> {
    match call {
        WriteCall::Plain(buf) => R::poll_write(stream, cx, buf),
        WriteCall::Vectored(bufs) => R::poll_write_vectored(stream, cx, bufs),
    }
}

/// The most read at once into the stack while the connection's input
/// buffer is given back (a small message in one read).
const PROBE_READ: usize = 1024;

/// The connection, its stream and its timer: the whole adapter.
struct Driver<S, R: Runtime<S>> {
    conn: Connection,
    stream: S,
    timer: Option<R::Timer>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
    /// The caller has been handed the connection's error; from now on the
    /// stream only flushes the Close reporting it and ends.
    error_returned: bool,
    /// What has been reported to the `metrics` facade.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ConnectionMetrics,
    /// The stream has ended: the transport was shut down, or failed.
    finished: bool,
    /// The drain this stream's task is watched by.
    #[cfg(feature = "tokio")]
    drain: Option<Arc<drain::Signal>>,
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
    fn new(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(R::now());
        Self {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ConnectionMetrics::new(conn.role()),
            conn,
            stream,
            timer: None,
            armed: None,
            error_returned: false,
            finished: false,
            #[cfg(feature = "tokio")]
            drain: None,
            runtime: PhantomData,
        }
    }

    /// Writes everything queued (vectored), without flushing the stream.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = &mut self.stream;
        transport::poll_write_out(&mut self.conn, |call| write_call::<S, R>(stream, cx, call))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        R::poll_flush(&mut self.stream, cx)
    }

    /// Re-arms the timer to the connection's deadline; true if it fired
    /// (and `handle_timeout` ran).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
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
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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

    /// Flushes what is queued (best effort), shuts the transport down and
    /// ends the stream.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        // Errors from a transport that is going away are moot.
        if ready!(self.poll_write_out(cx)).is_ok() {
            let _ = ready!(R::poll_flush(&mut self.stream, cx));
        }
        let _ = ready!(R::poll_shutdown(&mut self.stream, cx));
        self.finished = true;
        #[cfg(feature = "tokio")]
        if let Some(signal) = &self.drain
            && self
                .conn
                .close_frame()
                .is_some_and(|close| close.code != CloseCode::ABNORMAL)
        {
            signal.closed_cleanly();
        }
        Poll::Ready(None)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        // A drain's Close goes out before anything else is read.
        #[cfg(feature = "tokio")]
        if let Some((code, reason)) = self.drain.as_ref().and_then(|s| s.close_request())
            && self.conn.state() == crate::State::Open
        {
            let _ = self.conn.close(code, reason);
        }
        let poll = self.poll_next_inner(cx);
        // Metrics catch up when the connection waits, and once when it ends.
        #[cfg(feature = "metrics")]
        match &poll {
            Poll::Pending => self.metrics.update(self.conn.stats()),
            Poll::Ready(None | Some(Err(_))) => self.metrics.end(self.conn.stats()),
            Poll::Ready(Some(Ok(_))) => {}
        }
        poll
    }

    fn poll_next_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            match self.conn.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(error) if !self.error_returned => {
                    self.error_returned = true;
                    // Best effort now, so what was queued before the error
                    // and the Close reporting it go out even if the caller
                    // stops polling; the next poll finishes the job.
                    if self.poll_write_out(cx).is_ready() {
                        let _ = R::poll_flush(&mut self.stream, cx);
                    }
                    return Poll::Ready(Some(Err(error.into())));
                }
                // Returned already: what is left is flushing and shutting down.
                Err(_) => {}
            }
            // What is queued goes out before waiting for input. A transport
            // that takes no more does not stop reading: the peer's Ping or
            // Close must still be seen (and a writer of the other half keep
            // going; tests/hub.rs, pongs_are_not_held_behind_the_queue).
            let written = match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(error)) => return self.transport_failed(error),
                Poll::Pending => false,
            };
            if written && self.conn.should_close_transport() {
                return self.poll_finish(cx);
            }
            if self.poll_timer(cx) {
                continue;
            }
            if !self.conn.wants_read() {
                return Poll::Pending;
            }
            if let Err(error) = ready!(self.poll_fill(cx)) {
                return self.transport_failed(error);
            }
        }
    }

    /// The transport failed: the stream ends with its error (reported
    /// once; a transport that failed is not written to or shut down again).
    fn transport_failed(&mut self, error: io::Error) -> Poll<Option<Result<Message, Error>>> {
        self.finished = true;
        if self.error_returned {
            return Poll::Ready(None);
        }
        self.error_returned = true;
        Poll::Ready(Some(Err(error.into())))
    }

    /// Ready to queue a message of `len` payload bytes (0 when unknown).
    fn poll_ready(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<Result<(), Error>> {
        // Write what the transport takes; wait only while still past the mark.
        if self.conn.is_write_backlogged(len)
            && self.poll_write_out(cx)?.is_pending()
            && self.conn.is_write_backlogged(len)
        {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, message: impl Outbound) -> Result<(), Error> {
        Ok(message.queue_on(&mut self.conn)?)
    }

    /// Sends a Close (unless one was sent) and flushes it.
    fn poll_send_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        match self.conn.close(code, reason) {
            Ok(()) | Err(SendError::Closed) => {}
            Err(error) => return Poll::Ready(Err(error.into())),
        }
        Poll::Ready(ready!(self.poll_flush(cx)).map_err(Error::from))
    }

    /// Runs the close handshake to its end, discarding messages that arrive
    /// meanwhile. A peer that goes away instead of answering has still been
    /// closed: only an error the connection reports as one is returned.
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        if !self.finished {
            ready!(self.poll_send_close(cx, code, reason))?;
        }
        loop {
            match ready!(self.poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(Error::Protocol(error))) if error.is_peer_gone() => {}
                Some(Err(error)) => return Poll::Ready(Err(error)),
            }
        }
    }
}

/// A WebSocket over an async byte stream: a [`Stream`] of received messages
/// and a [`Sink`] of messages to send. `R` is the [`Runtime`]; the adapter
/// modules name it.
pub struct WebSocketStream<S, R: Runtime<S>> {
    driver: Driver<S, R>,
}

impl<S: fmt::Debug, R: Runtime<S>> fmt::Debug for WebSocketStream<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("driver", &self.driver)
            .finish()
    }
}

impl<S, R: Runtime<S>> WebSocketStream<S, R> {
    /// Runs the server handshake over `stream`, accepting any valid request
    /// with default options and answering an invalid one with the right
    /// status (400, 405, 426, 431, with the headers each needs).
    ///
    /// # Errors
    ///
    /// As [`accept_with`](Self::accept_with).
    pub async fn accept(stream: S) -> Result<Self, Error> {
        Self::accept_with(stream, &ServerBuilder::new()).await
    }

    /// Runs the server handshake as `server` says: its [`Config`](crate::Config), header
    /// limits and deadline, subprotocols, and the callback that inspects a
    /// valid request and accepts or rejects it. A refusal's response is
    /// written and the transport shut down (a TCP FIN, or a TLS
    /// close_notify, after it).
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for an invalid request and [`Error::Rejected`]
    /// when the callback rejected (both after the response was written),
    /// [`Error::Io`] from the stream, [`Error::HandshakeTimeout`] past
    /// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout).
    pub async fn accept_with<F>(stream: S, server: &ServerBuilder<F>) -> Result<Self, Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        let driver = server.driver(R::now());
        // Boxed: a task keeps the largest state its future ever had for its
        // whole life, and the handshake's would otherwise sit beside the open
        // connection's (tests/scale.rs).
        Box::pin(Self::serve_handshake(stream, driver)).await
    }

    /// Like [`accept_with`](Self::accept_with), with `admission`'s limits
    /// decided first: the client address (`peer`'s, or the one a trusted
    /// proxy reports) takes a place under them, or the upgrade is refused
    /// with 429 or 503 and `Retry-After`. The [`Permit`] holds the place:
    /// keep it with the connection.
    ///
    /// # Errors
    ///
    /// As [`accept_with`](Self::accept_with); a refusal by the limits is
    /// [`Error::Rejected`] with its status.
    pub async fn accept_admitted<F>(
        stream: S,
        peer: SocketAddr,
        server: &ServerBuilder<F>,
        admission: &Admission,
    ) -> Result<(Self, Permit), Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        Self::admitted(stream, peer, server, admission, || Ok(())).await
    }

    /// [`accept_admitted`](Self::accept_admitted) with `gate` deciding first.
    pub(crate) async fn admitted<F>(
        stream: S,
        peer: SocketAddr,
        server: &ServerBuilder<F>,
        admission: &Admission,
        gate: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<(Self, Permit), Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        let mut permit = None;
        let ws = Self::accept_gated(stream, server, |request| {
            gate()?;
            let client = admission.client_address(peer.ip(), request.headers());
            permit = Some(admission.admit_at(client, R::now())?);
            Ok(())
        })
        .await?;
        // The handshake completes only once the limits admitted it.
        let permit = permit.ok_or(Error::Rejected(503))?;
        Ok((ws, permit))
    }

    /// [`accept_with`](Self::accept_with) with `gate` deciding on a valid
    /// request before `server`'s callback does.
    pub(crate) async fn accept_gated<F>(
        stream: S,
        server: &ServerBuilder<F>,
        gate: impl FnOnce(&RequestView<'_>) -> Result<(), Rejection>,
    ) -> Result<Self, Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        let driver = server.driver_with(R::now(), gate);
        // Boxed, as in `accept_with`.
        Box::pin(Self::serve_handshake(stream, driver)).await
    }

    /// Runs a server handshake to its end; shuts the stream down after a refusal.
    async fn serve_handshake<C>(mut stream: S, driver: ServerDriver<C>) -> Result<Self, Error>
    where
        C: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        match handshake::<S, R, _>(&mut stream, driver).await {
            Ok(conn) => Ok(Self::new(stream, conn)),
            Err(error) => {
                let _ = poll_fn(|cx| R::poll_shutdown(&mut stream, cx)).await;
                Err(error)
            }
        }
    }

    /// Runs the client handshake over a connected stream (TCP, TLS, anything).
    ///
    /// # Errors
    ///
    /// [`Error::Build`] for an invalid request, [`Error::Io`] from the
    /// stream, [`Error::Handshake`] if the response is not an acceptable 101,
    /// [`Error::HandshakeTimeout`] past the request's
    /// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout).
    pub async fn client(mut stream: S, client: &ClientBuilder) -> Result<(Self, Accepted), Error> {
        let driver = client.driver(R::now())?;
        // Boxed, as in `accept_with`.
        let (conn, accepted) = Box::pin(handshake::<S, R, _>(&mut stream, driver)).await?;
        Ok((Self::new(stream, conn), accepted))
    }

    /// Wraps a stream whose opening handshake is done, and the connection for it.
    #[must_use]
    pub fn new(stream: S, conn: Connection) -> Self {
        Self {
            driver: Driver::new(stream, conn),
        }
    }

    /// The next message, or `None` once the close handshake is over and the
    /// transport is shut down. Queued output is written before waiting.
    ///
    /// After an error, the next calls flush the Close reporting it and
    /// return `None`.
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.driver.poll_next(cx)).await
    }

    /// Queues a message. While with it more than
    /// [`Config::write_high_water`](crate::Config::write_high_water) bytes
    /// would be queued, it first writes the queue out, waiting for the
    /// transport (backpressure; see [`Connection::is_write_backlogged`]).
    /// What it queues is written by the next [`flush`](Self::flush),
    /// [`send`](Self::send) or [`next`](Self::next).
    ///
    /// # Errors
    ///
    /// [`Error::Send`] if the connection refuses it, [`Error::Io`] from
    /// writing out the backlog.
    pub async fn feed(&mut self, message: impl Outbound) -> Result<(), Error> {
        let len = message.payload_len();
        poll_fn(|cx| self.driver.poll_ready(cx, len)).await?;
        self.driver.start_send(message)
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    ///
    /// As [`feed`](Self::feed) and [`flush`](Self::flush).
    pub async fn send(&mut self, message: impl Outbound) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Writes everything queued and flushes the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        Ok(poll_fn(|cx| self.driver.poll_flush(cx)).await?)
    }

    /// Sends a timed Ping ([`Connection::ping`]) and flushes it; once the
    /// Pong has been read (keep calling [`next`](Self::next)),
    /// [`stats`](Self::stats) has its round-trip time.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn ping(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.driver.poll_ready(cx, 0)).await?;
        self.driver.conn.ping(R::now())?;
        self.flush().await
    }

    /// The connection's counters and Ping round-trip time ([`Connection::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.driver.conn.stats()
    }

    /// Runs the close handshake: sends a Close with `code` and `reason`,
    /// then reads (discarding messages) until the peer's Close and the end of
    /// the transport, bounded by [`Config::close_timeout`](crate::Config::close_timeout).
    /// Returns the peer's Close ([`Connection::close_frame`]: 1005 if it was
    /// empty, 1006 if none came before the transport or the wait ended).
    ///
    /// # Errors
    ///
    /// [`Error::Send`] for a code that may not be sent or a reason over 123
    /// bytes, [`Error::Io`] and [`Error::Protocol`] as for [`next`](Self::next).
    pub async fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        poll_fn(|cx| self.driver.poll_close(cx, code, reason)).await?;
        Ok(self.driver.conn.close_frame().cloned())
    }

    /// The protocol state (state, close frame, role, config).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.driver.conn
    }

    opening_getters!(driver.conn);

    /// The stream.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.driver.stream
    }

    /// The stream, mutably. Reading or writing it directly corrupts the connection.
    #[must_use]
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.driver.stream
    }

    /// The connection and the stream.
    #[must_use]
    pub fn into_parts(self) -> (Connection, S) {
        (self.driver.conn, self.driver.stream)
    }

    /// Splits into a write half and a read half (in the order of
    /// `StreamExt::split`: sink, stream) that can be used from different
    /// tasks. They share the connection behind a mutex that is held only
    /// inside a poll, never across an await; [`ReadHalf::reunite`] puts
    /// them back together.
    ///
    /// The read half drives timers and automatic replies: keep polling it.
    ///
    /// ```no_run
    /// # #[allow(dead_code)]
    /// # async fn run<S, R: rfc6455::rt::Runtime<S>>(ws: rfc6455::rt::WebSocketStream<S, R>) -> Result<(), rfc6455::Error> {
    /// use rfc6455::Message;
    /// let (mut write, mut read) = ws.split();
    /// write.send(Message::text("hello")).await?;
    /// let reply = read.next().await;
    /// let ws = read.reunite(write).expect("halves of one stream");
    /// # let _ = (reply, ws);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn split(self) -> (WriteHalf<S, R>, ReadHalf<S, R>) {
        let shared = Arc::new(Mutex::new(Shared {
            driver: self.driver,
            read_waker: None,
            write_waker: None,
        }));
        (
            WriteHalf {
                shared: Arc::clone(&shared),
            },
            ReadHalf { shared },
        )
    }
}

impl<S: Unpin, R: Runtime<S>> Stream for WebSocketStream<S, R> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().driver.poll_next(cx)
    }
}

impl<S: Unpin, R: Runtime<S>> Sink<Message> for WebSocketStream<S, R> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().driver.poll_ready(cx, 0)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().driver.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(ready!(self.get_mut().driver.poll_flush(cx)).map_err(Error::from))
    }

    /// Sends Close 1000 and runs the close handshake to its end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().driver.poll_close(cx, CloseCode::NORMAL, "")
    }
}

/// The state the halves of a split stream share.
struct Shared<S, R: Runtime<S>> {
    driver: Driver<S, R>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

fn lock<S, R: Runtime<S>>(shared: &Mutex<Shared<S, R>>) -> MutexGuard<'_, Shared<S, R>> {
    // A panic inside a poll leaves the driver as consistent as any early
    // return does, so a poisoned lock is still usable.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wake(waker: Option<&Waker>) {
    if let Some(waker) = waker {
        waker.wake_by_ref();
    }
}

fn store(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// The receiving half of a split [`WebSocketStream`]: a [`Stream`] of messages.
pub struct ReadHalf<S, R: Runtime<S>> {
    shared: Arc<Mutex<Shared<S, R>>>,
}

/// The sending half of a split [`WebSocketStream`]: a [`Sink`] of messages.
pub struct WriteHalf<S, R: Runtime<S>> {
    shared: Arc<Mutex<Shared<S, R>>>,
}

impl<S, R: Runtime<S>> fmt::Debug for ReadHalf<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S, R: Runtime<S>> fmt::Debug for WriteHalf<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

/// Two halves that came from different [`WebSocketStream::split`] calls,
/// handed back.
pub struct ReuniteError<S, R: Runtime<S>>(pub ReadHalf<S, R>, pub WriteHalf<S, R>);

impl<S, R: Runtime<S>> fmt::Debug for ReuniteError<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S, R: Runtime<S>> fmt::Display for ReuniteError<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves come from different WebSocket streams")
    }
}

impl<S, R: Runtime<S>> std::error::Error for ReuniteError<S, R> {}

impl<S, R: Runtime<S>> ReadHalf<S, R> {
    /// Puts the halves of one [`WebSocketStream::split`] back together.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], with both halves, if they come from different streams.
    pub fn reunite(
        self,
        write: WriteHalf<S, R>,
    ) -> Result<WebSocketStream<S, R>, ReuniteError<S, R>> {
        if !Arc::ptr_eq(&self.shared, &write.shared) {
            return Err(ReuniteError(self, write));
        }
        drop(write);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(WebSocketStream {
                driver: shared
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner)
                    .driver,
            }),
            // Only these two halves hold it, and one was just dropped.
            Err(shared) => Err(ReuniteError(
                Self {
                    shared: Arc::clone(&shared),
                },
                WriteHalf { shared },
            )),
        }
    }

    /// The next message (see [`WebSocketStream::next`]).
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next_message(cx)).await
    }

    /// The connection's counters and Ping round-trip time ([`Connection::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        lock(&self.shared).driver.conn.stats()
    }

    fn poll_next_message(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut shared = lock(&self.shared);
        store(&mut shared.read_waker, cx);
        let queued = shared.driver.conn.queued_output();
        let poll = shared.driver.poll_next(cx);
        // The read half writes what is queued (Pongs, the writer's bytes),
        // which can take over the stream's write wake-up: when it wrote,
        // let the writer retry. Not otherwise: a writer polled in the same
        // task as this half would be woken on every poll, for ever
        // (tests/hub.rs runs both halves in one task).
        if shared.driver.conn.queued_output() != queued {
            wake(shared.write_waker.as_ref());
        }
        poll
    }
}

impl<S, R: Runtime<S>> Stream for ReadHalf<S, R> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_message(cx)
    }
}

impl<S, R: Runtime<S>> WriteHalf<S, R> {
    fn with<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Driver<S, R>, &mut Context<'_>) -> T,
    ) -> T {
        let mut shared = lock(&self.shared);
        store(&mut shared.write_waker, cx);
        let result = f(&mut shared.driver, cx);
        wake(shared.read_waker.as_ref());
        result
    }

    /// Queues a message (see [`WebSocketStream::feed`]).
    ///
    /// # Errors
    ///
    /// As [`WebSocketStream::feed`].
    pub async fn feed(&mut self, message: impl Outbound) -> Result<(), Error> {
        let len = message.payload_len();
        poll_fn(|cx| self.with(cx, |d, cx| d.poll_ready(cx, len))).await?;
        lock(&self.shared).driver.start_send(message)
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    ///
    /// As [`WebSocketStream::send`].
    pub async fn send(&mut self, message: impl Outbound) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Writes everything queued and flushes the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        Ok(poll_fn(|cx| self.with(cx, |d, cx| d.poll_flush(cx))).await?)
    }

    /// Sends a timed Ping and flushes it (see [`WebSocketStream::ping`]);
    /// the read half reads its Pong.
    ///
    /// # Errors
    ///
    /// As [`WebSocketStream::ping`].
    pub async fn ping(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.with(cx, |d, cx| d.poll_ready(cx, 0))).await?;
        lock(&self.shared).driver.conn.ping(R::now())?;
        self.flush().await
    }

    /// The connection's counters and Ping round-trip time ([`Connection::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        lock(&self.shared).driver.conn.stats()
    }

    /// Sends a Close with `code` and `reason` and flushes it. The read half
    /// sees the peer's Close and then the end of the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Send`] for a code that may not be sent or a reason over 123
    /// bytes, [`Error::Io`] from the stream.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        poll_fn(|cx| self.with(cx, |d, cx| d.poll_send_close(cx, code, reason))).await
    }
}

impl<S, R: Runtime<S>> Sink<Message> for WriteHalf<S, R> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_ready(cx, 0))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        lock(&self.shared).driver.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_flush(cx)).map_err(Error::from)
    }

    /// Sends Close 1000 and flushes it; the read half sees the handshake end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_send_close(cx, CloseCode::NORMAL, ""))
    }
}

/// Moves a handshake's bytes until it is done, waking at its deadline.
async fn handshake<S, R: Runtime<S>, H: HandshakeRole>(
    stream: &mut S,
    driver: HandshakeDriver<H>,
) -> Result<H::Output, Error> {
    let result = handshake_io::<S, R, H>(stream, driver).await;
    #[cfg(feature = "metrics")]
    crate::metrics::handshake(H::ROLE, &result);
    result
}

async fn handshake_io<S, R: Runtime<S>, H: HandshakeRole>(
    stream: &mut S,
    mut driver: HandshakeDriver<H>,
) -> Result<H::Output, Error> {
    // Made only if the handshake has to wait: most complete at once.
    let mut timer: Option<R::Timer> = None;
    let mut unflushed = false;
    poll_fn(|cx| {
        loop {
            let waiting = if unflushed {
                unflushed = R::poll_flush(stream, cx)?.is_pending();
                unflushed
            } else {
                match driver.poll(R::now())? {
                    Progress::Write => {
                        let written = transport::poll_write_buf(driver.outgoing(), |call| {
                            write_call::<S, R>(stream, cx, call)
                        });
                        unflushed = written?.is_ready();
                        !unflushed
                    }
                    Progress::Read => match R::poll_read_buf(stream, cx, driver.read_buf())? {
                        Poll::Ready(0) => {
                            driver.receive_eof();
                            false
                        }
                        Poll::Ready(_) => false,
                        Poll::Pending => true,
                    },
                    Progress::Done(done) => return Poll::Ready(Ok(done)),
                }
            };
            // Waiting on the transport: wake at the deadline too, when the
            // driver's next poll fails with the timeout.
            if waiting {
                let Some(deadline) = driver.poll_timeout() else {
                    return Poll::Pending;
                };
                let timer = timer.get_or_insert_with(|| R::timer(deadline));
                if R::poll_timer(timer, cx).is_pending() {
                    return Poll::Pending;
                }
                // The timer fired: past the deadline this fails (a poll here
                // could hand out the finished connection and lose it).
                driver.check_deadline(R::now())?;
            }
        }
    })
    .await
}
