//! Positions on hub topics: a member that was away resumes from the last
//! position it received and gets exactly what it missed, then the live
//! messages, with no gap and no duplicate at the seam; when the history
//! cannot reach back, the answer says so. Members are read with
//! `Member::take` (no sockets): what is tested is the hub's bookkeeping.
#![cfg(feature = "tokio")]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rfc6455::PreparedMessage;
use rfc6455::rt::hub::{HistoryConfig, Hub, HubConfig, Member, Position};

/// The message members with positions get: its position, 16 bytes.
fn positioned(position: Position) -> PreparedMessage {
    let mut payload = position.epoch.to_be_bytes().to_vec();
    payload.extend_from_slice(&position.offset.to_be_bytes());
    PreparedMessage::binary(payload)
}

fn position_of(message: &PreparedMessage) -> Position {
    let payload = message.payload();
    Position {
        epoch: u64::from_be_bytes(payload[..8].try_into().unwrap()),
        offset: u64::from_be_bytes(payload[8..16].try_into().unwrap()),
    }
}

fn publish(hub: &Hub, topic: &str) -> Position {
    hub.publish_positioned(topic, &PreparedMessage::text("plain"), positioned)
        .position
        .expect("a position")
}

/// Every delivery waiting for `member`, as positions.
fn drain(member: &Member) -> Vec<Position> {
    std::iter::from_fn(|| member.take())
        .map(|m| position_of(&m))
        .collect()
}

fn keeping(messages: usize) -> Hub {
    Hub::new(HubConfig::default().history(HistoryConfig::default().max_messages(messages)))
}

// A member that comes back with its last position gets what it missed, in
// order, then the live messages; a plain member gets the plain message.
#[test]
fn a_resume_replays_what_was_missed_then_goes_live() {
    let hub = keeping(100);
    let plain = hub.join();
    hub.subscribe(&plain, "t").unwrap();
    let away = hub.join();
    let resumed = hub.subscribe_from(&away, "t", None).unwrap().unwrap();
    assert_eq!(resumed.replayed(), 0);
    let first = publish(&hub, "t");
    assert_eq!(first.offset, 1);
    assert_eq!(drain(&away), [first]);
    drop(away);
    let missed: Vec<Position> = (0..5).map(|_| publish(&hub, "t")).collect();
    let back = hub.join();
    let resumed = hub
        .subscribe_from(&back, "t", Some(first))
        .unwrap()
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(resumed.replayed(), 5);
    assert_eq!(resumed.first, missed[0]);
    let live = publish(&hub, "t");
    assert_eq!(resumed.next, live);
    let mut want = missed;
    want.push(live);
    assert_eq!(drain(&back), want);
    // The plain member got every message, plain.
    let plain_got: Vec<_> = std::iter::from_fn(|| plain.take()).collect();
    assert_eq!(plain_got.len(), 7);
    assert!(plain_got.iter().all(|m| m.payload() == "plain"));
    // Subscribed already: nothing replayed twice.
    assert_eq!(hub.subscribe_from(&back, "t", Some(first)), Ok(None));
    assert!(back.take().is_none());
}

// Positions cost plain subscribers nothing: with no history and no member
// asking for positions, the positioned message is never made.
#[test]
fn plain_subscribers_do_not_make_positioned_messages() {
    let hub = Hub::new(HubConfig::default());
    let plain = hub.join();
    hub.subscribe(&plain, "t").unwrap();
    let report = hub.publish_positioned("t", &PreparedMessage::text("plain"), |_| {
        panic!("made a positioned message no one wants")
    });
    assert_eq!(report.delivered, 1);
    assert_eq!(report.position.map(|p| p.offset), Some(1));
    assert_eq!(hub.stats().history_bytes, 0);
}

