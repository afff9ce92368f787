//! WebSockets over HTTP/2 (RFC 8441) end to end on loopback: our client
//! (`rt::h2`) against a hyper HTTP/2 server upgrading with `rt::hyper`;
//! many WebSockets on one connection, permessage-deflate, the close, a
//! server that does not enable extended CONNECT; and hostile servers on
//! h2's own server role (a CONNECT never answered, a reset, empty DATA).
#![cfg(all(feature = "h2", feature = "hyper", feature = "deflate"))]

#[cfg(feature = "rustls")]
#[path = "support/tls.rs"]
mod tls;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::rt::h2::H2Client;
use rfc6455::rt::hyper::upgrade;
use rfc6455::{ClientBuilder, CloseCode, Config, Error, HandshakeError, Message, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

fn deflate() -> Config {
    Config::default().deflate(Some(DeflateConfig::default().threshold(0)))
}

/// Upgrades the extended CONNECT under `config` and echoes data messages.
async fn handle(
    mut request: Request<Incoming>,
    config: Config,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let server = ServerBuilder::new()
        .protocols(["chat"])
        .config(config)
        .unwrap();
    let (response, upgrade) = match upgrade(&mut request, &server) {
        Ok(accepted) => accepted,
        Err(refused) => return Ok(refused.into_response().map(Full::new)),
    };
    tokio::spawn(async move {
        let Ok(mut ws) = upgrade.await else { return };
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
    });
    Ok(response.map(|()| Full::default()))
}

/// A hyper HTTP/2 server on loopback, extended CONNECT enabled or not.
async fn h2_server(connect_protocol: bool) -> String {
    h2_server_with(connect_protocol, deflate()).await
}

/// The same with the WebSockets' `config`.
async fn h2_server_with(connect_protocol: bool, config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                if connect_protocol {
                    builder.enable_connect_protocol();
                }
                let service =
                    hyper::service::service_fn(move |request| handle(request, config.clone()));
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    addr
}

// 100 WebSockets at once on one HTTP/2 connection, with permessage-deflate,
// each echoing its own stream of messages, each closed cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_websockets_share_one_http2_connection() {
    const SOCKETS: usize = 100;
    const MESSAGES: usize = 20;
    let addr = h2_server(true).await;
    let h2 = H2Client::handshake(TcpStream::connect(&addr).await.unwrap())
        .await
        .unwrap();
    let client = ClientBuilder::new(&format!("ws://{addr}/chat"))
        .unwrap()
        .protocol("chat")
        .config(deflate())
        .unwrap();
    let mut tasks = Vec::new();
    for socket in 0..SOCKETS {
        let (h2, client) = (h2.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, accepted) = h2.connect(&client).await.unwrap();
            assert_eq!(accepted.protocol(), Some("chat"));
            assert_eq!(accepted.extensions().len(), 1, "deflate negotiated");
            for message in 0..MESSAGES {
                let text = format!("socket {socket} message {message} ").repeat(40);
                ws.send(Message::text(text.clone())).await.unwrap();
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
            }
            let stats = ws.stats();
            assert_eq!(stats.sent.compressed_messages, MESSAGES as u64);
            assert!(
                stats.sent.compressed_bytes < stats.sent.uncompressed_bytes / 4,
                "compressed: {stats:?}"
            );
            let peer = ws.close(CloseCode::NORMAL, "done").await.unwrap();
            assert_eq!(peer.map(|close| close.code), Some(CloseCode::NORMAL));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

// A server whose SETTINGS do not enable extended CONNECT is a clear error
// at the HTTP/2 handshake, not a confusing one at the first WebSocket.
#[tokio::test]
async fn a_server_without_extended_connect_is_refused_at_once() {
    let addr = h2_server(false).await;
    let result = H2Client::handshake(TcpStream::connect(&addr).await.unwrap()).await;
    assert!(
        matches!(
            result,
            Err(Error::Handshake(HandshakeError::NoExtendedConnect))
        ),
        "{result:?}"
    );
}

// A server that does not speak HTTP/2 at all: an I/O error, not a hang.
#[tokio::test]
async fn a_server_without_http2_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        use tokio::io::AsyncWriteExt;
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    });
    let result = H2Client::handshake(TcpStream::connect(addr).await.unwrap()).await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

