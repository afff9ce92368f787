//! Micro-benchmarks of the sans-IO core: header parsing, masking (next to a
//! plain memcpy of the same size), encoding, UTF-8 validation and whole
//! receives through `Connection`.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;

use bytes::{Buf, Bytes};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, header_parse, mask_vs_memcpy, encode, receive, utf8);
criterion_main!(benches);
