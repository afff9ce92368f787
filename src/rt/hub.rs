//! Topics: one [`PreparedMessage`] to every connection subscribed to a
//! topic, with a per-subscriber queue bounded in bytes and an explicit
//! policy for a subscriber that does not keep up.
//!
//! A connection [`join`](Hub::join)s the hub as a [`Member`], subscribes to
//! topics, and runs [`Member::forward`] on its [`WriteHalf`] (in the task
//! that owns the write half, or beside its read loop). [`Hub::publish`]
//! never waits: to a subscriber that keeps up (nothing queued, nothing left
//! to write) it writes the frame itself, at once and without waking the
//! subscriber's task (uWebSockets' cork, without the event loop: one lock
//! and one write per delivery); for one that is behind it queues the
//! message, and the member's `forward` writes all that waits at once (one
//! vectored write of the shared frames) when the socket takes more; a
//! subscriber whose queue is full meets the [`SlowPolicy`]. It reports what
//! it did. A member leaves every topic when it is dropped.
//!
//! **Slow is not overloaded.** A subscriber is slow when its own socket does
//! not drain: its last write has been waiting while the other members
//! completed [`HubConfig::slow_after`] writes (a publish's direct writes
//! count as one: a write turn, as one batch is). A full queue whose writes are
//! not stuck (the server has not found time to write yet) is overload, not
//! slowness: the message is dropped for it and counted, and no one is
//! closed. Publishers that await [`Hub::ready`] before reading the next
//! message are slowed down instead, which pushes back on their sockets.
//!
//! Memory: queued messages are shared, so what the hub keeps alive is at
//! most about [`HubConfig::queue_limit`] plus one message of distinct
//! payload, and a pointer per queued delivery; across the hub,
//! [`HubConfig::publish_high_water`] bounds it, counting a long payload
//! that many queues share once.
//!
//! **Resuming.** Every message published to a topic takes a [`Position`]
//! (an epoch and an offset rising by one). With a [`HistoryConfig`] that
//! keeps messages, a member that was away subscribes with
//! [`Hub::subscribe_from`] and the last position it received: it gets
//! exactly the messages after it, in order, then the live ones, with no
//! gap and no duplicate at the seam; when the history no longer reaches
//! back (or the epoch changed) the answer says so. Such a member can get a
//! different message than plain subscribers, one that carries its position
//! ([`Hub::publish_positioned`]); plain subscribers pay nothing for it.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

mod history;
mod state;

use history::Held;
pub use history::{HistoryConfig, Position, Resumed};
use state::{Delivered, State, Topic, deliver};

use super::split::store;
use super::{DirectWriter, Runtime, WriteHalf, Written};
use crate::{CloseCode, Error, PreparedMessage, SendError};

/// What a hub does with a message for a subscriber whose queue is full.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Close a slow subscriber with this code (1008 policy violation or
    /// 1013 try again later) and reason; while its queue is full but it is
    /// not slow (overload), the message is dropped for it.
    Close {
        /// The close code.
        code: CloseCode,
        /// The close reason (at most 123 bytes).
        reason: &'static str,
    },
    /// Drop the new message for it (it sees a gap).
    DropNewest,
    /// Keep only the new message: what was waiting is dropped (for state
    /// where only the latest value matters, such as a price).
    KeepLatest,
}

/// A hub's limits and policy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// Bytes a subscriber's queue takes (it holds at most this plus one
    /// message): each waiting message counts its payload and 16 bytes for
    /// its slot. Default 1 MiB.
    pub queue_limit: usize,
    /// What happens when a subscriber's queue is full. Default: close a slow
    /// subscriber with 1008 "too slow".
    pub policy: SlowPolicy,
    /// A subscriber whose write has waited while the others completed this
    /// many writes is slow (the publishes that wrote to subscribers
    /// directly count one each). Default 2048.
    pub slow_after: u64,
    /// Bytes queued across the hub past which [`Hub::ready`] waits: each
    /// queued delivery's payload and 16 bytes for its slot, except that a
    /// message of 512 bytes or more as framed, which goes to every
    /// connection by reference, counts its payload once across a publish's
    /// deliveries (a message queued by [`Member::send`] or replayed by
    /// [`Hub::subscribe_from`] counts whole in each queue). Default 64 MiB.
    pub publish_high_water: usize,
    /// Payload bytes moved onto a connection per write, so a Pong or Close
    /// the connection queues meanwhile waits at most this much. Default 256 KiB.
    pub batch_bytes: usize,
    /// The longest topic name, in bytes. Default 256.
    pub max_topic_len: usize,
    /// Topics one member may subscribe to. Default 64.
    pub max_topics_per_member: usize,
    /// Topics the hub holds at once: those with subscribers and those
    /// keeping a history. Default 100 000.
    pub max_topics: usize,
    /// What each topic keeps for members that resume. Default: nothing.
    pub history: HistoryConfig,
    /// How long a topic must have been quiet (since its last publish
    /// ended) for a publish to write to its subscribers that keep up
    /// directly. Other publishes queue every delivery, and so does one a
    /// publisher was held for in [`Hub::ready`] (it streams): each
    /// subscriber's writer then carries all that waits in one write, where
    /// direct writes would cost one write per delivery (benches/echo
    /// `fanout.sh unpaced`). [`Duration::ZERO`]: always direct;
    /// [`Duration::MAX`]: never. Default 1 ms.
    pub direct_after: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            queue_limit: 1 << 20,
            policy: SlowPolicy::Close {
                code: CloseCode::POLICY_VIOLATION,
                reason: "too slow",
            },
            slow_after: 2048,
            publish_high_water: 64 << 20,
            batch_bytes: 256 << 10,
            max_topic_len: 256,
            max_topics_per_member: 64,
            max_topics: 100_000,
            history: HistoryConfig::default(),
            direct_after: Duration::from_millis(1),
        }
    }
}

