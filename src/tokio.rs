//! The async adapter (feature `tokio`): a [`Connection`] over any
//! `AsyncRead + AsyncWrite` stream, as a [`Stream`] of messages and a
//! [`Sink`] for them.
//!
//! It only moves bytes: every protocol decision (Pongs, Close echoes, when to
//! close the transport) is the [`Connection`]'s. A tokio timer is re-armed to
//! [`Connection::poll_timeout`], so keepalive Pings, the idle timeout and the
//! close timeout run without help.
//!
//! ```no_run
//! use rfc6455::Message;
//! use rfc6455::tokio::accept_async;
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

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::handshake::{
    AcceptOptions, Accepted, Answer, ClientHandshake, ClientRequest, Rejection, RequestView,
    ServerHandshake, Status, answer_request,
};
use crate::{CloseCode, Config, Connection, Error, Message, Role, SendError};

/// How many buffers one vectored write passes.
const MAX_IOVECS: usize = 64;
/// A single buffer shorter than this is written with `poll_write`, one this
/// long or longer with `poll_write_vectored`. Below it a socket's `send`
/// saves the work `writev` does per call; above it that saving is nothing
/// beside the copy, and a partial write matters more: tokio's `poll_write`
/// takes one as a full socket and waits for the next readiness event, while
/// the vectored call writes again at once, as the peer drains the socket
/// meanwhile (1 MiB echoes over 512 connections: fewer, larger writes, each
/// while the payload is still in cache).
const SEND_MAX: usize = 64 * 1024;

/// The time by tokio's clock, which the timer uses too (and which tests can pause).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The connection, its stream and its timer: the whole adapter.
#[derive(Debug)]
struct Driver<S> {
    conn: Connection,
    stream: S,
    timer: Option<Pin<Box<Sleep>>>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
    /// A protocol or I/O error was returned: only flush and shut down now.
    failed: bool,
    /// The transport was shut down: the stream of messages is over.
    finished: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    fn new(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(now());
        Self {
            conn,
            stream,
            timer: None,
            armed: None,
            failed: false,
            finished: false,
        }
    }

    /// Writes everything queued (vectored), without flushing the stream.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let out = self.conn.outgoing();
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = out.chunks_vectored(&mut slices);
            let slices = slices.get(..count).unwrap_or_default();
            // One small buffer goes through `poll_write`: a socket's `send`
            // skips the work `writev` does per call (the file layer, the
            // iovec copy). See `SEND_MAX` for large ones.
            let stream = Pin::new(&mut self.stream);
            let written = match slices {
                [one] if one.len() < SEND_MAX => ready!(stream.poll_write(cx, one))?,
                _ => ready!(stream.poll_write_vectored(cx, slices))?,
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Re-arms the timer to the connection's deadline; true if it fired
    /// (and `handle_timeout` ran).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            return false;
        };
        let at = tokio::time::Instant::from_std(deadline);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if self.armed != Some(deadline) {
            timer.as_mut().reset(at);
            self.armed = Some(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            self.armed = None;
            self.conn.handle_timeout(now());
            // Progress means the deadline moved; never loop on one that did not.
            return self.conn.poll_timeout() != Some(deadline);
        }
        false
    }

