//! Several pubsub nodes as one logical server, through a broker; with no
//! broker, one node alone.
//!
//! A node delivers its own clients' publishes itself and hands them to the
//! broker in an [`Envelope`]; what the broker brings back from other nodes
//! goes to its local subscribers, framed once. It holds a broker
//! subscription for a topic exactly while one of its own clients does.
//! Delivery across nodes is at most once, in order per publisher and topic:
//! its own publishes coming back are dropped by origin, repeats by sequence
//! number, and what a broker outage lost is counted.
//!
//! A client subscribes to a topic in one of two [`Form`]s: plain (`MSG
//! topic payload`) or as the envelope itself, whose header line carries the
//! publisher's node, epoch and sequence number, so the client can see a gap.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rfc6455::PreparedMessage;
use rfc6455::rt::hub::{Hub, HubConfig, HubError, Member};

use super::envelope::{Arrival, Envelope, Origin, Sequencer, Tracker};

/// Told once what became of a publish handed to a [`Broker`].
pub type Done = Box<dyn FnOnce(Result<(), BrokerError>) + Send>;

/// What a broker call returns.
pub type BrokerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send + 'a>>;

/// A broker call that failed (the broker is unreachable, or refused).
#[derive(Clone, Debug)]
pub struct BrokerError(pub String);

/// What a node needs of a broker. Messages arriving on subscribed topics
/// go to [`Node::receive`], from whatever task the broker runs.
pub trait Broker: Send + Sync + 'static {
    /// Publishes `bytes` (an encoded envelope) on `topic`, without waiting:
    /// publishes reach the broker in the order of these calls (a node
    /// numbers them in that order), and `done` learns what became of each.
    fn publish(&self, topic: &str, bytes: Vec<u8>, done: Done);
    /// Starts receiving what is published on `topic`.
    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a>;
    /// Stops receiving `topic`.
    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a>;
    /// Whether the broker is reachable and holds every subscription asked
    /// for.
    fn connected(&self) -> bool;
}

/// The text a plain subscriber receives for a publish.
pub fn delivery(topic: &str, payload: &str) -> PreparedMessage {
    PreparedMessage::text(format!("MSG {topic} {payload}"))
}

/// How a client receives a topic's publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `MSG topic payload`.
    Plain,
    /// The envelope: its header line (`rfc6455-pubsub/1 ORIGIN EPOCH SEQ
    /// TOPIC`), a line break, the payload.
    Envelope,
}

/// Envelope subscribers are the hub topic `"{topic} env"`: a client's topic
/// holds no space, so the two never meet.
const ENVELOPE_SUFFIX: &str = " env";

/// The hub topic of `topic` received in `form`.
pub fn hub_topic(topic: &str, form: Form) -> Cow<'_, str> {
    match form {
        Form::Plain => Cow::Borrowed(topic),
        Form::Envelope => Cow::Owned(format!("{topic}{ENVELOPE_SUFFIX}")),
    }
}

/// The client's topic of a hub topic.
fn client_topic(hub_topic: &str) -> &str {
    hub_topic.strip_suffix(ENVELOPE_SUFFIX).unwrap_or(hub_topic)
}

/// A node's counters, since it started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes handed to the broker.
    pub published: AtomicU64,
    /// Publishes the broker refused (delivered locally only).
    pub publish_failed: AtomicU64,
    /// Envelopes from other nodes delivered here.
    pub received: AtomicU64,
    /// This node's own publishes coming back (already delivered).
    pub own: AtomicU64,
    /// Envelopes seen before, dropped.
    pub duplicates: AtomicU64,
    /// Broker messages that were not envelopes, dropped.
    pub malformed: AtomicU64,
    /// Publishes of other nodes that never arrived (gaps in sequence).
    pub lost: AtomicU64,
}

impl fmt::Display for Counters {
    /// `name=value` pairs, space-separated, in the order of the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        write!(
            f,
            "published={} publish_failed={} received={} own={} duplicates={} malformed={} lost={}",
            get(&self.published),
            get(&self.publish_failed),
            get(&self.received),
            get(&self.own),
            get(&self.duplicates),
            get(&self.malformed),
            get(&self.lost),
        )
    }
}

