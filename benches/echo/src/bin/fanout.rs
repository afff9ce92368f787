//! Broadcast servers for the fan-out comparison: one publisher connection
//! (on PUB_ADDR), every message it sends goes to all subscriber connections
//! (on SUB_ADDR). Each is written the way its library's users write a
//! broadcast, on a multi-threaded tokio runtime:
//!
//! - `rfc6455`: the crate's hub and prepared messages (`rt::hub`), the
//!   publisher paced by `Hub::ready`; `--deflate` accepts permessage-deflate
//!   (a subscriber asking for no server context takeover shares one
//!   compressed encoding).
//! - `tungstenite`, `fastwebsockets`, `tokio-websockets`, `yawc`: a
//!   `tokio::sync::broadcast` channel of payloads (capacity 1024; a lagging
//!   subscriber skips what it missed), each subscriber task sending each
//!   message with its library's send.
//! - `sockudo-ws`: its `PubSub`, each subscriber's task sending what its
//!   channel gives it, as its `pubsub_echo` example does.
//! - `raw`: the ceiling: the frame is encoded once and each subscriber task
//!   writes every frame waiting for it in one vectored write. Like the
//!   peers, a lagging subscriber skips what it missed.
//! - `raw-held`: the same, but the publisher waits (yielding) while the
//!   channel holds a full capacity some subscriber has not seen, so nothing
//!   is skipped: the ceiling for delivering every message, as the hub does.
//!
//! ```text
//! fanout KIND SUB_ADDR PUB_ADDR [--deflate]
//! ```

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rfc6455::PreparedMessage;
use rfc6455::frame::{FrameHeader, OpCode, apply_mask};
use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455_echo_bench::{hand_upgrade, write_all_vectored};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// The broadcast channels' capacity, in messages.
const CAPACITY: usize = 1024;

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).cloned().unwrap_or_default();
    let subs = TcpListener::bind(args.get(2).map_or("127.0.0.1:9201", String::as_str)).await?;
    let publisher = TcpListener::bind(args.get(3).map_or("127.0.0.1:9202", String::as_str)).await?;
    let deflate = args.iter().any(|a| a == "--deflate");
    let hub = Hub::new(HubConfig::default());
    let (tx, _) = broadcast::channel::<Bytes>(CAPACITY);
    let state = Arc::new(State {
        kind,
        server: State::server(deflate)?,
        hub,
        tx,
        pubsub: sockudo_ws::pubsub::PubSub::new(),
    });
    let for_publisher = Arc::clone(&state);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = publisher.accept().await {
            tcp.set_nodelay(true).ok();
            let state = Arc::clone(&for_publisher);
            tokio::spawn(async move { drop(state.publish(tcp).await) });
        }
    });
    loop {
        let (tcp, _) = subs.accept().await?;
        tcp.set_nodelay(true)?;
        let state = Arc::clone(&state);
        tokio::spawn(async move { drop(state.subscribe(tcp).await) });
    }
}

struct State {
    kind: String,
    /// One builder for every connection, as a server makes one: its
    /// connections share one config (and its deflate state pool).
    server: rfc6455::ServerBuilder,
    hub: Hub,
    tx: broadcast::Sender<Bytes>,
    pubsub: sockudo_ws::pubsub::PubSub,
}

impl State {
    fn server(deflate: bool) -> Result<rfc6455::ServerBuilder, rfc6455::ConfigError> {
        let mut config = rfc6455::Config::default();
        if deflate {
            let deflate = rfc6455::extensions::deflate::DeflateConfig::default().threshold(0);
            config = config.deflate(Some(deflate));
        }
        rfc6455::ServerBuilder::new().config(config)
    }

    /// Reads the publisher's messages and broadcasts their payloads.
    async fn publish(&self, mut tcp: TcpStream) -> Result {
        match self.kind.as_str() {
            "rfc6455" => {
                let mut ws = rfc6455::rt::tokio::WebSocketStream::accept(tcp, &self.server).await?;
                while let Some(message) = ws.next().await {
                    if let Some(prepared) = PreparedMessage::from_message(message?) {
                        self.hub.ready().await;
                        self.hub.publish("t", &prepared);
                    }
                }
            }
            "tungstenite" => {
                let mut ws = tokio_tungstenite::accept_async(tcp).await?;
                while let Some(message) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Binary(data) = message? {
                        let _ = self.tx.send(data);
                    }
                }
            }
            "fastwebsockets" => {
                hand_upgrade(&mut tcp).await?;
                let ws =
                    fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
                let mut ws = fastwebsockets::FragmentCollector::new(ws);
                loop {
                    let frame = ws.read_frame().await?;
                    match frame.opcode {
                        fastwebsockets::OpCode::Close => return Ok(()),
                        fastwebsockets::OpCode::Binary => {
                            let _ = self.tx.send(Bytes::copy_from_slice(&frame.payload));
                        }
                        _ => {}
                    }
                }
            }
            "tokio-websockets" => {
                let (_, mut ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
                while let Some(message) = ws.next().await {
                    let message = message?;
                    if message.is_binary() {
                        let _ = self.tx.send(Bytes::from(message.into_payload()));
                    }
                }
            }
            "sockudo-ws" => {
                hand_upgrade(&mut tcp).await?;
                let mut ws =
                    sockudo_ws::WebSocketStream::server(tcp, sockudo_ws::Config::default());
                while let Some(message) = ws.next().await {
                    if let message @ sockudo_ws::Message::Binary(_) = message? {
                        self.pubsub.publish("t", message);
                    }
                }
            }
            "yawc" => {
                hand_upgrade(&mut tcp).await?;
                let options = yawc::Options::default();
                let mut ws = yawc::WebSocket::from_stream(tcp, yawc::Role::Server, options)?;
                loop {
                    let frame = ws.next_frame().await?;
                    match frame.opcode() {
                        yawc::OpCode::Close => return Ok(()),
                        yawc::OpCode::Binary => {
                            let _ = self.tx.send(frame.into_payload());
                        }
                        _ => {}
                    }
                }
            }
            "raw" | "raw-held" => {
                hand_upgrade(&mut tcp).await?;
                raw_publisher(tcp, &self.tx, self.kind == "raw-held").await?;
            }
            other => return Err(format!("unknown server kind {other:?}").into()),
        }
        Ok(())
    }

