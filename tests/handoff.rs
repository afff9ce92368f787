//! The handoff between two processes, within one (the descriptors really
//! travel over a Unix socket): the listener and a live connection move to
//! the successor between messages; the client sees every echo once, in
//! order, and no Close; a new client is served by the successor; a
//! damaged snapshot closes its connection with 1011.
#![cfg(all(feature = "handoff", target_os = "linux"))]

use rfc6455::rt::drain::{Drain, DrainConfig};
use rfc6455::rt::handoff::{Handoff, Inherited, take_over};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Config, Error, Message, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Echoes until told to stop between messages; the stream back.
async fn echo_until(
    mut ws: WebSocketStream<TcpStream>,
    mut stop: oneshot::Receiver<()>,
) -> Option<WebSocketStream<TcpStream>> {
    loop {
        tokio::select! {
            _ = &mut stop => return Some(ws),
            message = ws.next() => match message {
                Some(Ok(message)) if !message.is_control() => ws.send(message).await.ok()?,
                Some(Ok(_)) => {}
                _ => return None,
            },
        }
    }
}

async fn echo(mut ws: WebSocketStream<TcpStream>) {
    while let Some(Ok(message)) = ws.next().await {
        if !message.is_control() && ws.send(message).await.is_err() {
            return;
        }
    }
}

async fn exchange(
    ws: &mut WebSocketStream<rfc6455::rt::tokio::MaybeTlsStream>,
    from: u32,
    to: u32,
) {
    for n in from..to {
        let text = format!("message {n}");
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    }
}

