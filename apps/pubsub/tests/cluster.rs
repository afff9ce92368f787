//! The `pubsub` server's cluster node over an in-process broker: each
//! publish reaches every other node's subscribers once, a node's own
//! publishes coming back are dropped, broker subscriptions follow local
//! subscribers, and what an outage lost is counted, never delivered twice.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use proptest::prelude::*;
use pubsub::cluster::{Broker, BrokerError, BrokerFuture, Done, Form, Node, Published, Received};
use pubsub::envelope::Origin;
use rfc6455::rt::hub::HubConfig;

/// The broker: every node's subscriptions, and a log of what each node
/// made of each message it was handed.
#[derive(Default)]
struct Bus {
    nodes: Mutex<Vec<Attached>>,
    down: Mutex<bool>,
    log: Mutex<Vec<(usize, Received)>>,
}

#[derive(Default)]
struct Attached {
    node: OnceLock<Weak<Node>>,
    topics: HashSet<String>,
}

struct Handle {
    bus: Arc<Bus>,
    index: usize,
}

impl Broker for Handle {
    // Delivered at the call, as the trait asks (order is the calls').
    fn publish(&self, topic: &str, bytes: Vec<u8>, done: Done) {
        if *self.bus.down.lock().unwrap() {
            return done(Err(BrokerError("down".into())));
        }
        let receivers: Vec<_> = (self.bus.nodes.lock().unwrap().iter().enumerate())
            .filter(|(_, a)| a.topics.contains(topic))
            .filter_map(|(i, a)| Some((i, a.node.get()?.upgrade()?)))
            .collect();
        for (i, node) in receivers {
            let received = node.receive(topic, &bytes);
            self.bus.log.lock().unwrap().push((i, received));
        }
        done(Ok(()));
    }
    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a> {
        Box::pin(async move {
            self.bus.nodes.lock().unwrap()[self.index]
                .topics
                .insert(topic.into());
            Ok(())
        })
    }
    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a> {
        Box::pin(async move {
            self.bus.nodes.lock().unwrap()[self.index]
                .topics
                .remove(topic);
            Ok(())
        })
    }
    fn connected(&self) -> bool {
        !*self.bus.down.lock().unwrap()
    }
}

fn node(bus: &Arc<Bus>, id: u64) -> Arc<Node> {
    let index = {
        let mut nodes = bus.nodes.lock().unwrap();
        nodes.push(Attached::default());
        nodes.len() - 1
    };
    let handle = Handle {
        bus: Arc::clone(bus),
        index,
    };
    let origin = Origin { node: id, epoch: 1 };
    let node = Arc::new(Node::new(
        HubConfig::default(),
        Some(Arc::new(handle)),
        origin,
    ));
    bus.nodes.lock().unwrap()[index]
        .node
        .set(Arc::downgrade(&node))
        .unwrap();
    node
}

fn take_log(bus: &Bus) -> Vec<(usize, Received)> {
    std::mem::take(&mut *bus.log.lock().unwrap())
}

fn subscribed(bus: &Bus, index: usize) -> HashSet<String> {
    bus.nodes.lock().unwrap()[index].topics.clone()
}

