//! Connection scale: N connections held open against one echo server.
//!
//! Each connection is opened from one of several 127.0.0.x source addresses
//! (so the ports of one address do not run out), upgraded with a
//! hand-written request and echoes one 16-byte binary message; then all are
//! held idle, every one echoes once more, and all are closed. No WebSocket
//! library on this side. Prints one line of `key=value`:
//!
//! - `opened`, `failed`: connections that echoed their first message, and
//!   those that did not (connect, upgrade or echo failed);
//! - `open_s`, `handshakes_per_s`: from the first connect to the last first
//!   echo, with at most CONCURRENCY opening at once;
//! - `rss_base_kib`, `rss_idle_kib`, `kib_per_conn`: the server's resident
//!   memory before the first connect and after all are open and have been
//!   idle for SETTLE seconds (with `--pid`);
//! - `echo_s`, `echoed`: every connection echoes once more;
//! - `rss_after_echo_kib`: right after that round;
//! - `close_s`: every connection sends a Close and waits for the server to
//!   end the TCP connection;
//! - `tcp_mem_kib`: the kernel's TCP buffer memory with all open
//!   (`/proc/net/sockstat`);
//! - `system_used_mib`: the whole machine's memory in use then
//!   (`/proc/meminfo`: total less available), kernel included;
//! - `open_from`, `open_until`, `echo_from`: when opening started and ended
//!   and the second echo started, in seconds since the Unix epoch (for
//!   clients run side by side).
//!
//! ```text
//! scale ADDR N [--pid PID] [--deflate] [--concurrency C] [--sources K] [--first-source I] [--barrier DIR:K] [--settle SECS]
//! ```
//!
//! `--deflate` offers permessage-deflate the way browsers do
//! (`client_max_window_bits`) and sends both echoed messages compressed, so
//! the server holds its compression state in both directions.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
const PAYLOAD: &[u8; 16] = b"0123456789abcdef";