by_value_setters! {
    HubConfig {
        /// Sets [`queue_limit`](Self::queue_limit).
        queue_limit: usize;
        /// Sets [`policy`](Self::policy).
        policy: SlowPolicy;
        /// Sets [`slow_after`](Self::slow_after).
        slow_after: u64;
        /// Sets [`publish_high_water`](Self::publish_high_water).
        publish_high_water: usize;
        /// Sets [`batch_bytes`](Self::batch_bytes).
        batch_bytes: usize;
        /// Sets [`max_topic_len`](Self::max_topic_len).
        max_topic_len: usize;
        /// Sets [`max_topics_per_member`](Self::max_topics_per_member).
        max_topics_per_member: usize;
        /// Sets [`max_topics`](Self::max_topics).
        max_topics: usize;
        /// Sets [`history`](Self::history).
        history: HistoryConfig;
        /// Sets [`direct_after`](Self::direct_after).
        direct_after: Duration;
    }
}

/// Why a subscription was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The topic name is empty or longer than [`HubConfig::max_topic_len`].
    #[error("topic name must be 1 to {0} bytes")]
    TopicLength(usize),
    /// The member holds [`HubConfig::max_topics_per_member`] topics already.
    #[error("at most {0} topics per connection")]
    TooManySubscriptions(usize),
    /// The hub holds [`HubConfig::max_topics`] topics already.
    #[error("at most {0} topics")]
    TooManyTopics(usize),
    /// The member was closed by the slow-subscriber policy.
    #[error("closed as a slow subscriber")]
    Closed,
}

/// What one [`Hub::publish`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publish {
    /// Subscribers the message was queued for or written to.
    pub delivered: usize,
    /// Deliveries dropped by the policy (for [`SlowPolicy::KeepLatest`],
    /// the waiting messages it replaced), or because a full queue was not
    /// slow (overload).
    pub dropped: usize,
    /// Subscribers closed as slow.
    pub closed: usize,
    /// The message's position in its topic; `None` when the topic had no
    /// subscriber and kept no history (or could not: the hub held
    /// [`HubConfig::max_topics`] topics).
    pub position: Option<Position>,
}

/// A hub's counters since it was made, and its current size.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Members now.
    pub members: usize,
    /// Topics with at least one subscriber now.
    pub topics: usize,
    /// Subscriptions now.
    pub subscriptions: usize,
    /// Bytes queued for all members now, as
    /// [`HubConfig::publish_high_water`] counts them (a long payload shared
    /// by many queues once).
    pub queued_bytes: usize,
    /// Calls to [`Hub::publish`].
    pub published: u64,
    /// Deliveries queued or written.
    pub delivered: u64,
    /// Of those, the ones a publisher wrote to a subscriber's connection
    /// itself (it was keeping up: nothing queued, nothing left to write),
    /// with no queue and no wake-up.
    pub written_directly: u64,
    /// Deliveries dropped (policy or overload).
    pub dropped: u64,
    /// Members closed as slow.
    pub closed_slow: u64,
    /// Messages kept in topic histories now.
    pub history_messages: usize,
    /// Bytes kept in topic histories now (payload plus a 16-byte slot each).
    pub history_bytes: usize,
}

/// Topics and their subscribers (see the [module docs](self)). Cloning
/// gives another handle to the same hub.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<HubShared>,
}

struct HubShared {
    config: HubConfig,
    state: Mutex<State>,
    /// Writes completed by all members: the clock slowness is judged by.
    progress: AtomicU64,
    /// Bytes queued across members, each delivery as [`charge`] says: the
    /// memory [`HubConfig::publish_high_water`] bounds.
    queued: AtomicUsize,
    /// Bytes queued across members, each delivery's payload and slot
    /// counted whole: what the writers have yet to write, paced by
    /// [`PACE_PER_MEMBER`].
    backlog: AtomicUsize,
    /// Members now (as [`HubStats::members`]).
    members: AtomicUsize,
    /// The last message published, in bytes with its slot: the pace
    /// leaves room for the next one, taken to be as long.
    last_len: AtomicUsize,
    /// Members whose queue is at least half full, not closed and not slow
    /// (as of their last push): [`Hub::ready`] waits for none while a
    /// writer has something to move, so a publisher that awaits it never
    /// overflows a subscriber that keeps up, nor one whose writes wait on
    /// its socket without being slow.
    pressured: AtomicUsize,
    /// Members with queued messages their writer can move (not stuck on
    /// the socket, not closed): while any is, a held publisher has
    /// something to wait for.
    busy: AtomicUsize,
    /// Publishers waiting in [`Hub::ready`].
    waiters: Mutex<Vec<Waker>>,
    /// Bytes of messages published (each counted once, with its slot)
    /// since a publisher last yielded in [`Hub::ready`].
    since_yield: AtomicUsize,
    /// A publisher was held in [`Hub::ready`] (a yield, the high-water
    /// mark) since the last publish: it streams, so the next publish
    /// queues however long the writers ran meanwhile.
    held: AtomicBool,
}

