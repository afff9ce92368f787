//! The close handshake, RFC 6455 §5.5.1 and §7.

mod support;

use rfc6455::connection::Side;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, CloseFrame, Config, Message, ProtocolError, SendError, State};
use support::*;

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

// §5.5.1: "If there is a body, the first two bytes of the body MUST be a
// 2-byte unsigned integer" — a body of one byte is a protocol error.
#[test]
fn one_byte_close_payload_fails_1002() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &frame(OpCode::Close, true, &[0x03], None),
        ProtocolError::BadClosePayload,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §7.4.1, §7.4.2: accepted codes are 1000-1003, 1007-1014 and 3000-4999.
#[test]
fn valid_close_codes_are_accepted_and_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut c = client(Config::default());
        c.receive(&frame(
            OpCode::Close,
            true,
            &close_payload(code, b"why"),
            None,
        ));
        assert_eq!(
            pull(&mut c),
            (
                vec![Message::Close(Some(CloseFrame::new(
                    CloseCode(code),
                    "why"
                )))],
                None
            ),
            "code {code}"
        );
        // §5.5.1: the endpoint "typically echos the status code it received".
        let echo = parse_frames(&take_output(&mut c));
        assert_eq!(echo.len(), 1);
        assert_eq!(echo[0].0.opcode, OpCode::Close);
        assert_eq!(&echo[0].1[..], &code.to_be_bytes());
        assert_eq!(
            c.close_frame(),
            Some(&CloseFrame::new(CloseCode(code), "why"))
        );
        assert_eq!(c.state(), State::Closed);
    }
}

// §7.4.1, §7.4.2: 1004-1006, 1015, below 1000, 1016-2999 and 5000+ are rejected with 1002.
#[test]
fn invalid_close_codes_fail_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut c = client(Config::default());
        assert_fails(
            &mut c,
            &frame(OpCode::Close, true, &close_payload(code, b""), None),
            ProtocolError::InvalidCloseCode(code),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

// §5.5.1: the close reason is UTF-8; §8.1: otherwise fail with 1007.
#[test]
fn close_reason_must_be_utf8() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &frame(
            OpCode::Close,
            true,
            &close_payload(1000, b"\xce\xba\xff"),
            None,
        ),
        ProtocolError::InvalidUtf8,
        CloseCode::INVALID_PAYLOAD,
    );
}

// §5.5.1: an empty Close is valid (status 1005 is reported, §7.1.5) and echoed empty.
#[test]
fn empty_close_is_echoed_empty() {
    let mut s = server(Config::default());
    s.receive(&client_frame(OpCode::Close, true, b""));
    assert_eq!(pull(&mut s), (vec![Message::Close(None)], None));
    assert_eq!(
        s.close_frame().map(|f| f.code),
        Some(CloseCode::NO_STATUS_RECEIVED)
    );
    assert_eq!(take_output(&mut s), [0x88, 0x00]);
    assert!(s.should_close_transport());
}

// §7.1.2-§7.1.4, §7.1.1: a full handshake started by the client; the server
// closes the transport first, the client waits for it.
#[test]
fn client_initiated_handshake() {
    let mut pair = Pair::new();
    pair.client.close(CloseCode::GOING_AWAY, "leaving").unwrap();
    assert_eq!(
        pair.client.state(),
        State::Closing {
            initiated_by: Side::Local
        }
    );
    let (got, error) = pair.deliver_to_server();
    assert_eq!(
        (got, error),
        (
            vec![Message::Close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                "leaving"
            )))],
            None
        )
    );
    assert_eq!(pair.server.state(), State::Closed);
    assert!(
        !pair.server.should_close_transport(),
        "echo not yet written"
    );
    let (got, error) = pair.deliver_to_client();
    assert_eq!(
        (got, error),
        (
            vec![Message::Close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                ""
            )))],
            None
        )
    );
    assert!(pair.server.should_close_transport());
    assert_eq!(pair.client.state(), State::Closed);
    assert!(
        !pair.client.should_close_transport(),
        "the client waits for the server's TCP close"
    );
    pair.client.receive_eof();
    assert_eq!(
        pair.client.next_message(),
        Ok(None),
        "EOF after the handshake is clean"
    );
    assert!(pair.client.should_close_transport());
}

