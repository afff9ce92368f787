//! The opening handshake, RFC 6455 §4 (and §3 for URIs).

mod support;

use bytes::Bytes;
use rfc6455::handshake::{
    AcceptOptions, ClientHandshake, ClientRequest, HandshakeLimits, RequestView, ServerHandshake,
    Status, accept, reject, reject_for,
};
use rfc6455::{Config, ConfigError, Connection, HandshakeError, Message, Role};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The RFC's example request (§1.2), with `extra` header lines added.
fn request_with(lines: &[&str]) -> String {
    let mut r = String::from("GET /chat HTTP/1.1\r\n");
    for line in lines {
        r.push_str(line);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

fn good_lines() -> Vec<&'static str> {
    vec![
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Version: 13",
    ]
}

fn without(prefix: &str) -> Vec<&'static str> {
    good_lines()
        .into_iter()
        .filter(|l| !l.starts_with(prefix))
        .collect()
}

fn parse_err(request: &str) -> HandshakeError {
    match ServerHandshake::new().parse(request.as_bytes()) {
        Err(e) => e,
        Ok(status) => panic!("expected an error, got {status:?}"),
    }
}

fn complete(request: &[u8]) -> (RequestView<'_>, usize) {
    match ServerHandshake::new().parse(request).unwrap() {
        Status::Complete(done) => done,
        Status::Partial => panic!("partial"),
    }
}

// §1.2/§4.2.2: the RFC's example exchange, key to accept.
#[test]
fn rfc_example_request_is_accepted() {
    let request = request_with(&good_lines());
    let (view, used) = complete(request.as_bytes());
    assert_eq!(used, request.len());
    let response = accept(&view, &AcceptOptions::new().protocol("chat")).unwrap();
    let text = std::str::from_utf8(&response).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(text.contains("\r\nUpgrade: websocket\r\n"));
    assert!(text.contains("\r\nConnection: Upgrade\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
}

// §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
#[test]
fn method_must_be_get_405() {
    let e = parse_err(&request_with(&good_lines()).replacen("GET", "POST", 1));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::MethodNotAllowed, Some(405))
    );
    assert!(
        std::str::from_utf8(&reject_for(&e))
            .unwrap()
            .contains("\r\nAllow: GET\r\n")
    );
}

#[test]
fn http_1_0_is_refused_505() {
    let e = parse_err(&request_with(&good_lines()).replacen("HTTP/1.1", "HTTP/1.0", 1));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::HttpVersion, Some(505))
    );
}

// §4.2.1 item 2: a Host header field.
#[test]
fn host_is_required_400() {
    let e = parse_err(&request_with(&without("Host")));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::MissingHost, Some(400))
    );
    let mut twice = good_lines();
    twice.push("Host: other.example.com");
    assert_eq!(
        parse_err(&request_with(&twice)),
        HandshakeError::MissingHost
    );
}

// §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket"".
#[test]
fn upgrade_websocket_is_required_426() {
    let e = parse_err(&request_with(&without("Upgrade")));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::NotWebSocketUpgrade, Some(426))
    );
    let response = String::from_utf8(reject_for(&e).to_vec()).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(response.contains("\r\nUpgrade: websocket\r\n"));
    let mut other = without("Upgrade");
    other.push("Upgrade: h2c");
    assert_eq!(
        parse_err(&request_with(&other)),
        HandshakeError::NotWebSocketUpgrade
    );
    // Case-insensitive token.
    let mut caps = without("Upgrade");
    caps.push("Upgrade: WebSocket");
    complete(request_with(&caps).as_bytes());
}

// §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade"".
#[test]
fn connection_must_list_upgrade_400() {
    let e = parse_err(&request_with(&without("Connection")));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::MissingConnectionUpgrade, Some(400))
    );
    for lines in [
        vec!["Connection: keep-alive, Upgrade"],
        vec!["Connection: keep-alive", "Connection: upgrade"],
        vec!["Connection: UPGRADE"],
    ] {
        let mut all = without("Connection");
        all.extend(lines);
        complete(request_with(&all).as_bytes());
    }
    let mut wrong = without("Connection");
    wrong.push("Connection: upgraded");
    assert_eq!(
        parse_err(&request_with(&wrong)),
        HandshakeError::MissingConnectionUpgrade
    );
}

