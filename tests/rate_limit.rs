//! `Config::rate_limits`: token buckets over what the peer sends, pausing
//! input or closing with 1008, on injected time.

mod support;

use std::time::{Duration, Instant};

use rfc6455::frame::OpCode;
use rfc6455::{
    CloseCode, Config, Connection, Message, OverLimit, ProtocolError, RateLimit, RateLimits,
};
use support::*;

/// `count` one-byte binary messages as a client sends them (7 bytes each).
fn flood(count: usize) -> Vec<u8> {
    let one = client_frame(OpCode::Binary, true, b"x");
    one.repeat(count)
}

/// What an adapter does, on a virtual clock: pull every message, then when
/// input is paused jump to `poll_timeout`, else read up to 64 KiB if the
/// connection wants input. Returns (message count, arrival times) and checks
/// at every step that input taken never runs far ahead of what the limit
/// lets through.
fn drive(server: &mut Connection, wire: &[u8], t0: Instant) -> (usize, Duration) {
    let mut now = t0;
    server.handle_timeout(now);
    let (mut offset, mut received) = (0, 0);
    let mut pauses = 0;
    while received < wire.len() / 7 {
        while let Some(message) = server.next_message().unwrap() {
            assert_eq!(message, Message::binary(&b"x"[..]));
            received += 1;
        }
        // 1 000 a second after a burst of 100, never more.
        let elapsed = now - t0;
        let allowed = 100 + (elapsed.as_secs_f64() * 1000.0).ceil() as usize + 1;
        assert!(received <= allowed, "{received} by {elapsed:?}");
        // Input stops at what one read holds (and a frame cut by it)
        // beyond what was let through.
        assert!(
            offset <= received * 7 + 64 * 1024 + 7,
            "read ahead to {offset}"
        );
        if server.is_input_paused() {
            assert!(!server.wants_read());
            pauses += 1;
            now = server
                .poll_timeout()
                .expect("a paused connection says when");
            server.handle_timeout(now);
        } else if server.wants_read() && offset < wire.len() {
            let end = (offset + 64 * 1024).min(wire.len());
            server.receive(&wire[offset..end]);
            offset = end;
            server.handle_timeout(now);
        }
    }
    assert!(pauses > 0);
    assert_eq!(server.stats().rate_limited, pauses);
    (received, now - t0)
}

fn messages(action: OverLimit) -> Config {
    Config::default().rate_limits(
        RateLimits::default()
            .messages(Some(RateLimit::new(1_000, 100)))
            .action(action),
    )
}

// A client floods 100 000 one-byte messages at a server allowed 1 000 a
// second with a burst of 100: paused, it takes them all at that rate
// (99.9 s of virtual time) and never reads far ahead.
#[test]
fn a_message_flood_is_paused_to_the_rate() {
    let wire = flood(100_000);
    let mut server = server(messages(OverLimit::Pause));
    let (received, took) = drive(&mut server, &wire, Instant::now());
    assert_eq!(received, 100_000);
    assert!(took >= Duration::from_millis(99_900), "{took:?}");
    assert!(took <= Duration::from_millis(101_000), "{took:?}");
    // Paused input is woken about 100 times a second, not per message.
    assert!(server.stats().rate_limited <= 11_000);
}

// The same flood at a server that closes: 100 messages (the burst), then
// 1008 with a reason, and nothing more is delivered.
#[test]
fn a_message_flood_is_closed_within_the_burst() {
    let t0 = Instant::now();
    let mut server = server(messages(OverLimit::Close));
    server.handle_timeout(t0);
    server.receive(&flood(100_000)[..64 * 1024]);
    let (got, error) = pull(&mut server);
    assert_eq!(got.len(), 100);
    assert_eq!(error, Some(ProtocolError::RateLimited));
    let close = server.stats().close_sent.unwrap();
    assert_eq!(close.code, CloseCode::POLICY_VIOLATION);
    assert_eq!(&*close.reason, "rate limit exceeded");
    let wire = take_output(&mut server);
    let frames = parse_frames(&wire);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.opcode, OpCode::Close);
    assert_eq!(&frames[0].1[..2], &1008u16.to_be_bytes());
    // What follows is read only to be discarded (the lingering close),
    // until the client's end.
    assert!(server.should_close_transport() && server.wants_read());
    server.receive(&flood(1000));
    assert_eq!(pull(&mut server).0.len(), 0);
    server.receive_eof();
    assert!(server.is_finished() && !server.wants_read());

    // With time the bucket refills: 50 ms later another 50 pass.
    let mut server = server_with(messages(OverLimit::Close));
    server.handle_timeout(t0);
    server.receive(&flood(100));
    assert_eq!(pull(&mut server).0.len(), 100);
    server.handle_timeout(t0 + Duration::from_millis(50));
    server.receive(&flood(51));
    let (got, error) = pull(&mut server);
    assert_eq!((got.len(), error), (50, Some(ProtocolError::RateLimited)));
}

