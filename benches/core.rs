//! Micro-benchmarks of the sans-IO core: header parsing, masking (next to a
//! plain memcpy of the same size), encoding, UTF-8 validation and whole
//! receives through `Connection`, and the blocking adapter's reads.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::io::{self, Read, Write};

use bytes::{Buf, Bytes};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rfc6455::blocking::WebSocket;
use rfc6455::frame::{FrameHeader, OpCode, apply_mask};
use rfc6455::{Config, Connection, Message, Role};

const SIZES: [usize; 6] = [16, 128, 1024, 16 * 1024, 64 * 1024, 1024 * 1024];

fn header_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    for (name, len, masked) in [
        ("2B", 5u64, false),
        ("4B+mask", 1000, true),
        ("10B+mask", 1 << 20, true),
    ] {
        let mut header = FrameHeader::new(OpCode::Binary, len);
        header.mask = masked.then_some([1, 2, 3, 4]);
        let mut wire = Vec::new();
        header.encode_into(&mut wire);
        group.bench_function(name, |b| b.iter(|| FrameHeader::parse(black_box(&wire))));
    }
    group.finish();
}

fn mask_vs_memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let src = vec![0x5au8; size];
        let mut dst = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut dst), [1, 2, 3, 4], 1))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&src)))
        });
        // A payload read after a 14-byte header into a buffer that starts 16
        // bytes into its allocation lies 30 bytes past a cache line.
        let mut padded = vec![0u8; size + 128];
        let at = padded.as_ptr().align_offset(64) + 30;
        group.bench_with_input(
            BenchmarkId::new("apply_mask_misaligned", size),
            &size,
            |b, _| b.iter(|| apply_mask(black_box(&mut padded[at..at + size]), [1, 2, 3, 4], 1)),
        );
    }
    group.finish();
}

fn drain(conn: &mut Connection) -> usize {
    let out = conn.outgoing();
    let n = out.remaining();
    while out.has_remaining() {
        let len = black_box(out.chunk()).len();
        out.advance(len);
    }
    n
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [16, 1024, 64 * 1024] {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = Bytes::from(vec![7u8; size]);
        for role in [Role::Server, Role::Client] {
            let mut conn = Connection::new(role, Config::default()).unwrap();
            let name = format!("{role:?}").to_lowercase();
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    conn.send(Message::Binary(payload.clone())).unwrap();
                    drain(&mut conn)
                })
            });
        }
    }
    group.finish();
}

/// The wire bytes a client sends for `messages` (masked, as a server receives them).
fn client_wire(messages: &[Message]) -> Vec<u8> {
    let mut conn =
        Connection::new(Role::Client, Config::default().dangerous_mask_seed(Some(1))).unwrap();
    let mut wire = Vec::new();
    for m in messages {
        conn.send(m.clone()).unwrap();
        let out = conn.outgoing();
        while out.has_remaining() {
            let n = out.chunk().len();
            wire.extend_from_slice(out.chunk());
            out.advance(n);
        }
    }
    wire
}

fn receive_all(conn: &mut Connection, wire: &[u8]) -> usize {
    conn.receive(wire);
    let mut count = 0;
    while let Some(m) = conn.next_message().unwrap() {
        black_box(m);
        count += 1;
    }
    count
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    let cases: [(&str, Vec<Message>); 5] = [
        (
            "1000x16B binary",
            vec![Message::binary(vec![1u8; 16]); 1000],
        ),
        (
            "1000x1KiB binary",
            vec![Message::binary(vec![1u8; 1024]); 1000],
        ),
        ("1MiB binary", vec![Message::binary(vec![1u8; 1 << 20])]),
        ("1MiB ascii text", vec![Message::text("a".repeat(1 << 20))]),
        (
            "1MiB multibyte text",
            vec![Message::text("é€𝄞".repeat((1 << 20) / 9))],
        ),
    ];
    for (name, messages) in cases {
        let wire = client_wire(&messages);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut conn = Connection::new(Role::Server, Config::default()).unwrap();
        group.bench_function(name, |b| b.iter(|| receive_all(&mut conn, &wire)));
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    // Validation cost on its own: the same 64 KiB received as text and as binary.
    let mut group = c.benchmark_group("utf8");
    let text = "κόσμε ascii and more ascii 𝄞 ".repeat(64 * 1024 / 36);
    group.throughput(Throughput::Bytes(text.len() as u64));
    // The validators alone, on the same mixed text: the standard library's
    // and simdutf8's (which the connection uses).
    group.bench_function("std::str::from_utf8", |b| {
        b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).is_ok())
    });
    group.bench_function("simdutf8::basic::from_utf8", |b| {
        b.iter(|| simdutf8::basic::from_utf8(black_box(text.as_bytes())).is_ok())
    });
    for (name, message) in [
        ("text", Message::text(text.clone())),
        ("binary (no check)", Message::binary(text.into_bytes())),
    ] {
        let wire = client_wire(&[message]);
        let mut conn = Connection::new(Role::Server, Config::default()).unwrap();
        group.bench_function(name, |b| b.iter(|| receive_all(&mut conn, &wire)));
    }
    group.finish();
}