struct Entry {
    slot: Arc<Slot>,
    topics: HashSet<Box<str>>,
    /// The connection a running [`Member::forward`] writes to: publishers
    /// write straight to it while [`Slot::direct`] says so.
    writer: Option<DirectWriter>,
}

/// A member's queue, and whether publishers may pass it by.
struct Slot {
    queue: Mutex<Queue>,
    /// Nothing waits for the member: its queue is empty and its connection
    /// has written everything. Set by its writer (under the queue's and the
    /// connection's locks) when it finds both so; cleared by whatever
    /// leaves something behind (a queued delivery, a direct write the
    /// transport did not finish). While set, a publish writes to the
    /// connection at once, under its lock alone, waking no one; so what is
    /// queued never has a direct write overtake it.
    direct: AtomicBool,
}

impl Slot {
    fn new() -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            direct: AtomicBool::new(false),
        }
    }

    /// The queue, for a delivery that goes through it: publishers queue
    /// behind it until the writer has written it all.
    fn queue_behind(&self) -> MutexGuard<'_, Queue> {
        let queue = crate::sync::lock(&self.queue);
        // Read first: a busy member's flag is already down, and a store
        // would take its cache line from the writer's core on every delivery.
        if self.direct.load(Ordering::Relaxed) {
            self.direct.store(false, Ordering::Release);
        }
        queue
    }
}

/// One member's waiting deliveries and what its writer is doing.
#[derive(Default)]
struct Queue {
    messages: VecDeque<PreparedMessage>,
    /// What `messages` count in [`HubShared::queued`], oldest first, as
    /// runs of equal charges (how many, each's charge), the newest run
    /// in `last`: a stream from one topic is one run, kept inline, and a
    /// queued delivery stays one pointer.
    runs: VecDeque<(usize, usize)>,
    /// The newest run (none: a count of 0).
    last: (usize, usize),
    /// Payload bytes and slots waiting: the queue's own limit.
    bytes: usize,
    /// The writer's task.
    waker: Option<Waker>,
    /// `progress` when its current write started waiting on the socket.
    stuck_since: Option<u64>,
    /// Closed by the policy: the Close to send.
    close: Option<(CloseCode, &'static str)>,
    /// Counted in [`HubShared::pressured`].
    pressured: bool,
    /// Counted in [`HubShared::busy`].
    busy: bool,
}

/// The type of no positioned message (a plain publish).
type Unpositioned = fn(Position) -> PreparedMessage;

/// What a queued delivery is charged besides its payload: the queue's slot
/// for it, so a flood of tiny messages is bounded too.
const ENTRY_COST: usize = 16;

/// Message bytes a publisher may publish between two yields in
/// [`Hub::ready`]: enough that each subscriber's write carries many frames
/// (as many as one vectored write passes at 1 KiB), few enough that writers
/// run long before the high-water mark (benches/echo `fanout.sh unpaced`:
/// without a yield, a 1 GiB mark starved every writer at 10 000 × 16 B).
const YIELD_AFTER: usize = 64 << 10;

/// Bytes the members may have queued on average (each delivery counted
/// whole), the next message included, before [`Hub::ready`] holds a
/// publisher: two writer's batches of about 64 KiB (64 frames of 1 KiB, as
/// many as one vectored write passes). A writer that finds a second batch
/// behind its first writes full batches; a message as long as a batch goes
/// out one at a time, as two of them would split each write at the
/// socket's limit (benches/echo `fanout.sh unpaced`: 1 000 × 1 KiB and
/// 64 KiB).
const PACE_PER_MEMBER: usize = 128 << 10;

impl Hub {
    /// An empty hub.
    #[must_use]
    pub fn new(config: HubConfig) -> Self {
        Self {
            shared: Arc::new(HubShared {
                config,
                state: Mutex::new(State::new()),
                progress: AtomicU64::new(0),
                queued: AtomicUsize::new(0),
                backlog: AtomicUsize::new(0),
                members: AtomicUsize::new(0),
                last_len: AtomicUsize::new(0),
                pressured: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                waiters: Mutex::new(Vec::new()),
                since_yield: AtomicUsize::new(0),
                held: AtomicBool::new(false),
            }),
        }
    }

    /// The hub's configuration.
    #[must_use]
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// A new member, subscribed to nothing. It leaves the hub when dropped.
    #[must_use]
    pub fn join(&self) -> Member {
        let mut state = crate::sync::lock(&self.shared.state);
        let id = state.next_id;
        state.next_id += 1;
        let slot = Arc::new(Slot::new());
        state.members.insert(
            id,
            Entry {
                slot: Arc::clone(&slot),
                topics: HashSet::new(),
                writer: None,
            },
        );
        state.stats.members = state.members.len();
        self.shared
            .members
            .store(state.members.len(), Ordering::Relaxed);
        Member {
            id,
            slot,
            hub: self.clone(),
        }
    }

    /// Subscribes `member` to `topic`; `Ok(false)` if it already was.
    ///
    /// # Errors
    ///
    /// [`HubError`] for a topic name out of bounds, a member or hub at its
    /// topic limit, or a member closed as slow.
    pub fn subscribe(&self, member: &Member, topic: &str) -> Result<bool, HubError> {
        let mut state = crate::sync::lock(&self.shared.state);
        Ok(state.link(&self.shared, member.id, topic, false)?.is_some())
    }

