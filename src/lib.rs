//! A WebSocket library (RFC 6455, permessage-deflate RFC 7692, RFC 8441):
//! servers and clients on tokio, on any `futures-io` runtime or on blocking
//! sockets, over one sans-IO protocol core.
//!
//! # Start here
//!
//! Add `rfc6455` to `Cargo.toml` (its default features are the tokio
//! adapter and permessage-deflate). A server says once how it answers
//! handshakes with a [`ServerBuilder`] and accepts each TCP stream with it:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # #[allow(dead_code)]
//! # async fn server() -> Result<(), rfc6455::Error> {
//! use rfc6455::handshake::{AcceptOptions, Rejection};
//! use rfc6455::rt::tokio::WebSocketStream;
//! use rfc6455::ServerBuilder;
//!
//! let server = ServerBuilder::new()
//!     .protocols(["chat"])
//!     .on_request(|request| match request.bearer_token() {
//!         Some("s3cret") => Ok(AcceptOptions::new()),
//!         _ => Err(Rejection::new(401)),
//!     });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let server = server.clone();
//!     tokio::spawn(async move {
//!         let mut ws = WebSocketStream::accept(tcp, &server).await?;
//!         while let Some(message) = ws.next().await {
//!             let message = message?;
//!             if message.is_text() || message.is_binary() {
//!                 ws.send(message).await?;
//!             }
//!         }
//!         Ok::<(), rfc6455::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! A client connects with a URL or a [`ClientBuilder`] (subprotocols,
//! headers, [`Config`]); `wss://` needs one of the `rustls` features:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # #[allow(dead_code)]
//! # async fn client() -> Result<(), Box<dyn std::error::Error>> {
//! use rfc6455::rt::tokio::connect_async;
//! use rfc6455::{ClientBuilder, CloseCode, Message};
//!
//! let client = ClientBuilder::new("ws://127.0.0.1:9001/")?.protocol("chat");
//! let (mut ws, accepted) = connect_async(&client).await?;
//! ws.send(Message::text("hello")).await?;
//! if let Some(reply) = ws.next().await {
//!     let reply = reply?;
//!     if let Message::Text(text) = &reply {
//!         let text: &str = text; // Utf8Bytes dereferences to str
//!         println!("{text} (subprotocol {:?})", accepted.protocol());
//!     }
//! }
//! ws.close(CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```
//!
//! `WebSocketStream` is a `futures` `Stream` of messages and `Sink` for
//! them; [`split`](rt::WebSocketStream::split) gives the halves in
//! `StreamExt::split`'s order (sink, stream) and `reunite` joins them.
//!
//! # Every way to a live WebSocket
//!
//! Options (config, subprotocols, request callback, admission limits,
//! drain) live on the builders; each adapter has the same four verbs.
//!
//! | job | async ([`rt::tokio`], [`rt::futures_io`]) | [`blocking`] |
//! | --- | --- | --- |
//! | accept a stream, or `(stream, peer)` | `WebSocketStream::accept(stream, &server)` | `WebSocket::accept(stream, &server)` |
//! | handshake over a connected stream | `WebSocketStream::client(stream, &client)` | `WebSocket::client(stream, &client)` |
//! | open TCP (and TLS) and handshake | `rt::tokio::WebSocketStream::connect(url_or_client)` | `WebSocket::connect(url_or_client)` |
//! | take over a stream whose handshake is done | `WebSocketStream::new(stream, conn)` | `WebSocket::new(stream, conn)` |
//!
//! Besides those eight: `rt::tokio::connect_async` (tokio-tungstenite's
//! name for `connect`), `rt::hyper::upgrade` (a request a hyper server
//! read), `rt::axum::WebSocketUpgrade::on_upgrade` (axum's extractor),
//! `rt::reconnect::Reconnect::connect` (a client that comes back) and
//! `rt::h2::H2Client::connect` (one of many WebSockets on an HTTP/2
//! connection). Thirteen in all.
//!
//! # Where things are
//!
//! - [`ServerBuilder`], [`ClientBuilder`]: what a server or client wants
//!   from its handshakes, said once.
//! - [`rt`]: the async WebSocket written once ([`rt::WebSocketStream`], its
//!   halves, the public seams [`rt::WriteHalf::queue`] and
//!   [`rt::CloseSignal`]); [`rt::tokio`], [`rt::futures_io`]: its runtimes.
//! - [`rt::hub`]: topics, one [`PreparedMessage`] to many connections, with
//!   bounded queues and a slow-subscriber policy.
//! - [`rt::drain`]: graceful shutdown (Close 1001 spread over a window,
//!   `503` meanwhile, a report).
//! - [`rt::reconnect`] and [`reconnect`]: clients that come back, with a
//!   full-jitter backoff and the close codes that mean "try again".
//! - [`admission`]: connection and handshake-rate limits per address.
//! - `rt::hyper`, `rt::axum` (features `hyper`, `axum`): upgrades through
//!   those servers, HTTP/1.1 and HTTP/2 (RFC 8441).
//! - `metrics` (feature `metrics`): connections, traffic, closes and round
//!   trips reported to the `metrics` facade.
//! - [`blocking`]: the adapter over `std::io::Read + Write`.
//! - [`handshake`]: the opening handshake, sans-IO; `handshake::http`
//!   (feature `http`) upgrades requests that hyper, axum or h2 parsed.
//! - [`Message`], [`CloseCode`], [`CloseFrame`], [`Config`], [`Error`]: what
//!   every adapter speaks in.
//! - [`Connection`], [`frame`], [`connection`], [`extensions`]: the sans-IO
//!   core below.
//!
//! # Features
//!
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `tokio` | yes | [`rt::tokio`] |
//! | `deflate` | yes | permessage-deflate ([`extensions::deflate`]), negotiated when [`Config::deflate`] is set |
//! | `rustls` | no | `wss://` in the tokio and blocking `connect`, with [`ClientBuilder::tls_config`], over the process's installed rustls `CryptoProvider` (aws-lc-rs, ring, …) |
//! | `rustls-ring` | no | `rustls` with ring's provider when none is installed |
//! | `rustls-tls-webpki-roots` | no | `rustls-ring` trusting the Mozilla roots |
//! | `rustls-tls-native-roots` | no | `rustls-ring` trusting the system's roots |
//! | `futures-io` | no | [`rt::futures_io`] for smol, async-std and other `futures-io` runtimes |
//! | `http` | no | `handshake::http`: upgrades through `http` crate types, RFC 8441 |
//!
//! # The sans-IO core
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

