//! Graceful shutdown for servers (feature `tokio`): a [`Drain`] tracks the
//! connection tasks; on shutdown it refuses new upgrades with `503` and
//! `Retry-After`, sends every live connection a Close (1001 by default)
//! spread evenly over a window so its clients do not all reconnect to the
//! next node at once, waits for the close handshakes, drops the tasks still
//! running at the grace deadline, and reports how each ended.
//!
//! ```no_run
//! use rfc6455::ServerBuilder;
//! use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
//! use rfc6455::rt::tokio::WebSocketStream;
//! use tokio::net::TcpListener;
//!
//! async fn serve(listener: TcpListener, drain: Drain) -> std::io::Result<()> {
//!     loop {
//!         let (tcp, _) = listener.accept().await?;
//!         // The task is the drain's to watch: spawn what `watch` returns.
//!         let server = ServerBuilder::new().drain(&drain);
//!         tokio::spawn(drain.watch(async move {
//!             // During a drain the upgrade is refused with 503.
//!             let mut ws = WebSocketStream::accept(tcp, &server).await?;
//!             // A drained stream sees the close handshake end like any other.
//!             while let Some(message) = ws.next().await {
//!                 ws.send(message?).await?;
//!             }
//!             Ok::<(), rfc6455::Error>(())
//!         }));
//!     }
//! }
//!
//! # #[allow(dead_code)]
//! # async fn run() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! let drain = Drain::new(DrainConfig::default());
//! let report = drain.serve_until(serve(listener, drain.clone()), shutdown_signal()).await?;
//! eprintln!("{report}");
//! # Ok(()) }
//! ```
//!
//! A connection's Close goes out when its stream is next polled: the drain
//! wakes the watched task, so poll the stream (or its read half) from that
//! task, as a reading loop does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

use crate::close::{CloseCode, MAX_REASON_LEN};
use crate::handshake::Rejection;
use crate::rt::{CloseSignal, Runtime, WebSocketStream};

/// How a [`Drain`] closes the connections.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainConfig {
    /// The code every connection's Close carries: 1001 (going away) by
    /// default, or 1012 (service restart). Both tell a reconnecting client
    /// to come back ([`CloseCode::suggests_retry`]).
    pub code: CloseCode,
    /// The Close's reason (at most 123 bytes). Default "shutting down".
    pub reason: String,
    /// The Closes are spread evenly over this time, so the clients do not
    /// all reconnect at once. Default 5 seconds.
    pub window: Duration,
    /// After the window, how long the last connections have to finish
    /// their close handshakes before their tasks are dropped. Default 5
    /// seconds.
    pub grace: Duration,
    /// `Retry-After` on the `503` that refuses upgrades during the drain.
    /// Default 5 seconds.
    pub retry_after: Duration,
    /// How long a handoff (`rt::handoff`, feature `handoff`) waits for
    /// every stream to reach a message boundary and move; the streams
    /// that have not moved by then stay with this process. Default 10
    /// seconds.
    pub handoff_timeout: Duration,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            code: CloseCode::GOING_AWAY,
            reason: "shutting down".to_owned(),
            window: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            retry_after: Duration::from_secs(5),
            handoff_timeout: Duration::from_secs(10),
        }
    }
}

by_value_setters! {
    DrainConfig {
        /// Sets [`code`](Self::code).
        code: CloseCode;
        /// Sets [`reason`](Self::reason).
        reason: String;
        /// Sets [`window`](Self::window).
        window: Duration;
        /// Sets [`grace`](Self::grace).
        grace: Duration;
        /// Sets [`retry_after`](Self::retry_after).
        retry_after: Duration;
        /// Sets [`handoff_timeout`](Self::handoff_timeout).
        handoff_timeout: Duration;
    }
}

/// How the connections ended, from [`Drain::shutdown`]. `closed + ended +
/// forced == connections`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Connection tasks running when the drain began or started during it.
    pub connections: usize,
    /// Ended after a complete close handshake.
    pub closed: usize,
    /// Ended before the grace deadline otherwise: before their turn came,
    /// or with the peer gone, the close timeout or an error.
    pub ended: usize,
    /// Still running at the grace deadline, and dropped.
    pub forced: usize,
    /// Upgrades refused with 503 during the drain.
    pub refused: usize,
}

