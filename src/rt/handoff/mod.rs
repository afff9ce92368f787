//! Handing the listening sockets and live connections of one process to
//! the next, over a Unix socket: a deploy that keeps its connections
//! (Linux: descriptors are received close-on-exec, sent without SIGPIPE).
//!
//! The running process [`offer`](Handoff::offer)s a handoff at a path and
//! waits for a [`successor`](Handoff::successor). A new process started
//! with the same path [`take_over`]s: it receives the listening sockets
//! first (both processes accept from the same queue meanwhile, so no
//! connection attempt is refused during the switch), then each connection:
//! its socket, its [`Connection`] snapshot
//! ([`Connection::freeze`]) and a payload of the application's (a chat
//! member's room, a subscriber's topics). Sockets travel as descriptors
//! (`SCM_RIGHTS`, through `rustix`); what the peer sends meanwhile waits in
//! the kernel's buffer of the same socket, so nothing is lost or reordered.
//!
//! A connection is handed over between messages: [`Successor::connection`]
//! flushes its output, freezes it, and sends it; if anything fails before
//! the successor has it, the stream comes back to the caller, which keeps
//! serving it. A snapshot the successor cannot thaw has its connection
//! closed with 1011 ([`Inherited::Refused`]), never served half-restored.
//!
//! A server whose connection tasks a [`Drain`](crate::rt::drain::Drain) watches hands them all over
//! with [`Drain::transfer`](crate::rt::drain::Drain::transfer): each stream, at its next message boundary,
//! returns [`Error::HandoffRequested`] from `next`, and its task answers
//! with [`Drain::hand_over`](crate::rt::drain::Drain::hand_over) (its payload given) or carries on.
//!
//! ```no_run
//! use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
//! use rfc6455::rt::handoff::{Handoff, Inherited, serve_until, take_over};
//! use rfc6455::rt::tokio::WebSocketStream;
//! use rfc6455::{Config, Error, ServerBuilder};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! /// Echoes until the connection ends or moves to the successor.
//! async fn serve(mut ws: WebSocketStream<TcpStream>, drain: Drain) -> Result<(), Error> {
//!     loop {
//!         match ws.next().await {
//!             Some(Ok(message)) if !message.is_control() => ws.send(message).await?,
//!             Some(Ok(_)) => {}
//!             Some(Err(Error::HandoffRequested)) => match drain.hand_over(ws, b"").await {
//!                 Ok(()) => return Ok(()),
//!                 Err(back) => ws = back.stream, // not moved: serve on
//!             },
//!             Some(Err(error)) => return Err(error),
//!             None => return Ok(()),
//!         }
//!     }
//! }
//!
//! # #[allow(dead_code)]
//! # async fn run() -> std::io::Result<()> {
//! let drain = Drain::new(DrainConfig::default());
//! let server = ServerBuilder::new().drain(&drain);
//! // Take over from a running process, or start afresh.
//! let mut listener = None;
//! if let Some(mut predecessor) = take_over("/run/echo.sock", Config::default()).await? {
//!     while let Some(inherited) = predecessor.next().await? {
//!         match inherited {
//!             Inherited::Listener(l) => listener = Some(l),
//!             Inherited::Connection(ws, _payload) => {
//!                 let drain = drain.clone();
//!                 tokio::spawn(drain.clone().watch(async move {
//!                     // Tied to the drain inside its task, as an accept would.
//!                     let mut ws = *ws;
//!                     drain.attach(&mut ws);
//!                     serve(ws, drain).await
//!                 }));
//!             }
//!             _ => {} // a connection refused was closed with 1011
//!         }
//!     }
//! }
//! let listener = match listener {
//!     Some(listener) => listener,
//!     None => TcpListener::bind("127.0.0.1:9001").await?,
//! };
//! let accept = async {
//!     loop {
//!         let (tcp, _) = listener.accept().await?;
//!         let (server, drain) = (server.clone(), drain.clone());
//!         tokio::spawn(drain.clone().watch(async move {
//!             serve(WebSocketStream::accept(tcp, &server).await?, drain).await
//!         }));
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<(), std::io::Error>(())
//! };
//! // Serve until a shutdown drains, or a successor takes everything over.
//! let handoff = Some(Handoff::offer("/run/echo.sock")?);
//! let ended = serve_until(&drain, &listener, handoff, accept, shutdown_signal()).await?;
//! eprintln!("{ended:?}");
//! # Ok(()) }
//! ```
//!
//! On the wire, each record is a 10-byte header (kind, descriptor count,
//! body length) carrying its descriptors, then its body; the successor
//! answers each connection's record with one byte once it holds the
//! socket, and only then does the predecessor let go of it. A successor
//! that dies mid-handoff therefore takes no connection with it that it had
//! not acknowledged, and none is served by both.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::tokio::WebSocketStream;
use crate::{CloseCode, Config, Connection, Error, Role, SnapshotError};

