//! The `pubsub` server's protocol: commands, replies, deliveries, and a
//! clear error for every bad input, with nothing changed by it.
#![allow(dead_code)]

use std::sync::Arc;

use pubsub::Server;
use pubsub::cluster::Node;
use rfc6455::rt::hub::{HistoryConfig, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{ClientBuilder, Message, ServerBuilder};
use tokio::io::{DuplexStream, duplex};

/// A node alone (no broker), as the server runs without `--redis`,
/// keeping five messages per topic and taking payloads up to 64 bytes.
fn node(config: HubConfig) -> Arc<Server> {
    let config = config.history(HistoryConfig::default().max_messages(5));
    Arc::new(Server::new(Arc::new(Node::new(config, None, 5)), 64))
}

async fn connect(node: &Arc<Server>) -> WebSocketStream<DuplexStream> {
    let (a, b) = duplex(1 << 16);
    let node = node.clone();
    tokio::spawn(async move {
        pubsub::serve(
            WebSocketStream::accept(b, &ServerBuilder::new()).await?,
            &node,
        )
        .await
    });
    let client = ClientBuilder::new("ws://pubsub/").unwrap();
    WebSocketStream::client(a, &client).await.unwrap().0
}

/// Sends `command` and returns the next text that arrives.
async fn ask(ws: &mut WebSocketStream<DuplexStream>, command: impl Into<Message>) -> String {
    ws.send(command.into()).await.unwrap();
    next_text(ws).await
}

async fn next_text(ws: &mut WebSocketStream<DuplexStream>) -> String {
    match ws.next().await.unwrap().unwrap() {
        Message::Text(text) => text.to_string(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn subscribe_publish_unsubscribe() {
    let node = node(HubConfig::default());
    let hub = node.node.hub();
    let mut alice = connect(&node).await;
    let mut bob = connect(&node).await;
    assert_eq!(
        ask(&mut alice, Message::text("SUB news")).await,
        "OK SUB news"
    );
    assert_eq!(
        ask(&mut alice, Message::text("SUB news")).await,
        "OK SUB news"
    );
    let reply = ask(&mut bob, Message::text("PUB news hello world")).await;
    assert!(
        reply.starts_with("OK PUB news ") && reply.ends_with(":1"),
        "{reply}"
    );
    assert_eq!(next_text(&mut alice).await, "MSG news hello world");
    assert_eq!(
        ask(&mut alice, Message::text("UNSUB news")).await,
        "OK UNSUB news"
    );
    // The topic keeps its history with no one subscribed.
    let reply = ask(&mut bob, Message::text("PUB news again")).await;
    assert!(reply.ends_with(":2"), "{reply}");
    assert_eq!(hub.stats().subscriptions, 0);
    assert_eq!(hub.stats().history_messages, 2);
}

#[tokio::test]
async fn bad_input_gets_an_error_and_changes_nothing() {
    let node = node(
        HubConfig::default()
            .max_topic_len(8)
            .max_topics_per_member(2)
            .max_topics(3),
    );
    let hub = node.node.hub();
    let mut ws = connect(&node).await;
    let unknown = "ERR unknown command (SUB, SUBP, UNSUB, PUB, STATS)";
    let long = format!("PUB t {}", "x".repeat(65));
    for (command, reply) in [
        ("HELLO", unknown),
        ("sub news", unknown),
        ("STATS now", unknown),
        ("SUB", "ERR usage: SUB topic (one word)"),
        ("SUB two words", "ERR usage: SUB topic (one word)"),
        ("UNSUB", "ERR usage: UNSUB topic (one word)"),
        ("SUB waytoolongtopic", "ERR topic name must be 1 to 8 bytes"),
        ("SUBP", "ERR usage: SUBP topic [EPOCH:OFFSET]"),
        ("SUBP a 1:2 3", "ERR usage: SUBP topic [EPOCH:OFFSET]"),
        ("SUBP a 12", "ERR a position is EPOCH:OFFSET"),
        ("SUBP a x:1", "ERR a position is EPOCH:OFFSET"),
        ("SUBP a 1:-1", "ERR a position is EPOCH:OFFSET"),
        (
            "SUBP a 1:99999999999999999999",
            "ERR a position is EPOCH:OFFSET",
        ),
        (
            "SUBP a\tb",
            "ERR topic name holds a space or a control character",
        ),
        (&long, "ERR payload of 65 bytes over the limit of 64"),
        (
            "PUB a\nb x",
            "ERR topic name holds a space or a control character",
        ),
        ("PUB", "ERR usage: PUB topic payload"),
        ("PUB news", "ERR usage: PUB topic payload"),
        (
            "PUB waytoolongtopic x",
            "ERR topic name must be 1 to 8 bytes",
        ),
        ("UNSUB news", "ERR not subscribed to news"),
        ("SUB t1", "OK SUB t1"),
        ("SUB t2", "OK SUB t2"),
        ("SUB t3", "ERR at most 2 topics per connection"),
        ("SUBP t1", "ERR already subscribed (UNSUB first)"),
    ] {
        assert_eq!(
            ask(&mut ws, Message::text(command)).await,
            reply,
            "{command}"
        );
    }
    assert_eq!(
        ask(&mut ws, Message::binary(&b"SUB t1"[..])).await,
        "ERR commands are text"
    );
    let mut other = connect(&node).await;
    assert_eq!(ask(&mut other, Message::text("SUB t3")).await, "OK SUB t3");
    assert_eq!(
        ask(&mut other, Message::text("SUB t4")).await,
        "ERR at most 3 topics"
    );
    let stats = hub.stats();
    assert_eq!((stats.topics, stats.subscriptions), (3, 3));
    // The topic limit counts topics that keep a history: none is made.
    assert_eq!(
        ask(&mut other, Message::text("PUB nobody hi")).await,
        "ERR no subscribers for nobody"
    );
}

/// The position at the end of a `MSGP` delivery's third word.
fn position_of(delivery: &str) -> String {
    delivery.split(' ').nth(2).unwrap().to_owned()
}

// A subscriber with positions sees each message's; one that comes back
// with its last position gets exactly what it missed, then the live ones;
// one whose position the history no longer reaches is told so.
#[tokio::test]
async fn a_client_that_comes_back_resumes_where_it_left_off() {
    let node = node(HubConfig::default());
    let mut publisher = connect(&node).await;
    let mut reader = connect(&node).await;
    assert_eq!(ask(&mut reader, Message::text("SUBP t")).await, "OK SUBP t");
    let reply = ask(&mut publisher, Message::text("PUB t m1")).await;
    let first = reply.strip_prefix("OK PUB t ").unwrap().to_owned();
    let delivery = next_text(&mut reader).await;
    assert_eq!(delivery, format!("MSGP t {first} m1"));
    drop(reader);
    for n in 2..=4 {
        ask(&mut publisher, Message::text(format!("PUB t m{n}"))).await;
    }
    let mut back = connect(&node).await;
    back.send(Message::text(format!("SUBP t {first}")))
        .await
        .unwrap();
    let (epoch, _) = first.split_once(':').unwrap();
    for n in 2..=4 {
        assert_eq!(
            next_text(&mut back).await,
            format!("MSGP t {epoch}:{n} m{n}")
        );
    }
    assert_eq!(next_text(&mut back).await, "OK SUBP t RECOVERED 3");
    ask(&mut publisher, Message::text("PUB t m5")).await;
    assert_eq!(next_text(&mut back).await, format!("MSGP t {epoch}:5 m5"));
    // Five kept: 1 is gone after three more.
    for n in 6..=8 {
        ask(&mut publisher, Message::text(format!("PUB t m{n}"))).await;
    }
    let mut late = connect(&node).await;
    late.send(Message::text(format!("SUBP t {first}")))
        .await
        .unwrap();
    for n in 4..=8 {
        let delivery = next_text(&mut late).await;
        assert_eq!(position_of(&delivery), format!("{epoch}:{n}"));
    }
    assert_eq!(
        next_text(&mut late).await,
        format!("OK SUBP t UNRECOVERABLE {epoch}:4 5")
    );
    // A position of another epoch: the same.
    let mut stranger = connect(&node).await;
    stranger.send(Message::text("SUBP t 1:1")).await.unwrap();
    for _ in 4..=8 {
        next_text(&mut stranger).await;
    }
    assert_eq!(
        next_text(&mut stranger).await,
        format!("OK SUBP t UNRECOVERABLE {epoch}:4 5")
    );
    drop(back);
    assert_eq!(
        ask(&mut publisher, Message::text("STATS")).await,
        "OK STATS published=0 publish_failed=0 received=0 duplicates=0 malformed=0 \
         filled=0 lost=0 queued=0 broker=none"
    );
}

// A client that sends commands faster than it reads the replies, past the
// queue limit, is closed with 1008 and a reason: every reply it gets
// before the Close answers its commands in order, none is skipped.
#[tokio::test]
async fn replies_that_overflow_close_the_client() {
    let node = node(HubConfig::default().queue_limit(16 * 1024));
    let (mut write, mut read) = connect(&node).await.split();
    let sender = tokio::spawn(async move {
        for i in 0..20_000 {
            if write
                .feed(Message::text(format!("SUB t{i}")))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = write.flush().await;
        write
    });
    // Read nothing until the commands are in.
    let write = sender.await.unwrap();
    let mut replies = 0;
    let close = loop {
        match read.next().await {
            Some(Ok(Message::Text(text))) => {
                assert!(
                    *text == *format!("OK SUB t{replies}") || text.starts_with("ERR"),
                    "reply {replies}: {text}"
                );
                replies += 1;
            }
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, rfc6455::CloseCode::POLICY_VIOLATION);
    assert_eq!(&*close.reason, pubsub::REPLIES_OVERFLOWED);
    assert!(replies < 20_000, "{replies} replies");
    drop(write);
}