impl fmt::Display for DrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drained {} connections: {} closed, {} ended otherwise, {} forced; {} upgrades refused",
            self.connections, self.closed, self.ended, self.forced, self.refused
        )
    }
}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const FORCED: u8 = 2;

/// One watched task's state, shared by the drain, the task and its stream.
#[derive(Debug)]
struct Signal {
    state: AtomicU8,
    /// The stream saw its close handshake complete.
    clean: AtomicBool,
    /// The watched task's waker, to make it poll its stream.
    waker: Mutex<Option<Waker>>,
    /// A handoff asks for the stream, not yet taken by it.
    handoff: AtomicBool,
    /// The streams still asked for, shared by every signal of the drain.
    quiet: Arc<Quiet>,
    code: CloseCode,
    reason: Arc<str>,
}

impl CloseSignal for Signal {
    /// The drain's Close, once the drain reached this task.
    fn close_request(&self) -> Option<(CloseCode, &str)> {
        (self.state.load(Ordering::Acquire) != OPEN).then_some((self.code, &*self.reason))
    }

    fn ended(&self, clean: bool) {
        if clean {
            self.clean.store(true, Ordering::Release);
        }
    }

    /// A load first: the echo loop asks on every wait for input.
    fn take_handoff_request(&self) -> bool {
        let taken =
            self.handoff.load(Ordering::Acquire) && self.handoff.swap(false, Ordering::AcqRel);
        if taken {
            self.quiet.stopped();
        }
        taken
    }
}

impl Signal {
    /// Moves to `state` (never back) and wakes the task.
    fn set(&self, state: u8) {
        if self.state.fetch_max(state, Ordering::AcqRel) < state {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker.wake_by_ref();
        }
    }
}

/// How many watched streams a handoff still asks for: each stops reading
/// when it takes its request (or its task ends), and the last one to stop
/// wakes whoever waits for them all.
#[derive(Debug, Default)]
struct Quiet {
    pending: AtomicUsize,
    #[cfg(all(feature = "handoff", target_os = "linux"))]
    all_stopped: tokio::sync::Notify,
}

impl Quiet {
    fn stopped(&self) {
        // Never below zero: a withdrawn handoff set it to zero already.
        let before = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.wake();
        }
    }

    fn wake(&self) {
        #[cfg(all(feature = "handoff", target_os = "linux"))]
        self.all_stopped.notify_waiters();
    }
}

/// The registry of watched tasks.
#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// Live tasks in the order they started (the order they are closed in).
    live: BTreeMap<u64, Arc<Signal>>,
    draining: bool,
    report: DrainReport,
    /// The shutdown or handoff waiting for the last task.
    waiter: Option<Waker>,
    /// The handoff under way, which every stream is asked to join.
    #[cfg(all(feature = "handoff", target_os = "linux"))]
    handoff: Option<super::handoff::Shared>,
}

#[derive(Debug)]
struct Inner {
    config: DrainConfig,
    reason: Arc<str>,
    registry: Mutex<Registry>,
    quiet: Arc<Quiet>,
}

/// Tracks a server's connection tasks and shuts them down gracefully. See
/// the [module docs](self). Clones share the tasks.
#[derive(Clone, Debug)]
pub struct Drain {
    inner: Arc<Inner>,
}

impl Drain {
    /// A drain with no tasks yet. A Close must be sendable, or no
    /// connection would be closed before the grace deadline: a code that
    /// may not be sent (1005, 1006, 1015) becomes 1001, and a reason is cut
    /// to its first 123 bytes (at a character boundary).
    #[must_use]
    pub fn new(mut config: DrainConfig) -> Self {
        if !config.code.is_sendable() {
            config.code = CloseCode::GOING_AWAY;
        }
        let mut end = config.reason.len().min(MAX_REASON_LEN);
        while !config.reason.is_char_boundary(end) {
            end -= 1;
        }
        config.reason.truncate(end);
        Self {
            inner: Arc::new(Inner {
                reason: Arc::from(config.reason.as_str()),
                config,
                registry: Mutex::new(Registry::default()),
                quiet: Arc::default(),
            }),
        }
    }

