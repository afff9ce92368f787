//! The whole opening handshake for one role, sans-IO: the buffer, the
//! application's accept/reject decision, the limits and deadline, and
//! extension negotiation, ending in a [`Connection`].
//!
//! An adapter only moves bytes: it calls [`HandshakeDriver::poll`] and does
//! what the answer says (write [`outgoing`](HandshakeDriver::outgoing), read
//! into [`read_buf`](HandshakeDriver::read_buf)) until
//! [`Progress::Done`] or an error. A refusal's response is handed out to be
//! written before the error is returned.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Buf;
//! use rfc6455::handshake::{AcceptOptions, ClientDriver, ClientRequest, Progress, ServerDriver, ServerHandshake};
//! use rfc6455::Config;
//!
//! let now = Instant::now();
//! let request = ClientRequest::new("ws://example.com/chat")?;
//! let mut client = ClientDriver::new(&request, Config::default(), now)?;
//! let mut server = ServerDriver::new(Config::default(), ServerHandshake::new(), now, |_| {
//!     Ok(AcceptOptions::new())
//! });
//!
//! // The client writes its request, the server reads it and answers.
//! assert!(matches!(client.poll(now)?, Progress::Write));
//! server.read_buf().extend_from_slice(client.outgoing().chunk());
//! client.outgoing().clear();
//! assert!(matches!(server.poll(now)?, Progress::Write));
//! client.read_buf().extend_from_slice(server.outgoing().chunk());
//! server.outgoing().clear();
//! let Progress::Done(_server_conn) = server.poll(now)? else { panic!() };
//! let Progress::Done((_client_conn, accepted)) = client.poll(now)? else { panic!() };
//! assert_eq!(accepted.protocol(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::{
    AcceptOptions, Accepted, ClientHandshake, ClientRequest, HandshakeError, Rejection,
    RequestView, ServerHandshake, Status, accept, reject, reject_for,
};
use crate::ConfigError;
use crate::conn::Opening;
use crate::{Config, Connection, Error, Role};

/// The transport ended before the handshake did (or the driver was polled
/// after it finished).
fn closed() -> Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the connection closed during the handshake",
    )
    .into()
}

/// The room a handshake's first read is offered: most request heads fit,
/// and a connection that sends half a head holds no more than this
/// (`tests/pre_head.rs` bounds it). A full buffer grows by as much again
/// as it holds, so a large head takes a few reads.
const FIRST_READ: usize = 1024;

/// What to do next to move a handshake forward.
#[derive(Debug)]
#[must_use = "the handshake moves only if the caller does what this says"]
pub enum Progress<T> {
    /// Write [`HandshakeDriver::outgoing`] to the transport, then poll again.
    Write,
    /// Read from the transport into [`HandshakeDriver::read_buf`] (or call
    /// [`HandshakeDriver::receive_eof`]), then poll again.
    Read,
    /// The handshake is over; frames follow.
    Done(T),
}

/// What a handshake role does, nameable only inside the crate: the seal,
/// so the two roles ([`Accepting`], [`Connecting`]) are the only ones.
pub(crate) mod sealed {
    use super::{Error, Io, Progress, Role};

    #[allow(unnameable_types)]
    pub trait Advance {
        /// What the handshake ends with.
        type Done;

        /// The end of the connection this handshake opens.
        const ROLE: Role;

        /// Moves the role's handshake on, once earlier output is written.
        fn advance(&mut self, io: &mut Io) -> Result<Progress<Self::Done>, Error>;
    }
}

/// The bytes a handshake moves, and its deadline.
#[derive(Debug)]
#[allow(unnameable_types)] // only the sealed roles take it
pub struct Io {
    input: BytesMut,
    output: Bytes,
    deadline: Option<(Instant, Duration)>,
    eof: bool,
}

impl Io {
    fn need_input<T>(&self) -> Result<Progress<T>, Error> {
        if self.eof {
            Err(closed())
        } else {
            Ok(Progress::Read)
        }
    }
}

/// A handshake in progress for one role: [`ServerDriver`] or [`ClientDriver`].
#[derive(Debug)]
pub struct HandshakeDriver<R> {
    io: Io,
    role: R,
}

/// A server's handshake: reads the request, lets the application decide,
/// negotiates extensions per [`Config::deflate`], answers, and ends with the
/// [`Connection`].
pub type ServerDriver<F> = HandshakeDriver<Accepting<F>>;

/// A client's handshake: sends the request (with [`Config::deflate`]'s
/// offer), checks the answer, and ends with the [`Connection`] and what the
/// server [`Accepted`].
pub type ClientDriver = HandshakeDriver<Connecting>;

