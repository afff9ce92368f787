//! The blocking adapter over loopback TCP, socket pairs, TLS and a 1-byte stream.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use rfc6455::blocking::{HalfClose, WebSocket};
use rfc6455::handshake::{AcceptOptions, ClientRequest, Rejection};
use rfc6455::{
    ClientBuilder, CloseCode, CloseFrame, Config, Error, HandshakeError, Message, SendError,
    ServerBuilder, State,
};

mod support;
#[cfg(feature = "rustls")]
#[path = "support/tls.rs"]
mod tls;

/// Echoes data messages until the close handshake is over; returns the peer's Close.
fn echo<S: Read + Write + HalfClose>(mut ws: WebSocket<S>) -> Option<CloseFrame> {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return ws.connection().close_frame().cloned(),
            Err(e) => panic!("server: {e}"),
        }
    }
}

fn tcp_echo_server(config: Config) -> (String, thread::JoinHandle<Option<CloseFrame>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        echo(WebSocket::accept(stream, &ServerBuilder::new().config(config).unwrap()).unwrap())
    });
    (url, handle)
}

// The server sees what its handshake decided: subprotocol, path, query and
// the value its request callback handed on.
#[test]
fn the_server_sees_its_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/feed?since=42", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let server = ServerBuilder::new()
            .protocols(["v1"])
            .on_request(|req| Ok(AcceptOptions::new().data(req.path().len())));
        let mut ws = WebSocket::accept(stream, &server).unwrap();
        let data = ws.take_data::<usize>();
        let seen = format!(
            "{:?} {:?} {:?} {data:?}",
            ws.protocol(),
            ws.path(),
            ws.query(),
        );
        ws.send(Message::text(seen)).unwrap();
        echo(ws)
    });
    let client = ClientBuilder::new(&url).unwrap().protocol("v1");
    let (mut ws, _) = WebSocket::connect(&client).unwrap();
    assert_eq!(ws.protocol(), Some("v1"));
    assert_eq!(
        ws.read().unwrap(),
        Message::text(r#"Some("v1") Some("/feed") Some("since=42") Some(5)"#)
    );
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.read().is_ok() {}
    handle.join().unwrap();
}

fn messages() -> Vec<Message> {
    vec![
        Message::text("hello"),
        Message::text("κόσμε 𝄞"),
        Message::binary(vec![0u8, 255, 1]),
        Message::text(""),
        Message::binary(Bytes::new()),
        Message::binary((0..1_000_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    ]
}

// A prepared message goes out through write (by reference) and send (by value).
#[test]
fn prepared_messages() {
    let (url, server) = tcp_echo_server(Config::default());
    let (mut ws, _) = WebSocket::connect(&url).unwrap();
    let small = rfc6455::PreparedMessage::text("tick");
    let large = rfc6455::PreparedMessage::binary(vec![5u8; 70_000]);
    ws.write(&small).unwrap();
    ws.send(large.clone()).unwrap();
    assert_eq!(ws.read().unwrap(), small.to_message());
    assert_eq!(ws.read().unwrap(), large.to_message());
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap();
}

// Echo of text, binary, empty and large messages over TCP; close code and reason.
#[test]
fn tcp_echo_and_close() {
    let (url, server) = tcp_echo_server(Config::default());
    let (mut ws, _) = WebSocket::connect(&url).unwrap();
    for m in messages() {
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    let echoed = ws.close(CloseCode(4000), "client done").unwrap();
    assert_eq!(ws.connection().state(), State::Closed);
    assert_eq!(
        ws.connection().close_frame(),
        Some(&CloseFrame::new(CloseCode(4000), "")),
        "server echoed the code"
    );
    assert_eq!(
        echoed.as_ref(),
        ws.connection().close_frame(),
        "close() returns it"
    );
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame::new(CloseCode(4000), "client done"))
    );
}

// The server starts the close; the client sees code and reason, echoes, and sees EOF.
#[test]
fn server_initiated_close() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = WebSocket::accept(stream, &ServerBuilder::new()).unwrap();
        ws.close(CloseCode::GOING_AWAY, "restarting").unwrap();
        ws.connection().close_frame().cloned()
    });
    let (mut ws, _) = WebSocket::connect(&url).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "restarting")))
    );
    assert!(
        matches!(ws.read(), Err(Error::ConnectionClosed)),
        "after the server closes TCP"
    );
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame::new(CloseCode::GOING_AWAY, ""))
    );
}

