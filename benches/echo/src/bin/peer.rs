//! Echo servers built the way each library's users build them, each on a
//! multi-threaded tokio runtime, plus a raw TCP echo as the ceiling.
//!
//! ```text
//! peer KIND ADDR
//! KIND: raw | tungstenite | tungstenite-forward | fastwebsockets | tokio-websockets
//! ```
//!
//! Ours is `examples/echo_server` of the library itself.

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).cloned().unwrap_or_default();
    let addr = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let kind = kind.clone();
        tokio::spawn(async move {
            let result = match kind.as_str() {
                "raw" => raw(tcp).await,
                "tungstenite" => tungstenite(tcp).await,
                "tungstenite-forward" => tungstenite_forward(tcp).await,
                "fastwebsockets" => fastwebsockets(tcp).await,
                "tokio-websockets" => tokio_websockets(tcp).await,
                other => panic!("unknown server kind {other:?}"),
            };
            drop(result);
        });
    }
}

type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Reads the upgrade request and answers 101 by hand.
async fn hand_upgrade(tcp: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let accept = rfc6455::handshake::accept_key(&key);
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await
}

/// The ceiling: upgrade, then copy bytes back with no WebSocket parsing.
async fn raw(mut tcp: TcpStream) -> Result {
    hand_upgrade(&mut tcp).await?;
    // What one read returns goes back in one write; 256 KiB at a time, the
    // most any WebSocket server here reads at once.
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        tcp.write_all(&buf[..n]).await?;
    }
}

/// tokio-tungstenite, a read/send loop as in its examples.
async fn tungstenite(tcp: TcpStream) -> Result {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

/// tokio-tungstenite's README echo server: `StreamExt::forward`.
async fn tungstenite_forward(tcp: TcpStream) -> Result {
    let ws = tokio_tungstenite::accept_async(tcp).await?;
    let (write, read) = ws.split();
    read.try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await?;
    Ok(())
}

/// fastwebsockets with its fragment collector, auto pong and auto close.
async fn fastwebsockets(mut tcp: TcpStream) -> Result {
    hand_upgrade(&mut tcp).await?;
    let mut ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Close => return Ok(()),
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            _ => {}
        }
    }
}

/// tokio-websockets, a read/send loop as in its examples.
async fn tokio_websockets(tcp: TcpStream) -> Result {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
