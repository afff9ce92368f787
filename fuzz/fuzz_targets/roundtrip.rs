//! Arbitrary messages, sent under an arbitrary configuration (some as
//! prepared messages), arrive equal at a connection in the opposite role,
//! however the bytes are split and however much is written between sends.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Buf;
use libfuzzer_sys::fuzz_target;
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::{CloseCode, Config, Connection, Message, PreparedMessage, Role};
use rfc6455_fuzz::FuzzDeflate;

#[derive(Arbitrary, Debug)]
enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Prepared(Vec<u8>),
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
    /// Bytes written (vectored) after each item.
    writes: Vec<u16>,
}

/// Moves up to `limit` bytes of `sender`'s output to `wire`, as vectored
/// writes of at most four buffers do.
fn write(sender: &mut Connection, wire: &mut Vec<u8>, limit: usize) {
    let out = sender.outgoing();
    let mut written = 0;
    while written < limit && out.has_remaining() {
        let mut slices = [std::io::IoSlice::new(&[]); 4];
        let count = out.chunks_vectored(&mut slices);
        let mut n = 0;
        for slice in &slices[..count] {
            let take = slice.len().min(limit - written - n);
            wire.extend_from_slice(&slice[..take]);
            n += take;
        }
        out.advance(n);
        written += n;
    }
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
    let mut wire = Vec::new();
    let mut writes = input.writes.into_iter();
    for item in input.items {
        write(
            &mut sender,
            &mut wire,
            usize::from(writes.next().unwrap_or(0)),
        );
        let message = match item {
            Item::Prepared(data) => {
                let prepared = PreparedMessage::binary(data.clone());
                sender
                    .send_prepared(&prepared)
                    .expect("a prepared message was refused");
                expected.push(Message::binary(data));
                continue;
            }
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
