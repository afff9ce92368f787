//! permessage-deflate, RFC 7692.
#![cfg(feature = "deflate")]

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
use rfc6455::frame::OpCode;
use rfc6455::handshake::Extension;
use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError, Role};
use support::*;

fn ext(name: &str, params: &[(&'static str, Option<&'static str>)]) -> Extension<'static> {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    Extension {
        name,
        params: params
            .iter()
            .map(|(n, v)| (*n, v.map(std::borrow::Cow::Borrowed)))
            .collect(),
    }
}

/// A configuration that limits no window, so the tables below show only
/// what the offers ask for.
fn unlimited() -> DeflateConfig {
    DeflateConfig::default()
        .client_max_window_bits(15)
        .server_max_window_bits(15)
}

// By default both windows are limited to 14 bits: the server's always, the
// client's where its offer allows a limit, as browsers' offers do.
#[test]
fn default_windows_are_14_bits() {
    let pmd = "permessage-deflate";
    let server = DeflateConfig::default();
    let answer = |offer| server.negotiate(&[offer]).map(|(answer, _)| answer);
    assert_eq!(
        answer(ext(pmd, &[("client_max_window_bits", None)])).as_deref(),
        Some("permessage-deflate; server_max_window_bits=14; client_max_window_bits=14")
    );
    assert_eq!(
        answer(ext(pmd, &[])).as_deref(),
        Some("permessage-deflate; server_max_window_bits=14")
    );
    assert_eq!(
        DeflateConfig::default().offer(),
        "permessage-deflate; server_max_window_bits=14; client_max_window_bits=14"
    );
}

// §7.1: the server's choice among offers, parameter by parameter.
#[test]
fn server_negotiation_table() {
    let server = unlimited();
    let pmd = "permessage-deflate";
    let cases: Vec<(Vec<Extension<'static>>, Option<&str>)> = vec![
        (vec![ext(pmd, &[])], Some("permessage-deflate")),
        (
            vec![ext(pmd, &[("client_max_window_bits", None)])],
            Some("permessage-deflate"),
        ),
        (
            vec![ext(pmd, &[("client_max_window_bits", Some("10"))])],
            Some("permessage-deflate; client_max_window_bits=10"),
        ),
        (
            vec![ext(pmd, &[("server_max_window_bits", Some("12"))])],
            Some("permessage-deflate; server_max_window_bits=12"),
        ),
        (
            vec![ext(
                pmd,
                &[
                    ("server_no_context_takeover", None),
                    ("client_no_context_takeover", None),
                ],
            )],
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        // Unknown, repeated, valueless or out-of-range parameters decline that offer...
        (vec![ext(pmd, &[("x", None)])], None),
        (
            vec![ext(
                pmd,
                &[
                    ("server_no_context_takeover", None),
                    ("server_no_context_takeover", None),
                ],
            )],
            None,
        ),
        (vec![ext(pmd, &[("server_max_window_bits", None)])], None),
        (
            vec![ext(pmd, &[("server_max_window_bits", Some("16"))])],
            None,
        ),
        (
            vec![ext(pmd, &[("client_max_window_bits", Some("7"))])],
            None,
        ),
        (
            vec![ext(pmd, &[("server_max_window_bits", Some("010"))])],
            None,
        ),
        // ... zlib cannot compress with a window of 8 ...
        (
            vec![ext(pmd, &[("server_max_window_bits", Some("8"))])],
            None,
        ),
        // ... and the next acceptable offer is taken.
        (
            vec![
                ext(pmd, &[("x", None)]),
                ext(pmd, &[("server_no_context_takeover", None)]),
            ],
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (vec![ext("x-other", &[])], None),
    ];
    for (offers, expected) in cases {
        let got = server.negotiate(&offers).map(|(answer, _)| answer);
        assert_eq!(got.as_deref(), expected, "{offers:?}");
    }
    // A client window of 8 may be accepted: we only inflate it (with 9).
    let (_, params) = server
        .negotiate(&[ext(pmd, &[("client_max_window_bits", Some("8"))])])
        .unwrap();
    assert_eq!(params.client_max_window_bits, 8);
}

// §7.1: the client's checks of the answer.
#[test]
fn client_accepts_only_what_it_allowed() {
    let client = unlimited();
    let pmd = "permessage-deflate";
    assert_eq!(client.accept(&[]), Ok(None));
    let ok = client
        .accept(&[ext(
            pmd,
            &[
                ("server_no_context_takeover", None),
                ("client_max_window_bits", Some("9")),
            ],
        )])
        .unwrap()
        .unwrap();
    assert_eq!(
        ok,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 9
        }
    );
    for bad in [
        vec![ext(pmd, &[("client_max_window_bits", None)])],
        vec![ext(pmd, &[("client_max_window_bits", Some("8"))])],
        vec![ext(pmd, &[("mystery", None)])],
        vec![ext(pmd, &[]), ext(pmd, &[])],
    ] {
        assert!(client.accept(&bad).is_err(), "{bad:?}");
    }
    // A client that does not allow a limited window refuses one.
    let strict = unlimited().client_max_window_bits(12);
    assert!(
        strict
            .accept(&[ext(pmd, &[("client_max_window_bits", Some("13"))])])
            .is_err()
    );
    assert!(unlimited().offer().contains("client_max_window_bits"));
}

fn pair(params: DeflateParams, threshold: usize) -> Pair {
    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(threshold)));
    let mut pair = Pair::with_configs(config.clone(), config);
    pair.client.set_deflate(params);
    pair.server.set_deflate(params);
    pair
}

