//! The blocking adapter: a [`Connection`] over any `std::io::Read + Write`
//! stream (a `TcpStream`, a rustls `StreamOwned` for `wss://`, an in-memory
//! pipe).
//!
//! It only moves bytes: every protocol decision (Pongs, Close echoes, when to
//! close the transport) is the [`Connection`]'s.
//!
//! ```no_run
//! use rfc6455::Message;
//! use rfc6455::blocking::WebSocket;
//!
//! let (mut ws, _response) = WebSocket::connect("ws://127.0.0.1:9001/")?;
//! ws.send(Message::text("hello"))?;
//! let _reply = ws.read()?;
//! ws.close(rfc6455::CloseCode::NORMAL, "done")?;
//! # Ok::<(), rfc6455::Error>(())
//! ```
//!
//! # Timers
//!
//! A blocking read cannot be interrupted by a timer, so keepalive Pings,
//! the idle timeout and the close timeout advance only when the adapter gets
//! control: after every read, and when a read fails with `WouldBlock` or
//! `TimedOut`. Set a read timeout on the socket (for example the keepalive
//! interval) to drive them; the error is returned, and calling again resumes.
//!
//! The opening handshake has a deadline too,
//! [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout)
//! (10 seconds by default), checked after every read: a peer that trickles
//! its request fails with [`Error::HandshakeTimeout`] once it passes. To
//! bound a peer that sends nothing at all, give the socket a read timeout
//! before [`WebSocket::accept`] ([`WebSocket::connect`] sets one itself).
//!
//! # Endings
//!
//! However a connection ends (a close handshake, a protocol error, a
//! limit), the adapter writes the Close, shuts the stream's write side
//! ([`HalfClose`]) and reads and discards until the peer's end, so the
//! stream is never dropped with unread input, which the kernel would answer
//! with a reset that can destroy the Close on its way. The wait is bounded
//! by [`Config::close_timeout`](crate::Config::close_timeout) as far as a
//! read timeout lets the timers run (above).
//!
//! # Non-blocking streams
//!
//! `WouldBlock` passes through unchanged from every method after the
//! handshake. Nothing queued is lost: call the method again when the socket
//! is ready. The handshake functions need a blocking stream.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::ControlFlow;
use std::task::Poll;
use std::time::Instant;

use crate::builder::{ClientBuilder, Incoming, IntoClientBuilder, IntoIncoming, ServerBuilder};
use crate::handshake::driver_seal::Advance;
use crate::handshake::{
    AcceptOptions, Accepted, HandshakeDriver, Progress, Rejection, RequestView,
};
use crate::prepared::Outbound;
use crate::transport::{self, MaybeTls, WriteCall};
use crate::{CloseCode, CloseFrame, Connection, Error, Message, Role};

mod half_close;

pub use half_close::HalfClose;

/// A WebSocket over a blocking stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    conn: Connection,
    stream: S,
    /// The write side was shut ([`HalfClose`]): the lingering close runs.
    shut: bool,
    /// What has been reported to the `metrics` facade.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ConnectionMetrics,
}

