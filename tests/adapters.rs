//! The async adapters' behaviour, one body per test run on every runtime:
//! the tokio adapter on tokio (timer tests on a paused clock), and the
//! futures-io adapter on smol and on tokio through `tokio_util::compat`.
#![cfg(any(feature = "tokio", feature = "futures-io"))]

#[path = "support/io.rs"]
mod io;
#[path = "support/rt.rs"]
mod rt;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use io::OneByte;
use rfc6455::handshake::{AcceptOptions, Rejection};
use rfc6455::rt::{Runtime, WebSocketStream};
use rfc6455::{
    CloseCode, CloseFrame, Config, Error, HandshakeError, Message, PreparedMessage, ProtocolError,
    RateLimit, RateLimits, State,
};
use rt::{BoxFuture, Harness, accept, client, timeout};

/// `seconds` of timer-test time on `H`'s clock.
fn secs<H: Harness>(seconds: u64) -> Duration {
    Duration::from_secs(seconds) / H::TIME_DIVISOR
}

/// Echoes data messages with next + feed until the stream ends; returns the peer's Close.
async fn echo<S, R: Runtime<S>>(mut ws: WebSocketStream<S, R>) -> Option<CloseFrame> {
    while let Some(message) = ws.next().await {
        match message {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.feed(m).await.unwrap(),
            Ok(_) => {}
            Err(e) => panic!("server: {e}"),
        }
    }
    ws.connection().close_frame().cloned()
}

fn accept_all(_: &rfc6455::handshake::RequestView<'_>) -> Result<AcceptOptions, Rejection> {
    Ok(AcceptOptions::new())
}

/// A server on loopback TCP echoing one connection; its URL and result.
async fn tcp_server<H: Harness>() -> (String, BoxFuture<Option<CloseFrame>>) {
    let (listener, url) = H::listen().await;
    let handle = H::spawn(async move {
        let tcp = H::accept_tcp(&listener).await;
        echo(
            accept::<H, _>(tcp, Config::default(), accept_all)
                .await
                .unwrap(),
        )
        .await
    });
    (url, handle)
}

async fn connect<H: Harness>(url: &str) -> WebSocketStream<H::Tcp, H::R> {
    client::<H, _>(H::connect_tcp(url).await, url, Config::default())
        .await
        .unwrap()
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

type Ws<H> = WebSocketStream<<H as Harness>::Mem, <H as Harness>::R>;

/// An in-memory connection: handshake over a pipe of `capacity` bytes.
async fn duplex_pair<H: Harness>(
    capacity: usize,
    client_config: Config,
    server: Config,
) -> (Ws<H>, Ws<H>) {
    let (a, b) = H::pipe(capacity);
    let server = H::spawn(async move { accept::<H, _>(b, server, accept_all).await.unwrap() });
    let client = client::<H, _>(a, "ws://localhost/", client_config)
        .await
        .unwrap();
    (client, server.await)
}

// Echo of text, binary, empty and large messages over TCP; close code and reason.
async fn tcp_echo_and_close<H: Harness>() {
    let (url, server) = tcp_server::<H>().await;
    let mut ws = connect::<H>(&url).await;
    for m in messages() {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), m);
    }
    ws.close(CloseCode(4001), "bye now").await.unwrap();
    assert_eq!(ws.connection().state(), State::Closed);
    assert_eq!(
        server.await,
        Some(CloseFrame::new(CloseCode(4001), "bye now"))
    );
    assert!(ws.next().await.is_none());
}

// Many messages fed at once come back in order (batched writes).
async fn pipelined_messages<H: Harness>() {
    let (url, server) = tcp_server::<H>().await;
    let mut ws = connect::<H>(&url).await;
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
    server.await;
}