// Past the history's reach (count, bytes, age) or in another epoch, the
// answer says the resume is not exact, and where the replay starts.
#[test]
fn a_history_that_does_not_reach_back_says_so() {
    // By count: 3 kept of 10.
    let hub = keeping(3);
    let keep = hub.join(); // holds the topic
    hub.subscribe(&keep, "t").unwrap();
    let all: Vec<Position> = (0..10).map(|_| publish(&hub, "t")).collect();
    let back = hub.join();
    let resumed = hub
        .subscribe_from(&back, "t", Some(all[2]))
        .unwrap()
        .unwrap();
    assert!(!resumed.recovered);
    assert_eq!(resumed.first, all[7]);
    assert_eq!(drain(&back), all[7..]);
    let stats = hub.stats();
    assert_eq!(stats.history_messages, 3);
    assert_eq!(stats.history_bytes, 3 * (16 + 16));

    // By bytes: two 16-byte messages with their slots fit in 64.
    let hub = Hub::new(
        HubConfig::default().history(HistoryConfig::default().max_messages(100).max_bytes(64)),
    );
    let all: Vec<Position> = (0..5).map(|_| publish(&hub, "t")).collect();
    let back = hub.join();
    let resumed = hub
        .subscribe_from(&back, "t", Some(all[0]))
        .unwrap()
        .unwrap();
    assert!(!resumed.recovered);
    assert_eq!(drain(&back), all[3..]);

    // By age.
    let hub = Hub::new(
        HubConfig::default().history(
            HistoryConfig::default()
                .max_messages(100)
                .max_age(Duration::from_millis(50)),
        ),
    );
    let old = publish(&hub, "t");
    let older = publish(&hub, "t");
    std::thread::sleep(Duration::from_millis(120));
    let back = hub.join();
    let resumed = hub.subscribe_from(&back, "t", Some(old)).unwrap().unwrap();
    assert!(!resumed.recovered);
    assert_eq!(resumed.replayed(), 0);
    assert_eq!(resumed.first.offset, older.offset + 1);
    assert_eq!(hub.stats().history_messages, 0);

    // Another epoch: a position from an earlier hub (another process).
    let earlier = publish(&keeping(10), "t");
    let hub = keeping(10);
    let now = publish(&hub, "t");
    let back = hub.join();
    let resumed = hub
        .subscribe_from(&back, "t", Some(earlier))
        .unwrap()
        .unwrap();
    assert_ne!(earlier.epoch, now.epoch);
    assert!(!resumed.recovered);
    assert_eq!(drain(&back), [now]);
}

// With the topic limit reached, a topic that only keeps a history gives
// way to a new one, and its members find a new epoch on return.
#[test]
fn a_forgotten_topic_comes_back_in_a_new_epoch() {
    let hub = Hub::new(
        HubConfig::default()
            .max_topics(1)
            .history(HistoryConfig::default().max_messages(10)),
    );
    let a = publish(&hub, "a");
    publish(&hub, "b"); // "a" gives way
    assert_eq!(hub.stats().history_messages, 1);
    let back = hub.join();
    // "b" gives way in turn: "a" is made again, in a new epoch.
    let resumed = hub.subscribe_from(&back, "a", Some(a)).unwrap().unwrap();
    assert!(!resumed.recovered);
    assert_ne!(resumed.next.epoch, a.epoch);
    assert_eq!((resumed.next.offset, resumed.replayed()), (1, 0));
    assert_eq!(hub.stats().history_messages, 0);
    // A topic with a subscriber does not give way.
    assert_eq!(hub.publish("c", &PreparedMessage::text("c")).position, None);
    assert_eq!(publish(&hub, "a").epoch, resumed.next.epoch);
}

// Resumes at the seam while another thread publishes as fast as it can:
// every position reaches the reader exactly once, in order, across
// hundreds of disconnects and resumes (the history holds them all).
#[test]
fn resumes_under_a_publishing_storm_lose_nothing() {
    const MESSAGES: u64 = 50_000;
    let hub = Hub::new(
        HubConfig::default().history(
            HistoryConfig::default()
                .max_messages(MESSAGES as usize)
                .max_bytes(64 << 20),
        ),
    );
    // The topic is held from before the first publish, so its epoch stays
    // one and the reader resumes from its start (offset 0), never "live
    // from now".
    let holder = hub.join();
    hub.subscribe(&holder, "t").unwrap();
    let first = hub.join();
    let start = hub.subscribe_from(&first, "t", None).unwrap().unwrap().next;
    drop(first);
    let mut last = Position {
        epoch: start.epoch,
        offset: start.offset - 1,
    };
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for _ in 0..MESSAGES {
                publish(&hub, "t");
            }
        })
    };
    let mut got: Vec<Position> = Vec::new();
    let mut rounds = 0u64;
    while got.len() < MESSAGES as usize {
        let member = hub.join();
        let resumed = hub
            .subscribe_from(&member, "t", Some(last))
            .unwrap()
            .unwrap();
        assert!(resumed.recovered, "round {rounds}");
        // Read some, then go away with whatever is still queued unread.
        for _ in 0..(rounds % 7) * 40 {
            match member.take() {
                Some(m) => {
                    last = position_of(&m);
                    got.push(last);
                }
                None => std::thread::yield_now(),
            }
        }
        rounds += 1;
    }
    publisher.join().unwrap();
    let offsets: Vec<u64> = got.iter().map(|p| p.offset).collect();
    let want: Vec<u64> = (1..=MESSAGES).collect();
    assert_eq!(offsets, want);
    assert!(rounds > 100, "{rounds} rounds");
}