impl<S: Read + Write + HalfClose> WebSocket<S> {
    /// Wraps a stream whose opening handshake is done, and the connection for it.
    #[must_use]
    pub fn new(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Instant::now());
        Self {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ConnectionMetrics::new(conn.role()),
            conn,
            stream,
            shut: false,
        }
    }

    /// The next message. Queued output (Pongs, a Close echo, earlier
    /// [`write`](Self::write)s) is written before blocking on input.
    ///
    /// A received Close is returned as [`Message::Close`], its echo
    /// written; after it, [`Error::ConnectionClosed`] says the close
    /// handshake is over, the write side shut and the peer's end read: drop
    /// the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] if the peer broke the protocol (the Close frame
    /// reporting it has been written and the peer's end awaited, as far as
    /// the stream allowed),
    /// [`Error::ConnectionClosed`] after the close handshake, [`Error::Io`]
    /// for the stream's errors, including `WouldBlock`.
    pub fn read(&mut self) -> Result<Message, Error> {
        let result = self.read_inner();
        // Metrics catch up when the connection ends (and before each
        // blocking read, below).
        #[cfg(feature = "metrics")]
        if result.is_err() {
            self.metrics.end(self.conn.stats());
        }
        result
    }

    fn read_inner(&mut self) -> Result<Message, Error> {
        loop {
            match self.conn.next_message() {
                Ok(Some(message)) => {
                    if message.is_close() {
                        // The echo leaves before the Close is handed out: a
                        // caller that drops the stream on it loses nothing.
                        // A write error shows at the next call.
                        let _ = self.write_out();
                    }
                    return Ok(message);
                }
                Ok(None) => {}
                Err(error) => {
                    // The Close that reports the error goes out, and the
                    // peer's end is awaited; a read that must be retried
                    // says so, any other failure there changes nothing.
                    return Err(match self.linger() {
                        Err(e) if is_retry(&e) => e.into(),
                        _ => error.into(),
                    });
                }
            }
            self.write_out()?;
            if self.conn.should_close_transport() {
                return Err(match self.linger() {
                    Err(e) if is_retry(&e) => e.into(),
                    _ => Error::ConnectionClosed,
                });
            }
            if self.conn.is_input_paused() {
                // A rate limit holds input back: the peer waits in TCP.
                if let Some(deadline) = self.conn.poll_timeout() {
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                }
                self.conn.handle_timeout(Instant::now());
                continue;
            }
            #[cfg(feature = "metrics")]
            self.metrics.update(self.conn.stats());
            self.fill()?;
        }
    }

    /// Queues a message without writing it, unless with it the queue would
    /// pass [`Config::write_high_water`](crate::Config::write_high_water): then queued bytes are written first
    /// (see [`Connection::is_write_backlogged`]).
    /// Call [`flush`](Self::flush) (or [`read`](Self::read)) to send.
    ///
    /// On a non-blocking stream that takes no more (`WouldBlock`), the
    /// message is still queued while the queue is below
    /// [`Config::max_write_buffer`](crate::Config::max_write_buffer); past it, the message comes back in
    /// [`SendError::Full`](crate::SendError::Full). A message is never lost.
    ///
    /// # Errors
    ///
    /// [`Error::Send`] if the connection refuses the message (closed, control
    /// payload too long, queue full), [`Error::Io`] from writing out the
    /// backlog.
    pub fn write(&mut self, message: impl Outbound) -> Result<(), Error> {
        // On WouldBlock, what the stream did not take stays queued.
        if self.conn.is_write_backlogged(message.payload_len())
            && let Err(e) = self.write_out()
            && e.kind() != io::ErrorKind::WouldBlock
        {
            return Err(e.into());
        }
        Ok(message.queue_on(&mut self.conn)?)
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write) and [`flush`](Self::flush).
    pub fn send(&mut self, message: impl Outbound) -> Result<(), Error> {
        self.write(message)?;
        self.flush()
    }

    /// Writes everything queued and flushes the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the stream, including `WouldBlock` (what was not
    /// written stays queued).
    pub fn flush(&mut self) -> Result<(), Error> {
        Ok(self.write_out()?)
    }

    /// Runs the close handshake: sends a Close with `code` and `reason`,
    /// then reads until the peer's Close and the end of the transport (the
    /// server shuts its write side first, §7.1.1; a client waits for it). Messages that arrive meanwhile are
    /// discarded: [`read`](Self::read) until [`Message::Close`] to see them.
    ///
    /// Calling it again after the Close was sent (for example after
    /// `WouldBlock`) resumes the wait. A peer that closes the transport
    /// without answering has been closed too (as in the async adapters).
    /// Returns the peer's Close ([`Connection::close_frame`]: 1005 if it
    /// was empty, 1006 if none came).
    ///
    /// # Errors
    ///
    /// [`Error::Send`] for a code that may not be sent or a reason over 123
    /// bytes, [`Error::Io`] and [`Error::Protocol`] as for [`read`](Self::read).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<Option<CloseFrame>, Error> {
        transport::start_close(&mut self.conn, code, reason)?;
        loop {
            let next = match self.read() {
                Err(Error::ConnectionClosed) => None,
                read => Some(read),
            };
            if let ControlFlow::Break(result) = transport::close_step(next) {
                result?;
                return Ok(self.conn.close_frame().cloned());
            }
        }
    }

    /// Sends a timed Ping ([`Connection::ping`]) and flushes it; once
    /// [`read`](Self::read) has returned its Pong, [`stats`](Self::stats)
    /// has the round-trip time.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn ping(&mut self) -> Result<(), Error> {
        self.conn.ping(Instant::now())?;
        self.flush()
    }

    /// The connection's counters and Ping round-trip time ([`Connection::stats`]).
    #[must_use]
    pub fn stats(&self) -> crate::connection::Stats {
        self.conn.stats()
    }

    /// The protocol state (for its getters: state, close frame, role).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    opening_getters!(conn);

    /// The stream.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (e.g. to set timeouts). Reading or writing it
    /// directly corrupts the connection.
    #[must_use]
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The connection and the stream.
    #[must_use]
    pub fn into_parts(self) -> (Connection, S) {
        (self.conn, self.stream)
    }

    /// The lingering close, once the connection failed or its close is
    /// over: writes what is queued (the Close), shuts the write side when
    /// the connection says so, and reads and discards until the peer's end
    /// or [`Config::close_timeout`](crate::Config::close_timeout), so the
    /// stream is never dropped with unread input, which the kernel answers
    /// with a reset that can destroy the Close on its way
    /// (`tests/blocking.rs`).
    fn linger(&mut self) -> io::Result<()> {
        loop {
            self.write_out()?;
            if self.conn.should_close_transport() && !self.shut {
                self.shut = true;
                self.stream.shutdown_write()?;
            }
            if self.conn.is_finished() {
                return Ok(());
            }
            self.fill()?;
            // Nothing is delivered after a Close or a failure: this drops it.
            while let Ok(Some(_)) = self.conn.next_message() {}
        }
    }

    /// Reads once into the connection's input buffer.
    fn fill(&mut self) -> io::Result<()> {
        let result = loop {
            match self.conn.read_into(|buf| self.stream.read(buf)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        transport::after_read(&mut self.conn, result, Instant::now())
    }

    /// Writes everything queued, then flushes the stream.
    fn write_out(&mut self) -> io::Result<()> {
        let stream = &mut self.stream;
        blocking(transport::poll_write_out(&mut self.conn, |call| {
            Poll::Ready(write(stream, call))
        }))?;
        self.stream.flush()
    }
}

/// After a refusal written before the request was read (an admission
/// limit at accept): reads the head the client sends, to its blank line,
/// so that dropping the stream does not answer it with a reset, which can
/// overtake the response. Bounded by the head limit's default and the
/// stream's read timeout; any error ends it.
fn read_unread_head<S: Read>(stream: &mut S) {
    const END: &[u8; 4] = b"\r\n\r\n";
    let mut scrap = [0; 1024];
    let mut matched = 0;
    let mut left = crate::handshake::HandshakeLimits::default().max_head_bytes;
    while left > 0 {
        let n = match stream.read(&mut scrap) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for &byte in scrap.get(..n).unwrap_or_default() {
            matched = if END.get(matched) == Some(&byte) {
                matched + 1
            } else {
                usize::from(byte == b'\r')
            };
            if matched == END.len() {
                return;
            }
        }
        left = left.saturating_sub(n);
    }
}

/// An error that says "call again": a non-blocking stream's `WouldBlock`,
/// or a read timeout (which lets the timers run).
fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// One write call on a blocking stream.
fn write<S: Write>(stream: &mut S, call: WriteCall<'_>) -> io::Result<usize> {
    match call {
        WriteCall::Plain(buf) => stream.write(buf),
        WriteCall::Vectored(slices) => stream.write_vectored(slices),
    }
}

/// The result of a poll-shaped loop whose every call answered at once.
fn blocking<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<S: Read + Write + HalfClose> WebSocket<S> {
    /// Runs the server handshake as `server` says: its [`Config`](crate::Config), limits,
    /// subprotocols, admission limits and request callback
    /// (`&ServerBuilder::new()` accepts every valid request). `incoming` is
    /// the stream, or the stream and its peer address as
    /// `TcpListener::accept` returns them ([`IntoIncoming`]).
    ///
    /// ```no_run
    /// use rfc6455::blocking::WebSocket;
    /// use rfc6455::handshake::{AcceptOptions, Rejection};
    /// use rfc6455::ServerBuilder;
    ///
    /// let server = ServerBuilder::new().on_request(|request| match request.bearer_token() {
    ///     Some("s3cret") => Ok(AcceptOptions::new()),
    ///     _ => Err(Rejection::new(401).header("WWW-Authenticate", "Bearer")),
    /// });
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let _ws = WebSocket::accept(listener.accept()?, &server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for an invalid request and [`Error::Rejected`]
    /// when the callback rejected (both after the response was written),
    /// [`Error::Io`] from the stream, [`Error::HandshakeTimeout`] past the
    /// limits' deadline.
    #[doc(alias = "accept_with")]
    pub fn accept<F>(
        incoming: impl IntoIncoming<S, Self>,
        server: &ServerBuilder<F>,
    ) -> Result<Self, Error>
    where
        F: Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
    {
        let Incoming { mut stream, peer } = incoming.into_incoming();
        let conn = handshake(&mut stream, server.driver(Instant::now, peer))?;
        Ok(Self::new(stream, conn))
    }

    /// Runs the client handshake over a connected stream (TCP, TLS, anything).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid request, [`Error::Io`] from the stream,
    /// [`Error::Handshake`] if the response is not an acceptable 101 (a refusal
    /// is [`HandshakeError::Refused`](crate::HandshakeError::Refused) with its
    /// status, headers and body).
    pub fn client(mut stream: S, client: &ClientBuilder) -> Result<(Self, Accepted), Error> {
        let (conn, accepted) = handshake(&mut stream, client.driver(Instant::now())?)?;
        Ok((Self::new(stream, conn), accepted))
    }
}

impl<S: Read + Write + HalfClose> IntoIncoming<S, WebSocket<S>> for S {
    fn into_incoming(self) -> Incoming<S> {
        Incoming::new(self, None)
    }
}

impl<S: Read + Write + HalfClose> IntoIncoming<S, WebSocket<S>> for (S, std::net::SocketAddr) {
    fn into_incoming(self) -> Incoming<S> {
        Incoming::new(self.0, Some(self.1))
    }
}

impl WebSocket<MaybeTlsStream> {
    /// Connects over TCP (with `TCP_NODELAY`), then TLS for `wss://`
    /// (feature `rustls`), and runs the client handshake; `client` is a URL
    /// or a [`ClientBuilder`]. Over another TLS stack, connect its stream
    /// and use [`client`](WebSocket::client).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad URL, [`Error::TlsRequired`] for `wss://`
    /// without the `rustls` feature, [`Error::Io`] from connecting or from
    /// TLS, [`Error::Handshake`] if the server refused.
    #[doc(alias = "tungstenite::connect")]
    pub fn connect(client: impl IntoClientBuilder) -> Result<(Self, Accepted), Error> {
        let client = client.into_client_builder()?;
        let tcp = TcpStream::connect(transport::connect_target(&client)?)?;
        tcp.set_nodelay(true)?;
        let request = client.request();
        // A read timeout lets the handshake deadline fire even if the server says nothing.
        tcp.set_read_timeout(request.limits().timeout)?;
        let stream = if request.is_secure() {
            tls(tcp, &client)?
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        let (ws, accepted) = Self::client(stream, &client)?;
        ws.get_ref().tcp().set_read_timeout(None)?;
        Ok((ws, accepted))
    }
}

#[cfg(feature = "rustls")]
fn tls(tcp: TcpStream, client: &ClientBuilder) -> Result<MaybeTlsStream, Error> {
    let (config, name) = crate::tls::for_client(client)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(
        conn, tcp,
    ))))
}

