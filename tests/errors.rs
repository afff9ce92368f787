//! Error chains print each message once: a wrapping error either is
//! transparent or says only its own part, and `source()` goes on from there.

use rfc6455::handshake::{ClientHandshake, ClientRequest};
use rfc6455::{Error, HandshakeError, ProtocolError};

/// Every message along `error`'s `source()` chain, outermost first.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(inner) = next {
        messages.push(inner.to_string());
        next = inner.source();
    }
    messages
}

/// No message in the chain contains a later one.
fn assert_no_repeats(error: &(dyn std::error::Error + 'static)) {
    let messages = chain(error);
    for (i, outer) in messages.iter().enumerate() {
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats {inner:?} in {messages:?}"
            );
        }
    }
}

#[test]
fn an_io_error_prints_once() {
    // A port nothing listens on: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    drop(listener);
    let error = rfc6455::blocking::WebSocket::connect(&url).unwrap_err();
    assert!(matches!(error, Error::Io(_)), "{error:?}");
    assert_no_repeats(&error);
    let io: std::io::Error = error.into();
    assert_no_repeats(&io);
}

#[test]
fn a_refused_handshake_prints_once() {
    let (mut client, _) = ClientHandshake::new(&ClientRequest::new("ws://h/").unwrap()).unwrap();
    let refused = client
        .receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        .unwrap_err();
    assert!(matches!(refused, HandshakeError::Refused(_)));
    let error = Error::from(refused);
    assert!(error.to_string().contains("403"), "{error}");
    assert_no_repeats(&error);
}

// A refusal's Debug shows its headers and body as text, not byte arrays.
#[test]
fn a_refusal_debugs_as_text() {
    let (mut client, _) = ClientHandshake::new(&ClientRequest::new("ws://h/").unwrap()).unwrap();
    let refused = client
        .receive(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 14\r\n\r\ntoken required")
        .unwrap_err();
    let debug = format!("{refused:?}");
    assert!(
        debug.contains(r#"("WWW-Authenticate", "Bearer")"#),
        "{debug}"
    );
    assert!(debug.contains(r#"body: "token required""#), "{debug}");
}

#[test]
fn a_protocol_error_prints_once() {
    let error = Error::from(ProtocolError::ReservedBits);
    assert_eq!(error.to_string(), ProtocolError::ReservedBits.to_string());
    assert_no_repeats(&error);
    let io: std::io::Error = error.into();
    assert_no_repeats(&io);
}