#[derive(Clone, Debug)]
enum Op {
    Publish(u8),
    Leave(usize),
    Resume(usize, u8),
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(Op::Publish),
        1 => (0usize..4).prop_map(Op::Leave),
        2 => (0usize..4, 0u8..3).prop_map(|(c, t)| Op::Resume(c, t)),
        2 => (0usize..4).prop_map(Op::Read),
    ]
}

/// A client following topics across connections: its connection (a
/// member, when connected), the last position it got per topic, and per
/// topic what it got and what it was told it lost.
#[derive(Default)]
struct Client {
    member: Option<Member>,
    last: BTreeMap<String, Position>,
    got: BTreeMap<String, Vec<Position>>,
    /// Per topic, each inexact resume: the position asked for, the first
    /// replayed, and how many publishes the topic had then.
    lost: BTreeMap<String, Vec<(Position, Position, usize)>>,
    /// Publishes to the topic before its first subscription.
    since: BTreeMap<String, usize>,
    /// Publishes to the topic before its last subscription that took and
    /// whose replay it then read to the end: those it must have got or
    /// been told it lost.
    covered: BTreeMap<String, usize>,
    /// The same for subscriptions of the current connection not yet read
    /// to the end.
    pending: BTreeMap<String, usize>,
}

/// The topic `position` was published to.
fn topic_of(published: &BTreeMap<String, Vec<Position>>, position: Position) -> String {
    published
        .iter()
        .find(|(_, positions)| positions.contains(&position))
        .map(|(topic, _)| topic.clone())
        .expect("a published position")
}

/// Subscribes `client` to `topic` from its last position there, noting
/// where it starts following and what the answer reports lost.
fn follow(
    hub: &Hub,
    client: &mut Client,
    published: &BTreeMap<String, Vec<Position>>,
    topic: String,
) {
    let Some(member) = &client.member else { return };
    let from = client.last.get(&topic).copied();
    let Ok(Some(resumed)) = hub.subscribe_from(member, &topic, from) else {
        return;
    };
    let before = published.get(&topic).map_or(0, Vec::len);
    client.since.entry(topic.clone()).or_insert(before);
    client.pending.insert(topic.clone(), before);
    // Live from `next`: a resume before any message arrived starts after
    // the one before it.
    client.last.entry(topic.clone()).or_insert(Position {
        epoch: resumed.next.epoch,
        offset: resumed.next.offset - 1,
    });
    if !resumed.recovered {
        let after = from.unwrap_or(resumed.first);
        client
            .lost
            .entry(topic)
            .or_default()
            .push((after, resumed.first, before));
    }
}

