//! The tokio adapter over loopback TCP and tokio::io::duplex.
#![cfg(feature = "tokio")]

#[path = "support/io.rs"]
mod io;

use std::time::Duration;

use bytes::Bytes;
use io::OneByte;
use rfc6455::handshake::{AcceptOptions, ClientRequest, Rejection};
use rfc6455::rt::tokio::{
    WebSocketStream, accept_async, accept_hdr_async, client_async, client_async_with, connect_async,
};
use rfc6455::{
    CloseCode, CloseFrame, Config, Error, HandshakeError, Message, ProtocolError, State,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, duplex};
use tokio::net::TcpListener;

/// Echoes data messages with next + feed until the stream ends; returns the peer's Close.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) -> Option<CloseFrame> {
    while let Some(message) = ws.next().await {
        match message {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.feed(m).await.unwrap(),
            Ok(_) => {}
            Err(e) => panic!("server: {e}"),
        }
    }
    ws.connection().close_frame().cloned()
}

async fn tcp_server() -> (String, tokio::task::JoinHandle<Option<CloseFrame>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        echo(accept_async(tcp).await.unwrap()).await
    });
    (url, handle)
}

fn messages() -> Vec<Message> {
    vec![
        Message::text("hello"),
        Message::text("κόσμε 𝄞"),
        Message::binary(vec![0u8, 255, 1]),
        Message::text(""),
        Message::binary(Bytes::new()),
        Message::binary((0..2_000_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    ]
}

/// An in-memory connection: handshake over a duplex pipe of `capacity` bytes.
async fn duplex_pair(
    capacity: usize,
    client: Config,
    server: Config,
) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = duplex(capacity);
    let server = tokio::spawn(async move {
        rfc6455::rt::tokio::accept_hdr_async_with(b, server, Default::default(), |_| {
            Ok(AcceptOptions::new())
        })
        .await
        .unwrap()
    });
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let (client, _) = client_async_with(a, &request, client).await.unwrap();
    (client, server.await.unwrap())
}

// Echo of text, binary, empty and large messages over TCP; close code and reason.
#[tokio::test]
async fn tcp_echo_and_close() {
    let (url, server) = tcp_server().await;
    let (mut ws, _) = connect_async(&url).await.unwrap();
    for m in messages() {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), m);
    }
    ws.close(CloseCode(4001), "bye now").await.unwrap();
    assert_eq!(ws.connection().state(), State::Closed);
    assert_eq!(
        server.await.unwrap(),
        Some(CloseFrame::new(CloseCode(4001), "bye now"))
    );
    assert!(ws.next().await.is_none());
}

// Many messages fed at once come back in order (batched writes).
#[tokio::test]
async fn pipelined_messages() {
    let (url, server) = tcp_server().await;
    let (mut ws, _) = connect_async(&url).await.unwrap();
    for i in 0..5000u32 {
        ws.feed(Message::binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..5000u32 {
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(i.to_be_bytes().to_vec())
        );
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.unwrap();
}

// Fragmented input, ping/pong, and the server closing with a code and reason.
#[tokio::test]
async fn fragments_ping_and_server_close() {
    let (mut client, mut server) = duplex_pair(
        4096,
        Config::default().max_send_frame_size(Some(100)),
        Config::default(),
    )
    .await;
    let server = tokio::spawn(async move {
        let got = server.next().await.unwrap().unwrap();
        // Reading the Ping queues its Pong, which goes out before the Close.
        let ping = server.next().await.unwrap().unwrap();
        assert_eq!(ping, Message::Ping(Bytes::from_static(b"p")));
        server
            .close(CloseCode::GOING_AWAY, "maintenance")
            .await
            .unwrap();
        got
    });
    let big = Message::text("é".repeat(3000));
    client.send(big.clone()).await.unwrap();
    client
        .send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"p"))
    );
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "maintenance")))
    );
    assert!(
        client.next().await.is_none(),
        "the server closes the transport"
    );
    assert_eq!(server.await.unwrap(), big);
}

// 1-byte reads and writes on both ends give the same results.
#[tokio::test]
async fn one_byte_io() {
    let (a, b) = duplex(64);
    let server = tokio::spawn(async move { echo(accept_async(OneByte(b)).await.unwrap()).await });
    let (mut ws, _) = client_async(OneByte(a), &ClientRequest::new("ws://h/").unwrap())
        .await
        .unwrap();
    for m in messages().into_iter().take(5) {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), m);
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(
        server.await.unwrap(),
        Some(CloseFrame::new(CloseCode::NORMAL, "done"))
    );
}