    /// Wraps a connection task so the drain tracks it. Spawn the returned
    /// future; it resolves to the task's output, or `None` if the drain
    /// dropped the task at the grace deadline. A stream the task accepts
    /// with a [`ServerBuilder::drain`](crate::ServerBuilder::drain) builder
    /// (or [`attach`](Self::attach)es) is sent the drain's Close when the
    /// task's turn comes.
    pub fn watch<Fut: Future>(&self, task: Fut) -> Watched<Fut> {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(OPEN),
            clean: AtomicBool::new(false),
            waker: Mutex::new(None),
            handoff: AtomicBool::new(false),
            quiet: Arc::clone(&self.inner.quiet),
            code: self.inner.config.code,
            reason: Arc::clone(&self.inner.reason),
        });
        let id = {
            let mut registry = lock(&self.inner.registry);
            let id = registry.next_id;
            registry.next_id += 1;
            registry.live.insert(id, Arc::clone(&signal));
            if registry.draining {
                registry.report.connections += 1;
                signal.state.store(CLOSING, Ordering::Release);
            }
            #[cfg(all(feature = "handoff", target_os = "linux"))]
            if registry.handoff.is_some() {
                self.inner.quiet.pending.fetch_add(1, Ordering::AcqRel);
                signal.handoff.store(true, Ordering::Release);
            }
            id
        };
        Watched {
            task: Some(Box::pin(task)),
            guard: Guard {
                drain: self.clone(),
                id,
                signal,
            },
            waker: None,
        }
    }

    /// Resolves once every watched stream has stopped reading for the
    /// handoff under way (each took its request at a message boundary, or
    /// its task ended), or the handoff is withdrawn; at once when none is
    /// under way (always, without the `handoff` feature). Connections that
    /// affect each other (a chat room, topics) wait for it before they go:
    /// a message one not yet stopped publishes then reaches every other
    /// before it leaves.
    pub async fn handoff_quiet(&self) {
        // Without the feature no handoff is ever under way.
        #[cfg(all(feature = "handoff", target_os = "linux"))]
        loop {
            let quiet = &self.inner.quiet;
            let notified = quiet.all_stopped.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if quiet.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Whether a drain has begun.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        lock(&self.inner.registry).draining
    }

    /// Watched tasks still running.
    #[must_use]
    pub fn live(&self) -> usize {
        lock(&self.inner.registry).live.len()
    }

    /// Ties `ws` to this drain, when called inside a task it
    /// [watches](Self::watch): when the task's turn comes, the stream sends
    /// the drain's Close on its next poll and reads on to the end of the
    /// close handshake. For streams made without an accepting builder (a
    /// hyper upgrade); attach before [`split`](WebSocketStream::split).
    /// Returns whether the stream was attached.
    pub fn attach<S, R: Runtime<S>>(&self, ws: &mut WebSocketStream<S, R>) -> bool {
        let Some(signal) = self.signal_of_this_task() else {
            return false;
        };
        ws.set_close_signal(signal);
        true
    }

    /// The signal of the watched task now being polled, if this drain
    /// watches it.
    pub(crate) fn signal_of_this_task(&self) -> Option<Arc<dyn CloseSignal>> {
        let ours = Arc::as_ptr(&self.inner);
        CURRENT.with(|slot| match &*slot.borrow() {
            Some((inner, signal)) if *inner == ours => {
                Some(Arc::clone(signal) as Arc<dyn CloseSignal>)
            }
            _ => None,
        })
    }

    /// The response that refuses an upgrade during the drain: `503` with
    /// `Retry-After`. A builder with [`ServerBuilder::drain`](crate::ServerBuilder::drain)
    /// answers it itself.
    #[must_use]
    pub fn refusal(&self) -> Rejection {
        Rejection::new(503)
            .retry_after(self.inner.config.retry_after)
            .body(self.inner.config.reason.clone())
    }

    /// Refuses the upgrade if draining, counting it.
    pub(crate) fn check(&self) -> Result<(), Rejection> {
        let mut registry = lock(&self.inner.registry);
        if !registry.draining {
            return Ok(());
        }
        registry.report.refused += 1;
        Err(self.refusal())
    }

    /// Drains: from now on upgrades are refused; each live task's stream
    /// is sent a Close, spread evenly over [`DrainConfig::window`]; tasks
    /// still running [`DrainConfig::grace`] after the window are dropped.
    /// Resolves once every watched task has ended.
    pub async fn shutdown(&self) -> DrainReport {
        let start = Instant::now();
        let order: Vec<Arc<Signal>> = {
            let mut registry = lock(&self.inner.registry);
            registry.draining = true;
            registry.report.connections += registry.live.len();
            registry.live.values().cloned().collect()
        };
        let window = self.inner.config.window;
        let count = order.len() as f64;
        for (i, signal) in order.iter().enumerate() {
            // The i-th of n Closes goes out at (i + ½)·window/n (a fraction
            // of the window: no overflow whatever the configuration).
            let at = start + window.mul_f64((i as f64 + 0.5) / count);
            sleep_until(at).await;
            signal.set(CLOSING);
        }
        drop(order);
        let wait = window.saturating_add(self.inner.config.grace);
        // A wait past what the clock can count is no deadline at all.
        let deadline = start.checked_add(wait).unwrap_or_else(far_future);
        let mut deadline = Box::pin(sleep_until(deadline));
        poll_fn(|cx| self.poll_ended(cx, Some(&mut deadline))).await;
        poll_fn(|cx| self.poll_ended(cx, None)).await;
        lock(&self.inner.registry).report
    }

    /// Ready once no watched task is live; when `deadline` fires first,
    /// forces the rest and is ready.
    pub(crate) fn poll_ended(
        &self,
        cx: &mut Context<'_>,
        deadline: Option<&mut Pin<Box<Sleep>>>,
    ) -> Poll<()> {
        let mut registry = lock(&self.inner.registry);
        if registry.live.is_empty() {
            return Poll::Ready(());
        }
        registry.waiter = Some(cx.waker().clone());
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        let forced: Vec<Arc<Signal>> = {
            ready!(deadline.as_mut().poll(cx));
            registry.live.values().cloned().collect()
        };
        drop(registry);
        for signal in forced {
            signal.set(FORCED);
        }
        Poll::Ready(())
    }

    /// Runs `serve` (an accept loop spawning watched tasks) until
    /// `shutdown` resolves, then drains while `serve` keeps running (so new
    /// upgrades get their 503), and drops it once every task has ended.
    ///
    /// # Errors
    ///
    /// `serve`'s error, if it fails before the drain ends; a `serve` that
    /// ends without error only stops the accepting.
    pub async fn serve_until<E>(
        &self,
        serve: impl Future<Output = Result<(), E>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<DrainReport, E> {
        let mut serve = std::pin::pin!(serve);
        let mut serving = true;
        // Polls `serve` while it runs; `Some` only for its error.
        let mut poll_serve = |cx: &mut Context<'_>| -> Option<E> {
            if serving && let Poll::Ready(result) = serve.as_mut().poll(cx) {
                serving = false;
                return result.err();
            }
            None
        };
        let mut shutdown = std::pin::pin!(shutdown);
        poll_fn(|cx| match poll_serve(cx) {
            Some(error) => Poll::Ready(Err(error)),
            None => shutdown.as_mut().poll(cx).map(Ok),
        })
        .await?;
        let mut drained = std::pin::pin!(self.shutdown());
        poll_fn(|cx| match poll_serve(cx) {
            Some(error) => Poll::Ready(Err(error)),
            None => drained.as_mut().poll(cx).map(Ok),
        })
        .await
    }
}

