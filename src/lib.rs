//! A sans-IO implementation of the WebSocket protocol (RFC 6455).
//!
//! The protocol lives in [`Connection`], which owns no socket, clock or
//! thread. Bytes from the transport go in, messages come out; messages go in,
//! bytes for the transport come out:
//!
//! ```text
//!            transport side                          application side
//!   read ─▶ read_buf() / receive() ─┐          ┌─▶ next_message() ─▶ Message
//!   EOF  ─▶ receive_eof() ──────────┤          │
//!   time ─▶ handle_timeout(now) ────┼─▶ Connection
//!                                   │          │
//!  write ◀─ outgoing(): impl Buf ◀──┘          └─◀ send(Message) / close(code, reason)
//!  timer ◀─ poll_timeout()
//! ```
//!
//! Pongs, the echo of a received Close and the Close that reports a protocol
//! error are queued by the connection itself; the caller only moves bytes.
//! Because nothing here does I/O, the same connection runs over TCP, TLS,
//! an HTTP/2 stream or, as below, two in-memory buffers.
//!
//! ```
//! use bytes::Buf;
//! use rfc6455::{CloseCode, Config, Connection, Message, Role, State};
//!
//! let mut client = Connection::new(Role::Client, Config::default())?;
//! let mut server = Connection::new(Role::Server, Config::default())?;
//!
//! // Move every queued byte from one connection to the other.
//! fn pump(from: &mut Connection, to: &mut Connection) {
//!     let out = from.outgoing();
//!     while out.has_remaining() {
//!         let n = out.chunk().len();
//!         to.receive(out.chunk());
//!         out.advance(n);
//!     }
//! }
//!
//! client.send(Message::text("hello"))?;
//! pump(&mut client, &mut server);
//! assert_eq!(server.next_message()?, Some(Message::text("hello")));
//! assert_eq!(server.next_message()?, None); // need more bytes
//!
//! // The server starts the close handshake; the client's echo is automatic.
//! server.close(CloseCode::NORMAL, "bye")?;
//! pump(&mut server, &mut client);
//! let Some(Message::Close(Some(frame))) = client.next_message()? else { panic!() };
//! assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "bye"));
//! pump(&mut client, &mut server);
//! assert!(matches!(server.next_message()?, Some(Message::Close(_))));
//! assert_eq!(server.state(), State::Closed);
//! assert!(server.should_close_transport()); // the server closes TCP first (§7.1.1)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`frame`]: the stateless wire format (§5.2, §5.3), for tools and fuzzers.
//! - [`handshake`]: the opening handshake (§4) for both roles, sans-IO too.
//! - [`blocking`]: the adapter over `std::io::Read + Write` streams.
//! - `rt` (features `tokio`, `futures-io`): the async adapters, a `Stream` +
//!   `Sink` over `AsyncRead + AsyncWrite`: `rt::tokio` and `rt::futures_io`.
//! - The crate root: [`Connection`] and the types it speaks in.
//!
//! # Limits
//!
//! Every size a peer controls is bounded by [`Config`] and checked from the
//! frame header, before its payload is buffered. Nothing a peer sends can
//! make the connection panic; it fails with a [`ProtocolError`] and the
//! matching close code instead.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
// No byte from a peer may reach a panic: no indexing, unwrapping or panicking
// in library code (tests may). Arithmetic on numbers a peer controls is
// checked where they are parsed and accounted (frame/, conn/recv.rs,
// handshake/, close.rs, utf8.rs, extensions/deflate.rs deny
// `clippy::arithmetic_side_effects`); elsewhere counters use plain
// arithmetic, whose overflow would be a bug that debug builds report.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod blocking;
mod builder;
mod close;
mod config;
mod conn;
mod error;
pub mod extensions;
pub mod frame;
pub mod handshake;
mod message;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tokio", feature = "futures-io"))))]
pub mod rt;
#[cfg(feature = "rustls")]
mod tls;
mod transport;
mod utf8;

pub use builder::{AcceptAll, ClientBuilder, IntoClientBuilder, ServerBuilder};
pub use close::{CloseCode, CloseFrame};
pub use config::Config;
pub use conn::{Connection, Role, State};
pub use error::{ConfigError, Error, ProtocolError, SendError};
pub use handshake::HandshakeError;
pub use message::{Message, Utf8Bytes};

/// The types a [`Connection`]'s methods speak in besides those at the crate
/// root: its output queue, which side started the close, the kind of a
/// message sent in fragments.
pub mod connection {
    pub use crate::conn::{Outgoing, Side};
    pub use crate::message::DataKind;
}

/// The README's examples, compiled and run as doctests (they use the tokio adapter).
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
