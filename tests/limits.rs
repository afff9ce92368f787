//! Limits from `Config`: checked from the frame header, before any payload is
//! buffered (RFC 6455 §10.4: "implementations SHOULD impose implementation-specific
//! limits on frame size and total message size"); 1009 on violation (§7.4.1).

mod support;

use bytes::{Buf, Bytes};
use rfc6455::frame::OpCode;
use rfc6455::{
    CloseCode, Config, ConfigError, Connection, Message, ProtocolError, Role, SendError,
};
use support::*;

// §10.4 and §7.4.1: a frame larger than max_frame_size fails from its header alone.
#[test]
fn frame_over_limit_fails_1009_from_header() {
    let mut c = client(Config::default().max_frame_size(1000));
    // 1001 bytes announced; only the 4-byte header arrives.
    assert_fails(
        &mut c,
        &[0x82, 126, 0x03, 0xe9],
        ProtocolError::FrameTooBig,
        CloseCode::MESSAGE_TOO_BIG,
    );
    let mut c = client(Config::default().max_frame_size(1000));
    c.receive(&frame(OpCode::Binary, true, &[7; 1000], None));
    assert_eq!(pull(&mut c).0.len(), 1, "exactly at the limit is fine");
}

// §5.2 with §10.4: the largest length the header can express (2^63 - 1).
#[test]
fn huge_announced_length_fails_without_allocating() {
    let mut s = server(Config::default());
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    wire.extend_from_slice(&[1, 2, 3, 4]);
    assert_fails(
        &mut s,
        &wire,
        ProtocolError::FrameTooBig,
        CloseCode::MESSAGE_TOO_BIG,
    );
}

// §10.4: a message over max_message_size fails at the header of the frame that
// would cross the limit, before that frame's payload arrives.
#[test]
fn message_over_limit_fails_1009_at_crossing_fragment() {
    let mut c = client(Config::default().max_frame_size(8).max_message_size(10));
    c.receive(&frame(OpCode::Text, false, b"123456", None));
    assert_eq!(pull(&mut c), (vec![], None));
    assert_fails(
        &mut c,
        &[0x00, 6],
        ProtocolError::MessageTooBig,
        CloseCode::MESSAGE_TOO_BIG,
    );
}

// Many tiny fragments count toward the message limit too.
#[test]
fn tiny_fragments_count_toward_message_limit() {
    let mut c = client(Config::default().max_frame_size(16).max_message_size(100));
    c.receive(&frame(OpCode::Binary, false, b"x", None));
    let mut count = 1;
    let error = loop {
        c.receive(&frame(OpCode::Continuation, false, b"x", None));
        count += 1;
        if let (_, Some(error)) = pull(&mut c) {
            break error;
        }
        assert!(count <= 101);
    };
    assert_eq!((error, count), (ProtocolError::MessageTooBig, 101));
}

// The input buffer grows with the frame's actual bytes, not the announced
// length: at most 1 MiB ahead of what has arrived.
#[test]
fn read_buffer_does_not_trust_announced_length() {
    let mut s = server(Config::default());
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(16u64 << 20).to_be_bytes());
    wire.extend_from_slice(&[1, 2, 3, 4]);
    s.receive(&wire);
    assert_eq!(s.next_message(), Ok(None));
    let capacity = s.read_buf().capacity();
    assert!(capacity <= (1 << 20) + 64 * 1024, "{capacity}");
    // As bytes arrive the room grows with them: at most 1 MiB, or as much
    // again as is buffered, ahead of them.
    let mut reads = 0;
    let message = loop {
        let buf = s.read_buf();
        let (room, len) = (buf.capacity() - buf.len(), buf.len());
        assert!(
            room <= len.max(1 << 20) + 64 * 1024,
            "room {room} for {len} buffered"
        );
        buf.resize(buf.capacity().min(len + (16 << 20)), 1);
        reads += 1;
        match s.next_message() {
            Ok(None) => {}
            other => break other,
        }
    };
    assert!(
        matches!(&message, Ok(Some(Message::Binary(p))) if p.len() == 16 << 20),
        "the 16 MiB message"
    );
    assert!(reads >= 5, "grew in steps: {reads} reads");
}

/// A server that has read the header of a masked binary frame of `len` bytes
/// (8-byte length form, zero key) and nothing of its payload.
fn server_in_frame(len: usize) -> Connection {
    let mut s = server(Config::default());
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(len as u64).to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    s.receive(&wire);
    assert_eq!(s.next_message(), Ok(None));
    s
}

