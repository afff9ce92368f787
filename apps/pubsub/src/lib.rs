//! A small topic server on the hub: clients subscribe to topics and publish
//! to them with text commands, and a client that was away resumes where it
//! left off. Started with `--redis`, several of them form one logical
//! server through Redis, which keeps each topic's history.
//!
//! ```text
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9101
//! cargo run --example client -- ws://127.0.0.1:9101/
//! ```
//!
//! A two-node cluster (a publish on either reaches the subscribers on
//! both; a client may resume on either):
//!
//! ```text
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9101 --redis redis://127.0.0.1:6379
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9102 --redis redis://127.0.0.1:6379
//! ```
//!
//! Commands, one per text message (names are case-sensitive); `POS` is a
//! position, `EPOCH:OFFSET` (hex epoch, decimal offset):
//!
//! | command | reply |
//! | --- | --- |
//! | `SUB topic` | `OK SUB topic` |
//! | `SUBP topic` | `OK SUBP topic` |
//! | `SUBP topic POS` | `OK SUBP topic RECOVERED N` or `OK SUBP topic UNRECOVERABLE POS N` |
//! | `UNSUB topic` | `OK UNSUB topic` |
//! | `PUB topic payload` | `OK PUB topic POS` |
//! | `STATS` | `OK STATS published=N publish_failed=N received=N duplicates=N malformed=N filled=N lost=N queued=N broker=up\|down\|none` |
//!
//! Every message published to a topic takes the next position in the
//! topic's history: the offset rises by one, and the epoch changes when
//! the history's continuity is lost (a node alone restarted or forgot the
//! topic; Redis lost its data). A `SUB` subscriber receives `MSG topic
//! payload` for each publish; a `SUBP` subscriber receives `MSGP topic POS
//! payload`. `SUBP topic POS` resumes after `POS`, the last position the
//! client received: the messages after it come first, then the live ones,
//! with none missing and none twice between, and the reply (after them)
//! says `RECOVERED N` (N replayed). When the history no longer reaches back
//! to `POS`, or `POS` is of another epoch, the reply is `UNRECOVERABLE POS
//! N`: the messages from that position (the oldest still held, in the
//! current epoch) were replayed, N of them, and the ones between were lost
//! to this client.
//!
//! Guarantees: every `OK PUB` means the message is in the topic's history
//! (alone: the node's; in a cluster: Redis's), at the position it names.
//! Each subscriber receives a topic's messages at most once, in position
//! order; a gap shows as a jump in position (`SUBP`), and a resume
//! recovers it while the history holds it. With Redis, a node that missed
//! notifications (its connection dropped) reads them back from the
//! history before delivering anything after them, and counts in `lost`
//! what the history no longer held. A publish made while Redis is
//! unreachable waits for it (up to ten seconds, bounded in count and
//! bytes) and is appended in order when it returns; one that cannot wait
//! is refused with `ERR`, never acknowledged. A timed-out call to Redis
//! (a frozen server) refuses its publishes too: they may have been
//! appended, but none is acknowledged and then lost.
//!
//! Anything else gets `ERR reason` and changes nothing: an unknown or
//! malformed command, a topic name that is empty, holds a space or a
//! control character or is too long, a payload over `--max-publish`, a
//! subscription past the per-connection limit or the hub's topic limit, a
//! `SUBP` to a topic already subscribed, a resume while Redis is
//! unreachable (try again), an unsubscribe from a topic not subscribed, a
//! publish to a topic with no subscribers and no history (on a single node
//! with `--history 0`). Binary messages get `ERR`, too.
//!
//! Options, with their defaults:
//!
//! | option | default |
//! | --- | --- |
//! | `--listen ADDR` | 127.0.0.1:9101 |
//! | `--redis URL` | none: one node alone |
//! | `--redis-prefix P` | `pubsub:` |
//! | `--history N` | 1000 messages kept per topic, in the node or in Redis |
//! | `--max-publish BYTES` | 256 KiB |
//! | `--max-topic-len N` | 256, at most 1024 |
//! | `--max-topics-per-connection N` | 64 |
//! | `--max-topics N` | 100000 |
//! | `--handoff PATH` | none: a successor started with the same PATH takes the listener and every client over (Linux) |
//!
//! At
//! start, a `--max-publish` that Redis's output buffer for subscribers
//! (`client-output-buffer-limit pubsub`) could not hold four of is
//! refused: a larger message would make Redis drop every node subscribed
//! to its topic. Each message is framed once for all its subscribers on a
//! node; a subscriber that stops reading while the others keep up is
//! closed with 1008, and a publisher waits while subscribers are behind.
//!
//! On Ctrl-C or SIGTERM it drains (`rfc6455::rt::drain`): new upgrades get
//! 503, and the clients are closed with 1001 over five seconds. With
//! `--handoff PATH` a new node started with the same PATH takes over
//! instead, each client with its subscriptions (see the `handoff` module).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
use rfc6455::rt::hub::{Forwarded, HistoryConfig, HubConfig, Member};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{CloseCode, Config, Error, Message, PreparedMessage, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub mod cluster;
pub mod follow;
mod handoff;
pub mod redis_broker;
pub mod wire;

use cluster::{Node, Resume};

/// Any error `run` reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line.
struct Options {
    listen: String,
    redis: Option<String>,
    prefix: String,
    history: usize,
    max_publish: usize,
    hub: HubConfig,
    handoff: Option<String>,
}

/// The longest topic name `--max-topic-len` may allow: a topic is part of
/// every delivery line, channel and key.
pub const MAX_TOPIC_LEN: usize = 1024;

/// The server: options from the command line, then serving until Ctrl-C or
/// SIGTERM drains it.
///
/// # Errors
///
/// A bad option, a listener that cannot bind, a `--max-publish` Redis
/// could not carry.
pub async fn run() -> Result<(), BoxError> {
    let options = options()?;
    let node = node(&options).await?;
    let drain = Drain::new(DrainConfig::default());
    if let Some(path) = &options.handoff {
        return handoff::run(path, &options.listen, &node, &drain).await;
    }
    let listener = TcpListener::bind(&options.listen).await?;
    eprintln!("pubsub: listening on ws://{}", listener.local_addr()?);
    let report = drain
        .serve_until(accept(&listener, &drain, &node, false), shutdown_signal())
        .await?;
    eprintln!("pubsub: {report}; {}", node.node.stats());
    Ok(())
}

/// A node and the limits its clients' commands are checked against.
pub struct Server {
    /// The node.
    pub node: Arc<Node>,
    /// The largest payload `PUB` takes.
    pub max_publish: usize,
}

impl Server {
    /// A server on `node` taking payloads up to `max_publish` bytes.
    pub fn new(node: Arc<Node>, max_publish: usize) -> Self {
        Self { node, max_publish }
    }

    /// The connections' limits: a message may be as long as a `PUB` of the
    /// longest topic and payload (at least 64 KiB); a longer one is refused
    /// with Close 1009 before it is read.
    pub fn limits(&self) -> Config {
        let longest = self.max_publish + self.node.hub().config().max_topic_len + "PUB  ".len();
        let longest = longest.max(64 << 10);
        Config::default()
            .max_frame_size(longest)
            .max_message_size(longest)
    }
}

/// What a cluster node's hub keeps per topic: the recent messages that
/// join a resume read from Redis to the live ones, which arrive within
/// the read's round trip. A resume the seam cannot join is reported
/// unrecoverable, never answered with a hole (`tests/cluster.rs`).
pub fn seam_history() -> HistoryConfig {
    HistoryConfig::default()
        .max_messages(256)
        .max_bytes(64 << 10)
        .max_age(Duration::from_secs(5))
}

/// This node: alone, or joined to the others through Redis.
async fn node(options: &Options) -> Result<Arc<Server>, BoxError> {
    let mut hub = options.hub.clone();
    // A subscriber's queue holds two of the largest messages at least.
    hub.queue_limit = hub.queue_limit.max(2 * options.max_publish);
    let Some(url) = &options.redis else {
        let kept = HistoryConfig::default()
            .max_messages(options.history)
            .max_bytes(hub.queue_limit / 2);
        let node = Node::new(hub.history(kept), None, options.history);
        return Ok(Arc::new(Server::new(Arc::new(node), options.max_publish)));
    };
    // Messages arriving from Redis go to the node, made just below.
    let slot = Arc::new(OnceLock::<Weak<Node>>::new());
    let (deliver, reconnected) = {
        let (a, b) = (slot.clone(), slot.clone());
        (
            move |topic: &str, bytes: &[u8]| {
                if let Some(node) = a.get().and_then(Weak::upgrade) {
                    node.receive(topic, bytes);
                }
            },
            move || {
                if let Some(node) = b.get().and_then(Weak::upgrade) {
                    node.resync();
                }
            },
        )
    };
    let broker = redis_broker::RedisBroker::connect(
        url,
        &options.prefix,
        options.history,
        deliver,
        reconnected,
    )
    .await?;
    if let Ok(Some(limit)) = broker.subscriber_buffer_limit().await
        && options.max_publish as u64 * 4 > limit
    {
        return Err(format!(
            "--max-publish {}: Redis drops a subscriber holding over {limit} bytes \
             (client-output-buffer-limit pubsub); use at most {}",
            options.max_publish,
            limit / 4
        )
        .into());
    }
    let node = Arc::new(Node::new(
        hub.history(seam_history()),
        Some(broker),
        options.history,
    ));
    let _ = slot.set(Arc::downgrade(&node));
    eprintln!("pubsub: sharing topics through {url}");
    Ok(Arc::new(Server::new(node, options.max_publish)))
}

/// Accepts clients, each a task the drain watches (and, `moving`, one a
/// handoff may move).
async fn accept(
    listener: &TcpListener,
    drain: &Drain,
    server: &Arc<Server>,
    moving: bool,
) -> std::io::Result<()> {
    let builder = ServerBuilder::new()
        .config(server.limits())
        .map_err(std::io::Error::other)?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let (server, drain) = (server.clone(), drain.clone());
        let builder = builder.clone().drain(&drain);
        tokio::spawn(drain.clone().watch(async move {
            if let Err(error) = serve_tcp(tcp, &builder, &server, moving.then_some(&drain)).await {
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
        history: 1000,
        max_publish: 256 << 10,
        hub: HubConfig::default(),
        handoff: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let hub = options.hub.clone();
        match flag.as_str() {
            "--listen" => options.listen = value,
            "--redis" => options.redis = Some(value),
            "--redis-prefix" => options.prefix = value,
            "--history" => options.history = value.parse()?,
            "--max-publish" => options.max_publish = value.parse()?,
            "--max-topic-len" => match value.parse()? {
                len @ 1..=MAX_TOPIC_LEN => options.hub = hub.max_topic_len(len),
                len => return Err(format!("--max-topic-len {len}: 1 to {MAX_TOPIC_LEN}").into()),
            },
            "--max-topics-per-connection" => {
                options.hub = hub.max_topics_per_member(value.parse()?);
            }
            "--max-topics" => options.hub = hub.max_topics(value.parse()?),
            "--handoff" => options.handoff = Some(value),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    Ok(options)
}

async fn serve_tcp(
    tcp: TcpStream,
    builder: &ServerBuilder,
    server: &Server,
    drain: Option<&Drain>,
) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let moving = drain.map(|drain| (drain, handoff::mover(drain)));
    // The stream goes straight into the call: a local would stay in this
    // future beside the one in `serve_member`'s.
    serve_member(
        WebSocketStream::accept(tcp, builder).await?,
        server,
        server.node.hub().join(),
        HashSet::new(),
        moving,
    )
    .await
}

/// A client's stream on its way to another process: `None` once it went,
/// else the stream back.
pub type Leaving<S> = Pin<Box<dyn Future<Output = Option<WebSocketStream<S>>> + Send>>;

/// Hands a client's stream over (`--handoff`) with its payload (its
/// subscriptions), beside the drain that asks for it.
pub type Mover<S> = Box<dyn FnMut(WebSocketStream<S>, Vec<u8>) -> Leaving<S> + Send>;

/// How a client's session ended.
enum Ending {
    /// The client or its connection is done.
    Done,
    /// A reply could not be queued.
    Overflowed,
    /// Its stream is asked for, by a handoff.
    Moving,
}

/// One client: its commands, and what is published to it.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    ws: WebSocketStream<S>,
    server: &Server,
) -> Result<(), Error> {
    let member = server.node.hub().join();
    serve_member(ws, server, member, HashSet::new(), None).await
}

/// One client joined to the node as `member` (`positioned`: its topics
/// with positions) until it leaves or, when the drain asks for its stream,
/// `moving` hands it over with its subscriptions.
async fn serve_member<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut ws: WebSocketStream<S>,
    server: &Server,
    member: Member,
    mut positioned: HashSet<String>,
    mut moving: Option<(&Drain, Mover<S>)>,
) -> Result<(), Error> {
    let node = &server.node;
    let (result, mut writer, mut reader) = loop {
        let (mut writer, mut reader) = ws.split();
        // Replies in command order: a `PUB` is queued at once and its reply
        // waits for the broker, while the next commands are read.
        let result = {
            let (answers, mut answered) = mpsc::channel::<Answer>(MAX_IN_FLIGHT);
            let positioned = &mut positioned;
            // `true`: the stream is asked for, between messages.
            let reading = async {
                // Owned: dropped when reading ends, however it ends, which
                // ends the replies once the due ones are out.
                let answers = answers;
                while let Some(message) = reader.next().await {
                    let answer = match message {
                        Ok(Message::Text(text)) => {
                            command(server, &member, &text, positioned).await
                        }
                        Ok(Message::Binary(_)) => ready("ERR commands are text".to_owned()),
                        Ok(_) => continue,
                        Err(Error::HandoffRequested) => return Ok(true),
                        Err(error) => return Err(error),
                    };
                    if answers.send(answer).await.is_err() {
                        break;
                    }
                }
                Ok::<bool, Error>(false)
            };
            // Ends with `true` when a reply could not be queued.
            let replying = async {
                while let Some(answer) = answered.recv().await {
                    if !member.send(&PreparedMessage::text(answer.await)) {
                        return true;
                    }
                }
                false
            };
            let (mut reading, mut replying) = (std::pin::pin!(reading), std::pin::pin!(replying));
            let session = async {
                tokio::select! {
                    overflowed = &mut replying => Ok(if overflowed { Ending::Overflowed } else { Ending::Done }),
                    read = &mut reading => {
                        let moving = read?;
                        // The client is done or going: the replies still due first.
                        Ok(match (replying.await, moving) {
                            (true, _) => Ending::Overflowed,
                            (false, true) => Ending::Moving,
                            (false, false) => Ending::Done,
                        })
                    }
                }
            };
            tokio::select! {
                result = session => result,
                result = member.forward(&mut writer) => result.map(|end| {
                    if let Forwarded::ClosedSlow(code) = end {
                        eprintln!("pubsub: member {} too slow, closed with {code}", member.id());
                    }
                    Ending::Done
                }),
            }
        };
        let Ok(Ending::Moving) = result else {
            break (result, writer, reader);
        };
        let Some((drain, hand_over)) = moving.as_mut() else {
            // Asked for with no way to go: stay.
            ws = reader
                .reunite(writer)
                .map_err(|_| Error::ConnectionClosed)?;
            continue;
        };
        // Forward until every client here stopped sending commands and
        // this one left its topics, then what is left.
        let until = async {
            drain.handoff_quiet().await;
            node.depart(&member, &positioned).await
        };
        let forwarded = member.forward_until(&mut writer, until).await;
        let (carried, whole) = match (forwarded, reader.reunite(writer)) {
            (Ok(carried), Ok(whole)) => (carried, whole),
            (Err(error), _) => {
                node.leave(member).await;
                return Err(error);
            }
            (Ok(_), Err(_)) => {
                node.leave(member).await;
                return Err(Error::ConnectionClosed);
            }
        };
        match hand_over(whole, wire::encode_carried(&carried)).await {
            // Gone, with its subscriptions, to the successor.
            None => {
                node.leave(member).await;
                return Ok(());
            }
            Some(back) => {
                node.arrive(&member, &carried).await;
                ws = back;
            }
        }
    };
    node.leave(member).await;
    if let Ok(Ending::Overflowed) = result {
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
/// spaces or control characters (they separate the words of commands).
fn bad_topic(topic: &str, max: usize) -> Option<String> {
    if topic.is_empty() || topic.len() > max {
        Some(format!("ERR topic name must be 1 to {max} bytes"))
    } else if topic.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("ERR topic name holds a space or a control character".to_owned())
    } else {
        None
    }
}

/// A command's reply, once it is known.
type Answer = Pin<Box<dyn Future<Output = String> + Send>>;

/// Commands read ahead of their replies, at most, per client.
const MAX_IN_FLIGHT: usize = 256;

fn ready(reply: String) -> Answer {
    Box::pin(std::future::ready(reply))
}

/// Runs one command; the reply for its sender. `positioned` keeps the
/// topics subscribed with positions (what a handoff carries).
async fn command(
    server: &Server,
    member: &Member,
    line: &str,
    positioned: &mut HashSet<String>,
) -> Answer {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    if verb == "PUB" {
        return publish(server, rest).await;
    }
    let reply = subscription(server, member, verb, rest).await;
    match verb {
        "SUBP" if reply.starts_with("OK") => {
            positioned.insert(rest.split(' ').next().unwrap_or(rest).to_owned());
        }
        "UNSUB" if reply.starts_with("OK") => {
            positioned.remove(rest);
        }
        _ => {}
    }
    ready(reply)
}

/// `PUB topic payload`: queued at once, answered once in the history.
async fn publish(server: &Server, rest: &str) -> Answer {
    let node = &server.node;
    let Some((topic, payload)) = rest.split_once(' ').filter(|(t, _)| !t.is_empty()) else {
        return ready("ERR usage: PUB topic payload".to_owned());
    };
    if let Some(error) = bad_topic(topic, node.hub().config().max_topic_len) {
        return ready(error);
    }
    if payload.len() > server.max_publish {
        return ready(format!(
            "ERR payload of {} bytes over the limit of {}",
            payload.len(),
            server.max_publish
        ));
    }
    // A publisher waits while subscribers are behind.
    node.hub().ready().await;
    let published = node.publish(topic, payload);
    let topic = topic.to_owned();
    Box::pin(async move {
        match published.await {
            Ok(Some(at)) => format!("OK PUB {topic} {}", wire::position(at)),
            Ok(None) => format!("ERR no subscribers for {topic}"),
            Err(error) => format!("ERR publish refused: {error}"),
        }
    })
}

/// The other commands; the reply.
async fn subscription(server: &Server, member: &Member, verb: &str, rest: &str) -> String {
    let node = &server.node;
    let max_topic_len = node.hub().config().max_topic_len;
    let words: Vec<&str> = rest.split(' ').collect();
    match verb {
        "SUB" | "UNSUB" if rest.is_empty() || words.len() > 1 => {
            format!("ERR usage: {verb} topic (one word)")
        }
        "SUBP" if rest.is_empty() || words.len() > 2 => {
            "ERR usage: SUBP topic [EPOCH:OFFSET]".to_owned()
        }
        "SUB" | "SUBP" | "UNSUB" => {
            let topic = words[0];
            if let Some(error) = bad_topic(topic, max_topic_len) {
                return error;
            }
            match verb {
                "SUB" => match node.subscribe(member, topic).await {
                    Ok(_) => format!("OK SUB {topic}"),
                    Err(error) => format!("ERR {error}"),
                },
                "SUBP" => {
                    let from = match words.get(1).map(|w| wire::parse_position(w)) {
                        None => None,
                        Some(Some(from)) => Some(from),
                        Some(None) => return "ERR a position is EPOCH:OFFSET".to_owned(),
                    };
                    match node.subscribe_from(member, topic, from).await {
                        Ok(Resume::Live) => format!("OK SUBP {topic}"),
                        Ok(Resume::Recovered(n)) => format!("OK SUBP {topic} RECOVERED {n}"),
                        Ok(Resume::Unrecoverable { earliest, replayed }) => format!(
                            "OK SUBP {topic} UNRECOVERABLE {} {replayed}",
                            wire::position(earliest)
                        ),
                        Err(error) => format!("ERR {error}"),
                    }
                }
                _ if node.unsubscribe(member, topic).await => format!("OK UNSUB {topic}"),
                _ => format!("ERR not subscribed to {topic}"),
            }
        }
        "STATS" if rest.is_empty() => format!("OK STATS {}", node.stats()),
        _ => "ERR unknown command (SUB, SUBP, UNSUB, PUB, STATS)".to_owned(),
    }
}