// A reader that never reads: the sender's writes stop at the write buffer
// limit (bounded memory), and resume when the reader catches up.
#[tokio::test]
async fn slow_reader_back_pressure() {
    let config = Config::default().max_write_buffer(64 * 1024);
    let (mut client, mut server) = duplex_pair(16 * 1024, config.clone(), config).await;
    let chunk = Message::binary(vec![1u8; 8 * 1024]);
    let mut fed = 0;
    let stalled = loop {
        match tokio::time::timeout(Duration::from_millis(200), client.feed(chunk.clone())).await {
            Ok(result) => {
                result.unwrap();
                fed += 1;
                assert!(fed < 1000, "never pushed back");
            }
            Err(_) => break fed,
        }
    };
    // Queued output stays bounded by the configured buffer plus one message.
    assert!(
        stalled * 8 * 1024 <= 64 * 1024 + 16 * 1024 + 8 * 1024 + 1024,
        "fed {stalled} before back-pressure"
    );
    let reader = tokio::spawn(async move {
        let mut count = 0;
        while let Some(Ok(Message::Binary(_))) = server.next().await {
            count += 1;
            if count == stalled + 10 {
                break;
            }
        }
        count
    });
    for _ in 0..10 {
        client.feed(chunk.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(reader.await.unwrap(), stalled + 10);
}

/// Polls `future` once, without a task to wake.
fn poll_once<F: Future>(future: F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::pin!(future).poll(&mut cx)
}

// write_high_water: past it, feed writes the backlog out before queueing more,
// and waits while the transport does not take it; below it, feed only queues.
#[tokio::test]
async fn feed_waits_past_the_high_water_mark() {
    let big = Message::binary(vec![7u8; 64 * 1024]);
    let small = Message::binary(vec![9u8; 100]);

    let config = Config::default().write_high_water(32 * 1024);
    let (mut client, mut server) = duplex_pair(16 * 1024, config, Config::default()).await;
    assert!(
        poll_once(client.feed(big.clone())).is_ready(),
        "an empty queue takes it"
    );
    // 64 KiB queued, the pipe holds 16 KiB, nobody reads: feed must wait.
    assert!(poll_once(client.feed(small.clone())).is_pending());
    assert!(poll_once(client.feed(small.clone())).is_pending());
    let reader = tokio::spawn(async move {
        let first = server.next().await.unwrap().unwrap();
        let second = server.next().await.unwrap().unwrap();
        (first, second)
    });
    client.feed(small.clone()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(reader.await.unwrap(), (big.clone(), small.clone()));

    // With the default mark (256 KiB) the same backlog only queues.
    let (mut client, _server) = duplex_pair(16 * 1024, Config::default(), Config::default()).await;
    assert!(poll_once(client.feed(big)).is_ready());
    for _ in 0..10 {
        assert!(poll_once(client.feed(small.clone())).is_ready());
    }
}

// A message larger than write_high_water is queued once the queue is empty
// (so an echo of large messages holds one being written and one being read),
// while a small one still only waits past the mark. The Sink, which cannot
// see the size in poll_ready, keeps the mark alone.
#[tokio::test]
async fn feed_of_a_message_over_the_mark_waits_for_an_empty_queue() {
    let small = Message::binary(vec![9u8; 100]);
    let large = Message::binary(vec![7u8; 64 * 1024]);
    let config = Config::default().write_high_water(32 * 1024);
    let (mut client, mut server) = duplex_pair(16 * 1024, config.clone(), Config::default()).await;
    for _ in 0..3 {
        assert!(poll_once(client.feed(small.clone())).is_ready());
    }
    assert!(client.connection().is_write_backlogged_for(64 * 1024));
    assert!(!client.connection().is_write_backlogged_for(100));
    assert!(
        poll_once(client.feed(large.clone())).is_ready(),
        "the pipe takes the 300 queued bytes"
    );
    // Now 64 KiB are queued (the pipe holds 16 KiB): past the mark for any message.
    assert!(poll_once(client.feed(small.clone())).is_pending());
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(server.next().await.unwrap().unwrap());
        }
        got
    });
    client.feed(large.clone()).await.unwrap();
    client.flush().await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got[3], large);
    assert_eq!(got[4], large);

    // Below the mark but not empty: a small message queues, a large one waits.
    let (mut client, mut server) = duplex_pair(16, config, Config::default()).await;
    assert!(poll_once(client.feed(small.clone())).is_ready());
    assert!(
        poll_once(client.flush()).is_pending(),
        "the pipe holds 16 bytes"
    );
    assert!(poll_once(client.feed(small.clone())).is_ready());
    assert!(poll_once(client.feed(large.clone())).is_pending());
    let reader = tokio::spawn(async move {
        for _ in 0..3 {
            server.next().await.unwrap().unwrap();
        }
    });
    client.feed(large).await.unwrap();
    client.flush().await.unwrap();
    reader.await.unwrap();
}

