//! Several pubsub nodes as one logical server, through a broker.
//!
//! A node delivers its own clients' publishes itself and hands them to the
//! broker in an [`Envelope`]; what the broker brings back from other nodes
//! goes to its local subscribers, framed once. It holds a broker
//! subscription for a topic exactly while one of its own clients does.
//! Delivery across nodes is at most once, in order per publisher and topic:
//! its own publishes coming back are dropped by origin, repeats by sequence
//! number, and what a broker outage lost is counted.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rfc6455::PreparedMessage;
use rfc6455::rt::hub::{Hub, HubError, Member};

use super::envelope::{Arrival, Envelope, Origin, Sequencer, Tracker};

/// What a broker call returns.
pub(crate) type BrokerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send + 'a>>;

/// A broker call that failed (the broker is unreachable, or refused).
#[derive(Debug)]
pub(crate) struct BrokerError(pub(crate) String);

/// What a node needs of a broker. Messages arriving on subscribed topics
/// go to [`Node::receive`], from whatever task the broker runs.
pub(crate) trait Broker: Send + Sync + 'static {
    /// Publishes `bytes` (an encoded envelope) on `topic`.
    fn publish<'a>(&'a self, topic: &'a str, bytes: Vec<u8>) -> BrokerFuture<'a>;
    /// Starts receiving what is published on `topic`.
    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a>;
    /// Stops receiving `topic`.
    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a>;
}

/// The text a subscriber receives for a publish.
pub(crate) fn delivery(topic: &str, payload: &str) -> PreparedMessage {
    PreparedMessage::text(format!("MSG {topic} {payload}"))
}

/// A node's counters, since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Publishes handed to the broker.
    pub(crate) published: AtomicU64,
    /// Publishes the broker refused (delivered locally only).
    pub(crate) publish_failed: AtomicU64,
    /// Envelopes from other nodes delivered here.
    pub(crate) received: AtomicU64,
    /// This node's own publishes coming back (already delivered).
    pub(crate) own: AtomicU64,
    /// Envelopes seen before, dropped.
    pub(crate) duplicates: AtomicU64,
    /// Broker messages that were not envelopes, dropped.
    pub(crate) malformed: AtomicU64,
    /// Publishes of other nodes that never arrived (gaps in sequence).
    pub(crate) lost: AtomicU64,
}

/// What [`Node::receive`] did with a broker message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Queued for this many local subscribers.
    Delivered(usize),
    /// This node's own publish: delivered when it was made.
    Own,
    /// Seen before.
    Duplicate,
    /// Not an envelope (or not text).
    Malformed,
}

/// One node: its hub, its broker, and what makes delivery exactly once.
pub(crate) struct Node {
    hub: Hub,
    broker: Arc<dyn Broker>,
    origin: Origin,
    /// Held from numbering a publish until the broker has it, so numbers
    /// reach the broker in order (a later number arriving first would make
    /// the earlier one a duplicate everywhere).
    sequencer: tokio::sync::Mutex<Sequencer>,
    tracker: Mutex<Tracker>,
    /// Topics with a broker subscription. Held across the broker call, so a
    /// client joining a topic while its last subscriber leaves ends with
    /// the topic subscribed.
    topics: tokio::sync::Mutex<HashSet<String>>,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// A node with its own identity (`origin`: node id, and the epoch of
    /// this run).
    pub(crate) fn new(hub: Hub, broker: Arc<dyn Broker>, origin: Origin) -> Self {
        Self {
            hub,
            broker,
            origin,
            sequencer: tokio::sync::Mutex::default(),
            tracker: Mutex::default(),
            topics: tokio::sync::Mutex::default(),
            counters: Counters::default(),
        }
    }

    /// The local hub.
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Subscribes a local client; the broker subscription comes with the
    /// topic's first local subscriber.
    pub(crate) async fn subscribe(&self, member: &Member, topic: &str) -> Result<bool, HubError> {
        let mut topics = self.topics.lock().await;
        let added = self.hub.subscribe(member, topic)?;
        if !topics.contains(topic) {
            // Kept even if the broker call fails: the broker client
            // subscribes again when it reconnects.
            topics.insert(topic.to_owned());
            if let Err(BrokerError(error)) = self.broker.subscribe(topic).await {
                eprintln!("pubsub: broker subscribe to {topic} failed: {error}");
            }
        }
        Ok(added)
    }

    /// Unsubscribes a local client; whether it was subscribed.
    pub(crate) async fn unsubscribe(&self, member: &Member, topic: &str) -> bool {
        let mut topics = self.topics.lock().await;
        let removed = self.hub.unsubscribe(member, topic);
        self.release(&mut topics, topic).await;
        removed
    }

    /// A local client left: its topics without other local subscribers are
    /// given up at the broker.
    pub(crate) async fn leave(&self, member: Member) {
        let held = member.topics();
        drop(member);
        let mut topics = self.topics.lock().await;
        for topic in held {
            self.release(&mut topics, &topic).await;
        }
    }

    async fn release(&self, topics: &mut HashSet<String>, topic: &str) {
        if self.hub.subscribers(topic) == 0 && topics.remove(topic) {
            // Publishes made while no one here listens are not lost to us.
            lock(&self.tracker).forget_topic(topic);
            if let Err(BrokerError(error)) = self.broker.unsubscribe(topic).await {
                eprintln!("pubsub: broker unsubscribe from {topic} failed: {error}");
            }
        }
    }

    /// A local client's publish: delivered here at once, and to the other
    /// nodes through the broker. The local subscribers it was queued for.
    pub(crate) async fn publish(&self, topic: &str, payload: &str) -> usize {
        let mut sequencer = self.sequencer.lock().await;
        let seq = sequencer.next(topic);
        let delivered = self.hub.publish(topic, &delivery(topic, payload)).delivered;
        let envelope = Envelope {
            origin: self.origin,
            seq,
            topic,
            payload: payload.as_bytes(),
        };
        match self.broker.publish(topic, envelope.encode()).await {
            Ok(()) => self.counters.published.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counters.publish_failed.fetch_add(1, Ordering::Relaxed),
        };
        drop(sequencer);
        delivered
    }

    /// A message the broker brought: checked, then queued for the local
    /// subscribers of its topic (encoded once for all of them).
    pub(crate) fn receive(&self, bytes: &[u8]) -> Received {
        let counters = &self.counters;
        let Ok(envelope) = Envelope::decode(bytes) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return Received::Malformed;
        };
        let Ok(payload) = std::str::from_utf8(envelope.payload) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return Received::Malformed;
        };
        if envelope.origin.node == self.origin.node {
            counters.own.fetch_add(1, Ordering::Relaxed);
            return Received::Own;
        }
        if self.hub.subscribers(envelope.topic) == 0 {
            // In flight past the last local unsubscribe, or naming a topic
            // this node never asked for: nothing to deliver, and nothing
            // recorded (the tracker holds only topics someone here holds).
            return Received::Delivered(0);
        }
        match lock(&self.tracker).arrive(&envelope) {
            Arrival::Duplicate => {
                counters.duplicates.fetch_add(1, Ordering::Relaxed);
                return Received::Duplicate;
            }
            Arrival::AfterGap { missed } => {
                counters.lost.fetch_add(missed, Ordering::Relaxed);
            }
            Arrival::InOrder => {}
        }
        counters.received.fetch_add(1, Ordering::Relaxed);
        let message = delivery(envelope.topic, payload);
        Received::Delivered(self.hub.publish(envelope.topic, &message).delivered)
    }
}
