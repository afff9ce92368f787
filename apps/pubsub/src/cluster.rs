//! Several pubsub nodes as one logical server, through a broker that keeps
//! each topic's history; with no broker, one node alone whose hub keeps it.
//!
//! With a broker, a publish is appended to the topic's shared history,
//! which gives it its position, and the broker notifies every node holding
//! the topic, the publishing one included: all nodes deliver a topic's
//! messages in the history's order, and a client may resume on any node.
//! A node follows each topic it holds: messages in position
//! order go to its hub ([`Hub::publish_at`]); a repeat is dropped; a gap
//! (notifications missed while the broker connection was down) is filled
//! from the shared history before anything after it is delivered, and
//! what the history no longer holds is counted as lost.
//!
//! A client subscribes plain (`MSG topic payload`) or with positions
//! (`MSGP topic EPOCH:OFFSET payload`), optionally resuming after the last
//! position it received: it gets exactly the messages after it, then the
//! live ones, or is told that the history no longer reaches back.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rfc6455::rt::hub::{Hub, HubConfig, HubError, Member, Position};

use super::wire;

/// What a broker call returns.
pub type BrokerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send + 'a>>;

/// A broker call that failed (the broker is unreachable, or refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerError(pub String);

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a topic's shared history holds after a position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// The history's current epoch.
    pub epoch: u64,
    /// The newest message's offset (0: none yet in this epoch).
    pub last: u64,
    /// The oldest offset still held (`last + 1` when none is).
    pub first: u64,
    /// The messages asked for, oldest first: (offset, payload).
    pub entries: Vec<(u64, String)>,
}

/// What a node needs of a broker. Notifications on subscribed topics go
/// to [`Node::receive`], from whatever task the broker runs, in the order
/// the broker sent them.
pub trait Broker: Send + Sync + 'static {
    /// Appends `payload` to `topic`'s history and notifies every node
    /// subscribed to it; the message's position once it is appended.
    /// Publishes are appended in the order of these calls (the call queues
    /// it; the future only waits for the outcome), and those made while
    /// the broker is unreachable wait for it, bounded in time and bytes.
    fn publish(&self, topic: &str, payload: &str) -> BrokerFuture<'static, Position>;
    /// Starts receiving `topic`'s notifications; returns once the broker
    /// has confirmed, so everything appended afterwards is notified.
    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a, ()>;
    /// Stops receiving `topic`.
    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a, ()>;
    /// `topic`'s history after `after` (all of it when `after` is `None`
    /// or of another epoch), at most `limit` messages.
    fn history<'a>(
        &'a self,
        topic: &'a str,
        after: Option<Position>,
        limit: usize,
    ) -> BrokerFuture<'a, Stream>;
    /// Whether the broker is reachable and holds every subscription asked
    /// for.
    fn connected(&self) -> bool;
    /// Publishes waiting for the broker now.
    fn queued(&self) -> usize;
}

/// A node's counters, since it started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes appended to the shared history.
    pub published: AtomicU64,
    /// Publishes refused (the broker unreachable past the wait, or full).
    pub publish_failed: AtomicU64,
    /// Notifications delivered here in order.
    pub received: AtomicU64,
    /// Notifications seen before, dropped.
    pub duplicates: AtomicU64,
    /// Broker messages that were not notifications, dropped.
    pub malformed: AtomicU64,
    /// Messages read back from the shared history to fill a gap.
    pub filled: AtomicU64,
    /// Messages missed that the shared history no longer held.
    pub lost: AtomicU64,
}

impl fmt::Display for Counters {
    /// `name=value` pairs, space-separated, in the order of the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        write!(
            f,
            "published={} publish_failed={} received={} duplicates={} malformed={} filled={} lost={}",
            get(&self.published),
            get(&self.publish_failed),
            get(&self.received),
            get(&self.duplicates),
            get(&self.malformed),
            get(&self.filled),
            get(&self.lost),
        )
    }
}

/// What [`Node::receive`] did with a broker message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Delivered in order, to this many local subscribers.
    Delivered(usize),
    /// Seen before.
    Duplicate,
    /// After a gap: held until the gap is filled from the history.
    Held,
    /// Not a notification.
    Malformed,
}

/// What [`Node::subscribe_from`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Live with positions from now (no position was given).
    Live,
    /// Every message after the given position was queued (this many).
    Recovered(u64),
    /// The history no longer reaches back to the given position (or it is
    /// of another epoch): the messages from `earliest` on were queued
    /// (`replayed` of them), and those between are lost to this client.
    Unrecoverable {
        /// The oldest position still held, in the current epoch.
        earliest: Position,
        /// Messages queued from it.
        replayed: u64,
    },
}