impl<R> HandshakeDriver<R> {
    fn with_role(role: R, output: Bytes, timeout: Option<Duration>, now: Instant) -> Self {
        Self {
            io: Io {
                input: BytesMut::new(),
                output,
                deadline: timeout.and_then(|limit| Some((now.checked_add(limit)?, limit))),
                eof: false,
            },
            role,
        }
    }

    /// The input buffer with room reserved: read from the transport into
    /// its spare capacity, then [`poll`](Self::poll).
    pub fn read_buf(&mut self) -> &mut BytesMut {
        let input = &mut self.io.input;
        if input.capacity() == input.len() {
            input.reserve(input.len().max(FIRST_READ));
        }
        &mut self.io.input
    }

    /// The transport ended; the next [`poll`](Self::poll) fails with
    /// an [`Error::Io`] of kind `UnexpectedEof` unless the input already holds a whole answer.
    pub fn receive_eof(&mut self) {
        self.io.eof = true;
    }

    /// The bytes to write: write and [`advance`](Buf::advance) past them.
    pub fn outgoing(&mut self) -> &mut Bytes {
        &mut self.io.output
    }

    /// When the handshake times out, if it has a deadline: wake up then and
    /// [`poll`](Self::poll).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.io.deadline.map(|(at, _)| at)
    }

    /// Checks the deadline at `now` and nothing else: for an adapter whose
    /// timer fired while it waited on the transport (a [`poll`](Self::poll)
    /// there could hand out a finished handshake it is not ready to take).
    ///
    /// # Errors
    ///
    /// [`Error::HandshakeTimeout`] once the deadline has passed.
    pub fn check_deadline(&self, now: Instant) -> Result<(), Error> {
        match self.io.deadline {
            Some((at, limit)) if now >= at => Err(Error::HandshakeTimeout(limit)),
            _ => Ok(()),
        }
    }
}

impl<R: sealed::Advance> HandshakeDriver<R> {
    /// What to do next, at `now`: the role's `poll`.
    pub(crate) fn poll_role(&mut self, now: Instant) -> Result<Progress<R::Done>, Error> {
        self.check_deadline(now)?;
        if self.io.output.has_remaining() {
            return Ok(Progress::Write);
        }
        self.role.advance(&mut self.io)
    }
}

/// What [`poll`](HandshakeDriver::poll) says of its errors.
macro_rules! poll_doc {
    () => {
        "What to do next, at `now`.\n\n# Errors\n\n[`Error::HandshakeTimeout`] once \
         the deadline has passed, an [`Error::Io`] of kind `UnexpectedEof` at end of input \
         mid-handshake, and the role's own failures. A failure that has a response to send \
         is returned only once that response has been written."
    };
}

impl<F> ServerDriver<F>
where
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    #[doc = poll_doc!()]
    pub fn poll(&mut self, now: Instant) -> Result<Progress<Connection>, Error> {
        self.poll_role(now)
    }
}

impl ClientDriver {
    #[doc = poll_doc!()]
    pub fn poll(&mut self, now: Instant) -> Result<Progress<(Connection, Accepted)>, Error> {
        self.poll_role(now)
    }
}

/// `rejection`'s response, or a bare 500 if it cannot be written.
fn refusal(rejection: &Rejection) -> Bytes {
    rejection
        .to_bytes()
        .or_else(|_| reject(500, &[], b""))
        .unwrap_or_default()
}

/// The server's part of a handshake (see [`ServerDriver`]).
#[derive(Debug)]
pub struct Accepting<F> {
    parser: ServerHandshake,
    phase: Phase<F>,
}

/// Where a server handshake is; each phase holds what is true in it.
#[derive(Debug)]
enum Phase<F> {
    /// Reading the request; the callback decides once it is whole. The
    /// connection is made then: a pending handshake holds only its config
    /// (`tests/pre_head.rs` bounds what a half-sent head costs).
    Reading { config: Arc<Config>, callback: F },
    /// The server's own configuration cannot work: the request is read and
    /// answered 500.
    Broken(ConfigError),
    /// The 101 is being written; the connection follows it (boxed, so a
    /// pending handshake is not the size of a connection).
    Accepted(Box<Connection>),
    /// A refusal is being written; this is returned after it.
    Refused(Error),
    /// Over: the connection or the error was handed out.
    Done,
}

