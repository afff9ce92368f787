//! Hostile peers, through the core and through the adapters over loopback.
//!
//! Each case asserts a typed error or close code, and a bound on how much
//! the heap grew (a counting global allocator; see `support/alloc.rs`).
#![cfg(feature = "tokio")]

#[path = "support/alloc.rs"]
mod alloc;
#[path = "support/io.rs"]
mod io;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use alloc::Meter;
use bytes::Buf;
use io::{OneByte, REQUEST, raw_upgrade};
use rfc6455::frame::{FrameHeader, OpCode};
use rfc6455::handshake::{HandshakeError, HandshakeLimits};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{
    ClientBuilder, CloseCode, CloseFrame, Config, Connection, Error, Message, ProtocolError, Role,
    ServerBuilder,
};
use support::{client_frame, frame, raw_frame, take_output};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Every loopback case must end well within this.
const NO_HANG: Duration = Duration::from_secs(30);

// ---- helpers -------------------------------------------------------------

/// A masked frame header alone, announcing `len` payload bytes.
fn masked_header(b0: u8, len: u64) -> Vec<u8> {
    let opcode = OpCode::try_from(b0 & 0x0f).unwrap_or(OpCode::Binary);
    let mut header = FrameHeader::new(opcode, len);
    header.mask = Some([1, 2, 3, 4]);
    let mut wire = Vec::new();
    header.encode_into(&mut wire);
    wire[0] = b0;
    wire
}

/// The close code of the Close frame in `wire`, if any.
fn close_code(wire: &[u8]) -> Option<u16> {
    support::parse_frames(wire)
        .into_iter()
        .find(|(h, _)| h.opcode == OpCode::Close)
        .map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
}

/// A server connection's verdict on `wire`: the error and the close code sent.
fn core_verdict(config: Config, wire: &[u8]) -> (ProtocolError, Option<u16>) {
    let mut conn = Connection::new(Role::Server, config).unwrap();
    conn.receive(wire);
    let error = loop {
        match conn.next_message() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no error for hostile input"),
            Err(error) => break error,
        }
    };
    (error, close_code(&take_output(&mut conn)))
}

/// Listens on loopback; the server task accepts one connection with `config`
/// and `limits` and returns what it received and how it ended.
async fn server(
    config: Config,
    limits: HandshakeLimits,
) -> (SocketAddr, tokio::task::JoinHandle<Result<Outcome, Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let server = ServerBuilder::new().config(config).unwrap().limits(limits);
        let mut ws = WebSocketStream::accept(stream, &server).await?;
        Ok(drain_messages(&mut ws).await)
    });
    (addr, task)
}

/// What a server read: its messages (Pings only counted, so a flood of
/// them does not fill the test's own memory) and how the stream ended.
#[derive(Debug, Default)]
struct Outcome {
    messages: Vec<Message>,
    pings: usize,
    error: Option<Error>,
}

/// Reads messages until the stream ends or fails.
async fn drain_messages<S>(ws: &mut WebSocketStream<S>) -> Outcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut outcome = Outcome::default();
    while let Some(item) = ws.next().await {
        match item {
            Ok(Message::Ping(_)) => outcome.pings += 1,
            Ok(message) => outcome.messages.push(message),
            Err(error) => {
                outcome.error = Some(error);
                break;
            }
        }
    }
    outcome
}

/// A hand-written client: connects, upgrades, and returns the socket.
async fn raw_client(addr: SocketAddr) -> TcpStream {
    raw_upgrade(TcpStream::connect(addr).await.unwrap()).await
}

/// Everything the peer sends until it closes (errors end it too).
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut wire = Vec::new();
    read_onto(stream, &mut wire).await;
    wire
}