/// Why a subscribe did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscribeError {
    /// The hub refused (a limit).
    Hub(HubError),
    /// Already subscribed to the topic.
    Already,
    /// The shared history could not be read; nothing changed.
    Broker(BrokerError),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hub(error) => error.fmt(f),
            Self::Already => f.write_str("already subscribed (UNSUB first)"),
            Self::Broker(error) => write!(f, "history unavailable, try again: {error}"),
        }
    }
}

/// How a node follows one topic's notifications.
#[derive(Debug, Default)]
struct Feed {
    /// The last position delivered here or joined at (none since the
    /// node subscribed).
    last: Option<Position>,
    /// The hub was given `last` (not only a member joined at it): the hub
    /// holds the messages up to it.
    synced: bool,
    /// While a gap is being filled: what arrived after it, in order.
    waiting: Option<Vec<(Position, String)>>,
}

/// Where a position falls against the last one delivered.
enum Step {
    InOrder,
    Repeat,
    /// Messages between were missed (how many, as far as the position
    /// tells: an epoch change counts the new epoch's earlier ones).
    Gap(u64),
}

impl Feed {
    fn step(&self, at: Position) -> Step {
        match self.last {
            None => Step::InOrder,
            Some(last) if last.epoch == at.epoch && at.offset <= last.offset => Step::Repeat,
            Some(last) if last.epoch == at.epoch => match at.offset - last.offset - 1 {
                0 => Step::InOrder,
                missed => Step::Gap(missed),
            },
            Some(_) => match at.offset.saturating_sub(1) {
                0 => Step::InOrder,
                missed => Step::Gap(missed),
            },
        }
    }
}

/// A subscription a client carries to another process (a handoff).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    /// The topic.
    pub topic: String,
    /// Subscribed with positions (`SUBP`), or plain (`SUB`).
    pub positioned: bool,
    /// The last position delivered to the client, in a cluster.
    pub last: Option<Position>,
}

/// What joining a member to a topic's stream came to.
enum Joined {
    Done(Result<Resume, SubscribeError>),
    /// A gap fill is under way.
    Wait,
    /// The hub missed notifications after this position: fill them first.
    Fill(Option<Position>),
}

/// How long [`Node::subscribe_from`] waits for a gap fill in progress
/// before reading the history again, and how often it tries.
const RESUME_RETRY: Duration = Duration::from_millis(20);
const RESUME_TRIES: usize = 50;

/// One node: its hub, its broker if any, and what keeps each topic's
/// messages in their history's order.
pub struct Node {
    hub: Hub,
    broker: Option<Arc<dyn Broker>>,
    /// The most a resume reads back from the shared history (its length).
    history: usize,
    /// Topics with a broker subscription. Held across the broker call, so
    /// a client joining a topic while its last subscriber leaves ends with
    /// the topic subscribed.
    topics: tokio::sync::Mutex<HashSet<String>>,
    feeds: Mutex<HashMap<String, Feed>>,
    counters: Arc<Counters>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// A node sharing topics through `broker` (or alone, with none).
    /// `config.history` bounds what the hub keeps per topic: alone, the
    /// whole history; with a broker, the recent messages that join a
    /// resume read from the broker to the live ones. `history` is the most
    /// a resume reads back from the broker.
    pub fn new(config: HubConfig, broker: Option<Arc<dyn Broker>>, history: usize) -> Self {
        Self {
            hub: Hub::new(config),
            broker,
            history,
            topics: tokio::sync::Mutex::default(),
            feeds: Mutex::default(),
            counters: Arc::default(),
        }
    }

    /// The local hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What `STATS` answers: the counters, the publishes waiting for the
    /// broker, and its state (`up`, `down` or `none`).
    pub fn stats(&self) -> String {
        let (queued, broker) = match &self.broker {
            None => (0, "none"),
            Some(broker) if broker.connected() => (broker.queued(), "up"),
            Some(broker) => (broker.queued(), "down"),
        };
        format!("{} queued={queued} broker={broker}", self.counters)
    }

    /// Subscribes a local client to `topic`, plain; the broker subscription
    /// comes with the topic's first local subscriber.
    ///
    /// # Errors
    ///
    /// The hub's limits.
    pub async fn subscribe(&self, member: &Member, topic: &str) -> Result<bool, HubError> {
        let mut topics = self.topics.lock().await;
        let added = self.hub.subscribe(member, topic)?;
        self.hold(&mut topics, topic).await;
        Ok(added)
    }

