//! UTF-8 in text messages, RFC 6455 §8.1 (and §5.6).

mod support;

use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Message, ProtocolError};
use support::*;

// §8.1: a code point split across frames of one message is valid.
#[test]
fn code_point_split_across_frames() {
    let text = "a€𝄞";
    let bytes = text.as_bytes();
    for split in 0..=bytes.len() {
        let mut wire = frame(OpCode::Text, false, &bytes[..split], None);
        wire.extend(frame(OpCode::Continuation, true, &bytes[split..], None));
        let mut c = client(Config::default());
        assert_eq!(
            feed_chunked(&mut c, &wire, 1),
            (vec![Message::text(text)], None),
            "split {split}"
        );
    }
}

// §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that
// the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST
// _Fail the WebSocket Connection_" — as soon as the invalid byte arrives, here in
// the first fragment of an unfinished message.
#[test]
fn fails_fast_inside_unfinished_fragmented_message() {
    let mut c = client(Config::default());
    c.receive(&frame(OpCode::Text, false, b"ok", None));
    assert_eq!(pull(&mut c), (vec![], None));
    assert_fails(
        &mut c,
        &frame(OpCode::Continuation, false, b"\xce\xba\xed\xa0\x80", None),
        ProtocolError::InvalidUtf8,
        CloseCode::INVALID_PAYLOAD,
    );
}

// §8.1: fails as soon as the invalid byte arrives, even before its frame is whole.
#[test]
fn fails_fast_inside_a_partly_received_frame() {
    let mut payload = b"valid text ".repeat(10);
    payload.extend_from_slice(b"\xf4\x90\x80\x80");
    payload.extend_from_slice(&[b'x'; 1000]);
    let wire = frame(OpCode::Text, true, &payload, Some([1, 2, 3, 4]));
    let mut s = server(Config::default());
    // Header plus the valid part: nothing to report yet.
    s.receive(&wire[..4 + 4 + 110]);
    assert_eq!(pull(&mut s), (vec![], None));
    // The first bytes of the invalid sequence: the frame is far from whole.
    s.receive(&wire[118..120]);
    assert_eq!(pull(&mut s), (vec![], Some(ProtocolError::InvalidUtf8)));
}

// §8.1: a message that ends inside a code point is invalid.
#[test]
fn unfinished_code_point_at_fin_fails_1007() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &frame(OpCode::Text, true, b"ab\xe2\x82", None),
        ProtocolError::InvalidUtf8,
        CloseCode::INVALID_PAYLOAD,
    );
    let mut c = client(Config::default());
    c.receive(&frame(OpCode::Text, false, b"\xe2", None));
    assert_fails(
        &mut c,
        &frame(OpCode::Continuation, true, b"\x82", None),
        ProtocolError::InvalidUtf8,
        CloseCode::INVALID_PAYLOAD,
    );
}

// §5.6: binary messages are never checked.
#[test]
fn binary_is_not_checked() {
    let mut c = client(Config::default());
    assert_eq!(
        feed_chunked(&mut c, &frame(OpCode::Binary, true, b"\xff\xfe", None), 1),
        (vec![Message::binary(&b"\xff\xfe"[..])], None)
    );
}