/// What [`Node::publish`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The local subscribers it was queued for.
    pub delivered: usize,
    /// With a broker, whether it was reachable when the publish was handed
    /// to it (the other nodes get it, unless the connection drops first;
    /// the counters tell).
    pub shared: Option<bool>,
}

/// What [`Node::receive`] did with a broker message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Queued for this many local subscribers.
    Delivered(usize),
    /// This node's own publish: delivered when it was made.
    Own,
    /// Seen before.
    Duplicate,
    /// Not an envelope (or not text, or on another topic's channel).
    Malformed,
}

/// One node: its hub, its broker if any, and what makes delivery exactly
/// once.
pub struct Node {
    hub: Hub,
    /// The longest topic name a client may use (the hub's limit leaves room
    /// for the envelope form's suffix).
    max_topic_len: usize,
    broker: Option<Arc<dyn Broker>>,
    origin: Origin,
    /// Held while a publish is numbered, delivered here and handed to the
    /// broker, so numbers reach the broker in order (a later number arriving
    /// first would make the earlier one a duplicate everywhere).
    sequencer: Mutex<Sequencer>,
    tracker: Mutex<Tracker>,
    /// Topics with a broker subscription. Held across the broker call, so a
    /// client joining a topic while its last subscriber leaves ends with
    /// the topic subscribed.
    topics: tokio::sync::Mutex<HashSet<String>>,
    counters: Arc<Counters>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// A node with its own identity (`origin`: node id, and the epoch of
    /// this run), sharing topics through `broker` (or alone, with none).
    /// `config.max_topic_len` is the longest topic name clients may use.
    pub fn new(config: HubConfig, broker: Option<Arc<dyn Broker>>, origin: Origin) -> Self {
        let max_topic_len = config.max_topic_len;
        let config = config.max_topic_len(max_topic_len + ENVELOPE_SUFFIX.len());
        Self {
            hub: Hub::new(config),
            max_topic_len,
            broker,
            origin,
            sequencer: Mutex::default(),
            tracker: Mutex::default(),
            topics: tokio::sync::Mutex::default(),
            counters: Arc::default(),
        }
    }

    /// The local hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The longest topic name a client may use.
    pub fn max_topic_len(&self) -> usize {
        self.max_topic_len
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What `STATS` answers: the counters, the (origin, topic) records the
    /// tracker holds, and the broker's state (`up`, `down` or `none`).
    pub fn stats(&self) -> String {
        let broker = match &self.broker {
            None => "none",
            Some(broker) if broker.connected() => "up",
            Some(_) => "down",
        };
        let tracked = lock(&self.tracker).records();
        format!("{} tracked={tracked} broker={broker}", self.counters())
    }

    /// Local subscribers of `topic`, in either form.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.subscribers_of(topic, &hub_topic(topic, Form::Envelope))
    }

    /// Local subscribers of `topic` in either form, `enveloped` being its
    /// envelope form's hub topic.
    fn subscribers_of(&self, topic: &str, enveloped: &str) -> usize {
        self.hub.subscribers(topic) + self.hub.subscribers(enveloped)
    }

    /// Subscribes a local client to `topic` in `form`; the broker
    /// subscription comes with the topic's first local subscriber.
    pub async fn subscribe(
        &self,
        member: &Member,
        topic: &str,
        form: Form,
    ) -> Result<bool, HubError> {
        let mut topics = self.topics.lock().await;
        let added = self.hub.subscribe(member, &hub_topic(topic, form))?;
        if let Some(broker) = &self.broker
            && !topics.contains(topic)
        {
            // Kept even if the broker call fails: the broker subscribes
            // again when it reconnects.
            topics.insert(topic.to_owned());
            if let Err(BrokerError(error)) = broker.subscribe(topic).await {
                eprintln!("pubsub: broker subscribe to {topic} failed: {error}");
            }
        }
        Ok(added)
    }