// Fragmented input (the client splits every message into 1000-byte frames) and ping/pong.
#[test]
fn fragmented_input_and_ping() {
    let (url, server) = tcp_echo_server(Config::default());
    let client = ClientBuilder::new(&url)
        .unwrap()
        .config(Config::default().max_send_frame_size(Some(1000)))
        .unwrap();
    let (mut ws, _) = WebSocket::connect(&client).unwrap();
    let big = Message::text("é".repeat(5000));
    ws.send(big.clone()).unwrap();
    assert_eq!(ws.read().unwrap(), big);
    ws.send(Message::Ping(Bytes::from_static(b"ping!")))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(Bytes::from_static(b"ping!"))
    );
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap();
}

/// A stream that moves at most one byte per read and per write.
struct OneByte<S>(S);

impl<S: Read> Read for OneByte<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

impl<S: HalfClose> HalfClose for OneByte<S> {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown_write()
    }
}

impl<S: Write> Write for OneByte<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.write(&buf[..n])
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

// 1-byte reads and writes on both sides (over a socket pair) give the same results.
#[test]
fn one_byte_reads_and_writes() {
    let (a, b) = UnixStream::pair().unwrap();
    let server =
        thread::spawn(move || echo(WebSocket::accept(OneByte(a), &ServerBuilder::new()).unwrap()));
    let client = ClientBuilder::new("ws://localhost/").unwrap();
    let (mut ws, _) = WebSocket::client(OneByte(b), &client).unwrap();
    for m in messages().into_iter().take(5) {
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame::new(CloseCode::NORMAL, "bye"))
    );
}

