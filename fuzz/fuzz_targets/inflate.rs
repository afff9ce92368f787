//! Compressed frames (RSV1) with arbitrary payloads, to a connection with
//! permessage-deflate: never panics, never delivers more than the message
//! limit, and fails with 1007 or 1009 on what cannot be inflated.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::{Config, Connection, Message, ProtocolError, Role};
use rfc6455_fuzz::{FuzzDeflate, encode_raw};

#[derive(Arbitrary, Debug)]
struct Frame {
    first: bool,
    fin: bool,
    binary: bool,
    compressed: bool,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    max_message_size: u16,
    deflate: FuzzDeflate,
    frames: Vec<Frame>,
}

fuzz_target!(|input: Input| {
    let limit = usize::from(input.max_message_size).max(1);
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let config = Config::default()
        .max_frame_size(limit)
        .max_message_size(limit);
    let mut conn = Connection::new(role, config).expect("valid config");
    conn.set_deflate(input.deflate.params());
    let mask = input.server.then_some([1, 2, 3, 4]);
    for frame in input.frames {
        let opcode = match (frame.first, frame.binary) {
            (false, _) => 0x0,
            (true, false) => 0x1,
            (true, true) => 0x2,
        };
        let b0 =
            opcode | if frame.fin { 0x80 } else { 0 } | if frame.compressed { 0x40 } else { 0 };
        conn.receive(&encode_raw(b0, mask, &frame.payload));
        loop {
            match conn.next_message() {
                Ok(Some(Message::Text(text))) => assert!(text.len() <= limit),
                Ok(Some(Message::Binary(data))) => assert!(data.len() <= limit),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(error) => {
                    assert!(
                        !matches!(
                            error,
                            ProtocolError::AbnormalClosure | ProtocolError::IdleTimeout
                        ),
                        "{error}"
                    );
                    return;
                }
            }
        }
    }
});
