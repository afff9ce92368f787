//! Drives the hub's fan-out N times, for instruction counts under
//! `valgrind --tool=callgrind` (`bash benches/callgrind.sh fanout`): S
//! subscribers, each a server connection over an in-memory stream that
//! takes every write and never has input, forwarded by its member's task
//! on a current-thread runtime; one publisher publishes N messages of SIZE
//! bytes, awaiting `Hub::ready` before each, until every subscriber has
//! written them all. The difference between two runs of different N,
//! divided by the difference in deliveries, is one delivery's cost:
//! the queue, the wake-up, the task and the write, everything but the
//! kernel.
//!
//! ```text
//! fanpercall SUBSCRIBERS SIZE N
//! ```

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Config, Connection, PreparedMessage, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Takes every write (counting the bytes), never has input.
struct Sink(Arc<AtomicUsize>);

impl AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.0.fetch_add(len, Ordering::Relaxed);
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (subscribers, size, n) = (arg(1, 100), arg(2, 16), arg(3, 1000));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let written = Arc::new(AtomicUsize::new(0));
    let message = PreparedMessage::binary(vec![0x5a; size]);
    // A server frame: a 2-byte header up to 125 bytes, 4 up to 64 KiB.
    let frame = size + if size < 126 { 2 } else { 4 };
    runtime.block_on(async {
        let hub = Hub::new(HubConfig::default());
        for _ in 0..subscribers {
            let conn = Connection::new(Role::Server, Config::default()).expect("config");
            let (mut write, _read) = WebSocketStream::new(Sink(Arc::clone(&written)), conn).split();
            let member = hub.join();
            hub.subscribe(&member, "t").expect("subscribe");
            tokio::spawn(async move {
                let _keep = _read;
                let _ = member.forward(&mut write).await;
            });
        }
        for _ in 0..n {
            hub.ready().await;
            hub.publish("t", &message);
        }
        while written.load(Ordering::Relaxed) < n * subscribers * frame {
            tokio::task::yield_now().await;
        }
    });
    println!("{}", written.load(Ordering::Relaxed));
}
