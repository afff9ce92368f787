//! Fragmentation, RFC 6455 §5.4.

mod support;

use bytes::Bytes;
use rfc6455::connection::DataKind;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Message, ProtocolError, SendError};
use support::*;

// §5.4: a message of one unfinished frame and continuations is reassembled.
#[test]
fn reassembles_many_fragments() {
    let mut wire = frame(OpCode::Binary, false, b"ab", None);
    wire.extend(frame(OpCode::Continuation, false, b"", None));
    wire.extend(frame(OpCode::Continuation, false, b"cd", None));
    wire.extend(frame(OpCode::Continuation, true, b"e", None));
    let mut c = client(Config::default());
    assert_eq!(
        feed_chunked(&mut c, &wire, 3),
        (vec![Message::binary(&b"abcde"[..])], None)
    );
}

// §5.4: "Control frames MAY be injected in the middle of a fragmented message";
// they are delivered at once, not after the message.
#[test]
fn control_frames_between_fragments_are_delivered_at_once() {
    let mut c = client(Config::default());
    c.receive(&frame(OpCode::Text, false, b"Hel", None));
    c.receive(&frame(OpCode::Ping, true, b"p", None));
    assert_eq!(
        pull(&mut c),
        (vec![Message::Ping(Bytes::from_static(b"p"))], None)
    );
    c.receive(&frame(OpCode::Pong, true, b"q", None));
    c.receive(&frame(OpCode::Continuation, true, b"lo", None));
    assert_eq!(
        pull(&mut c),
        (
            vec![
                Message::Pong(Bytes::from_static(b"q")),
                Message::text("Hello")
            ],
            None
        )
    );
}

// §5.4: a continuation frame with no message to continue is a protocol error.
#[test]
fn continuation_without_start_fails_1002() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &frame(OpCode::Continuation, true, b"x", None),
        ProtocolError::UnexpectedContinuation,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.4: the fragments of one message may not be interleaved with another message.
