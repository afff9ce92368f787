//! Limits before the request head: 3 000 connections from one address, each
//! sending half a request head, against a tokio server whose admission
//! allows 100 per address. Over real sockets on loopback; the server's heap
//! is counted with a counting allocator (not timed). Connections past the
//! limit are answered 429 before any head completes, the 100 held cost a
//! bounded heap, and a client from another address is served meanwhile.
#![cfg(feature = "tokio")]

#[path = "support/alloc.rs"]
mod alloc;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloc::Meter;
use rfc6455::admission::{Admission, AdmissionConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{ClientBuilder, Error, Message, ServerBuilder};

/// The size of the test server's per-connection task, for the report.
static TASK_SIZE: AtomicUsize = AtomicUsize::new(0);
const HALF_HEADS: usize = 3_000;
const PER_ADDRESS: usize = 100;
/// How long the half heads take to arrive.
const ARRIVAL: Duration = Duration::from_millis(1500);
/// The bound on the server's heap growth while the half heads arrive and
/// are held.
const BOUND: usize = 3 << 20;
const HALF_HEAD: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n";

/// How the server's accepted connections ended so far.
#[derive(Default)]
struct Outcomes {
    accepted: AtomicUsize,
    refused: AtomicUsize,
}

/// A tokio server on its own thread: every connection accepted with its
/// peer address, upgraded ones echoed.
fn serve(admission: Admission) -> (SocketAddr, Arc<Outcomes>) {
    let outcomes = Arc::new(Outcomes::default());
    let counted = Arc::clone(&outcomes);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            // A backlog that takes the whole burst: past it the kernel drops
            // handshakes' last ACK and the clients wait on retransmits.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(4096).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let server = Arc::new(ServerBuilder::new().admission(admission));
            loop {
                let (tcp, peer) = listener.accept().await.unwrap();
                let server = Arc::clone(&server);
                let counted = Arc::clone(&counted);
                let task = async move {
                    match WebSocketStream::accept((tcp, peer), &server).await {
                        Ok(mut ws) => {
                            counted.accepted.fetch_add(1, Ordering::SeqCst);
                            while let Some(Ok(message)) = ws.next().await {
                                if !message.is_control() && ws.send(message).await.is_err() {
                                    break;
                                }
                            }
                        }
                        Err(Error::Rejected(_)) => {
                            counted.refused.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => {}
                    }
                };
                TASK_SIZE.store(size_of_val(&task), Ordering::Relaxed);
                tokio::spawn(task);
            }
        });
    });
    (rx.recv().unwrap(), outcomes)
}

/// A WebSocket client from 127.0.0.2 upgrades and gets its message echoed.
fn served_from_another_address(addr: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let client = ClientBuilder::new(&format!("ws://{addr}/chat")).unwrap();
        let (mut ws, _) = WebSocketStream::client(tcp, &client).await.unwrap();
        ws.send(Message::text("still served")).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.to_text(), Ok("still served"));
        ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
    });
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn half_heads_from_one_address_are_refused_and_cost_a_bounded_heap() {
    let admission = Admission::new(AdmissionConfig::default().max_per_address(Some(PER_ADDRESS)));
    let (addr, outcomes) = serve(admission.clone());
    // The runtime's first connection allocates what every later one reuses.
    served_from_another_address(addr);
    wait_for("the first client's end", || admission.connections() == 0);

    let meter = Meter::start();
    let mut clients = Vec::with_capacity(HALF_HEADS);
    // 3 000 in 1.5 s, the rate a single client host manages easily.
    let started = Instant::now();
    for i in 0..HALF_HEADS {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(HALF_HEAD).unwrap();
        clients.push(tcp);
        let due = started + ARRIVAL * u32::try_from(i + 1).unwrap() / HALF_HEADS as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    wait_for("every half head to be accepted or refused", || {
        outcomes.refused.load(Ordering::SeqCst) == HALF_HEADS - PER_ADDRESS
            && admission.connections() == PER_ADDRESS
    });
    // Refused tasks end as they are answered; give the last a moment.
    std::thread::sleep(Duration::from_millis(200));
    let held = meter.live_growth();
    eprintln!(
        "{PER_ADDRESS} half heads held: {held} bytes of heap, {} per connection; \
         peak growth {} bytes while {HALF_HEADS} arrived",
        held / PER_ADDRESS,
        meter.peak_growth()
    );
    eprintln!("task future: {} bytes", TASK_SIZE.load(Ordering::Relaxed));
    assert!(held < BOUND, "the server holds {held} bytes, bound {BOUND}");
    meter.assert_below(BOUND, "3 000 half heads arriving");

    // Another address is served while the half heads are held.
    served_from_another_address(addr);
    assert_eq!(outcomes.accepted.load(Ordering::SeqCst), 2);

    // Every refused client got its 429 before sending a whole head; the
    // held ones got nothing yet.
    let mut answered = 0;
    let mut waiting = 0;
    for tcp in &mut clients {
        tcp.set_nonblocking(true).unwrap();
        let mut response = [0; 64];
        match tcp.read(&mut response) {
            Ok(n) => {
                assert!(
                    response[..n].starts_with(b"HTTP/1.1 429 "),
                    "{:?}",
                    String::from_utf8_lossy(&response[..n])
                );
                answered += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => waiting += 1,
            Err(e) => panic!("a refused client saw {e} instead of its 429"),
        }
    }
    assert_eq!((answered, waiting), (HALF_HEADS - PER_ADDRESS, PER_ADDRESS));
    drop(clients);
    wait_for("the held connections to end", || {
        admission.connections() == 0
    });
    drop(meter);
}