mod transfer;

pub(crate) use transfer::Shared;
pub use transfer::{Ended, TakenOver, serve_until};

/// Record kinds.
const LISTENER: u8 = 1;
const CONNECTION: u8 = 2;
const DONE: u8 = 3;
/// The successor's answer to each connection record: it has the socket.
const ACK: u8 = 6;
const HEADER: usize = 10;
/// The largest record body taken (a snapshot holds at most a frame's worth
/// of unparsed input and a message half-received).
const MAX_BODY: u64 = 1 << 30;

/// A handoff offered at a path, waiting for a successor.
#[derive(Debug)]
pub struct Handoff {
    listener: UnixListener,
    path: PathBuf,
}

impl Handoff {
    /// Offers a handoff at `path` (a Unix socket; one left by a process
    /// that is gone is replaced).
    ///
    /// # Errors
    ///
    /// The socket cannot be bound (a live process offers at `path`
    /// already, or the directory is not writable).
    pub fn offer(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        if std::os::unix::net::UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        Ok(Self {
            listener: UnixListener::bind(&path)?,
            path,
        })
    }

    /// The path it is offered at.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for a successor to connect; the path is then withdrawn (the
    /// successor offers its own there once it has taken over).
    ///
    /// # Errors
    ///
    /// Accepting failed.
    pub async fn successor(self) -> io::Result<Successor> {
        let (stream, _) = self.listener.accept().await?;
        let _ = std::fs::remove_file(&self.path);
        let (reader, writer) = stream.into_split();
        Ok(Successor {
            writer,
            reader: Some(reader),
            report: HandoffReport::default(),
            started: Instant::now(),
            broken: false,
        })
    }
}

/// What a handoff moved.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandoffReport {
    /// Listening sockets handed over.
    pub listeners: usize,
    /// Connections handed over.
    pub connections: usize,
    /// Bytes of connection state (snapshots and payloads).
    pub state_bytes: u64,
    /// From the successor's arrival to the end.
    pub took: Duration,
    /// Watched connections that stayed with this process
    /// ([`Drain::transfer`](crate::rt::drain::Drain::transfer)): they did not reach a message boundary within
    /// [`handoff_timeout`](crate::rt::drain::DrainConfig::handoff_timeout).
    pub stayed: usize,
}

impl fmt::Display for HandoffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let each = self
            .state_bytes
            .checked_div(self.connections as u64)
            .unwrap_or(0);
        write!(
            f,
            "handed over {} listeners and {} connections ({} bytes of state, {each} each) in {:?}; {} stayed",
            self.listeners, self.connections, self.state_bytes, self.took, self.stayed
        )
    }
}

/// The connected successor: what is sent to it is its to serve.
#[derive(Debug)]
pub struct Successor {
    writer: OwnedWriteHalf,
    /// Where acknowledgements come from; a [`Drain::transfer`](crate::rt::drain::Drain::transfer) reads them
    /// on its own, beside the tasks' sending.
    reader: Option<OwnedReadHalf>,
    report: HandoffReport,
    started: Instant,
    /// A record failed half-way: nothing more can be sent.
    broken: bool,
}

/// A connection [`Successor::connection`] could not hand over: serve it on.
#[derive(Debug)]
pub struct NotHandedOver {
    /// The stream, as it was.
    pub stream: WebSocketStream<TcpStream>,
    /// Why: its output could not be written, it cannot be frozen now (a
    /// compressed message half-received: try after the next message), or
    /// the successor is gone.
    pub error: Error,
}

impl Successor {
    /// Hands over a listening socket; this process may keep accepting from
    /// it until it stops (both accept from the same queue).
    ///
    /// # Errors
    ///
    /// The successor is gone.
    pub async fn listener(&mut self, listener: &TcpListener) -> io::Result<()> {
        self.send(LISTENER, Some(listener.as_fd()), &[]).await?;
        self.report.listeners += 1;
        Ok(())
    }

