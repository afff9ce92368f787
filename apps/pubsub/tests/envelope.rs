//! The `pubsub` server's broker envelope: any bytes from the broker are an
//! envelope or a typed error (never a panic), envelopes survive the trip,
//! and the receiving side delivers each publish at most once, in order,
//! counting what went missing.

use proptest::prelude::*;
use pubsub::envelope::{Arrival, Envelope, EnvelopeError, MAX_ORIGINS, Origin, Sequencer, Tracker};

const NODE: Origin = Origin { node: 7, epoch: 1 };

fn envelope(origin: Origin, seq: u64, topic: &str) -> Vec<u8> {
    Envelope {
        origin,
        seq,
        topic,
        payload: b"hello",
    }
    .encode()
}

#[test]
fn the_header_is_documented_text() {
    let bytes = Envelope {
        origin: Origin {
            node: 0xab,
            epoch: 0x1234,
        },
        seq: 42,
        topic: "prices.eur",
        payload: b"1.08",
    }
    .encode();
    assert_eq!(
        bytes,
        b"rfc6455-pubsub/1 00000000000000ab 0000000000001234 42 prices.eur\n1.08"
    );
}

#[test]
fn malformed_envelopes_are_typed_errors() {
    let cases: [(&[u8], EnvelopeError); 9] = [
        (b"", EnvelopeError::NoHeader),
        (b"no newline at all", EnvelopeError::NoHeader),
        (b"rfc6455-pubsub/1 0 0 1 t\n", EnvelopeError::Number),
        (
            b"rfc6455-pubsub/2 0000000000000000 0000000000000000 1 t\n",
            EnvelopeError::Version,
        ),
        (
            b"rfc6455-pubsub/1 0000000000000000 0000000000000000 0 t\n",
            EnvelopeError::Number,
        ),
        (
            b"rfc6455-pubsub/1 0000000000000000 0000000000000000 01 t\n",
            EnvelopeError::Number,
        ),
        (
            b"rfc6455-pubsub/1 000000000000000G 0000000000000000 1 t\n",
            EnvelopeError::Number,
        ),
        (
            b"rfc6455-pubsub/1 0000000000000000 0000000000000000 1 a b\n",
            EnvelopeError::Malformed,
        ),
        (
            b"rfc6455-pubsub/1 0000000000000000 0000000000000000 1 t\r\n",
            EnvelopeError::Topic,
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            Envelope::decode(bytes),
            Err(error),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let long = format!(
        "rfc6455-pubsub/1 {} {} 1 {}\n",
        "0".repeat(16),
        "0".repeat(16),
        "t".repeat(1100)
    );
    assert_eq!(
        Envelope::decode(long.as_bytes()),
        Err(EnvelopeError::NoHeader)
    );
}

#[test]
fn publishes_are_numbered_per_topic_from_one() {
    let mut sequencer = Sequencer::default();
    assert_eq!(sequencer.next("a"), 1);
    assert_eq!(sequencer.next("a"), 2);
    assert_eq!(sequencer.next("b"), 1);
    assert_eq!(sequencer.next("a"), 3);
}

#[test]
fn duplicates_are_dropped_and_gaps_counted() {
    let mut tracker = Tracker::default();
    let arrive = |tracker: &mut Tracker, seq| {
        tracker.arrive(&Envelope::decode(&envelope(NODE, seq, "t")).unwrap())
    };
    assert_eq!(
        arrive(&mut tracker, 5),
        Arrival::InOrder,
        "first seen part-way"
    );
    assert_eq!(arrive(&mut tracker, 6), Arrival::InOrder);
    assert_eq!(arrive(&mut tracker, 6), Arrival::Duplicate);
    assert_eq!(arrive(&mut tracker, 9), Arrival::AfterGap { missed: 2 });
    assert_eq!(arrive(&mut tracker, 8), Arrival::Duplicate);
    // The node restarted: a new epoch numbers from 1 again.
    let restarted = Origin { epoch: 2, ..NODE };
    let env = envelope(restarted, 1, "t");
    assert_eq!(
        tracker.arrive(&Envelope::decode(&env).unwrap()),
        Arrival::InOrder
    );
}

#[test]
fn a_topic_left_and_joined_again_starts_afresh() {
    let mut tracker = Tracker::default();
    let first = envelope(NODE, 1, "t");
    assert_eq!(
        tracker.arrive(&Envelope::decode(&first).unwrap()),
        Arrival::InOrder
    );
    // What was published while this node held no subscriber was not lost.
    tracker.forget_topic("t");
    let later = envelope(NODE, 40, "t");
    assert_eq!(
        tracker.arrive(&Envelope::decode(&later).unwrap()),
        Arrival::InOrder
    );
}

#[test]
fn invented_origins_do_not_grow_the_tracker_without_bound() {
    let mut tracker = Tracker::default();
    let arrive = |tracker: &mut Tracker, node: u64, seq| {
        let origin = Origin { node, epoch: 1 };
        tracker.arrive(&Envelope::decode(&envelope(origin, seq, "t")).unwrap())
    };
    arrive(&mut tracker, 0, 1);
    for node in 1..10 * MAX_ORIGINS as u64 {
        arrive(&mut tracker, node, 1);
        // Node 0 keeps publishing: the most recently heard are kept.
        if node % 16 == 0 {
            assert_eq!(arrive(&mut tracker, 0, node / 16 + 1), Arrival::InOrder);
        }
    }
    assert_eq!(tracker.records(), MAX_ORIGINS);
    assert_eq!(
        arrive(&mut tracker, 0, 10 * MAX_ORIGINS as u64 / 16),
        Arrival::Duplicate,
        "a node still heard from keeps its numbers"
    );
    // A forgotten node starts afresh, as if first seen part-way.
    assert_eq!(arrive(&mut tracker, 1, 1), Arrival::InOrder);
}

fn topic() -> impl Strategy<Value = String> {
    "[^ \r\n]{1,40}"
}

proptest! {
    #[test]
    fn envelopes_survive_the_trip(
        node: u64, epoch: u64, seq in 1u64.., topic in topic(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let sent = Envelope { origin: Origin { node, epoch }, seq, topic: &topic, payload: &payload };
        let bytes = sent.encode();
        prop_assert_eq!(Envelope::decode(&bytes), Ok(sent));
    }

    // Whatever the broker hands over: an error, or an envelope that encodes
    // back to exactly those bytes (one spelling per envelope).
    #[test]
    fn any_bytes_decode_to_an_error_or_their_own_envelope(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (any::<u64>(), any::<u64>(), 1u64.., topic(), proptest::collection::vec(any::<u8>(), 0..50), 0usize..120, any::<u8>())
                .prop_map(|(node, epoch, seq, topic, payload, at, byte)| {
                    let mut bytes = envelope(Origin { node, epoch }, seq, &topic);
                    bytes.extend(payload);
                    if let Some(b) = bytes.get_mut(at) { *b = byte; }
                    bytes
                }),
        ],
    ) {
        if let Ok(decoded) = Envelope::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }

    // Any order of arrivals, repeats included: each number is delivered at
    // most once, delivered numbers rise, and delivered plus missed covers
    // every number from the first delivered to the last.
    #[test]
    fn delivery_is_at_most_once_in_order_with_gaps_counted(
        seqs in proptest::collection::vec(1u64..60, 1..120),
    ) {
        let mut tracker = Tracker::default();
        let mut delivered = Vec::new();
        let mut missed = 0;
        for seq in seqs {
            match tracker.arrive(&Envelope::decode(&envelope(NODE, seq, "t")).unwrap()) {
                Arrival::InOrder => delivered.push(seq),
                Arrival::AfterGap { missed: m } => { delivered.push(seq); missed += m; }
                Arrival::Duplicate => {}
            }
        }
        prop_assert!(delivered.windows(2).all(|w| w[0] < w[1]));
        let span = delivered.last().unwrap() - delivered.first().unwrap() + 1;
        prop_assert_eq!(delivered.len() as u64 + missed, span);
    }
}