    /// Holds a broker subscription to `topic`. Kept even if the call
    /// fails: the broker subscribes again when it reconnects.
    async fn hold(&self, topics: &mut HashSet<String>, topic: &str) -> Option<BrokerError> {
        let broker = self.broker.as_ref()?;
        if !topics.insert(topic.to_owned()) {
            return None;
        }
        // Followed from before the subscription, so no notification after
        // it finds the topic unknown.
        lock(&self.feeds).entry(topic.to_owned()).or_default();
        let error = broker.subscribe(topic).await.err();
        if let Some(BrokerError(error)) = &error {
            eprintln!("pubsub: broker subscribe to {topic} failed: {error}");
        }
        error
    }

    /// Subscribes a local client to `topic` with positions, resuming after
    /// `from` (the last position it received) when given: the messages
    /// after it are queued for the client first, then the live ones, with
    /// no gap and no repeat between.
    ///
    /// # Errors
    ///
    /// The hub's limits, a member subscribed already, a shared history
    /// that cannot be read (nothing changed: the client may try again).
    pub async fn subscribe_from(
        self: &Arc<Self>,
        member: &Member,
        topic: &str,
        from: Option<Position>,
    ) -> Result<Resume, SubscribeError> {
        if member.topics().iter().any(|held| held == topic) {
            return Err(SubscribeError::Already);
        }
        let Some(broker) = &self.broker else {
            let resumed = self.hub.subscribe_from(member, topic, from);
            let resumed = resumed.map_err(SubscribeError::Hub)?;
            return Ok(resumed.map_or(Resume::Live, |resumed| resume(from, resumed)));
        };
        let mut topics = self.topics.lock().await;
        if let Some(error) = self.hold(&mut topics, topic).await {
            self.release(&mut topics, topic).await;
            return Err(SubscribeError::Broker(error));
        }
        for _ in 0..RESUME_TRIES {
            let stream = match broker.history(topic, from, self.history).await {
                Ok(stream) => stream,
                Err(error) => {
                    self.release(&mut topics, topic).await;
                    return Err(SubscribeError::Broker(error));
                }
            };
            match self.join_stream(member, topic, from, &stream) {
                Joined::Done(done) => {
                    if done.is_err() {
                        self.release(&mut topics, topic).await;
                    }
                    return done;
                }
                // A gap fill is under way: its outcome first.
                Joined::Wait => tokio::time::sleep(RESUME_RETRY).await,
                Joined::Fill(after) => self.fill(topic, after).await,
            }
        }
        self.release(&mut topics, topic).await;
        Err(SubscribeError::Broker(BrokerError(
            "the topic's notifications did not settle".to_owned(),
        )))
    }

    /// Joins `member` to `topic` at the end of `stream` (read from the
    /// broker after the node subscribed): the stream's messages after
    /// `from` are queued, then the hub's own from the stream's end on.
    fn join_stream(
        &self,
        member: &Member,
        topic: &str,
        from: Option<Position>,
        stream: &Stream,
    ) -> Joined {
        let end = Position {
            epoch: stream.epoch,
            offset: stream.last,
        };
        // Under the feed's lock no notification of this topic reaches the
        // hub: the replay and the hub's queue meet without a gap.
        let mut feeds = lock(&self.feeds);
        let feed = feeds.entry(topic.to_owned()).or_default();
        if feed.waiting.is_some() {
            return Joined::Wait;
        }
        // A live subscription (no position) replays nothing.
        let replay = if from.is_some() {
            &stream.entries[..]
        } else {
            &[]
        };
        let hub_from = match feed.last {
            // Every notification up to the stream's end arrived: the hub
            // holds what came after it (nothing did if it was not given
            // one since a join set `last`).
            Some(last) if last.epoch == end.epoch && last.offset >= end.offset => {
                feed.synced.then_some(end)
            }
            // Notifications were missed (the broker connection dropped):
            // the hub catches up first.
            Some(last) if last.epoch == end.epoch => {
                feed.waiting = Some(Vec::new());
                return Joined::Fill(Some(last));
            }
            // Nothing arrived since the subscription (or only an older
            // epoch's): what follows the stream's end is still to come.
            _ => {
                feed.last = (end.offset > 0).then_some(end);
                feed.synced = false;
                None
            }
        };
        for (offset, payload) in replay {
            let at = Position {
                epoch: stream.epoch,
                offset: *offset,
            };
            if !member.send(&wire::positioned(topic, at, payload)) {
                // The member's queue is full: it is closing as slow.
                return Joined::Done(Err(SubscribeError::Hub(HubError::Closed)));
            }
        }
        let joined = match self.hub.subscribe_from(member, topic, hub_from) {
            Ok(Some(joined)) => joined,
            Ok(None) => return Joined::Done(Err(SubscribeError::Already)),
            Err(error) => return Joined::Done(Err(SubscribeError::Hub(error))),
        };
        let replayed = replay.len() as u64 + joined.replayed();
        let Some(from) = from else {
            return Joined::Done(Ok(Resume::Live));
        };
        // A client's offset may be anything, up to u64::MAX.
        let reaches = from.epoch == stream.epoch && stream.first <= from.offset.saturating_add(1);
        Joined::Done(Ok(if reaches && (hub_from.is_none() || joined.recovered) {
            Resume::Recovered(replayed)
        } else {
            let earliest = Position {
                epoch: stream.epoch,
                offset: stream.entries.first().map_or(stream.first, |e| e.0),
            };
            Resume::Unrecoverable { earliest, replayed }
        }))
    }

