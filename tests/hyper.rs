//! `rfc6455::rt::hyper` and `rfc6455::rt::axum` in real servers on
//! loopback: hyper 1 over HTTP/1.1 and HTTP/2 (RFC 8441 extended CONNECT),
//! axum's extractor, and the `axum_chat` example.
#![cfg(feature = "axum")]
#![allow(dead_code)]

#[path = "support/io.rs"]
mod io;
mod support;

#[path = "../examples/axum_chat.rs"]
mod axum_chat;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::ext::Protocol;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rfc6455::frame::OpCode;
use rfc6455::handshake::{AcceptOptions, ClientHandshake, ClientRequest, Rejection};
use rfc6455::rt::axum::{WebSocket, WebSocketUpgrade};
use rfc6455::rt::hyper::upgrade;
use rfc6455::rt::tokio::{WebSocketStream, connect_async};
use rfc6455::{
    ClientBuilder, Config, Connection, Error, HandshakeError, Message, Role, ServerBuilder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes data messages until the stream ends.
async fn echo(mut ws: WebSocket) {
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            break;
        }
    }
}

/// The `rt::hyper` handler: upgrade (either protocol) and echo.
async fn handle(
    mut request: Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let server = ServerBuilder::new().protocols(["chat"]);
    let (response, upgrade) = match upgrade(&mut request, &server) {
        Ok(accepted) => accepted,
        Err(refused) => return Ok(refused.into_response().map(Full::new)),
    };
    tokio::spawn(async move {
        if let Ok(ws) = upgrade.await {
            echo(ws).await;
        }
    });
    Ok(response.map(|()| Full::default()))
}

/// A hyper server on loopback speaking HTTP/1.1 or (with `h2`) HTTP/2
/// with extended CONNECT enabled; its address.
async fn hyper_server(h2: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let io = TokioIo::new(tcp);
                let service = hyper::service::service_fn(handle);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .enable_connect_protocol()
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn hyper_http1_upgrade_with_a_subprotocol() {
    let addr = hyper_server(false).await;
    let client = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .protocol("chat");
    let (mut ws, accepted) = connect_async(&client).await.unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));
    ws.send(Message::text("through hyper")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("through hyper")
    );
    ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
}

// A client that sends its first frame in the same write as its request:
// hyper read both, and the upgraded stream hands the frame over first.
#[tokio::test]
async fn bytes_after_the_request_are_not_lost() {
    let addr = hyper_server(false).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let mut wire = io::REQUEST.to_vec();
    wire.extend(support::client_frame(OpCode::Text, true, b"early"));
    tcp.write_all(&wire).await.unwrap();
    let head = io::read_head(&mut tcp).await;
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut echo = [0u8; 7];
    tcp.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"\x81\x05early");
}

#[tokio::test]
async fn hyper_refusals_are_responses() {
    let addr = hyper_server(false).await;
    // Not an upgrade at all: 426 with the headers that say how.
    assert_upgrade_required(&addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
}

/// Sends `request` by hand and asserts the answer is 426 with
/// `Sec-WebSocket-Version: 13`.
async fn assert_upgrade_required(addr: &str, request: &[u8]) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let head = String::from_utf8(io::read_head(&mut tcp).await).unwrap();
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
}

// RFC 8441 end to end: hyper's HTTP/2 client opens an extended CONNECT
// stream to hyper's HTTP/2 server, and our client connection runs on it.
#[tokio::test]
async fn rfc8441_over_hyper_http2() {
    let addr = hyper_server(true).await;
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) must arrive
    // before an extended CONNECT may be sent.
    let mut response = None;
    for _ in 0..100 {
        sender.ready().await.unwrap();
        let offer = ClientRequest::new(&format!("ws://{addr}/chat"))
            .unwrap()
            .protocol("chat");
        let (handshake, connect) = ClientHandshake::new_extended_connect(&offer).unwrap();
        let mut request = connect.map(|()| Empty::<Bytes>::new());
        request
            .extensions_mut()
            .insert(Protocol::from_static("websocket"));
        match sender.send_request(request).await {
            Ok(answer) => {
                response = Some((handshake, answer));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let (handshake, mut response) = response.expect("an answer to the extended CONNECT");
    assert_eq!(response.status(), StatusCode::OK);
    let accepted = handshake.receive_extended_connect(&response).unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let conn = Connection::new(Role::Client, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(TokioIo::new(upgraded), conn);
    ws.send(Message::text("over HTTP/2")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("over HTTP/2")
    );
    ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
}

async fn axum_echo(upgrade: WebSocketUpgrade) -> Response {
    upgrade.protocols(["chat", "superchat"]).on_upgrade(echo)
}

/// Serves `app` on loopback with axum; its address.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_axum_extractor_upgrades_and_refuses() {
    let addr = serve(Router::new().route("/ws", get(axum_echo))).await;
    let client = ClientBuilder::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .protocol("superchat");
    let (mut ws, accepted) = connect_async(&client).await.unwrap();
    assert_eq!(accepted.protocol(), Some("superchat"));
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1, 2, 3])
    );
    ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();

    // The extractor answers an invalid request before the handler runs.
    assert_upgrade_required(
        &addr,
        b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
}