fn server_with(config: Config) -> Connection {
    server(config)
}

// Wire bytes: a frame larger than the burst still gets through when
// pausing (into debt), and the next waits until the debt is paid.
#[test]
fn wire_bytes_pause_and_let_a_large_frame_through() {
    let t0 = Instant::now();
    let config = Config::default()
        .rate_limits(RateLimits::default().wire_bytes(Some(RateLimit::new(10_000, 1_000))));
    let mut server = server(config);
    server.handle_timeout(t0);
    let big = client_frame(OpCode::Binary, true, &[1u8; 5_000]);
    server.receive(&big);
    server.receive(&big);
    let (got, _) = pull(&mut server);
    assert_eq!(got.len(), 1, "the first goes into debt, the second waits");
    assert!(server.is_input_paused() && !server.wants_read());
    // 5 008 bytes of debt beyond the 1 000 burst: about 0.4 s at 10 000/s.
    let resume = server.poll_timeout().unwrap();
    let waited = resume - t0;
    assert!(
        waited >= Duration::from_millis(400) && waited <= Duration::from_millis(420),
        "{waited:?}"
    );
    server.handle_timeout(resume);
    assert_eq!(pull(&mut server).0.len(), 1);
}

// Pausing never loses what was buffered when the transport ends: the held
// frames are delivered after the pause, then the abnormal closure.
#[test]
fn frames_held_by_a_pause_are_delivered_before_eof() {
    let t0 = Instant::now();
    let mut server = server(messages(OverLimit::Pause));
    server.handle_timeout(t0);
    server.receive(&flood(150));
    server.receive_eof();
    assert_eq!(
        pull(&mut server),
        (vec![Message::binary(&b"x"[..]); 100], None)
    );
    let resume = server.poll_timeout().unwrap();
    server.handle_timeout(resume + Duration::from_millis(100));
    let (got, error) = pull(&mut server);
    assert_eq!(got.len(), 50);
    assert_eq!(error, Some(ProtocolError::AbnormalClosure));
}

#[test]
fn zero_limits_are_refused() {
    let config =
        Config::default().rate_limits(RateLimits::default().messages(Some(RateLimit::new(0, 10))));
    assert!(Connection::new(rfc6455::Role::Server, config).is_err());
}

// The peer's end arrives while a rate limit holds its last messages back:
// the connection is not finished (nor its write side to be shut) until
// they are delivered, and may still answer meanwhile; then the missing
// Close fails it (1006) and it is over.
#[test]
fn messages_held_back_are_delivered_after_the_peer_ends() {
    let limits = RateLimits::default()
        .messages(Some(RateLimit::new(1, 1)))
        .action(OverLimit::Pause);
    let mut server = server_with(Config::default().rate_limits(limits));
    let t0 = Instant::now();
    server.handle_timeout(t0);
    server.read_buf().extend_from_slice(&flood(3));
    server.receive_eof();
    let mut got = 0;
    let mut now = t0;
    let failure = loop {
        match server.next_message() {
            Ok(Some(_)) => got += 1,
            Ok(None) => {
                assert!(!server.is_finished() && !server.should_close_transport());
                server.send(Message::text("still here")).unwrap();
                take_output(&mut server);
                now += Duration::from_secs(1);
                server.handle_timeout(now);
            }
            Err(error) => break error,
        }
    };
    assert_eq!(got, 3, "every message that arrived is delivered");
    assert_eq!(failure, ProtocolError::AbnormalClosure);
    take_output(&mut server);
    assert!(server.should_close_transport() && server.is_finished());
}
