//! Ping and Pong, RFC 6455 §5.5.2 and §5.5.3.

mod support;

use bytes::{Buf, Bytes};
use rfc6455::frame::OpCode;
use rfc6455::{Config, Message, SendError};
use support::*;

// §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
// response" with "identical Application data" (§5.5.3).
#[test]
fn ping_is_answered_automatically() {
    let mut pair = Pair::new();
    pair.client
        .send(Message::Ping(Bytes::from_static(b"are you there")))
        .unwrap();
    let (got, _) = pair.deliver_to_server();
    assert_eq!(
        got,
        vec![Message::Ping(Bytes::from_static(b"are you there"))]
    );
    assert!(pair.server.wants_write());
    let (got, _) = pair.deliver_to_client();
    assert_eq!(
        got,
        vec![Message::Pong(Bytes::from_static(b"are you there"))]
    );
}

// The automatic Pong can be switched off; the application then answers itself.
#[test]
fn auto_pong_can_be_disabled() {
    let mut s = server(Config::default().auto_pong(false));
    s.receive(&client_frame(OpCode::Ping, true, b"x"));
    assert_eq!(
        pull(&mut s),
        (vec![Message::Ping(Bytes::from_static(b"x"))], None)
    );
    assert!(!s.wants_write());
    s.send(Message::Pong(Bytes::from_static(b"x"))).unwrap();
    assert_eq!(take_output(&mut s), [0x8a, 0x01, b'x']);
}

// Autobahn 2.10: every Ping of a burst gets its own Pong, in order.
#[test]
fn each_ping_of_a_burst_is_answered() {
    let mut s = server(Config::default());
    let mut wire = Vec::new();
    for i in 0u8..10 {
        wire.extend(client_frame(OpCode::Ping, true, &[i; 20]));
    }
    s.receive(&wire);
    assert_eq!(pull(&mut s).0.len(), 10);
    let pongs: Vec<_> = parse_frames(&take_output(&mut s))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        pongs,
        (0u8..10)
            .map(|i| Bytes::from(vec![i; 20]))
            .collect::<Vec<_>>()
    );
}

// §5.5.3: "If an endpoint receives a Ping frame and has not yet sent Pong
// frame(s) in response to previous Ping frame(s), the endpoint MAY elect to
// send a Pong frame for only the most recently processed Ping frame." A ping
// flood against a peer that never drains output cannot grow memory.
#[test]
fn ping_flood_keeps_only_the_newest_pong() {
    let mut s = server(Config::default());
    for i in 0u32..100_000 {
        s.receive(&client_frame(OpCode::Ping, true, &i.to_be_bytes()));
        let (got, error) = pull(&mut s);
        assert_eq!((got.len(), error), (1, None));
        // The driver looks at the output but the transport takes nothing.
        let queued = s.outgoing().remaining();
        assert!(queued < 4096 + 6, "backlog bounded, got {queued} bytes");
    }
    // Once the backlog drains, the newest Ping's Pong follows; all others were dropped.
    let first = parse_frames(&take_output(&mut s));
    let newest = parse_frames(&take_output(&mut s));
    assert_eq!(first[0].1, Bytes::copy_from_slice(&0u32.to_be_bytes()));
    assert!(first.len() <= 4096 / 6 + 1);
    assert_eq!(newest.len(), 1);
    assert_eq!(
        newest[0].1,
        Bytes::copy_from_slice(&99_999u32.to_be_bytes())
    );
    assert!(!s.wants_write());
}

// §5.5.3: "A Pong frame MAY be sent unsolicited ... A response to an
// unsolicited Pong frame is not expected." It is delivered and not answered.
#[test]
fn unsolicited_pong_is_delivered_and_ignored() {
    let mut c = client(Config::default());
    c.receive(&frame(OpCode::Pong, true, b"heartbeat", None));
    assert_eq!(
        pull(&mut c),
        (vec![Message::Pong(Bytes::from_static(b"heartbeat"))], None)
    );
    assert!(!c.wants_write());
}

// §5.5: control frames carry at most 125 bytes; the sender refuses more.
#[test]
fn control_payload_limit_on_send() {
    let mut c = client(Config::default());
    assert_eq!(
        c.send(Message::Ping(Bytes::from(vec![0; 126]))),
        Err(SendError::ControlTooLong)
    );
    assert_eq!(
        c.send(Message::Pong(Bytes::from(vec![0; 126]))),
        Err(SendError::ControlTooLong)
    );
    c.send(Message::Ping(Bytes::from(vec![0; 125]))).unwrap();
    assert_eq!(parse_frames(&take_output(&mut c))[0].1.len(), 125);
}

// §5.5.2 with §5.5.1: a Pong still pending when a Close is queued goes first.
#[test]
fn pending_pong_goes_out_before_close() {
    let mut s = server(Config::default());
    s.receive(&client_frame(OpCode::Ping, true, b"a"));
    pull(&mut s);
    s.close(rfc6455::CloseCode::NORMAL, "").unwrap();
    let opcodes: Vec<_> = parse_frames(&take_output(&mut s))
        .into_iter()
        .map(|(h, _)| h.opcode)
        .collect();
    assert_eq!(opcodes, [OpCode::Pong, OpCode::Close]);
}
