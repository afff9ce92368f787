//! The public seams a framework author builds fan-out and shutdown on,
//! used from outside the crate (so the compiler checks they are public): a
//! minimal hub over `WriteHalf::{queue, poll_flush_queued}` and a minimal
//! drain over `CloseSignal`. `rt::hub` and `rt::drain` use the same seams.
#![cfg(feature = "tokio")]

#[path = "support/io.rs"]
mod io;

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use rfc6455::rt::CloseSignal;
use rfc6455::rt::tokio::WriteHalf;
use rfc6455::{CloseCode, Message, PreparedMessage};
use tokio::io::DuplexStream;

/// A hub of its own: each message framed once, queued on every member by
/// reference, then each member's queue written in one go.
struct MiniHub<'a> {
    members: Vec<&'a mut WriteHalf<DuplexStream>>,
}

impl MiniHub<'_> {
    async fn publish(&mut self, messages: &[PreparedMessage]) {
        for member in &mut self.members {
            let queued = member.queue(|outbox| {
                for message in messages {
                    assert!(!outbox.is_full());
                    outbox.send(message).unwrap();
                }
                outbox.queued()
            });
            assert!(queued > 0);
            poll_fn(|cx| member.poll_flush_queued(cx)).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_hub_of_its_own_on_the_public_seam() {
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (server, client) = io::ws_pair(1 << 20).await;
        let (write, read) = server.split();
        servers.push((write, read));
        clients.push(client);
    }
    let messages = [
        PreparedMessage::text("tick 1"),
        PreparedMessage::binary(vec![9u8; 70_000]),
    ];
    let mut hub = MiniHub {
        members: servers.iter_mut().map(|(write, _)| write).collect(),
    };
    hub.publish(&messages).await;
    for client in &mut clients {
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("tick 1")
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(vec![9u8; 70_000])
        );
    }
    // The seam's Close: the member's client sees it.
    let (write, _) = &mut servers[0];
    poll_fn(|cx| write.poll_send_close(cx, CloseCode::TRY_AGAIN_LATER, "slow"))
        .await
        .unwrap();
    let Some(Ok(Message::Close(Some(close)))) = clients[0].next().await else {
        panic!("no Close")
    };
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::TRY_AGAIN_LATER, "slow")
    );
}

#[tokio::test]
async fn an_unsplit_stream_queues_by_reference_and_keeps_the_pong_first() {
    let (mut server, mut client) = io::ws_pair(1 << 20).await;
    client
        .send(Message::Ping(bytes::Bytes::from_static(b"p")))
        .await
        .unwrap();
    // The Ping is read (its Pong queued) before anything is queued after it.
    client.send(Message::text("after")).await.unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping(bytes::Bytes::from_static(b"p"))
    );
    let prepared = PreparedMessage::binary(vec![7u8; 1000]);
    let queued = server.queue(|outbox| {
        outbox.send(&prepared).unwrap();
        outbox.send(Message::text("owned")).unwrap();
        outbox.queued()
    });
    assert!(queued > 1000, "queued {queued} bytes");
    server.flush().await.unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::Pong(bytes::Bytes::from_static(b"p"))
    );
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::binary(vec![7u8; 1000])
    );
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::text("owned")
    );
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::text("after")
    );
}

/// A drain of its own: a flag the operator flips, and what the stream
/// reported at its end.
#[derive(Debug, Default)]
struct Kick {
    asked: AtomicBool,
    /// 0 running, 1 ended after a close handshake, 2 ended otherwise.
    ended: AtomicU8,
}

impl CloseSignal for Kick {
    fn close_request(&self) -> Option<(CloseCode, &str)> {
        self.asked
            .load(Ordering::Acquire)
            .then_some((CloseCode::SERVICE_RESTART, "deploy"))
    }

    fn ended(&self, clean: bool) {
        self.ended
            .store(if clean { 1 } else { 2 }, Ordering::Release);
    }
}

#[tokio::test]
async fn a_drain_of_its_own_on_the_close_signal() {
    let (mut server, mut client) = io::ws_pair(1 << 20).await;
    let kick = Arc::new(Kick::default());
    server.set_close_signal(Arc::clone(&kick) as Arc<dyn CloseSignal>);
    let task = tokio::spawn(async move {
        let mut echoed = 0;
        while let Some(message) = server.next().await {
            // Once the signal's Close is out, a send is refused.
            if let message @ Message::Text(_) = message.unwrap()
                && server.send(message).await.is_ok()
            {
                echoed += 1;
            }
        }
        echoed
    });
    client.send(Message::text("before")).await.unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::text("before")
    );
    assert_eq!(kick.ended.load(Ordering::Acquire), 0);
    kick.asked.store(true, Ordering::Release);
    // The server's task is polled again by the next message it reads.
    client.send(Message::text("during")).await.unwrap();
    let Message::Close(Some(close)) = client.next().await.unwrap().unwrap() else {
        panic!("the signal's Close goes out before anything else is read")
    };
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::SERVICE_RESTART, "deploy")
    );
    while client.next().await.is_some() {}
    assert_eq!(task.await.unwrap(), 1, "only the message before the Close");
    assert_eq!(
        kick.ended.load(Ordering::Acquire),
        1,
        "ended after a clean close"
    );
}