// §4.2.1 item 5: a key that "when decoded, is 16 bytes in length".
#[test]
fn key_must_be_16_bytes_base64_400() {
    let e = parse_err(&request_with(&without("Sec-WebSocket-Key")));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::InvalidKey, Some(400))
    );
    for bad in [
        "Sec-WebSocket-Key: c2hvcnQ=",
        "Sec-WebSocket-Key: not base64 at all!!!!!",
        "Sec-WebSocket-Key: ",
    ] {
        let mut lines = without("Sec-WebSocket-Key");
        lines.push(bad);
        assert_eq!(
            parse_err(&request_with(&lines)),
            HandshakeError::InvalidKey,
            "{bad}"
        );
    }
    let mut twice = good_lines();
    twice.push("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(parse_err(&request_with(&twice)), HandshakeError::InvalidKey);
}

// §4.2.1 item 6 and §4.4: version 13, else 426 with "Sec-WebSocket-Version: 13".
#[test]
fn version_must_be_13_426() {
    for lines in [without("Sec-WebSocket-Version"), {
        let mut l = without("Sec-WebSocket-Version");
        l.push("Sec-WebSocket-Version: 8");
        l
    }] {
        let e = parse_err(&request_with(&lines));
        assert_eq!(
            (e.clone(), e.status()),
            (HandshakeError::UnsupportedVersion, Some(426))
        );
        assert_eq!(e.response_headers(), &[("Sec-WebSocket-Version", "13")]);
        let response = String::from_utf8(reject_for(&e).to_vec()).unwrap();
        assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
}

// §9.1: extension offers follow the grammar.
#[test]
fn malformed_extensions_400() {
    let mut lines = good_lines();
    lines.push("Sec-WebSocket-Extensions: permessage-deflate; =bad");
    let e = parse_err(&request_with(&lines));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::MalformedExtensions, Some(400))
    );
}

#[test]
fn garbage_is_malformed_400() {
    let e = parse_err("GET /chat HTTP/1.1\r\nBad Header\r\n\r\n");
    assert!(matches!(e, HandshakeError::Malformed(_)));
    assert_eq!(e.status(), Some(400));
}

// Header limits: 431, decided without looking past the limit.
#[test]
fn head_limits_431() {
    let limits = HandshakeLimits::default()
        .max_head_bytes(200)
        .max_headers(10);
    let mut server = ServerHandshake::with_limits(limits);
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(300));
    assert_eq!(server.parse(&long.as_bytes()[..200]), Ok(Status::Partial));
    assert_eq!(
        server.parse(&long.as_bytes()[..201]),
        Err(HandshakeError::HeadTooLarge)
    );
    let mut many = good_lines();
    many.extend(["A: 1", "B: 2", "C: 3", "D: 4"]);
    let e = ServerHandshake::with_limits(HandshakeLimits::default().max_headers(10))
        .parse(request_with(&many).as_bytes())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::TooManyHeaders, Some(431))
    );
}

// A request fed one byte at a time is Partial until its last byte.
#[test]
fn request_byte_at_a_time() {
    let request = request_with(&good_lines());
    let mut server = ServerHandshake::new();
    for end in 1..request.len() {
        assert_eq!(
            server.parse(&request.as_bytes()[..end]),
            Ok(Status::Partial),
            "at {end}"
        );
    }
    assert!(
        matches!(server.parse(request.as_bytes()), Ok(Status::Complete((_, n))) if n == request.len())
    );
}

// §4.2.1: what the application inspects before accepting.
#[test]
fn request_view_accessors() {
    let request = "GET /feed/v1?token=abc.def&x&room=7 HTTP/1.1\r\n\
        Host: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Origin: https://app.example.com\r\nAuthorization: Bearer eyJhbGciOi.x.y\r\n\
        Cookie: session=s1; theme=dark\r\nCookie: lang=en\r\n\
        Sec-WebSocket-Protocol: v2.chat\r\nSec-WebSocket-Protocol: v1.chat, json\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
        X-Custom: yes\r\n\r\n";
    let (view, _) = complete(request.as_bytes());
    assert_eq!(view.path(), "/feed/v1");
    assert_eq!(view.query(), Some("token=abc.def&x&room=7"));
    assert_eq!(view.query_param("token"), Some("abc.def"));
    assert_eq!(view.query_param("x"), Some(""));
    assert_eq!(view.query_param("nope"), None);
    assert_eq!(view.host(), Some("example.com:8080"));
    assert_eq!(view.origin(), Some("https://app.example.com"));
    assert_eq!(view.bearer_token(), Some("eyJhbGciOi.x.y"));
    assert_eq!(view.cookie("theme"), Some("dark"));
    assert_eq!(view.cookie("lang"), Some("en"));
    assert_eq!(view.cookie("missing"), None);
    assert_eq!(
        view.protocols().collect::<Vec<_>>(),
        ["v2.chat", "v1.chat", "json"]
    );
    let extensions = view.extensions();
    assert_eq!(
        extensions.iter().map(|e| e.name).collect::<Vec<_>>(),
        ["permessage-deflate", "x-foo"]
    );
    assert_eq!(extensions[0].param("client_max_window_bits"), Some(None));
    assert_eq!(view.header("x-custom"), Some(&b"yes"[..]));
    assert_eq!(view.key(), Some(KEY));
}