impl<F> ServerDriver<F>
where
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    /// A server handshake under `parser`'s limits (its timeout counted from
    /// `now`), with `callback` to accept a valid request (with options) or
    /// reject it.
    ///
    /// A `config` that cannot work is the server's fault, not the client's:
    /// the request is read and answered `500`, and the handshake then fails
    /// with [`Error::Config`] (a server never resets a client
    /// for its own configuration).
    pub fn new(
        config: impl Into<Arc<Config>>,
        parser: ServerHandshake,
        now: Instant,
        callback: F,
    ) -> Self {
        let timeout = parser.limits().timeout;
        let config = config.into();
        let phase = match config.check() {
            Ok(()) => Phase::Reading { config, callback },
            Err(error) => Phase::Broken(error),
        };
        let role = Accepting { parser, phase };
        Self::with_role(role, Bytes::new(), timeout, now)
    }

    /// Refuses the connection before its request is read (an admission
    /// limit at accept, say): `rejection`'s response is written, and the
    /// handshake then fails with [`Error::Rejected`]. The callback is never
    /// called and no input is buffered.
    pub fn refuse(&mut self, rejection: &Rejection) {
        self.io.output = refusal(rejection);
        self.io.input = BytesMut::new();
        self.role.phase = Phase::Refused(Error::Rejected(rejection.status()));
    }
}

impl<F> sealed::Advance for Accepting<F>
where
    F: FnOnce(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
{
    type Done = Connection;
    const ROLE: Role = Role::Server;

    fn advance(&mut self, io: &mut Io) -> Result<Progress<Connection>, Error> {
        let next = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => return Err(closed()),
            // The response is written.
            Phase::Accepted(conn) => return Ok(Progress::Done(*conn)),
            Phase::Refused(error) => return Err(error),
            Phase::Broken(error) => {
                // Answer the request once its head is in, as for any refusal.
                if matches!(self.parser.parse(&io.input), Ok(Status::Partial)) {
                    self.phase = Phase::Broken(error);
                    return io.need_input();
                }
                io.output = reject(500, &[], b"").unwrap_or_default();
                Phase::Refused(error.into())
            }
            Phase::Reading { config, callback } => match self.parser.parse(&io.input) {
                Ok(Status::Partial) => {
                    self.phase = Phase::Reading { config, callback };
                    return io.need_input();
                }
                Err(error) => {
                    io.output = reject_for(&error);
                    Phase::Refused(error.into())
                }
                // The config was checked: a server connection cannot fail here.
                Ok(Status::Complete((view, used))) => match Connection::new(Role::Server, config) {
                    Err(error) => {
                        io.output = reject(500, &[], b"").unwrap_or_default();
                        Phase::Refused(error.into())
                    }
                    Ok(mut conn) => {
                        match callback(&view).map(|o| accept_into(&mut conn, &view, o, accept)) {
                            Ok(Ok(response)) => {
                                conn.receive(io.input.get(used..).unwrap_or_default());
                                io.output = response;
                                Phase::Accepted(Box::new(conn))
                            }
                            Ok(Err(build)) => {
                                io.output = reject(500, &[], b"").unwrap_or_default();
                                Phase::Refused(build.into())
                            }
                            Err(rejection) => {
                                io.output = refusal(&rejection);
                                Phase::Refused(Error::Rejected(rejection.status()))
                            }
                        }
                    }
                },
            },
        };
        self.phase = next;
        io.input = BytesMut::new();
        Ok(Progress::Write)
    }
}

/// The client's part of a handshake (see [`ClientDriver`]).
#[derive(Debug)]
pub struct Connecting {
    handshake: ClientHandshake,
    conn: Option<Connection>,
    /// The request target, for the connection's record.
    target: Box<str>,
}

impl ClientDriver {
    /// A client handshake for `request`, offering permessage-deflate per
    /// [`Config::deflate`] unless the request offers it itself; the
    /// request's [`HandshakeLimits::timeout`](super::HandshakeLimits::timeout)
    /// counts from `now`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a request that cannot be sent or a `config`
    /// that cannot work.
    pub fn new(
        request: &ClientRequest,
        config: impl Into<Arc<Config>>,
        now: Instant,
    ) -> Result<Self, Error> {
        let conn = Connection::new(Role::Client, config)?;
        let request = offer_client(conn.config(), request);
        let (handshake, bytes) = ClientHandshake::new(&request)?;
        let role = Connecting {
            handshake,
            conn: Some(conn),
            target: request.target().into(),
        };
        Ok(Self::with_role(role, bytes, request.limits().timeout, now))
    }
}

impl sealed::Advance for Connecting {
    type Done = (Connection, Accepted);
    const ROLE: Role = Role::Client;