// A prepared message goes out through feed/send by reference, by value
// and through a split write half, small and large, among plain messages.
async fn prepared_messages<H: Harness>() {
    let (url, server) = tcp_server::<H>().await;
    let mut ws = connect::<H>(&url).await;
    let small = PreparedMessage::text("tick");
    let large = PreparedMessage::binary(vec![9u8; 100_000]);
    ws.feed(&small).await.unwrap();
    ws.feed(Message::text("plain")).await.unwrap();
    ws.send(large.clone()).await.unwrap();
    for expected in [
        small.to_message(),
        Message::text("plain"),
        large.to_message(),
    ] {
        assert_eq!(ws.next().await.unwrap().unwrap(), expected);
    }
    let (mut write, mut read) = ws.split();
    write.send(&large).await.unwrap();
    assert_eq!(read.next().await.unwrap().unwrap(), large.to_message());
    write.close(CloseCode::NORMAL, "").await.unwrap();
    while read.next().await.is_some() {}
    server.await;
}

// Fragmented input, ping/pong, and the server closing with a code and reason.
async fn fragments_ping_and_server_close<H: Harness>() {
    let (mut client, mut server) = duplex_pair::<H>(
        4096,
        Config::default().max_send_frame_size(Some(100)),
        Config::default(),
    )
    .await;
    let server = H::spawn(async move {
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
    assert_eq!(server.await, big);
}

// 1-byte reads and writes on both ends give the same results.
async fn one_byte_io<H: Harness>() {
    let (a, b) = H::pipe(64);
    let server = H::spawn(async move {
        echo(
            accept::<H, _>(OneByte(b), Config::default(), accept_all)
                .await
                .unwrap(),
        )
        .await
    });
    let mut ws = client::<H, _>(OneByte(a), "ws://h/", Config::default())
        .await
        .unwrap();
    for m in messages().into_iter().take(5) {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), m);
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(
        server.await,
        Some(CloseFrame::new(CloseCode::NORMAL, "done"))
    );
}

// A reader that never reads: the sender's writes stop at the write buffer
// limit (bounded memory), and resume when the reader catches up.
async fn slow_reader_back_pressure<H: Harness>() {
    let config = Config::default().max_write_buffer(64 * 1024);
    let (mut client, mut server) = duplex_pair::<H>(16 * 1024, config.clone(), config).await;
    let chunk = Message::binary(vec![1u8; 8 * 1024]);
    let mut fed = 0;
    let stalled = loop {
        match timeout::<H, _>(Duration::from_millis(200), client.feed(chunk.clone())).await {
            Some(result) => {
                result.unwrap();
                fed += 1;
                assert!(fed < 1000, "never pushed back");
            }
            None => break fed,
        }
    };
    // Queued output stays bounded by the configured buffer plus one message.
    assert!(
        stalled * 8 * 1024 <= 64 * 1024 + 16 * 1024 + 8 * 1024 + 1024,
        "fed {stalled} before back-pressure"
    );
    let reader = H::spawn(async move {
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
    assert_eq!(reader.await, stalled + 10);
}

/// Polls `future` once, without a task to wake.
fn poll_once<F: Future>(future: F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::pin!(future).poll(&mut cx)
}

// write_high_water: past it, feed writes the backlog out before queueing more,
// and waits while the transport does not take it; below it, feed only queues.
async fn feed_waits_past_the_high_water_mark<H: Harness>() {
    let big = Message::binary(vec![7u8; 64 * 1024]);
    let small = Message::binary(vec![9u8; 100]);

    let config = Config::default().write_high_water(32 * 1024);
    let (mut client, mut server) = duplex_pair::<H>(16 * 1024, config, Config::default()).await;
    assert!(
        poll_once(client.feed(big.clone())).is_ready(),
        "an empty queue takes it"
    );
    // 64 KiB queued, the pipe holds 16 KiB, nobody reads: feed must wait.
    assert!(poll_once(client.feed(small.clone())).is_pending());
    assert!(poll_once(client.feed(small.clone())).is_pending());
    let reader = H::spawn(async move {
        let first = server.next().await.unwrap().unwrap();
        let second = server.next().await.unwrap().unwrap();
        (first, second)
    });
    client.feed(small.clone()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(reader.await, (big.clone(), small.clone()));

    // With the default mark (256 KiB) the same backlog only queues.
    let (mut client, _server) =
        duplex_pair::<H>(16 * 1024, Config::default(), Config::default()).await;
    assert!(poll_once(client.feed(big)).is_ready());
    for _ in 0..10 {
        assert!(poll_once(client.feed(small.clone())).is_ready());
    }
}

// A message larger than write_high_water is queued once the queue is empty
// (so an echo of large messages holds one being written and one being read),
// while a small one still only waits past the mark. The Sink, which cannot
// see the size in poll_ready, keeps the mark alone.
async fn feed_of_a_message_over_the_mark_waits_for_an_empty_queue<H: Harness>() {
    let small = Message::binary(vec![9u8; 100]);
    let large = Message::binary(vec![7u8; 64 * 1024]);
    let config = Config::default().write_high_water(32 * 1024);
    let (mut client, mut server) =
        duplex_pair::<H>(16 * 1024, config.clone(), Config::default()).await;
    for _ in 0..3 {
        assert!(poll_once(client.feed(small.clone())).is_ready());
    }
    assert!(client.connection().is_write_backlogged(64 * 1024));
    assert!(!client.connection().is_write_backlogged(100));
    assert!(
        poll_once(client.feed(large.clone())).is_ready(),
        "the pipe takes the 300 queued bytes"
    );
    // Now 64 KiB are queued (the pipe holds 16 KiB): past the mark for any message.
    assert!(poll_once(client.feed(small.clone())).is_pending());
    let reader = H::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(server.next().await.unwrap().unwrap());
        }
        got
    });
    client.feed(large.clone()).await.unwrap();
    client.flush().await.unwrap();
    let got = reader.await;
    assert_eq!(got[3], large);
    assert_eq!(got[4], large);

    // Below the mark but not empty: a small message queues, a large one waits.
    let (mut client, mut server) = duplex_pair::<H>(16, config, Config::default()).await;
    assert!(poll_once(client.feed(small.clone())).is_ready());
    assert!(
        poll_once(client.flush()).is_pending(),
        "the pipe holds 16 bytes"
    );
    assert!(poll_once(client.feed(small.clone())).is_ready());
    assert!(poll_once(client.feed(large.clone())).is_pending());
    let reader = H::spawn(async move {
        for _ in 0..3 {
            server.next().await.unwrap().unwrap();
        }
    });
    client.feed(large).await.unwrap();
    client.flush().await.unwrap();
    reader.await;
}

// split(): reading and writing from different tasks.
async fn split_halves_in_two_tasks<H: Harness>() {
    let (url, server) = tcp_server::<H>().await;
    let ws = connect::<H>(&url).await;
    let (mut writer, mut reader) = ws.split();
    let sender = H::spawn(async move {
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
    sender.await;
    assert_eq!(received, 1000);
    server.await;
}

// reunite(): the halves of one split make the stream again, which goes on
// working; halves of two different streams are handed back.
async fn split_halves_reunite<H: Harness>() {
    let (client, mut server) = duplex_pair::<H>(4096, Config::default(), Config::default()).await;
    let (other, _other_server) = duplex_pair::<H>(4096, Config::default(), Config::default()).await;
    let (mut write, read) = client.split();
    write.send(Message::text("one")).await.unwrap();
    let (other_write, other_read) = other.split();
    let (read, _) = read.reunite(other_write).unwrap_err();
    drop(other_read);
    let mut client = read.reunite(write).unwrap();
    client.send(Message::text("two")).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("one"));
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("two"));
    server.send(Message::text("back")).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), Message::text("back"));
}