    /// Unsubscribes a local client from `topic` (either form); whether it
    /// was subscribed.
    pub async fn unsubscribe(&self, member: &Member, topic: &str) -> bool {
        let mut topics = self.topics.lock().await;
        let plain = self.hub.unsubscribe(member, topic);
        let envelope = self
            .hub
            .unsubscribe(member, &hub_topic(topic, Form::Envelope));
        self.release(&mut topics, topic).await;
        plain || envelope
    }

    /// A local client left: its topics without other local subscribers are
    /// given up at the broker.
    pub async fn leave(&self, member: Member) {
        let held: HashSet<String> = (member.topics().iter())
            .map(|topic| client_topic(topic).to_owned())
            .collect();
        drop(member);
        let mut topics = self.topics.lock().await;
        for topic in held {
            self.release(&mut topics, &topic).await;
        }
    }

    async fn release(&self, topics: &mut HashSet<String>, topic: &str) {
        if self.subscribers(topic) == 0 && topics.remove(topic) {
            // Publishes made while no one here listens are not lost to us.
            lock(&self.tracker).forget_topic(topic);
            if let Some(broker) = &self.broker
                && let Err(BrokerError(error)) = broker.unsubscribe(topic).await
            {
                eprintln!("pubsub: broker unsubscribe from {topic} failed: {error}");
            }
        }
    }

    /// A local client's publish: delivered here at once, and handed to the
    /// broker for the other nodes.
    pub fn publish(&self, topic: &str, payload: &str) -> Published {
        let mut sequencer = lock(&self.sequencer);
        let envelope = Envelope {
            origin: self.origin,
            seq: sequencer.next(topic),
            topic,
            payload: payload.as_bytes(),
        };
        let enveloped = hub_topic(topic, Form::Envelope);
        // Encoded only for the broker or for local envelope subscribers.
        let bytes = (self.broker.is_some() || self.hub.subscribers(&enveloped) > 0)
            .then(|| envelope.encode());
        let delivered = self.deliver(topic, &enveloped, payload, bytes.as_deref());
        let shared = self.broker.as_ref().map(|broker| {
            let counters = Arc::clone(&self.counters);
            let done = move |result: Result<(), BrokerError>| {
                let counter = match result {
                    Ok(()) => &counters.published,
                    Err(_) => &counters.publish_failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            };
            broker.publish(topic, bytes.unwrap_or_default(), Box::new(done));
            broker.connected()
        });
        Published { delivered, shared }
    }

    /// Queues a publish for the local subscribers of `topic` (`enveloped`:
    /// its envelope form's hub topic), each form framed once; how many it
    /// was queued for. `envelope` is the encoded envelope, given whenever
    /// the envelope form has subscribers.
    fn deliver(
        &self,
        topic: &str,
        enveloped: &str,
        payload: &str,
        envelope: Option<&[u8]>,
    ) -> usize {
        let mut delivered = 0;
        if self.hub.subscribers(topic) > 0 {
            delivered += self.hub.publish(topic, &delivery(topic, payload)).delivered;
        }
        if let Some(envelope) = envelope
            && self.hub.subscribers(enveloped) > 0
        {
            // The header is ASCII and the payload UTF-8: the whole is text.
            let message = PreparedMessage::text(String::from_utf8_lossy(envelope).into_owned());
            delivered += self.hub.publish(enveloped, &message).delivered;
        }
        delivered
    }

    /// A message the broker brought on `channel` (the topic): checked, then
    /// queued for the local subscribers of its topic.
    pub fn receive(&self, channel: &str, bytes: &[u8]) -> Received {
        let counters = &self.counters;
        let Ok(envelope) = Envelope::decode(bytes) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return Received::Malformed;
        };
        let (Ok(payload), true) = (
            std::str::from_utf8(envelope.payload),
            envelope.topic == channel,
        ) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return Received::Malformed;
        };
        if envelope.origin.node == self.origin.node {
            counters.own.fetch_add(1, Ordering::Relaxed);
            return Received::Own;
        }
        let enveloped = hub_topic(envelope.topic, Form::Envelope);
        if self.subscribers_of(envelope.topic, &enveloped) == 0 {
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
        let delivered = self.deliver(envelope.topic, &enveloped, payload, Some(bytes));
        Received::Delivered(delivered)
    }
}