    /// Subscribes `member` to `topic` with positions: first the messages
    /// the topic's history keeps after `from` (the last position it
    /// received; `None` for none), queued at once in order, then the live
    /// ones, all as [`publish_positioned`](Self::publish_positioned) made
    /// them for members with positions. Under the hub's lock, so no
    /// publish falls between the replay and the live messages. The answer
    /// says what was replayed and whether that is everything after
    /// `from` ([`Resumed::recovered`]); `Ok(None)` if `member` already was
    /// subscribed (nothing is replayed: a member that lost messages
    /// unsubscribes first).
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Self::subscribe).
    pub fn subscribe_from(
        &self,
        member: &Member,
        topic: &str,
        from: Option<Position>,
    ) -> Result<Option<Resumed>, HubError> {
        let shared = &*self.shared;
        let mut guard_state = crate::sync::lock(&shared.state);
        let state = &mut *guard_state;
        if state.link(shared, member.id, topic, true)?.is_none() {
            return Ok(None);
        }
        let history_config = &shared.config.history;
        let now = (history_config.max_messages > 0).then(Instant::now);
        let Some(subscribed) = state.topics.get_mut(topic) else {
            return Ok(None);
        };
        let held = subscribed.history.evict(now, history_config);
        let (replay, resumed) = subscribed.history.after(from);
        let mut queue = member.slot.queue_behind();
        for message in replay {
            let len = message.len() + ENTRY_COST;
            queue.push(message.clone(), len, len, shared);
        }
        drop(queue);
        state.hold(held);
        Ok(Some(resumed))
    }

    /// Unsubscribes `member` from `topic`; whether it was subscribed.
    pub fn unsubscribe(&self, member: &Member, topic: &str) -> bool {
        let mut guard_state = crate::sync::lock(&self.shared.state);
        let state = &mut *guard_state;
        let removed = state
            .members
            .get_mut(&member.id)
            .is_some_and(|entry| entry.topics.remove(topic));
        if removed {
            state.unlink(member.id, topic);
        }
        removed
    }

    /// Queues `message` for every subscriber of `topic`, applying the
    /// [`SlowPolicy`] to those whose queue is full. Never waits.
    pub fn publish(&self, topic: &str, message: &PreparedMessage) -> Publish {
        self.publish_to(topic, message, None::<Unpositioned>, None, |_| false)
    }

    /// [`publish`](Self::publish)es `plain` to plain subscribers, and to
    /// members that subscribed with positions ([`subscribe_from`](Self::subscribe_from))
    /// the message `positioned` makes from the position this one takes
    /// (called once, under the hub's lock, only when such a member or the
    /// history wants it); the history keeps that one.
    pub fn publish_positioned(
        &self,
        topic: &str,
        plain: &PreparedMessage,
        positioned: impl FnOnce(Position) -> PreparedMessage,
    ) -> Publish {
        self.publish_to(topic, plain, Some(positioned), None, |_| false)
    }

    /// [`publish_positioned`](Self::publish_positioned) at a position given
    /// from outside: a hub that mirrors a log kept elsewhere (a broker's
    /// stream) gives each message the log's position. A position other
    /// than the one the topic expects next (a gap, another epoch, a
    /// repeat) breaks the topic's continuity: its history restarts there,
    /// so a resume from before it is reported unrecovered rather than
    /// answered with a hole in it.
    pub fn publish_at(
        &self,
        topic: &str,
        at: Position,
        plain: &PreparedMessage,
        positioned: impl FnOnce(Position) -> PreparedMessage,
    ) -> Publish {
        self.publish_to(topic, plain, Some(positioned), Some(at), |_| false)
    }

    /// Queues `message` for every subscriber of `topic` but `sender`, as
    /// [`publish`](Self::publish) does: a relay's member's own message
    /// reaches everyone else, under the hub's own lock (no lock of the
    /// caller's around an unsubscribe and a subscribe). `tests/hub.rs`
    /// checks it under concurrent publishers.
    pub fn publish_except(
        &self,
        topic: &str,
        message: &PreparedMessage,
        sender: &Member,
    ) -> Publish {
        self.publish_to(topic, message, None::<Unpositioned>, None, |id| {
            id == sender.id
        })
    }

