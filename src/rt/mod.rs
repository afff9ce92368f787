//! The async WebSocket, written once for every runtime: [`WebSocketStream`]
//! is a [`Stream`](futures_core::Stream) of received messages and a [`Sink`](futures_sink::Sink) of messages to send
//! over any async byte stream, with its halves for two tasks.
//!
//! The runtime is a type parameter, a [`Runtime`]: which `AsyncRead` /
//! `AsyncWrite` traits the byte stream has and whose timer runs the
//! keepalive, idle and close timeouts. The adapter modules name it for you
//! (`rfc6455::rt::tokio::WebSocketStream<S>`, `rfc6455::futures_io::WebSocketStream<S>`).
//!
//! It only moves bytes: every protocol decision (Pongs, Close echoes, when to
//! close the transport, which errors end the stream) is the [`Connection`](crate::Connection)'s.
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

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod drain;
mod driver;
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
pub mod futures_io;
mod handshake;
pub mod hub;
#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod reconnect;
mod runtime;
mod split;
mod stream;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use driver::CloseSignal;
pub use runtime::Runtime;
pub(crate) use runtime::forward_writes;
pub use split::{Outbox, ReadHalf, WriteHalf};
pub use stream::WebSocketStream;