#[test]
fn new_data_frame_inside_fragmented_message_fails_1002() {
    for opcode in [OpCode::Text, OpCode::Binary] {
        let mut c = client(Config::default());
        c.receive(&frame(OpCode::Binary, false, b"a", None));
        assert_fails(
            &mut c,
            &frame(opcode, true, b"b", None),
            ProtocolError::ExpectedContinuation,
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

// §5.4: sending a message in fragments with the streaming API.
#[test]
fn send_fragment_streams_a_message() {
    let mut pair = Pair::new();
    pair.client
        .send_fragment(DataKind::Text, Bytes::from_static(b"he"), false)
        .unwrap();
    // A control message may go between fragments; a whole data message may not.
    pair.client
        .send(Message::Ping(Bytes::from_static(b"!")))
        .unwrap();
    assert_eq!(
        pair.client.send(Message::text("no")),
        Err(SendError::FragmentInProgress)
    );
    assert_eq!(
        pair.client
            .send_fragment(DataKind::Binary, Bytes::new(), true),
        Err(SendError::FragmentKindMismatch)
    );
    pair.client
        .send_fragment(DataKind::Text, Bytes::from_static(b"llo"), true)
        .unwrap();
    let wire = take_output(&mut pair.client);
    let frames = parse_frames(&wire);
    let shape: Vec<_> = frames
        .iter()
        .map(|(h, _)| (h.opcode, h.fin, h.mask.is_some()))
        .collect();
    assert_eq!(
        shape,
        [
            (OpCode::Text, false, true),
            (OpCode::Ping, true, true),
            (OpCode::Continuation, true, true)
        ]
    );
    let (messages, error) = feed_chunked(&mut pair.server, &wire, 2);
    assert_eq!(error, None);
    assert_eq!(
        messages,
        vec![
            Message::Ping(Bytes::from_static(b"!")),
            Message::text("hello")
        ]
    );
    // The message is over: a whole one may follow.
    pair.client.send(Message::text("next")).unwrap();
}

// §5.4 and §8.1: streamed text may split a code point between fragments, but
// invalid UTF-8 is refused before it is queued, and the message stays open.
#[test]
fn send_fragment_checks_text() {
    let mut c = client(Config::default());
    let euro = "€".as_bytes();
    c.send_fragment(DataKind::Text, Bytes::copy_from_slice(&euro[..1]), false)
        .unwrap();
    let queued = take_output(&mut c).len();
    assert_eq!(
        c.send_fragment(DataKind::Text, Bytes::from_static(b"\xff"), false),
        Err(SendError::InvalidUtf8)
    );
    assert_eq!(
        c.send_fragment(DataKind::Text, Bytes::copy_from_slice(&euro[1..2]), true),
        Err(SendError::InvalidUtf8),
        "ends inside a code point"
    );
    assert_eq!(take_output(&mut c).len(), 0, "nothing queued on error");
    c.send_fragment(DataKind::Text, Bytes::copy_from_slice(&euro[1..]), true)
        .unwrap();
    assert!(queued > 0);
    let mut s = server(Config::default());
    let mut wire = frame(OpCode::Text, false, &euro[..1], Some([9, 9, 9, 9]));
    wire.extend(take_output(&mut c));
    assert_eq!(
        feed_chunked(&mut s, &wire, 1),
        (vec![Message::text("€")], None)
    );
}

// §5.4: "an endpoint MAY fragment" a message; with max_send_frame_size set,
// every data message is split into frames of at most that size.
#[test]
fn automatic_fragmentation() {
    let config = Config::default().max_send_frame_size(Some(4));
    let mut pair = Pair::with_configs(config.clone(), config);
    pair.server
        .send(Message::binary(&b"0123456789"[..]))
        .unwrap();
    pair.server.send(Message::text("abcd")).unwrap();
    let wire = take_output(&mut pair.server);
    assert_eq!(
        frame_shapes(&wire),
        [
            (OpCode::Binary, false, 4),
            (OpCode::Continuation, false, 4),
            (OpCode::Continuation, true, 2),
            (OpCode::Text, true, 4),
        ]
    );
    assert_eq!(
        feed_chunked(&mut pair.client, &wire, 5),
        (
            vec![Message::binary(&b"0123456789"[..]), Message::text("abcd")],
            None
        )
    );
}

// Found by the connection_client fuzz target: streamed fragments longer than
// max_send_frame_size went out as one frame. They are split like messages.
#[test]
fn streamed_fragments_respect_max_send_frame_size() {
    let config = Config::default().max_send_frame_size(Some(4));
    let mut pair = Pair::with_configs(config.clone(), config);
    pair.client
        .send_fragment(DataKind::Text, Bytes::from_static(b"hello "), false)
        .unwrap();
    pair.client
        .send_fragment(DataKind::Text, Bytes::from_static(b"world"), true)
        .unwrap();
    let wire = take_output(&mut pair.client);
    assert_eq!(
        frame_shapes(&wire),
        [
            (OpCode::Text, false, 4),
            (OpCode::Continuation, false, 2),
            (OpCode::Continuation, false, 4),
            (OpCode::Continuation, true, 1),
        ]
    );
    assert_eq!(
        feed_chunked(&mut pair.server, &wire, 3),
        (vec![Message::text("hello world")], None)
    );
}

// §5.4: "An intermediary MUST NOT change the fragmentation" — and a receiver
// must accept any fragmentation, including empty fragments and empty messages.
#[test]
fn empty_fragments_and_messages() {
    let mut wire = frame(OpCode::Text, false, b"", None);
    wire.extend(frame(OpCode::Continuation, true, b"", None));
    wire.extend(frame(OpCode::Binary, true, b"", None));
    let mut c = client(Config::default());
    assert_eq!(
        feed_chunked(&mut c, &wire, 1),
        (vec![Message::text(""), Message::binary(Bytes::new())], None)
    );
}
