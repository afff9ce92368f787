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
//! Any call may sit in a `select!`; what a cancelled call leaves behind
//! (`tests/cancel.rs` drops each at its awaits and checks that nothing is
//! lost, doubled or torn):
//!
//! | call | when cancelled |
//! | --- | --- |
//! | [`next`](WebSocketStream::next) | nothing is lost: the message comes with the next call |
//! | [`feed`](WebSocketStream::feed) | all or nothing: the message was not queued (it is dropped with the future), so feed it again |
//! | [`send`](WebSocketStream::send) | the message is either not queued, or queued whole and written by the next `flush`, `send` or `next`; to retry safely, `feed` then `flush` |
//! | [`flush`](WebSocketStream::flush), [`ping`](WebSocketStream::ping) | what is queued stays queued, whole; the next call goes on writing it |
//! | [`close`](WebSocketStream::close) | the Close is queued at the first poll; calling `close` or `next` again resumes the handshake |
//! | the split halves' methods | as the stream's |
//! | [`Member::forward`](hub::Member::forward) | what it took from the member's queue is on the connection; the next call writes it first |
//!
//! The handshake functions are not cancel-safe: a cancelled handshake
//! leaves the stream in an unknown state; drop it.

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
#[cfg(feature = "h2")]
#[cfg_attr(docsrs, doc(cfg(feature = "h2")))]
pub mod h2;
#[cfg(all(feature = "handoff", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "handoff", target_os = "linux"))))]
pub mod handoff;
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
pub use split::{DirectWriter, Outbox, ReadHalf, WriteHalf, Written};
pub use stream::WebSocketStream;