// split(): reading and writing from different tasks.
#[tokio::test]
async fn split_halves_in_two_tasks() {
    let (url, server) = tcp_server().await;
    let (ws, _) = connect_async(&url).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..1000u32 {
            writer.send(Message::text(i.to_string())).await.unwrap();
        }
        writer.close(CloseCode::NORMAL, "").await.unwrap();
    });
    let mut received = 0u32;
    while let Some(message) = reader.next().await {
        match message.unwrap() {
            Message::Text(text) => {
                assert_eq!(text.as_str(), received.to_string());
                received += 1;
            }
            Message::Close(_) => {}
            other => panic!("{other:?}"),
        }
    }
    sender.await.unwrap();
    assert_eq!(received, 1000);
    server.await.unwrap();
}

// Keepalive pings are sent by the adapter's own timer.
#[tokio::test(start_paused = true)]
async fn keepalive_pings_are_sent() {
    let client_config = Config::default().keepalive_interval(Some(Duration::from_secs(5)));
    let (mut client, mut server) = duplex_pair(4096, client_config, Config::default()).await;
    let client_task = tokio::spawn(async move {
        // Keep polling: the client's timer fires inside next().
        let pong = client.next().await;
        (pong, client)
    });
    let started = tokio::time::Instant::now();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping(Bytes::new())
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
    // The Pong was queued when the Ping was read; it leaves with the next write.
    server.flush().await.unwrap();
    let (pong, _client) = client_task.await.unwrap();
    assert_eq!(pong.unwrap().unwrap(), Message::Pong(Bytes::new()));
}

// A silent peer fails the connection after the idle timeout, with Close 1001.
#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_a_silent_peer() {
    let server_config = Config::default().idle_timeout(Some(Duration::from_secs(60)));
    let (mut quiet, mut server) = duplex_pair(4096, Config::default(), server_config).await;
    let started = tokio::time::Instant::now();
    let result = server.next().await;
    assert!(
        matches!(
            result,
            Some(Err(Error::Protocol(ProtocolError::IdleTimeout)))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert!(
        server.next().await.is_none(),
        "after the error: flush the Close, shut down"
    );
    let close = quiet.next().await.unwrap().unwrap();
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")))
    );
}

// The close timeout bounds the wait for a peer that never answers a Close.
#[tokio::test(start_paused = true)]
async fn close_timeout_bounds_the_wait() {
    let config = Config::default().close_timeout(Some(Duration::from_secs(3)));
    let (mut client, _silent_server) = duplex_pair(4096, config, Config::default()).await;
    let started = tokio::time::Instant::now();
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(client.connection().state(), State::Closed);
    assert_eq!(
        client.connection().close_frame().map(|f| f.code),
        Some(CloseCode::ABNORMAL)
    );
}

// accept_hdr_async: the callback rejects; the client sees the status and body.
#[tokio::test]
async fn callback_rejection() {
    let (a, b) = duplex(4096);
    let server = tokio::spawn(async move {
        accept_hdr_async(b, |req| match req.header("x-api-key") {
            Some(b"k") => Ok(AcceptOptions::new()),
            _ => Err(Rejection::new(403).body("forbidden")),
        })
        .await
        .map(|_| ())
    });
    let err = client_async(a, &ClientRequest::new("ws://h/").unwrap())
        .await
        .unwrap_err();
    let Error::Handshake(HandshakeError::Rejected(rejected)) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (rejected.status, &rejected.body[..]),
        (403, &b"forbidden"[..])
    );
    assert!(matches!(server.await.unwrap(), Err(Error::Rejected(403))));
}

// A peer that half-closes mid-message: an error, not a hang.
#[tokio::test]
async fn eof_mid_message_is_abnormal() {
    let (a, mut b) = duplex(4096);
    let client =
        tokio::spawn(async move { client_async(a, &ClientRequest::new("ws://h/").unwrap()).await });
    let mut request = vec![0u8; 1024];
    let n = b.read(&mut request).await.unwrap();
    let key = std::str::from_utf8(&request[..n])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned();
    use tokio::io::AsyncWriteExt;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        rfc6455::handshake::accept_key(&key)
    );
    b.write_all(response.as_bytes()).await.unwrap();
    b.write_all(&[0x82, 10, 1, 2, 3]).await.unwrap();
    b.shutdown().await.unwrap();
    let (mut ws, _) = client.await.unwrap().unwrap();
    let result = ws.next().await;
    assert!(
        matches!(
            result,
            Some(Err(Error::Protocol(ProtocolError::AbnormalClosure)))
        ),
        "{result:?}"
    );
}

