//! `Connection::stats` and the Ping round-trip time.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use rfc6455::connection::{DataKind, Traffic};
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError};
use support::*;

/// What one end sends, as operations on a connection.
#[derive(Clone, Debug)]
enum Op {
    Text(usize),
    Binary(usize),
    /// A message streamed in fragments of these sizes.
    Fragments(bool, Vec<usize>),
    Ping(usize),
    Pong(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3000usize).prop_map(Op::Text),
        (0..70_000usize).prop_map(Op::Binary),
        (any::<bool>(), prop::collection::vec(0..500usize, 1..4))
            .prop_map(|(text, sizes)| Op::Fragments(text, sizes)),
        (0..126usize).prop_map(Op::Ping),
        (0..126usize).prop_map(Op::Pong),
    ]
}

fn apply(conn: &mut Connection, op: &Op) {
    match op {
        Op::Text(n) => conn.send(Message::text("é".repeat(n / 2))).unwrap(),
        Op::Binary(n) => conn.send(Message::Binary(vec![7u8; *n].into())).unwrap(),
        Op::Fragments(text, sizes) => {
            let kind = if *text {
                DataKind::Text
            } else {
                DataKind::Binary
            };
            for (i, n) in sizes.iter().enumerate() {
                let fin = i + 1 == sizes.len();
                conn.send_fragment(kind, Bytes::from(vec![b'a'; *n]), fin)
                    .unwrap();
            }
        }
        Op::Ping(n) => conn.send(Message::Ping(vec![1u8; *n].into())).unwrap(),
        Op::Pong(n) => conn.send(Message::Pong(vec![2u8; *n].into())).unwrap(),
    }
}

/// The received side's traffic, with what only the sender can know
/// (nothing here) and what only the receiver counts left as they are.
fn assert_same_traffic(sent: &Traffic, received: &Traffic) {
    assert_eq!(sent, received, "sent and received traffic differ");
}

#[cfg(feature = "deflate")]
fn deflate_pair(max_frame: Option<usize>) -> Pair {
    use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
    let config = Config::default()
        .max_send_frame_size(max_frame)
        .deflate(Some(DeflateConfig::default().threshold(64)));
    let mut pair = Pair::with_configs(config.clone(), config);
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    pair.client.set_deflate(params);
    pair.server.set_deflate(params);
    pair
}

fn plain_pair(max_frame: Option<usize>) -> Pair {
    let config = Config::default().max_send_frame_size(max_frame);
    Pair::with_configs(config.clone(), config)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Whatever one end sends, in whatever pieces it arrives, the receiver
    // counts the same messages, bytes, frames, Pings, Pongs and wire bytes
    // as the sender (both roles; compressed too, with the feature).
    #[test]
    fn both_ends_count_the_same(
        ops in prop::collection::vec(op(), 1..12),
        chunk in 1..9000usize,
        max_frame in prop::option::of(100..5000usize),
        compressed in any::<bool>(),
        from_client in any::<bool>(),
    ) {
        #[cfg(feature = "deflate")]
        let mut pair = if compressed { deflate_pair(max_frame) } else { plain_pair(max_frame) };
        #[cfg(not(feature = "deflate"))]
        let mut pair = { let _ = compressed; plain_pair(max_frame) };
        pair.chunk = chunk;
        for op in &ops {
            if from_client {
                apply(&mut pair.client, op);
            } else {
                apply(&mut pair.server, op);
            }
        }
        let (_, error) = if from_client {
            pair.deliver_to_server()
        } else {
            pair.deliver_to_client()
        };
        prop_assert_eq!(error, None);
        let (sender, receiver) = if from_client {
            (pair.client.stats(), pair.server.stats())
        } else {
            (pair.server.stats(), pair.client.stats())
        };
        assert_same_traffic(&sender.sent, &receiver.received);
        prop_assert_eq!(sender.queued_output, 0);
        // The receiver answered each Ping with a Pong.
        let pings = ops.iter().filter(|op| matches!(op, Op::Ping(_))).count() as u64;
        prop_assert_eq!(receiver.sent.pongs, pings);
        prop_assert_eq!(sender.sent.pings, pings);
    }
}

// Counts by hand for a small exchange, so the property above does not pass
// merely because both sides are wrong the same way.
#[test]
fn counts_what_was_sent() {
    let mut pair = plain_pair(Some(1000));
    pair.client.send(Message::text("hello")).unwrap();
    pair.client
        .send(Message::Binary(vec![0u8; 2500].into()))
        .unwrap();
    pair.client
        .send(Message::Ping(Bytes::from_static(b"p")))
        .unwrap();
    let wire = take_output(&mut pair.client);
    let stats = pair.client.stats();
    assert_eq!(stats.sent.text_messages, 1);
    assert_eq!(stats.sent.text_bytes, 5);
    assert_eq!(stats.sent.binary_messages, 1);
    assert_eq!(stats.sent.binary_bytes, 2500);
    // "hello", three pieces of the binary, the Ping.
    assert_eq!(stats.sent.frames, 5);
    assert_eq!(stats.sent.pings, 1);
    // Masked client frames: 6-byte headers, 8 for the 1000-byte pieces.
    assert_eq!(stats.sent.wire_bytes, wire.len() as u64);
    assert_eq!(wire.len(), (6 + 5) + (8 + 1000) * 2 + (8 + 500) + (6 + 1));
    assert_eq!(stats.received, Traffic::default());
    pair.server.receive(&wire);
    let (got, _) = pull(&mut pair.server);
    assert_eq!(got.len(), 3);
    let server = pair.server.stats();
    assert_eq!(server.received.frames, 5);
    assert_eq!(server.received.wire_bytes, wire.len() as u64);
    assert_eq!(server.sent.pongs, 1);
    // The Pong is queued, not written: 3 bytes waiting.
    assert_eq!(server.queued_output, 3);
    assert_eq!(server.sent.wire_bytes, 0);
}