    /// Reads once into the connection; `Ready(Ok(()))` after any input or EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            self.conn.read_buf()
        ));
        match read {
            Ok(0) => self.conn.receive_eof(),
            Ok(_) => {}
            // TLS streams report a TCP close without close_notify so; the
            // close handshake already guards against truncation.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.conn.receive_eof(),
            Err(e) => return Poll::Ready(Err(e)),
        }
        if self.conn.poll_timeout().is_some() {
            self.conn.handle_timeout(now());
        }
        Poll::Ready(Ok(()))
    }

    /// Shuts the transport down and ends the stream.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        // Errors from shutting down a transport that is going away are moot.
        let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
        self.finished = true;
        Poll::Ready(None)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            if !self.failed {
                match self.conn.next_message() {
                    Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                    Ok(None) => {}
                    Err(error) => {
                        self.failed = true;
                        // Best effort now, so what was queued before the error
                        // and the Close reporting it go out even if the caller
                        // stops polling; the next poll finishes the job.
                        if self.poll_write_out(cx).is_ready() {
                            let _ = Pin::new(&mut self.stream).poll_flush(cx);
                        }
                        return Poll::Ready(Some(Err(error.into())));
                    }
                }
            }
            // What is queued goes out before waiting for input.
            let written = match self.poll_write_out(cx) {
                Poll::Ready(Err(error)) if !self.failed => {
                    self.failed = true;
                    return Poll::Ready(Some(Err(error.into())));
                }
                Poll::Ready(Err(_)) => return self.poll_finish(cx),
                Poll::Ready(Ok(())) => true,
                Poll::Pending => false,
            };
            if self.failed || self.conn.should_close_transport() {
                if !written {
                    return Poll::Pending;
                }
                ready!(Pin::new(&mut self.stream).poll_flush(cx)).ok();
                return self.poll_finish(cx);
            }
            if self.poll_timer(cx) {
                continue;
            }
            if !self.conn.wants_read() {
                return Poll::Pending;
            }
            if let Err(error) = ready!(self.poll_fill(cx)) {
                self.failed = true;
                return Poll::Ready(Some(Err(error.into())));
            }
        }
    }

    /// Ready to queue a message of `len` payload bytes (0 when unknown).
    fn poll_ready(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<Result<(), Error>> {
        // Write what the transport takes; wait only while still past the mark.
        if self.conn.is_write_backlogged_for(len)
            && self.poll_write_out(cx)?.is_pending()
            && self.conn.is_write_backlogged_for(len)
        {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        Ok(self.conn.send(message)?)
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

    /// Runs the close handshake to its end, discarding messages that arrive meanwhile.
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        if !self.failed && !self.finished {
            ready!(self.poll_send_close(cx, code, reason))?;
        }
        loop {
            match ready!(self.poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(Error::Protocol(crate::ProtocolError::AbnormalClosure))) => {}
                Some(Err(error)) => return Poll::Ready(Err(error)),
            }
        }
    }
}

/// A WebSocket over an async stream: a [`Stream`] of received messages and
/// a [`Sink`] of messages to send.
#[derive(Debug)]
pub struct WebSocketStream<S> {
    driver: Driver<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
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
    /// [`Config::write_high_water`] bytes would be queued, it first writes
    /// the queue out, waiting for the transport (backpressure; see
    /// [`Connection::is_write_backlogged_for`]). What it queues is written by the next
    /// [`flush`](Self::flush), [`send`](Self::send) or [`next`](Self::next).
    ///
    /// # Errors
    ///
    /// [`Error::Send`] if the connection refuses it, [`Error::Io`] from
    /// writing out the backlog.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        let len = message.payload().len();
        poll_fn(|cx| self.driver.poll_ready(cx, len)).await?;
        self.driver.start_send(message)
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    ///
    /// As [`feed`](Self::feed) and [`flush`](Self::flush).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
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

    /// Runs the close handshake: sends a Close with `code` and `reason`,
    /// then reads (discarding messages) until the peer's Close and the end of
    /// the transport, bounded by [`Config::close_timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::Send`] for a code that may not be sent or a reason over 123
    /// bytes, [`Error::Io`] and [`Error::Protocol`] as for [`next`](Self::next).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        poll_fn(|cx| self.driver.poll_close(cx, code, reason)).await
    }

    /// The protocol state (state, close frame, role, config).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.driver.conn
    }

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

    /// Splits into a read half and a write half that can be used from
    /// different tasks. They share the connection behind a mutex that is
    /// held only inside a poll, never across an await.
    ///
    /// The read half drives timers and automatic replies: keep polling it.
    #[must_use]
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let shared = Arc::new(Mutex::new(Shared {
            driver: self.driver,
            read_waker: None,
            write_waker: None,
        }));
        (
            ReadHalf {
                shared: Arc::clone(&shared),
            },
            WriteHalf { shared },
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.driver.poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.driver.poll_ready(cx, 0)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.driver.start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(ready!(self.driver.poll_flush(cx)).map_err(Error::from))
    }

    /// Sends Close 1000 and runs the close handshake to its end.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.driver.poll_close(cx, CloseCode::NORMAL, "")
    }
}

