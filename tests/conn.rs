//! The Connection API: masking keys, leftovers, read/write predicates.

mod support;

use std::collections::HashSet;
use std::io::IoSlice;

use bytes::{Buf, Bytes};
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError, Role};
use support::*;

// §5.3: "The masking key MUST be derived from a strong source of entropy, and
// the masking key for a given frame MUST NOT make it simple for a server or
// proxy to predict the masking key for a subsequent frame."
#[test]
fn fresh_mask_key_per_frame() {
    let mut c = Connection::new(Role::Client, Config::default()).unwrap();
    for _ in 0..64 {
        c.send(Message::binary(&b"x"[..])).unwrap();
    }
    let keys: HashSet<[u8; 4]> = parse_frames(&take_output(&mut c))
        .iter()
        .map(|(h, _)| h.mask.unwrap())
        .collect();
    assert!(
        keys.len() >= 63,
        "64 frames should carry 64 distinct keys, got {}",
        keys.len()
    );
    // Two connections seeded from the OS do not share a key sequence.
    let first_key = |c: &mut Connection| {
        c.send(Message::binary(Bytes::new())).unwrap();
        parse_frames(&take_output(c))[0].0.mask.unwrap()
    };
    let mut a = Connection::new(Role::Client, Config::default()).unwrap();
    let mut b = Connection::new(Role::Client, Config::default()).unwrap();
    let (ka, kb) = (
        (0..4).map(|_| first_key(&mut a)).collect::<Vec<_>>(),
        (0..4).map(|_| first_key(&mut b)).collect::<Vec<_>>(),
    );
    assert_ne!(ka, kb);
}

// §5.1: a server never masks.
#[test]
fn server_frames_are_unmasked() {
    let mut s = server(Config::default());
    s.send(Message::text("a")).unwrap();
    s.send(Message::Ping(Bytes::new())).unwrap();
    assert!(
        parse_frames(&take_output(&mut s))
            .iter()
            .all(|(h, _)| h.mask.is_none())
    );
}

// §4.1/§4.2: bytes read past the opening handshake belong to the connection.
#[test]
fn leftover_bytes_are_processed_first() {
    let mut wire = client_frame(OpCode::Text, true, b"early");
    wire.extend(&client_frame(OpCode::Text, true, b"later")[..3]);
    let mut s = Connection::with_leftover(Role::Server, Config::default(), &wire).unwrap();
    assert_eq!(s.next_message(), Ok(Some(Message::text("early"))));
    assert_eq!(s.next_message(), Ok(None));
    s.receive(&client_frame(OpCode::Text, true, b"later")[3..]);
    assert_eq!(s.next_message(), Ok(Some(Message::text("later"))));
}

// Bytes read straight into read_buf() are the same as bytes passed to receive().
#[test]
fn read_buf_is_the_input_buffer() {
    let mut s = server(Config::default());
    let wire = client_frame(OpCode::Binary, true, &[3; 100]);
    let buf = s.read_buf();
    assert!(
        buf.capacity() - buf.len() >= 2 * 1024,
        "spare room to read into"
    );
    buf.extend_from_slice(&wire);
    assert_eq!(s.next_message(), Ok(Some(Message::binary(vec![3; 100]))));
}

// The Outgoing queue reads the same through chunk() and chunks_vectored().
#[test]
fn vectored_output_matches_chunked_output() {
    let make = || {
        let mut s = server(Config::default());
        s.send(Message::text("small")).unwrap();
        s.send(Message::binary(vec![9u8; 10_000])).unwrap();
        s.send(Message::text("after")).unwrap();
        s
    };
    let expected = take_output(&mut make());
    let mut s = make();
    let out = s.outgoing();
    let mut slices = [IoSlice::new(&[]); 16];
    let n = out.chunks_vectored(&mut slices);
    let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(joined, expected);
    assert_eq!(out.remaining(), expected.len());
}

// The predicates an adapter loops on, over a connection's life.
#[test]
fn predicates_over_a_lifetime() {
    let mut pair = Pair::new();
    assert_eq!(pair.server.role(), Role::Server);
    assert!(pair.server.wants_read() && !pair.server.wants_write());
    pair.server.send(Message::text("hi")).unwrap();
    assert!(pair.server.wants_write());
    pair.deliver_to_client();
    assert!(!pair.server.wants_write());
    pair.server.close(CloseCode::NORMAL, "").unwrap();
    pair.deliver_to_client();
    pair.deliver_to_server();
    assert!(pair.server.should_close_transport());
    assert!(
        pair.server.wants_read() && !pair.server.is_finished(),
        "the server shuts its side and lingers until the client's end"
    );
    assert!(
        pair.client.wants_read() && !pair.client.should_close_transport(),
        "the client still waits for the server's EOF"
    );
    pair.client.receive_eof();
    assert_eq!(pair.client.next_message(), Ok(None));
    assert!(pair.client.should_close_transport() && pair.client.is_finished());
    assert!(!pair.client.wants_read());
    pair.server.receive_eof();
    assert_eq!(pair.server.next_message(), Ok(None));
    assert!(pair.server.is_finished() && !pair.server.wants_read());
}

// A peer that never reads: once the close timeout passes, its output is
// dropped and the transport may go, whatever it does.
#[test]
fn the_close_timeout_bounds_a_peer_that_reads_nothing() {
    let start = std::time::Instant::now();
    let config = Config::default()
        .close_timeout(Some(std::time::Duration::from_secs(5)))
        .shrink_after_idle(None);
    let mut s = server(config);
    s.handle_timeout(start);
    s.send(Message::binary(vec![1u8; 100_000])).unwrap();
    s.close(CloseCode::POLICY_VIOLATION, "slow").unwrap();
    s.handle_timeout(start);
    assert!(s.wants_write() && !s.should_close_transport() && !s.is_finished());
    let deadline = s.poll_timeout().expect("the close wait is armed");
    assert_eq!(deadline, start + std::time::Duration::from_secs(5));
    s.handle_timeout(deadline);
    assert!(!s.wants_write(), "unsent output is dropped");
    assert!(s.should_close_transport() && s.is_finished());
    assert_eq!(s.close_frame().unwrap().code, CloseCode::ABNORMAL);
}

// Output that makes no progress for the write timeout fails the connection.
#[test]
fn a_stalled_write_times_out_within_two_timeouts() {
    let start = std::time::Instant::now();
    let timeout = std::time::Duration::from_secs(60);
    let mut s = server(Config::default().shrink_after_idle(None));
    s.handle_timeout(start);
    s.send(Message::binary(vec![1u8; 100_000])).unwrap();
    // Some bytes go out, then none.
    s.outgoing().advance(1000);
    let mut now = start;
    let mut wakes = 0;
    while !s.is_finished() {
        let deadline = s.poll_timeout().expect("a deadline while output waits");
        assert!(deadline > now || wakes == 0, "no busy loop");
        now = deadline.max(now);
        s.handle_timeout(now);
        wakes += 1;
        assert!(wakes < 5, "woken {wakes} times");
    }
    assert!(now - start <= 2 * timeout, "took {:?}", now - start);
    assert!(now - start >= timeout);
    assert_eq!(s.next_message(), Err(ProtocolError::WriteTimeout));
    assert!(!s.wants_write());
}
