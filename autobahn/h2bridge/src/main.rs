//! A bridge between the Autobahn TestSuite, which speaks WebSockets over
//! HTTP/1.1 only, and a WebSocket carried by an HTTP/2 stream (RFC 8441).
//! After the handshake a WebSocket's bytes are the same on both
//! transports, so the bridge translates the handshake and then copies
//! bytes both ways, passing each side's end (FIN, `END_STREAM`) on.
//!
//! ```text
//! h2bridge to-h2 LISTEN UPSTREAM   HTTP/1.1 upgrades on LISTEN become extended
//!                                  CONNECTs on one h2c connection to UPSTREAM
//! h2bridge to-h1 LISTEN UPSTREAM   h2c extended CONNECTs on LISTEN become
//!                                  HTTP/1.1 upgrades to UPSTREAM
//! ```
//!
//! The subprotocol and extension headers pass through unchanged both ways,
//! so permessage-deflate is negotiated end to end. A refusal keeps its
//! status. Used by `autobahn/run.sh h2`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::ext::Protocol;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Body = Empty<Bytes>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// The headers that carry the WebSocket's negotiation across.
const PASSED: [&str; 3] = [
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, listen, upstream] = args.as_slice() else {
        return Err("usage: h2bridge to-h2|to-h1 LISTEN UPSTREAM".into());
    };
    let listener = TcpListener::bind(listen).await?;
    let upstream: Arc<str> = upstream.as_str().into();
    eprintln!("h2bridge {mode}: {} -> {upstream}", listener.local_addr()?);
    match mode.as_str() {
        "to-h2" => to_h2(listener, upstream).await,
        "to-h1" => to_h1(listener, upstream).await,
        _ => Err("the mode is to-h2 or to-h1".into()),
    }
}

/// Copies the `PASSED` headers of `from` into `to`.
fn pass(from: &HeaderMap, to: &mut HeaderMap) {
    for name in PASSED {
        for value in from.get_all(name) {
            to.append(name, value.clone());
        }
    }
}

/// Copies bytes both ways between the two upgraded streams until both
/// sides have ended.
fn splice(a: hyper::upgrade::OnUpgrade, b: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(a), Ok(b)) = (a.await, b.await) else {
            return;
        };
        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::new());
    *response.status_mut() = code;
    response
}

/// HTTP/1.1 upgrades in, extended CONNECTs out over one HTTP/2 connection
/// (made again if it ends).
async fn to_h2(listener: TcpListener, upstream: Arc<str>) -> Result<(), Error> {
    let h2: Arc<Mutex<Option<http2::SendRequest<Body>>>> = Arc::default();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (h2, upstream) = (h2.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (h2, upstream) = (h2.clone(), upstream.clone());
                async move {
                    Ok::<_, Infallible>(
                        h1_to_h2(request, &h2, &upstream)
                            .await
                            .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY)),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn h1_to_h2(
    mut request: Request<Incoming>,
    h2: &Mutex<Option<http2::SendRequest<Body>>>,
    upstream: &str,
) -> Result<Response<Body>, Error> {
    let key = request
        .headers()
        .get("sec-websocket-key")
        .ok_or("no Sec-WebSocket-Key")?
        .to_str()?
        .to_owned();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut connect = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(format!("http://{upstream}{path}"))
        .body(Body::new())?;
    pass(request.headers(), connect.headers_mut());
    connect
        .extensions_mut()
        .insert(Protocol::from_static("websocket"));
    let mut send = {
        let mut h2 = h2.lock().await;
        match h2.as_ref().filter(|send| !send.is_closed()) {
            Some(send) => send.clone(),
            None => {
                let tcp = TcpStream::connect(upstream).await?;
                tcp.set_nodelay(true)?;
                let (send, connection) =
                    http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
                tokio::spawn(connection);
                h2.insert(send).clone()
            }
        }
    };
    send.ready().await?;
    let mut response = send.send_request(connect).await?;
    if !response.status().is_success() {
        return Ok(status(response.status()));
    }
    let mut answer = status(StatusCode::SWITCHING_PROTOCOLS);
    let headers = answer.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&rfc6455::handshake::accept_key(&key))?,
    );
    pass(response.headers(), headers);
    splice(
        hyper::upgrade::on(&mut request),
        hyper::upgrade::on(&mut response),
    );
    Ok(answer)
}

/// h2c extended CONNECTs in, each an HTTP/1.1 upgrade on its own
/// connection out.
async fn to_h1(listener: TcpListener, upstream: Arc<str>) -> Result<(), Error> {
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let upstream = upstream.clone();
                async move {
                    Ok::<_, Infallible>(
                        h2_to_h1(request, &upstream)
                            .await
                            .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY)),
                    )
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .enable_connect_protocol()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn h2_to_h1(mut request: Request<Incoming>, upstream: &str) -> Result<Response<Body>, Error> {
    let websocket = request
        .extensions()
        .get::<Protocol>()
        .is_some_and(|p| p.as_str() == "websocket");
    if request.method() != Method::CONNECT || !websocket {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    // Any key will do: the tool answers it and the bridge checks the answer.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut upgrade = Request::builder()
        .uri(path)
        .header(header::HOST, upstream)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header("sec-websocket-key", key)
        .body(Body::new())?;
    pass(request.headers(), upgrade.headers_mut());
    let tcp = TcpStream::connect(upstream).await?;
    tcp.set_nodelay(true)?;
    let (mut send, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection.with_upgrades());
    let mut response = send.send_request(upgrade).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(status(response.status()));
    }
    let accept = response.headers().get("sec-websocket-accept");
    if accept.and_then(|a| a.to_str().ok()) != Some(&rfc6455::handshake::accept_key(key)) {
        return Ok(status(StatusCode::BAD_GATEWAY));
    }
    let mut answer = status(StatusCode::OK);
    pass(response.headers(), answer.headers_mut());
    splice(
        hyper::upgrade::on(&mut request),
        hyper::upgrade::on(&mut response),
    );
    Ok(answer)
}