pub mod admission;
pub mod blocking;
mod bucket;
mod builder;
mod close;
mod config;
mod conn;
mod error;
pub mod extensions;
pub mod frame;
pub mod handshake;
mod message;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod prepared;
pub mod reconnect;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tokio", feature = "futures-io"))))]
pub mod rt;
mod sync;
#[cfg(feature = "rustls")]
mod tls;
mod transport;
mod utf8;

pub use builder::{
    AcceptAll, ClientBuilder, Incoming, IntoClientBuilder, IntoIncoming, ServerBuilder,
};
pub use close::{CloseCode, CloseFrame};
pub use config::{Config, OverLimit, RateLimit, RateLimits};
pub use conn::{Connection, Role, SnapshotError, State};
pub use error::{ConfigError, Error, ProtocolError, SendError};
pub use handshake::HandshakeError;
pub use message::{Message, Utf8Bytes};
pub use prepared::PreparedMessage;

/// The types a [`Connection`]'s methods speak in besides those at the crate
/// root: its output queue, which side started the close, the kind of a
/// message sent in fragments.
pub mod connection {
    pub use crate::conn::{Outgoing, SNAPSHOT_VERSION, Side, Stats, Traffic};
    pub use crate::message::DataKind;
    pub use crate::prepared::Outbound;
    pub use crate::transport::{MaybeTls, NoTls};
}

/// The README's examples, compiled and run as doctests (they use the tokio adapter).
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