    /// Sends a record; once one fails, every later one fails too (the
    /// successor has half a record).
    async fn send(&mut self, kind: u8, fd: Option<BorrowedFd<'_>>, body: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the successor is gone",
            ));
        }
        let sent = send_record(&mut self.writer, kind, fd, body).await;
        self.broken = sent.is_err();
        sent
    }

    /// Hands over a connection between messages, with `payload` for the
    /// application on the other side: flushes its output, freezes it, and
    /// sends its socket and state. On success (the successor acknowledged
    /// it) it is the successor's: this process drops its copy of the socket.
    ///
    /// # Errors
    ///
    /// [`NotHandedOver`], with the stream back as it was, when it could
    /// not be handed over; the successor did not take it.
    pub async fn connection(
        &mut self,
        stream: WebSocketStream<TcpStream>,
        payload: &[u8],
    ) -> Result<(), Box<NotHandedOver>> {
        let sent = self.send_connection(stream, payload).await?;
        let mut ack = [0u8];
        let received = match self.reader.as_mut() {
            Some(reader) => reader.read_exact(&mut ack).await.map(drop),
            None => Err(gone()),
        };
        if received.is_err() || ack != [ACK] {
            self.broken = true;
            return Err(sent.give_back(Error::Io(gone())));
        }
        self.report.connections += 1;
        self.report.state_bytes += sent.bytes;
        Ok(())
    }

    /// Sends a connection's record; it is the successor's once
    /// acknowledged (a record still in the socket's buffer when the
    /// successor dies would take its connection with it).
    async fn send_connection(
        &mut self,
        mut stream: WebSocketStream<TcpStream>,
        payload: &[u8],
    ) -> Result<Sent, Box<NotHandedOver>> {
        if let Err(error) = stream.flush().await {
            return Err(Box::new(NotHandedOver { stream, error }));
        }
        let (mut conn, tcp) = stream.into_parts();
        let now = tokio::time::Instant::now().into_std();
        let snapshot = match conn.freeze(now) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                let sent = Sent {
                    conn,
                    tcp,
                    bytes: 0,
                };
                return Err(sent.give_back(Error::Snapshot(error)));
            }
        };
        let mut body = Vec::with_capacity(8 + snapshot.len() + payload.len());
        body.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
        body.extend_from_slice(&snapshot);
        body.extend_from_slice(payload);
        let result = self.send(CONNECTION, Some(tcp.as_fd()), &body).await;
        let sent = Sent {
            conn,
            tcp,
            bytes: body.len() as u64,
        };
        match result {
            Ok(()) => Ok(sent),
            Err(error) => Err(sent.give_back(Error::Io(error))),
        }
    }

    /// Ends the handoff: tells the successor nothing more comes, and waits
    /// until it has read everything (it closes its end).
    ///
    /// # Errors
    ///
    /// The successor is gone before it read the end.
    pub async fn finish(mut self) -> io::Result<HandoffReport> {
        self.send(DONE, None, &[]).await?;
        let mut rest = Vec::new();
        self.reader
            .as_mut()
            .ok_or_else(gone)?
            .read_to_end(&mut rest)
            .await?;
        self.report.took = self.started.elapsed();
        #[cfg(feature = "metrics")]
        {
            let report = &self.report;
            ::metrics::counter!("websocket_handoff_connections_total")
                .increment(report.connections as u64);
            ::metrics::counter!("websocket_handoff_state_bytes_total")
                .increment(report.state_bytes);
            ::metrics::histogram!("websocket_handoff_seconds").record(report.took.as_secs_f64());
        }
        Ok(self.report)
    }
}

/// A connection sent, kept until the successor acknowledges it.
struct Sent {
    conn: Connection,
    tcp: TcpStream,
    bytes: u64,
}

impl Sent {
    /// The stream as it was, not handed over.
    fn give_back(self, error: Error) -> Box<NotHandedOver> {
        Box::new(NotHandedOver {
            stream: WebSocketStream::new(self.tcp, self.conn),
            error,
        })
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the successor is gone")
}

/// What [`Predecessor::next`] received.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inherited {
    /// A listening socket to accept from.
    Listener(TcpListener),
    /// A connection to serve, with the predecessor's payload for it
    /// (boxed: a stream is large beside the other variants).
    Connection(Box<WebSocketStream<TcpStream>>, Vec<u8>),
    /// A connection whose snapshot could not be thawed: it was closed with
    /// 1011.
    Refused(SnapshotError),
}

/// The process being taken over from.
#[derive(Debug)]
pub struct Predecessor {
    stream: UnixStream,
    config: Arc<Config>,
}