// Keepalive pings are sent by the adapter's own timer.
async fn keepalive_pings_are_sent<H: Harness>() {
    let client_config = Config::default().keepalive_interval(Some(secs::<H>(5)));
    // The interval counts from the connection's start, which on a real
    // clock comes a little after the pair is asked for.
    let started = H::now();
    let (mut client, mut server) = duplex_pair::<H>(4096, client_config, Config::default()).await;
    let client_task = H::spawn(async move {
        // Keep polling: the client's timer fires inside next().
        let pong = client.next().await;
        (pong, client)
    });
    // The first timed Ping carries the connection's counter, 1.
    let timed = Bytes::copy_from_slice(&1u64.to_be_bytes());
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping(timed.clone())
    );
    assert!(H::now() - started >= secs::<H>(5));
    // The Pong was queued when the Ping was read; it leaves with the next write.
    server.flush().await.unwrap();
    let (pong, client) = client_task.await;
    assert_eq!(pong.unwrap().unwrap(), Message::Pong(timed));
    // Its round trip was measured by the adapter's clock.
    let stats = client.stats();
    assert!(stats.rtt.is_some_and(|rtt| rtt < secs::<H>(5)), "{stats:?}");
    assert_eq!(stats.sent.pings, 1);
    assert_eq!(stats.received.pongs, 1);
}

