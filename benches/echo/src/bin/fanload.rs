//! A neutral fan-out load generator: no WebSocket library.
//!
//! N subscribers connect to SUB_ADDR and one publisher to PUB_ADDR, each
//! upgraded with a hand-written request. The publisher sends binary
//! messages of SIZE bytes (at least 16: its send time and a sequence number
//! first), unpaced (as fast as its socket takes them) or at RATE messages
//! per second; subscribers count what arrives by parsing frame headers and
//! read each message's send time for its latency and its sequence number
//! for what was skipped (a subscriber's gaps: a server that drops what a
//! lagging subscriber missed). After a warm-up it measures for SECONDS and
//! prints one line of `key=value`: deliveries_per_s, skipped_per_s, p50_us,
//! p99_us, max_us, loadgen_cpu and, given the server's process id,
//! server_cpu and server_rss_mb.
//!
//! With `--deflate` the upgrade offers permessage-deflate with no context
//! takeover on either side, and compressed messages are inflated (flate2,
//! raw DEFLATE) to read their send time.
//!
//! ```text
//! fanload SUB_ADDR PUB_ADDR SUBSCRIBERS SIZE SECONDS [--rate R] [--pid PID] [--deflate]
//! ```

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(deflate: bool) -> String {
    let extension = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover\r\n"
    } else {
        ""
    };
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    )
}

/// Latencies in microseconds, in buckets of about 3 %.
struct Histogram {
    counts: Vec<u64>,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; 64 * 32],
            max: 0,
        }
    }

    fn bucket(us: u64) -> usize {
        if us < 32 {
            return us as usize;
        }
        let msb = 63 - us.leading_zeros() as usize;
        (msb - 4) * 32 + ((us >> (msb - 5)) & 31) as usize
    }

    /// The smallest value in `bucket`.
    fn low(bucket: usize) -> u64 {
        if bucket < 32 {
            return bucket as u64;
        }
        let msb = bucket / 32 + 4;
        (1 << msb) | ((bucket as u64 % 32) << (msb - 5))
    }

    fn record(&mut self, us: u64) {
        let last = self.counts.len() - 1;
        self.counts[Self::bucket(us).min(last)] += 1;
        self.max = self.max.max(us);
    }

    fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.counts.iter().sum();
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return Self::low(bucket);
            }
        }
        0
    }
}

struct Stats {
    base: Instant,
    recording: bool,
    deliveries: u64,
    skipped: u64,
    latency: Histogram,
    stop: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!(
            "usage: fanload SUB_ADDR PUB_ADDR SUBSCRIBERS SIZE SECONDS [--rate R] [--pid PID] [--deflate]"
        );
        std::process::exit(2);
    }
    let sub_addr: SocketAddr = args[1].parse().expect("SUB_ADDR");
    let pub_addr: SocketAddr = args[2].parse().expect("PUB_ADDR");
    let subscribers: usize = args[3].parse().expect("SUBSCRIBERS");
    let size: usize = args[4].parse::<usize>().expect("SIZE").max(16);
    let secs: f64 = args[5].parse().expect("SECONDS");
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<f64>().expect(name))
    };
    let rate = option("--rate");
    let server = option("--pid").map(|p| p as u32);
    let deflate = args.iter().any(|a| a == "--deflate");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let stats = Rc::new(RefCell::new(Stats {
            base: Instant::now(),
            recording: false,
            deliveries: 0,
            skipped: 0,
            latency: Histogram::new(),
            stop: false,
        }));
        let chunk = Rc::new(RefCell::new(vec![0u8; 256 * 1024]));
        for _ in 0..subscribers {
            let (tcp, leftover) = connect(sub_addr, deflate).await;
            let (stats, chunk) = (Rc::clone(&stats), Rc::clone(&chunk));
            tokio::task::spawn_local(subscriber(tcp, leftover, stats, chunk, deflate));
        }
        // Let the server register every subscriber before publishing.
        tokio::time::sleep(Duration::from_millis(300 + subscribers as u64 / 20)).await;
        let (publisher, _) = connect(pub_addr, false).await;
        tokio::task::spawn_local(publish(publisher, size, rate, Rc::clone(&stats)));
        let warmup = Duration::from_secs_f64(if rate.is_some() { 1.0 } else { 0.5 });
        tokio::time::sleep(warmup).await;
        let cpu_before = (own_cpu(), server.map(process_cpu));
        {
            let mut s = stats.borrow_mut();
            s.recording = true;
            s.deliveries = 0;
            s.skipped = 0;
            s.latency = Histogram::new();
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_after = (own_cpu(), server.map(process_cpu));
        let mut s = stats.borrow_mut();
        s.stop = true;
        let mut line = format!(
            "deliveries_per_s={:.0} skipped_per_s={:.0} p50_us={} p99_us={} max_us={} loadgen_cpu={:.2}",
            s.deliveries as f64 / elapsed,
            s.skipped as f64 / elapsed,
            s.latency.quantile(0.5),
            s.latency.quantile(0.99),
            s.latency.max,
            (cpu_after.0 - cpu_before.0) / elapsed,
        );
        if let (Some(before), Some(after), Some(pid)) = (cpu_before.1, cpu_after.1, server) {
            line += &format!(
                " server_cpu={:.2} server_rss_mb={:.1}",
                (after - before) / elapsed,
                rss_mb(pid)
            );
        }
        println!("{line}");
        std::process::exit(0);
    });
}

