//! A small topic server on the hub: clients subscribe to topics and publish
//! to them with text commands. Started with `--redis`, several of them form
//! one logical server through Redis Pub/Sub.
//!
//! ```text
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9101
//! cargo run --example client -- ws://127.0.0.1:9101/
//! ```
//!
//! A two-node cluster (each node serves its own clients; a publish on
//! either reaches the subscribers on both):
//!
//! ```text
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9101 --redis redis://127.0.0.1:6379
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9102 --redis redis://127.0.0.1:6379
//! ```
//!
//! Commands, one per text message (names are case-sensitive):
//!
//! | command | reply |
//! | --- | --- |
//! | `SUB topic` | `OK SUB topic` |
//! | `SUBENV topic` | `OK SUBENV topic` |
//! | `UNSUB topic` | `OK UNSUB topic` |
//! | `PUB topic payload` | `OK PUB topic N` (N subscribers here got it) |
//! | `STATS` | `OK STATS published=N publish_failed=N received=N own=N duplicates=N malformed=N lost=N tracked=N broker=up\|down\|none` |
//!
//! A `SUB` subscriber receives `MSG topic payload` for each publish. A
//! `SUBENV` subscriber receives the envelope the nodes exchange: the header
//! line `rfc6455-pubsub/1 NODE EPOCH SEQ topic`, a line break, the payload.
//! `NODE` is the publishing node (16 hex digits), `EPOCH` changes when it
//! restarts, and `SEQ` counts its publishes to the topic from 1: a jump
//! means publishes were lost (see below), and the client can resync.
//! Anything else gets `ERR reason` and changes nothing: an unknown or
//! malformed command, a topic name that is empty, holds a space or a
//! control character or is too long, a subscription past the
//! per-connection limit or the hub's topic limit, a publish to a topic with
//! no subscribers (on a single node), an unsubscribe from a topic not
//! subscribed. Binary messages get `ERR`, too.
//!
//! In a cluster, `PUB` answers `OK PUB topic N` (N: this node's
//! subscribers) once the publish is on its way to Redis, and `OK PUB topic
//! N LOCAL` when Redis is unreachable (only this node's subscribers get
//! it). Delivery across nodes is at most once (what is
//! published while a node is cut off from Redis is lost, and counted in
//! `lost` where it was missed), in order per publisher and topic, and never
//! twice. Each node subscribes on Redis (channel `PREFIX` + topic) to the
//! topics its own clients hold, and restores them when Redis comes back.
//!
//! Options (defaults in brackets): `--listen ADDR` [127.0.0.1:9101],
//! `--redis URL` [none: one node alone], `--redis-prefix P` [pubsub:],
//! `--node-id HEX` [random], `--max-topic-len N` [256],
//! `--max-topics-per-connection N` [64], `--max-topics N` [100000]. Each
//! message is framed once for all its subscribers on a node; a subscriber
//! that stops reading while the others keep up is closed with 1008, and a
//! publisher waits while subscribers are behind.
//!
//! On Ctrl-C or SIGTERM it drains (`rfc6455::rt::drain`): new upgrades get
//! 503, and the clients are closed with 1001 over five seconds.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
use rfc6455::rt::hub::{Forwarded, HubConfig, Member};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Error, Message, PreparedMessage, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

pub mod cluster;
pub mod envelope;
pub mod redis_broker;

use cluster::{Form, Node, Published};
use envelope::Origin;

/// Any error `run` reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line.
struct Options {
    listen: String,
    redis: Option<String>,
    prefix: String,
    node_id: Option<u64>,
    hub: HubConfig,
}

/// The server: options from the command line, then serving until Ctrl-C or
/// SIGTERM drains it.
///
/// # Errors
///
/// A bad option, a listener that cannot bind, Redis unreachable at start.
pub async fn run() -> Result<(), BoxError> {
    let options = options()?;
    let listener = TcpListener::bind(&options.listen).await?;
    eprintln!("pubsub: listening on ws://{}", listener.local_addr()?);
    let node = node(&options).await?;
    let drain = Drain::new(DrainConfig::default());
    let report = drain
        .serve_until(accept(&listener, &drain, &node), shutdown_signal())
        .await?;
    eprintln!("pubsub: {report}; {}", node.stats());
    Ok(())
}

/// This node: alone, or joined to the others through Redis.
async fn node(options: &Options) -> Result<Arc<Node>, BoxError> {
    // A process's RandomState is seeded afresh: a random id per start.
    let id = (options.node_id).unwrap_or_else(|| RandomState::new().hash_one(std::process::id()));
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64;
    let origin = Origin { node: id, epoch };
    let hub = options.hub.clone();
    let Some(url) = &options.redis else {
        return Ok(Arc::new(Node::new(hub, None, origin)));
    };
    // Messages arriving from Redis go to the node, made just below.
    let slot = Arc::new(OnceLock::<Weak<Node>>::new());
    let deliver = {
        let slot = slot.clone();
        move |topic: &str, bytes: &[u8]| {
            if let Some(node) = slot.get().and_then(Weak::upgrade) {
                node.receive(topic, bytes);
            }
        }
    };
    let broker = redis_broker::RedisBroker::connect(url, &options.prefix, deliver).await?;
    let node = Arc::new(Node::new(hub, Some(broker), origin));
    let _ = slot.set(Arc::downgrade(&node));
    eprintln!("pubsub: node {id:016x} epoch {epoch:016x} sharing topics through {url}");
    Ok(node)
}

