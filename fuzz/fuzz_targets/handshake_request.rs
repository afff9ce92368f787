//! `ServerHandshake::parse` on arbitrary request bytes, whole and split:
//! never panics, the split gives the whole's outcome, an accepted request
//! gets the right `Sec-WebSocket-Accept`, a refused one a well-formed answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::handshake::{
    AcceptOptions, HandshakeLimits, ServerHandshake, Status, accept, accept_key, reject_for,
};

fuzz_target!(|input: (u16, u16, u8, &[u8])| {
    let (split, max_bytes, max_headers, data) = input;
    let limits = HandshakeLimits::default()
        .max_head_bytes(usize::from(max_bytes).max(16))
        .max_headers(usize::from(max_headers).max(1));

    let whole = ServerHandshake::with_limits(limits).parse(data);

    // Fed in two reads, the second with all bytes so far.
    let split = usize::from(split).min(data.len());
    let mut stepwise = ServerHandshake::with_limits(limits);
    let first = stepwise.parse(&data[..split]);
    let outcome = match first {
        Ok(Status::Partial) => stepwise.parse(data),
        // A head complete (or wrong) in a prefix is the same in the whole.
        done => {
            assert_eq!(done, whole, "prefix and whole disagree");
            return;
        }
    };
    assert_eq!(outcome, whole, "split and whole disagree");

    match whole {
        Ok(Status::Partial) => {}
        Ok(Status::Complete((view, len))) => {
            assert!(len <= data.len());
            let key = view.key().expect("a valid request has a key");
            let mut options = AcceptOptions::new();
            if let Some(protocol) = view.protocols().next() {
                options = options.protocol(protocol);
            }
            if let Some((answer, _)) = DeflateConfig::default().negotiate(&view.extensions()) {
                options = options.extensions(answer);
            }
            let response = accept(&view, &options).expect("accepting a valid request works");
            let text = String::from_utf8(response.to_vec()).expect("responses are ASCII");
            assert!(text.starts_with("HTTP/1.1 101 "));
            assert!(text.contains(&format!("Sec-WebSocket-Accept: {}\r\n", accept_key(key))));
            assert!(text.ends_with("\r\n\r\n"));
        }
        Err(error) => {
            if let Some(status) = error.status() {
                let response = reject_for(&error);
                let text = String::from_utf8(response.to_vec()).expect("responses are ASCII");
                assert!(text.starts_with(&format!("HTTP/1.1 {status} ")));
            }
        }
    }
});
