//! Time as an input: keepalive, idle and close-handshake timeouts.

mod support;

use std::time::{Duration, Instant};

use bytes::Buf;

use rfc6455::connection::Side;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Message, ProtocolError, State};
use support::*;

const SEC: Duration = Duration::from_secs(1);

/// No shrink check, so the deadlines asserted are only the timers under test.
fn quiet() -> Config {
    Config::default().shrink_after_idle(None)
}

/// Bytes read the way the adapters read: into the connection's own buffer.
fn read(conn: &mut rfc6455::Connection, bytes: &[u8]) {
    conn.read_buf().extend_from_slice(bytes);
}

// A connection gives its buffers back after a whole period with no traffic,
// and then asks for no time at all until traffic resumes.
#[test]
fn a_quiet_connection_shrinks_and_then_needs_no_timer() {
    let t0 = Instant::now();
    let mut s = server(Config::default());
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), None, "nothing held, nothing to check");
    read(&mut s, &client_frame(OpCode::Text, true, b"hi"));
    assert_eq!(pull(&mut s), (vec![Message::text("hi")], None));
    // A period after the last known time, the check is armed afresh...
    assert_eq!(s.poll_timeout(), Some(t0 + SEC));
    s.handle_timeout(t0 + SEC);
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * SEC));
    // ... traffic within the period postpones the shrink ...
    read(&mut s, &client_frame(OpCode::Text, true, b"again"));
    assert_eq!(pull(&mut s), (vec![Message::text("again")], None));
    s.handle_timeout(t0 + 2 * SEC);
    assert_eq!(s.poll_timeout(), Some(t0 + 3 * SEC));
    // ... and a whole quiet period ends it: nothing held, no deadline.
    s.handle_timeout(t0 + 3 * SEC);
    assert_eq!(s.poll_timeout(), None);
    // Traffic brings the buffer back, once.
    read(&mut s, &client_frame(OpCode::Text, true, b"back"));
    assert_eq!(pull(&mut s), (vec![Message::text("back")], None));
    assert_eq!(s.poll_timeout(), Some(t0 + 4 * SEC));
}

// A frame half-received is never given back: the check comes round again.
#[test]
fn a_half_received_frame_keeps_the_buffer() {
    let t0 = Instant::now();
    let mut s = server(Config::default());
    s.handle_timeout(t0);
    let frame = client_frame(OpCode::Binary, true, &[7; 100]);
    read(&mut s, &frame[..50]);
    assert_eq!(pull(&mut s), (vec![], None));
    for n in 1..5 {
        s.handle_timeout(t0 + n * SEC);
        assert_eq!(s.poll_timeout(), Some(t0 + (n + 1) * SEC));
    }
    read(&mut s, &frame[50..]);
    assert_eq!(pull(&mut s), (vec![Message::binary(vec![7; 100])], None));
}

#[test]
fn no_timer_armed_by_default() {
    let mut s = server(Config::default());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(Instant::now());
    assert_eq!(
        s.poll_timeout(),
        None,
        "only the close timeout is on by default, and no close is under way"
    );
}

// §5.5.2: "A Ping frame MAY serve ... as a keepalive".
#[test]
fn keepalive_ping_after_silence() {
    let t0 = Instant::now();
    let mut c = client(quiet().keepalive_interval(Some(10 * SEC)));
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + 10 * SEC));
    c.handle_timeout(t0 + 9 * SEC);
    assert!(!c.wants_write());
    c.handle_timeout(t0 + 10 * SEC);
    let frames = parse_frames(&take_output(&mut c));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.opcode, OpCode::Ping);
    assert_eq!(c.poll_timeout(), Some(t0 + 20 * SEC));
    // Input pushes the next keepalive back.
    c.receive(&frame(OpCode::Pong, true, b"", None));
    c.handle_timeout(t0 + 15 * SEC);
    assert_eq!(c.poll_timeout(), Some(t0 + 25 * SEC));
}