#[cfg(all(feature = "handoff", target_os = "linux"))]
impl Drain {
    /// Sets the handoff every watched stream is asked to join (each is
    /// woken to see it), or with `None` withdraws the request from those
    /// that have not yet taken it.
    pub(crate) fn set_handoff(&self, handoff: Option<super::handoff::Shared>) {
        let asked = handoff.is_some();
        let quiet = &self.inner.quiet;
        let live: Vec<Arc<Signal>> = {
            let mut registry = lock(&self.inner.registry);
            registry.handoff = handoff;
            let live: Vec<Arc<Signal>> = registry.live.values().cloned().collect();
            // Counted before any is asked, so none stops below zero; asked
            // under the lock a task's end takes, so each is counted once.
            quiet
                .pending
                .store(if asked { live.len() } else { 0 }, Ordering::Release);
            for signal in &live {
                signal.handoff.store(asked, Ordering::Release);
            }
            live
        };
        if asked {
            for signal in live {
                signal.wake();
            }
        }
        if !asked || quiet.pending.load(Ordering::Acquire) == 0 {
            quiet.wake();
        }
    }

    /// The handoff under way, if any.
    pub(crate) fn handoff(&self) -> Option<super::handoff::Shared> {
        lock(&self.inner.registry).handoff.clone()
    }

