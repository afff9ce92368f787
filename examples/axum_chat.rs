//! The chat room as an axum app: a small HTML page on `/` and the room's
//! WebSocket on `/ws`, on one port, through `rfc6455::rt::axum`'s
//! `WebSocketUpgrade` extractor.
//!
//! ```text
//! cargo run --example axum_chat --features axum     # http://127.0.0.1:9003/
//! cargo run --example client -- ws://127.0.0.1:9003/ws
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::get;
use rfc6455::rt::axum::WebSocketUpgrade;
use rfc6455::rt::hub::{Hub, HubConfig};

#[path = "support/room.rs"]
mod room;

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
        .route("/ws", get(join))
        .with_state(chat)
}

async fn join(upgrade: WebSocketUpgrade, State(chat): State<Chat>) -> Response {
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    upgrade
        .on_failed_upgrade(move |error| eprintln!("axum_chat: client {id}: {error}"))
        .on_upgrade(move |ws| async move {
            if let Err(error) = room::member(id, ws, &chat.hub).await {
                eprintln!("axum_chat: client {id}: {error}");
            }
        })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum_chat: open http://{}/", listener.local_addr()?);
    axum::serve(listener, app()).await
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>chat</title>
<pre id="log"></pre>
<form id="form"><input id="line" autocomplete="off" autofocus> <button>send</button></form>
<script>
  const log = document.getElementById("log");
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (event) => { log.textContent += event.data + "\n"; };
  ws.onclose = (event) => { log.textContent += `* closed (${event.code})\n`; };
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const line = document.getElementById("line");
    if (line.value) ws.send(line.value);
    line.value = "";
  };
</script>
"#;
