//! Echo servers built the way each library's users build them, each on a
//! multi-threaded tokio runtime, plus two ceilings: a raw TCP echo, and a
//! store-and-forward echo that answers whole frames with only their headers
//! rewritten (no WebSocket connection, no unmasking).
//!
//! ```text
//! peer KIND ADDR
//! KIND: raw | store-forward | tungstenite | tungstenite-forward | fastwebsockets
//!       | tokio-websockets | sockudo-ws | yawc | yawc-batched
//! ```
//!
//! Ours is `examples/echo_server` of the library itself.

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use rfc6455::frame::{FrameHeader, MAX_HEADER_LEN};
use rfc6455_echo_bench::{hand_upgrade, write_all_vectored};
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
                "store-forward" => store_forward(tcp).await,
                "tungstenite" => tungstenite(tcp).await,
                "tungstenite-forward" => tungstenite_forward(tcp).await,
                "fastwebsockets" => fastwebsockets(tcp).await,
                "tokio-websockets" => tokio_websockets(tcp).await,
                "sockudo-ws" => sockudo_ws(tcp).await,
                "yawc" => yawc(tcp).await,
                "yawc-batched" => yawc_batched(tcp).await,
                other => panic!("unknown server kind {other:?}"),
            };
            drop(result);
        });
    }
}

type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

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

/// The ceiling for a server that answers whole messages: the least such a
/// server must do. Each frame is read whole (a frame larger than the buffer
/// grows it to hold the frame, as any message-oriented server must) and
/// written back with the mask bit and key dropped from its header; the
/// payload goes back as it came, still masked (the load generator reads only
/// headers), so there is no unmasking, validation or copying in user space.
/// Headers are parsed with the crate's `FrameHeader`, nothing else of it.
/// Every whole frame of a read is answered in one vectored write, each answer
/// a slice of the read buffer with its new header written over the old one's
/// tail. Only for the load generator's frames: a frame that is unmasked or
/// over 16 MiB ends the connection; fragments and Close are echoed as is.
async fn store_forward(mut tcp: TcpStream) -> Result {
    const READ: usize = 256 * 1024;
    const MAX_FRAME: u64 = 16 << 20;
    hand_upgrade(&mut tcp).await?;
    let mut buf = vec![0u8; READ];
    // buf[start..filled] is read and not yet answered.
    let (mut start, mut filled) = (0, 0);
    let mut answers: Vec<std::ops::Range<usize>> = Vec::new();
    loop {
        // Answer every whole frame at the front.
        let mut next_len = None;
        while let Some((mut header, header_len)) = FrameHeader::parse(&buf[start..filled])? {
            if header.mask.is_none() || header.payload_len > MAX_FRAME {
                return Err("not a load generator's frame".into());
            }
            // At most 16 MiB plus a header: no overflow.
            let frame_len = header_len + header.payload_len as usize;
            if filled - start < frame_len {
                next_len = Some(frame_len);
                break;
            }
            // The answer's header is the request's without the key (the same
            // length encoding, 4 bytes shorter), written just before the
            // payload: the answer is [start + 4, start + frame_len).
            header.mask = None;
            header.encode_into(&mut &mut buf[start + 4..start + header_len]);
            answers.push(start + 4..start + frame_len);
            start += frame_len;
        }
        if !answers.is_empty() {
            let mut slices: Vec<std::io::IoSlice<'_>> = answers
                .iter()
                .map(|r| std::io::IoSlice::new(&buf[r.clone()]))
                .collect();
            write_all_vectored(&mut tcp, &mut slices).await?;
            answers.clear();
        }
        // Room for the frame at the front: move it down and grow if needed.
        let want = next_len.map_or(MAX_HEADER_LEN, |len| len + MAX_HEADER_LEN);
        if start == filled {
            (start, filled) = (0, 0);
        } else if buf.len() - start < want {
            buf.copy_within(start..filled, 0);
            (start, filled) = (0, filled - start);
        }
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let n = tcp.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
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

/// sockudo-ws, its README's echo server (`WebSocketStream::server` after
/// the handshake, a read/send loop; Pongs are its own).
async fn sockudo_ws(mut tcp: TcpStream) -> Result {
    hand_upgrade(&mut tcp).await?;
    let mut ws = sockudo_ws::WebSocketStream::server(tcp, sockudo_ws::Config::default());
    while let Some(message) = ws.next().await {
        match message? {
            message @ (sockudo_ws::Message::Text(_) | sockudo_ws::Message::Binary(_)) => {
                ws.send(message).await?;
            }
            sockudo_ws::Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// yawc, a read/send loop as in its quick start (`next_frame`, `send`).
async fn yawc(mut tcp: TcpStream) -> Result {
    hand_upgrade(&mut tcp).await?;
    let mut ws = yawc::WebSocket::from_stream(tcp, yawc::Role::Server, yawc::Options::default())?;
    loop {
        let frame = ws.next_frame().await?;
        match frame.opcode() {
            yawc::OpCode::Text | yawc::OpCode::Binary => ws.send(frame).await?,
            yawc::OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

/// yawc as its own benchmark server runs it: up to 32 frames that are
/// ready at once are fed, then flushed together.
async fn yawc_batched(mut tcp: TcpStream) -> Result {
    use std::future::poll_fn;
    use std::task::Poll;

    hand_upgrade(&mut tcp).await?;
    let mut ws = yawc::WebSocket::from_stream(tcp, yawc::Role::Server, yawc::Options::default())?;
    loop {
        let frame = ws.next_frame().await?;
        match frame.opcode() {
            yawc::OpCode::Text | yawc::OpCode::Binary => ws.feed(frame).await?,
            yawc::OpCode::Close => return Ok(()),
            _ => continue,
        }
        for _ in 1..32 {
            let ready = poll_fn(|cx| Poll::Ready(ws.poll_next_frame(cx))).await;
            let Poll::Ready(frame) = ready else { break };
            let frame = frame?;
            match frame.opcode() {
                yawc::OpCode::Text | yawc::OpCode::Binary => ws.feed(frame).await?,
                yawc::OpCode::Close => return Ok(()),
                _ => {}
            }
        }
        ws.flush().await?;
    }
}
