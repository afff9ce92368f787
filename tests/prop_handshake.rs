//! Property tests: the handshake parsers never panic, and any split of the
//! input gives the same result (RFC 6455 §4).

use proptest::prelude::*;
use rfc6455::handshake::{ClientHandshake, ClientRequest, ServerHandshake, Status};

const REQUEST: &str = "GET /chat?a=b HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

/// Valid messages with arbitrary damage, or plain noise.
fn mangled(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6).prop_map(move |edits| {
            let mut bytes = base.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            bytes
        }),
        (any::<usize>(), any::<usize>()).prop_map(move |(a, b)| {
            // Cut a piece out.
            let bytes = base.as_bytes();
            let (a, b) = (a % bytes.len(), b % bytes.len());
            let (lo, hi) = (a.min(b), a.max(b));
            [&bytes[..lo], &bytes[hi..]].concat()
        }),
    ]
}

fn server_outcome(input: &[u8], cut: usize) -> String {
    let mut server = ServerHandshake::new();
    let cut = cut % (input.len() + 1);
    if let Ok(Status::Complete((view, n))) = server.parse(&input[..cut]) {
        return format!("complete {n} {:?}", view.target());
    }
    match server.parse(input) {
        Ok(Status::Complete((view, n))) => format!("complete {n} {:?}", view.target()),
        Ok(Status::Partial) => "partial".to_owned(),
        Err(e) => format!("error {e:?} {:?}", e.status()),
    }
}

fn client_outcome(input: &[u8], cut: usize) -> String {
    let request = ClientRequest::new("ws://h/").unwrap().protocol("chat");
    let (mut client, _) = ClientHandshake::with_nonce(&request, *b"the sample nonce").unwrap();
    let cut = cut % (input.len() + 1);
    if let Ok(Status::Complete((accepted, n))) = client.receive(&input[..cut]) {
        return format!("complete {n} {:?}", accepted.protocol());
    }
    match client.receive(input) {
        Ok(Status::Complete((accepted, n))) => format!("complete {n} {:?}", accepted.protocol()),
        Ok(Status::Partial) => "partial".to_owned(),
        Err(e) => format!("error {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn server_parse_never_panics_and_ignores_splits(input in mangled(REQUEST), cut in any::<usize>()) {
        let whole = server_outcome(&input, input.len());
        prop_assert_eq!(server_outcome(&input, cut), whole);
    }

    #[test]
    fn client_receive_never_panics_and_ignores_splits(input in mangled(RESPONSE), cut in any::<usize>()) {
        let whole = client_outcome(&input, input.len());
        prop_assert_eq!(client_outcome(&input, cut), whole);
    }

    #[test]
    fn uri_parsing_never_panics(uri in "(ws|wss|http)://[a-z0-9:\\[\\]@#?/%. -]{0,40}") {
        let _ = ClientRequest::new(&uri);
    }
}