/// The state the halves of a split stream share.
#[derive(Debug)]
struct Shared<S> {
    driver: Driver<S>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
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
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Shared<S>>>,
}

/// The sending half of a split [`WebSocketStream`]: a [`Sink`] of messages.
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Shared<S>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next message (see [`WebSocketStream::next`]).
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next_message(cx)).await
    }

    fn poll_next_message(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut shared = lock(&self.shared);
        store(&mut shared.read_waker, cx);
        let poll = shared.driver.poll_next(cx);
        // The read half may have written (Pongs, the writer's queued bytes)
        // and taken over the stream's write wake-up: let the writer retry.
        wake(shared.write_waker.as_ref());
        poll
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_message(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    fn with<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Driver<S>, &mut Context<'_>) -> T,
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
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        let len = message.payload().len();
        poll_fn(|cx| self.with(cx, |d, cx| d.poll_ready(cx, len))).await?;
        lock(&self.shared).driver.start_send(message)
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    ///
    /// As [`WebSocketStream::send`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
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
    let timeout = request.handshake_limits().timeout;
    within(timeout, client_handshake(stream, request, config)).await
}

async fn client_handshake<S>(
    mut stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocketStream<S>, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(Role::Client, config)?;
    let request = crate::extensions::client_offer(conn.config(), request);
    let (mut handshake, bytes) = ClientHandshake::new(&request)?;
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    let mut buf = BytesMut::new();
    loop {
        if let Status::Complete((accepted, used)) = handshake.receive(&buf)? {
            let negotiated = crate::extensions::client_accept(conn.config(), &accepted)?;
            crate::extensions::apply(&mut conn, negotiated);
            conn.receive(buf.get(used..).unwrap_or_default());
            return Ok((WebSocketStream::new(stream, conn), accepted));
        }
        read_more(&mut stream, &mut buf).await?;
    }
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
    let timeout = parser.limits().timeout;
    within(timeout, server_handshake(stream, config, parser, callback)).await
}

async fn server_handshake<S, F>(
    mut stream: S,
    config: Config,
    mut parser: ServerHandshake,
    callback: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    let mut conn = Connection::new(Role::Server, config)?;
    let mut callback = Some(callback);
    let mut buf = BytesMut::new();
    loop {
        match answer_request(&mut parser, &buf, &mut callback, conn.config()) {
            None => read_more(&mut stream, &mut buf).await?,
            Some(Answer::Accept {
                response,
                used,
                negotiated,
            }) => {
                stream.write_all(&response).await?;
                stream.flush().await?;
                crate::extensions::apply(&mut conn, negotiated);
                conn.receive(buf.get(used..).unwrap_or_default());
                return Ok(WebSocketStream::new(stream, conn));
            }
            Some(Answer::Refuse { response, error }) => {
                stream.write_all(&response).await?;
                stream.flush().await?;
                let _ = stream.shutdown().await;
                return Err(error);
            }
        }
    }
}

/// Runs a handshake under [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout);
/// when it runs out the handshake (and the stream it owns) is dropped.
async fn within<T>(
    timeout: Option<Duration>,
    handshake: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, handshake)
            .await
            .unwrap_or(Err(Error::HandshakeTimeout(limit))),
        None => handshake.await,
    }
}

/// Reads a handshake chunk; EOF mid-handshake is an error.
async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> io::Result<()> {
    buf.reserve(4096);
    match stream.read_buf(buf).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed during the handshake",
        )),
        _ => Ok(()),
    }
}