// A silent peer fails the connection after the idle timeout, with Close 1001.
async fn idle_timeout_closes_a_silent_peer<H: Harness>() {
    let server_config = Config::default().idle_timeout(Some(secs::<H>(60)));
    // Idle counts from the connection's start (see above).
    let started = H::now();
    let (mut quiet, mut server) = duplex_pair::<H>(4096, Config::default(), server_config).await;
    // The quiet peer sends nothing, but reads: it answers the Close.
    let peer = H::spawn(async move {
        let mut got = Vec::new();
        while let Some(Ok(message)) = quiet.next().await {
            got.push(message);
        }
        got
    });
    // The error comes once the close has run its course.
    let result = server.next().await;
    assert!(
        matches!(
            result,
            Some(Err(Error::Protocol(ProtocolError::IdleTimeout)))
        ),
        "{result:?}"
    );
    assert!(H::now() - started >= secs::<H>(60));
    assert!(server.next().await.is_none(), "the error is the last item");
    assert_eq!(
        peer.await,
        [Message::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            ""
        )))]
    );
}

// The close timeout bounds the wait for a peer that never answers a Close.
async fn close_timeout_bounds_the_wait<H: Harness>() {
    let config = Config::default().close_timeout(Some(secs::<H>(3)));
    let (mut client, _silent_server) = duplex_pair::<H>(4096, config, Config::default()).await;
    let started = H::now();
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(H::now() - started >= secs::<H>(3));
    assert_eq!(client.connection().state(), State::Closed);
    assert_eq!(
        client.connection().close_frame().map(|f| f.code),
        Some(CloseCode::ABNORMAL)
    );
}

// The accept callback rejects; the client sees the status and body.
async fn callback_rejection<H: Harness>() {
    let (a, b) = H::pipe(4096);
    let server = H::spawn(async move {
        accept::<H, _>(b, Config::default(), |req| match req.header("x-api-key") {
            Some(b"k") => Ok(AcceptOptions::new()),
            _ => Err(Rejection::new(403).body("forbidden")),
        })
        .await
        .map(|_| ())
    });
    let err = client::<H, _>(a, "ws://h/", Config::default())
        .await
        .unwrap_err();
    let Error::Handshake(HandshakeError::Refused(rejected)) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (rejected.status, &rejected.body[..]),
        (403, &b"forbidden"[..])
    );
    assert!(matches!(server.await, Err(Error::Rejected(403))));
}