    /// Unsubscribes a local client from `topic`; whether it was subscribed.
    pub async fn unsubscribe(&self, member: &Member, topic: &str) -> bool {
        let mut topics = self.topics.lock().await;
        let was = self.hub.unsubscribe(member, topic);
        self.release(&mut topics, topic).await;
        was
    }

    /// Unsubscribes `member` from its topics (`positioned`: those it
    /// subscribed to with positions) for a move to another process, each
    /// with the last position delivered to it: read under the topic's feed
    /// lock, so a resume from there in a cluster misses and repeats
    /// nothing. Alone, the position stays behind with the hub's history
    /// (`None`).
    pub async fn depart(&self, member: &Member, positioned: &HashSet<String>) -> Vec<Carried> {
        let mut topics = self.topics.lock().await;
        let mut carried = Vec::new();
        for topic in member.topics() {
            let last = {
                let feeds = lock(&self.feeds);
                let last = feeds.get(&topic).and_then(|feed| feed.last);
                self.hub.unsubscribe(member, &topic);
                last
            };
            self.release(&mut topics, &topic).await;
            carried.push(Carried {
                positioned: positioned.contains(&topic),
                last: last.filter(|_| self.broker.is_some()),
                topic,
            });
        }
        carried
    }

    /// Subscribes `member` to what it [carried](Self::depart) here: with
    /// positions from where it left (in a cluster, what was published
    /// meanwhile is replayed), or plain. What cannot be subscribed again is
    /// reported, not retried.
    pub async fn arrive(self: &Arc<Self>, member: &Member, carried: &[Carried]) {
        for Carried {
            topic,
            positioned,
            last,
        } in carried
        {
            let joined = if *positioned {
                self.subscribe_from(member, topic, *last).await.map(drop)
            } else {
                self.subscribe(member, topic)
                    .await
                    .map(drop)
                    .map_err(SubscribeError::Hub)
            };
            if let Err(error) = joined {
                eprintln!(
                    "pubsub: member {} lost {topic} on arrival: {error}",
                    member.id()
                );
            }
        }
    }

    /// A local client left: its topics without other local subscribers are
    /// given up at the broker.
    pub async fn leave(&self, member: Member) {
        let held = member.topics();
        drop(member);
        let mut topics = self.topics.lock().await;
        for topic in held {
            self.release(&mut topics, &topic).await;
        }
    }

    async fn release(&self, topics: &mut HashSet<String>, topic: &str) {
        if self.hub.subscribers(topic) == 0 && topics.remove(topic) {
            // Not followed any more: its next notification starts afresh.
            lock(&self.feeds).remove(topic);
            if let Some(broker) = &self.broker
                && let Err(BrokerError(error)) = broker.unsubscribe(topic).await
            {
                eprintln!("pubsub: broker unsubscribe from {topic} failed: {error}");
            }
        }
    }

