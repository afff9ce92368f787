//! The halves of a split [`WebSocketStream`], sharing its driver.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_sink::Sink;

use super::driver::Driver;
use super::runtime::Runtime;
use super::stream::WebSocketStream;
use crate::connection::Stats;
use crate::prepared::Outbound;
use crate::{CloseCode, Connection, Error, Message, SendError};

/// The state the halves of a split stream share.
pub(crate) struct Shared<S, R: Runtime<S>> {
    pub(crate) driver: Driver<S, R>,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) write_waker: Option<Waker>,
}

pub(crate) fn lock<S, R: Runtime<S>>(shared: &Mutex<Shared<S, R>>) -> MutexGuard<'_, Shared<S, R>> {
    crate::sync::lock(shared)
}

pub(crate) fn wake(waker: Option<&Waker>) {
    if let Some(waker) = waker {
        waker.wake_by_ref();
    }
}

pub(crate) fn store(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// The receiving half of a split [`WebSocketStream`]: a [`Stream`] of messages.
pub struct ReadHalf<S, R: Runtime<S>> {
    pub(crate) shared: Arc<Mutex<Shared<S, R>>>,
}

/// The sending half of a split [`WebSocketStream`]: a [`Sink`] of messages.
pub struct WriteHalf<S, R: Runtime<S>> {
    pub(crate) shared: Arc<Mutex<Shared<S, R>>>,
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

impl<S, R: Runtime<S>> ReadHalf<S, R> {
    /// Puts the halves of one [`WebSocketStream::split`] back together.
    ///
    /// # Errors
    ///
    /// Both halves handed back, if they come from different streams.
    #[allow(clippy::type_complexity)]
    pub fn reunite(
        self,
        write: WriteHalf<S, R>,
    ) -> Result<WebSocketStream<S, R>, (Self, WriteHalf<S, R>)> {
        if !Arc::ptr_eq(&self.shared, &write.shared) {
            return Err((self, write));
        }
        drop(write);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(WebSocketStream {
                driver: shared
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .driver,
            }),
            // Only these two halves hold it, and one was just dropped.
            Err(shared) => Err((
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
        poll_fn(|cx| self.with(cx, |d, cx| d.poll_flush(cx))).await
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
        poll_fn(|cx| self.poll_send_close(cx, code, reason)).await
    }

    // ---- The seam for fan-out: queue now, write when polled ---------------

    /// Queues frames onto the connection under one short lock, without
    /// writing or waiting: `fill` gets an [`Outbox`] to send into (a
    /// [`PreparedMessage`](crate::PreparedMessage) by reference costs a
    /// pointer) until it [is full](Outbox::is_full). Then
    /// [`poll_flush_queued`](Self::poll_flush_queued) writes them all at
    /// once. A Pong the read half queued goes ahead of them.
    ///
    /// This is what a hub's per-subscriber writer needs (`rt::hub` uses it
    /// and nothing private; `tests/seams.rs` builds one of its own).
    pub fn queue<T>(&mut self, fill: impl FnOnce(&mut Outbox<'_>) -> T) -> T {
        Outbox::fill(&mut lock(&self.shared).driver.conn, fill)
    }

    /// Writes everything queued and flushes the stream: `Ready` once all of
    /// it is written, `Pending` (with the task woken later) while the
    /// transport takes no more.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the stream.
    pub fn poll_flush_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_flush(cx))
    }

    /// Queues a Close with `code` and `reason` (unless one was sent) and
    /// flushes it: [`close`](Self::close) as a poll function.
    ///
    /// # Errors
    ///
    /// As [`close`](Self::close).
    pub fn poll_send_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_send_close(cx, code, reason))
    }
}

impl<S: Send + 'static, R: Runtime<S> + 'static> WriteHalf<S, R> {
    /// A handle other tasks write to this connection through, at once and
    /// without waking this half's task (see [`DirectWriter`]).
    #[must_use]
    pub fn direct(&self) -> DirectWriter {
        DirectWriter {
            shared: Arc::clone(&self.shared) as Arc<dyn Direct>,
        }
    }
}

/// Writes to a split stream's connection from any task, at once: frames
/// are queued and written in the caller's task, and only what the
/// transport does not take is left for the [`WriteHalf`]'s own task (which
/// is woken for it). A hub's publisher writes to an idle subscriber this
/// way, with no wake-up and no task switch per delivery (`rt::hub` uses
/// it; `tests/hub.rs`, `an_idle_subscriber_is_written_without_waking_its_task`).
///
/// Cloning gives another handle to the same connection; a handle keeps the
/// connection (and its transport) alive.
#[derive(Clone)]
pub struct DirectWriter {
    shared: Arc<dyn Direct>,
}

/// What [`DirectWriter::try_write`] left on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Written {
    /// Nothing: everything queued went to the transport.
    All,
    /// What the transport did not take (or a write error, for the stream's
    /// halves to report): the write half's task was woken for it.
    Left,
}