// The server sees what its handshake decided: the subprotocol, the path
// and query, and a typed value its request callback handed on.
async fn the_server_sees_its_handshake<H: Harness>() {
    #[derive(Debug, PartialEq)]
    struct User(String);
    let (a, b) = H::pipe(4096);
    let server = H::spawn(async move {
        let server = rfc6455::ServerBuilder::new()
            .protocols(["chat.v2", "chat.v1"])
            .on_request(|req| match req.query_param("token") {
                Some("s3cret") => Ok(AcceptOptions::new().data(User("ada".into()))),
                _ => Err(Rejection::new(401)),
            });
        let mut ws = WebSocketStream::<_, H::R>::accept(b, &server)
            .await
            .unwrap();
        let seen = (
            ws.protocol().map(str::to_owned),
            ws.path().map(str::to_owned),
            ws.query().map(str::to_owned),
        );
        // Asked by the wrong type, the value stays.
        assert_eq!(ws.take_data::<String>(), None);
        let user = ws.take_data::<User>();
        assert_eq!(ws.take_data::<User>(), None, "taken once");
        (seen, user)
    });
    let client = rfc6455::ClientBuilder::new("ws://h/rooms/7?token=s3cret")
        .unwrap()
        .protocol("chat.v1")
        .protocol("chat.v2");
    let (ws, accepted) = WebSocketStream::<_, H::R>::client(a, &client)
        .await
        .unwrap();
    // The server's order of preference decides.
    assert_eq!(accepted.protocol(), Some("chat.v2"));
    assert_eq!(ws.protocol(), Some("chat.v2"));
    assert_eq!(ws.path(), Some("/rooms/7"));
    let ((protocol, path, query), user) = server.await;
    assert_eq!(protocol.as_deref(), Some("chat.v2"));
    assert_eq!(path.as_deref(), Some("/rooms/7"));
    assert_eq!(query.as_deref(), Some("token=s3cret"));
    assert_eq!(user, Some(User("ada".into())));
}

// A peer that half-closes mid-message: an error, not a hang.
async fn eof_mid_message_is_abnormal<H: Harness>() {
    let (a, mut b) = H::pipe(4096);
    let client = H::spawn(async move { client::<H, _>(a, "ws://h/", Config::default()).await });
    let mut request = vec![0u8; 1024];
    let n = H::read(&mut b, &mut request).await;
    let key = std::str::from_utf8(&request[..n])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        rfc6455::handshake::accept_key(&key)
    );
    H::write_all(&mut b, response.as_bytes()).await;
    H::write_all(&mut b, &[0x82, 10, 1, 2, 3]).await;
    H::shutdown(&mut b).await;
    let mut ws = client.await.unwrap();
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
async fn thousand_connections<H: Harness>() {
    let (listener, url) = H::listen().await;
    let _server = H::spawn(async move {
        loop {
            let tcp = H::accept_tcp(&listener).await;
            let _connection = H::spawn(async move {
                echo(
                    accept::<H, _>(tcp, Config::default(), accept_all)
                        .await
                        .unwrap(),
                )
                .await
            });
        }
    });
    // Connect in waves of 100 so the listen queue never overflows; every
    // connection stays open.
    let mut open = Vec::new();
    for wave in 0..10u32 {
        let mut clients = Vec::new();
        for i in wave * 100..(wave + 1) * 100 {
            let url = url.clone();
            clients.push(H::spawn(async move {
                let mut ws = connect::<H>(&url).await;
                ws.send(Message::text(format!("client {i}"))).await.unwrap();
                let reply = ws.next().await.unwrap().unwrap();
                assert_eq!(reply, Message::text(format!("client {i}")));
                ws
            }));
        }
        for c in clients {
            open.push(c.await);
        }
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
// protocol still goes out, with the Close 1002, and the application that
// stops at the error has let the close finish.
async fn queued_output_goes_out_at_an_error<H: Harness>() {
    let (a, mut b) = H::pipe(4096);
    let server = H::spawn(async move {
        let mut ws = accept::<H, _>(a, Config::default(), accept_all)
            .await
            .unwrap();
        while let Some(message) = ws.next().await {
            match message {
                Ok(m @ Message::Text(_)) => ws.feed(m).await.unwrap(),
                Ok(_) => {}
                Err(error) => return error, // and drop the stream
            }
        }
        panic!("no error");
    });
    H::write_all(&mut b, io::REQUEST).await;
    // A valid masked "hi", then a frame with RSV2 set, in one write.
    H::write_all(
        &mut b,
        &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0xa1, 0x80, 0, 0, 0, 0],
    )
    .await;
    // The server shuts its side after the Close; once this end closes
    // too, its stream ends with the error.
    let wire = H::read_to_end(&mut b).await;
    drop(b);
    let error = server.await;
    assert!(matches!(
        error,
        Error::Protocol(ProtocolError::ReservedBits)
    ));
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &wire[head_end..],
        &[0x81, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xea]
    );
}