#[cfg(not(feature = "rustls"))]
fn tls(_: TcpStream, _: &ClientBuilder) -> Result<MaybeTlsStream, Error> {
    Err(Error::TlsRequired)
}

/// The stream [`WebSocket::connect`] opens: TCP, or TLS over TCP for
/// `wss://` (feature `rustls`).
pub type MaybeTlsStream = MaybeTls<TcpStream, TlsStream>;

/// The TLS stream of a `wss://` connection.
#[cfg(feature = "rustls")]
type TlsStream = Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;
#[cfg(not(feature = "rustls"))]
type TlsStream = crate::connection::NoTls;

impl MaybeTlsStream {
    /// The TCP stream underneath (for socket options such as read timeouts).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.get_ref(),
            #[cfg(not(feature = "rustls"))]
            Self::Rustls(never) => match *never {},
        }
    }
}

/// Moves a handshake's bytes until it is done. Its deadline is checked
/// after every read; a read that times out (a socket read timeout) before
/// the deadline is retried, so such a timeout only sets how often the
/// deadline is checked, even for a silent peer.
fn handshake<S: Read + Write, R: Advance>(
    stream: &mut S,
    driver: HandshakeDriver<R>,
) -> Result<R::Done, Error> {
    transport::handshake_done::<R>(handshake_io(stream, driver))
}

fn handshake_io<S: Read + Write, R: Advance>(
    stream: &mut S,
    mut driver: HandshakeDriver<R>,
) -> Result<R::Done, Error> {
    let mut read_any = false;
    let mut answered = false;
    loop {
        let progress = driver.poll_role(Instant::now()).inspect_err(|_| {
            if answered && !read_any && R::ROLE == Role::Server {
                read_unread_head(stream);
            }
        })?;
        match progress {
            Progress::Write => {
                answered = true;
                blocking(transport::poll_write_buf(driver.outgoing(), |call| {
                    Poll::Ready(write(stream, call))
                }))?;
                stream.flush()?;
            }
            Progress::Read => match crate::conn::read_zeroed(driver.read_buf(), usize::MAX, |buf| {
                stream.read(buf)
            }) {
                Ok(0) => driver.receive_eof(),
                Ok(_) => read_any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if driver.poll_timeout().is_some()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                Err(e) => return Err(e.into()),
            },
            Progress::Done(done) => return Ok(done),
        }
    }
}