    /// Serves one subscriber until it goes away.
    async fn subscribe(&self, mut tcp: TcpStream) -> Result {
        let mut rx = self.tx.subscribe();
        match self.kind.as_str() {
            "rfc6455" => {
                let ws = rfc6455::rt::tokio::WebSocketStream::accept(tcp, &self.server).await?;
                let (mut write, mut read) = ws.split();
                let member = self.hub.join();
                let _ = self.hub.subscribe(&member, "t");
                tokio::select! {
                    _ = async { while let Some(Ok(_)) = read.next().await {} } => {}
                    _ = member.forward(&mut write) => {}
                }
            }
            "tungstenite" => {
                let mut ws = tokio_tungstenite::accept_async(tcp).await?;
                loop {
                    match rx.recv().await {
                        Ok(data) => {
                            ws.send(tokio_tungstenite::tungstenite::Message::Binary(data))
                                .await?
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            }
            "fastwebsockets" => {
                hand_upgrade(&mut tcp).await?;
                let mut ws =
                    fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
                loop {
                    match rx.recv().await {
                        Ok(data) => {
                            let payload = fastwebsockets::Payload::Borrowed(&data);
                            ws.write_frame(fastwebsockets::Frame::binary(payload))
                                .await?;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            }
            "tokio-websockets" => {
                let (_, mut ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
                loop {
                    match rx.recv().await {
                        Ok(data) => ws.send(tokio_websockets::Message::binary(data)).await?,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            }
            "sockudo-ws" => {
                hand_upgrade(&mut tcp).await?;
                let ws = sockudo_ws::WebSocketStream::server(tcp, sockudo_ws::Config::default());
                let (mut reader, mut writer) = ws.split();
                let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
                let id = self.pubsub.create_subscriber(tx);
                self.pubsub.subscribe(id, "t");
                let served: Result = async {
                    loop {
                        tokio::select! {
                            message = reader.next() => match message {
                                Some(Ok(sockudo_ws::Message::Close(_)) | Err(_)) | None => {
                                    return Ok(());
                                }
                                Some(Ok(_)) => {}
                            },
                            Some(message) = messages.recv() => writer.send(message).await?,
                        }
                    }
                }
                .await;
                self.pubsub.remove_subscriber(id);
                served?;
            }
            "yawc" => {
                hand_upgrade(&mut tcp).await?;
                let options = yawc::Options::default();
                let mut ws = yawc::WebSocket::from_stream(tcp, yawc::Role::Server, options)?;
                loop {
                    match rx.recv().await {
                        Ok(data) => ws.send(yawc::Frame::binary(data)).await?,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            }
            "raw" | "raw-held" => {
                hand_upgrade(&mut tcp).await?;
                raw_subscriber(tcp, rx).await?;
            }
            other => return Err(format!("unknown server kind {other:?}").into()),
        }
        Ok(())
    }
}

/// The ceiling's publisher: unmasks each binary frame and broadcasts it
/// re-encoded once as a server frame. With `hold`, it first waits until the
/// channel has room no subscriber still needs (`len` counts what some
/// subscriber has not seen), so no subscriber skips anything.
async fn raw_publisher(mut tcp: TcpStream, tx: &broadcast::Sender<Bytes>, hold: bool) -> Result {
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut filled) = (0, 0);
    loop {
        while let Some((header, header_len)) = FrameHeader::parse(&buf[start..filled])? {
            let len = header_len + header.payload_len as usize;
            if filled - start < len {
                break;
            }
            let payload = &mut buf[start + header_len..start + len];
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            if header.opcode == OpCode::Binary {
                let out = FrameHeader::new(OpCode::Binary, payload.len() as u64);
                let mut frame = Vec::with_capacity(out.encoded_len() + payload.len());
                out.encode_into(&mut frame);
                frame.extend_from_slice(payload);
                while hold && tx.len() >= CAPACITY {
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(Bytes::from(frame));
            }
            start += len;
        }
        if start == filled {
            (start, filled) = (0, 0);
        } else if start > buf.len() / 2 {
            buf.copy_within(start..filled, 0);
            (start, filled) = (0, filled - start);
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = tcp.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

/// The ceiling's subscriber: every frame waiting goes out in one vectored write.
async fn raw_subscriber(mut tcp: TcpStream, mut rx: broadcast::Receiver<Bytes>) -> Result {
    let mut frames = Vec::new();
    loop {
        match rx.recv().await {
            Ok(frame) => frames.push(frame),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
        while frames.len() < 64 {
            match rx.try_recv() {
                Ok(frame) => frames.push(frame),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let mut slices: Vec<std::io::IoSlice<'_>> =
            frames.iter().map(|f| std::io::IoSlice::new(f)).collect();
        write_all_vectored(&mut tcp, &mut slices).await?;
        frames.clear();
    }
}