#[tokio::test]
async fn the_listener_and_a_live_connection_move_to_the_successor() {
    let dir = std::env::temp_dir().join(format!("rfc6455-handoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("handoff.sock");
    let config = Config::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handoff = Handoff::offer(&path).unwrap();

    // The running process: accepts one client and echoes to it.
    let (stop, stopped) = oneshot::channel();
    let old = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = WebSocketStream::accept(tcp, &ServerBuilder::new())
            .await
            .unwrap();
        let served = tokio::spawn(echo_until(ws, stopped));
        let mut successor = handoff.successor().await.unwrap();
        successor.listener(&listener).await.unwrap();
        drop(listener);
        stop.send(()).unwrap();
        let ws = served.await.unwrap().expect("still open");
        successor.connection(ws, b"room=lobby").await.unwrap();
        successor.finish().await.unwrap()
    });

    let (mut client, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
    exchange(&mut client, 0, 10).await;

    // The successor takes over.
    let mut predecessor = take_over(&path, config)
        .await
        .unwrap()
        .expect("a handoff offered");
    let mut payloads = Vec::new();
    while let Some(inherited) = predecessor.next().await.unwrap() {
        match inherited {
            Inherited::Listener(listener) => {
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let ws = WebSocketStream::accept(tcp, &ServerBuilder::new()).await;
                        tokio::spawn(echo(ws.unwrap()));
                    }
                });
            }
            Inherited::Connection(ws, payload) => {
                payloads.push(payload);
                tokio::spawn(echo(*ws));
            }
            other => panic!("{other:?}"),
        }
    }
    let report = old.await.unwrap();
    assert_eq!((report.listeners, report.connections), (1, 1));
    assert!(report.state_bytes > 0);
    assert_eq!(payloads, [b"room=lobby".to_vec()]);

    // The same connection, served by the successor: nothing lost, no Close.
    exchange(&mut client, 10, 20).await;
    // A new client reaches the successor through the inherited listener.
    let (mut newcomer, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
    exchange(&mut newcomer, 0, 3).await;
    client.close(CloseCode::NORMAL, "done").await.unwrap();
    // No one offers a handoff at a path nobody listens on.
    assert!(
        take_over(dir.join("nobody.sock"), Config::default())
            .await
            .unwrap()
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server stream and its client, over loopback.
async fn connected_pair() -> (
    WebSocketStream<TcpStream>,
    WebSocketStream<rfc6455::rt::tokio::MaybeTlsStream>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (accepted, client) = tokio::join!(
        async {
            let (tcp, _) = listener.accept().await.unwrap();
            WebSocketStream::accept(tcp, &ServerBuilder::new())
                .await
                .unwrap()
        },
        WebSocketStream::connect(url.as_str())
    );
    (accepted, client.unwrap().0)
}

/// Plays a predecessor at `path`: hands over `tcp` with `body` as its
/// record (kind 2, one descriptor), as the wire format says, and reads
/// the acknowledgement.
fn send_raw_connection(path: &std::path::Path, tcp: std::net::TcpStream, body: Vec<u8>) {
    use std::io::{IoSlice, Write};
    use std::mem::MaybeUninit;
    use std::os::fd::AsFd;

    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};

    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    let mut header = vec![2, 1];
    header.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let fds = [tcp.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    let sent = sendmsg(
        &stream,
        &[IoSlice::new(&header)],
        &mut control,
        SendFlags::empty(),
    )
    .unwrap();
    stream.write_all(&header[sent..]).unwrap();
    stream.write_all(&body).unwrap();
    // The successor says it holds the socket.
    let mut ack = [0u8];
    std::io::Read::read_exact(&mut stream, &mut ack).unwrap();
    let mut done = vec![3, 0];
    done.extend_from_slice(&0u64.to_le_bytes());
    stream.write_all(&done).unwrap();
}

// A snapshot the successor cannot thaw: its connection is closed with 1011,
// the successor goes on.
#[tokio::test]
async fn a_damaged_snapshot_closes_its_connection_with_1011() {
    let dir = std::env::temp_dir().join(format!("rfc6455-handoff-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("handoff.sock");
    let (accepted, mut client) = connected_pair().await;
    let (_, tcp) = accepted.into_parts();
    let tcp = tcp.into_std().unwrap();
    tcp.set_nonblocking(false).unwrap();
    let mut body = 5u64.to_le_bytes().to_vec();
    body.extend_from_slice(b"junk!payload");
    let raw = {
        let path = path.clone();
        std::thread::spawn(move || send_raw_connection(&path, tcp, body))
    };
    let mut predecessor = loop {
        if let Some(p) = take_over(&path, Config::default()).await.unwrap() {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    match predecessor.next().await.unwrap() {
        Some(Inherited::Refused(error)) => assert_eq!(error, rfc6455::SnapshotError::NotASnapshot),
        other => panic!("{other:?}"),
    }
    assert!(predecessor.next().await.unwrap().is_none());
    raw.join().unwrap();
    match client.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::INTERNAL_ERROR),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// A successor that goes away before it has a connection: the stream comes
// back, and the running process serves it on.
#[tokio::test]
async fn a_connection_not_handed_over_comes_back() {
    let dir = std::env::temp_dir().join(format!("rfc6455-handoff-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("handoff.sock");
    let handoff = Handoff::offer(&path).unwrap();
    let (accepted, mut client) = connected_pair().await;
    let (successor, gone) = tokio::join!(handoff.successor(), async {
        drop(take_over(&path, Config::default()).await.unwrap());
    });
    let () = gone;
    let mut successor = successor.unwrap();
    // The successor's end is closed: sending fails, with the stream back.
    let mut ws = accepted;
    let mut back = None;
    for _ in 0..3 {
        match successor.connection(ws, b"x").await {
            Ok(()) => panic!("handed over to a successor that is gone"),
            Err(not) => {
                ws = not.stream;
                back = Some(not.error);
            }
        }
    }
    assert!(back.is_some());
    tokio::spawn(echo(ws));
    exchange(&mut client, 0, 5).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Echoes on a watched task until the stream ends or moves.
async fn serve_watched(mut ws: WebSocketStream<TcpStream>, drain: Drain) {
    drain.attach(&mut ws);
    loop {
        match ws.next().await {
            Some(Ok(message)) if !message.is_control() => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(Error::HandoffRequested)) => match drain.hand_over(ws, b"payload").await {
                Ok(()) => return,
                Err(back) => ws = back.stream,
            },
            _ => return,
        }
    }
}

/// `n` clients of a server whose tasks `drain` watches; the server's side
/// of each is on a task [`serve_watched`] runs.
async fn watched_clients(
    n: usize,
    drain: &Drain,
) -> Vec<WebSocketStream<rfc6455::rt::tokio::MaybeTlsStream>> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let (accepted, client) = connected_pair().await;
        tokio::spawn(drain.watch(serve_watched(accepted, drain.clone())));
        clients.push(client);
    }
    clients
}

/// Offers a handoff at `path`, transfers `drain`'s streams once a
/// successor comes, and comes as that successor.
async fn start_transfer(
    path: &std::path::Path,
    drain: &Drain,
) -> (
    tokio::task::JoinHandle<std::io::Result<rfc6455::rt::handoff::HandoffReport>>,
    rfc6455::rt::handoff::Predecessor,
) {
    let handoff = Handoff::offer(path).unwrap();
    let drain = drain.clone();
    let old = tokio::spawn(async move { drain.transfer(handoff.successor().await.unwrap()).await });
    let predecessor = take_over(path, Config::default()).await.unwrap().unwrap();
    (old, predecessor)
}

fn handoff_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rfc6455-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("handoff.sock")
}

// `Drain::transfer`: every watched stream moves at its next message
// boundary, with its payload; each client goes on with the successor.
#[tokio::test]
async fn a_transfer_moves_every_watched_connection() {
    let path = handoff_path("transfer");
    let drain = Drain::new(DrainConfig::default());
    let mut clients = watched_clients(20, &drain).await;
    for client in &mut clients {
        exchange(client, 0, 3).await;
    }
    let (old, mut predecessor) = start_transfer(&path, &drain).await;
    let mut moved = 0;
    while let Some(inherited) = predecessor.next().await.unwrap() {
        match inherited {
            Inherited::Connection(ws, payload) => {
                assert_eq!(payload, b"payload");
                moved += 1;
                tokio::spawn(echo(*ws));
            }
            other => panic!("{other:?}"),
        }
    }
    let report = old.await.unwrap().unwrap();
    assert_eq!((moved, report.connections, report.stayed), (20, 20, 0));
    assert_eq!(drain.live(), 0, "no task serves a moved connection");
    for client in &mut clients {
        exchange(client, 3, 6).await;
    }
}

// A successor that goes away mid-handoff: what it received is its own, and
// every other connection is still served by the old process, once.
#[tokio::test]
async fn a_successor_that_dies_leaves_the_rest_served() {
    let path = handoff_path("dies");
    let drain = Drain::new(DrainConfig::default());
    let mut clients = watched_clients(20, &drain).await;
    let (old, mut predecessor) = start_transfer(&path, &drain).await;
    let mut taken = Vec::new();
    for _ in 0..5 {
        match predecessor.next().await.unwrap() {
            Some(Inherited::Connection(ws, _)) => taken.push(tokio::spawn(echo(*ws))),
            other => panic!("{other:?}"),
        }
    }
    // The successor dies.
    drop(predecessor);
    assert!(old.await.unwrap().is_err(), "the handoff failed");
    assert_eq!(
        drain.live(),
        15,
        "the old process serves the rest, not the moved"
    );
    // Every client is answered, once: five by the successor, the rest here.
    for client in &mut clients {
        exchange(client, 0, 5).await;
    }
    // No stream is asked for any more.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(drain.live(), 15);
}

// A stream that does not reach a message boundary in time stays with the
// old process; the rest move.
#[tokio::test]
async fn a_stream_that_never_comes_stays() {
    let path = handoff_path("stays");
    let drain =
        Drain::new(DrainConfig::default().handoff_timeout(std::time::Duration::from_millis(300)));
    let mut clients = watched_clients(3, &drain).await;
    // A fourth whose task never polls its stream.
    let (stuck, _stuck_client) = connected_pair().await;
    tokio::spawn(drain.watch(async move {
        let _ws = stuck;
        std::future::pending::<()>().await;
    }));
    let (old, mut predecessor) = start_transfer(&path, &drain).await;
    let mut moved = 0;
    while let Some(inherited) = predecessor.next().await.unwrap() {
        if let Inherited::Connection(ws, _) = inherited {
            moved += 1;
            tokio::spawn(echo(*ws));
        }
    }
    let report = old.await.unwrap().unwrap();
    assert_eq!((moved, report.connections, report.stayed), (3, 3, 1));
    for client in &mut clients {
        exchange(client, 0, 2).await;
    }
}

// A connection whose opening handshake is under way when the handoff
// begins finishes it here, then moves.
#[tokio::test]
async fn a_connection_mid_handshake_finishes_it_then_moves() {
    let path = handoff_path("handshake");
    let drain = Drain::new(DrainConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let (go, wait) = oneshot::channel::<()>();
    let server = ServerBuilder::new().drain(&drain);
    {
        let drain = drain.clone();
        tokio::spawn(drain.clone().watch(async move {
            // The handshake is read only once the transfer has begun.
            let _ = wait.await;
            let ws = WebSocketStream::accept(accepted, &server).await.unwrap();
            serve_watched(ws, drain).await;
        }));
    }
    let (old, mut predecessor) = start_transfer(&path, &drain).await;
    go.send(()).unwrap();
    let client = rfc6455::ClientBuilder::new(&url).unwrap();
    let (mut client, _) = WebSocketStream::client(tcp, &client).await.unwrap();
    match predecessor.next().await.unwrap() {
        Some(Inherited::Connection(ws, _)) => {
            tokio::spawn(echo(*ws));
        }
        other => panic!("{other:?}"),
    }
    assert!(predecessor.next().await.unwrap().is_none());
    assert_eq!(old.await.unwrap().unwrap().connections, 1);
    for n in 0..3 {
        let text = format!("message {n}");
        client.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text(text));
    }
}

// `Drain::handoff_quiet` resolves once every watched stream has stopped
// reading: a room's member waits there so that nothing another member
// publishes before it stops is missed.
#[tokio::test]
async fn handoff_quiet_waits_for_every_stream() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let path = handoff_path("quiet");
    let drain = Drain::new(DrainConfig::default());
    // Resolves at once while no handoff is under way.
    drain.handoff_quiet().await;
    let quiet = Arc::new(AtomicBool::new(false));
    let (first, _first_client) = connected_pair().await;
    let (second, _second_client) = connected_pair().await;
    let (go, wait) = oneshot::channel::<()>();
    for (mut ws, wait) in [(first, None), (second, Some(wait))] {
        let (drain, quiet) = (drain.clone(), quiet.clone());
        tokio::spawn(drain.clone().watch(async move {
            drain.attach(&mut ws);
            if let Some(wait) = wait {
                let _ = wait.await;
            }
            assert!(matches!(
                ws.next().await,
                Some(Err(Error::HandoffRequested))
            ));
            drain.handoff_quiet().await;
            quiet.store(true, Ordering::Release);
            drain.hand_over(ws, b"").await.unwrap();
        }));
    }
    let (old, mut predecessor) = start_transfer(&path, &drain).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!quiet.load(Ordering::Acquire), "one stream still reads");
    go.send(()).unwrap();
    let mut moved = 0;
    while let Some(inherited) = predecessor.next().await.unwrap() {
        assert!(matches!(inherited, Inherited::Connection(..)));
        moved += 1;
    }
    assert!(quiet.load(Ordering::Acquire));
    assert_eq!((moved, old.await.unwrap().unwrap().connections), (2, 2));
}

// A record whose header claims more than ever comes is an error when the
// predecessor goes away, with no memory committed for the claim.
#[tokio::test]
async fn a_truncated_record_is_an_error() {
    use std::io::Write;
    let path = handoff_path("truncated");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let raw = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut header = vec![3, 0];
        header.extend_from_slice(&(1u64 << 29).to_le_bytes());
        stream.write_all(&header).unwrap();
        stream.write_all(b"a few bytes, then nothing").unwrap();
    });
    let mut predecessor = take_over(&path, Config::default()).await.unwrap().unwrap();
    raw.join().unwrap();
    let error = predecessor.next().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// The clients of `tests/handoff/run.sh` (run by it, not by `cargo test`):
/// `CONNS` connections to `WS_URL` until `STOP_FILE` exists, while the
/// script hands the server over from process to process.
///
/// `MODE=echo`: each connection (every third with permessage-deflate)
/// sends numbered messages, one after the other's echo (`PACE_MS` apart),
/// and checks each echo. `MODE=chat`: each member, from its own address,
/// sends numbered lines `PACE_MS` apart once all have joined, and at the
/// end checks it saw every member's lines exactly once and in order.
/// `MODE=pubsub`: the same over the `pubsub` server's topics: client `i`
/// subscribes with positions (`SUBP`) to topic `i % 10` and publishes
/// there; positions must follow each other within an epoch.
/// Meanwhile a newcomer connects every 50 ms and must be served. Any
/// Close, reset, error or missed message fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by tests/handoff/run.sh against real processes"]
async fn clients_across_real_handoffs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    let url = std::env::var("WS_URL").expect("WS_URL");
    let stop_file = std::env::var("STOP_FILE").expect("STOP_FILE");
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map_or(default, |v| v.parse().expect(name))
    };
    let conns = var("CONNS", 1000) as usize;
    let pace = Duration::from_millis(var("PACE_MS", 0));
    let mode = std::env::var("MODE").unwrap_or_default();
    let chat = mode == "chat" || mode == "pubsub";
    let topics = (mode == "pubsub").then_some(10);
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..conns).map(|_| AtomicU64::new(0)).collect());
    let joined = Arc::new(tokio::sync::Barrier::new(conns));
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let mut clients = Vec::new();
    for i in 0..conns {
        let (url, stop, sent, joined) = (url.clone(), stop.clone(), sent.clone(), joined.clone());
        let ready = ready.clone();
        let client = async move {
            let source = std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
            let mut ws = connect(&url, source, !chat && i % 3 == 0).await?;
            if let Some(topics) = topics {
                subscribe(&mut ws, i % topics).await?;
            }
            ready.fetch_add(1, Ordering::AcqRel);
            if chat {
                joined.wait().await;
                return chat_member(ws, i, &stop, &sent, pace, topics).await;
            }
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let text = format!(
                    "{i}:{n}, and the message before was {i}:{}",
                    n.wrapping_sub(1)
                );
                ws.send(Message::text(text.clone()))
                    .await
                    .map_err(|e| format!("send {n}: {e}"))?;
                match ws.next().await {
                    Some(Ok(Message::Text(echo))) if *echo == *text => {}
                    other => return Err(format!("echo of {text}: {other:?}")),
                }
                n += 1;
                tokio::time::sleep(pace).await;
            }
            sent[i].store(n, Ordering::Release);
            ws.close(CloseCode::NORMAL, "done")
                .await
                .map_err(|e| format!("close: {e}"))?;
            Ok(n)
        };
        clients.push(tokio::spawn(client));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The script waits for this file before its first handoff.
    if let Ok(ready_file) = std::env::var("READY_FILE") {
        let ready = ready.clone();
        tokio::spawn(async move {
            while ready.load(Ordering::Acquire) < conns {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            std::fs::write(ready_file, b"").unwrap();
        });
    }
    // Newcomers, from addresses of their own, until the stop.
    let newcomers = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, Vec::new());
            for k in 0u64.. {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let source =
                    std::net::Ipv4Addr::new(127, 2, (k / 250 % 250) as u8, (k % 250 + 1) as u8);
                match connect(&url, source, false).await {
                    Ok(mut ws) => {
                        let _ = ws.close(CloseCode::NORMAL, "bye").await;
                        ok += 1;
                    }
                    Err(error) => failed.push(error),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (ok, failed)
        })
    };
    while !std::path::Path::new(&stop_file).exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Release);
    let mut failures = Vec::new();
    let mut messages = 0;
    for (i, client) in clients.into_iter().enumerate() {
        match client.await.unwrap() {
            Ok(n) => messages += n,
            Err(error) => failures.push(format!("connection {i}: {error}")),
        }
    }
    let (newcomers, failed_newcomers) = newcomers.await.unwrap();
    println!(
        "clients: {conns} connections, {messages} messages checked, {} failed; {newcomers} newcomers served, {} failed",
        failures.len(),
        failed_newcomers.len()
    );
    assert!(
        failures.is_empty(),
        "{:?}",
        &failures[..failures.len().min(10)]
    );
    assert!(failed_newcomers.is_empty(), "{failed_newcomers:?}");
}

