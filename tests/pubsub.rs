//! The `pubsub` example's protocol: commands, replies, deliveries, and a
//! clear error for every bad input, with nothing changed by it.
#![cfg(feature = "tokio")]
#![allow(dead_code)]

#[path = "../examples/pubsub/main.rs"]
mod pubsub;

use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{ClientBuilder, Message};
use tokio::io::{DuplexStream, duplex};

async fn connect(hub: &Hub) -> WebSocketStream<DuplexStream> {
    let (a, b) = duplex(1 << 16);
    let hub = hub.clone();
    tokio::spawn(async move { pubsub::serve(WebSocketStream::accept(b).await?, &hub).await });
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
    let hub = Hub::new(HubConfig::default());
    let mut alice = connect(&hub).await;
    let mut bob = connect(&hub).await;
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
    let hub = Hub::new(
        HubConfig::default()
            .max_topic_len(8)
            .max_topics_per_member(2)
            .max_topics(3),
    );
    let mut ws = connect(&hub).await;
    for (command, reply) in [
        ("HELLO", "ERR unknown command (SUB, UNSUB, PUB)"),
        ("sub news", "ERR unknown command (SUB, UNSUB, PUB)"),
        ("SUB", "ERR usage: SUB topic (one word)"),
        ("SUB two words", "ERR usage: SUB topic (one word)"),
        ("UNSUB", "ERR usage: UNSUB topic (one word)"),
        ("SUB waytoolongtopic", "ERR topic name must be 1 to 8 bytes"),
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
    let mut other = connect(&hub).await;
    assert_eq!(ask(&mut other, Message::text("SUB t3")).await, "OK SUB t3");
    assert_eq!(
        ask(&mut other, Message::text("SUB t4")).await,
        "ERR at most 3 topics"
    );
    let stats = hub.stats();
    assert_eq!((stats.topics, stats.subscriptions), (3, 3));
}