// WouldBlock from a non-blocking stream passes through; calling again resumes.
#[test]
fn would_block_passes_through_and_resumes() {
    let (a, b) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || WebSocket::accept(a, &ServerBuilder::new()).unwrap());
    let (mut client, _) = WebSocket::client(b, &ClientBuilder::new("ws://h/").unwrap()).unwrap();
    let mut server = server.join().unwrap();
    client.get_mut().set_nonblocking(true).unwrap();
    match client.read() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        other => panic!("{other:?}"),
    }
    server.send(Message::text("later")).unwrap();
    let message = loop {
        match client.read() {
            Ok(m) => break m,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(message, Message::text("later"));
    // Fill the pipe: writes stop with WouldBlock, nothing is lost.
    let chunk = Message::binary(vec![7u8; 64 * 1024]);
    let mut queued = 0;
    loop {
        match client.send(chunk.clone()) {
            Ok(()) => queued += 1,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                queued += 1;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(queued < 1000, "the pipe never filled");
    }
    flush_to_reader(&mut client, server, queued, &chunk);
}

/// Flushes the non-blocking `client` until everything is written, while a
/// thread reads `count` copies of `expected` from `server`.
fn flush_to_reader(
    client: &mut WebSocket<UnixStream>,
    mut server: WebSocket<UnixStream>,
    count: usize,
    expected: &Message,
) {
    let expected = expected.clone();
    let reader = thread::spawn(move || {
        for _ in 0..count {
            assert_eq!(server.read().unwrap(), expected);
        }
    });
    loop {
        match client.flush() {
            Ok(()) => break,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    reader.join().unwrap();
}

// On a non-blocking stream that is full, write never loses a message: it
// queues while there is room below max_write_buffer, then hands the message
// back; a flush after the reader catches up delivers every queued one.
#[test]
fn write_on_a_full_nonblocking_stream_queues_or_hands_back() {
    let (a, b) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || WebSocket::accept(a, &ServerBuilder::new()).unwrap());
    let config = Config::default()
        .write_high_water(64 * 1024)
        .max_write_buffer(1 << 20);
    let request = ClientBuilder::new("ws://h/")
        .unwrap()
        .config(config)
        .unwrap();
    let (mut client, _) = WebSocket::client(b, &request).unwrap();
    let server = server.join().unwrap();
    client.get_mut().set_nonblocking(true).unwrap();
    let chunk = Message::binary(vec![7u8; 16 * 1024]);
    let mut queued = 0;
    let handed_back = loop {
        match client.write(chunk.clone()) {
            Ok(()) => queued += 1,
            Err(Error::Send(SendError::Full(message))) => break message,
            Err(e) => panic!("{e}"),
        }
        assert!(queued < 10_000, "the queue never filled");
    };
    assert_eq!(handed_back, chunk);
    assert!(queued * 16 * 1024 >= 1 << 20, "queued {queued}");
    flush_to_reader(&mut client, server, queued, &chunk);
}

// accept with a builder: the application inspects the request and rejects it; the client sees the 401.
#[test]
fn callback_rejects_with_401() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let server = ServerBuilder::new().on_request(|req| match req.query_param("token") {
            Some("good") => Ok(AcceptOptions::new()),
            _ => Err(Rejection::new(401)
                .header("WWW-Authenticate", "Bearer")
                .body("no token")),
        });
        WebSocket::accept(stream, &server).map(|_| ())
    });
    let err = WebSocket::connect(format!("ws://{addr}/?token=bad")).unwrap_err();
    let Error::Handshake(HandshakeError::Refused(rejected)) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (rejected.status, &rejected.body[..]),
        (401, &b"no token"[..])
    );
    assert!(matches!(server.join().unwrap(), Err(Error::Rejected(401))));
}

// An invalid request gets its error status; a good subprotocol is chosen.
#[test]
fn invalid_request_gets_status_and_subprotocol_is_negotiated() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (bad, _) = listener.accept().unwrap();
        let first = WebSocket::accept(bad, &ServerBuilder::new()).map(|_| ());
        let (good, _) = listener.accept().unwrap();
        // The server's preference (v2) wins over the client's order.
        let ws = WebSocket::accept(good, &ServerBuilder::new().protocols(["v3", "v2", "v1"]));
        (first, ws.map(|_| ()))
    });
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n").unwrap();
    let mut response = String::new();
    raw.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(response.contains("Sec-WebSocket-Version: 13"));
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .protocol("v1")
        .protocol("v2");
    let (_ws, accepted) = WebSocket::connect(request).unwrap();
    assert_eq!(accepted.protocol(), Some("v2"));
    let (first, second) = server.join().unwrap();
    assert!(matches!(
        first,
        Err(Error::Handshake(HandshakeError::UnsupportedVersion))
    ));
    second.unwrap();
}

#[cfg(not(feature = "rustls"))]
#[test]
fn wss_url_needs_tls() {
    assert!(matches!(
        WebSocket::connect("wss://127.0.0.1:1/"),
        Err(Error::TlsRequired)
    ));
}

/// A rustls echo server for `localhost` with a fresh self-signed
/// certificate, serving `connections` connections over rustls's
/// `StreamOwned`; its port, a client configuration that trusts it, and the
/// thread (which returns each connection's Close). rustls's streams shut
/// their write side ([`HalfClose`]) with the `rustls` feature.
#[cfg(feature = "rustls")]
fn rustls_echo_server(
    connections: usize,
) -> (
    u16,
    Arc<rustls::ClientConfig>,
    thread::JoinHandle<Vec<Option<CloseFrame>>>,
) {
    let (server_config, client_config) = tls::configs(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        (0..connections)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                let conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
                // A client that refuses the certificate fails the accept.
                WebSocket::accept(rustls::StreamOwned::new(conn, tcp), &ServerBuilder::new())
                    .ok()
                    .and_then(echo)
            })
            .collect()
    });
    (port, client_config, server)
}