/// Connects to `url` from `source` (127.0.0.0/8: every address is this
/// machine, and per-address limits see each client apart).
async fn connect(
    url: &str,
    source: std::net::Ipv4Addr,
    deflate: bool,
) -> Result<WebSocketStream<TcpStream>, String> {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{e}"))?;
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind((source, 0).into())
        .map_err(|e| format!("bind: {e}"))?;
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("{e}"))?;
    let config = Config::default();
    // Every message compressed, each referring back to the last.
    #[cfg(feature = "deflate")]
    let config = if deflate {
        config.deflate(Some(
            rfc6455::extensions::deflate::DeflateConfig::default().threshold(0),
        ))
    } else {
        config
    };
    let client = rfc6455::ClientBuilder::new(url)
        .and_then(|c| c.config(config))
        .map_err(|e| format!("{e}"))?;
    let (ws, accepted) = WebSocketStream::client(tcp, &client)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if deflate && accepted.extensions().is_empty() {
        return Err("permessage-deflate was not accepted".to_owned());
    }
    Ok(ws)
}

/// `SUBP t{topic}` on the pubsub server, and its reply.
async fn subscribe(ws: &mut WebSocketStream<TcpStream>, topic: usize) -> Result<(), String> {
    let command = format!("SUBP t{topic}");
    ws.send(Message::text(command.clone()))
        .await
        .map_err(|e| format!("{e}"))?;
    match ws.next().await {
        Some(Ok(Message::Text(reply))) if *reply == format!("OK {command}") => Ok(()),
        other => Err(format!("{command}: {other:?}")),
    }
}