    /// [`publish`](Self::publish) to the subscribers `skip` does not name;
    /// generic, so a plain publish compiles without the test.
    fn publish_to<P: FnOnce(Position) -> PreparedMessage>(
        &self,
        topic: &str,
        message: &PreparedMessage,
        positioned: Option<P>,
        at: Option<Position>,
        skip: impl Fn(u64) -> bool,
    ) -> Publish {
        let shared = &*self.shared;
        let progress = shared.progress.load(Ordering::Relaxed);
        let history_config = &shared.config.history;
        let keeps = history_config.max_messages > 0;
        let now = keeps.then(Instant::now);
        let mut report = Publish::default();
        let mut closed = Vec::new();
        let mut guard_state = crate::sync::lock(&shared.state);
        let state = &mut *guard_state;
        state.stats.published += 1;
        if keeps && !state.topics.contains_key(topic) {
            // A topic that keeps a history exists without subscribers, so
            // one that comes back finds what it missed.
            let _ = state.topic(&shared.config, topic);
        }
        let Some(target) = state.topics.get_mut(topic) else {
            return report;
        };
        // Only a message that reaches subscribers sets the pace's room.
        if target.subscribers() > 0 {
            (shared.last_len).store(message.len() + ENTRY_COST, Ordering::Relaxed);
        }
        let restarted = at.map_or_else(Held::default, |at| target.history.restart_at(at));
        let mut with_position = None;
        let position;
        let mut held;
        if let Some(make) = positioned
            && (keeps || !target.positioned.is_empty())
        {
            let made = make(target.history.next());
            (position, held) = target.history.record(&made, now, history_config);
            with_position = Some(made);
        } else {
            (position, held) = target.history.record(message, now, history_config);
        }
        held.messages += restarted.messages;
        held.bytes += restarted.bytes;
        report.position = Some(position);
        let started = Instant::now();
        let direct_after = shared.config.direct_after;
        let streaming = shared.held.swap(false, Ordering::Relaxed);
        let quiet = !streaming
            && direct_after < Duration::MAX
            && target
                .quiet_since
                .is_none_or(|since| started.saturating_duration_since(since) >= direct_after);
        if quiet {
            // A publisher that waited for its message is not a stream: it
            // owes the writers no yield.
            shared.since_yield.store(0, Ordering::Relaxed);
        }
        let target = &*target;
        let mut direct = 0u64;
        // A publisher held meanwhile (another one) may have been judged by
        // totals that counted this publish's deliveries before they were
        // queued: once they are given back, it is looked at again.
        let mut gave_back = false;
        let groups = [
            (&target.plain, message),
            (
                &target.positioned,
                with_position.as_ref().unwrap_or(message),
            ),
        ];
        for (subscribers, message) in groups {
            let len = message.len() + ENTRY_COST;
            let charge = charge(message, subscribers.len());
            // Counted before any queue holds it, so a writer's pop never
            // takes a total below zero; what was not queued is given back.
            let n = subscribers.len();
            shared.count(n.wrapping_mul(len), n.wrapping_mul(charge));
            let mut queued = 0;
            for (id, slot) in subscribers {
                if skip(*id) {
                    continue;
                }
                if quiet
                    && slot.direct.load(Ordering::Acquire)
                    && let Some(writer) = state.members.get(id).and_then(|e| e.writer.as_ref())
                {
                    match writer.try_write(|outbox| outbox.send(message)) {
                        Some((Ok(()), written)) => {
                            report.delivered += 1;
                            direct += 1;
                            if written == Written::Left {
                                // Its writer (woken) writes the rest.
                                slot.direct.store(false, Ordering::Release);
                            }
                            continue;
                        }
                        // Closed, or no room: the queue's path decides.
                        _ => slot.direct.store(false, Ordering::Release),
                    }
                }
                match deliver(shared, slot, message, (len, charge), progress, &mut report) {
                    Delivered::Queued => queued += 1,
                    Delivered::Dropped => {}
                    Delivered::Closed => closed.push(*id),
                }
            }
            if queued < n {
                let unqueued = n - queued;
                shared.uncount(unqueued.wrapping_mul(len), unqueued.wrapping_mul(charge));
                gave_back = true;
            }
        }
        if let Some(target) = state.topics.get_mut(topic) {
            target.quiet_since = Some(Instant::now());
        }
        let any_closed = !closed.is_empty();
        for id in closed {
            state.remove(id);
        }
        if any_closed {
            shared.members.store(state.members.len(), Ordering::Relaxed);
        }
        state.hold(held);
        if report.delivered > 0 {
            let len = message.len() + ENTRY_COST;
            shared.since_yield.fetch_add(len, Ordering::Relaxed);
        }
        // The direct writes are one completed write turn on the clock
        // slowness is judged by, as a writer's batch is: counted one each,
        // a reader merely not scheduled for a few publishes would be slow
        // (tests/hub.rs, overload_closes_no_one).
        if direct > 0 {
            shared.progress.fetch_add(1, Ordering::Relaxed);
        }
        state.stats.written_directly += direct;
        state.stats.delivered += report.delivered as u64;
        state.stats.dropped += report.dropped as u64;
        state.stats.closed_slow += report.closed as u64;
        drop(guard_state);
        if any_closed || gave_back {
            self.drained();
        }
        report
    }

    /// Subscribers of `topic`.
    #[must_use]
    pub fn subscribers(&self, topic: &str) -> usize {
        crate::sync::lock(&self.shared.state)
            .topics
            .get(topic)
            .map_or(0, Topic::subscribers)
    }

