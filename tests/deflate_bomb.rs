//! A decompression bomb against a counting allocator: memory stays bounded
//! by max_message_size, however far the data would inflate (RFC 7692 §8.1
//! with RFC 6455 §10.4).
#![cfg(feature = "deflate")]

#[path = "support/alloc.rs"]
mod alloc;
mod support;

use alloc::Meter;

use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
use rfc6455::{Config, Connection, Message, OverLimit, ProtocolError, RateLimit, RateLimits, Role};

const PARAMS: DeflateParams = DeflateParams {
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

/// 16 MiB of zeros, compressed to about 16 KiB: a thousandfold bomb.
fn bomb() -> Vec<u8> {
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
    assert!(wire.len() < 256 * 1024, "bomb is {} bytes", wire.len());
    wire
}

#[test]
fn bomb_is_stopped_within_the_message_limit() {
    let wire = bomb();

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

// Under an inflated-bytes rate limit of 1 MiB/s with a 1 MiB burst, the
// same kind of bomb (16 MiB of zeros) stops at the limit with 1008, well
// before the 64 MiB message limit, in both modes: pausing lets one message
// run one burst into debt, closing none.
#[test]
fn bomb_is_stopped_by_an_inflated_bytes_limit() {
    let wire = bomb();
    let burst = 1 << 20;
    for (action, allowance) in [(OverLimit::Pause, 2 * burst), (OverLimit::Close, burst)] {
        let limits = RateLimits::default()
            .inflated_bytes(Some(RateLimit::new(burst as u64, burst as u64)))
            .action(action);
        let mut receiver =
            Connection::new(Role::Server, Config::default().rate_limits(limits)).unwrap();
        receiver.set_deflate(PARAMS);
        receiver.handle_timeout(std::time::Instant::now());
        let meter = Meter::start();
        receiver.receive(&wire);
        assert_eq!(receiver.next_message(), Err(ProtocolError::RateLimited));
        assert_eq!(receiver.stats().rate_limited, 1);
        // As above, with the allowance in place of the message limit.
        meter.assert_below(
            wire.len() + 2 * allowance + 512 * 1024,
            "inflating under a limit",
        );
    }
}