struct Options {
    addr: SocketAddr,
    count: usize,
    pid: Option<u32>,
    deflate: bool,
    concurrency: usize,
    sources: usize,
    /// The index of the first source address (clients run side by side
    /// use different ones, so their ports do not collide).
    first_source: usize,
    /// A directory shared by K clients run side by side: each marks it
    /// once its connections are open and waits for all K marks before it
    /// settles, samples and echoes.
    barrier: Option<(std::path::PathBuf, usize)>,
    settle: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: scale ADDR N [--pid PID] [--deflate] [--concurrency C] [--sources K] [--first-source I] [--barrier DIR:K] [--settle SECS]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let count: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let mut options = Options {
        addr,
        count,
        pid: None,
        deflate: false,
        concurrency: 256,
        // About 28 000 ephemeral ports per source address.
        sources: count / 20_000 + 1,
        first_source: 0,
        barrier: None,
        settle: Duration::from_secs(3),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--pid" => options.pid = value().parse().ok(),
            "--deflate" => options.deflate = true,
            "--concurrency" => options.concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--sources" => options.sources = value().parse().unwrap_or_else(|_| usage()),
            "--barrier" => {
                let spec = value();
                let (dir, k) = spec.rsplit_once(':').unwrap_or_else(|| usage());
                options.barrier = Some((dir.into(), k.parse().unwrap_or_else(|_| usage())));
            }
            "--first-source" => options.first_source = value().parse().unwrap_or_else(|_| usage()),
            "--settle" => {
                options.settle =
                    Duration::from_secs_f64(value().parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    options
}

/// A client frame: FIN, the opcode (with RSV1 if compressed), masked payload.
fn client_frame(opcode: u8, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![
        0x80 | opcode | if rsv1 { 0x40 } else { 0 },
        0x80 | payload.len() as u8,
    ];
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// The 16-byte message, compressed with a fresh context (valid whatever
/// context takeover was agreed: it refers to nothing sent before).
fn compressed_payload() -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(64);
    compress
        .compress_vec(PAYLOAD, &mut out, flate2::FlushCompress::Sync)
        .expect("compress");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn request(deflate: bool) -> String {
    let extension = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    )
}

/// Reads one server frame (unmasked, short) and returns its opcode.
async fn read_frame(tcp: &mut TcpStream) -> std::io::Result<u8> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            tcp.read_exact(&mut ext).await?;
            usize::from(u16::from_be_bytes(ext))
        }
        127 => return Err(std::io::Error::other("unexpectedly long frame")),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await?;
    Ok(head[0] & 0x0f)
}

async fn echo(tcp: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    tcp.write_all(frame).await?;
    match read_frame(tcp).await? {
        0x2 => Ok(()),
        op => Err(std::io::Error::other(format!(
            "echo came back as opcode {op}"
        ))),
    }
}

async fn open(
    index: usize,
    o: &Options,
    request: &str,
    frame: &[u8],
) -> std::io::Result<TcpStream> {
    let s = o.first_source + index % o.sources;
    let source = Ipv4Addr::new(127, 0, (s / 250) as u8, (1 + s % 250) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let mut tcp = socket.connect(o.addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("upgrade refused"));
    }
    if o.deflate
        && !String::from_utf8_lossy(&head)
            .to_ascii_lowercase()
            .contains("permessage-deflate")
    {
        return Err(std::io::Error::other("permessage-deflate was not agreed"));
    }
    echo(&mut tcp, frame).await?;
    Ok(tcp)
}

/// Sends a Close and reads until the server ends the TCP connection (at
/// most 10 s: a server that never does is reported by `close_s`).
async fn close(mut tcp: TcpStream) -> std::io::Result<()> {
    tcp.write_all(&client_frame(0x8, false, &1000u16.to_be_bytes()))
        .await?;
    let mut sink = [0u8; 64];
    let drained = async {
        while tcp.read(&mut sink).await? > 0 {}
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .unwrap_or(Ok(()))
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The kernel's TCP buffer memory, in KiB.
fn tcp_mem_kib() -> u64 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// Marks `dir` (this client's connections are open) and waits until
/// `clients` clients have.
async fn wait_for_all(dir: &std::path::Path, clients: usize) {
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join(std::process::id().to_string()), b"");
    while std::fs::read_dir(dir).map_or(0, |d| d.count()) < clients {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Memory in use on the whole machine (`MemTotal - MemAvailable`), MiB.
fn system_used_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:")) / 1024
}

fn main() {
    let o = options();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(o));
}

async fn run(o: Options) {
    let request = request(o.deflate);
    let frame = if o.deflate {
        client_frame(0x2, true, &compressed_payload())
    } else {
        client_frame(0x2, false, PAYLOAD)
    };
    let rss_base = o.pid.map_or(0, rss_kib);

    let open_from = unix_now();
    let started = Instant::now();
    let results: Vec<_> = futures_util::stream::iter(0..o.count)
        .map(|i| open(i, &o, &request, &frame))
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let open_s = started.elapsed().as_secs_f64();
    let open_until = unix_now();
    let mut streams = Vec::with_capacity(o.count);
    let mut first_error = None;
    for result in results {
        match result {
            Ok(tcp) => streams.push(tcp),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let opened = streams.len();
    let failed = o.count - opened;
    if let Some(e) = &first_error {
        eprintln!("scale: {failed} connections failed; the first: {e}");
    }

    if let Some((dir, clients)) = &o.barrier {
        wait_for_all(dir, *clients).await;
    }
    tokio::time::sleep(o.settle).await;
    let rss_idle = o.pid.map_or(0, rss_kib);
    let tcp_mem = tcp_mem_kib();
    let system_used = system_used_mib();

    let echo_from = unix_now();
    let started = Instant::now();
    let echoed = futures_util::stream::iter(streams.iter_mut())
        .map(|tcp| echo(tcp, &frame))
        .buffer_unordered(o.concurrency)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let echo_s = started.elapsed().as_secs_f64();
    let rss_after_echo = o.pid.map_or(0, rss_kib);

    let started = Instant::now();
    futures_util::stream::iter(streams)
        .map(close)
        .buffer_unordered(o.concurrency)
        .for_each(|_| std::future::ready(()))
        .await;
    let close_s = started.elapsed().as_secs_f64();

    let per_conn = if opened > 0 {
        rss_idle.saturating_sub(rss_base) as f64 / opened as f64
    } else {
        0.0
    };
    println!(
        "opened={opened} failed={failed} open_s={open_s:.3} handshakes_per_s={:.0} \
         rss_base_kib={rss_base} rss_idle_kib={rss_idle} kib_per_conn={per_conn:.2} \
         echo_s={echo_s:.3} echoed={echoed} rss_after_echo_kib={rss_after_echo} \
         close_s={close_s:.3} tcp_mem_kib={tcp_mem} system_used_mib={system_used} open_from={open_from:.3} \
         open_until={open_until:.3} echo_from={echo_from:.3}",
        opened as f64 / open_s
    );
}

/// Seconds since the Unix epoch: when clients run side by side, when all
/// of them had their connections open.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
