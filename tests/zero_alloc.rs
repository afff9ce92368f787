//! Steady state through the tokio adapter allocates nothing per message:
//! counted with a counting global allocator, not timed.
//!
//! Each case warms up (buffers reach their working size), then counts every
//! allocation in the process (both endpoints, the runtime) over thousands of
//! echoed messages on the runtime's one thread. The raw peers on that
//! thread allocate nothing themselves, so any count is ours.
#![cfg(feature = "tokio")]

#[path = "support/alloc.rs"]
mod alloc;
#[path = "support/io.rs"]
mod io;
mod support;

use std::time::Duration;

use alloc::{Meter, thread_allocations};
use bytes::{Buf, Bytes};
use io::{raw_upgrade, read_head};
use rfc6455::ServerBuilder;
use rfc6455::frame::OpCode;
use rfc6455::handshake::accept_key;
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{ClientBuilder, Config, Message};
use support::{client_frame, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

/// Frames in flight: the peer writes this many before reading the echoes.
const DEPTH: usize = 16;
/// Batches of `DEPTH` messages before counting starts.
const WARM_UP: usize = 100;
/// Batches counted.
const COUNTED: usize = 400;

/// The sizes and kinds every case runs: unfragmented messages, small to large.
const CASES: [(OpCode, usize); 6] = [
    (OpCode::Binary, 16),
    (OpCode::Text, 16),
    (OpCode::Binary, 1024),
    (OpCode::Text, 1024),
    (OpCode::Binary, 64 * 1024),
    (OpCode::Text, 64 * 1024),
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn payload(opcode: OpCode, size: usize) -> Message {
    let bytes = Bytes::from(vec![b'a'; size]);
    match opcode {
        OpCode::Text => Message::text(String::from_utf8(bytes.to_vec()).unwrap()),
        _ => Message::Binary(bytes),
    }
}

/// Counts allocations while a raw client pipelines `frame` at our server
/// (`next` + `feed`, as examples/echo_server does) and reads the echoes.
async fn server_echo(config: Config, frame: Vec<u8>, echo: Vec<u8>) -> usize {
    server_echo_batches(config, frame, echo, DEPTH, WARM_UP, COUNTED).await
}

/// [`server_echo`] with `depth` frames in flight, `warm_up` batches, then
/// `counted` batches.
async fn server_echo_batches(
    config: Config,
    frame: Vec<u8>,
    echo: Vec<u8>,
    depth: usize,
    warm_up: usize,
    counted: usize,
) -> usize {
    let (client_io, server_io) = duplex(1 << 20);
    let server = tokio::spawn(async move {
        let server = ServerBuilder::new().config(config).unwrap();
        let mut ws = WebSocketStream::accept(server_io, &server).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if let message @ (Message::Text(_) | Message::Binary(_)) = message {
                ws.feed(message).await.unwrap();
            }
        }
    });
    let mut stream = raw_upgrade(client_io).await;
    let burst = frame.repeat(depth);
    let expected = echo.repeat(depth);
    let mut echoes = vec![0u8; expected.len()];
    let mut before = 0;
    for batch in 0..warm_up + counted {
        if batch == warm_up {
            before = thread_allocations();
        }
        stream.write_all(&burst).await.unwrap();
        stream.read_exact(&mut echoes).await.unwrap();
    }
    let allocations = thread_allocations() - before;
    assert!(echoes == expected, "the echoes are the messages sent");
    drop(stream);
    server.await.unwrap();
    allocations
}

/// Counts allocations while our client sends `message` `DEPTH` at a time
/// (`feed`, then `flush`) and reads the echoes a raw server writes back.
async fn client_echo(message: Message, request_frame_len: usize, echo: Vec<u8>) -> usize {
    let (client_io, mut server_io) = duplex(1 << 20);
    let server = tokio::spawn(async move {
        let head = String::from_utf8(read_head(&mut server_io).await).unwrap();
        let key = head
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .expect("a key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        );
        server_io.write_all(response.as_bytes()).await.unwrap();
        let mut requests = vec![0u8; request_frame_len * DEPTH];
        let replies = echo.repeat(DEPTH);
        while server_io.read_exact(&mut requests).await.is_ok() {
            server_io.write_all(&replies).await.unwrap();
        }
    });
    let client = ClientBuilder::new("ws://h/").unwrap();
    let (mut ws, _) = WebSocketStream::client(client_io, &client).await.unwrap();
    let mut before = 0;
    for batch in 0..WARM_UP + COUNTED {
        if batch == WARM_UP {
            before = thread_allocations();
        }
        for _ in 0..DEPTH {
            ws.feed(message.clone()).await.unwrap();
        }
        ws.flush().await.unwrap();
        for _ in 0..DEPTH {
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(echoed.payload().len(), message.payload().len());
        }
    }
    let allocations = thread_allocations() - before;
    drop(ws);
    server.await.unwrap();
    allocations
}

fn assert_no_allocations(what: &str, allocations: usize) {
    let messages = COUNTED * DEPTH;
    eprintln!("{what}: {allocations} allocations over {messages} messages");
    assert_eq!(allocations, 0, "{what}: allocations in steady state");
}

#[test]
fn server_echo_allocates_nothing_per_message() {
    let _serial = Meter::start();
    for (opcode, size) in CASES {
        let payload = vec![b'a'; size];
        let request = client_frame(opcode, true, &payload);
        let echo = frame(opcode, true, &payload, None);
        let allocations = runtime().block_on(server_echo(Config::default(), request, echo));
        assert_no_allocations(&format!("server {opcode:?} {size} B"), allocations);
    }
}

/// Messages larger than `Config::write_high_water`, two at a time: the
/// second is read while the first is written. Between batches the connection
/// is idle and lets its large buffers go (see `tests/limits.rs`), so each
/// batch allocates afresh, but a bounded number of times, not once per
/// 256 KiB read: at most three allocations per message.
#[test]
fn server_echo_of_large_messages_allocates_a_bounded_number_of_times() {
    let _serial = Meter::start();
    let payload = vec![b'a'; 1 << 20];
    let request = client_frame(OpCode::Binary, true, &payload);
    let echo = frame(OpCode::Binary, true, &payload, None);
    let (depth, warm_up, counted) = (2, 8, 32);
    let allocations = runtime().block_on(server_echo_batches(
        Config::default(),
        request,
        echo,
        depth,
        warm_up,
        counted,
    ));
    let messages = depth * counted;
    eprintln!("server Binary 1 MiB: {allocations} allocations over {messages} messages");
    assert!(
        allocations <= 3 * messages,
        "{allocations} allocations over {messages} messages"
    );
}

/// The core alone, echoing large messages the way the adapters do while a
/// write is pending: the next message is read before the last echo is
/// written. Its input lands in the allocation of an echo already written.
#[test]
fn core_echo_of_large_messages_read_while_writing_allocates_nothing() {
    let _serial = Meter::start();
    let request = client_frame(OpCode::Binary, true, &vec![b'a'; 1 << 20]);
    let mut conn = support::server(Config::default());
    let mut transport = vec![0u8; 64 * 1024];
    let mut before = 0;
    let (warm_up, rounds) = (8, 40);
    for round in 0..rounds {
        if round == warm_up {
            before = thread_allocations();
        }
        // A reader offered the buffer's spare room, as a socket read is.
        let mut rest = &request[..];
        while !rest.is_empty() {
            let buf = conn.read_buf();
            let n = (buf.capacity() - buf.len()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        let message = conn.next_message().unwrap().expect("a whole message");
        // Only now is the last echo written.
        let out = conn.outgoing();
        while out.has_remaining() {
            let n = out.chunk().len().min(transport.len());
            transport[..n].copy_from_slice(&out.chunk()[..n]);
            out.advance(n);
        }
        conn.send(message).unwrap();
    }
    let allocations = thread_allocations() - before;
    eprintln!(
        "core Binary 1 MiB: {allocations} allocations over {} messages",
        rounds - warm_up
    );
    assert_eq!(allocations, 0, "allocations in steady state");
}

/// An idle connection holds little memory: the allocation of a large payload
/// it sent, kept to read into while the connection is busy, is let go once
/// nothing is waiting either way (and not taken up as the read buffer).
#[test]
fn an_idle_connection_keeps_no_large_allocation() {
    let meter = Meter::start();
    let mut conn = support::server(Config::default());
    conn.send(Message::binary(vec![b'a'; 1 << 20])).unwrap();
    let out = conn.outgoing();
    while out.has_remaining() {
        let n = out.chunk().len();
        out.advance(n);
    }
    // Idle: offered a read of the usual size.
    let room = conn.read_buf().capacity();
    let held = meter.live_growth();
    eprintln!("idle after a 1 MiB send: {held} bytes held, read room {room}");
    assert!(room < 256 * 1024, "read room {room}");
    assert!(held < 256 * 1024, "{held} bytes held while idle");
}

/// Keepalive and idle timers move with every message; re-arming them must
/// not allocate either.
#[test]
fn server_echo_with_timers_allocates_nothing_per_message() {
    let _serial = Meter::start();
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(30)))
        .idle_timeout(Some(Duration::from_secs(60)));
    let payload = b"0123456789abcdef";
    let request = client_frame(OpCode::Binary, true, payload);
    let echo = frame(OpCode::Binary, true, payload, None);
    let allocations = runtime().block_on(server_echo(config, request, echo));
    assert_no_allocations("server with keepalive and idle timers", allocations);
}

#[test]
fn client_echo_allocates_nothing_per_message() {
    let _serial = Meter::start();
    for (opcode, size) in CASES {
        let message = payload(opcode, size);
        let request_frame_len = client_frame(opcode, true, &vec![b'a'; size]).len();
        let echo = frame(opcode, true, &vec![b'a'; size], None);
        let allocations = runtime().block_on(client_echo(message, request_frame_len, echo));
        assert_no_allocations(&format!("client {opcode:?} {size} B"), allocations);
    }
}