/// Appends everything the peer sends until it closes onto `wire`.
async fn read_onto(stream: &mut TcpStream, wire: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => wire.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `wire` from a raw client; returns the server's close code and its result.
async fn adapter_verdict(config: Config, wire: &[u8]) -> (Option<u16>, Outcome) {
    let (addr, task) = server(config, HandshakeLimits::default()).await;
    let mut client = raw_client(addr).await;
    let _ = client.write_all(wire).await;
    let reply = timeout(NO_HANG, read_to_end(&mut client)).await.unwrap();
    // The server lingers until this end closes too (or its close timeout).
    drop(client);
    let outcome = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap();
    (close_code(&reply), outcome)
}

fn protocol_error(outcome: &Outcome) -> ProtocolError {
    match &outcome.error {
        Some(Error::Protocol(error)) => *error,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

// ---- announced lengths ---------------------------------------------------

// A header announcing 2^63-1 bytes, and one just over the frame limit: 1009
// from the header alone, nothing reserved for the announced payload.
#[test]
fn huge_announced_lengths_core() {
    let meter = Meter::start();
    let config = Config::default().max_frame_size(MIB);
    let (error, code) = core_verdict(config.clone(), &masked_header(0x82, (1 << 63) - 1));
    assert_eq!((error, code), (ProtocolError::FrameTooBig, Some(1009)));
    let (error, code) = core_verdict(config, &masked_header(0x82, MIB as u64 + 1));
    assert_eq!((error, code), (ProtocolError::FrameTooBig, Some(1009)));
    meter.assert_below(64 * KIB, "huge announced lengths, core");
}

#[tokio::test]
async fn huge_announced_lengths_adapter() {
    let meter = Meter::start();
    for len in [(1u64 << 63) - 1, MIB as u64 + 1] {
        let (code, outcome) = adapter_verdict(
            Config::default().max_frame_size(MIB),
            &masked_header(0x82, len),
        )
        .await;
        assert_eq!(code, Some(1009));
        assert_eq!(protocol_error(&outcome), ProtocolError::FrameTooBig);
    }
    meter.assert_below(MIB, "huge announced lengths, adapter");
}

// ---- fragment floods -----------------------------------------------------

/// `count` masked 1-byte continuation frames.
fn continuations(count: usize) -> Vec<u8> {
    let one = client_frame(OpCode::Continuation, false, b"x");
    one.repeat(count)
}

// Ten million 1-byte fragments against a 1 MiB message limit: 1009 once the
// message passes the limit; what follows is dropped unbuffered.
#[test]
fn ten_million_one_byte_fragments_core() {
    let meter = Meter::start();
    let limit = MIB;
    let mut conn = Connection::new(
        Role::Server,
        Config::default()
            .max_frame_size(limit)
            .max_message_size(limit),
    )
    .unwrap();
    conn.receive(&client_frame(OpCode::Binary, false, b"x"));
    let chunk = continuations(10_000);
    let mut verdict = None;
    for _ in 0..1_000 {
        conn.receive(&chunk);
        match conn.next_message() {
            Ok(None) => {}
            Ok(Some(message)) => panic!("delivered {} bytes", message.payload().len()),
            Err(error) => verdict = verdict.or(Some(error)),
        }
    }
    assert_eq!(verdict, Some(ProtocolError::MessageTooBig));
    assert_eq!(close_code(&take_output(&mut conn)), Some(1009));
    // The reassembly buffer (at most the limit, doubled while it grows) and one chunk.
    meter.assert_below(2 * limit + chunk.len() + 256 * KIB, "fragment flood, core");
}

#[tokio::test]
async fn one_byte_fragment_flood_adapter() {
    let meter = Meter::start();
    let limit = MIB;
    let (addr, task) = server(
        Config::default()
            .max_frame_size(limit)
            .max_message_size(limit),
        HandshakeLimits::default(),
    )
    .await;
    let mut client = raw_client(addr).await;
    client
        .write_all(&client_frame(OpCode::Binary, false, b"x"))
        .await
        .unwrap();
    let chunk = continuations(10_000);
    let mut sent = 0usize;
    // Until the server gives up on us (10 million fragments at most).
    while sent < 10_000_000 && client.write_all(&chunk).await.is_ok() {
        sent += 10_000;
    }
    drop(client);
    let outcome = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap();
    assert_eq!(protocol_error(&outcome), ProtocolError::MessageTooBig);
    assert!(sent >= limit, "failed after only {sent} fragments");
    meter.assert_below(4 * limit, "fragment flood, adapter");
}

// ---- ping floods ---------------------------------------------------------

// 100 000 Pings while nobody drains the output: the Pong backlog stays bounded.
#[test]
fn ping_flood_without_draining_core() {
    let meter = Meter::start();
    let mut conn = Connection::new(Role::Server, Config::default()).unwrap();
    let ping = client_frame(OpCode::Ping, true, &[7u8; 125]);
    let chunk = ping.repeat(1_000);
    let mut pings = 0;
    for _ in 0..100 {
        conn.receive(&chunk);
        while let Some(message) = conn.next_message().unwrap() {
            assert!(matches!(message, Message::Ping(_)));
            pings += 1;
        }
        assert!(
            conn.outgoing().remaining() <= 4 * KIB + 2 * 127,
            "pong backlog {} bytes",
            conn.outgoing().remaining()
        );
    }
    assert_eq!(pings, 100_000);
    // The input chunk, and the input buffer it is copied into (which may be
    // reallocated while Ping payloads still share the old one): a bound that
    // does not grow with the 13 MB of Pings.
    meter.assert_below(4 * chunk.len() + 64 * KIB, "ping flood, core");
}

#[tokio::test]
async fn ping_flood_without_reading_adapter() {
    let mut meter = Meter::start();
    // Room for every Pong the server could send, so collecting them costs nothing later.
    let mut reply = Vec::with_capacity(100_000 * 127 + 4096);
    meter.restart();
    let (addr, task) = server(Config::default(), HandshakeLimits::default()).await;
    let mut client = raw_client(addr).await;
    let chunk = client_frame(OpCode::Ping, true, &[7u8; 125]).repeat(1_000);
    // 13 MB of Pings; we never read a Pong.
    for _ in 0..100 {
        timeout(NO_HANG, client.write_all(&chunk))
            .await
            .expect("the server kept reading")
            .unwrap();
    }
    let close = client_frame(OpCode::Close, true, &1000u16.to_be_bytes());
    client.write_all(&close).await.unwrap();
    timeout(NO_HANG, read_onto(&mut client, &mut reply))
        .await
        .unwrap();
    drop(client);
    let outcome = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.pings, 100_000);
    // 13 MB of Pings went through; the server's buffers and the Pong backlog
    // stay small (measured before the test parses the reply).
    meter.assert_below(MIB, "ping flood, adapter");
    let pongs = support::parse_frames(&reply)
        .iter()
        .filter(|(h, _)| h.opcode == OpCode::Pong)
        .count();
    assert!((1..=100_000).contains(&pongs), "{pongs} pongs");
}

// ---- hostile handshakes --------------------------------------------------

/// Sends `request` to an adapter server; returns its answer and its error.
async fn handshake_verdict(request: Vec<u8>, limits: HandshakeLimits) -> (Vec<u8>, Error) {
    let (addr, task) = server(Config::default(), limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let writer = tokio::spawn(async move {
        let _ = stream.write_all(&request).await;
        read_to_end(&mut stream).await
    });
    let error = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap_err();
    let reply = timeout(NO_HANG, writer).await.unwrap().unwrap();
    (reply, error)
}

#[tokio::test]
async fn ten_thousand_headers() {
    let meter = Meter::start();
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..10_000 {
        request.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let (reply, error) = handshake_verdict(request, HandshakeLimits::default()).await;
    assert!(reply.starts_with(b"HTTP/1.1 431 "), "{reply:?}");
    assert!(
        matches!(error, Error::Handshake(ref e) if e.status() == Some(431)),
        "{error:?}"
    );
    meter.assert_below(MIB, "10 000 headers");
}

#[tokio::test]
async fn one_mebibyte_header_line() {
    let mut meter = Meter::start();
    let mut request = Vec::with_capacity(MIB + 64);
    request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    request.resize(request.len() + MIB, b'a');
    request.extend_from_slice(b"\r\n\r\n");
    meter.restart();
    let (reply, error) = handshake_verdict(request, HandshakeLimits::default()).await;
    assert!(reply.starts_with(b"HTTP/1.1 431 "), "{reply:?}");
    assert!(
        matches!(error, Error::Handshake(HandshakeError::HeadTooLarge)),
        "{error:?}"
    );
    // The server stops reading at 16 KiB (and a read's worth).
    meter.assert_below(256 * KIB, "1 MiB header line");
}

// A request trickled one byte at a time, forever: the handshake timeout ends it.
#[tokio::test]
async fn slowloris_handshake_tokio() {
    let _serial = Meter::start();
    let limits = HandshakeLimits::default().timeout(Some(Duration::from_millis(300)));
    let (addr, task) = server(Config::default(), limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        for byte in REQUEST.iter().take(REQUEST.len() - 1).cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let started = std::time::Instant::now();
    let error = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(error, Error::HandshakeTimeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    trickle.abort();
}

// The blocking adapter: a trickling peer, and a silent one (the socket's read
// timeout lets the deadline be checked).
#[test]
fn slowloris_handshake_blocking() {
    let _serial = Meter::start();
    use std::io::Write;
    for silent in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let limits = HandshakeLimits::default().timeout(Some(Duration::from_millis(300)));
            rfc6455::blocking::WebSocket::accept(stream, &ServerBuilder::new().limits(limits))
                .map(drop)
        });
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let started = std::time::Instant::now();
        while !server.is_finished() && started.elapsed() < NO_HANG {
            if !silent {
                let _ = stream.write_all(b"G");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let error = server.join().unwrap().unwrap_err();
        assert!(matches!(error, Error::HandshakeTimeout(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

// ---- close frames --------------------------------------------------------

#[tokio::test]
async fn bad_close_frames() {
    let meter = Meter::start();
    let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
    bad_utf8.extend_from_slice(b"ok \xff\xfe");
    let mut cases = vec![
        (bad_utf8, ProtocolError::InvalidUtf8, 1007),
        (vec![0x03], ProtocolError::BadClosePayload, 1002),
    ];
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        cases.push((
            code.to_be_bytes().to_vec(),
            ProtocolError::InvalidCloseCode(code),
            1002,
        ));
    }
    for (payload, error, code) in cases {
        let wire = client_frame(OpCode::Close, true, &payload);
        assert_eq!(
            core_verdict(Config::default(), &wire),
            (error, Some(code)),
            "core, payload {payload:02x?}"
        );
        let (sent, outcome) = adapter_verdict(Config::default(), &wire).await;
        assert_eq!(sent, Some(code), "adapter, payload {payload:02x?}");
        assert_eq!(protocol_error(&outcome), error);
    }
    meter.assert_below(MIB, "bad close frames");
}

// ---- framing violations ---------------------------------------------------

#[tokio::test]
async fn framing_violations_against_a_server() {
    let _serial = Meter::start();
    let cases = [
        // Unmasked from a client.
        (
            frame(OpCode::Text, true, b"hi", None),
            ProtocolError::UnmaskedFrame,
        ),
        // Reserved opcodes, data and control.
        (
            raw_frame(0x83, b"hi", Some([1, 2, 3, 4])),
            ProtocolError::ReservedOpcode(3),
        ),
        (
            raw_frame(0x8b, b"", Some([1, 2, 3, 4])),
            ProtocolError::ReservedOpcode(0xb),
        ),
        // RSV1, RSV2, RSV3 with no extension negotiated.
        (
            raw_frame(0xc1, b"hi", Some([1, 2, 3, 4])),
            ProtocolError::ReservedBits,
        ),
        (
            raw_frame(0xa1, b"hi", Some([1, 2, 3, 4])),
            ProtocolError::ReservedBits,
        ),
        (
            raw_frame(0x91, b"hi", Some([1, 2, 3, 4])),
            ProtocolError::ReservedBits,
        ),
    ];
    for (wire, error) in cases {
        assert_eq!(core_verdict(Config::default(), &wire), (error, Some(1002)));
        let (code, outcome) = adapter_verdict(Config::default(), &wire).await;
        assert_eq!(code, Some(1002));
        assert_eq!(protocol_error(&outcome), error);
    }
}

// A server that masks its frames: our client fails with 1002.
#[tokio::test]
async fn masked_frame_from_a_server() {
    let _serial = Meter::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let key = std::str::from_utf8(&head)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            rfc6455::handshake::accept_key(&key)
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream
            .write_all(&frame(OpCode::Text, true, b"hi", Some([9, 9, 9, 9])))
            .await
            .unwrap();
        read_to_end(&mut stream).await
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = WebSocketStream::client(stream, &ClientBuilder::new("ws://h/").unwrap())
        .await
        .unwrap();
    let outcome = timeout(NO_HANG, drain_messages(&mut ws)).await.unwrap();
    assert!(outcome.messages.is_empty());
    assert!(
        matches!(
            outcome.error,
            Some(Error::Protocol(ProtocolError::MaskedFrame))
        ),
        "{:?}",
        outcome.error
    );
    drop(ws);
    let reply = timeout(NO_HANG, peer).await.unwrap().unwrap();
    // The client's Close is masked; unmask it to read the code.
    let frames = support::parse_frames(&reply);
    let (header, payload) = frames.last().expect("a Close");
    assert_eq!(header.opcode, OpCode::Close);
    assert!(header.mask.is_some());
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
}

// ---- transports that end badly --------------------------------------------

// The peer resets the connection in the middle of a frame.
#[tokio::test]
async fn reset_mid_frame() {
    let _serial = Meter::start();
    let (addr, task) = server(Config::default(), HandshakeLimits::default()).await;
    let client = raw_client(addr).await;
    let mut wire = client_frame(OpCode::Binary, true, &[5u8; 1000]);
    wire.truncate(500);
    let mut client = client;
    client.write_all(&wire).await.unwrap();
    client.flush().await.unwrap();
    // SO_LINGER 0: close sends RST instead of FIN.
    #[allow(deprecated)]
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    let Outcome {
        messages, error, ..
    } = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap();
    assert!(messages.is_empty());
    assert!(
        matches!(
            &error,
            Some(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset
        ) || matches!(error, Some(Error::Protocol(ProtocolError::AbnormalClosure))),
        "{error:?}"
    );
}

// The peer half-closes in the middle of a fragmented message.
#[tokio::test]
async fn half_close_mid_message() {
    let _serial = Meter::start();
    let (addr, task) = server(Config::default(), HandshakeLimits::default()).await;
    let mut client = raw_client(addr).await;
    client
        .write_all(&client_frame(OpCode::Text, false, b"unfinished "))
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let Outcome {
        messages, error, ..
    } = timeout(NO_HANG, task).await.unwrap().unwrap().unwrap();
    assert!(messages.is_empty());
    assert!(
        matches!(error, Some(Error::Protocol(ProtocolError::AbnormalClosure))),
        "{error:?}"
    );
    // The server's view of it is 1006; there is no one to send a Close to.
    let reply = timeout(NO_HANG, read_to_end(&mut client)).await.unwrap();
    assert_eq!(close_code(&reply), None);
}

// ---- 1-byte I/O ------------------------------------------------------------

/// The server side of the script: what it received, its Pings, the Close.
async fn serve_script<S>(stream: S) -> (Vec<Message>, usize, Option<CloseFrame>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut ws = WebSocketStream::accept(stream, &ServerBuilder::new())
        .await
        .unwrap();
    let outcome = drain_messages(&mut ws).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    (
        outcome.messages,
        outcome.pings,
        ws.connection().close_frame().cloned(),
    )
}

/// A raw client's script: fragments, a Ping between them, text, binary,
/// then a Close; returns what the server got and the bytes it sent back.
async fn scripted_exchange(trickle: bool) -> (Vec<Message>, usize, Option<CloseFrame>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        if trickle {
            serve_script(OneByte(stream)).await
        } else {
            serve_script(stream).await
        }
    });
    let mut client = raw_client(addr).await;
    let mut wire = client_frame(OpCode::Text, false, "frag€".as_bytes());
    wire.extend(client_frame(OpCode::Ping, true, b"ping"));
    wire.extend(client_frame(OpCode::Continuation, true, b"ments"));
    wire.extend(client_frame(OpCode::Binary, true, &[1, 2, 3]));
    wire.extend(client_frame(OpCode::Text, true, &vec![b'z'; 70_000]));
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    wire.extend(client_frame(OpCode::Close, true, &close));
    client.write_all(&wire).await.unwrap();
    let reply = timeout(NO_HANG, read_to_end(&mut client)).await.unwrap();
    // The server lingers until this end closes too.
    drop(client);
    let (messages, pings, close) = timeout(NO_HANG, task).await.unwrap().unwrap();
    (messages, pings, close, reply)
}

// A server reading and writing one byte per call sees and sends exactly what
// one with normal I/O does.
#[tokio::test]
async fn one_byte_reads_and_writes_match_normal_io() {
    let _serial = Meter::start();
    let normal = scripted_exchange(false).await;
    let trickled = scripted_exchange(true).await;
    assert_eq!(normal.0.len(), 4);
    assert_eq!(normal.1, 1);
    assert_eq!(normal.2, Some(CloseFrame::new(CloseCode(4000), "bye")));
    assert_eq!(normal, trickled);
}
