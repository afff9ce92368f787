//! The chat room as an axum app: a small HTML page on `/` and the room's
//! WebSocket on `/ws`, on one port, through `rfc6455::rt::axum`'s
//! `WebSocketUpgrade` extractor.
//!
//! ```text
//! cargo run --example axum_chat --features axum     # http://127.0.0.1:9003/
//! cargo run --example client -- ws://127.0.0.1:9003/ws
//! cargo run --example axum_chat --features axum,rustls -- --tls   # https://localhost:9003/
//! ```
//!
//! With `--tls` (feature `rustls`) it serves HTTPS with a self-signed
//! certificate for `localhost`, offering `h2` and `http/1.1` by ALPN, with
//! extended CONNECT enabled (RFC 8441): a browser that loads the page over
//! HTTP/2 opens the WebSocket as a stream of that same connection.
//! `--no-h2-websockets` leaves extended CONNECT off, so the WebSocket takes
//! an HTTP/1.1 connection of its own. Each request is logged with its
//! connection's number and HTTP version; `tests/browser/run.sh` reads that
//! record while headless Chromium loads `/#probe`, a page that sends one
//! message, waits for the room to echo it, closes, and reports its close
//! on `/closed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::{any, get};
use rfc6455::rt::axum::WebSocketUpgrade;
use rfc6455::rt::hub::{Hub, HubConfig};

#[path = "support/room.rs"]
mod room;
#[cfg(feature = "rustls")]
#[path = "support/tls.rs"]
mod tls;

#[derive(Clone)]
struct Chat {
    hub: Hub,
    next_id: Arc<AtomicU64>,
}

/// The app: the page and the room.
pub(crate) fn app() -> Router {
    let chat = Chat {
        hub: Hub::new(HubConfig::default()),
        next_id: Arc::new(AtomicU64::new(0)),
    };
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        // `any`: over HTTP/2 the upgrade is a CONNECT, not a GET.
        .route("/ws", any(join))
        .route("/closed", get(|| async { "" }))
        .with_state(chat)
}

async fn join(upgrade: WebSocketUpgrade, State(chat): State<Chat>) -> Response {
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    upgrade
        .on_failed_upgrade(move |error| eprintln!("axum_chat: client {id}: {error}"))
        .on_upgrade(move |ws| async move {
            if let Err(error) = room::member(id, ws, &chat.hub, None).await {
                eprintln!("axum_chat: client {id}: {error}");
            }
        })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9003".to_owned();
    let (mut tls, mut h2_websockets) = (false, true);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--tls" => tls = true,
            "--no-h2-websockets" => h2_websockets = false,
            _ => addr = arg,
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let port = listener.local_addr()?.port();
    if tls {
        eprintln!("axum_chat: open https://localhost:{port}/");
        return serve_tls(listener, h2_websockets).await;
    }
    eprintln!("axum_chat: open http://{}/", listener.local_addr()?);
    axum::serve(listener, app()).await
}

/// Serves the app over TLS (ALPN `h2`, then `http/1.1`), each connection
/// by the version TLS agreed on, logging every request with its
/// connection's number and HTTP version.
#[cfg(feature = "rustls")]
async fn serve_tls(listener: tokio::net::TcpListener, h2_websockets: bool) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let mut http = auto::Builder::new(TokioExecutor::new());
    if h2_websockets {
        // SETTINGS_ENABLE_CONNECT_PROTOCOL: WebSockets may be h2 streams.
        http.http2().enable_connect_protocol();
    }
    let (config, _) = tls::self_signed(&[b"h2", b"http/1.1"])?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let app = TowerToHyperService::new(app());
    for connection in 1u64.. {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, http, app) = (acceptor.clone(), http.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                eprintln!(
                    "axum_chat: connection {connection}: {} {} over {:?}",
                    request.method(),
                    request.uri().path_and_query().map_or("/", |p| p.as_str()),
                    request.version(),
                );
                hyper::service::Service::call(&app, request)
            });
            let _ = http
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
    Ok(())
}

#[cfg(not(feature = "rustls"))]
async fn serve_tls(_: tokio::net::TcpListener, _: bool) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "--tls needs the rustls feature: cargo run --example axum_chat --features axum,rustls",
    ))
}

const PAGE: &str = r##"<!doctype html>
<meta charset="utf-8">
<title>chat</title>
<pre id="log"></pre>
<form id="form"><input id="line" autocomplete="off" autofocus> <button>send</button></form>
<script>
  const log = document.getElementById("log");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  // `/#probe`: send one line, close once the room echoes it, report the close.
  const probe = location.hash === "#probe";
  ws.onopen = () => { if (probe) ws.send("probe"); };
  ws.onmessage = (event) => {
    log.textContent += event.data + "\n";
    if (probe && event.data.endsWith(": probe")) ws.close(1000, "done");
  };
  ws.onclose = (event) => {
    log.textContent += `* closed (${event.code})\n`;
    if (probe) fetch(`/closed?code=${event.code}&clean=${event.wasClean}`);
  };
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const line = document.getElementById("line");
    if (line.value) ws.send(line.value);
    line.value = "";
  };
</script>
"##;
