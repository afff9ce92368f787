//! Arbitrary messages, sent under an arbitrary configuration, arrive equal
//! at a connection in the opposite role, however the bytes are split.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Buf;
use libfuzzer_sys::fuzz_target;
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::{CloseCode, Config, Connection, Message, Role};
use rfc6455_fuzz::FuzzDeflate;

#[derive(Arbitrary, Debug)]
enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    client_sends: bool,
    max_send_frame_size: Option<u16>,
    deflate: Option<FuzzDeflate>,
    threshold: u8,
    items: Vec<Item>,
    close: Option<(u16, String)>,
    splits: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let (sender_role, receiver_role) = if input.client_sends {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let mut config = Config::default()
        .max_send_frame_size(input.max_send_frame_size.map(|n| usize::from(n).max(1)))
        .dangerous_mask_seed(Some(1));
    if input.deflate.is_some() {
        config = config.deflate(Some(
            DeflateConfig::default().threshold(usize::from(input.threshold)),
        ));
    }
    let mut sender = Connection::new(sender_role, config).expect("valid config");
    let mut receiver = Connection::new(receiver_role, Config::default()).expect("valid config");
    if let Some(deflate) = input.deflate {
        sender.set_deflate(deflate.params());
        receiver.set_deflate(deflate.params());
    }

    let mut expected = Vec::new();
    for item in input.items {
        let message = match item {
            Item::Text(text) => Message::text(text),
            Item::Binary(data) => Message::binary(data),
            Item::Ping(data) => Message::Ping(data.into()),
            Item::Pong(data) => Message::Pong(data.into()),
        };
        let too_long = message.is_control() && message.payload().len() > 125;
        match sender.send(message.clone()) {
            Ok(()) => {
                assert!(!too_long, "a control payload over 125 bytes was taken");
                expected.push(message);
            }
            Err(_) => assert!(too_long, "a valid message was refused"),
        }
    }
    if let Some((code, reason)) = input.close {
        let code = CloseCode(code);
        if sender.close(code, &reason).is_ok() {
            assert!(code.is_sendable() && reason.len() <= 123);
            expected.push(Message::Close(Some(rfc6455::CloseFrame::new(code, reason))));
        }
    }

    let mut wire = Vec::new();
    let out = sender.outgoing();
    while out.has_remaining() {
        let n = out.chunk().len();
        wire.extend_from_slice(out.chunk());
        out.advance(n);
    }

    let mut got = Vec::new();
    let mut rest = &wire[..];
    let mut splits = input.splits.into_iter();
    while !rest.is_empty() {
        let n = splits
            .next()
            .map_or(rest.len(), |n| usize::from(n).max(1))
            .min(rest.len());
        receiver.receive(&rest[..n]);
        rest = &rest[n..];
        loop {
            match receiver.next_message() {
                Ok(Some(message)) => got.push(message),
                Ok(None) => break,
                Err(error) => panic!("our own output fails the peer: {error}"),
            }
        }
    }
    assert_eq!(got, expected);
});
