//! The echo server over hyper: WebSocket upgrades over HTTP/1.1 and over
//! HTTP/2 (RFC 8441 extended CONNECT) on one cleartext port, the version
//! chosen per connection by its first bytes (h2c with prior knowledge).
//!
//! ```text
//! cargo run --release --example h2_echo_server --features hyper   # 127.0.0.1:9004
//! cargo run --release --example h2_echo_server --features hyper -- 0.0.0.0:9004
//! ```
//!
//! Every text and binary message comes back with its type (the loop in
//! `examples/support/echo.rs`, as `echo_server`); permessage-deflate is
//! accepted when offered. `autobahn/run.sh h2` runs the Autobahn cases
//! against it through a bridge that turns each HTTP/1.1 upgrade into an
//! extended CONNECT on one HTTP/2 connection.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::rt::hyper::upgrade;
use rfc6455::{Config, Error, ServerBuilder};
use tokio::net::TcpListener;

#[path = "support/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("h2_echo_server: listening on {}", listener.local_addr()?);
    // An echo answers in kind, so every message is compressed (threshold 0).
    let server = ServerBuilder::new()
        .config(Config::default().deflate(Some(DeflateConfig::default().threshold(0))))?;
    let mut http = auto::Builder::new(TokioExecutor::new());
    // SETTINGS_ENABLE_CONNECT_PROTOCOL: clients may open WebSockets as streams.
    http.http2().enable_connect_protocol();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (http, server) = (http.clone(), server.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| answer(request, server.clone()));
            // Upgrades outlive the HTTP/1.1 connection's own future.
            let _ = http
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// Upgrades `request` (either version) and echoes on a task of its own.
async fn answer(
    mut request: Request<Incoming>,
    server: ServerBuilder,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (response, upgrade) = match upgrade(&mut request, &server) {
        Ok(accepted) => accepted,
        Err(refused) => return Ok(refused.into_response().map(Full::new)),
    };
    tokio::spawn(async move {
        let result = match upgrade.await {
            Ok(mut ws) => echo::echo(&mut ws).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result
            && !matches!(error, Error::ConnectionClosed)
        {
            eprintln!("h2_echo_server: connection ended: {error}");
        }
    });
    Ok(response.map(|()| Full::default()))
}