/// Takes over from the process offering a handoff at `path`, running the
/// connections it hands over with `config`; `None` when no process offers
/// one there (start afresh).
///
/// # Errors
///
/// Connecting failed otherwise.
pub async fn take_over(
    path: impl AsRef<Path>,
    config: impl Into<Arc<Config>>,
) -> io::Result<Option<Predecessor>> {
    match UnixStream::connect(path.as_ref()).await {
        Ok(stream) => Ok(Some(Predecessor {
            stream,
            config: config.into(),
        })),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

impl Predecessor {
    /// The next listener or connection handed over; `None` once the
    /// predecessor is done (it then exits).
    ///
    /// # Errors
    ///
    /// The predecessor went away mid-record, or sent one that is not of
    /// this protocol.
    pub async fn next(&mut self) -> io::Result<Option<Inherited>> {
        let (kind, fd, body) = receive_record(&mut self.stream).await?;
        match (kind, fd) {
            (DONE, None) => {
                self.stream.shutdown().await?;
                Ok(None)
            }
            (LISTENER, Some(fd)) => {
                let listener = std::net::TcpListener::from(fd);
                listener.set_nonblocking(true)?;
                Ok(Some(Inherited::Listener(TcpListener::from_std(listener)?)))
            }
            (CONNECTION, Some(fd)) => {
                // The socket is ours before it is served: the predecessor
                // may let go of it.
                self.stream.write_all(&[ACK]).await?;
                let tcp = std::net::TcpStream::from(fd);
                tcp.set_nonblocking(true)?;
                let tcp = TcpStream::from_std(tcp)?;
                Ok(Some(self.thaw(tcp, &body).await))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a handoff record",
            )),
        }
    }

    async fn thaw(&self, mut tcp: TcpStream, body: &[u8]) -> Inherited {
        let now = tokio::time::Instant::now().into_std();
        let parts = body.split_at_checked(8).and_then(|(len, rest)| {
            let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
            rest.split_at_checked(len)
        });
        let thawed = match parts {
            Some((snapshot, payload)) => Connection::thaw(snapshot, Arc::clone(&self.config), now)
                .map(|conn| (conn, payload.to_vec())),
            None => Err(SnapshotError::NotASnapshot),
        };
        #[cfg(feature = "metrics")]
        ::metrics::counter!("websocket_handoff_inherited_total",
            "outcome" => if thawed.is_ok() { "thawed" } else { "refused" })
        .increment(1);
        match thawed {
            Ok((conn, payload)) => {
                Inherited::Connection(Box::new(WebSocketStream::new(tcp, conn)), payload)
            }
            Err(error) => {
                // The peer is told the server failed, not left hanging.
                if let Ok(mut conn) = Connection::new(Role::Server, Config::default()) {
                    let _ = conn.close(CloseCode::INTERNAL_ERROR, "state lost in handoff");
                    let mut out = Vec::new();
                    let queue = conn.outgoing();
                    while bytes::Buf::has_remaining(queue) {
                        let chunk = bytes::Buf::chunk(queue).to_vec();
                        bytes::Buf::advance(queue, chunk.len());
                        out.extend_from_slice(&chunk);
                    }
                    let _ = tcp.write_all(&out).await;
                }
                Inherited::Refused(error)
            }
        }
    }
}

/// Sends one record: its header with `fd` attached, then its body.
async fn send_record(
    stream: &mut OwnedWriteHalf,
    kind: u8,
    fd: Option<BorrowedFd<'_>>,
    body: &[u8],
) -> io::Result<()> {
    let len = (body.len() as u64).to_le_bytes();
    let header: [u8; HEADER] = [
        kind,
        u8::from(fd.is_some()),
        len[0],
        len[1],
        len[2],
        len[3],
        len[4],
        len[5],
        len[6],
        len[7],
    ];
    let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
    let shared: &UnixStream = stream.as_ref();
    let sent = shared
        .async_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(io::Error::other("descriptor does not fit"));
            }
            let iov = [IoSlice::new(&header)];
            sendmsg(shared, &iov, &mut control, SendFlags::NOSIGNAL).map_err(io::Error::from)
        })
        .await?;
    if sent == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    // The descriptor went with the first byte; the rest is plain bytes.
    stream
        .write_all(header.get(sent..).unwrap_or_default())
        .await?;
    stream.write_all(body).await
}

/// Receives one record: its kind, its descriptor if any, its body.
async fn receive_record(stream: &mut UnixStream) -> io::Result<(u8, Option<OwnedFd>, Vec<u8>)> {
    let mut header = [0u8; HEADER];
    let mut fd = None;
    let shared: &UnixStream = stream;
    let got = shared
        .async_io(Interest::READABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut header)];
            let received = recvmsg(shared, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
                .map_err(io::Error::from)?;
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    for received_fd in fds {
                        // A second descriptor is not of this protocol: dropped.
                        fd.get_or_insert(received_fd);
                    }
                }
            }
            Ok(received.bytes)
        })
        .await?;
    if got == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if let Some(rest) = header.get_mut(got..) {
        stream.read_exact(rest).await?;
    }
    let [kind, has_fd, len @ ..] = header;
    let len = u64::from_le_bytes(len);
    if len > MAX_BODY || (has_fd == 1) != fd.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad handoff record",
        ));
    }
    // Memory grows with the bytes that arrive, not with the header's claim.
    let mut body = Vec::new();
    (&mut *stream).take(len).read_to_end(&mut body).await?;
    if body.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((kind, fd, body))
}