// An idle peer fails the connection with 1001 Going Away.
#[test]
fn idle_timeout_fails_with_1001() {
    let t0 = Instant::now();
    let mut s = server(quiet().idle_timeout(Some(30 * SEC)));
    s.handle_timeout(t0);
    s.receive(&client_frame(OpCode::Text, true, b"hi"));
    s.handle_timeout(t0 + 20 * SEC);
    assert_eq!(pull(&mut s), (vec![Message::text("hi")], None));
    assert_eq!(s.poll_timeout(), Some(t0 + 50 * SEC));
    s.handle_timeout(t0 + 50 * SEC);
    assert_eq!(s.next_message(), Err(ProtocolError::IdleTimeout));
    let frames = parse_frames(&take_output(&mut s));
    assert_eq!(frames[0].0.opcode, OpCode::Close);
    assert_eq!(&frames[0].1[..], &1001u16.to_be_bytes());
    assert!(s.should_close_transport());
    // The Close it queued is waited for from that moment: no "call me now" left behind.
    assert_eq!(s.poll_timeout(), Some(t0 + 55 * SEC));
}

// §7.1.1, §7.1.7: the wait for the peer's Close is bounded; the missing Close is 1006.
#[test]
fn unanswered_close_times_out() {
    let t0 = Instant::now();
    let mut c = client(quiet().close_timeout(Some(5 * SEC)));
    c.handle_timeout(t0);
    c.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        c.state(),
        State::Closing {
            initiated_by: Side::Local
        }
    );
    // The wait starts at the next handle_timeout; poll_timeout asks for one now.
    assert_eq!(c.poll_timeout(), Some(t0));
    take_output(&mut c);
    c.handle_timeout(t0 + SEC);
    assert_eq!(c.poll_timeout(), Some(t0 + 6 * SEC));
    c.handle_timeout(t0 + 6 * SEC);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.close_frame().map(|f| f.code), Some(CloseCode::ABNORMAL));
    assert!(c.should_close_transport());
}

// §7.1.1: the client waits for the server to close TCP, but not forever.
#[test]
fn client_stops_waiting_for_server_eof() {
    let t0 = Instant::now();
    let mut pair = Pair::with_configs(
        Config::default().close_timeout(Some(2 * SEC)),
        Config::default(),
    );
    pair.client.handle_timeout(t0);
    pair.server.close(CloseCode::NORMAL, "").unwrap();
    pair.deliver_to_client();
    take_output(&mut pair.client);
    assert_eq!(pair.client.state(), State::Closed);
    assert!(!pair.client.should_close_transport());
    pair.client.handle_timeout(t0 + SEC);
    pair.client.handle_timeout(t0 + 3 * SEC);
    assert!(pair.client.should_close_transport());
    assert_eq!(
        pair.client.close_frame().map(|f| f.code),
        Some(CloseCode::NORMAL),
        "the real Close is kept"
    );
}

// A peer that ends its side without a Close fails the connection (1006),
// and output still queued for it gets the close timeout to leave, no
// longer: a peer that stops reading cannot hold the connection.
#[test]
fn output_after_a_failure_gets_the_close_timeout() {
    let t0 = Instant::now();
    let mut s = server(quiet().close_timeout(Some(2 * SEC)));
    s.handle_timeout(t0);
    s.send(Message::binary(vec![1; 4096])).unwrap();
    s.receive_eof();
    assert!(matches!(
        s.next_message(),
        Err(ProtocolError::AbnormalClosure)
    ));
    s.handle_timeout(t0 + SEC);
    assert!(!s.is_finished(), "the output may still leave");
    assert!(s.outgoing().has_remaining());
    s.handle_timeout(t0 + 3 * SEC);
    assert!(
        !s.outgoing().has_remaining(),
        "what the peer did not take is dropped"
    );
    assert!(s.is_finished());
}