/// What a hostile HTTP/2 server does with each extended CONNECT.
#[derive(Clone, Copy)]
enum Hostile {
    /// Never answers.
    Silent,
    /// Resets the stream.
    Reset,
    /// Accepts, then sends this many empty DATA frames and nothing else.
    EmptyData(usize),
}

/// An HTTP/2 server on h2's own server role, extended CONNECT enabled,
/// that treats every stream as `behaviour` says.
async fn hostile(behaviour: Hostile) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::Builder::new()
            .enable_connect_protocol()
            .handshake::<_, Bytes>(tcp)
            .await
            .unwrap();
        let mut held = Vec::new();
        while let Some(Ok((_request, mut respond))) = connection.accept().await {
            match behaviour {
                Hostile::Silent => held.push(respond),
                Hostile::Reset => respond.send_reset(h2::Reason::REFUSED_STREAM),
                Hostile::EmptyData(frames) => {
                    let response = http::Response::builder().status(200).body(()).unwrap();
                    let mut send = respond.send_response(response, false).unwrap();
                    tokio::spawn(async move {
                        for _ in 0..frames {
                            if send.send_data(Bytes::new(), false).is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                        std::future::pending::<()>().await;
                    });
                }
            }
        }
    });
    addr
}

async fn h2_client(addr: &str) -> H2Client {
    H2Client::handshake(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap()
}

// A CONNECT never answered ends at the handshake timeout.
#[tokio::test]
async fn an_unanswered_connect_times_out() {
    let addr = hostile(Hostile::Silent).await;
    let limit = std::time::Duration::from_millis(300);
    let client = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .limits(rfc6455::handshake::HandshakeLimits::default().timeout(Some(limit)));
    let result = h2_client(&addr).await.connect(&client).await;
    assert!(
        matches!(result, Err(Error::HandshakeTimeout(t)) if t == limit),
        "{result:?}"
    );
}

// A stream reset instead of an answer is the transport's error.
#[tokio::test]
async fn a_reset_stream_is_an_io_error() {
    let addr = hostile(Hostile::Reset).await;
    let client = ClientBuilder::new(&format!("ws://{addr}/")).unwrap();
    let result = h2_client(&addr).await.connect(&client).await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

/// How a WebSocket on a hostile stream ends: its last item, within 3 s.
async fn last_item(frames: usize) -> Option<Result<Message, Error>> {
    let addr = hostile(Hostile::EmptyData(frames)).await;
    let idle = std::time::Duration::from_millis(300);
    let client = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(
            Config::default()
                .idle_timeout(Some(idle))
                .close_timeout(Some(idle)),
        )
        .unwrap();
    let (mut ws, _) = h2_client(&addr).await.connect(&client).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let mut last = None;
        while let Some(item) = ws.next().await {
            last = Some(item);
        }
        last
    })
    .await
    .expect("the WebSocket ended")
}

// Empty DATA frames carry nothing: a few do not keep a WebSocket from its
// idle timeout, and a flood of them is cut off by h2 itself (GOAWAY,
// ENHANCE_YOUR_CALM: the 0.4.16 bound this crate requires).
#[tokio::test]
async fn empty_data_frames_do_not_keep_a_websocket_alive() {
    let idle = last_item(100).await;
    assert!(
        matches!(
            idle,
            Some(Err(Error::Protocol(rfc6455::ProtocolError::IdleTimeout)))
        ),
        "{idle:?}"
    );
    let flood = last_item(100_000).await;
    assert!(matches!(flood, Some(Err(Error::Io(_)))), "{flood:?}");
}

/// A TLS server for `localhost` (a fresh self-signed certificate) offering
/// `alpn`, serving HTTP/2 with extended CONNECT when `h2` is chosen; its
/// port and a client configuration that trusts it.
#[cfg(feature = "rustls")]
async fn tls_h2_server(alpn: &[&[u8]]) -> (u16, std::sync::Arc<rustls::ClientConfig>) {
    tls::serve(alpn, |tls| async move {
        let service = hyper::service::service_fn(|request| handle(request, deflate()));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .enable_connect_protocol()
            .serve_connection(TokioIo::new(tls), service)
            .await;
    })
    .await
}

