//! The follower against a real server over TCP: its connections are cut
//! while publishes go on, and it resumes each time from the last position
//! it received, with nothing missed and nothing twice, or is told what the
//! history no longer held.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub::Server;
use pubsub::cluster::Node;
use pubsub::follow::{Event, Follower};
use rfc6455::ServerBuilder;
use rfc6455::reconnect::BackoffConfig;
use rfc6455::rt::hub::{HistoryConfig, HubConfig, Position};
use rfc6455::rt::reconnect::Reconnect;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// A node alone keeping `kept` messages per topic, served on a loopback
/// port; the connections' tasks, to cut them.
async fn serve(kept: usize) -> (Arc<Server>, String, Arc<Mutex<Vec<AbortHandle>>>) {
    let config = HubConfig::default().history(HistoryConfig::default().max_messages(kept));
    let server = Arc::new(Server::new(Arc::new(Node::new(config, None, kept)), 1024));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let (s, t) = (server.clone(), tasks.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = s.clone();
            let task = tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, &ServerBuilder::new()).await?;
                pubsub::serve(ws, &server).await
            });
            t.lock().unwrap().push(task.abort_handle());
        }
    });
    (server, url, tasks)
}

/// Drops every connection the server holds, as a network failure would.
fn cut(tasks: &Mutex<Vec<AbortHandle>>) {
    for task in tasks.lock().unwrap().drain(..) {
        task.abort();
    }
}

fn follower(url: &str) -> Follower {
    let backoff = BackoffConfig::default().base(Duration::from_millis(20));
    Follower::new(Reconnect::new(url).unwrap().backoff(backoff).seed(1)).follow("t")
}

async fn next(follower: &mut Follower) -> Event {
    tokio::time::timeout(Duration::from_secs(10), follower.next())
        .await
        .expect("an event within 10 s")
        .expect("still following")
}

async fn publish(server: &Server, n: u32) -> Position {
    server
        .node
        .publish("t", &format!("m{n}"))
        .await
        .unwrap()
        .unwrap()
}

/// The next message's offset and payload, skipping nothing else.
async fn message(follower: &mut Follower) -> (u64, String) {
    match next(follower).await {
        Event::Message { at, payload, .. } => (at.offset, payload),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_follower_resumes_after_each_cut_with_nothing_missed() {
    let (server, url, tasks) = serve(100).await;
    let mut follower = follower(&url);
    assert_eq!(next(&mut follower).await, Event::Connected);
    assert_eq!(
        next(&mut follower).await,
        Event::Subscribed { topic: "t".into() }
    );
    let mut n = 0;
    for round in 0..3 {
        // Live messages, then a cut with more published meanwhile.
        for _ in 0..3 {
            n += 1;
            publish(&server, n).await;
            assert_eq!(
                message(&mut follower).await,
                (u64::from(n), format!("m{n}"))
            );
        }
        cut(&tasks);
        assert_eq!(
            next(&mut follower).await,
            Event::Disconnected,
            "round {round}"
        );
        for _ in 0..4 {
            n += 1;
            publish(&server, n).await;
        }
        assert_eq!(next(&mut follower).await, Event::Connected);
        for k in n - 3..=n {
            assert_eq!(
                message(&mut follower).await,
                (u64::from(k), format!("m{k}"))
            );
        }
        assert_eq!(
            next(&mut follower).await,
            Event::Resumed {
                topic: "t".into(),
                replayed: 4
            }
        );
    }
    assert_eq!(
        follower.position("t").map(|at| at.offset),
        Some(u64::from(n))
    );
}

#[tokio::test]
async fn a_follower_is_told_what_the_history_no_longer_held() {
    let (server, url, tasks) = serve(3).await;
    let mut follower = follower(&url);
    assert_eq!(next(&mut follower).await, Event::Connected);
    next(&mut follower).await;
    let first = publish(&server, 1).await;
    message(&mut follower).await;
    cut(&tasks);
    assert_eq!(next(&mut follower).await, Event::Disconnected);
    for n in 2..=7 {
        publish(&server, n).await;
    }
    assert_eq!(next(&mut follower).await, Event::Connected);
    // Three kept: 5, 6, 7; 2 to 4 are lost.
    for k in 5..=7 {
        assert_eq!(message(&mut follower).await.0, k);
    }
    assert_eq!(
        next(&mut follower).await,
        Event::Lost {
            topic: "t".into(),
            last: first,
            earliest: Position {
                epoch: first.epoch,
                offset: 5
            }
        }
    );
}

// Answers to a resume whose count or position does not parse are handed
// over as sent, and the connection goes on: nothing dropped, nothing made up.
#[tokio::test]
async fn an_answer_that_does_not_parse_is_handed_over() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let answers = [
        "OK SUBP t UNRECOVERABLE nonsense 5",
        "OK SUBP t RECOVERED many",
    ];
    tokio::spawn(async move {
        for answer in answers {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = WebSocketStream::accept(tcp, &ServerBuilder::new())
                .await
                .unwrap();
            let asked = ws.next().await.unwrap().unwrap();
            assert_eq!(asked, rfc6455::Message::text("SUBP t 1:3"));
            ws.send(rfc6455::Message::text(answer)).await.unwrap();
            ws.send(rfc6455::Message::text("MSGP t 1:4 x"))
                .await
                .unwrap();
            // Cut, as a network failure would: the follower comes back.
            drop(ws);
        }
    });
    let backoff = BackoffConfig::default().base(Duration::from_millis(20));
    let mut follower = Follower::new(Reconnect::new(&url).unwrap().backoff(backoff).seed(1))
        .follow_from(
            "t",
            Position {
                epoch: 1,
                offset: 3,
            },
        );
    for answer in answers {
        assert_eq!(next(&mut follower).await, Event::Connected);
        assert_eq!(next(&mut follower).await, Event::Other(answer.into()));
        assert!(matches!(next(&mut follower).await, Event::Message { at, .. } if at.offset == 4));
        assert_eq!(next(&mut follower).await, Event::Disconnected);
        assert_eq!(follower.position("t").map(|at| at.offset), Some(4));
        // Back to 3, so the next server is asked the same.
        follower = follower.follow_from(
            "t",
            Position {
                epoch: 1,
                offset: 3,
            },
        );
    }
}
