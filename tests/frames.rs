//! The frame layer through the public API: RFC 6455 §5.2, §5.3 and the §5.7 examples.

mod support;

use bytes::Bytes;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, Config, Message, ProtocolError};
use support::*;

// §5.7: "A single-frame unmasked text message".
#[test]
fn rfc_single_frame_unmasked_text() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut client = client(Config::default());
    assert_eq!(
        feed_chunked(&mut client, &wire, 1),
        (vec![Message::text("Hello")], None)
    );
    let mut server = server(Config::default());
    server.send(Message::text("Hello")).unwrap();
    assert_eq!(take_output(&mut server), wire);
}

// §5.7: "A single-frame masked text message".
#[test]
fn rfc_single_frame_masked_text() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut server = server(Config::default());
    assert_eq!(
        feed_chunked(&mut server, &wire, 1),
        (vec![Message::text("Hello")], None)
    );
    // A client masks with a fresh key; unmasking gives the same payload.
    let mut client = client(Config::default());
    client.send(Message::text("Hello")).unwrap();
    let out = take_output(&mut client);
    assert_eq!(&out[..2], &[0x81, 0x85]);
    let frames = parse_frames(&out);
    assert_eq!(frames[0].1, Bytes::from_static(b"Hello"));
}

// §5.7: "A fragmented unmasked text message".
#[test]
fn rfc_fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    for chunk in 1..=wire.len() {
        let mut client = client(Config::default());
        assert_eq!(
            feed_chunked(&mut client, &wire, chunk),
            (vec![Message::text("Hello")], None)
        );
    }
}

// §5.7: "Unmasked Ping request and masked Ping response".
#[test]
fn rfc_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut client = client(Config::default());
    assert_eq!(
        feed_chunked(&mut client, &ping, 7),
        (vec![Message::Ping(Bytes::from_static(b"Hello"))], None)
    );
    let out = take_output(&mut client);
    assert_eq!(&out[..2], &[0x8a, 0x85], "masked Pong, 5 bytes");
    assert_eq!(parse_frames(&out)[0].1, Bytes::from_static(b"Hello"));
    // The RFC's own masked Pong parses on the server.
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut server = server(Config::default());
    assert_eq!(
        feed_chunked(&mut server, &pong, 3),
        (vec![Message::Pong(Bytes::from_static(b"Hello"))], None)
    );
}

// §5.7: "256 bytes binary message in a single unmasked frame" and
// "64KiB binary message in a single unmasked frame".
#[test]
fn rfc_16_and_64_bit_lengths() {
    for (len, header) in [
        (256usize, vec![0x82, 0x7e, 0x01, 0x00]),
        (65536, vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut server = server(Config::default());
        server.send(Message::binary(payload.clone())).unwrap();
        let out = take_output(&mut server);
        assert_eq!(&out[..header.len()], &header[..]);
        assert_eq!(&out[header.len()..], &payload[..]);
        let mut client = client(Config::default());
        assert_eq!(
            feed_chunked(&mut client, &out, 1000),
            (vec![Message::binary(payload)], None)
        );
    }
}

// §5.2: a 7-bit length of 126 or 127 with a value that fits in fewer bytes.
#[test]
fn non_minimal_lengths_fail_1002() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x82, 126, 0x00, 0x05],
        ProtocolError::NonMinimalLength,
        CloseCode::PROTOCOL_ERROR,
    );
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x82, 127, 0, 0, 0, 0, 0, 0, 0x01, 0x00],
        ProtocolError::NonMinimalLength,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.2: "the most significant bit MUST be 0" in a 64-bit length.