// A frame of up to 1 MiB gets room for all of it once its header is in, so
// its payload is read into one buffer instead of one regrown (and copied)
// 256 KiB at a time.
#[test]
fn read_buffer_makes_room_for_a_whole_frame_up_to_1_mib() {
    for len in [300 * 1024, 1 << 20] {
        let mut s = server_in_frame(len);
        let buf = s.read_buf();
        let room = buf.capacity() - buf.len();
        assert!(room >= len, "room {room} for a {len}-byte payload");
        let room_at = buf.as_ptr() as usize + buf.len();
        buf.resize(buf.len() + len, 0);
        let Ok(Some(Message::Binary(payload))) = s.next_message() else {
            panic!("one message");
        };
        assert_eq!(payload.len(), len);
        let at = payload.as_ptr() as usize;
        assert!((room_at - 14..=room_at).contains(&at), "payload was copied");
    }
}

// The last bytes of a large frame fit in the room already there: reading
// them does not regrow (and copy) the megabyte before them.
#[test]
fn the_end_of_a_large_frame_is_read_without_regrowing() {
    let len = 1 << 20;
    let mut s = server_in_frame(len);
    let buf = s.read_buf();
    let start = buf.as_ptr();
    buf.resize(buf.len() + len - 28, 0);
    assert_eq!(s.next_message(), Ok(None));
    let buf = s.read_buf();
    assert_eq!(buf.as_ptr(), start, "the buffer was not moved");
    assert!(buf.capacity() - buf.len() >= 28);
    buf.resize(buf.len() + 28, 0);
    assert!(matches!(s.next_message(), Ok(Some(Message::Binary(p))) if p.len() == len));
}