    fn advance(&mut self, io: &mut Io) -> Result<Progress<Self::Done>, Error> {
        let Status::Complete((accepted, used)) = self.handshake.receive(&io.input)? else {
            return io.need_input();
        };
        let mut conn = self.conn.take().ok_or_else(closed)?;
        open_client(&mut conn, &accepted, &self.target)?;
        conn.receive(io.input.get(used..).unwrap_or_default());
        io.input = BytesMut::new();
        Ok(Progress::Done((conn, accepted)))
    }
}

/// A client connection after the server's answer: what was negotiated
/// applied, the subprotocol and target recorded.
fn open_client(conn: &mut Connection, accepted: &Accepted, target: &str) -> Result<(), Error> {
    negotiate_client(conn.config(), accepted)?.apply(conn);
    let opening = Opening {
        protocol: accepted.protocol().map(Into::into),
        ..Opening::default()
    };
    conn.opened(opening, target);
    Ok(())
}

/// A client's WebSocket over an HTTP/2 stack (RFC 8441): the extended
/// CONNECT to send (permessage-deflate offered per [`Config::deflate`], as
/// over HTTP/1.1), and from its answer the connection.
#[cfg(feature = "h2")]
pub(crate) struct ExtendedConnect {
    handshake: ClientHandshake,
    conn: Connection,
    target: Box<str>,
}

#[cfg(feature = "h2")]
impl ExtendedConnect {
    pub(crate) fn new(
        request: &ClientRequest,
        config: Arc<Config>,
    ) -> Result<(Self, http::Request<()>), Error> {
        let conn = Connection::new(Role::Client, config)?;
        let request = offer_client(conn.config(), request);
        let (handshake, http) = ClientHandshake::new_extended_connect(&request)?;
        let target = request.target().into();
        Ok((
            Self {
                handshake,
                conn,
                target,
            },
            http,
        ))
    }

    /// The connection, if `response` accepts.
    pub(crate) fn finish<T>(
        mut self,
        response: &http::Response<T>,
    ) -> Result<(Connection, Accepted), Error> {
        let accepted = self.handshake.receive_extended_connect(response)?;
        open_client(&mut self.conn, &accepted, &self.target)?;
        Ok((self.conn, accepted))
    }
}

/// What the handshake agreed on, to apply to the new connection.
#[derive(Debug, Default)]
struct Negotiated {
    #[cfg(feature = "deflate")]
    deflate: Option<crate::extensions::deflate::DeflateParams>,
}

impl Negotiated {
    // Without `deflate` there is nothing to apply.
    #[cfg_attr(not(feature = "deflate"), allow(clippy::needless_pass_by_ref_mut))]
    fn apply(self, conn: &mut Connection) {
        #[cfg(feature = "deflate")]
        if let Some(params) = self.deflate {
            conn.set_deflate(params);
        }
        let _ = conn;
    }
}

/// Completes a server's answer to a valid request: negotiates what the
/// connection's config offers (permessage-deflate) unless `options` already
/// answered it, builds the response with `respond`, and sets `conn` up for
/// what the response says. The adapters' drivers and the `http` path share it.
pub(crate) fn accept_into<T>(
    conn: &mut Connection,
    view: &RequestView<'_>,
    options: AcceptOptions,
    respond: impl FnOnce(&RequestView<'_>, &AcceptOptions) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let (options, negotiated) = negotiate_server(conn.config(), view, options);
    let response = respond(view, &options)?;
    negotiated.apply(conn);
    conn.opened(options.into_opening(), view.target());
    Ok(response)
}

/// A server's negotiation: unless the application answered the extensions
/// itself, permessage-deflate is accepted per `config.deflate`.
fn negotiate_server(
    config: &Config,
    view: &RequestView<'_>,
    options: AcceptOptions,
) -> (AcceptOptions, Negotiated) {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate
        && !options.has_extensions()
        && let Some((answer, params)) = deflate.negotiate(&view.extensions())
    {
        let negotiated = Negotiated {
            deflate: Some(params),
        };
        return (options.extensions(answer), negotiated);
    }
    let _ = (config, view);
    (options, Negotiated::default())
}

/// A client's offer: `config.deflate`'s, unless the request offers
/// permessage-deflate itself.
fn offer_client(config: &Config, request: &ClientRequest) -> ClientRequest {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate
        && !request.offers(crate::extensions::deflate::NAME)
    {
        return request.clone().extension(deflate.offer());
    }
    let _ = config;
    request.clone()
}

/// A client's check of the server's answer against its own offer.
fn negotiate_client(config: &Config, accepted: &Accepted) -> Result<Negotiated, HandshakeError> {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate {
        return Ok(Negotiated {
            deflate: deflate.accept(&accepted.extensions())?,
        });
    }
    let _ = (config, accepted);
    Ok(Negotiated::default())
}