    /// The hub's counters and size.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        let mut stats = crate::sync::lock(&self.shared.state).stats;
        stats.queued_bytes = self.shared.queued.load(Ordering::Relaxed);
        stats
    }

    /// Waits until fewer than [`HubConfig::publish_high_water`] bytes are
    /// queued across the hub, the members are on average less than two
    /// writer's batches (128 KiB) behind with the next message (taken to
    /// be as long as the last), and no subscriber's queue is half
    /// full: a publisher that awaits it before reading its next message
    /// slows down to what the subscribers' writes take, and its peer feels
    /// it as TCP backpressure. A half-full queue stops holding it once no
    /// writer has anything left to move (the queue waits on a socket nobody
    /// reads, and only publishes move the clock that judges it slow).
    ///
    /// Once held at the mark or the pace, it waits until the hub is below
    /// three quarters of both (or no writer has anything left to move), so
    /// each writer's next batch is many messages, not one.
    ///
    /// It also yields to the runtime once per 64 KiB of messages published:
    /// a publisher whose input is already buffered would otherwise fill the
    /// whole high-water mark before any writer on its thread ran (tests/hub.rs,
    /// `the_publisher_lets_the_writers_run`), while 64 KiB per subscriber
    /// still makes each write carry many frames.
    pub async fn ready(&self) {
        poll_fn(|cx| self.poll_ready(cx)).await;
    }

    fn poll_ready(&self, cx: &Context<'_>) -> Poll<()> {
        let shared = &*self.shared;
        if shared.since_yield.load(Ordering::Relaxed) >= YIELD_AFTER {
            shared.since_yield.store(0, Ordering::Relaxed);
            shared.held.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if shared.is_ready() {
            return Poll::Ready(());
        }
        shared.held.store(true, Ordering::Relaxed);
        crate::sync::lock(&shared.waiters).push(cx.waker().clone());
        // A writer may have drained in between: check again.
        if shared.is_ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Queues shrank or writes got stuck: wake the publishers once they
    /// may go on.
    fn drained(&self) {
        let shared = &*self.shared;
        if shared.may_resume() {
            let waiters = std::mem::take(&mut *crate::sync::lock(&shared.waiters));
            for waker in waiters {
                waker.wake();
            }
        }
    }
}

impl HubShared {
    /// Below the high-water mark and the pace, and no subscriber's queue
    /// half full while a writer has something to move.
    fn is_ready(&self) -> bool {
        self.below(1, 1) && self.unpressed()
    }

    /// Adds `backlog` and `queued` bytes to the hub's totals (modulo the
    /// word: a publish's count and its give-back cancel exactly).
    fn count(&self, backlog: usize, queued: usize) {
        self.backlog.fetch_add(backlog, Ordering::AcqRel);
        self.queued.fetch_add(queued, Ordering::AcqRel);
    }

    /// Takes `backlog` and `queued` bytes off the hub's totals.
    fn uncount(&self, backlog: usize, queued: usize) {
        self.backlog.fetch_sub(backlog, Ordering::AcqRel);
        self.queued.fetch_sub(queued, Ordering::AcqRel);
    }

    /// Below `num / den` of both the high-water mark and the pace (with
    /// nothing queued, below any pace: a message longer than it goes out
    /// alone).
    fn below(&self, num: usize, den: usize) -> bool {
        let members = self.members.load(Ordering::Relaxed).max(1);
        let room = PACE_PER_MEMBER.saturating_sub(self.last_len.load(Ordering::Relaxed));
        let pace = members.saturating_mul(room);
        let backlog = self.backlog.load(Ordering::Acquire);
        self.queued.load(Ordering::Acquire) < self.config.publish_high_water / den * num
            && (backlog == 0 || backlog < pace / den * num)
    }

    /// No subscriber's queue is half full, or no writer has anything left
    /// to move: the half-full ones wait on sockets nobody reads, and only
    /// publishes move the clock that judges them slow.
    fn unpressed(&self) -> bool {
        self.pressured.load(Ordering::Acquire) == 0 || self.busy.load(Ordering::Acquire) == 0
    }

    /// Whether a publisher held in [`Hub::ready`] may go on: below three
    /// quarters of the high-water mark and the pace, or below both with no
    /// writer left anything to move (the rest waits on sockets, and only
    /// publishes move the clock that judges them slow). Woken at the mark
    /// itself, a publisher would publish a message per wake-up and cut
    /// every writer's next batch to it; woken lower, the writers' average
    /// batch shrinks with the average queue (benches/echo `fanout.sh
    /// unpaced`, 1 000 and 10 000 × 1 KiB).
    fn may_resume(&self) -> bool {
        self.unpressed()
            && (self.below(3, 4) || (self.below(1, 1) && self.busy.load(Ordering::Acquire) == 0))
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Queue {
    /// Queues `message` (`len` bytes with its slot), counting it in the
    /// hub's totals (`charge` in [`HubShared::queued`]).
    fn push(&mut self, message: PreparedMessage, len: usize, charge: usize, hub: &HubShared) {
        hub.count(len, charge);
        self.push_counted(message, len, charge, hub);
    }

    /// [`push`](Self::push) for a delivery the hub's totals count already:
    /// a publish counts all its deliveries at once, as an atomic add per
    /// delivery stalls on the queues' cache misses (benches/echo
    /// `fanout.sh unpaced`, 1 000 × 16 B).
    fn push_counted(
        &mut self,
        message: PreparedMessage,
        len: usize,
        charge: usize,
        hub: &HubShared,
    ) {
        self.messages.push_back(message);
        if self.last.1 != charge && self.last.0 > 0 {
            self.runs.push_back(self.last);
            self.last.0 = 0;
        }
        self.last = (self.last.0 + 1, charge);
        self.bytes += len;
        self.refresh(hub);
        self.wake();
    }

    /// Takes the oldest message: it, its bytes with its slot and what it
    /// counts in [`HubShared::queued`], which the caller takes off the
    /// hub's totals ([`HubShared::uncount`], once for a batch).
    fn pop(&mut self) -> Option<(PreparedMessage, usize, usize)> {
        let message = self.messages.pop_front()?;
        let charge = match self.runs.front_mut() {
            Some((count, charge)) => {
                let charge = *charge;
                *count -= 1;
                if *count == 0 {
                    self.runs.pop_front();
                }
                charge
            }
            None => {
                self.last.0 = self.last.0.saturating_sub(1);
                self.last.1
            }
        };
        let len = message.len() + ENTRY_COST;
        self.bytes -= len;
        Some((message, len, charge))
    }

    /// Empties the queue; how many messages it held.
    fn clear(&mut self, hub: &HubShared) -> usize {
        let charged = (self.runs.iter().chain([&self.last]))
            .map(|(count, charge)| count * charge)
            .sum();
        hub.uncount(self.bytes, charged);
        self.bytes = 0;
        let dropped = self.messages.len();
        self.messages.clear();
        self.runs.clear();
        self.last = (0, 0);
        self.refresh(hub);
        dropped
    }

    /// Recounts whether it holds back a paced publisher, and whether its
    /// writer has something to move.
    fn refresh(&mut self, hub: &HubShared) {
        // A slow one holds no one: the policy closes it once it is full.
        // The clock is read only then (writers on every core move it).
        let pressured = self.close.is_none()
            && self.bytes >= hub.config.queue_limit / 2
            && !(self.stuck_since.is_some()
                && self.is_slow(hub.progress.load(Ordering::Relaxed), &hub.config));
        recount(&mut self.pressured, pressured, &hub.pressured);
        let flowing = self.close.is_none() && self.stuck_since.is_none();
        recount(
            &mut self.busy,
            flowing && !self.messages.is_empty(),
            &hub.busy,
        );
    }

    /// Its write has waited while the others completed
    /// [`HubConfig::slow_after`] writes (`progress` is the clock now).
    fn is_slow(&self, progress: u64, config: &HubConfig) -> bool {
        self.stuck_since
            .is_some_and(|since| progress.saturating_sub(since) >= config.slow_after)
    }

    /// Wakes the writer once: it stores its waker again when it next
    /// looks at the queue, so a burst of pushes costs one wake-up.
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// A connection's membership of a [`Hub`]: its subscriptions and its queue.
/// Dropping it leaves the hub.
pub struct Member {
    id: u64,
    slot: Arc<Slot>,
    hub: Hub,
}

/// What ended [`Member::forward`] without an error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forwarded {
    /// The policy closed the member as slow; its Close was sent.
    ClosedSlow(CloseCode),
}

impl Member {
    /// Its id in the hub (unique for the hub's life).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The hub it belongs to.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Topics it is subscribed to.
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        crate::sync::lock(&self.hub.shared.state)
            .members
            .get(&self.id)
            .map(|entry| entry.topics.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default()
    }

    /// Queues `message` for this member alone (a reply to its request),
    /// under the same queue limit; `false` if its queue is full (or the
    /// policy closed it) and the message was dropped.
    pub fn send(&self, message: &PreparedMessage) -> bool {
        let shared = &*self.hub.shared;
        let mut queue = self.slot.queue_behind();
        if queue.close.is_some() || queue.bytes >= shared.config.queue_limit {
            return false;
        }
        let len = message.len() + ENTRY_COST;
        queue.push(message.clone(), len, len, shared);
        true
    }

    /// Takes the oldest delivery waiting for it, for a member whose
    /// messages leave some other way than [`forward`](Self::forward) (a
    /// transport of the caller's, a test); `None` when nothing waits.
    pub fn take(&self) -> Option<PreparedMessage> {
        let hub = &*self.hub.shared;
        let mut queue = crate::sync::lock(&self.slot.queue);
        let message = queue.pop().map(|(message, len, charge)| {
            hub.uncount(len, charge);
            message
        });
        queue.refresh(hub);
        drop(queue);
        self.hub.drained();
        message
    }

    /// Payload bytes waiting for it.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        crate::sync::lock(&self.slot.queue).bytes
    }

    /// Moves what is published to this member onto `write`'s connection and
    /// writes it, until the policy closes it (then it sends the Close and
    /// returns). While the member keeps up (nothing queued, nothing left to
    /// write), publishers write to the connection themselves
    /// ([`WriteHalf::direct`]) and this task sleeps; once something waits,
    /// this task writes it, everything waiting at once (up to
    /// [`HubConfig::batch_bytes`] per write). Run it for as long as the
    /// connection lives, beside the read half's loop. Cancel-safe: what a
    /// cancelled call took from the queue is on the connection, and the
    /// next call writes it first (`tests/cancel.rs`).
    ///
    /// # Errors
    ///
    /// What writing to the connection fails with (the peer went away, the
    /// connection closed).
    pub async fn forward<S: Send + 'static, R: Runtime<S> + 'static>(
        &self,
        write: &mut WriteHalf<S, R>,
    ) -> Result<Forwarded, Error> {
        let _attached = Attached::new(self, write.direct());
        // The first poll flushes: what a cancelled call left goes first,
        // and this task becomes the one a direct write's rest wakes.
        let mut writing = true;
        poll_fn(|cx| self.poll_forward(cx, write, &mut writing)).await
    }

    /// [`forward`](Self::forward)s until `until` resolves, then queues on
    /// `write` what still waits for this member, without waiting for more:
    /// a member about to leave (for another process, in a handoff) takes
    /// along everything published to it until then. `until`'s output.
    ///
    /// # Errors
    ///
    /// What forwarding fails with, or [`Error::ConnectionClosed`] when the
    /// slow-consumer policy closed the member first.
    pub async fn forward_until<S: Send + 'static, R: Runtime<S> + 'static, T>(
        &self,
        write: &mut WriteHalf<S, R>,
        until: impl Future<Output = T>,
    ) -> Result<T, Error> {
        let value = {
            let (mut until, mut forwarding) = (pin!(until), pin!(self.forward(write)));
            poll_fn(|cx| {
                if let Poll::Ready(value) = until.as_mut().poll(cx) {
                    return Poll::Ready(Ok(value));
                }
                forwarding
                    .as_mut()
                    .poll(cx)
                    .map(|ended| ended.and(Err(Error::ConnectionClosed)))
            })
            .await?
        };
        // Forwarding ended (and with it the direct writes): what was
        // published since waits in the queue.
        while let Some(message) = self.take() {
            write.feed(&message).await?;
        }
        Ok(value)
    }

    /// Built on the write half's public seam (`queue`, `poll_flush_queued`,
    /// `poll_send_close`, `direct`) only. `writing`: output is on the
    /// connection (a batch of this task's, or what a direct write left).
    fn poll_forward<S, R: Runtime<S>>(
        &self,
        cx: &mut Context<'_>,
        write: &mut WriteHalf<S, R>,
        writing: &mut bool,
    ) -> Poll<Result<Forwarded, Error>> {
        let hub = &*self.hub.shared;
        loop {
            let close = {
                let mut queue = crate::sync::lock(&self.slot.queue);
                store(&mut queue.waker, cx);
                queue.close
            };
            if let Some((code, reason)) = close {
                return write
                    .poll_send_close(cx, code, reason)
                    .map_ok(|()| Forwarded::ClosedSlow(code));
            }
            if *writing {
                match write.poll_flush_queued(cx) {
                    Poll::Pending => {
                        let mut queue = crate::sync::lock(&self.slot.queue);
                        if queue.stuck_since.is_none() {
                            queue.stuck_since = Some(hub.progress.load(Ordering::Relaxed));
                            queue.refresh(hub);
                            drop(queue);
                            self.hub.drained();
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Ready(Ok(())) => {
                        *writing = false;
                        let mut queue = crate::sync::lock(&self.slot.queue);
                        queue.stuck_since = None;
                        queue.refresh(hub);
                        hub.progress.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Move the next batch onto the connection, by reference. A Pong
            // waiting for the last batch to drain goes first, not behind
            // this one (tests/hub.rs, pongs_are_not_held_behind_the_queue).
            // What waits on the connection is written next: this batch, or
            // what a direct write left. With nothing anywhere, publishers
            // may write directly again.
            let (moved, waiting) = write.queue(|outbox| {
                let (mut moved, mut charged) = (0, 0);
                let mut queue = crate::sync::lock(&self.slot.queue);
                while moved < hub.config.batch_bytes {
                    // Past `max_write_buffer` the rest waits for this write.
                    if outbox.is_full() {
                        break;
                    }
                    let Some((message, len, charge)) = queue.pop() else {
                        break;
                    };
                    moved += len;
                    charged += charge;
                    if let Err(error) = outbox.send(&message) {
                        hub.uncount(moved, charged);
                        return Err(error);
                    }
                }
                hub.uncount(moved, charged);
                let waiting = outbox.queued() > 0;
                if !waiting {
                    self.slot.direct.store(true, Ordering::Release);
                }
                queue.refresh(hub);
                Ok::<_, SendError>((moved, waiting))
            })?;
            if !waiting {
                return Poll::Pending;
            }
            if moved > 0 {
                self.hub.drained();
            }
            *writing = true;
        }
    }
}

/// What one of `deliveries` of `message` counts in [`HubShared::queued`]:
/// its slot, and its payload where each connection copies the frame (under
/// [`SHARED_INLINE`](crate::conn::SHARED_INLINE) bytes), else an equal
/// share of it: one allocation, queued and written by reference, however
/// many subscribers hold it.
fn charge(message: &PreparedMessage, deliveries: usize) -> usize {
    if message.frame().len() < crate::conn::SHARED_INLINE {
        message.len() + ENTRY_COST
    } else {
        message.len().div_ceil(deliveries.max(1)) + ENTRY_COST
    }
}

/// Sets `counted` to `now`, keeping `count` the number of those set.
fn recount(counted: &mut bool, now: bool, count: &AtomicUsize) {
    if now != *counted {
        *counted = now;
        if now {
            count.fetch_add(1, Ordering::AcqRel);
        } else {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A member's connection known to its publishers while
/// [`Member::forward`] runs; forgotten when it stops (or is cancelled).
struct Attached<'a> {
    member: &'a Member,
}

impl<'a> Attached<'a> {
    fn new(member: &'a Member, writer: DirectWriter) -> Self {
        let mut state = crate::sync::lock(&member.hub.shared.state);
        if let Some(entry) = state.members.get_mut(&member.id) {
            entry.writer = Some(writer);
        }
        Self { member }
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        let member = self.member;
        let mut state = crate::sync::lock(&member.hub.shared.state);
        member.slot.direct.store(false, Ordering::Release);
        if let Some(entry) = state.members.get_mut(&member.id) {
            entry.writer = None;
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut state = crate::sync::lock(&self.hub.shared.state);
        state.remove(self.id);
        (self.hub.shared.members).store(state.members.len(), Ordering::Relaxed);
        drop(state);
        let mut queue = crate::sync::lock(&self.slot.queue);
        queue.close = Some((CloseCode::GOING_AWAY, ""));
        queue.clear(&self.hub.shared);
        drop(queue);
        self.hub.drained();
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("queued_bytes", &self.queued_bytes())
            .finish_non_exhaustive()
    }
}
