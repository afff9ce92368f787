//! `use rfc6455::*` shadows no runtime crate: `#[tokio::main]` and
//! `tokio::spawn` still name tokio (the async adapters sit under `rt`).
#![cfg(feature = "tokio")]

use rfc6455::*;

#[tokio::main(flavor = "current_thread")]
async fn serve_one_echo() -> Option<Message> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = rt::tokio::WebSocketStream::accept(tcp, &ServerBuilder::new())
            .await
            .unwrap();
        let message = ws.next().await?.ok()?;
        ws.send(message).await.ok()
    });
    let (mut ws, _) = rt::tokio::connect_async(&url).await.unwrap();
    ws.send(Message::text("glob")).await.unwrap();
    let reply = ws.next().await?.ok();
    server.await.unwrap()?;
    reply
}

#[test]
fn a_glob_import_leaves_tokio_alone() {
    assert_eq!(serve_one_echo(), Some(Message::text("glob")));
}
