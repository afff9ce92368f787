//! [`WebSocketStream`]: the public async WebSocket, its constructors and
//! its `Stream` and `Sink` impls.

use std::fmt;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use super::driver::{CloseSignal, Driver};
use super::handshake::handshake;
use super::runtime::Runtime;
use super::split::{Outbox, ReadHalf, Shared, WriteHalf};
use crate::builder::{ClientBuilder, Incoming, IntoIncoming, ServerBuilder};
use crate::connection::Stats;
use crate::handshake::{AcceptOptions, Accepted, Rejection, RequestView, ServerDriver};
use crate::prepared::Outbound;
use crate::{CloseCode, CloseFrame, Connection, Error, Message};

/// A WebSocket over an async byte stream: a [`Stream`] of received messages
/// and a [`Sink`] of messages to send. `R` is the [`Runtime`]; the adapter
/// modules name it.
pub struct WebSocketStream<S, R: Runtime<S>> {
    pub(crate) driver: Driver<S, R>,
}

impl<S: fmt::Debug, R: Runtime<S>> fmt::Debug for WebSocketStream<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("driver", &self.driver)
            .finish()
    }
}

impl<S, R: Runtime<S>> WebSocketStream<S, R> {
    /// Runs the server handshake as `server` says: its [`Config`](crate::Config), header
    /// limits and deadline, subprotocols, admission limits, drain and the
    /// callback that inspects a valid request and accepts or rejects it
    /// (`&ServerBuilder::new()` accepts every valid request). An invalid
    /// request is answered with its status (400, 405, 426, 431, with the
    /// headers each needs); a refusal's response is written and the
    /// transport shut down (a TCP FIN, or a TLS close_notify, after it).
    ///
    /// `incoming` is the stream, or the stream and its peer address as
    /// `TcpListener::accept` returns them ([`IntoIncoming`]); admission
    /// limits need the address.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for an invalid request and [`Error::Rejected`]
    /// when the callback, the admission limits or a drain refused (each
    /// after the response was written), [`Error::Io`] from the stream,
    /// [`Error::HandshakeTimeout`] past
    /// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout).
    #[doc(alias = "accept_with")]
    #[doc(alias = "accept_async")]
    #[doc(alias = "accept_hdr_async")]
    pub async fn accept<F>(
        incoming: impl IntoIncoming<S, Self>,
        server: &ServerBuilder<F>,
    ) -> Result<Self, Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        let Incoming { stream, peer } = incoming.into_incoming();
        let driver = server.driver(R::now, peer);
        // Boxed: a task keeps the largest state its future ever had for its
        // whole life, and the handshake's would otherwise sit beside the open
        // connection's (tests/scale.rs).
        #[allow(unused_mut)]
        let mut ws = Box::pin(Self::serve_handshake(stream, driver)).await?;
        #[cfg(feature = "tokio")]
        if let Some(signal) = server
            .get_drain()
            .and_then(|drain| drain.signal_of_this_task())
        {
            ws.set_close_signal(signal);
        }
        Ok(ws)
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
    /// [`Error::Config`] for an invalid request, [`Error::Io`] from the
    /// stream, [`Error::Handshake`] if the response is not an acceptable 101,
    /// [`Error::HandshakeTimeout`] past the request's
    /// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout).
    pub async fn client(mut stream: S, client: &ClientBuilder) -> Result<(Self, Accepted), Error> {
        let driver = client.driver(R::now())?;
        // Boxed, as in `accept`.
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

    /// The next message, or `None` once the connection has ended: the close
    /// handshake over, the transport's write side shut, and the peer's end
    /// read (or [`Config::close_timeout`](crate::Config::close_timeout)
    /// passed since the close began). Queued output is written before
    /// waiting.
    ///
    /// A connection that fails (a protocol error, a limit, a transport that
    /// ends without a Close) is not cut short: its Close goes out and the
    /// close runs its course, then the error is the last item before
    /// `None`. So a loop that stops at its first error (`message?`) leaves
    /// no unread input behind to answer the peer with a reset.
    ///
    /// Cancel-safe: a cancelled call loses nothing (see [`crate::rt`]).
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
    /// All or nothing when cancelled: the message was not queued, so it can
    /// be fed again (see [`crate::rt`]).
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
    /// When cancelled, the message is either not queued or queued whole
    /// (and written by the next call that writes); `feed` then `flush` can
    /// be retried safely (see [`crate::rt`]).
    ///
    /// # Errors
    ///
    /// As [`feed`](Self::feed) and [`flush`](Self::flush).
    pub async fn send(&mut self, message: impl Outbound) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues frames without writing or waiting, as
    /// [`WriteHalf::queue`]: `fill` sends into an [`Outbox`] (a
    /// [`PreparedMessage`](crate::PreparedMessage) by reference costs a
    /// pointer) until it [is full](Outbox::is_full); [`flush`](Self::flush)
    /// or [`next`](Self::next) writes them.
    pub fn queue<T>(&mut self, fill: impl FnOnce(&mut Outbox<'_>) -> T) -> T {
        Outbox::fill(&mut self.driver.conn, fill)
    }

    /// Writes everything queued and flushes the stream. While the transport
    /// takes nothing, the timers run: a peer that reads nothing is given up
    /// on at [`Config::write_timeout`](crate::Config::write_timeout) (or the
    /// close timeout, once a close began). Cancel-safe: what is queued stays
    /// queued.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the stream, [`Error::Protocol`] with
    /// [`ProtocolError::WriteTimeout`](crate::ProtocolError::WriteTimeout).
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.driver.poll_flush(cx)).await
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
    /// Cancel-safe: calling it (or [`next`](Self::next)) again resumes.
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

    /// Lets `signal` ask this stream to close (a drain does): on every poll
    /// for messages the stream asks it, sends the Close it names once, and
    /// reads on to the end of the close handshake; when the stream ends it
    /// tells the signal whether that handshake completed. Set it before
    /// [`split`](Self::split); a later call replaces it.
    pub fn set_close_signal(&mut self, signal: Arc<dyn CloseSignal>) {
        self.driver.close_signal = Some(signal);
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

impl<S, R: Runtime<S>> IntoIncoming<S, WebSocketStream<S, R>> for S {
    fn into_incoming(self) -> Incoming<S> {
        Incoming::new(self, None)
    }
}

impl<S, R: Runtime<S>> IntoIncoming<S, WebSocketStream<S, R>> for (S, SocketAddr) {
    fn into_incoming(self) -> Incoming<S> {
        Incoming::new(self.0, Some(self.1))
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
        self.get_mut().driver.poll_flush(cx)
    }

    /// Sends Close 1000 and runs the close handshake to its end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().driver.poll_close(cx, CloseCode::NORMAL, "")
    }
}
