//! Cancel safety, as the docs of each async method state it: every call is
//! dropped at pseudo-random await points (right after it was woken, which
//! is where a `select!` that picks another branch leaves it), over a 4 KiB
//! pipe so writes stall half-way through frames, and the peer checks that
//! no message is lost, duplicated or corrupted.
#![cfg(feature = "tokio")]

#[path = "support/io.rs"]
mod io;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Message, PreparedMessage};
use tokio::io::DuplexStream;

const MESSAGES: usize = 400;

/// How long the hub test lets `forward` wait for a publish before it
/// cancels it to look at the queues.
const IDLE: std::time::Duration = std::time::Duration::from_millis(10);

/// A small deterministic generator: the same cancellation points each run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// How many times a call may be polled before it is cancelled: 1 to 3
    /// (cancelled at its first, second or third await, just after being
    /// woken), or, one time in four, no limit (so every call completes).
    fn budget(&mut self) -> u32 {
        match self.next() % 4 {
            0 => u32::MAX,
            n => n as u32,
        }
    }
}

/// Polls `fut` at most `polls` times: `None` when it is dropped (cancelled)
/// instead of being polled again after it was woken.
struct Budget<'a, F> {
    fut: Pin<&'a mut F>,
    polls: u32,
}

impl<F: Future> Future for Budget<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.fut.as_mut().poll(cx).map(Some)
    }
}

/// Runs `call` until it completes, cancelling it at the await points the
/// budget picks; gives its output and how many times it was cancelled.
macro_rules! until_done {
    ($rng:expr, $call:expr) => {{
        let mut cancelled = 0usize;
        loop {
            let budget = $rng.budget();
            match (Budget {
                fut: std::pin::pin!($call),
                polls: budget,
            })
            .await
            {
                Some(output) => break (output, cancelled),
                None => cancelled += 1,
            }
        }
    }};
}

/// Message `i`: its index in every byte, of a size from 1 B to 40 KiB
/// (larger than the pipe, so it is written in pieces).
fn message(i: usize) -> Message {
    let len = 1 + (i * 7919) % (40 * 1024);
    Message::binary(vec![(i % 251) as u8; len])
}

/// Reads data messages until the stream ends, checking each is message `i`.
async fn read_all(mut ws: WebSocketStream<DuplexStream>) -> usize {
    let mut i = 0;
    while let Some(item) = ws.next().await {
        match item.unwrap() {
            Message::Binary(data) => {
                assert_eq!(Message::Binary(data), message(i), "message {i}");
                i += 1;
            }
            Message::Close(_) => {}
            other => panic!("{other:?}"),
        }
    }
    i
}