    /// How long a handoff waits for the streams to come.
    pub(crate) fn handoff_timeout(&self) -> Duration {
        self.inner.config.handoff_timeout
    }
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM (what
/// a deploy or `systemctl stop` sends) on Unix. The usual second argument
/// of [`Drain::serve_until`].
///
/// A signal handler that cannot be installed (no signal driver in the
/// runtime) leaves only the other signal to wait for.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let (mut ctrl_c, mut term) = (std::pin::pin!(ctrl_c), std::pin::pin!(term));
    poll_fn(|cx| {
        if ctrl_c.as_mut().poll(cx).is_ready() || term.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// About 30 years from now: tokio's own stand-in for "never".
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

thread_local! {
    /// The drain and signal of the watched task being polled on this
    /// thread, set only for the length of that poll: how an `accept` inside
    /// the task finds the signal its stream answers to.
    static CURRENT: RefCell<Option<(*const Inner, Arc<Signal>)>> = const { RefCell::new(None) };
}

/// Sets [`CURRENT`] for one poll and puts the previous value back after it
/// (a watched task polled inside another's poll).
fn with_current<T>(inner: *const Inner, signal: &Arc<Signal>, poll: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|slot| slot.replace(Some((inner, Arc::clone(signal)))));
    let output = poll();
    CURRENT.with(|slot| *slot.borrow_mut() = previous);
    output
}

/// Takes a watched task out of the registry when it ends or is dropped.
#[derive(Debug)]
struct Guard {
    drain: Drain,
    id: u64,
    signal: Arc<Signal>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut registry = lock(&self.drain.inner.registry);
        if registry.live.remove(&self.id).is_none() {
            return;
        }
        // A task that ends while asked for has stopped reading too.
        if self.signal.handoff.swap(false, Ordering::AcqRel) {
            self.signal.quiet.stopped();
        }
        if registry.draining {
            let report = &mut registry.report;
            match self.signal.state.load(Ordering::Acquire) {
                FORCED => report.forced += 1,
                _ if self.signal.clean.load(Ordering::Acquire) => report.closed += 1,
                _ => report.ended += 1,
            }
        }
        if registry.live.is_empty()
            && let Some(waiter) = registry.waiter.take()
        {
            waiter.wake();
        }
    }
}

/// A connection task watched by a [`Drain`] (from [`Drain::watch`]): its
/// output, or `None` if the drain dropped it at the grace deadline.
#[must_use = "futures do nothing unless polled; spawn it"]
pub struct Watched<F> {
    task: Option<Pin<Box<F>>>,
    guard: Guard,
    /// The waker last given to the signal.
    waker: Option<Waker>,
}

impl<F> fmt::Debug for Watched<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("id", &self.guard.id)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The waker first, so a change after the check below still wakes.
        // Compared with the copy kept here, it is stored (a lock) only when
        // it changed: the echo server's every wake-up passes this way.
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            this.waker = Some(cx.waker().clone());
            *lock(&this.guard.signal.waker) = Some(cx.waker().clone());
        }
        if this.guard.signal.state.load(Ordering::Acquire) == FORCED {
            // Dropping the task drops its stream: the transport closes.
            self.task = None;
            return Poll::Ready(None);
        }
        let Some(task) = this.task.as_mut() else {
            return Poll::Ready(None);
        };
        let inner = Arc::as_ptr(&this.guard.drain.inner);
        let output = ready!(with_current(inner, &this.guard.signal, || task
            .as_mut()
            .poll(cx)));
        this.task = None;
        Poll::Ready(Some(output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Close that could not be sent would leave every connection to the
    // grace deadline.
    #[test]
    fn the_close_is_always_sendable() {
        let drain = Drain::new(
            DrainConfig::default()
                .code(CloseCode::ABNORMAL)
                .reason("é".repeat(100)),
        );
        let config = &drain.inner.config;
        assert_eq!(config.code, CloseCode::GOING_AWAY);
        assert_eq!(config.reason.len(), 122, "cut at a character boundary");
        assert_eq!(&*drain.inner.reason, config.reason);
        let mut conn =
            crate::Connection::new(crate::Role::Server, crate::Config::default()).unwrap();
        assert!(conn.close(config.code, &config.reason).is_ok());
    }
}