#[test]
fn length_with_top_bit_fails_1002() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ProtocolError::LengthOverflow,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.2: reserved opcodes 0x3-0x7 (data) and 0xB-0xF (control).
#[test]
fn reserved_opcodes_fail_1002() {
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        let mut c = client(Config::default());
        assert_fails(
            &mut c,
            &[0x80 | op, 0],
            ProtocolError::ReservedOpcode(op),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

// §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated".
#[test]
fn rsv_bits_fail_1002_without_extension() {
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        let mut c = client(Config::default());
        assert_fails(
            &mut c,
            &raw_frame(0x81 | rsv, b"x", None),
            ProtocolError::ReservedBits,
            CloseCode::PROTOCOL_ERROR,
        );
        let mut s = server(Config::default());
        assert_fails(
            &mut s,
            &raw_frame(0x89 | rsv, b"", Some([1, 2, 3, 4])),
            ProtocolError::ReservedBits,
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

// §5.1: "a server MUST close the connection upon receiving a frame that is not masked".
#[test]
fn server_rejects_unmasked_frames() {
    let mut s = server(Config::default());
    assert_fails(
        &mut s,
        &frame(OpCode::Text, true, b"hi", None),
        ProtocolError::UnmaskedFrame,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.1: "A client MUST close a connection if it detects a masked frame".
#[test]
fn client_rejects_masked_frames() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &client_frame(OpCode::Binary, true, b"hi"),
        ProtocolError::MaskedFrame,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.5: "All control frames MUST have a payload length of 125 bytes or less
// and MUST NOT be fragmented." Rejected from the first two bytes.
#[test]
fn bad_control_frames_fail_1002() {
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x89, 126],
        ProtocolError::ControlTooLong,
        CloseCode::PROTOCOL_ERROR,
    );
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x0a, 0],
        ProtocolError::FragmentedControl,
        CloseCode::PROTOCOL_ERROR,
    );
    let mut c = client(Config::default());
    assert_fails(
        &mut c,
        &[0x08, 0],
        ProtocolError::FragmentedControl,
        CloseCode::PROTOCOL_ERROR,
    );
}

// §5.6: the payload arrives as zero-copy Bytes split off the input buffer.
#[test]
fn messages_before_an_error_are_delivered() {
    let mut wire = frame(OpCode::Text, true, b"first", None);
    wire.extend_from_slice(&[0x83, 0]);
    let mut c = client(Config::default());
    c.receive(&wire);
    assert_eq!(c.next_message(), Ok(Some(Message::text("first"))));
    assert_eq!(c.next_message(), Err(ProtocolError::ReservedOpcode(3)));
}

// A whole frame already in the buffer and the same frame arriving a byte at
// a time take different paths through the receiver; every frame near the
// edges of the single-frame data case (length encodings, RSV bits, masking
// direction, limits, UTF-8) must give the same messages and the same error.
#[test]
fn whole_and_bytewise_delivery_agree_at_the_edges() {
    let key = Some([0x12, 0x34, 0x56, 0x78]);
    let mut wires: Vec<(&str, Vec<u8>)> = vec![
        ("empty binary", raw_frame(0x82, b"", key)),
        ("125 bytes", raw_frame(0x82, &[7; 125], key)),
        ("126 bytes", raw_frame(0x82, &[7; 126], key)),
        ("65535 bytes", raw_frame(0x82, &[7; 65535], key)),
        ("65536 bytes", raw_frame(0x82, &[7; 65536], key)),
        ("text", raw_frame(0x81, "κόσμε ✓".as_bytes(), key)),
        (
            "long text",
            raw_frame(0x81, "κόσμε ✓ ".repeat(20).as_bytes(), key),
        ),
        ("invalid text", raw_frame(0x81, b"ok \xed\xa0\x80", key)),
        ("unfinished text", raw_frame(0x81, b"ok \xe2\x82", key)),
        (
            "invalid long text",
            raw_frame(0x81, &[b"a".repeat(70), vec![0xff]].concat(), key),
        ),
        ("rsv1", raw_frame(0xc2, b"x", key)),
        ("rsv3", raw_frame(0x92, b"x", key)),
        ("unmasked", raw_frame(0x82, b"x", None)),
        ("not fin", raw_frame(0x02, b"x", key)),
        ("continuation", raw_frame(0x80, b"x", key)),
        ("at the frame limit", raw_frame(0x82, &[1; 100], key)),
        ("past the frame limit", raw_frame(0x82, &[1; 101], key)),
        (
            "text past the frame limit",
            raw_frame(0x81, &[b'a'; 101], key),
        ),
    ];
    // A 126-form length that fits in 7 bits is not minimal.
    let mut non_minimal = vec![0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4];
    non_minimal.extend([0; 5]);
    wires.push(("non-minimal length", non_minimal));
    // A whole message followed by another in the same buffer.
    wires.push((
        "two messages",
        [raw_frame(0x81, b"one", key), raw_frame(0x82, b"two", key)].concat(),
    ));
    for (name, wire) in wires {
        let config = || {
            if name.contains("limit") {
                Config::default().max_frame_size(100).max_message_size(100)
            } else {
                Config::default()
            }
        };
        let mut whole = server(config());
        let mut bytewise = server(config());
        let at_once = feed_chunked(&mut whole, &wire, wire.len());
        let one_by_one = feed_chunked(&mut bytewise, &wire, 1);
        assert_eq!(at_once, one_by_one, "{name}");
        assert_eq!(
            take_output(&mut whole),
            take_output(&mut bytewise),
            "{name}"
        );
    }
}