/// Text-like (repetitive, compressible) and random (incompressible) payloads.
fn payloads(size: usize) -> [(&'static str, Vec<u8>); 2] {
    let text: Vec<u8> =
        "{\"id\": 12345, \"name\": \"permessage-deflate\", \"tags\": [\"a\", \"b\"]}\n"
            .bytes()
            .cycle()
            .take(size)
            .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    [("text", text), ("random", random)]
}

fn deflate_pair() -> (Connection, Connection) {
    use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut client =
        Connection::new(Role::Client, config.clone().dangerous_mask_seed(Some(1))).unwrap();
    let mut server = Connection::new(Role::Server, config).unwrap();
    client.set_deflate(params);
    server.set_deflate(params);
    (client, server)
}

fn take(conn: &mut Connection) -> Vec<u8> {
    let out = conn.outgoing();
    let mut wire = Vec::with_capacity(out.remaining());
    while out.has_remaining() {
        let n = out.chunk().len();
        wire.extend_from_slice(out.chunk());
        out.advance(n);
    }
    wire
}

fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    for size in [1024, 64 * 1024, 1024 * 1024] {
        group.throughput(Throughput::Bytes(size as u64));
        for (kind, payload) in payloads(size) {
            let payload = Bytes::from(payload);
            // Compress: a server sends (no masking on top).
            let (_, mut server) = deflate_pair();
            group.bench_function(BenchmarkId::new(format!("compress/{kind}"), size), |b| {
                b.iter(|| {
                    server.send(Message::Binary(payload.clone())).unwrap();
                    drain(&mut server)
                })
            });
            // Decompress: the same compressed message received again and again
            // (a fresh pair each batch keeps the contexts in step).
            group.bench_function(BenchmarkId::new(format!("decompress/{kind}"), size), |b| {
                b.iter_batched(
                    || {
                        let (mut client, server) = deflate_pair();
                        client.send(Message::Binary(payload.clone())).unwrap();
                        (take(&mut client), server)
                    },
                    |(wire, mut server)| receive_all(&mut server, &wire),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

/// A whole echo round (client send, server receive and send back, client
/// receive) through two connections, with and without permessage-deflate.
fn echo_round(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo_round");
    for size in [1024, 64 * 1024] {
        group.throughput(Throughput::Bytes(size as u64));
        let message = Message::binary(payloads(size)[0].1.clone());
        for compressed in [false, true] {
            let (mut client, mut server) = if compressed {
                deflate_pair()
            } else {
                (
                    Connection::new(Role::Client, Config::default().dangerous_mask_seed(Some(1)))
                        .unwrap(),
                    Connection::new(Role::Server, Config::default()).unwrap(),
                )
            };
            let name = if compressed { "deflate" } else { "plain" };
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    client.send(message.clone()).unwrap();
                    server.receive(&take(&mut client));
                    while let Some(m) = server.next_message().unwrap() {
                        server.send(m).unwrap();
                    }
                    client.receive(&take(&mut server));
                    client.next_message().unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A stream that replays the same wire bytes forever, handing out at most
/// `chunk` bytes per read (as a socket hands out what has arrived so far),
/// and discards what is written.
struct Replay {
    wire: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl rfc6455::blocking::HalfClose for Replay {}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.wire.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at = (self.at + n) % self.wire.len();
        Ok(n)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whole messages read through the blocking adapter, the input arriving a
/// chunk at a time: what each read costs besides the copy it makes.
fn blocking_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("blocking_read");
    let cases = [
        ("16B, one per read", 16, 16 + 6),
        ("1KiB, 16 KiB reads", 1024, 16 * 1024),
        ("1MiB, 16 KiB reads", 1 << 20, 16 * 1024),
        ("1MiB, 64 KiB reads", 1 << 20, 64 * 1024),
        ("1MiB, whole reads", 1 << 20, (1 << 20) + 14),
    ];
    for (name, size, chunk) in cases {
        let wire = client_wire(&vec![Message::binary(vec![1u8; size]); 16]);
        group.throughput(Throughput::Bytes(size as u64));
        let stream = Replay { wire, at: 0, chunk };
        let conn = Connection::new(Role::Server, Config::default()).unwrap();
        let mut ws = WebSocket::new(stream, conn);
        group.bench_function(name, |b| b.iter(|| ws.read().unwrap()));
    }
    group.finish();
}

criterion_group!(
    benches,
    header_parse,
    mask_vs_memcpy,
    encode,
    receive,
    utf8,
    deflate,
    echo_round,
    blocking_read
);
criterion_main!(benches);
