//! Property tests: round trips, split invariance, masking, UTF-8 split points
//! (RFC 6455 §5.2-§5.4, §5.3, §8.1).

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use rfc6455::frame::{OpCode, apply_mask};
use rfc6455::{Config, Message};
use support::*;

/// Payload lengths from each of the three length encodings (§5.2).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..=125),
        3 => proptest::collection::vec(any::<u8>(), 126..=2000),
        1 => (65_536usize..=70_000).prop_map(|n| (0..n).map(|i| (i * 31) as u8).collect()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => any::<String>().prop_map(Message::text),
        1 => (126usize..3000).prop_map(|n| Message::text("é".repeat(n / 2))),
        4 => payload().prop_map(Message::binary),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|p| Message::Ping(p.into())),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|p| Message::Pong(p.into())),
    ]
}

/// Splits `wire` at the given fractions.
fn split_points(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.sort_unstable();
    points.dedup();
    points
}

fn feed_at(conn: &mut rfc6455::Connection, wire: &[u8], points: &[usize]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut start = 0;
    for &end in points.iter().chain(std::iter::once(&wire.len())) {
        conn.receive(&wire[start..end]);
        start = end;
        let (mut got, error) = pull(conn);
        assert_eq!(error, None);
        messages.append(&mut got);
    }
    messages
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    // §5.2-§5.4: whatever either side sends, the other receives unchanged,
    // with or without automatic fragmentation.
    #[test]
    fn round_trip_both_directions(
        messages in proptest::collection::vec(message(), 1..8),
        frame_size in proptest::option::of(1usize..300),
    ) {
        let config = Config::default().max_send_frame_size(frame_size);
        let mut pair = Pair::with_configs(config.clone(), config);
        for m in &messages {
            pair.client.send(m.clone()).unwrap();
            pair.server.send(m.clone()).unwrap();
        }
        prop_assert_eq!(pair.deliver_to_server(), (messages.clone(), None));
        // The client's automatic Pongs to the server's Pings follow the messages.
        prop_assert_eq!(pair.deliver_to_client().0[..messages.len()].to_vec(), messages);
    }

    // Any split of the byte stream into chunks gives the same messages.
    #[test]
    fn any_split_gives_same_messages(
        messages in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        frame_size in proptest::option::of(1usize..200),
    ) {
        let mut sender = client(Config::default().max_send_frame_size(frame_size));
        for m in &messages {
            sender.send(m.clone()).unwrap();
        }
        let wire = take_output(&mut sender);
        let whole = feed_at(&mut server(Config::default()), &wire, &[]);
        prop_assert_eq!(&whole, &messages);
        let points = split_points(wire.len(), &cuts);
        prop_assert_eq!(feed_at(&mut server(Config::default()), &wire, &points), whole);
    }

    // §5.3: masking is an involution at any offset, and masking in pieces with
    // running offsets equals masking whole.
    #[test]
    fn mask_is_involution_and_composes(
        data in proptest::collection::vec(any::<u8>(), 0..1000),
        key in any::<[u8; 4]>(),
        offset in 0usize..16,
        cut in any::<usize>(),
    ) {
        let mut buf = data.clone();
        apply_mask(&mut buf, key, offset);
        apply_mask(&mut buf, key, offset);
        prop_assert_eq!(&buf, &data);
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let cut = cut % (data.len() + 1);
        let mut pieces = data;
        let (a, b) = pieces.split_at_mut(cut);
        apply_mask(a, key, 0);
        apply_mask(b, key, cut);
        prop_assert_eq!(pieces, whole);
    }

    // §8.1: text split into fragments at any byte (mid code point included)
    // arrives whole, and arbitrary bytes are accepted exactly when they are UTF-8.
    #[test]
    fn utf8_at_any_split_point(
        text in any::<String>(),
        noise in proptest::collection::vec(any::<u8>(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        use_noise in any::<bool>(),
    ) {
        let bytes: Vec<u8> = if use_noise { noise } else { text.into_bytes() };
        let points = split_points(bytes.len(), &cuts);
        let mut wire = Vec::new();
        let mut start = 0;
        let ends: Vec<usize> = points.iter().copied().chain(std::iter::once(bytes.len())).collect();
        for (i, &end) in ends.iter().enumerate() {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            wire.extend(frame(opcode, i + 1 == ends.len(), &bytes[start..end], None));
            start = end;
        }
        let mut c = client(Config::default());
        let (got, error) = feed_chunked(&mut c, &wire, 3);
        match std::str::from_utf8(&bytes) {
            Ok(s) => prop_assert_eq!((got, error), (vec![Message::text(s)], None)),
            Err(_) => prop_assert_eq!((got, error), (vec![], Some(rfc6455::ProtocolError::InvalidUtf8))),
        }
    }
}

#[test]
fn received_payload_is_split_from_input_without_copy() {
    // The message bytes point into the buffer the frame was read into.
    let mut c = client(Config::default());
    let buf = c.read_buf();
    buf.extend_from_slice(&frame(OpCode::Binary, true, &[5; 1000], None));
    let region = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Ok(Some(Message::Binary(data))) = c.next_message() else {
        panic!()
    };
    assert!(region.contains(&(data.as_ptr() as usize)));
    assert_eq!(data, Bytes::from(vec![5; 1000]));
}

/// Bytes that are mostly well-formed frames, with arbitrary damage.
fn hostile_wire() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(message(), 0..4),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(messages, damage, noise, masked)| {
            let mut sender = if masked {
                client(Config::default())
            } else {
                server(Config::default())
            };
            for m in messages {
                sender.send(m).unwrap();
            }
            let mut wire = take_output(&mut sender);
            for (at, byte) in damage {
                if !wire.is_empty() {
                    let i = at % wire.len();
                    wire[i] ^= byte;
                }
            }
            wire.extend(noise);
            wire
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    // Any input, split anywhere, gives the same messages and the same error as
    // the whole input at once, in both roles, without panicking.
    #[test]
    fn any_input_any_split_same_outcome(
        wire in hostile_wire(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        role_is_server in any::<bool>(),
    ) {
        let make = || if role_is_server { server(Config::default().max_frame_size(1 << 17).max_message_size(1 << 18)) } else { client(Config::default().max_frame_size(1 << 17).max_message_size(1 << 18)) };
        let run = |points: &[usize]| {
            let mut conn = make();
            let mut messages = Vec::new();
            let mut start = 0;
            for &end in points.iter().chain(std::iter::once(&wire.len())) {
                conn.receive(&wire[start..end]);
                start = end;
                let (mut got, error) = pull(&mut conn);
                messages.append(&mut got);
                if error.is_some() {
                    return (messages, error, take_output(&mut conn));
                }
            }
            (messages, None, take_output(&mut conn))
        };
        let whole = run(&[]);
        let split = run(&split_points(wire.len(), &cuts));
        prop_assert_eq!(whole.0, split.0);
        prop_assert_eq!(whole.1, split.1);
        // Whatever we queued (Pongs, echo, the failure's Close) parses back.
        for (header, _) in parse_frames(&split.2) {
            prop_assert!(header.opcode.is_control());
        }
    }
}
