//! A neutral WebSocket echo load generator: no WebSocket library.
//!
//! C connections to ADDR, each upgraded with a hand-written request; then
//! pre-encoded masked binary frames of S bytes, D in flight per connection,
//! for T seconds after a warm-up. Echoes are counted by parsing frame headers
//! only. Prints one line of `key=value`: msgs_per_s, mb_per_s, p50_us and
//! p99_us (round trips, meaningful at depth 1), cpu (this process's CPU time
//! over wall time: 1.0 is one saturated core) and, given the server's process
//! id, server_cpu (the same for the server, over the same window).
//!
//! With `SERIES_MS=N` in the environment it also prints the rate over time to
//! stderr, one `msgs_per_s/interval_ms` pair per N milliseconds (the interval
//! actually measured: on this single-threaded runtime a busy loop can stretch
//! it), to tell a steady run from one with stalls or two modes.
//!
//! ```text
//! loadgen ADDR CONNECTIONS SIZE DEPTH SECONDS [WARMUP_SECONDS [SERVER_PID]]
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

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
        eprintln!(
            "usage: loadgen ADDR CONNECTIONS SIZE DEPTH SECONDS [WARMUP_SECONDS [SERVER_PID]]"
        );
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
    let server = args.get(7).map(|p| p.parse::<u32>().expect("SERVER_PID"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(addr, conns, size, depth, secs, warmup, server));
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

async fn run(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    depth: usize,
    secs: f64,
    warmup: f64,
    server: Option<u32>,
) {
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
        let samples = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(drive(
            stream,
            burst.clone(),
            frame_len,
            depth,
            shared.clone(),
            samples.clone(),
        ));
        latency_tasks.push(samples);
    }

    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let start_count = shared.echoes.load(Ordering::Relaxed);
    let start_cpu = cpu_seconds("self");
    let server_stat = server.map(|pid| pid.to_string());
    let start_server_cpu = server_stat.as_deref().map(cpu_seconds);
    let start = Instant::now();
    shared.record.store(true, Ordering::Relaxed);
    if let Ok(step) = std::env::var("SERIES_MS") {
        let step = Duration::from_millis(step.parse().expect("SERIES_MS"));
        let mut last = shared.echoes.load(Ordering::Relaxed);
        let mut at = Instant::now();
        let mut line = String::new();
        while start.elapsed().as_secs_f64() < secs {
            tokio::time::sleep(step).await;
            let now = shared.echoes.load(Ordering::Relaxed);
            let dt = at.elapsed().as_secs_f64();
            line.push_str(&format!(
                "{:.0}/{:.0} ",
                (now - last) as f64 / dt,
                dt * 1000.0
            ));
            last = now;
            at = Instant::now();
        }
        eprintln!("series: {line}");
    } else {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
    shared.record.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let count = shared.echoes.load(Ordering::Relaxed) - start_count;
    let cpu = (cpu_seconds("self") - start_cpu) / elapsed;
    let server_cpu = server_stat
        .as_deref()
        .zip(start_server_cpu)
        .map_or(f64::NAN, |(pid, start)| {
            (cpu_seconds(pid) - start) / elapsed
        });
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
        "msgs_per_s={:.0} mb_per_s={:.1} p50_us={:.1} p99_us={:.1} cpu={:.2} server_cpu={:.2}",
        rate,
        rate * size as f64 / 1e6,
        pct(0.50),
        pct(0.99),
        cpu,
        server_cpu
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

/// Keeps `depth` frames in flight on one connection: the first burst, then
/// one frame per echo. One task per connection, woken by readiness: every
/// echo already received is counted and every frame owed is written in one
/// `write`, so the load generator spends as few syscalls per message as a
/// raw echo server does.
async fn drive(
    stream: TcpStream,
    burst: Arc<[u8]>,
    frame_len: usize,
    depth: usize,
    shared: Arc<Shared>,
    samples: Arc<Mutex<Vec<u64>>>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut echoes = EchoCounter::default();
    // Bytes owed to the server, and where in a frame the next write starts.
    let mut unsent = depth * frame_len;
    let mut offset = 0usize;
    let mut sent_at = 0u64;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let interest = if unsent > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let Ok(ready) = stream.ready(interest).await else {
            return;
        };
        if ready.is_writable() && unsent > 0 {
            // `burst` repeats the frame, so any window from `offset` is the
            // byte stream to send.
            let end = burst.len().min(offset + unsent);
            match stream.try_write(&burst[offset..end]) {
                Ok(n) => {
                    if offset == 0 {
                        sent_at = shared.base.elapsed().as_nanos() as u64;
                    }
                    unsent -= n;
                    offset = (offset + n) % frame_len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if ready.is_readable() {
            let done = match stream.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => echoes.count(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            };
            if done > 0 {
                if shared.record.load(Ordering::Relaxed) {
                    let now = shared.base.elapsed().as_nanos() as u64;
                    samples.lock().unwrap().push(now.saturating_sub(sent_at));
                }
                shared.echoes.fetch_add(done as u64, Ordering::Relaxed);
                unsent += done * frame_len;
            }
        }
    }
}

/// Counts echoed frames by their headers, across reads.
#[derive(Default)]
struct EchoCounter {
    header: [u8; 14],
    /// Header bytes gathered.
    have: usize,
    /// Payload bytes still to pass over.
    skip: u64,
}

impl EchoCounter {
    /// Frames completed by `data`.
    fn count(&mut self, data: &[u8]) -> usize {
        let mut done = 0usize;
        let mut pos = 0usize;
        while pos < data.len() {
            if self.skip > 0 {
                let take = self.skip.min((data.len() - pos) as u64) as usize;
                pos += take;
                self.skip -= take as u64;
                if self.skip == 0 {
                    done += 1;
                }
                continue;
            }
            self.header[self.have] = data[pos];
            self.have += 1;
            pos += 1;
            if self.have < 2 {
                continue;
            }
            let masked = self.header[1] & 0x80 != 0;
            let len7 = self.header[1] & 0x7f;
            let extended = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            if self.have < 2 + extended + if masked { 4 } else { 0 } {
                continue;
            }
            let len = match len7 {
                126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap()),
                l => u64::from(l),
            };
            self.have = 0;
            if len == 0 {
                done += 1;
            } else {
                self.skip = len;
            }
        }
        done
    }
}

/// A process's user + system CPU time, in seconds (from /proc/PROCESS/stat,
/// in clock ticks of 10 ms; PROCESS is a pid or `self`).
fn cpu_seconds(process: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
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
