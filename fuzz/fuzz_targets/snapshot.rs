//! The snapshot decoder: any bytes, raw or sealed with a valid magic,
//! version and checksum (so the fields themselves are explored), are
//! refused with an error or thawed into a connection that works: frozen
//! again it gives a snapshot that thaws, and freezing that one gives the
//! same bytes; the input's remainder then drives it without a panic.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rfc6455::connection::SNAPSHOT_VERSION;
use rfc6455::{Config, Connection};

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fuzz_target!(|input: (bool, Vec<u8>, Vec<u8>)| {
    let (sealed, fields, traffic) = input;
    let snapshot = if sealed {
        let mut body = b"RFC6455S".to_vec();
        body.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        body.extend_from_slice(&fields);
        let sum = fnv(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        body
    } else {
        fields
    };
    let now = Instant::now();
    let config = Config::default().max_message_size(1 << 16);
    let Ok(mut conn) = Connection::thaw(&snapshot, config.clone(), now) else {
        return;
    };
    let again = conn.freeze(now).expect("a thawed connection freezes");
    let mut twice = Connection::thaw(&again, config, now).expect("its snapshot thaws");
    assert_eq!(
        twice.freeze(now).ok(),
        Some(again),
        "freeze and thaw are stable"
    );
    conn.handle_timeout(now + Duration::from_millis(10));
    for chunk in traffic.chunks(7) {
        conn.receive(chunk);
        while let Ok(Some(_)) = conn.next_message() {}
        conn.handle_timeout(now + Duration::from_secs(1));
        let _ = conn.outgoing();
    }
    let _ = conn.send(rfc6455::Message::text("after"));
    let _ = conn.stats();
});