    /// A local client's publish: its position once it is in the topic's
    /// history. Alone, the hub's history, and `None` when the topic has no
    /// subscriber and keeps no history. Publishes take their places in the
    /// order of these calls; the future only waits for the outcome (an
    /// error: the broker refused it or could not be reached in time, and
    /// the publish reached no one).
    pub fn publish(
        &self,
        topic: &str,
        payload: &str,
    ) -> impl Future<Output = Result<Option<Position>, BrokerError>> + Send + 'static {
        let queued = match &self.broker {
            None => {
                let plain = wire::plain(topic, payload);
                let report = self
                    .hub
                    .publish_positioned(topic, &plain, |at| wire::positioned(topic, at, payload));
                Err(report.position)
            }
            Some(broker) => Ok(broker.publish(topic, payload)),
        };
        let counters = Arc::clone(&self.counters);
        async move {
            let published = match queued {
                Err(alone) => return Ok(alone),
                Ok(queued) => queued.await,
            };
            let counter = match &published {
                Ok(_) => &counters.published,
                Err(_) => &counters.publish_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            published.map(Some)
        }
    }

    /// A notification the broker brought on `topic`'s channel: delivered
    /// here in position order.
    pub fn receive(self: &Arc<Self>, topic: &str, bytes: &[u8]) -> Received {
        let Some((at, payload)) = wire::decode_notice(bytes) else {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return Received::Malformed;
        };
        let mut feeds = lock(&self.feeds);
        let Some(feed) = feeds.get_mut(topic) else {
            // In flight past the last local unsubscribe, or a topic this
            // node never asked for.
            return Received::Delivered(0);
        };
        if let Some(waiting) = &mut feed.waiting {
            waiting.push((at, payload.to_owned()));
            return Received::Held;
        }
        match feed.step(at) {
            Step::Repeat => {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                Received::Duplicate
            }
            Step::InOrder => Received::Delivered(self.deliver(feed, topic, at, payload)),
            Step::Gap(_) => {
                feed.waiting = Some(vec![(at, payload.to_owned())]);
                let after = feed.last;
                let (node, topic) = (Arc::clone(self), topic.to_owned());
                tokio::spawn(async move { node.fill(&topic, after).await });
                Received::Held
            }
        }
    }

    /// Redis is back: every topic followed reads back what was appended
    /// while its notifications could not arrive.
    pub fn resync(self: &Arc<Self>) {
        let mut feeds = lock(&self.feeds);
        for (topic, feed) in feeds.iter_mut() {
            if feed.waiting.is_none() && feed.last.is_some() {
                feed.waiting = Some(Vec::new());
                let (node, topic, after) = (Arc::clone(self), topic.clone(), feed.last);
                tokio::spawn(async move { node.fill(&topic, after).await });
            }
        }
    }

    /// Fills `topic`'s gap after `after` from the shared history, then
    /// delivers what waited behind it.
    async fn fill(&self, topic: &str, after: Option<Position>) {
        let Some(broker) = &self.broker else {
            return;
        };
        let stream = broker.history(topic, after, self.history).await;
        let mut feeds = lock(&self.feeds);
        let Some(feed) = feeds.get_mut(topic) else {
            return;
        };
        let waiting = feed.waiting.take().unwrap_or_default();
        let mut filled = 0;
        if let Ok(stream) = stream {
            for (offset, payload) in stream.entries {
                let at = Position {
                    epoch: stream.epoch,
                    offset,
                };
                filled += u64::from(self.catch_up(feed, topic, at, &payload));
            }
        }
        self.counters.filled.fetch_add(filled, Ordering::Relaxed);
        for (at, payload) in waiting {
            self.catch_up(feed, topic, at, &payload);
        }
    }

    /// Delivers `payload` at `at` unless it is a repeat, counting a gap
    /// before it as lost; whether it was delivered.
    fn catch_up(&self, feed: &mut Feed, topic: &str, at: Position, payload: &str) -> bool {
        match feed.step(at) {
            Step::Repeat => return false,
            Step::Gap(missed) => {
                self.counters.lost.fetch_add(missed, Ordering::Relaxed);
            }
            Step::InOrder => {}
        }
        self.deliver(feed, topic, at, payload);
        true
    }

    /// Queues the message at `at` for the local subscribers of `topic`.
    fn deliver(&self, feed: &mut Feed, topic: &str, at: Position, payload: &str) -> usize {
        feed.last = Some(at);
        feed.synced = true;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let plain = wire::plain(topic, payload);
        let report = self
            .hub
            .publish_at(topic, at, &plain, |at| wire::positioned(topic, at, payload));
        report.delivered
    }
}

/// A hub's resume as the node reports it.
fn resume(from: Option<Position>, resumed: rfc6455::rt::hub::Resumed) -> Resume {
    match from {
        None => Resume::Live,
        Some(_) if resumed.recovered => Resume::Recovered(resumed.replayed()),
        Some(_) => Resume::Unrecoverable {
            earliest: resumed.first,
            replayed: resumed.replayed(),
        },
    }
}