/// Connects and upgrades; the bytes read past the response.
async fn connect(addr: SocketAddr, deflate: bool) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.write_all(request(deflate).as_bytes())
        .await
        .expect("request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await.expect("response");
        assert!(n > 0, "server closed during the upgrade");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
            if deflate {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                assert!(
                    head.contains("permessage-deflate"),
                    "deflate not negotiated"
                );
            }
            return (tcp, buf.split_off(end + 4));
        }
    }
}

/// What a subscriber keeps of the frame it is reading: its header and the
/// start of its payload (the send time and sequence number; all of it when
/// compressed), then how much payload is left to pass over. Nothing else of
/// a frame is copied, so 10 000 subscribers hold no buffers of their own.
#[derive(Default)]
struct Frame {
    /// The header and the payload bytes kept so far.
    head: Vec<u8>,
    /// Payload bytes still to pass over once `head` is complete.
    skip: usize,
    /// The payload is compressed (its stamp is read after inflating).
    compressed: bool,
}

/// A frame header's length and its payload length once `head` holds the
/// whole header; before that, how many bytes of header `head` needs.
fn header(head: &[u8]) -> Result<(usize, usize), usize> {
    let Some(&second) = head.get(1) else {
        return Err(2);
    };
    let header_len = match second & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let Some(field) = head.get(2..header_len) else {
        return Err(header_len);
    };
    let len = match second & 0x7f {
        126 | 127 => field.iter().fold(0, |len, &b| len << 8 | b as usize),
        n => n as usize,
    };
    Ok((header_len, len))
}