// 1000 concurrent connections against one server, all open at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_connections() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(2048).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move { echo(accept_async(tcp).await.unwrap()).await });
        }
    });
    // Connect in waves so the listen queue never overflows; every connection stays open.
    let connecting = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
    let mut clients = Vec::new();
    for i in 0..1000u32 {
        let url = url.clone();
        let connecting = std::sync::Arc::clone(&connecting);
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire().await.unwrap();
            let (mut ws, _) = connect_async(&url).await.unwrap();
            drop(permit);
            ws.send(Message::text(format!("client {i}"))).await.unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert_eq!(reply, Message::text(format!("client {i}")));
            ws
        }));
    }
    let mut open = Vec::new();
    for c in clients {
        open.push(c.await.unwrap());
    }
    assert_eq!(open.len(), 1000, "all connected at once");
    for ws in &open {
        assert_eq!(ws.connection().state(), State::Open);
    }
    for mut ws in open {
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    }
}

// Autobahn 3.2 and friends: a message echoed just before the peer breaks the
// protocol still goes out, with the Close 1002, even if the application
// stops polling at the error.
#[tokio::test]
async fn queued_output_goes_out_at_an_error() {
    let (a, mut b) = duplex(4096);
    let server = tokio::spawn(async move {
        let mut ws = accept_async(a).await.unwrap();
        while let Some(message) = ws.next().await {
            match message {
                Ok(m @ Message::Text(_)) => ws.feed(m).await.unwrap(),
                Ok(_) => {}
                Err(error) => return error, // and drop the stream
            }
        }
        panic!("no error");
    });
    use tokio::io::AsyncWriteExt;
    b.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    // A valid masked "hi", then a frame with RSV2 set, in one write.
    b.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0xa1, 0x80, 0, 0, 0, 0])
        .await
        .unwrap();
    let error = server.await.unwrap();
    assert!(matches!(
        error,
        Error::Protocol(ProtocolError::ReservedBits)
    ));
    let mut wire = Vec::new();
    b.read_to_end(&mut wire).await.unwrap();
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &wire[head_end..],
        &[0x81, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xea]
    );
}

/// A transport that records each write: which call, how many buffers and
/// how many bytes they held.
struct RecordingWrites {
    inner: DuplexStream,
    writes: Vec<(&'static str, usize, usize)>,
}

impl AsyncRead for RecordingWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RecordingWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes.push(("write", 1, buf.len()));
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.writes.push(("vectored", bufs.len(), all.len()));
        std::pin::Pin::new(&mut self.inner).poll_write(cx, &all)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// Queued output that is one small buffer goes through poll_write (a socket's
// send, cheaper than writev); several buffers take the vectored call.
#[tokio::test]
async fn one_buffer_is_written_without_the_vectored_call() {
    let (a, mut peer) = duplex(1 << 20);
    let stream = RecordingWrites {
        inner: a,
        writes: Vec::new(),
    };
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(stream, conn);
    // A small frame is one buffer; a large payload is queued without a copy
    // behind its header: two buffers.
    ws.send(Message::binary(vec![1u8; 16])).await.unwrap();
    ws.send(Message::binary(vec![2u8; 60_000])).await.unwrap();
    assert_eq!(
        ws.get_ref().writes,
        [("write", 1, 18), ("vectored", 2, 60_004)]
    );
    let mut wire = vec![0u8; 2 + 16 + 4 + 60_000];
    peer.read_exact(&mut wire).await.unwrap();
    assert_eq!(&wire[..2], [0x82, 16]);
    assert_eq!(&wire[18..22], [0x82, 126, 0xea, 0x60]);
    assert!(wire[22..].iter().all(|&b| b == 2));
}

// One large buffer (the rest of a payload after a partial write) takes the
// vectored call too: tokio's poll_write would take the partial write for a
// full socket and wait for readiness, where writev writes again at once.
#[tokio::test]
async fn the_rest_of_a_large_payload_is_written_with_the_vectored_call() {
    const LEN: usize = 300_000;
    let (a, mut peer) = duplex(100_000);
    let stream = RecordingWrites {
        inner: a,
        writes: Vec::new(),
    };
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(stream, conn);
    let reader = tokio::spawn(async move {
        let mut wire = vec![0u8; 10 + LEN];
        peer.read_exact(&mut wire).await.unwrap();
        wire
    });
    ws.send(Message::binary(vec![3u8; LEN])).await.unwrap();
    let wire = reader.await.unwrap();
    assert_eq!(&wire[..2], [0x82, 127]);
    assert_eq!(
        u64::from_be_bytes(wire[2..10].try_into().unwrap()),
        LEN as u64
    );
    assert!(wire[10..].iter().all(|&b| b == 3));
    let writes = &ws.get_ref().writes;
    // The duplex takes at most 100 000 bytes at a time: several writes, the
    // later ones of the payload's rest alone. Each of 64 KiB or more is
    // vectored, one buffer or two; only a small rest goes through poll_write.
    assert!(
        writes.iter().filter(|&&(_, bufs, _)| bufs == 1).count() >= 2,
        "{writes:?}"
    );
    for &(call, _, bytes) in writes {
        assert_eq!(call == "vectored", bytes >= 64 * 1024, "{writes:?}");
    }
}