// wss over a TLS stream the caller made: the adapter over rustls's
// StreamOwned on both ends.
#[cfg(feature = "rustls")]
#[test]
fn over_a_callers_rustls_stream() {
    let (port, client_config, server) = rustls_echo_server(1);
    let request = ClientBuilder::new(&format!("wss://localhost:{port}/")).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::StreamOwned::new(
        rustls::ClientConnection::new(client_config, name).unwrap(),
        tcp,
    );
    let (mut ws, _) = WebSocket::client(tls, &request).unwrap();
    ws.send(Message::text("secret")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("secret"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(server.join().unwrap()[0].is_some());
}

// wss through the rustls feature: connect does TCP, TLS and the handshake;
// without the certificate among its roots it refuses the server.
#[cfg(feature = "rustls")]
#[test]
fn connect_speaks_wss_through_the_rustls_feature() {
    let (port, client_config, server) = rustls_echo_server(2);
    let url = format!("wss://localhost:{port}/");
    let error = WebSocket::connect(&url).unwrap_err();
    let Error::Io(io) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(io.kind(), io::ErrorKind::InvalidData, "{io:?}");
    let client = ClientBuilder::new(&url).unwrap().tls_config(client_config);
    let (mut ws, _) = WebSocket::connect(&client).unwrap();
    assert!(matches!(
        ws.get_ref(),
        rfc6455::blocking::MaybeTlsStream::Rustls(_)
    ));
    ws.send(Message::text("secret")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("secret"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    let closes = server.join().unwrap();
    assert!(closes[1].is_some());
}

/// A stream that takes every write and has nothing to read.
#[derive(Default)]
struct Sink(Vec<u8>);

// In memory: no half-close.
impl HalfClose for Sink {}

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// write only queues until the backlog passes write_high_water; the next write
// sends the backlog first. A message larger than the mark waits for an empty
// queue.
#[test]
fn write_sends_the_backlog_past_the_high_water_mark() {
    let config = Config::default().write_high_water(32 * 1024);
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, config).unwrap();
    let mut ws = WebSocket::new(Sink::default(), conn);
    ws.write(Message::binary(vec![1u8; 64 * 1024])).unwrap();
    assert_eq!(ws.get_ref().0.len(), 0, "queued, not written");
    ws.write(Message::binary(vec![2u8; 100])).unwrap();
    assert_eq!(
        ws.get_ref().0.len(),
        10 + 64 * 1024,
        "the backlog went first"
    );
    ws.write(Message::binary(vec![3u8; 100])).unwrap();
    assert_eq!(
        ws.get_ref().0.len(),
        10 + 64 * 1024,
        "below the mark: queued"
    );
    // A message over the mark goes after whatever is queued, however little.
    ws.write(Message::binary(vec![4u8; 64 * 1024])).unwrap();
    assert_eq!(
        ws.get_ref().0.len(),
        10 + 64 * 1024 + 2 * (2 + 100),
        "the queue went first"
    );
    ws.flush().unwrap();
    assert_eq!(ws.get_ref().0.len(), 2 * (10 + 64 * 1024) + 2 * (2 + 100));
}

/// A transport that keeps what is written and records each write: which
/// call, and how many buffers.
#[derive(Default)]
struct RecordingWrites {
    wire: Vec<u8>,
    writes: Vec<(&'static str, usize)>,
}

// In memory: no half-close.
impl HalfClose for RecordingWrites {}

impl Read for RecordingWrites {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for RecordingWrites {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push(("write", 1));
        self.wire.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.writes.push(("vectored", bufs.len()));
        let before = self.wire.len();
        for buf in bufs {
            self.wire.extend_from_slice(buf);
        }
        Ok(self.wire.len() - before)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Queued output that is one buffer goes through `write` (a socket's send,
// cheaper than writev); only several buffers take `write_vectored`.
#[test]
fn one_buffer_is_written_without_the_vectored_call() {
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default()).unwrap();
    let mut ws = WebSocket::new(RecordingWrites::default(), conn);
    ws.send(Message::binary(vec![1u8; 16])).unwrap();
    ws.send(Message::binary(vec![2u8; 60_000])).unwrap();
    let stream = ws.get_ref();
    assert_eq!(stream.writes, [("write", 1), ("vectored", 2)]);
    assert_eq!(stream.wire.len(), 2 + 16 + 4 + 60_000);
    assert_eq!(&stream.wire[..2], [0x82, 16]);
    assert_eq!(&stream.wire[18..22], [0x82, 126, 0xea, 0x60]);
}

/// Replays wire bytes at most `chunk` per read, recording what each read was
/// offered and what it took.
struct Chunked {
    wire: Vec<u8>,
    at: usize,
    chunk: usize,
    reads: Vec<(usize, usize)>,
}

// In memory: no half-close.
impl HalfClose for Chunked {}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.wire[self.at..];
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        self.reads.push((buf.len(), n));
        Ok(n)
    }
}

impl Write for Chunked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// A read is handed zeroed memory, so what it is offered is paid for whether
// it arrives or not: the offer follows what arrives (at most twice the last
// read, at least 8 KiB), not the 1 MiB reserved for a large frame, for each
// of the many short reads a large frame takes.
#[test]
fn reads_are_offered_room_in_proportion_to_what_arrives() {
    for (size, count, chunk) in [(1 << 20, 4, 64 * 1024), (16, 200, 16 + 6)] {
        let sent: Vec<Message> = (0..count)
            .map(|i| Message::binary(vec![i as u8; size]))
            .collect();
        let mut client = support::client(Config::default());
        let mut wire = Vec::new();
        for m in &sent {
            client.send(m.clone()).unwrap();
            wire.extend(support::take_output(&mut client));
        }
        let total = wire.len();
        let stream = Chunked {
            wire,
            at: 0,
            chunk,
            reads: Vec::new(),
        };
        let mut ws = WebSocket::new(stream, support::server(Config::default()));
        for m in &sent {
            assert_eq!(&ws.read().unwrap(), m);
        }
        let reads = &ws.get_ref().reads;
        let taken: usize = reads.iter().map(|r| r.1).sum();
        let offered: usize = reads.iter().map(|r| r.0).sum();
        assert_eq!(taken, total);
        assert!(
            offered <= 2 * taken + 8 * 1024 * reads.len(),
            "{size} B messages in {chunk} B reads: {offered} bytes offered to {} reads of {taken}",
            reads.len()
        );
    }
}

// A rate-limited blocking server sleeps while input is paused: 600 echoes
// under 1 000 messages a second with a burst of 100 take at least 0.5 s;
// a timed Ping's round trip is measured.
#[test]
fn a_rate_limit_paces_a_blocking_server() {
    use rfc6455::{RateLimit, RateLimits};
    let limits = RateLimits::default().messages(Some(RateLimit::new(1_000, 100)));
    let (url, server) = tcp_echo_server(Config::default().rate_limits(limits));
    let (mut ws, _) = WebSocket::connect(&url).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..600 {
        ws.write(Message::binary(&b"x"[..])).unwrap();
    }
    ws.flush().unwrap();
    for _ in 0..600 {
        assert_eq!(ws.read().unwrap(), Message::binary(&b"x"[..]));
    }
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(495), "{took:?}");
    ws.ping().unwrap();
    assert!(matches!(ws.read().unwrap(), Message::Pong(p) if p.len() == 8));
    assert!(ws.stats().rtt.is_some());
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap();
}