fn params(bits: u8, no_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_takeover,
        client_no_context_takeover: no_takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    }
}

// §7.2: round trips at every window size, with and without context takeover.
#[test]
fn round_trips_at_every_window_and_context_mode() {
    let text = "permessage-deflate compresses repeated text. ".repeat(200);
    for bits in 9..=15 {
        for no_takeover in [false, true] {
            let mut p = pair(params(bits, no_takeover), 0);
            for _ in 0..3 {
                p.client.send(Message::text(text.clone())).unwrap();
                p.server
                    .send(Message::binary(text.clone().into_bytes()))
                    .unwrap();
            }
            let wire = take_output(&mut p.client);
            let frames = parse_frames(&wire);
            assert!(
                frames.iter().all(|(h, _)| h.rsv1),
                "RSV1 on every (single-frame) message"
            );
            assert!(
                wire.len() < text.len(),
                "compressed: {} < {}",
                wire.len(),
                3 * text.len()
            );
            assert_eq!(
                feed_chunked(&mut p.server, &wire, 100),
                (vec![Message::text(text.clone()); 3], None)
            );
            assert_eq!(
                p.deliver_to_client(),
                (vec![Message::binary(text.clone().into_bytes()); 3], None)
            );
        }
    }
}

// §6: RSV1 on the first frame only; control frames are never compressed;
// the threshold and per-message opt-out leave messages uncompressed.
#[test]
fn rsv1_placement_threshold_and_opt_out() {
    let config = Config::default()
        .max_send_frame_size(Some(10))
        .deflate(Some(DeflateConfig::default().threshold(50)));
    let mut server = Connection::new(Role::Server, config).unwrap();
    server.set_deflate(params(15, false));
    server.send(Message::text("a".repeat(500))).unwrap();
    server.send(Message::text("short")).unwrap();
    server
        .send_uncompressed(Message::text("b".repeat(500)))
        .unwrap();
    server
        .send(Message::Ping(Bytes::from_static(
            b"ping ping ping ping ping ping ping ping ping ping ping",
        )))
        .unwrap();
    let frames = parse_frames(&take_output(&mut server));
    let rsv1: Vec<bool> = frames.iter().map(|(h, _)| h.rsv1).collect();
    assert!(rsv1[0], "first frame of a compressed message");
    assert!(frames.iter().skip(1).all(|(h, _)| !h.rsv1), "{rsv1:?}");
}

