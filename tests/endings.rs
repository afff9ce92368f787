//! How connections end, over real loopback sockets: every Close a server
//! (tokio or blocking) sends reaches the client whole, followed by the end of the stream and
//! never a reset (the lingering close), even with the client's data still
//! in flight or its echoes unread; and a peer that reads nothing is let go
//! within the close timeout.
#![cfg(feature = "tokio")]

#[path = "support/alloc.rs"]
mod alloc;
#[path = "support/io.rs"]
mod io;
mod support;

use std::time::{Duration, Instant};

use rfc6455::frame::OpCode;
use rfc6455::rt::drain::{Drain, DrainConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Config, Error, Message, OverLimit, RateLimit, RateLimits, ServerBuilder};
use support::{client_frame, frame, parse_frames};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Runs per case and variant.
const RUNS: usize = 100;
const KIB64: usize = 64 * 1024;
const NO_HANG: Duration = Duration::from_secs(10);

/// The message limit: a 64 KiB message passes, one byte over 128 KiB does not.
const LIMIT: usize = 128 * 1024;

/// What the client does to make the server close.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// A message over the limit: 1009.
    TooBig,
    /// An unmasked frame: 1002.
    Unmasked,
    /// Text that is not UTF-8: 1007.
    BadUtf8,
    /// More messages than the rate limit allows: 1008.
    RateLimited,
    /// The server drains: 1001.
    Drain,
}

impl Case {
    fn code(self) -> CloseCode {
        match self {
            Self::TooBig => CloseCode::MESSAGE_TOO_BIG,
            Self::Unmasked => CloseCode::PROTOCOL_ERROR,
            Self::BadUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::RateLimited => CloseCode::POLICY_VIOLATION,
            Self::Drain => CloseCode::GOING_AWAY,
        }
    }

    /// The bytes that make the server close (none for a drain).
    fn offence(self) -> Vec<u8> {
        match self {
            Self::TooBig => client_frame(OpCode::Binary, true, &vec![1; LIMIT + 1]),
            Self::Unmasked => frame(OpCode::Text, true, b"unmasked", None),
            Self::BadUtf8 => client_frame(OpCode::Text, true, b"ok \xff\xfe"),
            Self::RateLimited => client_frame(OpCode::Text, true, b"flood").repeat(64),
            Self::Drain => Vec::new(),
        }
    }
}

/// An echo server written as its users write one: it stops at the first
/// error (`message?`) and drops the stream.
async fn echo(tcp: TcpStream, server: ServerBuilder) -> Result<(), Error> {
    let mut ws = WebSocketStream::accept(tcp, &server).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            ws.feed(message).await?;
        }
    }
    Ok(())
}

/// The same server over the blocking adapter, on its own thread.
fn blocking_echo(tcp: std::net::TcpStream, server: ServerBuilder) -> Result<(), Error> {
    let mut ws = rfc6455::blocking::WebSocket::accept(tcp, &server)?;
    loop {
        let message = ws.read()?;
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            ws.write(message)?;
        }
    }
}

/// Which adapter serves.
#[derive(Clone, Copy, Debug)]
enum Adapter {
    Tokio,
    Blocking,
}

fn config() -> Config {
    Config::default().max_message_size(LIMIT).rate_limits(
        RateLimits::default()
            .messages(Some(RateLimit::new(1, 16)))
            .action(OverLimit::Close),
    )
}

/// One connection: the client upgrades, sends four 64 KiB messages whose
/// echoes it leaves unread (`backlog`), the offence, and 64 KiB more that
/// the server will never take as messages (`in_flight`); then it reads to
/// the end. Returns the frames it got, or how the read failed.
async fn one_run(
    addr: std::net::SocketAddr,
    case: Case,
    drain: Option<&Drain>,
    backlog: bool,
    in_flight: bool,
) -> Result<Vec<(rfc6455::frame::FrameHeader, bytes::Bytes)>, std::io::Error> {
    let mut client = io::raw_upgrade(TcpStream::connect(addr).await?).await;
    let mut wire = Vec::new();
    if backlog {
        for _ in 0..4 {
            wire.extend(client_frame(OpCode::Binary, true, &vec![7; KIB64]));
        }
    }
    wire.extend(case.offence());
    if in_flight {
        wire.extend(client_frame(OpCode::Binary, true, &vec![9; KIB64]));
    }
    client.write_all(&wire).await?;
    if let Some(drain) = drain {
        // The drain reaches the connection once its echoes are queued; it
        // ends when the connection does, after this end closes too.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let drain = drain.clone();
        tokio::spawn(async move { drain.shutdown().await });
    }
    let reply = timeout(NO_HANG, read_and_answer(&mut client))
        .await
        .expect("the server ended the connection")?;
    Ok(parse_frames(&reply))
}

/// Reads to the end of the stream as a client does: the server's Close is
/// answered with its code as soon as it has arrived whole.
async fn read_and_answer(client: &mut TcpStream) -> Result<Vec<u8>, std::io::Error> {
    let mut reply = Vec::new();
    let (mut parsed, mut answered) = (0, false);
    let mut chunk = vec![0; KIB64];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(reply);
        }
        reply.extend_from_slice(&chunk[..n]);
        while let Ok(Some((header, len))) = rfc6455::frame::FrameHeader::parse(&reply[parsed..]) {
            let end = parsed + len + header.payload_len as usize;
            if end > reply.len() {
                break;
            }
            if header.opcode == OpCode::Close && !answered {
                let code = reply[parsed + len..parsed + len + 2].to_vec();
                client
                    .write_all(&client_frame(OpCode::Close, true, &code))
                    .await?;
                answered = true;
            }
            parsed = end;
        }
    }
}

