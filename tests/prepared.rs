//! Prepared messages: framed once, sent to many connections by reference;
//! compressed once for every connection that compresses each message
//! afresh; correct where bytes cannot be shared (clients, frame limits,
//! context takeover).

#[path = "support/alloc.rs"]
mod alloc;
mod support;

use alloc::{Meter, thread_allocations};
use bytes::{Buf, Bytes};
use rfc6455::{Config, Connection, Message, PreparedMessage, SendError};
use support::{client, pull, server, take_output};

/// Every queued chunk's address and length, without consuming them.
fn chunks(conn: &mut Connection) -> Vec<(usize, usize)> {
    let out = conn.outgoing();
    let mut slices = [std::io::IoSlice::new(&[]); 64];
    let n = out.chunks_vectored(&mut slices);
    slices[..n]
        .iter()
        .map(|s| (s.as_ptr() as usize, s.len()))
        .collect()
}

// A 64 KiB prepared message to 10 000 server connections: no allocation per
// recipient, and each queues the shared frame itself (no copy).
#[test]
fn sent_to_ten_thousand_servers_without_allocating_or_copying() {
    let prepared = PreparedMessage::binary(vec![7u8; 64 * 1024]);
    let mut conns: Vec<Connection> = (0..10_000).map(|_| server(Config::default())).collect();
    // Warm-up: each queue reaches its working size once.
    for conn in &mut conns {
        conn.send_prepared(&prepared).unwrap();
        let n = conn.outgoing().remaining();
        conn.outgoing().advance(n);
    }
    let meter = Meter::start();
    let before = thread_allocations();
    for conn in &mut conns {
        conn.send_prepared(&prepared).unwrap();
    }
    let allocations = thread_allocations() - before;
    drop(meter);
    assert_eq!(allocations, 0, "allocations for 10 000 recipients");
    let frame = (prepared.frame().as_ptr() as usize, prepared.frame().len());
    for conn in &mut conns {
        assert_eq!(chunks(conn), [frame]);
    }
}

// What a server writes for a prepared message is exactly what it writes
// for the same message sent plainly, small or large, text or binary.
#[test]
fn a_servers_bytes_are_those_of_send() {
    for len in [0, 1, 125, 126, 4096, 4097, 70_000] {
        for text in [false, true] {
            let message = if text {
                Message::text("é".repeat(len / 2))
            } else {
                Message::binary(vec![0xa5; len])
            };
            let prepared = PreparedMessage::from_message(message.clone()).unwrap();
            let mut plain = server(Config::default());
            plain.send(message).unwrap();
            let mut shared = server(Config::default());
            shared.send_prepared(&prepared).unwrap();
            assert_eq!(
                take_output(&mut shared),
                take_output(&mut plain),
                "len {len}"
            );
        }
    }
}

#[test]
fn control_messages_are_not_prepared() {
    assert!(PreparedMessage::from_message(Message::Ping(Bytes::new())).is_none());
    assert!(PreparedMessage::from_message(Message::Close(None)).is_none());
}

// A client masks each frame with its own key; a frame size limit splits.
#[test]
fn clients_and_frame_limits_re_frame_the_shared_payload() {
    let prepared = PreparedMessage::text("x".repeat(5000));
    let expected = prepared.to_message();
    let mut sender = client(Config::default().max_send_frame_size(Some(1000)));
    sender.send_prepared(&prepared).unwrap();
    sender.send_prepared(&prepared).unwrap();
    let wire = take_output(&mut sender);
    assert_eq!(support::frame_shapes(&wire).len(), 10);
    let mut receiver = server(Config::default());
    receiver.receive(&wire);
    assert_eq!(
        pull(&mut receiver),
        (vec![expected.clone(), expected], None)
    );
}

// The rules of send apply: not during a fragmented message, not after
// Close, and a full buffer hands the message back.
#[test]
fn send_rules_apply() {
    let prepared = PreparedMessage::binary(vec![1u8; 100]);
    let mut conn = server(Config::default().max_write_buffer(150));
    conn.send_prepared(&prepared).unwrap();
    conn.send_prepared(&prepared).unwrap();
    assert!(conn.is_write_buffer_full());
    assert_eq!(
        conn.send_prepared(&prepared),
        Err(SendError::Full(Message::binary(vec![1u8; 100])))
    );
    take_output(&mut conn);
    conn.send_fragment(rfc6455::connection::DataKind::Binary, Bytes::new(), false)
        .unwrap();
    assert_eq!(
        conn.send_prepared(&prepared),
        Err(SendError::FragmentInProgress)
    );
    conn.close(rfc6455::CloseCode::NORMAL, "").unwrap();
    assert_eq!(conn.send_prepared(&prepared), Err(SendError::Closed));
}

