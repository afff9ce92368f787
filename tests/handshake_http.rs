//! The handshake over `http` crate types (feature `http`), and RFC 8441.
#![cfg(feature = "http")]

use rfc6455::handshake::{AcceptOptions, ClientHandshake, ClientRequest, RequestView};
use rfc6455::{ConfigError, HandshakeError};

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
        Err(ConfigError::InvalidHeader(_))
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

// RFC 8441 from the client's side, checked against the server's side: the
// extended CONNECT our client builds is one our server accepts, with
// deflate negotiated; a refusal, an unoffered subprotocol or extension in
// the answer are errors.
#[test]
fn client_extended_connect_round_trip() {
    let request = ClientRequest::new("wss://example.com:8443/chat?x=1")
        .unwrap()
        .protocol("chat")
        .extension("permessage-deflate; client_max_window_bits")
        .header("origin", "https://example.com");
    let (client, connect) = ClientHandshake::new_extended_connect(&request).unwrap();
    assert_eq!(connect.method(), http::Method::CONNECT);
    assert_eq!(connect.version(), http::Version::HTTP_2);
    assert_eq!(connect.uri(), "https://example.com:8443/chat?x=1");
    for absent in ["host", "upgrade", "connection", "sec-websocket-key"] {
        assert!(!connect.headers().contains_key(absent), "{absent}");
    }
    let view = RequestView::from_extended_connect(&connect, "websocket").unwrap();
    assert_eq!(view.host(), Some("example.com:8443"));
    assert_eq!(view.query(), Some("x=1"));
    assert_eq!(view.protocols().collect::<Vec<_>>(), ["chat"]);
    assert_eq!(view.header("origin"), Some(&b"https://example.com"[..]));
    let response = view
        .accept_extended_connect(
            &AcceptOptions::new()
                .protocol("chat")
                .extensions("permessage-deflate"),
        )
        .unwrap();
    let accepted = client.receive_extended_connect(&response).unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));
    assert_eq!(accepted.extensions().len(), 1);

    // Any 2xx accepts; anything else is a refusal with its status.
    let no_content = http::Response::builder().status(204).body(()).unwrap();
    assert!(client.receive_extended_connect(&no_content).is_ok());
    let denied = http::Response::builder().status(403).body(()).unwrap();
    let Err(HandshakeError::Refused(refusal)) = client.receive_extended_connect(&denied) else {
        panic!("a 403 accepted")
    };
    assert_eq!(refusal.status, 403);
    // Only what was offered may be chosen.
    let other = http::Response::builder()
        .status(200)
        .header("sec-websocket-protocol", "json")
        .body(())
        .unwrap();
    assert_eq!(
        client.receive_extended_connect(&other),
        Err(HandshakeError::ProtocolNotOffered)
    );
    let extension = http::Response::builder()
        .status(200)
        .header("sec-websocket-extensions", "x-unknown")
        .body(())
        .unwrap();
    assert_eq!(
        client.receive_extended_connect(&extension),
        Err(HandshakeError::ExtensionNotOffered)
    );
}

/// The handler of the `handshake::http` module docs, as documented.
#[cfg(all(feature = "tokio", feature = "deflate"))]
mod hyper_upgrade {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Request, Response, body::Incoming};
    use hyper_util::rt::TokioIo;
    use rfc6455::extensions::deflate::{DeflateConfig, NAME};
    use rfc6455::handshake::http::upgrade;
    use rfc6455::handshake::{AcceptOptions, Rejection, RequestView};
    use rfc6455::rt::tokio::{WebSocketStream, connect_async};
    use rfc6455::{ClientBuilder, Config, Error, HandshakeError, Message, ServerBuilder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn handle(
        mut request: Request<Incoming>,
        server: &ServerBuilder,
    ) -> Response<Full<Bytes>> {
        let (response, conn) = match upgrade(&request, server) {
            Ok(accepted) => accepted,
            Err(refused) => return refused.into_response().map(Full::new),
        };
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(&mut request).await else {
                return;
            };
            let mut ws = WebSocketStream::new(TokioIo::new(upgraded), conn);
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    break;
                }
            }
        });
        response.map(|()| Full::default())
    }

    /// A hyper 1 HTTP/1.1 server running `handle` with `server`; its `ws://` URL.
    async fn hyper_server(server: ServerBuilder) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(handle(request, &server).await) }
                    });
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await
                });
            }
        });
        url
    }

    fn deflate() -> Config {
        Config::default().deflate(Some(DeflateConfig::default()))
    }

    // Through hyper's upgrade: the builder's subprotocol and its
    // Config::deflate are negotiated, and compressed messages echo (a
    // server connection without the negotiated deflate would fail the
    // client's RSV1 frames).
    #[tokio::test]
    async fn upgrades_through_hyper_with_deflate_from_config() {
        let url = hyper_server(
            ServerBuilder::new()
                .config(deflate())
                .unwrap()
                .protocols(["chat"]),
        )
        .await;
        let client = ClientBuilder::new(&url)
            .unwrap()
            .protocol("chat")
            .config(deflate())
            .unwrap();
        let (mut ws, accepted) = connect_async(&client).await.unwrap();
        assert_eq!(accepted.protocol(), Some("chat"));
        assert!(accepted.extensions().iter().any(|e| e.name == NAME));
        let big = Message::text("compressible ".repeat(2000));
        ws.send(big.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), big);
        ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
    }

    // Without Config::deflate nothing is negotiated, even when offered.
    #[tokio::test]
    async fn no_deflate_unless_configured() {
        let url = hyper_server(ServerBuilder::new().config(Config::default()).unwrap()).await;
        let client = ClientBuilder::new(&url).unwrap().config(deflate()).unwrap();
        let (mut ws, accepted) = connect_async(&client).await.unwrap();
        assert!(accepted.extensions().is_empty());
        ws.send(Message::text("plain")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("plain"));
    }

    fn require_token(request: &RequestView<'_>) -> Result<AcceptOptions, Rejection> {
        match request.bearer_token() {
            Some("s3cret") => Ok(AcceptOptions::new()),
            _ => Err(Rejection::new(401)
                .header("WWW-Authenticate", "Bearer")
                .body("token required")),
        }
    }

    // A refusal becomes hyper's response: the callback's 401 with its
    // header and body, and an invalid request's 426 with the version header.
    #[tokio::test]
    async fn refusals_become_responses() {
        let url =
            hyper_server(ServerBuilder::new().on_request(require_token as rfc6455::AcceptAll))
                .await;
        let addr = url
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned();
        let error = connect_async(&url).await.unwrap_err();
        let Error::Handshake(HandshakeError::Refused(refusal)) = error else {
            panic!("{error:?}")
        };
        assert_eq!(refusal.status, 401);
        assert_eq!(&refusal.body[..], b"token required");

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n").await.unwrap();
        let mut response = vec![0; 4096];
        let n = tcp.read(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response[..n]).to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 426"), "{response}");
        assert!(response.contains("sec-websocket-version: 13"), "{response}");
    }
}