// `next`: a cancelled call loses nothing; the message comes with the next.
#[tokio::test]
async fn next_is_cancel_safe() {
    let (mut server, mut client) = io::ws_pair(4096).await;
    let writer = tokio::spawn(async move {
        for i in 0..MESSAGES {
            client.send(message(i)).await.unwrap();
        }
        client.close(CloseCode::NORMAL, "").await.unwrap();
    });
    let mut rng = Rng(1);
    let (mut i, mut cancelled) = (0, 0);
    loop {
        let (item, c) = until_done!(rng, server.next());
        cancelled += c;
        match item {
            Some(Ok(Message::Binary(data))) => {
                assert_eq!(Message::Binary(data), message(i), "message {i}");
                i += 1;
            }
            Some(Ok(Message::Close(_))) => {}
            None => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(i, MESSAGES);
    assert!(cancelled > 0, "never cancelled");
    writer.await.unwrap();
}

// `feed` is all or nothing: a cancelled call queued nothing, so it is
// retried; `flush` and `close` resume where the cancelled call stopped.
#[tokio::test]
async fn feed_flush_and_close_are_cancel_safe() {
    let (mut server, client) = io::ws_pair(4096).await;
    let reader = tokio::spawn(read_all(client));
    let mut rng = Rng(2);
    let mut cancelled = 0;
    for i in 0..MESSAGES {
        let (fed, c) = until_done!(rng, server.feed(message(i)));
        fed.unwrap();
        cancelled += c;
        if i % 7 == 0 {
            let (flushed, c) = until_done!(rng, server.flush());
            flushed.unwrap();
            cancelled += c;
        }
    }
    let (closed, c) = until_done!(rng, server.close(CloseCode::NORMAL, ""));
    assert_eq!(closed.unwrap().map(|f| f.code), Some(CloseCode::NORMAL));
    cancelled += c;
    assert_eq!(reader.await.unwrap(), MESSAGES);
    assert!(cancelled > 0, "never cancelled");
}

// A cancelled `send` may have queued its message (it feeds, then
// flushes): what the peer gets is then a subsequence, each message whole,
// in order, none twice, everything that was sent to the end.
#[tokio::test]
async fn a_cancelled_send_is_whole_or_absent() {
    let (mut server, mut client) = io::ws_pair(4096).await;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(item) = client.next().await {
            if let Message::Binary(data) = item.unwrap() {
                got.push(data);
            }
        }
        got
    });
    let mut rng = Rng(3);
    let mut completed = Vec::new();
    for i in 0..MESSAGES {
        let budget = rng.budget();
        let send = std::pin::pin!(server.send(message(i)));
        if let Some(sent) = (Budget {
            fut: send,
            polls: budget,
        })
        .await
        {
            sent.unwrap();
            completed.push(i);
        }
    }
    server.close(CloseCode::NORMAL, "").await.unwrap();
    let got = reader.await.unwrap();
    let mut last = None;
    for data in &got {
        let i = usize::from(data[0]);
        // Indices repeat every 251: find the next index after `last` that fits.
        let index = (last.map_or(0, |l| l + 1)..MESSAGES)
            .find(|&j| j % 251 == i && Message::binary(data.clone()) == message(j))
            .expect("a message whole and in order");
        last = Some(index);
    }
    for i in &completed {
        assert!(
            got.iter()
                .any(|data| Message::binary(data.clone()) == message(*i)),
            "completed send {i} arrived"
        );
    }
    assert!(completed.len() < MESSAGES, "never cancelled");
}

// The split halves: the same, both at once.
#[tokio::test]
async fn the_split_halves_are_cancel_safe() {
    let (server, mut client) = io::ws_pair(4096).await;
    let (mut write, mut read) = server.split();
    let echo = tokio::spawn(async move {
        let mut rng = Rng(4);
        let mut echoed = 0;
        loop {
            let (item, _) = until_done!(rng, read.next());
            match item {
                Some(Ok(message @ Message::Binary(_))) => {
                    let (fed, _) = until_done!(rng, write.feed(message.clone()));
                    fed.unwrap();
                    let (flushed, _) = until_done!(rng, write.flush());
                    flushed.unwrap();
                    echoed += 1;
                }
                Some(Ok(_)) => {}
                None => return echoed,
                Some(Err(error)) => panic!("{error}"),
            }
        }
    });
    for i in 0..MESSAGES / 4 {
        client.send(message(i)).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            message(i),
            "echo {i}"
        );
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(echo.await.unwrap(), MESSAGES / 4);
}

// The hub's `forward`: a cancelled call loses nothing it took from the
// member's queue (it is on the connection, written by the next call).
#[tokio::test]
async fn hub_forward_is_cancel_safe() {
    let hub = Hub::new(HubConfig::default().queue_limit(64 << 20));
    let (server, client) = io::ws_pair(4096).await;
    let (mut write, read) = server.split();
    let member = hub.join();
    hub.subscribe(&member, "t").unwrap();
    let reader = tokio::spawn(read_all(client));
    for i in 0..MESSAGES {
        let Message::Binary(data) = message(i) else {
            unreachable!()
        };
        assert_eq!(
            hub.publish("t", &PreparedMessage::binary(data)).delivered,
            1
        );
    }
    let mut rng = Rng(5);
    let mut cancelled = 0;
    // Until the queue is empty, then until the connection wrote it all.
    while member.queued_bytes() > 0 || write.stats().queued_output > 0 {
        // Cancelled at its first to third await, or once it waits for
        // more to publish (forward runs for the member's life).
        let polls = 1 + (rng.next() % 3) as u32;
        let forward = std::pin::pin!(member.forward(&mut write));
        let budget = Budget {
            fut: forward,
            polls,
        };
        if let Ok(Some(result)) = tokio::time::timeout(IDLE, budget).await {
            panic!("forward ended: {result:?}");
        }
        cancelled += 1;
    }
    write.close(CloseCode::NORMAL, "").await.unwrap();
    drop((write, read));
    assert!(cancelled > 0);
    assert_eq!(reader.await.unwrap(), MESSAGES);
}