// The room made for a frame reaches past its end by a header's length, also
// when the buffer is reused for the next frame: a read that takes the whole
// frame comes back short of the room offered, which an edge-triggered reader
// (tokio's) takes for a drained socket, instead of reading again to find
// nothing.
#[test]
fn room_for_a_frame_reaches_past_its_end() {
    let len = 1 << 20;
    let mut header = vec![0x82, 0xff];
    header.extend_from_slice(&(len as u64).to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    let mut s = server(Config::default());
    for round in 0..3 {
        s.read_buf().extend_from_slice(&header);
        assert_eq!(s.next_message(), Ok(None));
        let buf = s.read_buf();
        let room = buf.capacity() - buf.len();
        assert!(
            room >= len + rfc6455::frame::MAX_HEADER_LEN,
            "round {round}: room {room} for the rest of a {len}-byte frame"
        );
        buf.resize(buf.len() + len, 0);
        let Ok(Some(Message::Binary(payload))) = s.next_message() else {
            panic!("round {round}: one message");
        };
        assert_eq!(payload.len(), len);
    }
}

// Once a large message is handed out and its echo written, with nothing
// else buffered either way, the read buffer grown for it is let go: an idle
// connection holds little memory. While the message is still held, or output
// is still waiting, the buffer is kept.
#[test]
fn an_idle_connection_lets_a_large_read_buffer_go() {
    let len = 1 << 20;
    let frame = client_frame(OpCode::Binary, true, &vec![7; len]);
    let mut s = server(Config::default());
    s.read_buf().extend_from_slice(&frame);
    let Ok(Some(message)) = s.next_message() else {
        panic!("one message");
    };
    s.send(message).unwrap();
    let spare = |s: &mut Connection| {
        let buf = s.read_buf();
        buf.capacity() - buf.len()
    };
    // The echo is queued (and shares the buffer's allocation): kept.
    assert!(s.outgoing().has_remaining());
    let _ = spare(&mut s);
    // Written: nothing holds the allocation any more.
    let out = s.outgoing();
    out.advance(out.remaining());
    let room = spare(&mut s);
    assert!(room < 512 * 1024, "room {room} kept while idle");
    // The next large message still arrives whole, into one new buffer.
    s.read_buf().extend_from_slice(&frame);
    assert!(matches!(s.next_message(), Ok(Some(Message::Binary(p))) if p.len() == len));
}

// Between frames, the room offered for a read starts small and doubles only
// while reads fill all of it (a peer pipelining many small frames), up to
// 256 KiB; reads that leave room do not grow it.
#[test]
fn read_room_grows_only_while_reads_fill_it() {
    let spare = |s: &mut Connection| {
        let buf = s.read_buf();
        buf.capacity() - buf.len()
    };
    let frame = client_frame(OpCode::Binary, true, &[7; 100]);
    let mut s = server(Config::default());
    let first = spare(&mut s);
    assert!(
        (2 * 1024..4 * 1024).contains(&first),
        "starts at 2 KiB: {first}"
    );
    // Partial reads: the room stays as it is.
    for _ in 0..10 {
        s.read_buf().extend_from_slice(&frame);
        assert!(matches!(s.next_message(), Ok(Some(_))));
        assert!(spare(&mut s) < 4 * 1024);
    }
    // Reads that fill the room: it doubles each time, to 256 KiB.
    let mut offered = vec![spare(&mut s)];
    for _ in 0..8 {
        let room = *offered.last().unwrap();
        let frames = frame.repeat(room / frame.len() + 1);
        s.read_buf().extend_from_slice(&frames[..room]);
        while let Ok(Some(_)) = s.next_message() {}
        offered.push(spare(&mut s));
    }
    assert!(
        offered.windows(2).take(4).all(|w| w[1] >= 2 * w[0] - 1024),
        "{offered:?}"
    );
    assert!(offered.iter().all(|&o| o <= 512 * 1024), "{offered:?}");
    assert!(*offered.last().unwrap() >= 256 * 1024, "{offered:?}");
}

// max_write_buffer: past it, send hands the message back instead of growing.
#[test]
fn full_write_buffer_returns_the_message() {
    let mut s = server(Config::default().max_write_buffer(100));
    let big = Message::binary(Bytes::from(vec![1; 300]));
    s.send(big.clone()).unwrap(); // an empty queue always takes one message
    let next = Message::text("next");
    assert_eq!(s.send(next.clone()), Err(SendError::Full(next.clone())));
    assert_eq!(s.outgoing().remaining(), 304, "nothing was added");
    // Drain part of it: still over the mark. Drain the rest: accepted.
    s.outgoing().advance(150);
    assert_eq!(s.send(next.clone()), Err(SendError::Full(next.clone())));
    s.outgoing().advance(154);
    s.send(next).unwrap();
    // Control replies are exempt: a Ping is still answered.
    s.send(big).unwrap();
    s.receive(&client_frame(OpCode::Ping, true, b"p"));
    pull(&mut s);
    let frames = parse_frames(&take_output(&mut s));
    assert_eq!(frames.last().unwrap().0.opcode, OpCode::Pong);
}

// Config is validated by Connection::new; nothing panics.
#[test]
fn invalid_config_is_an_error() {
    let err = |c: Config| Connection::new(Role::Server, c).unwrap_err();
    assert_eq!(
        err(Config::default().max_message_size(0)),
        ConfigError::ZeroLimit("max_message_size")
    );
    assert_eq!(
        err(Config::default().max_write_buffer(0)),
        ConfigError::ZeroLimit("max_write_buffer")
    );
    // A frame limit above the message limit follows it down.
    assert!(
        Connection::new(
            Role::Server,
            Config::default().max_frame_size(100).max_message_size(10)
        )
        .is_ok()
    );
    assert_eq!(
        err(Config::default().keepalive_interval(Some(std::time::Duration::ZERO))),
        ConfigError::ZeroDuration("keepalive_interval")
    );
}

// §10.4: a configured limit just applies; a connection far under it is unaffected.
#[test]
fn large_messages_under_the_limit_pass() {
    let mut pair = Pair::new();
    let payload = Bytes::from((0..3_000_000u32).map(|i| i as u8).collect::<Vec<_>>());
    pair.client.send(Message::binary(payload.clone())).unwrap();
    pair.chunk = 65536;
    assert_eq!(
        pair.deliver_to_server(),
        (vec![Message::binary(payload)], None)
    );
}

// Input that arrives after a failure or a Close is dropped, not buffered.
#[test]
fn input_after_the_end_is_not_buffered() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x83, 0],
        ProtocolError::ReservedOpcode(3),
        CloseCode::PROTOCOL_ERROR,
    );
    c.receive(&vec![0u8; 1 << 20]);
    c.read_buf().extend_from_slice(&[0u8; 1000]);
    assert_eq!(c.next_message(), Err(ProtocolError::ReservedOpcode(3)));
    assert_eq!(c.read_buf().len(), 0);
    let mut c = client(Config::default());
    c.receive(&frame(OpCode::Close, true, b"", None));
    assert_eq!(c.next_message(), Ok(Some(Message::Close(None))));
    c.receive(&vec![0u8; 1 << 20]);
    assert_eq!(c.read_buf().len(), 0);
}