/// Accepts clients, each a task the drain watches.
async fn accept(listener: &TcpListener, drain: &Drain, node: &Arc<Node>) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        let node = node.clone();
        let server = ServerBuilder::new().drain(drain);
        tokio::spawn(drain.watch(async move {
            if let Err(error) = serve_tcp(tcp, &server, &node).await {
                eprintln!("pubsub: connection ended: {error}");
            }
        }));
    }
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        listen: "127.0.0.1:9101".to_owned(),
        redis: None,
        prefix: "pubsub:".to_owned(),
        node_id: None,
        hub: HubConfig::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let hub = options.hub.clone();
        match flag.as_str() {
            "--listen" => options.listen = value,
            "--redis" => options.redis = Some(value),
            "--redis-prefix" => options.prefix = value,
            "--node-id" => options.node_id = Some(u64::from_str_radix(&value, 16)?),
            "--max-topic-len" => options.hub = hub.max_topic_len(value.parse()?),
            "--max-topics-per-connection" => {
                options.hub = hub.max_topics_per_member(value.parse()?);
            }
            "--max-topics" => options.hub = hub.max_topics(value.parse()?),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    Ok(options)
}

async fn serve_tcp(tcp: TcpStream, server: &ServerBuilder, node: &Node) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    serve(WebSocketStream::accept(tcp, server).await?, node).await
}

/// One client: its commands, and what is published to it.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    node: &Node,
) -> Result<(), Error> {
    let (mut writer, mut reader) = ws.split();
    let member = node.hub().join();
    // Ends with `true` when a reply could not be queued.
    let reading = async {
        while let Some(message) = reader.next().await {
            let reply = match message? {
                Message::Text(text) => command(node, &member, &text).await,
                Message::Binary(_) => "ERR commands are text".to_owned(),
                _ => continue,
            };
            if !member.send(&PreparedMessage::text(reply)) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let result = tokio::select! {
        result = reading => result,
        result = member.forward(&mut writer) => result.map(|end| {
            if let Forwarded::ClosedSlow(code) = end {
                eprintln!("pubsub: member {} too slow, closed with {code}", member.id());
            }
            false
        }),
    };
    node.leave(member).await;
    if let Ok(true) = result {
        // A dropped reply would leave the client unable to match the rest
        // to its commands: it is closed instead, and told why.
        // Commands that keep coming are read (and dropped) while the Close
        // waits behind the replies already on the connection.
        let close = writer.close(CloseCode::POLICY_VIOLATION, REPLIES_OVERFLOWED);
        let (closed, ()) = tokio::join!(close, async {
            while let Some(Ok(_)) = reader.next().await {}
        });
        closed?;
    }
    result.map(drop)
}

/// The reason of the Close a client gets when it sent commands faster than
/// it read their replies, past the member's queue limit.
pub const REPLIES_OVERFLOWED: &str = "replies overflowed: read them";

/// Why `topic` is not a topic name, if it is not: 1 to `max` bytes, no
/// spaces or control characters (they separate the words of commands and
/// envelope headers).
fn bad_topic(topic: &str, max: usize) -> Option<String> {
    if topic.is_empty() || topic.len() > max {
        Some(format!("ERR topic name must be 1 to {max} bytes"))
    } else if topic.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("ERR topic name holds a space or a control character".to_owned())
    } else {
        None
    }
}

/// Runs one command; the reply for its sender.
async fn command(node: &Node, member: &Member, line: &str) -> String {
    let max_topic_len = node.max_topic_len();
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "SUB" | "SUBENV" | "UNSUB" if rest.is_empty() || rest.contains(' ') => {
            format!("ERR usage: {verb} topic (one word)")
        }
        "SUB" | "SUBENV" | "UNSUB" => {
            if let Some(error) = bad_topic(rest, max_topic_len) {
                return error;
            }
            let form = match verb {
                "SUB" => Form::Plain,
                "SUBENV" => Form::Envelope,
                _ if node.unsubscribe(member, rest).await => return format!("OK UNSUB {rest}"),
                _ => return format!("ERR not subscribed to {rest}"),
            };
            match node.subscribe(member, rest, form).await {
                Ok(_) => format!("OK {verb} {rest}"),
                Err(error) => format!("ERR {error}"),
            }
        }
        "PUB" => {
            let Some((topic, payload)) = rest.split_once(' ').filter(|(t, _)| !t.is_empty()) else {
                return "ERR usage: PUB topic payload".to_owned();
            };
            if let Some(error) = bad_topic(topic, max_topic_len) {
                return error;
            }
            // A publisher waits while subscribers are behind.
            node.hub().ready().await;
            match node.publish(topic, payload) {
                Published {
                    delivered: 0,
                    shared: None,
                } => format!("ERR no subscribers for {topic}"),
                Published {
                    delivered,
                    shared: None | Some(true),
                } => format!("OK PUB {topic} {delivered}"),
                Published {
                    delivered,
                    shared: Some(false),
                } => format!("OK PUB {topic} {delivered} LOCAL"),
            }
        }
        "STATS" if rest.is_empty() => format!("OK STATS {}", node.stats()),
        _ => "ERR unknown command (SUB, SUBENV, UNSUB, PUB, STATS)".to_owned(),
    }
}
