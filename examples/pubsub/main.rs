//! A small topic server on the hub: clients subscribe to topics and publish
//! to them with text commands.
//!
//! ```text
//! cargo run --release --example pubsub -- --listen 127.0.0.1:9101
//! cargo run --example client -- ws://127.0.0.1:9101/
//! ```
//!
//! Commands, one per text message (names are case-sensitive):
//!
//! | command | reply |
//! | --- | --- |
//! | `SUB topic` | `OK SUB topic` |
//! | `UNSUB topic` | `OK UNSUB topic` |
//! | `PUB topic payload` | `OK PUB topic N` (N subscribers got it) |
//!
//! A subscriber receives `MSG topic payload` for each publish. Anything
//! else gets `ERR reason` and changes nothing: an unknown or malformed
//! command, a topic name that is empty, contains a space or is too long, a
//! subscription past the per-connection limit or the hub's topic limit, a
//! publish to a topic with no subscribers, an unsubscribe from a topic not
//! subscribed. Binary messages get `ERR`, too.
//!
//! Options (defaults in brackets): `--listen ADDR` [127.0.0.1:9101],
//! `--max-topic-len N` [256], `--max-topics-per-connection N` [64],
//! `--max-topics N` [100000]. Each message is framed once for all its
//! subscribers; a subscriber that stops reading while the others keep up is
//! closed with 1008, and a publisher waits while subscribers are behind.
//!
//! On Ctrl-C or SIGTERM it drains (`rfc6455::rt::drain`): new upgrades get
//! 503, and the clients are closed with 1001 over five seconds.

use rfc6455::rt::drain::{Drain, DrainConfig, Ticket};
use rfc6455::rt::hub::{Forwarded, Hub, HubConfig, Member};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message, PreparedMessage, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

#[path = "../support/shutdown.rs"]
mod shutdown;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (addr, config) = options()?;
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("pubsub: listening on ws://{}", listener.local_addr()?);
    let hub = Hub::new(config);
    let drain = Drain::new(DrainConfig::default());
    let report = drain
        .serve_until(accept(&listener, &drain, &hub), shutdown::signal())
        .await?;
    eprintln!("pubsub: {report}");
    Ok(())
}

/// Accepts clients, each a task the drain watches.
async fn accept(listener: &TcpListener, drain: &Drain, hub: &Hub) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(drain.watch(|ticket| async move {
            if let Err(error) = serve_tcp(tcp, &ticket, &hub).await {
                eprintln!("pubsub: connection ended: {error}");
            }
        }));
    }
}

fn options() -> Result<(String, HubConfig), BoxError> {
    let mut addr = "127.0.0.1:9101".to_owned();
    let mut config = HubConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => addr = value,
            "--max-topic-len" => config = config.max_topic_len(value.parse()?),
            "--max-topics-per-connection" => config = config.max_topics_per_member(value.parse()?),
            "--max-topics" => config = config.max_topics(value.parse()?),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    Ok((addr, config))
}

async fn serve_tcp(tcp: TcpStream, ticket: &Ticket, hub: &Hub) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    serve(ticket.accept(tcp, &ServerBuilder::new()).await?, hub).await
}

/// One client: its commands, and what is published to it.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    hub: &Hub,
) -> Result<(), Error> {
    let (mut writer, mut reader) = ws.split();
    let member = hub.join();
    let reading = async {
        while let Some(message) = reader.next().await {
            let reply = match message? {
                Message::Text(text) => command(hub, &member, &text).await,
                Message::Binary(_) => "ERR commands are text".to_owned(),
                _ => continue,
            };
            member.send(&PreparedMessage::text(reply));
        }
        Ok(())
    };
    tokio::select! {
        result = reading => result,
        result = member.forward(&mut writer) => result.map(|end| {
            if let Forwarded::ClosedSlow(code) = end {
                eprintln!("pubsub: member {} too slow, closed with {code}", member.id());
            }
        }),
    }
}

/// Runs one command; the reply for its sender.
async fn command(hub: &Hub, member: &Member, line: &str) -> String {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "SUB" | "UNSUB" if rest.is_empty() || rest.contains(' ') => {
            format!("ERR usage: {verb} topic (one word)")
        }
        "SUB" => match hub.subscribe(member, rest) {
            Ok(_) => format!("OK SUB {rest}"),
            Err(error) => format!("ERR {error}"),
        },
        "UNSUB" if hub.unsubscribe(member, rest) => format!("OK UNSUB {rest}"),
        "UNSUB" => format!("ERR not subscribed to {rest}"),
        "PUB" => {
            let Some((topic, payload)) = rest.split_once(' ').filter(|(t, _)| !t.is_empty()) else {
                return "ERR usage: PUB topic payload".to_owned();
            };
            if topic.len() > hub.config().max_topic_len {
                return format!(
                    "ERR topic name must be 1 to {} bytes",
                    hub.config().max_topic_len
                );
            }
            // A publisher waits while subscribers are behind.
            hub.ready().await;
            let message = PreparedMessage::text(format!("MSG {topic} {payload}"));
            match hub.publish(topic, &message).delivered {
                0 => format!("ERR no subscribers for {topic}"),
                n => format!("OK PUB {topic} {n}"),
            }
        }
        _ => "ERR unknown command (SUB, UNSUB, PUB)".to_owned(),
    }
}