// §4.2.2: the chosen subprotocol must be one the client offered; extras are checked.
#[test]
fn accept_options_are_checked() {
    let request = request_with(&good_lines());
    let (view, _) = complete(request.as_bytes());
    assert_eq!(
        accept(&view, &AcceptOptions::new().protocol("mqtt")),
        Err(ConfigError::ProtocolNotOffered("mqtt".into()))
    );
    assert_eq!(
        accept(
            &view,
            &AcceptOptions::new().header("Set-Cookie", "a=b\r\nX-Evil: 1")
        ),
        Err(ConfigError::InvalidHeader("Set-Cookie".into()))
    );
    let response = accept(
        &view,
        &AcceptOptions::new()
            .header("Set-Cookie", "id=1; HttpOnly")
            .extensions("x-foo"),
    )
    .unwrap();
    let text = std::str::from_utf8(&response).unwrap();
    assert!(text.contains("\r\nSet-Cookie: id=1; HttpOnly\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Extensions: x-foo\r\n"));
    assert!(
        !text.contains("Sec-WebSocket-Protocol"),
        "no subprotocol chosen, none sent"
    );
}

// A typical check at the handshake: a missing or wrong token gets 401.
#[test]
fn auth_check_rejects_with_401() {
    fn answer(request: &[u8]) -> Bytes {
        match ServerHandshake::new().parse(request) {
            Ok(Status::Complete((view, _))) if view.query_param("token") == Some("s3cret") => {
                accept(&view, &AcceptOptions::new()).unwrap()
            }
            Ok(Status::Complete(_)) => {
                reject(401, &[("WWW-Authenticate", "Bearer")], b"bad token").unwrap()
            }
            Ok(Status::Partial) => Bytes::new(),
            Err(e) => reject_for(&e),
        }
    }
    let ok = request_with(&good_lines()).replacen("/chat", "/chat?token=s3cret", 1);
    assert!(answer(ok.as_bytes()).starts_with(b"HTTP/1.1 101 "));
    let denied = answer(request_with(&good_lines()).as_bytes());
    assert!(denied.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    assert!(denied.ends_with(b"Content-Length: 9\r\nConnection: close\r\n\r\nbad token"));
    assert_eq!(reject(101, &[], b""), Err(ConfigError::InvalidStatus(101)));
}

// §3: ws and wss URIs.
#[test]
fn client_request_from_uri() {
    let cases = [
        (
            "ws://example.com",
            false,
            "example.com",
            80,
            "/",
            "example.com",
        ),
        (
            "wss://example.com",
            true,
            "example.com",
            443,
            "/",
            "example.com",
        ),
        (
            "ws://Example.COM:8080/a/b?c=d",
            false,
            "example.com",
            8080,
            "/a/b?c=d",
            "example.com:8080",
        ),
        (
            "ws://example.com?x=1",
            false,
            "example.com",
            80,
            "/?x=1",
            "example.com",
        ),
        (
            "wss://example.com:443/p",
            true,
            "example.com",
            443,
            "/p",
            "example.com",
        ),
        ("ws://[::1]/", false, "::1", 80, "/", "[::1]"),
        (
            "ws://[2001:db8::7]:9001/x",
            false,
            "2001:db8::7",
            9001,
            "/x",
            "[2001:db8::7]:9001",
        ),
        (
            "WS://127.0.0.1:9001",
            false,
            "127.0.0.1",
            9001,
            "/",
            "127.0.0.1:9001",
        ),
    ];
    for (uri, secure, host, port, target, host_header) in cases {
        let r = ClientRequest::new(uri).unwrap();
        assert_eq!(
            (
                r.is_secure(),
                r.host(),
                r.port(),
                r.target(),
                r.host_header().as_str()
            ),
            (secure, host, port, target, host_header),
            "{uri}"
        );
    }
    for bad in [
        "http://example.com",
        "example.com",
        "ws://",
        "ws://:80/",
        "ws://example.com:0/",
        "ws://example.com:99999/",
        "ws://example.com/#frag",
        "ws://user:pw@example.com/",
        "ws://exa mple.com/",
        "ws://example.com/a b",
        "ws://[::1/",
        "ws://[zz]/",
    ] {
        assert!(
            matches!(ClientRequest::new(bad), Err(ConfigError::InvalidUri(_))),
            "{bad}"
        );
    }
}

// §4.1: the client's request.
#[test]
fn client_request_bytes() {
    let request = ClientRequest::new("ws://example.com:8080/chat?x=1")
        .unwrap()
        .protocol("chat")
        .protocol("superchat")
        .extension("permessage-deflate; client_max_window_bits")
        .header("Origin", "http://example.com")
        .header("Authorization", "Bearer t");
    let (handshake, bytes) = ClientHandshake::with_nonce(&request, *b"the sample nonce").unwrap();
    assert_eq!(handshake.key(), KEY);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(
        text,
        "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Origin: http://example.com\r\nAuthorization: Bearer t\r\n\r\n"
    );
    // The server accepts what the client builds.
    let (view, _) = complete(&bytes);
    assert_eq!(view.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
    // Fresh keys differ.
    let (a, _) = ClientHandshake::new(&request).unwrap();
    let (b, _) = ClientHandshake::new(&request).unwrap();
    assert_ne!(a.key(), b.key());
    // Header injection and handshake headers are refused.
    for (name, value) in [
        ("X-A", "1\r\nX-B: 2"),
        ("Host", "evil"),
        ("Bad Name", "1"),
        ("Sec-WebSocket-Key", "x"),
    ] {
        let r = ClientRequest::new("ws://h/").unwrap().header(name, value);
        assert!(
            matches!(ClientHandshake::new(&r), Err(ConfigError::InvalidHeader(_))),
            "{name}"
        );
    }
    let r = ClientRequest::new("ws://h/")
        .unwrap()
        .protocol("not a token");
    assert!(matches!(
        ClientHandshake::new(&r),
        Err(ConfigError::InvalidToken(_))
    ));
}

fn response_with(lines: &[&str]) -> Vec<u8> {
    let mut r = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for line in lines {
        r.push_str(line);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

fn good_response() -> Vec<&'static str> {
    vec![
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    ]
}

fn client_for(request: &ClientRequest) -> ClientHandshake {
    ClientHandshake::with_nonce(request, *b"the sample nonce")
        .unwrap()
        .0
}

// §4.1: the client's checks of the server's response.
#[test]
fn client_checks_the_response() {
    let request = ClientRequest::new("ws://h/")
        .unwrap()
        .protocol("chat")
        .extension("x-foo");
    let check = |lines: &[&str]| client_for(&request).receive(&response_with(lines));
    let ok = check(&good_response()).unwrap();
    let Status::Complete((accepted, _)) = ok else {
        panic!()
    };
    assert_eq!(accepted.protocol(), None);
    let cases: [(Vec<&str>, HandshakeError); 6] = [
        (
            vec![
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ],
            HandshakeError::ResponseNotUpgrade,
        ),
        (
            vec![
                "Upgrade: websocket",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ],
            HandshakeError::ResponseNotUpgrade,
        ),
        (
            vec!["Upgrade: websocket", "Connection: Upgrade"],
            HandshakeError::WrongAccept,
        ),
        (
            vec![
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ],
            HandshakeError::WrongAccept,
        ),
        (
            [good_response(), vec!["Sec-WebSocket-Protocol: mqtt"]].concat(),
            HandshakeError::ProtocolNotOffered,
        ),
        (
            [
                good_response(),
                vec!["Sec-WebSocket-Extensions: permessage-deflate"],
            ]
            .concat(),
            HandshakeError::ExtensionNotOffered,
        ),
    ];
    for (lines, error) in cases {
        assert_eq!(check(&lines), Err(error.clone()), "{lines:?}");
        assert_eq!(
            error.status(),
            None,
            "a client-side error has no status to send"
        );
    }
    let two = [
        good_response(),
        vec![
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Protocol: chat",
        ],
    ]
    .concat();
    assert_eq!(check(&two), Err(HandshakeError::ProtocolNotOffered));
    let chosen = [
        good_response(),
        vec![
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Extensions: x-foo; a=1",
        ],
    ]
    .concat();
    let Ok(Status::Complete((accepted, _))) = check(&chosen) else {
        panic!()
    };
    assert_eq!(accepted.protocol(), Some("chat"));
    assert_eq!(accepted.extensions()[0].param("a"), Some(Some("1")));
}

// A non-101 answer is reported with its status, headers and body.
#[test]
fn rejection_is_reported_with_body() {
    let request = ClientRequest::new("ws://h/").unwrap();
    let response =
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\nX-Why: policy\r\n\r\nnot allowed!";
    let mut client = client_for(&request);
    let cut = response.len() - 5;
    assert_eq!(
        client.receive(&response[..cut]),
        Ok(Status::Partial),
        "waits for the body"
    );
    let Err(HandshakeError::Refused(rejected)) = client.receive(response) else {
        panic!()
    };
    assert_eq!(
        (rejected.status, rejected.reason.as_str()),
        (403, "Forbidden")
    );
    assert_eq!(rejected.body, Bytes::from_static(b"not allowed!"));
    assert!(
        rejected
            .headers
            .iter()
            .any(|(n, v)| n == "X-Why" && v == b"policy")
    );
    // A body announced larger than the bound is cut at 16 KiB.
    let mut huge = b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    huge.extend(vec![b'x'; 20_000]);
    let Err(HandshakeError::Refused(rejected)) = client_for(&request).receive(&huge) else {
        panic!()
    };
    assert_eq!(rejected.body.len(), 16 * 1024);
}

// The response byte at a time, and frames that follow it in the same read.
#[test]
fn response_byte_at_a_time_with_leftover() {
    let request = ClientRequest::new("ws://h/").unwrap();
    let mut wire = response_with(&good_response());
    let head = wire.len();
    wire.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let mut client = client_for(&request);
    for end in 1..head {
        assert_eq!(
            client.receive(&wire[..end]),
            Ok(Status::Partial),
            "at {end}"
        );
    }
    let Ok(Status::Complete((_, used))) = client.receive(&wire) else {
        panic!()
    };
    assert_eq!(used, head);
    let mut conn =
        Connection::with_leftover(Role::Client, Config::default(), &wire[used..]).unwrap();
    assert_eq!(conn.next_message(), Ok(Some(Message::text("hi"))));
}

// The whole thing in memory: handshake both ways, then messages through a Pair.
#[test]
fn full_handshake_then_messages() {
    let request = ClientRequest::new("ws://localhost:9001/echo")
        .unwrap()
        .protocol("echo");
    let (mut client_hs, request_bytes) = ClientHandshake::new(&request).unwrap();
    // The client's first frame arrives in the same read as its request.
    let mut early = support::client(Config::default());
    early.send(Message::text("early")).unwrap();
    let mut inbound = request_bytes.to_vec();
    inbound.extend(support::take_output(&mut early));
    let mut server_hs = ServerHandshake::new();
    let Ok(Status::Complete((view, used))) = server_hs.parse(&inbound) else {
        panic!()
    };
    assert_eq!(view.path(), "/echo");
    let response = accept(&view, &AcceptOptions::new().protocol("echo")).unwrap();
    let mut server =
        Connection::with_leftover(Role::Server, Config::default(), &inbound[used..]).unwrap();
    assert_eq!(
        server.next_message(),
        Ok(Some(Message::text("early"))),
        "leftover bytes are not lost"
    );
    let Ok(Status::Complete((accepted, used))) = client_hs.receive(&response) else {
        panic!()
    };
    assert_eq!((accepted.protocol(), used), (Some("echo"), response.len()));
    let mut pair = support::Pair {
        client: early,
        server,
        chunk: 7,
    };
    pair.client.send(Message::binary(vec![1, 2, 3])).unwrap();
    pair.server.send(Message::text("welcome")).unwrap();
    assert_eq!(
        pair.deliver_to_server(),
        (vec![Message::binary(vec![1, 2, 3])], None)
    );
    assert_eq!(
        pair.deliver_to_client(),
        (vec![Message::text("welcome")], None)
    );
}