#[tokio::test]
async fn a_publish_reaches_every_node_once() {
    let bus = Arc::new(Bus::default());
    let (a, b) = (node(&bus, 1), node(&bus, 2));
    let (a1, a2) = (a.hub().join(), a.hub().join());
    let b1 = b.hub().join();
    a.subscribe(&a1, "t", Form::Plain).await.unwrap();
    a.subscribe(&a2, "t", Form::Plain).await.unwrap();
    b.subscribe(&b1, "t", Form::Plain).await.unwrap();

    assert_eq!(
        a.publish("t", "from a").delivered,
        2,
        "a's own subscribers at once"
    );
    // a gets its own publish back and drops it; b delivers it once.
    assert_eq!(
        take_log(&bus),
        [(0, Received::Own), (1, Received::Delivered(1))]
    );
    assert_eq!(b.publish("t", "from b").delivered, 1);
    assert_eq!(
        take_log(&bus),
        [(0, Received::Delivered(2)), (1, Received::Own)]
    );
    assert_eq!(a.counters().received.load(Ordering::Relaxed), 1);
    assert_eq!(a.counters().own.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn broker_subscriptions_follow_local_subscribers() {
    let bus = Arc::new(Bus::default());
    let a = node(&bus, 1);
    let (m1, m2) = (a.hub().join(), a.hub().join());
    a.subscribe(&m1, "t", Form::Plain).await.unwrap();
    a.subscribe(&m2, "t", Form::Plain).await.unwrap();
    assert!(subscribed(&bus, 0).contains("t"));
    assert!(a.unsubscribe(&m1, "t").await);
    assert!(subscribed(&bus, 0).contains("t"), "m2 still listens");
    a.leave(m2).await;
    assert!(
        subscribed(&bus, 0).is_empty(),
        "the last local subscriber left"
    );
    assert!(!a.unsubscribe(&m1, "t").await);
}

#[tokio::test]
async fn an_outage_is_counted_as_lost_and_nothing_comes_twice() {
    let bus = Arc::new(Bus::default());
    let (a, b) = (node(&bus, 1), node(&bus, 2));
    let (a1, b1) = (a.hub().join(), b.hub().join());
    a.subscribe(&a1, "t", Form::Plain).await.unwrap();
    b.subscribe(&b1, "t", Form::Plain).await.unwrap();
    a.publish("t", "1");
    *bus.down.lock().unwrap() = true;
    assert_eq!(
        a.publish("t", "2"),
        Published {
            delivered: 1,
            shared: Some(false)
        },
        "local delivery goes on"
    );
    *bus.down.lock().unwrap() = false;
    take_log(&bus);
    a.publish("t", "3");
    assert_eq!(
        take_log(&bus),
        [(0, Received::Own), (1, Received::Delivered(1))]
    );
    assert_eq!(a.counters().publish_failed.load(Ordering::Relaxed), 1);
    assert_eq!(
        b.counters().lost.load(Ordering::Relaxed),
        1,
        "publish 2 is reported lost"
    );
}

#[tokio::test]
async fn repeats_and_garbage_from_the_broker_are_dropped() {
    let bus = Arc::new(Bus::default());
    let b = node(&bus, 2);
    let b1 = b.hub().join();
    b.subscribe(&b1, "t", Form::Plain).await.unwrap();
    let bytes = pubsub::envelope::Envelope {
        origin: Origin { node: 1, epoch: 1 },
        seq: 1,
        topic: "t",
        payload: b"hi",
    }
    .encode();
    assert_eq!(b.receive("t", &bytes), Received::Delivered(1));
    assert_eq!(b.receive("t", &bytes), Received::Duplicate);
    assert_eq!(b.receive("t", b"\xff\xfe garbage"), Received::Malformed);
    assert_eq!(
        b.receive("u", &bytes),
        Received::Malformed,
        "on another topic's channel"
    );
    let mut not_text = bytes;
    not_text.extend_from_slice(b"\xff");
    assert_eq!(b.receive("t", &not_text), Received::Malformed);
    assert_eq!(b.counters().duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(b.counters().malformed.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn envelopes_for_topics_no_one_here_holds_are_not_recorded() {
    let bus = Arc::new(Bus::default());
    let b = node(&bus, 2);
    let bytes = pubsub::envelope::Envelope {
        origin: Origin { node: 1, epoch: 1 },
        seq: 1,
        topic: "u",
        payload: b"hi",
    }
    .encode();
    assert_eq!(b.receive("u", &bytes), Received::Delivered(0));
    assert!(b.stats().ends_with(" tracked=0 broker=up"), "{}", b.stats());
    let b1 = b.hub().join();
    b.subscribe(&b1, "u", Form::Plain).await.unwrap();
    assert_eq!(
        b.receive("u", &bytes),
        Received::Delivered(1),
        "not taken for a repeat"
    );
    assert_eq!(b.counters().duplicates.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn both_forms_share_one_broker_subscription() {
    let bus = Arc::new(Bus::default());
    let (a, b) = (node(&bus, 1), node(&bus, 2));
    let (plain, enveloped) = (b.hub().join(), b.hub().join());
    b.subscribe(&plain, "t", Form::Plain).await.unwrap();
    b.subscribe(&enveloped, "t", Form::Envelope).await.unwrap();
    assert_eq!(b.subscribers("t"), 2);
    let a1 = a.hub().join();
    a.subscribe(&a1, "t", Form::Envelope).await.unwrap();
    assert_eq!(a.publish("t", "x").delivered, 1);
    assert_eq!(
        take_log(&bus),
        [(0, Received::Own), (1, Received::Delivered(2))],
        "each form framed once, both delivered"
    );
    assert!(b.unsubscribe(&plain, "t").await);
    assert!(
        subscribed(&bus, 1).contains("t"),
        "the envelope form holds it"
    );
    b.leave(enveloped).await;
    assert!(subscribed(&bus, 1).is_empty());
    assert_eq!(b.subscribers("t"), 0);
}

#[tokio::test]
async fn a_node_without_a_broker_serves_alone() {
    let node = Node::new(HubConfig::default(), None, Origin { node: 1, epoch: 1 });
    let (m1, m2) = (node.hub().join(), node.hub().join());
    node.subscribe(&m1, "t", Form::Plain).await.unwrap();
    node.subscribe(&m2, "t", Form::Envelope).await.unwrap();
    // A client's longest topic fits in the envelope form too.
    assert_eq!(node.max_topic_len(), HubConfig::default().max_topic_len);
    let longest = "l".repeat(node.max_topic_len());
    node.subscribe(&m2, &longest, Form::Envelope).await.unwrap();
    assert_eq!(
        node.publish("t", "x"),
        Published {
            delivered: 2,
            shared: None
        }
    );
    assert_eq!(
        node.stats(),
        "published=0 publish_failed=0 received=0 own=0 duplicates=0 malformed=0 lost=0 \
         tracked=0 broker=none"
    );
}

/// One step of a node's clients.
#[derive(Clone, Debug)]
enum Step {
    Sub(usize, usize),
    SubEnv(usize, usize),
    Unsub(usize, usize),
    Leave(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let (member, topic) = (0..4usize, 0..3usize);
    prop_oneof![
        (member.clone(), topic.clone()).prop_map(|(m, t)| Step::Sub(m, t)),
        (member.clone(), topic.clone()).prop_map(|(m, t)| Step::SubEnv(m, t)),
        (member.clone(), topic).prop_map(|(m, t)| Step::Unsub(m, t)),
        member.prop_map(Step::Leave),
    ]
}

proptest! {
    // After any sequence of subscribes, unsubscribes and departures, the
    // node holds a broker subscription to exactly the topics one of its
    // clients holds, in either form.
    #[test]
    fn broker_subscriptions_are_the_topics_held(steps in proptest::collection::vec(step(), 0..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let bus = Arc::new(Bus::default());
            let node = node(&bus, 1);
            let mut members: Vec<_> = (0..4).map(|_| Some(node.hub().join())).collect();
            let topics = ["a", "b", "c"];
            for step in steps {
                match step {
                    Step::Sub(m, t) | Step::SubEnv(m, t) => {
                        let form = match step {
                            Step::Sub(..) => Form::Plain,
                            _ => Form::Envelope,
                        };
                        let member = members[m].get_or_insert_with(|| node.hub().join());
                        node.subscribe(member, topics[t], form).await.unwrap();
                    }
                    Step::Unsub(m, t) => {
                        if let Some(member) = &members[m] {
                            node.unsubscribe(member, topics[t]).await;
                        }
                    }
                    Step::Leave(m) => {
                        if let Some(member) = members[m].take() {
                            node.leave(member).await;
                        }
                    }
                }
                let held: HashSet<String> = (topics.iter())
                    .filter(|topic| node.subscribers(topic) > 0)
                    .map(|topic| topic.to_string())
                    .collect();
                assert_eq!(subscribed(&bus, 0), held);
            }
        });
    }
}