/// One chat member (or, with `topics`, a pubsub client on topic
/// `i % topics`): sends `i:n` lines until the stop, then checks that it
/// saw every member's lines `0..sent` exactly once and in order.
async fn chat_member(
    mut ws: WebSocketStream<TcpStream>,
    i: usize,
    stop: &std::sync::atomic::AtomicBool,
    sent: &[std::sync::atomic::AtomicU64],
    pace: std::time::Duration,
    topics: Option<usize>,
) -> Result<u64, String> {
    use std::sync::atomic::Ordering;
    let topic = topics.map(|topics| i % topics);
    let mut seen = vec![0u64; sent.len()];
    let mut last_position: Option<(String, u64)> = None;
    let mut see = |text: &str| -> Result<(), String> {
        let line = match topic {
            // "MSGP t{topic} EPOCH:OFFSET member:n", "OK PUB ...".
            Some(topic) => {
                if text.starts_with("OK PUB ") {
                    return Ok(());
                }
                let mut words = text.splitn(4, ' ');
                let (kind, on, at, line) = (words.next(), words.next(), words.next(), words.next());
                if kind != Some("MSGP") || on != Some(&*format!("t{topic}")) {
                    return Err(format!("unexpected: {text}"));
                }
                let (epoch, offset) = at
                    .and_then(|at| at.split_once(':'))
                    .ok_or_else(|| text.to_owned())?;
                let offset: u64 = offset.parse().map_err(|_| text.to_owned())?;
                if let Some((last_epoch, last_offset)) = &last_position
                    && last_epoch == epoch
                    && offset != last_offset + 1
                {
                    return Err(format!("position {offset} after {last_offset}"));
                }
                last_position = Some((epoch.to_owned(), offset));
                line.ok_or_else(|| text.to_owned())?
            }
            // "ID: member:n" from members; "* ..." notices are not counted.
            None => match text.split_once(": ") {
                Some((_, line)) => line,
                None => return Ok(()),
            },
        };
        let Some((member, n)) = line.split_once(':') else {
            return Ok(());
        };
        let (member, n): (usize, u64) = (
            member.parse().map_err(|_| text.to_owned())?,
            n.parse().map_err(|_| text.to_owned())?,
        );
        let expected = seen.get_mut(member).ok_or_else(|| text.to_owned())?;
        if n != *expected {
            return Err(format!("member {member}: line {n}, expected {expected}"));
        }
        *expected += 1;
        Ok(())
    };
    let mut n = 0u64;
    let mut next_send = tokio::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        tokio::select! {
            () = tokio::time::sleep_until(next_send) => {
                let line = match topic {
                    Some(topic) => format!("PUB t{topic} {i}:{n}"),
                    None => format!("{i}:{n}"),
                };
                ws.send(Message::text(line)).await.map_err(|e| format!("send: {e}"))?;
                n += 1;
                next_send += pace;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => see(&text)?,
                other => return Err(format!("{other:?}")),
            },
        }
    }
    sent[i].store(n, Ordering::Release);
    // The others' last lines arrive within a quiet second.
    let quiet = tokio::time::sleep(std::time::Duration::from_secs(2));
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            () = &mut quiet => break,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => see(&text)?,
                other => return Err(format!("{other:?}")),
            },
        }
    }
    let fellows = sent
        .iter()
        .enumerate()
        .filter(|(member, _)| topics.is_none_or(|topics| member % topics == i % topics));
    for (member, count) in fellows {
        let count = count.load(Ordering::Acquire);
        if seen[member] != count {
            return Err(format!(
                "saw {} of member {member}'s {count} lines",
                seen[member]
            ));
        }
    }
    ws.close(CloseCode::NORMAL, "done")
        .await
        .map_err(|e| format!("close: {e}"))?;
    Ok(n)
}
