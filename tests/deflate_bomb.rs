//! A decompression bomb against a counting allocator: memory stays bounded
//! by max_message_size, however far the data would inflate (RFC 7692 §8.1
//! with RFC 6455 §10.4).
#![cfg(feature = "deflate")]

#[path = "support/alloc.rs"]
mod alloc;
mod support;

use alloc::Meter;

use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
use rfc6455::{Config, Connection, Message, ProtocolError, Role};

const PARAMS: DeflateParams = DeflateParams {
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

#[test]
fn bomb_is_stopped_within_the_message_limit() {
    // 16 MiB of zeros compresses to about 16 KiB: a thousandfold bomb.
    let mut sender = Connection::new(
        Role::Client,
        Config::default()
            .dangerous_mask_seed(Some(7))
            .deflate(Some(DeflateConfig::default().level(9).threshold(0))),
    )
    .unwrap();
    sender.set_deflate(PARAMS);
    sender.send(Message::binary(vec![0u8; 16 << 20])).unwrap();
    let wire = support::take_output(&mut sender);
    drop(sender);
    assert!(wire.len() < 256 * 1024, "bomb is {} bytes", wire.len());

    let limit = 1 << 20;
    let mut receiver = Connection::new(
        Role::Server,
        Config::default()
            .max_frame_size(limit)
            .max_message_size(limit),
    )
    .unwrap();
    receiver.set_deflate(PARAMS);
    let meter = Meter::start();
    receiver.receive(&wire);
    assert_eq!(receiver.next_message(), Err(ProtocolError::MessageTooBig));
    // The input itself, the inflater's state, and the output buffer, which
    // never holds more than limit + 1 bytes; while it grows, the old buffer
    // is live next to the new one. Measured: about 2.1 MB for a 1 MiB limit.
    meter.assert_below(wire.len() + 2 * limit + 512 * 1024, "inflating a bomb");
}
