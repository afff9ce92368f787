//! `rfc6455::rt::drain`: a server with 1 000 live connections shuts down
//! gracefully over real loopback sockets.
#![cfg(feature = "tokio")]

#[path = "support/io.rs"]
mod io;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rfc6455::rt::drain::{Drain, DrainConfig, DrainReport};
use rfc6455::rt::tokio::{WebSocketStream, connect_async};
use rfc6455::{CloseCode, Config, Error, HandshakeError, ServerBuilder};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

const CLIENTS: usize = 1_000;
const WINDOW: Duration = Duration::from_secs(2);
const GRACE: Duration = Duration::from_secs(5);

/// A server whose connection tasks read until the stream ends; it drains
/// when `stop` fires. Resolves to the report, when it came, and how many
/// tasks had ended by then.
fn serve(
    listener: TcpListener,
    drain: Drain,
    stop: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<(DrainReport, Instant, usize)> {
    // The server would stop waiting for a Close after 60 s: the silent
    // client below is the grace deadline's.
    let server = ServerBuilder::new()
        .config(Config::default().close_timeout(Some(Duration::from_secs(60))))
        .unwrap()
        .drain(&drain);
    let ended = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        let serve = async {
            loop {
                let (tcp, _) = listener.accept().await?;
                let (server, ended) = (server.clone(), Arc::clone(&ended));
                tokio::spawn(drain.watch(async move {
                    if let Ok(mut ws) = WebSocketStream::accept(tcp, &server).await {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    ended.fetch_add(1, Ordering::SeqCst);
                }));
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        };
        let report = drain
            .serve_until(serve, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        (report, Instant::now(), ended.load(Ordering::SeqCst))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_drain_over_the_window() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("ws://{addr}/");
    let config = DrainConfig::default()
        .window(WINDOW)
        .grace(GRACE)
        .retry_after(Duration::from_secs(3));
    let drain = Drain::new(config);
    let (stop, stopped) = oneshot::channel();
    let server = serve(listener, drain.clone(), stopped);

    // Every client reads to the end and reports when its Close came.
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(CLIENTS);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, ready_tx) = (url.clone(), ready_tx.clone());
        clients.push(tokio::spawn(async move {
            let (mut ws, _) = connect_async(url.as_str()).await.unwrap();
            ready_tx.send(()).await.unwrap();
            while let Some(message) = ws.next().await {
                message.unwrap();
            }
            (Instant::now(), ws.connection().close_frame().cloned())
        }));
    }
    for _ in 0..CLIENTS {
        ready.recv().await.unwrap();
    }
    // One client completes the upgrade and then never reads again.
    let mut silent = io::raw_upgrade(TcpStream::connect(addr).await.unwrap()).await;
    while drain.live() < CLIENTS + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let start = Instant::now();
    stop.send(()).unwrap();

    // Halfway through, a new upgrade is refused with 503 and Retry-After.
    tokio::time::sleep(WINDOW / 2).await;
    match connect_async(url.as_str()).await {
        Err(Error::Handshake(HandshakeError::Refused(refusal))) => {
            assert_eq!(refusal.status, 503);
            assert_eq!(refusal.header("Retry-After"), Some(&b"3"[..]));
        }
        other => panic!("an upgrade during the drain: {other:?}"),
    }

    // Every client got the drain's Close, spread evenly over the window.
    let mut tenths = [0usize; 10];
    for client in clients {
        let (at, close) = client.await.unwrap();
        let close = close.expect("a Close");
        assert_eq!(close.code, CloseCode::GOING_AWAY);
        assert_eq!(&*close.reason, "shutting down");
        let offset = at - start;
        assert!(offset < WINDOW + Duration::from_millis(500), "{offset:?}");
        let tenth = (offset.as_secs_f64() / WINDOW.as_secs_f64() * 10.0) as usize;
        tenths[tenth.min(9)] += 1;
    }
    eprintln!("Closes per tenth of the window: {tenths:?}");
    let mean = CLIENTS / 10;
    assert!(tenths.iter().all(|&n| n <= 2 * mean), "{tenths:?}");

    // The silent client holds the drain up to the grace deadline, and the
    // serve future resolves only after the last task ended.
    let (report, resolved, ended) = server.await.unwrap();
    let waited = resolved - start;
    assert!(
        waited >= WINDOW + GRACE && waited < WINDOW + GRACE + Duration::from_secs(1),
        "{waited:?}"
    );
    // The refused upgrade's task, the 1 000 and the silent one.
    assert_eq!(ended, CLIENTS + 1, "tasks that ran to their end");
    assert_eq!(drain.live(), 0);
    eprintln!("{report}");
    assert_eq!(report.connections, CLIENTS + 2);
    assert_eq!(report.closed, CLIENTS);
    assert_eq!(report.ended, 1, "the refused upgrade");
    assert_eq!(report.forced, 1, "the silent client");
    assert_eq!(report.refused, 1);
    assert_eq!(
        report.closed + report.ended + report.forced,
        report.connections
    );

    // The silent client was sent the Close, then its connection dropped.
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest.first(), Some(&0x88), "a Close frame: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_restart_is_selectable_and_an_empty_drain_is_immediate() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let drain = Drain::new(
        DrainConfig::default()
            .code(CloseCode::SERVICE_RESTART)
            .reason("deploy".to_owned())
            .window(Duration::from_millis(200)),
    );
    let (stop, stopped) = oneshot::channel();
    let server = serve(listener, drain.clone(), stopped);
    let (mut ws, _) = connect_async(format!("ws://{addr}/").as_str())
        .await
        .unwrap();
    while drain.live() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    while ws.next().await.is_some() {}
    let close = ws.connection().close_frame().unwrap();
    assert_eq!(close.code, CloseCode::SERVICE_RESTART);
    assert_eq!(&*close.reason, "deploy");
    let (report, _, _) = server.await.unwrap();
    assert_eq!((report.connections, report.closed), (1, 1));

    // With nothing to drain, shutdown resolves at once.
    let empty = Drain::new(DrainConfig::default());
    let start = Instant::now();
    assert_eq!(empty.shutdown().await, DrainReport::default());
    assert!(start.elapsed() < Duration::from_secs(1));
}

// `ServerBuilder::answer`, which a handshake run outside the adapters
// calls, refuses once the builder's drain has begun, as `accept` does.
#[tokio::test]
async fn answer_refuses_once_the_drain_begins() {
    use rfc6455::handshake::{ServerHandshake, Status};
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let Ok(Status::Complete((view, _))) = ServerHandshake::new().parse(request) else {
        panic!("the request parses");
    };
    let drain = Drain::new(DrainConfig::default().window(Duration::from_millis(10)));
    let server = ServerBuilder::new().drain(&drain);
    assert!(server.answer(&view).is_ok());
    drain.shutdown().await;
    let refusal = server.answer(&view).unwrap_err();
    assert_eq!(refusal.status(), 503);
}
