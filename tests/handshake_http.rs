//! The handshake over `http` crate types (feature `http`), and RFC 8441.
#![cfg(feature = "http")]

use rfc6455::HandshakeError;
use rfc6455::handshake::{AcceptOptions, BuildError, ClientHandshake, ClientRequest, RequestView};

fn upgrade_request() -> http::request::Builder {
    http::Request::get("/ws?room=1")
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat")
}

// §4.2.1 on a request an HTTP stack parsed; §4.2.2 response as http::Response.
#[test]
fn http_request_to_101_response() {
    let request = upgrade_request().body(()).unwrap();
    let view = RequestView::from_http(&request).unwrap();
    assert_eq!((view.path(), view.query_param("room")), ("/ws", Some("1")));
    let response = view
        .accept_http(&AcceptOptions::new().protocol("chat"))
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "websocket");
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
}

#[test]
fn http_request_rules_apply() {
    let post = upgrade_request().method("POST").body(()).unwrap();
    assert_eq!(
        RequestView::from_http(&post),
        Err(HandshakeError::MethodNotAllowed)
    );
    let old = upgrade_request()
        .version(http::Version::HTTP_10)
        .body(())
        .unwrap();
    assert_eq!(
        RequestView::from_http(&old),
        Err(HandshakeError::HttpVersion)
    );
    let v8 = upgrade_request()
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    assert_eq!(
        RequestView::from_http(&v8),
        Err(HandshakeError::UnsupportedVersion)
    );
}

fn extended_connect() -> http::request::Builder {
    http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri("https://example.com/chat?x=1")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, json")
        .header("origin", "https://example.com")
}

// RFC 8441 §4-§5: extended CONNECT with :protocol websocket, answered with 200.
#[test]
fn rfc8441_extended_connect() {
    let request = extended_connect().body(()).unwrap();
    let view = RequestView::from_extended_connect(&request, "websocket").unwrap();
    assert_eq!(view.path(), "/chat");
    assert_eq!(
        view.host(),
        Some("example.com"),
        ":authority stands in for Host"
    );
    assert_eq!(view.key(), None, "no key over HTTP/2");
    assert_eq!(view.protocols().collect::<Vec<_>>(), ["chat", "json"]);
    let response = view
        .accept_extended_connect(&AcceptOptions::new().protocol("json"))
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["sec-websocket-protocol"], "json");
    assert!(!response.headers().contains_key("sec-websocket-accept"));
    // The HTTP/1.1 101 cannot be built for it: there is no key.
    assert!(matches!(
        view.accept_http(&AcceptOptions::new()),
        Err(BuildError::InvalidHeader(_))
    ));
}

#[test]
fn rfc8441_rules() {
    let request = extended_connect().body(()).unwrap();
    assert_eq!(
        RequestView::from_extended_connect(&request, "h2c"),
        Err(HandshakeError::NotWebSocketUpgrade)
    );
    let get = extended_connect().method("GET").body(()).unwrap();
    assert_eq!(
        RequestView::from_extended_connect(&get, "websocket"),
        Err(HandshakeError::MethodNotAllowed)
    );
    let v12 = extended_connect()
        .header("sec-websocket-version", "12")
        .body(())
        .unwrap();
    assert_eq!(
        RequestView::from_extended_connect(&v12, "websocket"),
        Err(HandshakeError::UnsupportedVersion)
    );
}

// The client side as http types, checked against the server side as http types.
#[test]
fn client_http_round_trip() {
    let request = ClientRequest::new("ws://example.com:8080/x")
        .unwrap()
        .protocol("chat")
        .header("origin", "http://o");
    let (client, http_request) = ClientHandshake::new_http(&request).unwrap();
    assert_eq!(http_request.uri(), "ws://example.com:8080/x");
    assert_eq!(http_request.headers()["host"], "example.com:8080");
    let view = RequestView::from_http(&http_request).unwrap();
    let response = view
        .accept_http(&AcceptOptions::new().protocol("chat"))
        .unwrap();
    let accepted = client.receive_http(&response).unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));
    let denied = http::Response::builder().status(401).body(()).unwrap();
    let Err(HandshakeError::Refused(rejected)) = client.receive_http(&denied) else {
        panic!()
    };
    assert_eq!(rejected.status, 401);
}