// §5.5.1: "after sending a Close frame, the endpoint MUST NOT send any more data frames".
#[test]
fn nothing_is_sent_after_close() {
    let mut pair = Pair::new();
    pair.server.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        pair.server.send(Message::text("late")),
        Err(SendError::Closed)
    );
    assert_eq!(
        pair.server.send(Message::Ping(Default::default())),
        Err(SendError::Closed)
    );
    assert_eq!(
        pair.server.close(CloseCode::NORMAL, ""),
        Err(SendError::Closed)
    );
    // Data still arrives until the peer's Close (§7.1.2: CLOSING).
    pair.client.send(Message::text("in flight")).unwrap();
    let (got, _) = pair.deliver_to_server();
    assert_eq!(got, vec![Message::text("in flight")]);
    // A Ping received while closing is not answered: that would follow our Close.
    pair.client.send(Message::Ping(Default::default())).unwrap();
    pair.deliver_to_server();
    let wire = take_output(&mut pair.server);
    assert_eq!(
        parse_frames(&wire)
            .iter()
            .map(|f| f.0.opcode)
            .collect::<Vec<_>>(),
        [OpCode::Close]
    );
    // After receiving a Close and echoing it, sending is refused too.
    let (got, _) = feed_chunked(&mut pair.client, &wire, 1);
    assert!(matches!(got[..], [Message::Close(_)]));
    assert_eq!(
        pair.client.send(Message::text("late")),
        Err(SendError::Closed)
    );
}

// §5.5.1: frames after a Close are not processed.
#[test]
fn input_after_close_is_ignored() {
    let mut c = client(Config::default());
    let mut wire = frame(OpCode::Close, true, &close_payload(1000, b""), None);
    wire.extend(frame(OpCode::Text, true, b"ignored", None));
    wire.extend([0x83, 0x00]); // even a protocol error
    c.receive(&wire);
    assert_eq!(
        pull(&mut c),
        (
            vec![Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "")))],
            None
        )
    );
    c.receive(&frame(OpCode::Text, true, b"more", None));
    assert_eq!(c.next_message(), Ok(None));
}

// §7.1.5 and §7.4.1: a transport that ends without a Close is 1006 (never sent).
#[test]
fn eof_without_close_is_abnormal_1006() {
    let mut s = server(Config::default());
    s.receive(&client_frame(OpCode::Text, true, b"last"));
    s.receive(&client_frame(OpCode::Text, true, b"partial")[..5]);
    s.receive_eof();
    assert_eq!(
        s.next_message(),
        Ok(Some(Message::text("last"))),
        "buffered messages first"
    );
    assert_eq!(s.next_message(), Err(ProtocolError::AbnormalClosure));
    assert_eq!(s.next_message(), Err(ProtocolError::AbnormalClosure));
    assert_eq!(
        ProtocolError::AbnormalClosure.close_code(),
        CloseCode::ABNORMAL
    );
    assert_eq!(s.close_frame().map(|f| f.code), Some(CloseCode::ABNORMAL));
    assert_eq!(s.state(), State::Closed);
    assert!(!s.wants_write(), "no Close is sent for 1006");
    assert!(s.should_close_transport());
}

// §7.1.5: EOF after we sent Close but before the peer answered is also 1006.
#[test]
fn eof_while_closing_is_abnormal() {
    let mut c = client(Config::default());
    c.close(CloseCode::NORMAL, "").unwrap();
    take_output(&mut c);
    c.receive_eof();
    assert_eq!(c.next_message(), Err(ProtocolError::AbnormalClosure));
    assert_eq!(c.state(), State::Closed);
}

// §7.4 and §5.5: what close() refuses, leaving the connection unchanged.
#[test]
fn close_checks_code_and_reason() {
    let mut c = client(Config::default());
    for code in [1005u16, 1006, 1015, 999, 2000, 5000] {
        assert_eq!(
            c.close(CloseCode(code), ""),
            Err(SendError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        c.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::ReasonTooLong)
    );
    assert_eq!(c.state(), State::Open);
    assert!(!c.wants_write());
    c.close(CloseCode::NORMAL, &"x".repeat(123)).unwrap();
    assert_eq!(parse_frames(&take_output(&mut c))[0].1.len(), 125);
    // Message::Close through send() follows the same rules.
    let mut s = server(Config::default());
    assert_eq!(
        s.send(Message::Close(Some(CloseFrame::new(CloseCode(1006), "")))),
        Err(SendError::InvalidCloseCode(1006))
    );
    s.send(Message::Close(None)).unwrap();
    assert_eq!(take_output(&mut s), [0x88, 0x00]);
}