// `wss://` over HTTP/2: TLS agrees on `h2` by ALPN, then extended CONNECT.
#[cfg(feature = "rustls")]
#[tokio::test]
async fn open_speaks_wss_over_http2() {
    let (port, tls) = tls_h2_server(&[b"h2"]).await;
    let client = ClientBuilder::new(&format!("wss://localhost:{port}/chat"))
        .unwrap()
        .tls_config(tls);
    let h2 = H2Client::open(&client).await.unwrap();
    let (mut ws, _) = h2.connect(&client).await.unwrap();
    ws.send(Message::text("over TLS and HTTP/2")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("over TLS and HTTP/2")
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

// A TLS server that does not choose `h2` (it offers only HTTP/1.1, or no
// ALPN at all) is a clear error, not a hang.
#[cfg(feature = "rustls")]
#[tokio::test]
async fn open_refuses_a_server_without_h2() {
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let (port, tls) = tls_h2_server(alpn).await;
        let client = ClientBuilder::new(&format!("wss://localhost:{port}/chat"))
            .unwrap()
            .tls_config(tls);
        let result = H2Client::open(&client).await;
        assert!(
            matches!(result, Err(Error::Handshake(HandshakeError::NoHttp2))),
            "{result:?}"
        );
    }
}

/// An extended CONNECT for `addr`, as a hostile client on h2's own client
/// role sends it.
fn connect_request(addr: &str) -> Request<()> {
    let mut request = Request::builder()
        .method("CONNECT")
        .uri(format!("http://{addr}/"))
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    request
}

/// A hostile client's connection (driven on a task) and one extended
/// CONNECT stream the server accepted.
async fn hostile_stream(
    addr: &str,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::SendStream<Bytes>,
    h2::RecvStream,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = connection.ping_pong().unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // The answer to a PING follows the server's SETTINGS.
    ping.ping(h2::Ping::opaque()).await.unwrap();
    let mut send = send.ready().await.unwrap();
    let (response, stream) = send.send_request(connect_request(addr), false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    (send, stream, response.into_body())
}

/// Everything the server sends on `recv` until it ends the stream.
async fn read_to_end(recv: &mut h2::RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut wire = Vec::new();
    while let Some(data) = recv.data().await {
        let data = data?;
        let _ = recv.flow_control().release_capacity(data.len());
        wire.extend_from_slice(&data);
    }
    Ok(wire)
}

// The server's limits apply per stream: a WebSocket whose client says
// nothing is closed at the idle timeout (its Close, then END_STREAM),
// while the connection opens other streams.
#[tokio::test]
async fn a_silent_stream_meets_the_servers_idle_timeout() {
    let idle = std::time::Duration::from_millis(300);
    let config = Config::default()
        .idle_timeout(Some(idle))
        .close_timeout(Some(idle));
    let addr = h2_server_with(true, config).await;
    let (send, _stream, mut recv) = hostile_stream(&addr).await;
    let started = std::time::Instant::now();
    let wire = tokio::time::timeout(std::time::Duration::from_secs(5), read_to_end(&mut recv))
        .await
        .expect("the server ended the stream")
        .unwrap();
    assert!(started.elapsed() >= idle);
    // One unmasked Close frame: 0x88, its length, then the code.
    assert_eq!(wire.first(), Some(&0x88), "{wire:02x?}");
    let code = u16::from_be_bytes([wire[2], wire[3]]);
    assert_eq!(CloseCode(code), CloseCode::GOING_AWAY);
    let mut send = send.ready().await.unwrap();
    let (response, _stream) = send.send_request(connect_request(&addr), false).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
}

// A flood of empty DATA frames from a client is cut off by the server's h2
// (GOAWAY, ENHANCE_YOUR_CALM), and a stream the client resets ends without
// touching the server's other connections.
#[tokio::test]
async fn hostile_clients_meet_the_servers_bounds() {
    let addr = h2_server_with(true, Config::default()).await;
    let (_send, mut stream, mut recv) = hostile_stream(&addr).await;
    for _ in 0..100_000 {
        if stream.send_data(Bytes::new(), false).is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), read_to_end(&mut recv))
        .await
        .expect("the server ended the connection");
    // The server's GOAWAY, or the closed socket after it if the flood's
    // writes meet that first.
    let error = ended.expect_err("the server cut the connection");
    assert!(
        error.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) || error.is_io(),
        "{error}"
    );

    let (_send, mut reset, _recv) = hostile_stream(&addr).await;
    reset.send_reset(h2::Reason::CANCEL);
    let client = ClientBuilder::new(&format!("ws://{addr}/")).unwrap();
    let (mut ws, _) = H2Client::open(&client)
        .await
        .unwrap()
        .connect(&client)
        .await
        .unwrap();
    ws.send(Message::text("still served")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("still served")
    );
}