// A rate limit pauses reading: messages arrive no faster than the limit,
// and the peer's writes stall behind the pipe (backpressure) instead of
// piling up at the server.
async fn a_rate_limit_pauses_reading<H: Harness>() {
    const COUNT: usize = 5_000;
    let per_second = 1_000 * u64::from(H::TIME_DIVISOR);
    let limits = RateLimits::default().messages(Some(RateLimit::new(per_second, 100)));
    // The client writes each message out before taking the next.
    let client_config = Config::default().write_high_water(0);
    let started = H::now();
    let (mut client, mut server) =
        duplex_pair::<H>(4096, client_config, Config::default().rate_limits(limits)).await;
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let writer = H::spawn(async move {
        for _ in 0..COUNT {
            client.feed(Message::binary(&b"x"[..])).await.unwrap();
            counter.fetch_add(1, Ordering::Relaxed);
        }
        client.flush().await.unwrap();
        client
    });
    for received in 1..=COUNT {
        let message = server.next().await.unwrap().unwrap();
        assert_eq!(message, Message::binary(&b"x"[..]));
        // Ahead of what was let through: the pipe, one read, one message.
        let ahead = sent.load(Ordering::Relaxed).saturating_sub(received);
        assert!(ahead <= (4096 + 16 * 1024) / 7 + 1, "{ahead} ahead");
    }
    let took = H::now() - started;
    assert!(took >= secs::<H>(4) + secs::<H>(9) / 10, "{took:?}");
    assert!(server.stats().rate_limited > 0);
    let _client = writer.await;
}

/// One `#[test]` per body for a harness: `plain` bodies on its executor,
/// `timed` ones on its (paused, where it has one) clock.
macro_rules! adapter_tests {
    ($harness:ty) => {
        adapter_tests!($harness; plain: [
            tcp_echo_and_close, pipelined_messages, prepared_messages, fragments_ping_and_server_close,
            one_byte_io, slow_reader_back_pressure, feed_waits_past_the_high_water_mark,
            feed_of_a_message_over_the_mark_waits_for_an_empty_queue,
            split_halves_in_two_tasks, split_halves_reunite, callback_rejection, eof_mid_message_is_abnormal,
            the_server_sees_its_handshake,
            thousand_connections, queued_output_goes_out_at_an_error
        ]; timed: [
            keepalive_pings_are_sent, idle_timeout_closes_a_silent_peer,
            close_timeout_bounds_the_wait, a_rate_limit_pauses_reading
        ]);
    };
    ($harness:ty; plain: [$($plain:ident),*]; timed: [$($timed:ident),*]) => {
        $(
            #[test]
            fn $plain() {
                <$harness as Harness>::run(super::$plain::<$harness>());
            }
        )*
        $(
            #[test]
            fn $timed() {
                <$harness as Harness>::run_timed(super::$timed::<$harness>());
            }
        )*
    };
}

#[cfg(feature = "tokio")]
mod tokio_adapter {
    use super::rt::Harness;
    use super::rt::tokio_rt::TokioAdapter;
    adapter_tests!(TokioAdapter);
}

#[cfg(feature = "futures-io")]
mod futures_io_on_smol {
    use super::rt::Harness;
    use super::rt::futures_rt::SmolAdapter;
    adapter_tests!(SmolAdapter);
}

#[cfg(feature = "futures-io")]
mod futures_io_on_tokio_compat {
    use super::rt::Harness;
    use super::rt::futures_rt::TokioCompatAdapter;
    adapter_tests!(TokioCompatAdapter);
}