/// Checks every run of `case`: data echoes (four 64 KiB ones first with a
/// backlog), then the whole Close with the case's code, then EOF.
async fn check(adapter: Adapter, case: Case, backlog: bool, in_flight: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    for run in 0..RUNS {
        let drain = matches!(case, Case::Drain).then(|| {
            Drain::new(
                DrainConfig::default()
                    .code(CloseCode::GOING_AWAY)
                    .window(Duration::from_millis(1)),
            )
        });
        let mut server = ServerBuilder::new().config(config()).unwrap();
        if let Some(drain) = &drain {
            server = server.drain(drain);
        }
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            match (&drain, adapter) {
                (Some(drain), _) => {
                    tokio::spawn(drain.watch(echo(tcp, server)));
                }
                (None, Adapter::Tokio) => {
                    tokio::spawn(echo(tcp, server));
                }
                (None, Adapter::Blocking) => {
                    let tcp = tcp.into_std().unwrap();
                    tcp.set_nonblocking(false).unwrap();
                    std::thread::spawn(move || blocking_echo(tcp, server));
                }
            }
        };
        let (frames, ()) = tokio::join!(
            one_run(addr, case, drain.as_ref(), backlog, in_flight),
            accept
        );
        let what =
            format!("{adapter:?}: {case:?}, backlog {backlog}, in flight {in_flight}, run {run}");
        let frames = frames.unwrap_or_else(|e| panic!("{what}: the read failed: {e}"));
        let (close, data) = frames
            .split_last()
            .unwrap_or_else(|| panic!("{what}: nothing came back"));
        assert_eq!(close.0.opcode, OpCode::Close, "{what}: the last frame");
        assert_eq!(
            &close.1[..2],
            &case.code().0.to_be_bytes(),
            "{what}: the Close's code"
        );
        assert!(
            data.iter()
                .all(|(h, _)| matches!(h.opcode, OpCode::Text | OpCode::Binary)),
            "{what}: only echoes before the Close"
        );
        if backlog {
            assert!(data.len() >= 4, "{what}: {} echoes", data.len());
            assert!(data[..4].iter().all(|(_, p)| p.len() == KIB64));
        }
    }
}

macro_rules! endings {
    ($($name:ident: $case:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            // A drain is the async adapters' (the blocking one has none).
            let adapters: &[Adapter] = match $case {
                Case::Drain => &[Adapter::Tokio],
                _ => &[Adapter::Tokio, Adapter::Blocking],
            };
            for &adapter in adapters {
                for (backlog, in_flight) in [(false, false), (false, true), (true, true)] {
                    check(adapter, $case, backlog, in_flight).await;
                }
            }
        }
    )*};
}

endings! {
    a_message_over_the_limit_gets_1009_then_eof: Case::TooBig;
    an_unmasked_frame_gets_1002_then_eof: Case::Unmasked;
    bad_utf8_gets_1007_then_eof: Case::BadUtf8;
    a_message_flood_gets_1008_then_eof: Case::RateLimited;
    a_drain_gets_1001_then_eof: Case::Drain;
}

// A peer that never reads, with 10 MiB queued to it: once the server
// closes it as too slow, its task ends and the 10 MiB are released within
// the close timeout (plus a second of slack), whatever the peer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_let_go_within_the_close_timeout() {
    let close_timeout = Duration::from_secs(1);
    let meter = alloc::Meter::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .config(Config::default().close_timeout(Some(close_timeout)))
        .unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = WebSocketStream::accept(tcp, &server).await.unwrap();
        ws.feed(Message::binary(vec![1u8; 10 << 20])).await.unwrap();
        let started = Instant::now();
        let closed = ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
        (started, closed)
    });
    // A small receive buffer, and nothing read from it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let client = io::raw_upgrade(socket.connect(addr).await.unwrap()).await;
    let (started, closed) = timeout(NO_HANG, task).await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(took <= close_timeout + Duration::from_secs(1), "{took:?}");
    assert!(took >= close_timeout, "{took:?}");
    // The close ran out: no Close came back (1006), and that is no error.
    assert_eq!(
        closed.unwrap().map(|frame| frame.code),
        Some(CloseCode::ABNORMAL)
    );
    assert!(meter.peak_growth() >= 10 << 20, "the 10 MiB were queued");
    assert!(
        meter.live_growth() < 1 << 20,
        "{} bytes still held",
        meter.live_growth()
    );
    drop(client);
}

// The client side returns what it already has: a write that fails (the
// server went away) does not hide the messages and the Close that had
// arrived before it.
#[tokio::test]
async fn messages_that_arrived_come_before_a_write_error() {
    use rfc6455::{Connection, Role};
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let conn = Connection::new(Role::Client, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(ours, conn);
    let mut wire = Vec::new();
    for text in ["one", "two", "three"] {
        wire.extend(frame(OpCode::Text, true, text.as_bytes(), None));
    }
    wire.extend(frame(OpCode::Close, true, &1001u16.to_be_bytes(), None));
    theirs.write_all(&wire).await.unwrap();
    drop(theirs);
    // Queued, not yet written: the next read's write fails first.
    ws.feed(Message::text("unsent")).await.unwrap();
    let mut got = Vec::new();
    while let Some(item) = ws.next().await {
        got.push(item.map_err(|e| e.to_string()));
    }
    assert_eq!(
        got,
        [
            Ok(Message::text("one")),
            Ok(Message::text("two")),
            Ok(Message::text("three")),
            Ok(Message::Close(Some(rfc6455::CloseFrame::new(
                CloseCode::GOING_AWAY,
                ""
            )))),
        ]
    );
}