proptest! {
    // Any interleaving of publishes, disconnects, resumes and reads, with a
    // short history and a topic limit that makes topics give way: each
    // client gets each position at most once and in order, and what it got
    // plus what it was told it lost covers every position published to a
    // topic it follows since it first subscribed.
    #[test]
    fn every_position_is_delivered_once_or_reported_lost(
        ops in proptest::collection::vec(op(), 0..150),
    ) {
        let hub = Hub::new(
            HubConfig::default()
                .max_topics(2)
                .history(HistoryConfig::default().max_messages(4)),
        );
        let mut clients: Vec<Client> = (0..4).map(|_| Client::default()).collect();
        let mut published: BTreeMap<String, Vec<Position>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Publish(t) => {
                    let topic = format!("t{t}");
                    if let Some(position) = hub
                        .publish_positioned(&topic, &PreparedMessage::text("plain"), positioned)
                        .position
                    {
                        published.entry(topic).or_default().push(position);
                    }
                }
                Op::Leave(c) => {
                    clients[c].member = None;
                    clients[c].pending.clear();
                }
                Op::Resume(c, t) => {
                    // A client that comes back resumes every topic it
                    // follows, as a reconnecting client does; then `t`.
                    let client = &mut clients[c];
                    let mut topics: Vec<String> = Vec::new();
                    if client.member.is_none() {
                        client.member = Some(hub.join());
                        topics.extend(client.since.keys().cloned());
                    }
                    topics.push(format!("t{t}"));
                    for topic in topics {
                        follow(&hub, client, &published, topic);
                    }
                }
                Op::Read(c) => {
                    let client = &mut clients[c];
                    let Some(member) = &client.member else { continue };
                    while let Some(message) = member.take() {
                        let position = position_of(&message);
                        let topic = topic_of(&published, position);
                        if let Some(last) = client.last.get(&topic) {
                            prop_assert!(
                                last.epoch != position.epoch || last.offset < position.offset,
                                "{topic}: {position:?} after {last:?}"
                            );
                        }
                        client.last.insert(topic.clone(), position);
                        client.got.entry(topic).or_default().push(position);
                    }
                    client.covered.append(&mut client.pending);
                }
            }
        }
        // Read what is left. A topic a client is subscribed to now must be
        // covered to the end; one it is not, up to its last subscription.
        for client in &mut clients {
            let mut subscribed = Vec::new();
            if let Some(member) = client.member.take() {
                subscribed = member.topics();
                while let Some(message) = member.take() {
                    let position = position_of(&message);
                    let topic = topic_of(&published, position);
                    client.got.entry(topic).or_default().push(position);
                }
                client.covered.append(&mut client.pending);
            }
            for (topic, since) in &client.since {
                let got = client.got.get(topic).cloned().unwrap_or_default();
                let lost = client.lost.get(topic).cloned().unwrap_or_default();
                let all = published.get(topic).map_or(0, Vec::len);
                let until = if subscribed.contains(topic) {
                    all
                } else {
                    client.covered.get(topic).copied().unwrap_or(*since)
                };
                let positions = published.get(topic).into_iter().flatten().enumerate();
                for (index, position) in positions.take(until).skip(*since) {
                    let delivered = got.iter().filter(|p| *p == position).count();
                    prop_assert!(delivered <= 1, "{topic}: {position:?} twice");
                    if delivered == 1 {
                        continue;
                    }
                    // Lost: published before a resume that said so, in
                    // the gap it named or in an epoch it left behind.
                    let told = lost.iter().any(|(after, first, publishes)| {
                        index < *publishes
                            && if after.epoch == first.epoch {
                                position.epoch == first.epoch
                                    && position.offset > after.offset
                                    && position.offset < first.offset
                            } else {
                                position.epoch != first.epoch || position.offset < first.offset
                            }
                    });
                    prop_assert!(told, "{topic}: {position:?} neither delivered nor reported lost");
                }
            }
        }
    }
}

// A hub mirroring a log kept elsewhere takes the log's positions; a gap or
// a new epoch in what it is fed breaks its continuity, and a resume from
// before the break is reported unrecovered, never answered with the hole.
#[test]
fn a_mirror_takes_the_given_positions_and_reports_breaks() {
    let mirror = keeping(100);
    let live = mirror.join();
    mirror.subscribe_from(&live, "t", None).unwrap();
    let at = |offset| Position { epoch: 7, offset };
    let feed = |position: Position| {
        let report = mirror.publish_at("t", position, &PreparedMessage::text("p"), positioned);
        assert_eq!(report.position, Some(position));
    };
    for offset in 10..=12 {
        feed(at(offset));
    }
    assert_eq!(drain(&live), [at(10), at(11), at(12)]);
    let back = mirror.join();
    let resumed = mirror
        .subscribe_from(&back, "t", Some(at(10)))
        .unwrap()
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(drain(&back), [at(11), at(12)]);
    // A gap: 13 and 14 never came. The history restarts at 15.
    feed(at(15));
    assert_eq!(drain(&live), [at(15)]);
    let late = mirror.join();
    let resumed = mirror
        .subscribe_from(&late, "t", Some(at(12)))
        .unwrap()
        .unwrap();
    assert!(!resumed.recovered);
    assert_eq!(resumed.first, at(15));
    assert_eq!(drain(&late), [at(15)]);
    // Another epoch: the old one's positions no longer resume.
    let next = Position {
        epoch: 8,
        offset: 1,
    };
    feed(next);
    let old = mirror.join();
    let resumed = mirror
        .subscribe_from(&old, "t", Some(at(15)))
        .unwrap()
        .unwrap();
    assert!(!resumed.recovered);
    assert_eq!((resumed.first, resumed.next.offset), (next, 2));
    assert_eq!(mirror.stats().history_messages, 1);
}
