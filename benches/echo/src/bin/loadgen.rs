//! A neutral WebSocket echo load generator: no WebSocket library.
//!
//! C connections to ADDR, each upgraded with a hand-written request; then
//! pre-encoded masked binary frames of S bytes, D in flight per connection,
//! for T seconds after a warm-up. Echoes are counted by parsing frame headers
//! only. Prints one line of `key=value`: msgs_per_s, mb_per_s, p50_us and
//! p99_us (round trips, meaningful at depth 1), cpu (this process's CPU time
//! over wall time: 1.0 is one saturated core).
//!
//! ```text
//! loadgen ADDR CONNECTIONS SIZE DEPTH SECONDS [WARMUP_SECONDS]
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Counters shared by every connection (one thread, so contention is nil).
struct Shared {
    echoes: AtomicU64,
    stop: AtomicBool,
    record: AtomicBool,
    base: Instant,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: loadgen ADDR CONNECTIONS SIZE DEPTH SECONDS [WARMUP_SECONDS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let conns: usize = args[2].parse().expect("CONNECTIONS");
    let size: usize = args[3].parse().expect("SIZE");
    let depth: usize = args[4].parse().expect("DEPTH");
    let secs: f64 = args[5].parse().expect("SECONDS");
    let warmup: f64 = args
        .get(6)
        .map_or(1.0, |w| w.parse().expect("WARMUP_SECONDS"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(addr, conns, size, depth, secs, warmup));
}

/// One masked binary frame of `size` bytes, repeated `depth` times.
fn burst(size: usize, depth: usize) -> (Vec<u8>, usize) {
    let key = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82u8];
    match size {
        0..=125 => frame.push(0x80 | size as u8),
        126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend((0..size).map(|i| (i as u8 ^ 0x5a) ^ key[i % 4]));
    let len = frame.len();
    (frame.repeat(depth), len)
}

async fn run(addr: SocketAddr, conns: usize, size: usize, depth: usize, secs: f64, warmup: f64) {
    let shared = Arc::new(Shared {
        echoes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        record: AtomicBool::new(false),
        base: Instant::now(),
    });
    let (burst, frame_len) = burst(size, depth);
    let burst: Arc<[u8]> = burst.into();

    // Connect in waves so the listen queue never overflows.
    let mut streams = Vec::with_capacity(conns);
    for wave in (0..conns).collect::<Vec<_>>().chunks(64) {
        let mut pending = Vec::new();
        for _ in wave {
            pending.push(tokio::spawn(upgrade(addr)));
        }
        for task in pending {
            streams.push(task.await.expect("connect task"));
        }
    }

    let mut latency_tasks = Vec::new();
    for stream in streams {
        let (read, write) = stream.into_split();
        let (credit_tx, credit_rx) = mpsc::unbounded_channel();
        let sent_at = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer(
            write,
            credit_rx,
            burst.clone(),
            frame_len,
            depth,
            shared.clone(),
            sent_at.clone(),
        ));
        let samples = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(reader(
            read,
            credit_tx,
            shared.clone(),
            sent_at,
            samples.clone(),
        ));
        latency_tasks.push(samples);
    }

    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let start_count = shared.echoes.load(Ordering::Relaxed);
    let start_cpu = cpu_seconds();
    let start = Instant::now();
    shared.record.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    shared.record.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let count = shared.echoes.load(Ordering::Relaxed) - start_count;
    let cpu = (cpu_seconds() - start_cpu) / elapsed;
    shared.stop.store(true, Ordering::Relaxed);

    let mut samples = Vec::new();
    for task in latency_tasks {
        samples.append(&mut task.lock().unwrap());
    }
    samples.sort_unstable();
    let pct = |p: f64| -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i] as f64 / 1000.0
    };
    let rate = count as f64 / elapsed;
    println!(
        "msgs_per_s={:.0} mb_per_s={:.1} p50_us={:.1} p99_us={:.1} cpu={:.2}",
        rate,
        rate * size as f64 / 1e6,
        pct(0.50),
        pct(0.99),
        cpu
    );
}

/// Connects and upgrades; panics if the server does not answer 101.
async fn upgrade(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(REQUEST.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "not upgraded: {}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Keeps `depth` frames in flight: the first burst, then one frame per echo.
async fn writer(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut credits: mpsc::UnboundedReceiver<usize>,
    burst: Arc<[u8]>,
    frame_len: usize,
    depth: usize,
    shared: Arc<Shared>,
    sent_at: Arc<AtomicU64>,
) {
    let mut owed = depth;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        sent_at.store(shared.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if write.write_all(&burst[..owed * frame_len]).await.is_err() {
            return;
        }
        owed = match credits.recv().await {
            Some(n) => n,
            None => return,
        };
        // Take every credit already waiting: one write for all of them.
        while let Ok(more) = credits.try_recv() {
            owed += more;
        }
    }
}

/// Counts echoed frames by their headers; keeps round-trip samples (ns).
async fn reader(
    mut read: tokio::net::tcp::OwnedReadHalf,
    credits: mpsc::UnboundedSender<usize>,
    shared: Arc<Shared>,
    sent_at: Arc<AtomicU64>,
    samples: Arc<Mutex<Vec<u64>>>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut header = [0u8; 14];
    let mut have = 0usize; // header bytes gathered
    let mut skip = 0u64; // payload bytes still to pass over
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut done = 0usize;
        let mut pos = 0usize;
        while pos < n {
            if skip > 0 {
                let take = (skip.min((n - pos) as u64)) as usize;
                pos += take;
                skip -= take as u64;
                if skip == 0 {
                    done += 1;
                }
                continue;
            }
            header[have] = buf[pos];
            have += 1;
            pos += 1;
            if have < 2 {
                continue;
            }
            let masked = header[1] & 0x80 != 0;
            let len7 = header[1] & 0x7f;
            let need =
                2 + match len7 {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                } + if masked { 4 } else { 0 };
            if have < need {
                continue;
            }
            let len = match len7 {
                126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
                127 => u64::from_be_bytes(header[2..10].try_into().unwrap()),
                l => u64::from(l),
            };
            have = 0;
            if len == 0 {
                done += 1;
            } else {
                skip = len;
            }
        }
        if done > 0 {
            if shared.record.load(Ordering::Relaxed) {
                let now = shared.base.elapsed().as_nanos() as u64;
                let rtt = now.saturating_sub(sent_at.load(Ordering::Relaxed));
                samples.lock().unwrap().push(rtt);
            }
            shared.echoes.fetch_add(done as u64, Ordering::Relaxed);
            if credits.send(done).is_err() {
                return;
            }
        }
    }
}

/// This process's user + system CPU time, in seconds (from /proc, in clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