/// The axum handler sees what the handshake decided: the subprotocol its
/// list selects, and on the socket the subprotocol, path, query and the
/// user the request callback found; it reports them as one text message.
/// A bad token is a `Rejection` answered as the response.
async fn axum_whoami(upgrade: WebSocketUpgrade) -> Response {
    struct User(&'static str);
    let server = ServerBuilder::new()
        .protocols(["chat.v2", "chat.v1"])
        .on_request(|request| match request.bearer_token() {
            Some("s3cret") => Ok(AcceptOptions::new().data(User("ada"))),
            _ => Err(Rejection::new(401).header("WWW-Authenticate", "Bearer")),
        });
    let upgrade = upgrade.server(server);
    let selected = upgrade.selected_protocol().map(str::to_owned);
    upgrade.on_upgrade(move |mut ws| async move {
        let user = ws.take_data::<User>().map(|user| user.0);
        let report = format!(
            "{selected:?} {:?} {:?} {:?} {user:?}",
            ws.protocol(),
            ws.path(),
            ws.query()
        );
        let _ = ws.send(Message::text(report)).await;
        let _ = ws.close(rfc6455::CloseCode::NORMAL, "").await;
    })
}

#[tokio::test]
async fn axum_hands_the_handshake_to_the_socket() {
    let addr = serve(Router::new().route("/who", get(axum_whoami))).await;
    let url = format!("ws://{addr}/who?room=7");
    let client = ClientBuilder::new(&url)
        .unwrap()
        .protocol("chat.v1")
        .protocol("chat.v2")
        .header("Authorization", "Bearer s3cret");
    let (mut ws, accepted) = connect_async(&client).await.unwrap();
    assert_eq!(accepted.protocol(), Some("chat.v2"));
    assert_eq!(
        line(&mut ws).await,
        r#"Some("chat.v2") Some("chat.v2") Some("/who") Some("room=7") Some("ada")"#
    );
    let refused = connect_async(ClientBuilder::new(&url).unwrap()).await;
    let Err(Error::Handshake(HandshakeError::Refused(refusal))) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(refusal.status, 401);
}

/// An axum socket whose config cannot work: the upgrade is answered 500.
#[tokio::test]
async fn axum_answers_500_for_a_config_that_cannot_work() {
    async fn broken(upgrade: WebSocketUpgrade) -> Response {
        upgrade
            .config(Config::default().max_write_buffer(0))
            .on_upgrade(echo)
    }
    let addr = serve(Router::new().route("/ws", get(broken))).await;
    let refused = connect_async(&format!("ws://{addr}/ws")).await;
    let Err(Error::Handshake(HandshakeError::Refused(refusal))) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(refusal.status, 500);
}

/// axum under a builder's drain: the socket's task is watched, the drain's
/// Close reaches the client, and an upgrade during the drain is 503.
#[tokio::test]
async fn axum_sockets_answer_to_the_builders_drain() {
    use rfc6455::CloseCode;
    use rfc6455::rt::drain::{Drain, DrainConfig};

    let drain = Drain::new(
        DrainConfig::default()
            .window(Duration::from_millis(50))
            .grace(Duration::from_secs(5)),
    );
    let server = ServerBuilder::new().drain(&drain);
    let app = Router::new().route(
        "/ws",
        get(move |upgrade: WebSocketUpgrade| {
            let server = server.clone();
            async move { upgrade.server(server).on_upgrade(echo) }
        }),
    );
    let addr = serve(app).await;
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) = connect_async(&url).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before"));
    assert_eq!(drain.live(), 1, "the socket's task is watched");
    let shutdown = tokio::spawn({
        let drain = drain.clone();
        async move { drain.shutdown().await }
    });
    let Message::Close(close) = ws.next().await.unwrap().unwrap() else {
        panic!("the drain's Close comes next")
    };
    assert_eq!(close.map(|c| c.code), Some(CloseCode::GOING_AWAY));
    while ws.next().await.is_some() {}
    let refused = connect_async(&url).await;
    let Err(Error::Handshake(HandshakeError::Refused(refusal))) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(refusal.status, 503);
    let report = shutdown.await.unwrap();
    assert_eq!((report.connections, report.closed), (1, 1), "{report}");
}

/// A client of the chat room: the next text line.
async fn line(
    ws: &mut WebSocketStream<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>,
) -> String {
    match ws.next().await.unwrap().unwrap() {
        Message::Text(text) => text.to_string(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn axum_chat_serves_its_page_and_its_room() {
    let addr = serve(axum_chat::app()).await;
    let url = format!("ws://{addr}/ws");
    let (mut alice, _) = connect_async(url.as_str()).await.unwrap();
    assert_eq!(line(&mut alice).await, "* client 0 joined");
    let (mut bob, _) = connect_async(url.as_str()).await.unwrap();
    assert_eq!(line(&mut alice).await, "* client 1 joined");
    assert_eq!(line(&mut bob).await, "* client 1 joined");
    bob.send(Message::text("hello from bob")).await.unwrap();
    assert_eq!(line(&mut alice).await, "1: hello from bob");
    assert_eq!(line(&mut bob).await, "1: hello from bob");
    bob.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(line(&mut alice).await, "* client 1 left");

    // The page is on the same port.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("new WebSocket(`${scheme}://${location.host}/ws`)"));
    let error = connect_async(format!("ws://{addr}/nowhere").as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Handshake(HandshakeError::Refused(r)) if r.status == 404),
        "{error:?}"
    );
}
