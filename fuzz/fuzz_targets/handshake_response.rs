//! `ClientHandshake::receive` on arbitrary response bytes, whole and split:
//! never panics, the split gives the whole's outcome, and an accepted
//! response names only what was offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::handshake::{ClientHandshake, ClientRequest, HandshakeError, Status};

/// The RFC 6455 §1.3 sample nonce: its accept value is
/// `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`, which the seed corpus uses.
const NONCE: [u8; 16] = *b"the sample nonce";

fuzz_target!(|input: (u16, &[u8])| {
    let (split, data) = input;
    let offer = DeflateConfig::default();
    let request = ClientRequest::new("ws://example.com/chat")
        .expect("a valid URI")
        .protocol("chat")
        .protocol("superchat")
        .extension(offer.offer());
    let start = || {
        let (handshake, _) = ClientHandshake::with_nonce(&request, NONCE).expect("builds");
        handshake
    };

    let whole = start().receive(data);
    let split = usize::from(split).min(data.len());
    let mut stepwise = start();
    match stepwise.receive(&data[..split]) {
        Ok(Status::Partial) => {
            assert_eq!(stepwise.receive(data), whole, "split and whole disagree")
        }
        // A rejection that waits for its body may complete on fewer bytes.
        Err(HandshakeError::Refused(_)) => {
            assert!(matches!(whole, Err(HandshakeError::Refused(_))))
        }
        done => assert_eq!(done.is_ok(), whole.is_ok(), "prefix and whole disagree"),
    }

    match whole {
        Ok(Status::Complete((accepted, len))) => {
            assert!(len <= data.len());
            if let Some(protocol) = accepted.protocol() {
                assert!(protocol == "chat" || protocol == "superchat");
            }
            for extension in accepted.extensions() {
                assert!(extension.name.eq_ignore_ascii_case("permessage-deflate"));
            }
            // Checking the answer never panics, whatever its parameters.
            let _ = offer.accept(&accepted.extensions());
        }
        Ok(Status::Partial) => {}
        Err(HandshakeError::Refused(response)) => {
            assert_ne!(response.status, 101);
            assert!(response.body.len() <= 16 * 1024);
        }
        Err(_) => {}
    }
});
