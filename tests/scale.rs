//! What an idle connection holds: 1 000 server connections through the
//! tokio adapter, each upgraded and echoing one message, then idle; the heap
//! they hold is counted with a counting allocator (not timed).
//!
//! The streams are scripted: each reads the upgrade request and one frame
//! from one shared static buffer, then never has more (and never wakes the
//! task), and discards what is written, so every byte counted is the
//! connection's own: its `WebSocketStream`, its task and timer. Tokio's
//! clock is paused, so the shrink (within three idle seconds) happens at once.
#![cfg(feature = "tokio")]

#[path = "support/alloc.rs"]
mod alloc;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use alloc::Meter;
use rfc6455::Config;
use rfc6455::ServerBuilder;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CONNECTIONS: usize = 1000;
const MASK: [u8; 4] = [1, 2, 3, 4];

/// Bytes written by every scripted stream, in total.
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

/// A stream that reads `script` in two reads, the upgrade request and then
/// what follows it (as a client sends its first message once it has the
/// answer), then waits forever, and takes every write.
struct Scripted {
    script: &'static [u8],
    at: usize,
}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let head = self
            .script
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        let end = if self.at < head {
            head
        } else {
            self.script.len()
        };
        let rest = &self.script[self.at..end];
        if rest.is_empty() {
            return Poll::Pending;
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        WRITTEN.fetch_add(buf.len(), Ordering::Relaxed);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// The upgrade request, offering `extensions` (if any).
fn request(extensions: Option<&str>) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        extensions.map_or(String::new(), |e| format!(
            "Sec-WebSocket-Extensions: {e}\r\n"
        ))
    )
    .into_bytes()
}

/// The upgrade request (offering `extensions`, if any) and one binary
/// message, compressed if `compressed`, leaked once per kind.
fn script(extensions: Option<&str>, compressed: bool) -> &'static [u8] {
    let mut bytes = request(extensions);
    if compressed {
        // Longer than any window, so the window's bytes kept are all there.
        let text: String = (0..1000)
            .map(|i| format!("line {i} of an idle connection's only message\n"))
            .collect();
        assert!(text.len() > 40 << 10);
        bytes.extend(compressed_frame(text.as_bytes()));
    } else {
        bytes.extend(client_frame(
            0x82,
            b"an idle connection's first and only message",
        ));
    }
    bytes.leak()
}

/// The upgrade request and a burst: a small message, then a larger one
/// (whose echo needs more than the first one's room), leaked.
fn burst() -> &'static [u8] {
    let mut bytes = request(None);
    bytes.extend(client_frame(0x82, b"a small message"));
    bytes.extend(client_frame(0x82, &[b'x'; 120]));
    bytes.leak()
}

/// `payload` as a client's first compressed message (a fresh context:
/// valid whatever context takeover was agreed).
#[cfg(feature = "deflate")]
fn compressed_frame(payload: &[u8]) -> Vec<u8> {
    use bytes::Buf;
    use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
    use rfc6455::{Connection, Message, Role};
    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut client = Connection::new(Role::Client, config).unwrap();
    client.set_deflate(DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    });
    client.send(Message::binary(payload.to_vec())).unwrap();
    let out = client.outgoing();
    let frame = out.copy_to_bytes(out.remaining()).to_vec();
    assert_eq!(frame[0], 0xc2, "compressed");
    frame
}

#[cfg(not(feature = "deflate"))]
fn compressed_frame(_: &[u8]) -> Vec<u8> {
    unreachable!("only the deflate tests send compressed frames")
}