// §6.1: RSV1 on a continuation or control frame is a protocol error.
#[test]
fn rsv1_in_the_wrong_place_fails_1002() {
    for wire in [raw_frame(0xc9, b"", Some([1, 2, 3, 4])), {
        let mut w = client_frame(OpCode::Text, false, b"a");
        w.extend(raw_frame(0xc0, b"b", Some([1, 2, 3, 4])));
        w
    }] {
        let mut s = server(Config::default());
        s.set_deflate(params(15, false));
        assert_fails(
            &mut s,
            &wire,
            ProtocolError::ReservedBits,
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

// §7.2.3.1: the RFC's "Hello" on the wire, both ways.
#[test]
fn rfc_hello_on_the_wire() {
    let mut c = client(Config::default());
    c.set_deflate(params(15, false));
    c.receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    assert_eq!(c.next_message(), Ok(Some(Message::text("Hello"))));
    // §7.2.3.2: the second "Hello" with context takeover.
    c.receive(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(c.next_message(), Ok(Some(Message::text("Hello"))));
    let mut s = Connection::new(
        Role::Server,
        Config::default().deflate(Some(DeflateConfig::default().threshold(0))),
    )
    .unwrap();
    s.set_deflate(params(15, false));
    s.send(Message::text("Hello")).unwrap();
    assert_eq!(
        take_output(&mut s),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

// A small frame that inflates far past the limit stops there with 1009.
#[test]
fn deflate_bomb_fails_1009() {
    let mut sender = Connection::new(
        Role::Client,
        Config::default()
            .dangerous_mask_seed(Some(1))
            .deflate(Some(DeflateConfig::default().level(9).threshold(0))),
    )
    .unwrap();
    sender.set_deflate(params(15, false));
    sender.send(Message::binary(vec![0u8; 8 << 20])).unwrap();
    let wire = take_output(&mut sender);
    assert!(wire.len() < 16 * 1024, "{} bytes on the wire", wire.len());
    let mut s = server(
        Config::default()
            .max_frame_size(1 << 20)
            .max_message_size(1 << 20),
    );
    s.set_deflate(params(15, false));
    assert_fails(
        &mut s,
        &wire,
        ProtocolError::MessageTooBig,
        CloseCode::MESSAGE_TOO_BIG,
    );
}

// Inflated text is UTF-8 checked, failing with 1007.
#[test]
fn inflated_text_is_checked() {
    let mut sender = Connection::new(
        Role::Client,
        Config::default()
            .dangerous_mask_seed(Some(1))
            .deflate(Some(DeflateConfig::default().threshold(0))),
    )
    .unwrap();
    sender.set_deflate(params(15, false));
    // Binary bytes that are not UTF-8, re-labelled as text on the wire.
    sender
        .send(Message::binary(&b"ok \xff not utf-8"[..]))
        .unwrap();
    let mut wire = take_output(&mut sender);
    wire[0] = (wire[0] & 0xf0) | 0x1;
    let mut s = server(Config::default());
    s.set_deflate(params(15, false));
    assert_fails(
        &mut s,
        &wire,
        ProtocolError::InvalidUtf8,
        CloseCode::INVALID_PAYLOAD,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Any messages, any window, any context mode, any fragmentation: unchanged after the round trip.
    #[test]
    fn compressed_round_trip(
        messages in proptest::collection::vec(prop_oneof![
            any::<String>().prop_map(Message::text),
            proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
        ], 1..6),
        bits in 9u8..=15,
        no_takeover in any::<bool>(),
        frame_size in proptest::option::of(1usize..200),
        chunk in 1usize..500,
    ) {
        let config = Config::default().max_send_frame_size(frame_size).deflate(Some(DeflateConfig::default().threshold(0)));
        let mut p = Pair::with_configs(config.clone(), config);
        p.client.set_deflate(params(bits, no_takeover));
        p.server.set_deflate(params(bits, no_takeover));
        p.chunk = chunk;
        for m in &messages {
            p.client.send(m.clone()).unwrap();
        }
        prop_assert_eq!(p.deliver_to_server(), (messages, None));
    }
}
