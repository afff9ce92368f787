//! The `pubsub` server's protocol: commands, replies, deliveries, and a
//! clear error for every bad input, with nothing changed by it.
#![allow(dead_code)]

use std::sync::Arc;

use pubsub::cluster::Node;
use pubsub::envelope::Origin;
use rfc6455::rt::hub::HubConfig;
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{ClientBuilder, Message, ServerBuilder};
use tokio::io::{DuplexStream, duplex};

/// A node alone (no broker), as the example runs without `--redis`.
fn node(config: HubConfig) -> Arc<Node> {
    let origin = Origin {
        node: 0xab,
        epoch: 7,
    };
    Arc::new(Node::new(config, None, origin))
}

async fn connect(node: &Arc<Node>) -> WebSocketStream<DuplexStream> {
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
    let hub = node.hub();
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
    assert_eq!(
        ask(&mut bob, Message::text("PUB news hello world")).await,
        "OK PUB news 1"
    );
    assert_eq!(next_text(&mut alice).await, "MSG news hello world");
    assert_eq!(
        ask(&mut alice, Message::text("UNSUB news")).await,
        "OK UNSUB news"
    );
    assert_eq!(
        ask(&mut bob, Message::text("PUB news again")).await,
        "ERR no subscribers for news"
    );
    assert_eq!(hub.stats().subscriptions, 0);
}

#[tokio::test]
async fn bad_input_gets_an_error_and_changes_nothing() {
    let node = node(
        HubConfig::default()
            .max_topic_len(8)
            .max_topics_per_member(2)
            .max_topics(3),
    );
    let hub = node.hub();
    let mut ws = connect(&node).await;
    let unknown = "ERR unknown command (SUB, SUBENV, UNSUB, PUB, STATS)";
    for (command, reply) in [
        ("HELLO", unknown),
        ("sub news", unknown),
        ("STATS now", unknown),
        ("SUB", "ERR usage: SUB topic (one word)"),
        ("SUB two words", "ERR usage: SUB topic (one word)"),
        ("UNSUB", "ERR usage: UNSUB topic (one word)"),
        ("SUB waytoolongtopic", "ERR topic name must be 1 to 8 bytes"),
        ("SUBENV", "ERR usage: SUBENV topic (one word)"),
        (
            "SUBENV a\tb",
            "ERR topic name holds a space or a control character",
        ),
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
        ("PUB nobody hi", "ERR no subscribers for nobody"),
        ("UNSUB news", "ERR not subscribed to news"),
        ("SUB t1", "OK SUB t1"),
        ("SUB t2", "OK SUB t2"),
        ("SUB t3", "ERR at most 2 topics per connection"),
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
}

#[tokio::test]
async fn envelope_subscribers_see_sequence_numbers() {
    let node = node(HubConfig::default());
    let mut plain = connect(&node).await;
    let mut enveloped = connect(&node).await;
    let mut publisher = connect(&node).await;
    assert_eq!(ask(&mut plain, Message::text("SUB t")).await, "OK SUB t");
    assert_eq!(
        ask(&mut enveloped, Message::text("SUBENV t")).await,
        "OK SUBENV t"
    );
    for n in 1..=2 {
        assert_eq!(
            ask(&mut publisher, Message::text(format!("PUB t m{n}"))).await,
            "OK PUB t 2"
        );
        assert_eq!(next_text(&mut plain).await, format!("MSG t m{n}"));
        assert_eq!(
            next_text(&mut enveloped).await,
            format!("rfc6455-pubsub/1 00000000000000ab 0000000000000007 {n} t\nm{n}")
        );
    }
    assert_eq!(
        ask(&mut enveloped, Message::text("UNSUB t")).await,
        "OK UNSUB t"
    );
    assert_eq!(node.subscribers("t"), 1);
    assert_eq!(
        ask(&mut plain, Message::text("STATS")).await,
        "OK STATS published=0 publish_failed=0 received=0 own=0 duplicates=0 malformed=0 \
         lost=0 tracked=0 broker=none"
    );
    drop((plain, publisher));
    // The server side leaves the hub once it sees the connection end.
    while node.hub().stats().members > 1 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
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