#[cfg(feature = "deflate")]
mod deflate {
    use proptest::prelude::*;
    use rfc6455::Role;
    use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};

    use super::*;

    fn config(level: u32) -> Config {
        Config::default().deflate(Some(DeflateConfig::default().threshold(0).level(level)))
    }

    fn params(no_context_takeover: bool, window_bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: no_context_takeover,
            server_max_window_bits: window_bits,
            client_max_window_bits: window_bits,
        }
    }

    fn pair(role: Role, level: u32, params: DeflateParams) -> (Connection, Connection) {
        let (mut sender, mut receiver) = match role {
            Role::Server => (server(config(level)), client(config(level))),
            Role::Client => (client(config(level)), server(config(level))),
        };
        sender.set_deflate(params);
        receiver.set_deflate(params);
        (sender, receiver)
    }

    // Server connections without context takeover share one compressed
    // encoding: the payload is compressed once. (1 000 of them: each holds
    // its own deflate state, a few hundred KiB.)
    #[test]
    fn compressed_once_for_a_thousand_fresh_context_servers() {
        let prepared = PreparedMessage::text("all the news that fits ".repeat(3000));
        let mut conns: Vec<Connection> = (0..1_000)
            .map(|_| {
                let mut conn = server(config(6));
                conn.set_deflate(params(true, 15));
                conn
            })
            .collect();
        for conn in &mut conns {
            conn.send_prepared(&prepared).unwrap();
        }
        assert_eq!(prepared.compressed_encodings(), 1);
        let first = take_output(&mut conns[0]);
        assert!(first.len() < prepared.frame().len() / 10, "compressed");
        let mut receiver = client(config(6));
        receiver.set_deflate(params(true, 15));
        receiver.receive(&first);
        assert_eq!(pull(&mut receiver), (vec![prepared.to_message()], None));
        // Another window size is another encoding.
        let mut other = server(config(6));
        other.set_deflate(params(true, 10));
        other.send_prepared(&prepared).unwrap();
        assert_eq!(prepared.compressed_encodings(), 2);
    }

    // Context takeover: each connection compresses for itself (the shared
    // cache stays empty) and consecutive messages still decode.
    #[test]
    fn context_takeover_compresses_per_connection() {
        let prepared = PreparedMessage::binary(vec![3u8; 10_000]);
        for role in [Role::Server, Role::Client] {
            let (mut sender, mut receiver) = pair(role, 6, params(false, 15));
            for _ in 0..3 {
                sender.send_prepared(&prepared).unwrap();
            }
            receiver.receive(&take_output(&mut sender));
            let expected = vec![prepared.to_message(); 3];
            assert_eq!(pull(&mut receiver), (expected, None));
        }
        assert_eq!(prepared.compressed_encodings(), 0);
    }

    // An uncompressed prepared message goes out plain on a deflate connection.
    #[test]
    fn opting_out_sends_plain() {
        let prepared = PreparedMessage::text("secret=hunter2 ".repeat(100)).uncompressed();
        let (mut sender, _) = pair(Role::Server, 6, params(true, 15));
        sender.send_prepared(&prepared).unwrap();
        assert_eq!(take_output(&mut sender), prepared.frame().to_vec());
        assert_eq!(prepared.compressed_encodings(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        // Any payload, role, context setting, window and frame limit: what
        // was sent prepared decodes to the message, and a fresh-context
        // server writes exactly the bytes `send` writes.
        #[test]
        fn prepared_matches_send(
            payload in proptest::collection::vec(0u8..4, 0..6_000),
            server_role in any::<bool>(),
            fresh in any::<bool>(),
            window_bits in 9u8..=15,
            frame_limit in proptest::option::of(100usize..5000),
            messages in 1usize..4,
        ) {
            let role = if server_role { Role::Server } else { Role::Client };
            let prepared = PreparedMessage::binary(payload.clone());
            let (mut sender, mut receiver) = pair(role, 6, params(fresh, window_bits));
            let (mut plain, _) = pair(role, 6, params(fresh, window_bits));
            if let Some(limit) = frame_limit {
                sender = rebuild(sender, role, limit, fresh, window_bits);
                plain = rebuild(plain, role, limit, fresh, window_bits);
            }
            for _ in 0..messages {
                sender.send_prepared(&prepared).unwrap();
                plain.send(Message::binary(payload.clone())).unwrap();
            }
            let wire = take_output(&mut sender);
            if role == Role::Server {
                prop_assert_eq!(&wire, &take_output(&mut plain));
            }
            receiver.receive(&wire);
            let expected = vec![Message::binary(payload); messages];
            prop_assert_eq!(pull(&mut receiver), (expected, None));
        }
    }

    /// A sender like `conn` with a frame size limit.
    fn rebuild(
        conn: Connection,
        role: Role,
        limit: usize,
        fresh: bool,
        window_bits: u8,
    ) -> Connection {
        drop(conn);
        let mut conn = match role {
            Role::Server => server(config(6).max_send_frame_size(Some(limit))),
            Role::Client => client(config(6).max_send_frame_size(Some(limit))),
        };
        conn.set_deflate(params(fresh, window_bits));
        conn
    }
}