/// Heap held per connection by `CONNECTIONS` idle echo connections, and
/// (first) right after their echo, before they shrink.
fn held_per_connection(config: Config, script: &'static [u8]) -> (usize, usize) {
    // The meter first, and dropped last: it keeps the tests of this binary
    // apart, the runtime's teardown included.
    let mut meter = Meter::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let meter = &mut meter;
    let held = runtime.block_on(async move {
        let echo = |config: Config| async move {
            let server = ServerBuilder::new().config(config).unwrap();
            let mut ws = WebSocketStream::accept(Scripted { script, at: 0 }, &server)
                .await
                .unwrap();
            while let Some(message) = ws.next().await {
                ws.send(message.unwrap()).await.unwrap();
            }
        };
        // One connection first: what one writes, and warm-up (the runtime's
        // own first allocations).
        WRITTEN.store(0, Ordering::SeqCst);
        let warm = tokio::spawn(echo(config.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let per_connection = WRITTEN.swap(0, Ordering::SeqCst);
        assert!(per_connection > 0);

        meter.restart();
        for _ in 0..CONNECTIONS {
            drop(tokio::spawn(echo(config.clone())));
        }
        // Paused, the clock moves only once every task waits.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let busy = meter.live_growth() / CONNECTIONS;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle = meter.live_growth() / CONNECTIONS;
        assert_eq!(
            WRITTEN.load(Ordering::SeqCst),
            CONNECTIONS * per_connection,
            "every connection upgraded and echoed"
        );
        warm.abort();
        (busy, idle)
    });
    drop(runtime);
    held
}

#[test]
fn an_idle_plain_connection_holds_little() {
    let (busy, idle) = held_per_connection(Config::default(), script(None, false));
    eprintln!("plain: {busy} bytes per connection after the echo, {idle} idle");
    assert!(idle <= 3072, "an idle connection holds {idle} bytes");
    // Its first read and first write after the upgrade get exactly the room
    // they need, not a whole buffer each.
    assert!(
        busy <= idle + 1024,
        "waking for one small message took {busy} bytes against {idle} idle"
    );
}

#[test]
fn the_buffers_of_a_burst_are_given_back() {
    let (busy, idle) = held_per_connection(Config::default(), burst());
    let kept = Config::default().shrink_after_idle(None);
    let (_, unshrunk) = held_per_connection(kept, burst());
    eprintln!("plain burst: {busy} bytes after, {idle} idle, {unshrunk} never shrunk");
    assert!(idle <= 3072, "an idle connection holds {idle} bytes");
    assert!(
        unshrunk >= idle + 1536,
        "the write buffer was given back: {unshrunk} -> {idle}"
    );
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use rfc6455::extensions::deflate::DeflateConfig;

    fn with(deflate: DeflateConfig) -> Config {
        Config::default().deflate(Some(deflate.threshold(0)))
    }

    /// Chrome's offer.
    const OFFER: &str = "permessage-deflate; client_max_window_bits";

    #[test]
    fn an_idle_compressed_connection_holds_at_most_32_kib() {
        let (busy, idle) =
            held_per_connection(with(DeflateConfig::default()), script(Some(OFFER), true));
        eprintln!("deflate: {busy} bytes per connection after the echo, {idle} idle");
        assert!(
            idle <= 32 << 10,
            "an idle compressed connection holds {idle} bytes"
        );
        assert!(
            busy > idle + (200 << 10),
            "the zlib states were let go: {busy} -> {idle}"
        );
    }

    // What an idle connection keeps grows with the window the client was
    // granted: its last 2^bits bytes.
    #[test]
    fn the_window_bounds_what_an_idle_compressed_connection_keeps() {
        let mut idle = Vec::new();
        for bits in [12, 13, 14, 15] {
            // Sent uncompressed: only the receiving side's memory is compared.
            let config = Config::default().deflate(Some(
                DeflateConfig::default()
                    .client_max_window_bits(bits)
                    .threshold(usize::MAX),
            ));
            let (busy, held) = held_per_connection(config, script(Some(OFFER), true));
            eprintln!(
                "deflate, client window {bits} bits: {busy} bytes per connection after the echo, {held} idle"
            );
            idle.push(held);
        }
        for (pair, bits) in idle.windows(2).zip(12..) {
            let grew = pair[1] - pair[0];
            let window = 1usize << bits;
            assert!(
                (window - 1024..window + 1024).contains(&grew),
                "{} -> {} bits: {grew} bytes more",
                bits,
                bits + 1
            );
        }
    }

    #[test]
    fn without_context_takeover_an_idle_connection_holds_what_a_plain_one_does() {
        let (_, plain) = held_per_connection(Config::default(), script(None, false));
        let offer = "permessage-deflate; client_max_window_bits; \
                     server_no_context_takeover; client_no_context_takeover";
        let (busy, idle) =
            held_per_connection(with(DeflateConfig::default()), script(Some(offer), true));
        eprintln!(
            "deflate, no context takeover: {busy} bytes per connection after the echo, {idle} idle"
        );
        assert!(
            idle <= plain + 2048,
            "{idle} bytes idle against {plain} for a plain one"
        );
    }
}
