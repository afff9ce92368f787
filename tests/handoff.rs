//! The handoff between two processes, within one (the descriptors really
//! travel over a Unix socket): the listener and a live connection move to
//! the successor between messages; the client sees every echo once, in
//! order, and no Close; a new client is served by the successor; a
//! damaged snapshot closes its connection with 1011.
#![cfg(all(feature = "handoff", target_os = "linux"))]

use rfc6455::rt::handoff::{Handoff, Inherited, take_over};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Config, Message, ServerBuilder};
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
/// record (kind 2, one descriptor), as the wire format says.
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