#[cfg(feature = "deflate")]
#[test]
fn counts_compression_both_ways() {
    let mut pair = deflate_pair(None);
    let text = "a".repeat(10_000);
    pair.client.send(Message::text(text)).unwrap();
    pair.client.send(Message::text("short")).unwrap(); // under the threshold
    let (got, _) = pair.deliver_to_server();
    assert_eq!(got.len(), 2);
    let (client, server) = (pair.client.stats(), pair.server.stats());
    assert_eq!(client.sent.compressed_messages, 1);
    assert_eq!(client.sent.uncompressed_bytes, 10_000);
    assert!(client.sent.compressed_bytes < 100, "{client:?}");
    assert_eq!(server.received.compressed_messages, 1);
    assert_eq!(
        server.received.compressed_bytes,
        client.sent.compressed_bytes
    );
    assert_eq!(server.received.uncompressed_bytes, 10_000);
    assert_eq!(server.received.text_bytes, 10_005);
}

#[test]
fn closes_and_errors_are_recorded() {
    let mut pair = Pair::new();
    pair.client.close(CloseCode::NORMAL, "bye").unwrap();
    pair.deliver_to_server();
    pair.deliver_to_client();
    let (client, at_server) = (pair.client.stats(), pair.server.stats());
    assert_eq!(client.close_sent.as_ref().unwrap().code, CloseCode::NORMAL);
    assert_eq!(&*client.close_sent.unwrap().reason, "bye");
    assert_eq!(at_server.close_received.unwrap().code, CloseCode::NORMAL);
    // The server echoed the code.
    assert_eq!(at_server.close_sent.unwrap().code, CloseCode::NORMAL);
    assert_eq!(client.close_received.unwrap().code, CloseCode::NORMAL);
    assert_eq!(client.error, None);

    // An unmasked frame at a server: the error, and the Close reporting it.
    let mut s = server(Config::default());
    s.receive(&frame(OpCode::Text, true, b"x", None));
    let _ = pull(&mut s);
    let stats = s.stats();
    assert_eq!(stats.error, Some(ProtocolError::UnmaskedFrame));
    assert_eq!(stats.close_sent.unwrap().code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(stats.close_received, None);
}

#[test]
fn rtt_is_the_injected_delay() {
    let t0 = Instant::now();
    let mut pair = Pair::new();
    pair.client.handle_timeout(t0);
    assert_eq!(pair.client.stats().connected_since, Some(t0));
    pair.client.ping(t0).unwrap();
    pair.deliver_to_server();
    // The adapters tell the connection the time after each read; by hand:
    let wire = take_output(&mut pair.server);
    pair.client.receive(&wire);
    pair.client.handle_timeout(t0 + Duration::from_millis(50));
    let (got, _) = pull(&mut pair.client);
    assert!(matches!(&got[..], [Message::Pong(p)] if p.len() == 8));
    let stats = pair.client.stats();
    assert_eq!(stats.rtt, Some(Duration::from_millis(50)));
    assert_eq!(stats.smoothed_rtt, Some(Duration::from_millis(50)));

    // A second sample of 130 ms: smoothed 7/8 · 50 + 1/8 · 130 = 60 ms.
    let t1 = t0 + Duration::from_secs(1);
    pair.client.ping(t1).unwrap();
    pair.deliver_to_server();
    let wire = take_output(&mut pair.server);
    pair.client.receive(&wire);
    pair.client.handle_timeout(t1 + Duration::from_millis(130));
    pull(&mut pair.client);
    let stats = pair.client.stats();
    assert_eq!(stats.rtt, Some(Duration::from_millis(130)));
    assert_eq!(stats.smoothed_rtt, Some(Duration::from_millis(60)));
}

#[test]
fn keepalive_pings_are_timed_and_stray_pongs_ignored() {
    let t0 = Instant::now();
    let config = Config::default().keepalive_interval(Some(Duration::from_secs(10)));
    let mut pair = Pair::with_configs(Config::default(), config);
    pair.server.handle_timeout(t0);
    // A Pong nobody asked for, and one for a Ping the server did not send.
    pair.client
        .send(Message::Pong(Bytes::from_static(b"stray")))
        .unwrap();
    pair.client
        .send(Message::Pong(Bytes::copy_from_slice(&1u64.to_be_bytes())))
        .unwrap();
    pair.deliver_to_server();
    pair.server.handle_timeout(t0); // input restarts the keepalive wait
    assert_eq!(pair.server.stats().rtt, None);
    assert_eq!(pair.server.stats().received.pongs, 2);

    let t1 = t0 + Duration::from_secs(10);
    pair.server.handle_timeout(t1);
    assert_eq!(pair.server.stats().sent.pings, 1);
    pair.deliver_to_client(); // the client answers
    let wire = take_output(&mut pair.client);
    pair.server.receive(&wire);
    pair.server.handle_timeout(t1 + Duration::from_millis(7));
    pull(&mut pair.server);
    assert_eq!(pair.server.stats().rtt, Some(Duration::from_millis(7)));

    // The same Pong again is not a second sample.
    pair.client
        .send(Message::Pong(Bytes::copy_from_slice(&1u64.to_be_bytes())))
        .unwrap();
    let wire = take_output(&mut pair.client);
    pair.server.receive(&wire);
    pair.server.handle_timeout(t1 + Duration::from_secs(1));
    pull(&mut pair.server);
    assert_eq!(pair.server.stats().rtt, Some(Duration::from_millis(7)));
}