impl DirectWriter {
    /// Queues frames with `fill` (as [`WriteHalf::queue`] does) and writes
    /// everything queued without waiting, in the calling task. `None`,
    /// without calling `fill`, when no task has polled the write half yet
    /// (there would be no one to write what is left) or the stream can no
    /// longer write.
    pub fn try_write<T>(&self, fill: impl FnOnce(&mut Outbox<'_>) -> T) -> Option<(T, Written)> {
        let mut fill = Some(fill);
        let mut out = None;
        let written = self.shared.write_now(&mut |outbox| {
            out = fill.take().map(|fill| fill(outbox));
        })?;
        out.map(|out| (out, written))
    }
}

impl fmt::Debug for DirectWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectWriter").finish_non_exhaustive()
    }
}

/// The shared state of a split stream, whatever its stream and runtime.
trait Direct: Send + Sync {
    fn write_now(&self, fill: &mut dyn FnMut(&mut Outbox<'_>)) -> Option<Written>;
}

impl<S: Send, R: Runtime<S>> Direct for Mutex<Shared<S, R>> {
    fn write_now(&self, fill: &mut dyn FnMut(&mut Outbox<'_>)) -> Option<Written> {
        let mut guard = lock(self);
        let shared = &mut *guard;
        let waker = shared.write_waker.as_ref()?;
        if !shared.driver.is_live() {
            return None;
        }
        Outbox::fill(&mut shared.driver.conn, fill);
        let driver = &mut shared.driver;
        // The writer's waker: a transport that takes no more wakes the
        // task that will write the rest.
        let mut cx = Context::from_waker(waker);
        let mut flushed = Poll::Pending;
        R::unbudgeted(|| flushed = driver.poll_flush_io(&mut cx));
        match flushed {
            Poll::Ready(Ok(())) => return Some(Written::All),
            Poll::Ready(Err(error)) => {
                driver.write_failed(error);
                wake(shared.read_waker.as_ref());
            }
            Poll::Pending => {}
        }
        waker.wake_by_ref();
        Some(Written::Left)
    }
}

/// A stream's connection, held for queueing frames ([`WriteHalf::queue`]).
#[derive(Debug)]
pub struct Outbox<'a> {
    conn: &'a mut Connection,
}

impl<'a> Outbox<'a> {
    /// Runs `fill` on `conn`'s queue, a pending Pong moved ahead of it.
    pub(crate) fn fill<T>(conn: &'a mut Connection, fill: impl FnOnce(&mut Self) -> T) -> T {
        let _ = conn.outgoing();
        fill(&mut Outbox { conn })
    }

    /// Queues a message without writing it.
    ///
    /// # Errors
    ///
    /// [`SendError`] as [`Connection::send`] (a closed connection, a full
    /// queue with the message handed back).
    pub fn send(&mut self, message: impl Outbound) -> Result<(), SendError> {
        message.queue_on(self.conn)
    }

    /// Whether queued output has reached
    /// [`Config::max_write_buffer`](crate::Config::max_write_buffer): what
    /// comes next waits for a write.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.conn.is_write_buffer_full()
    }

    /// Bytes queued and not yet written.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.conn.queued_output()
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
        self.with(cx, |d, cx| d.poll_flush(cx))
    }

    /// Sends Close 1000 and flushes it; the read half sees the handshake end.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |d, cx| d.poll_send_close(cx, CloseCode::NORMAL, ""))
    }
}