/// Counts deliveries and gaps in the sequence, and records each message's
/// latency. Reads go to one buffer all subscribers share (a single-threaded
/// runtime: no read awaits while it is borrowed), so the load generator's
/// memory does not grow with subscribers times read size.
async fn subscriber(
    tcp: TcpStream,
    leftover: Vec<u8>,
    stats: Rc<RefCell<Stats>>,
    chunk: Rc<RefCell<Vec<u8>>>,
    deflate: bool,
) {
    let mut inflater = flate2::Decompress::new(false);
    let mut inflated = Vec::with_capacity(64);
    let mut frame = Frame::default();
    let mut next_seq = None;
    let mut consume = |mut input: &[u8]| {
        while !input.is_empty() {
            if frame.skip > 0 {
                let n = frame.skip.min(input.len());
                frame.skip -= n;
                input = &input[n..];
                if frame.skip > 0 {
                    break;
                }
                frame.head.clear();
                frame.compressed = false;
                continue;
            }
            // The header first, then the payload bytes to keep.
            let (header_len, len) = match header(&frame.head) {
                Ok(header) => header,
                Err(want) => {
                    let n = (want - frame.head.len()).min(input.len());
                    frame.head.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    continue;
                }
            };
            if frame.head.len() == header_len {
                frame.compressed = frame.head[0] & 0x40 != 0 && deflate;
            }
            let keep = if frame.compressed { len } else { len.min(16) };
            let have = frame.head.len() - header_len;
            let n = (keep - have).min(input.len());
            frame.head.extend_from_slice(&input[..n]);
            input = &input[n..];
            if have + n < keep {
                break;
            }
            let payload = &frame.head[header_len..];
            let stamp = if frame.compressed {
                inflated.clear();
                inflater.reset(false);
                let mut compressed = payload.to_vec();
                compressed.extend_from_slice(&[0, 0, 0xff, 0xff]);
                let _ = inflater.decompress_vec(
                    &compressed,
                    &mut inflated,
                    flate2::FlushDecompress::Sync,
                );
                read_stamp(&inflated)
            } else {
                read_stamp(payload)
            };
            let mut s = stats.borrow_mut();
            if let Some((sent, seq)) = stamp {
                if s.recording {
                    s.deliveries += 1;
                    s.skipped += seq.saturating_sub(next_seq.unwrap_or(seq));
                    let now = s.base.elapsed().as_micros() as u64;
                    s.latency.record(now.saturating_sub(sent));
                }
                next_seq = Some(seq + 1);
            } else if s.recording {
                s.deliveries += 1;
            }
            frame.skip = len - keep;
            if frame.skip == 0 {
                frame.head.clear();
                frame.compressed = false;
            }
        }
    };
    consume(&leftover);
    loop {
        if stats.borrow().stop || tcp.readable().await.is_err() {
            return;
        }
        let mut chunk = chunk.borrow_mut();
        match tcp.try_read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => consume(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The send time and sequence number at the start of a message, if it has them.
fn read_stamp(payload: &[u8]) -> Option<(u64, u64)> {
    let word = |at: usize| {
        Some(u64::from_be_bytes(
            payload.get(at..at + 8)?.try_into().ok()?,
        ))
    };
    Some((word(0)?, word(8)?))
}

/// Sends masked binary frames (a zero key, so the payload goes as written),
/// each with its send time, unpaced in batches or at `rate`.
async fn publish(mut tcp: TcpStream, size: usize, rate: Option<f64>, stats: Rc<RefCell<Stats>>) {
    let mut header = vec![0x82u8];
    match size {
        0..=125 => header.push(0x80 | size as u8),
        126..=0xffff => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    header.extend_from_slice(&[0, 0, 0, 0]);
    let frame_len = header.len() + size;
    let batch = if rate.is_some() {
        1
    } else {
        (64 * 1024 / frame_len).clamp(1, 64)
    };
    let mut out = vec![0u8; frame_len * batch];
    for i in 0..batch {
        out[i * frame_len..i * frame_len + header.len()].copy_from_slice(&header);
    }
    let mut interval = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
    let base = stats.borrow().base;
    let mut seq = 0u64;
    loop {
        if let Some(interval) = &mut interval {
            interval.tick().await;
        }
        let now = base.elapsed().as_micros() as u64;
        for i in 0..batch {
            let at = i * frame_len + header.len();
            out[at..at + 8].copy_from_slice(&now.to_be_bytes());
            out[at + 8..at + 16].copy_from_slice(&seq.to_be_bytes());
            seq += 1;
        }
        if tcp.write_all(&out).await.is_err() || stats.borrow().stop {
            return;
        }
    }
}

/// This process's CPU seconds.
fn own_cpu() -> f64 {
    process_cpu(std::process::id())
}

/// A process's user + system CPU seconds, from /proc.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A process's resident memory in MiB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
