//! The `pubsub` server as a cluster: three node processes, a real Redis,
//! and 300 WebSocket clients over loopback. Every publish once, in history
//! order, under load; then resumes and faults while publishes go on at
//! 500/s: a subscriber that resumes on another node after 3 s away, Redis
//! killed and restarted without its data, Redis frozen, a 40 MiB publish,
//! a node killed.
//!
//! Ignored by `cargo test`: `bash apps/pubsub/tests/run.sh` runs it, giving
//! `REDIS_SERVER` (a redis-server binary) and `PUBSUB_BIN` (the server,
//! built). Every process it starts is killed by process id when dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pubsub::wire;
use rfc6455::Message;
use rfc6455::rt::hub::Position;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

const NODES: usize = 3;
const CLIENTS_PER_NODE: usize = 100;
const TOPICS: u32 = 20;
/// Clients on each node that publish (the first ones).
const PUBLISHERS_PER_NODE: usize = 10;
const PUBLISHES: u32 = 30_000;
/// PUB commands a client has sent without a reply yet, at most.
const WINDOW: usize = 32;
/// Each publisher's pace in the fault scenarios: 30 publishers, 500
/// publishes/s in all.
const PACE: Duration = Duration::from_millis(60);
/// Subscribers that leave and resume in each resume scenario.
const RESUMERS: usize = 10;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} unset: run apps/pubsub/tests/run.sh"))
}

/// A port free now, below the kernel's ephemeral range: Redis restarts on
/// its port, and no outgoing connection may take it meanwhile.
fn free_port() -> u16 {
    let mut seed = RandomState::new().hash_one(std::process::id());
    loop {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let port = 20_000 + (seed >> 33) as u16 % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A process this test started; killed (by its id) when dropped.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis with no persistence, on `port`.
async fn start_redis(port: u16) -> Process {
    let child = Command::new(env("REDIS_SERVER"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    wait_listening(port, "redis").await;
    Process(child)
}

fn node_command(port: u16, redis: u16) -> Command {
    let mut command = Command::new(env("PUBSUB_BIN"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", &format!("redis://127.0.0.1:{redis}/")]);
    command
}

async fn start_node(port: u16, redis: u16) -> Process {
    let child = node_command(port, redis)
        .spawn()
        .expect("the pubsub server starts");
    wait_listening(port, "node").await;
    Process(child)
}

/// A publish as the test numbers them: publisher `p`'s `k`-th.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    publisher: u32,
    topic: u32,
}

/// What one client received.
#[derive(Default)]
struct Seen {
    /// Per publisher and topic, the numbers in arrival order.
    got: HashMap<Key, Vec<u32>>,
    /// Per topic, the positions of `MSGP` deliveries in arrival order.
    positions: HashMap<u32, Vec<Position>>,
    /// Texts that were none of the expected kinds.
    unexpected: Vec<String>,
    /// Why the connection ended, once it has.
    ended: Option<String>,
}

impl Seen {
    fn record(&mut self, text: &str) {
        let words: Vec<&str> = text.splitn(4, ' ').collect();
        match words[..] {
            ["MSG", topic, payload, ..] if self.publish(topic, &text[5 + topic.len()..]) => {
                let _ = payload;
                return;
            }
            ["MSGP", topic, at, payload] => {
                if let (Some(t), Some(at)) = (number(topic, "t"), wire::parse_position(at))
                    && self.publish(topic, payload)
                {
                    self.positions.entry(t).or_default().push(at);
                    return;
                }
            }
            _ => {}
        }
        self.unexpected.push(text.to_owned());
    }

    fn publish(&mut self, topic: &str, payload: &str) -> bool {
        let Some((p, k)) = payload.split_once(':') else {
            return false;
        };
        let (Some(topic), Some(publisher), Ok(k)) = (number(topic, "t"), number(p, "p"), k.parse())
        else {
            return false;
        };
        self.got
            .entry(Key { publisher, topic })
            .or_default()
            .push(k);
        true
    }
}

fn number(word: &str, prefix: &str) -> Option<u32> {
    word.strip_prefix(prefix)?.parse().ok()
}

/// What became of a client's publishes, from their replies.
#[derive(Default)]
struct Outcomes {
    /// Sent, not yet answered, in order.
    pending: VecDeque<(Key, u32)>,
    /// `OK PUB`: per key, (number, position).
    acked: HashMap<Key, Vec<(u32, Position)>>,
    /// `ERR publish refused`, and the first reason given.
    refused: Vec<(Key, u32)>,
    why: Option<String>,
}

/// One WebSocket client of a node, its reader and writer each a task.
struct Client {
    node: usize,
    out: mpsc::UnboundedSender<String>,
    replies: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    window: Arc<Semaphore>,
    outcomes: Arc<Mutex<Outcomes>>,
    seen: Arc<Mutex<Seen>>,
    /// The topics it holds, and whether with positions.
    topics: Vec<u32>,
    positioned: bool,
    tasks: [JoinHandle<()>; 2],
}

impl Client {
    async fn connect(node: usize, port: u16) -> Self {
        let url = format!("ws://127.0.0.1:{port}/");
        let (ws, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
        let (mut write, mut read) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
        let (reply, replies) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(WINDOW));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let writer = tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if write.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let (w, o, s) = (window.clone(), outcomes.clone(), seen.clone());
        let reader = tokio::spawn(async move {
            let end = loop {
                match read.next().await {
                    Some(Ok(Message::Text(text)))
                        if text.starts_with("OK PUB ") || text.starts_with("ERR publish") =>
                    {
                        let mut outcomes = o.lock().unwrap();
                        let (key, k) = outcomes.pending.pop_front().expect("a publish sent");
                        match (
                            text.rsplit(' ').next().and_then(wire::parse_position),
                            text.starts_with("OK"),
                        ) {
                            (Some(at), true) => {
                                outcomes.acked.entry(key).or_default().push((k, at))
                            }
                            _ => {
                                outcomes.refused.push((key, k));
                                outcomes.why.get_or_insert_with(|| text.to_string());
                            }
                        }
                        w.add_permits(1);
                    }
                    Some(Ok(Message::Text(text)))
                        if text.starts_with("OK ") || text.starts_with("ERR ") =>
                    {
                        let _ = reply.send(text.to_string());
                    }
                    Some(Ok(Message::Text(text))) => s.lock().unwrap().record(&text),
                    Some(Ok(Message::Close(Some(frame)))) => break format!("close {}", frame.code),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "closed".to_owned(),
                }
            };
            s.lock().unwrap().ended = Some(end);
        });
        Self {
            node,
            out,
            replies: tokio::sync::Mutex::new(replies),
            window,
            outcomes,
            seen,
            topics: Vec::new(),
            positioned: false,
            tasks: [writer, reader],
        }
    }

    /// Drops the connection at once, as a client that lost its network.
    fn disconnect(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.seen.lock().unwrap().ended = Some("disconnected".to_owned());
    }

    async fn ask(&self, command: &str) -> String {
        // One question at a time per client: replies come in order.
        let mut replies = self.replies.lock().await;
        self.out.send(command.to_owned()).unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(20), replies.recv());
        let reply = reply.await.expect("a reply within 20 s");
        let ended = || self.ended().unwrap_or_default();
        let head: String = command.chars().take(40).collect();
        reply.unwrap_or_else(|| panic!("no reply to {head}: {}", ended()))
    }

    async fn publish(&self, publisher: u32, topic: u32, k: u32) {
        self.window.acquire().await.unwrap().forget();
        let key = Key { publisher, topic };
        self.outcomes.lock().unwrap().pending.push_back((key, k));
        let _ = self.out.send(format!("PUB t{topic} p{publisher}:{k}"));
    }

    /// Waits for the replies to every publish sent.
    async fn published(&self) {
        let all = self.window.acquire_many(WINDOW as u32);
        let all = tokio::time::timeout(Duration::from_secs(60), all).await;
        drop(all.expect("publishes answered within 60 s"));
    }

    async fn stats(&self) -> HashMap<String, String> {
        let reply = self.ask("STATS").await;
        let fields = reply.strip_prefix("OK STATS ").expect("a STATS reply");
        (fields.split(' '))
            .filter_map(|field| field.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    fn take(&self) -> Seen {
        let mut seen = self.seen.lock().unwrap();
        let ended = seen.ended.take();
        let taken = std::mem::take(&mut *seen);
        seen.ended = ended;
        taken
    }

    fn ended(&self) -> Option<String> {
        self.seen.lock().unwrap().ended.clone()
    }

    /// The last position received on `topic`.
    fn last(&self, topic: u32) -> Option<Position> {
        self.seen
            .lock()
            .unwrap()
            .positions
            .get(&topic)?
            .last()
            .copied()
    }
}

fn counter(stats: &HashMap<String, String>, name: &str) -> u64 {
    stats[name].parse().unwrap()
}

/// Publisher `p`'s `k`-th publish goes to this topic: each publisher cycles
/// through all of them.
fn topic_of(publisher: u32, k: u32) -> u32 {
    (publisher + k) % TOPICS
}

/// The cluster: Redis, the nodes, their clients.
struct Cluster {
    redis: Mutex<Process>,
    redis_port: u16,
    ports: Vec<u16>,
    nodes: Vec<Process>,
    clients: Vec<Client>,
}

/// The two topics client `c` holds.
fn topics_of(c: u32) -> [u32; 2] {
    let first = c % TOPICS;
    let second = match (c * 7 + 3) % TOPICS {
        same if same == first => (first + 1) % TOPICS,
        other => other,
    };
    [first, second]
}

impl Cluster {
    async fn start() -> Self {
        let redis_port = free_port();
        let redis = start_redis(redis_port).await;
        let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for &port in &ports {
            nodes.push(start_node(port, redis_port).await);
        }
        let mut clients = Vec::new();
        for (node, &port) in ports.iter().enumerate() {
            for _ in 0..CLIENTS_PER_NODE {
                clients.push(Client::connect(node, port).await);
            }
        }
        let mut cluster = Self {
            redis: Mutex::new(redis),
            redis_port,
            ports,
            nodes,
            clients,
        };
        for node in 0..NODES {
            cluster.wait_broker(node, "up").await;
        }
        // Two topics each; odd clients take positions.
        for (c, client) in cluster.clients.iter_mut().enumerate() {
            let verb = if c % 2 == 1 { "SUBP" } else { "SUB" };
            client.topics = topics_of(c as u32).to_vec();
            client.positioned = c % 2 == 1;
            for topic in client.topics.clone() {
                let reply = client.ask(&format!("{verb} t{topic}")).await;
                assert_eq!(reply, format!("OK {verb} t{topic}"));
            }
        }
        cluster
    }

    /// The publishing clients: (publisher number, client).
    fn publishers(&self) -> impl Iterator<Item = (u32, &Client)> {
        (self.clients.iter().enumerate())
            .filter(|(c, _)| c % CLIENTS_PER_NODE < PUBLISHERS_PER_NODE)
            .map(|(c, client)| (c as u32, client))
    }

    /// A client still connected to `node` that does not publish (its
    /// replies never wait behind a publish's).
    fn any_client(&self, node: usize) -> &Client {
        (self.clients.iter().enumerate())
            .find(|(c, client)| {
                client.node == node
                    && c % CLIENTS_PER_NODE >= PUBLISHERS_PER_NODE
                    && client.ended().is_none()
            })
            .expect("a client")
            .1
    }

    async fn stats(&self, node: usize) -> HashMap<String, String> {
        self.any_client(node).stats().await
    }

    /// Waits until `node` reports its broker `state`; how long it took.
    async fn wait_broker(&self, node: usize, state: &str) -> Duration {
        let start = Instant::now();
        while self.stats(node).await["broker"] != state {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "node {node}: broker never {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }

    /// Every publish acknowledged since the last call, per topic, by
    /// offset (and how many were refused); clears the record.
    fn take_outcomes(&self) -> (Acked, usize) {
        let mut acked: Acked = BTreeMap::new();
        let mut refused = 0;
        for (_, client) in self.publishers() {
            let mut outcomes = client.outcomes.lock().unwrap();
            for (key, list) in outcomes.acked.drain() {
                for (k, at) in list {
                    acked.entry(key.topic).or_default().push((at, key, k));
                }
            }
            refused += std::mem::take(&mut outcomes.refused).len();
            if let Some(why) = outcomes.why.take() {
                eprintln!("refused: {why}");
            }
        }
        for list in acked.values_mut() {
            list.sort_by_key(|(at, _, _)| at.offset);
        }
        (acked, refused)
    }

    /// Waits until every live client of `nodes` has received `expected` of
    /// its topics (publisher -> how many of each topic).
    async fn wait_delivered(&self, nodes: &[usize], expected: &HashMap<Key, u32>) {
        let start = Instant::now();
        for client in
            (self.clients.iter()).filter(|c| nodes.contains(&c.node) && c.ended().is_none())
        {
            let want: usize = (expected.iter())
                .filter(|(key, _)| client.topics.contains(&key.topic))
                .map(|(_, &n)| n as usize)
                .sum();
            loop {
                let got: usize = client.seen.lock().unwrap().got.values().map(Vec::len).sum();
                if got >= want {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "client of node {} has {got} of {want}",
                    client.node
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Anything more would be a duplicate or a stray.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Publishers at `PACE` each until `stop`; then waits for every reply.
    async fn publish_paced(&self, stop: &AtomicBool, from: u32) {
        join_all(self.publishers().map(|(p, client)| async move {
            let mut k = from;
            let mut tick = tokio::time::interval(PACE);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                client.publish(p, topic_of(p, k), k).await;
                k += 1;
            }
            client.published().await;
        }))
        .await;
    }

    /// Checks what every live client received against what was
    /// acknowledged: each acknowledged publish of its topics exactly once,
    /// in order per publisher (refused ones at most once), and for clients
    /// with positions, each topic's positions rising without a gap within
    /// an epoch. Returns the deliveries checked.
    fn check_delivery(&self, acked: &Acked, epochs_may_change: bool) -> usize {
        let mut deliveries = 0;
        for client in self.clients.iter().filter(|c| c.ended().is_none()) {
            let seen = client.take();
            assert!(seen.unexpected.is_empty(), "{:?}", &seen.unexpected[..1]);
            deliveries += seen.got.values().map(Vec::len).sum::<usize>();
            for topic in &client.topics {
                let mut want: HashMap<Key, Vec<u32>> = HashMap::new();
                for (_, key, k) in acked.get(topic).into_iter().flatten() {
                    want.entry(*key).or_default().push(*k);
                }
                for (key, ks) in &mut want {
                    ks.sort_unstable();
                    let got = seen.got.get(key).cloned().unwrap_or_default();
                    assert!(rising(&got), "{key:?}: once each, in order");
                    // Refused publishes may have been appended: the
                    // acknowledged ones are all there.
                    let missing = ks.iter().filter(|k| got.binary_search(k).is_err()).count();
                    assert_eq!(missing, 0, "{key:?}: every acknowledged publish arrived");
                }
                if client.positioned {
                    let positions = &seen.positions[topic];
                    let mut changes = 0;
                    for pair in positions.windows(2) {
                        if pair[1].epoch != pair[0].epoch {
                            changes += 1;
                        } else {
                            assert_eq!(pair[1].offset, pair[0].offset + 1, "t{topic}: no gap");
                        }
                    }
                    assert!(changes <= usize::from(epochs_may_change));
                    // Each epoch's acknowledged positions from the first
                    // received on are all there, in order.
                    let first = positions.first().copied();
                    let acked_here: Vec<Position> = (acked.get(topic).into_iter().flatten())
                        .map(|(at, _, _)| *at)
                        .filter(|at| {
                            first.is_some_and(|f| at.epoch != f.epoch || at.offset >= f.offset)
                        })
                        .collect();
                    let mut epochs: Vec<u64> = acked_here.iter().map(|at| at.epoch).collect();
                    epochs.dedup();
                    for epoch in epochs {
                        let want: Vec<u64> = (acked_here.iter())
                            .filter(|at| at.epoch == epoch)
                            .map(|at| at.offset)
                            .collect();
                        let got: Vec<u64> = (positions.iter())
                            .filter(|at| {
                                at.epoch == epoch && want.binary_search(&at.offset).is_ok()
                            })
                            .map(|at| at.offset)
                            .collect();
                        assert_eq!(got, want, "t{topic}: every acknowledged position, in order");
                    }
                }
            }
            assert!(
                seen.got
                    .keys()
                    .all(|key| client.topics.contains(&key.topic))
            );
        }
        deliveries
    }
}

/// Acknowledged publishes per topic, by offset: (position, key, number).
type Acked = BTreeMap<u32, Vec<(Position, Key, u32)>>;

/// Each number once, rising.
fn rising(ks: &[u32]) -> bool {
    ks.windows(2).all(|pair| pair[0] < pair[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and the built server: run apps/pubsub/tests/run.sh"]
async fn a_redis_cluster_delivers_in_order_resumes_and_survives_faults() {
    let mut cluster = Cluster::start().await;
    subscriptions_follow_local_clients(&cluster).await;
    once_each_in_history_order_under_load(&cluster).await;
    garbage_on_a_channel_is_counted_and_dropped(&cluster).await;
    a_subscriber_resumes_on_another_node(&mut cluster).await;
    redis_restarting_without_its_data(&mut cluster).await;
    redis_frozen(&cluster).await;
    a_huge_publish_is_refused(&cluster).await;
    bad_limits_are_refused_at_start(&cluster).await;
    a_node_dying(&mut cluster).await;
}

/// A Redis connection for the test's own looks.
async fn redis(cluster: &Cluster) -> redis::aio::MultiplexedConnection {
    let url = format!("redis://127.0.0.1:{}/", cluster.redis_port);
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// How many nodes hold a Redis subscription to `topic`.
async fn redis_subscribers(cluster: &Cluster, topic: &str) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("pubsub:{topic}"))
        .query_async(&mut redis(cluster).await)
        .await
        .unwrap();
    count
}

/// Each node holds a Redis subscription to a topic exactly while one of its
/// own clients does.
async fn subscriptions_follow_local_clients(cluster: &Cluster) {
    for topic in 0..TOPICS {
        assert_eq!(
            redis_subscribers(cluster, &format!("t{topic}")).await,
            NODES as i64
        );
    }
    let (a, b) = (cluster.any_client(0), cluster.any_client(1));
    assert_eq!(redis_subscribers(cluster, "solo").await, 0);
    assert_eq!(a.ask("SUB solo").await, "OK SUB solo");
    assert_eq!(b.ask("SUBP solo").await, "OK SUBP solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 2);
    assert_eq!(a.ask("UNSUB solo").await, "OK UNSUB solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 1);
    assert_eq!(b.ask("UNSUB solo").await, "OK UNSUB solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 0);
}

/// 30 000 publishes from 30 clients on three nodes: every subscriber gets
/// exactly the publishes of its topics, each once, in order per publisher,
/// and subscribers with positions see every position of their topics.
async fn once_each_in_history_order_under_load(cluster: &Cluster) {
    let started = Instant::now();
    let publishers: Vec<_> = cluster.publishers().collect();
    let per_publisher = PUBLISHES / publishers.len() as u32;
    let mut expected = HashMap::new();
    let runs = publishers.iter().map(|&(p, client)| {
        for k in 0..per_publisher {
            let key = Key {
                publisher: p,
                topic: topic_of(p, k),
            };
            *expected.entry(key).or_insert(0) += 1;
        }
        async move {
            for k in 0..per_publisher {
                client.publish(p, topic_of(p, k), k).await;
            }
            client.published().await;
        }
    });
    join_all(runs).await;
    let elapsed = started.elapsed();
    cluster.wait_delivered(&[0, 1, 2], &expected).await;
    let (acked, refused) = cluster.take_outcomes();
    assert_eq!(refused, 0);
    assert_eq!(
        acked.values().map(Vec::len).sum::<usize>(),
        PUBLISHES as usize
    );
    let deliveries = cluster.check_delivery(&acked, false);
    for node in 0..NODES {
        let stats = cluster.stats(node).await;
        let published = u64::from(per_publisher) * PUBLISHERS_PER_NODE as u64;
        assert_eq!(counter(&stats, "published"), published, "{stats:?}");
        // Every topic has subscribers on every node.
        assert_eq!(
            counter(&stats, "received"),
            u64::from(PUBLISHES),
            "{stats:?}"
        );
        for name in [
            "publish_failed",
            "duplicates",
            "lost",
            "malformed",
            "filled",
        ] {
            assert_eq!(counter(&stats, name), 0, "{name}: {stats:?}");
        }
    }
    let bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("pubsub:{t0}:stream")
        .query_async(&mut redis(cluster).await)
        .await
        .unwrap();
    let length: i64 = redis::cmd("XLEN")
        .arg("pubsub:{t0}:stream")
        .query_async(&mut redis(cluster).await)
        .await
        .unwrap();
    eprintln!(
        "once each: {PUBLISHES} publishes in {elapsed:.1?}, {deliveries} deliveries checked; \
         history of one topic in Redis: {length} messages, {bytes} bytes"
    );
}

async fn join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    // Polled together in this task: the publishers share the window waits.
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in &mut pending {
            if let Some(future) = slot {
                if future.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    done = false;
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Bytes on a node's channel that are not a notification: counted, never
/// delivered.
async fn garbage_on_a_channel_is_counted_and_dropped(cluster: &Cluster) {
    let before: Vec<_> = all_stats(cluster).await;
    let mut redis = redis(cluster).await;
    for bytes in [&b"\xff\xfe garbage"[..], b"0 0 p1:1", b"", b"12 x"] {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("pubsub:t0")
            .arg(bytes)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(receivers, NODES as i64, "every node holds t0");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (node, before) in before.iter().enumerate() {
        let stats = cluster.stats(node).await;
        assert_eq!(
            counter(&stats, "malformed") - counter(before, "malformed"),
            4,
            "{stats:?}"
        );
    }
    for client in &cluster.clients {
        let seen = client.take();
        assert!(seen.got.is_empty() && seen.unexpected.is_empty());
    }
}

async fn all_stats(cluster: &Cluster) -> Vec<HashMap<String, String>> {
    let mut all = Vec::new();
    for node in 0..NODES {
        all.push(cluster.stats(node).await);
    }
    all
}

/// Subscribers with positions on `node` (not publishers), `RESUMERS` of
/// them: their indices.
fn resumers(cluster: &Cluster, node: usize) -> Vec<usize> {
    (cluster.clients.iter().enumerate())
        .filter(|(c, client)| {
            client.node == node
                && client.positioned
                && c % CLIENTS_PER_NODE >= PUBLISHERS_PER_NODE
                && client.ended().is_none()
        })
        .map(|(c, _)| c)
        .take(RESUMERS)
        .collect()
}

/// Clients `leaving` disconnect; after `away`, each comes back on `node`
/// and resumes each of its topics from the last position it received.
/// Returns the new clients, the resume replies, and how long the resumes
/// took (connect to last reply).
async fn leave_and_resume(
    cluster: &Cluster,
    leaving: &[usize],
    away: Duration,
    node: usize,
) -> (Vec<(usize, Client)>, Vec<String>, Duration) {
    let mut lasts = Vec::new();
    for &c in leaving {
        let client = &cluster.clients[c];
        client.disconnect();
        let lasts_of: Vec<(u32, Position)> = (client.topics.iter())
            .map(|&t| (t, client.last(t).expect("a position received")))
            .collect();
        lasts.push((c, lasts_of));
    }
    tokio::time::sleep(away).await;
    let started = Instant::now();
    let mut back = Vec::new();
    let mut replies = Vec::new();
    for (c, lasts_of) in lasts {
        let mut client = Client::connect(node, cluster.ports[node]).await;
        client.topics = cluster.clients[c].topics.clone();
        client.positioned = true;
        // The positions received before leaving, so the check covers the
        // whole run.
        let (before, got_before) = {
            let mut old = cluster.clients[c].seen.lock().unwrap();
            (
                std::mem::take(&mut old.positions),
                std::mem::take(&mut old.got),
            )
        };
        for (t, at) in &lasts_of {
            let reply = client
                .ask(&format!("SUBP t{t} {}", wire::position(*at)))
                .await;
            replies.push(reply);
        }
        let mut seen = client.seen.lock().unwrap();
        for (t, mut list) in before {
            list.extend(seen.positions.remove(&t).unwrap_or_default());
            seen.positions.insert(t, list);
        }
        for (key, mut list) in got_before {
            list.extend(seen.got.remove(&key).unwrap_or_default());
            seen.got.insert(key, list);
        }
        drop(seen);
        back.push((c, client));
    }
    (back, replies, started.elapsed())
}

/// While publishes go on at 500/s, subscribers with positions drop their
/// connections, stay away 3 s, and resume on another node from their last
/// positions: each gets exactly the publishes it missed, then the live
/// ones, in order, none twice.
async fn a_subscriber_resumes_on_another_node(cluster: &mut Cluster) {
    let stop = AtomicBool::new(false);
    let leaving = resumers(cluster, 0);
    let (publishing, resumed) = tokio::join!(cluster.publish_paced(&stop, 0), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let resumed = leave_and_resume(cluster, &leaving, Duration::from_secs(3), 1).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        resumed
    });
    let () = publishing;
    let (back, replies, took) = resumed;
    let mut replayed = 0;
    for reply in &replies {
        let n = reply.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
        assert!(reply.contains(" RECOVERED "), "{reply}");
        replayed += n;
    }
    for (c, client) in back {
        cluster.clients[c] = client;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked, refused) = cluster.take_outcomes();
    assert_eq!(refused, 0);
    cluster.check_delivery(&acked, false);
    eprintln!(
        "resume on another node: {} subscribers back after 3 s, {} topics resumed, {replayed} \
         publishes replayed, all resumes in {took:.1?} ({:.0} replayed/s)",
        leaving.len(),
        replies.len(),
        replayed as f64 / took.as_secs_f64()
    );
}

/// Publishes go on at 500/s while Redis is killed, stays down 3 s, and
/// starts again empty: publishes wait and are appended when it is back
/// (every acknowledged one arrives, in order); subscribers that were away
/// are told their positions are of an old epoch.
async fn redis_restarting_without_its_data(cluster: &mut Cluster) {
    let before = all_stats(cluster).await;
    let stop = AtomicBool::new(false);
    let leaving = resumers(cluster, 1);
    let max_queued = AtomicU64::new(0);
    let (publishing, (back, resumed)) =
        tokio::join!(cluster.publish_paced(&stop, 1_000_000), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let first = &cluster.clients[leaving[0]];
            let old_epoch = first.last(first.topics[0]).expect("a position").epoch;
            for &c in &leaving {
                cluster.clients[c].disconnect();
            }
            cluster.redis.lock().unwrap().kill();
            let down = Instant::now();
            for node in 0..NODES {
                cluster.wait_broker(node, "down").await;
            }
            while down.elapsed() < Duration::from_secs(3) {
                for node in 0..NODES {
                    let queued = counter(&cluster.stats(node).await, "queued");
                    max_queued.fetch_max(queued, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let fresh = start_redis(cluster.redis_port).await;
            *cluster.redis.lock().unwrap() = fresh;
            let restarted = Instant::now();
            let mut back = Vec::new();
            for node in 0..NODES {
                cluster.wait_broker(node, "up").await;
                back.push(restarted.elapsed());
            }
            // The ones that left before the kill come back on node 2.
            let mut replies = Vec::new();
            let mut clients = Vec::new();
            for &c in &leaving {
                let client = Client::connect(2, cluster.ports[2]).await;
                for t in &cluster.clients[c].topics {
                    let last = cluster.clients[c].last(*t).unwrap();
                    replies.push(
                        client
                            .ask(&format!("SUBP t{t} {}", wire::position(last)))
                            .await,
                    );
                }
                clients.push(client);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.store(true, Ordering::Relaxed);
            (back, (replies, clients, old_epoch))
        });
    let () = publishing;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (replies, clients, old_epoch) = resumed;
    for reply in &replies {
        let words: Vec<&str> = reply.split(' ').collect();
        assert_eq!(words[3], "UNRECOVERABLE", "{reply}");
        let earliest = wire::parse_position(words[4]).unwrap();
        assert_ne!(earliest.epoch, old_epoch, "told the new epoch");
        assert_eq!(earliest.offset, 1, "from its start");
    }
    drop(clients);
    for &c in &leaving {
        // Gone: not checked below.
        cluster.clients[c].seen.lock().unwrap().ended = Some("left".to_owned());
    }
    let (acked, refused) = cluster.take_outcomes();
    let acked_count: usize = acked.values().map(Vec::len).sum();
    let deliveries = cluster.check_delivery(&acked, true);
    let mut report = Vec::new();
    for node in 0..NODES {
        let stats = cluster.stats(node).await;
        let delta = |name| counter(&stats, name) - counter(&before[node], name);
        // Notifications that arrive after a fill read them are repeats,
        // dropped: no subscriber got one twice (checked above).
        report.push(format!(
            "node {node} back {:.1?} after the restart, filled {}, repeats dropped {}, lost {}",
            back[node],
            delta("filled"),
            delta("duplicates"),
            delta("lost")
        ));
    }
    eprintln!(
        "redis restart: {acked_count} publishes acknowledged and all delivered ({deliveries} \
         deliveries), {refused} refused, up to {} waiting on a node; {} resumes told the new \
         epoch; {}",
        max_queued.load(Ordering::Relaxed),
        replies.len(),
        report.join("; ")
    );
    for &wait in &back {
        assert!(
            wait < Duration::from_secs(10),
            "resubscribed within seconds"
        );
    }
}

/// Publishes go on at 500/s while Redis is frozen (SIGSTOP) for 4 s:
/// every acknowledged publish arrives, in order; the calls that timed out
/// were refused, never acknowledged and lost.
async fn redis_frozen(cluster: &Cluster) {
    let stop = AtomicBool::new(false);
    let (publishing, ()) = tokio::join!(cluster.publish_paced(&stop, 2_000_000), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.redis.lock().unwrap().signal("STOP");
        tokio::time::sleep(Duration::from_secs(4)).await;
        cluster.redis.lock().unwrap().signal("CONT");
        for node in 0..NODES {
            cluster.wait_broker(node, "up").await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
    });
    let () = publishing;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked, refused) = cluster.take_outcomes();
    let acked_count: usize = acked.values().map(Vec::len).sum();
    cluster.check_delivery(&acked, false);
    eprintln!(
        "redis frozen 4 s: {acked_count} publishes acknowledged and all delivered, {refused} refused"
    );
}

/// A 40 MiB publish is refused at the door (Close 1009, before it is
/// read); the traffic of every topic goes on undisturbed.
async fn a_huge_publish_is_refused(cluster: &Cluster) {
    let stop = AtomicBool::new(false);
    let (publishing, ended) = tokio::join!(cluster.publish_paced(&stop, 3_000_000), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sender = Client::connect(0, cluster.ports[0]).await;
        let _ = sender.out.send(format!("PUB t0 {}", "x".repeat(40 << 20)));
        let start = Instant::now();
        while sender.ended().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "closed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        sender.ended()
    });
    let () = publishing;
    let ended = ended.unwrap_or_default();
    assert!(ended.contains("1009"), "{ended}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, refused) = cluster.take_outcomes();
    assert_eq!(refused, 0);
    let deliveries = cluster.check_delivery(&acked, false);
    eprintln!("40 MiB publish: closed with 1009; {deliveries} other deliveries went on");
}

/// Limits Redis or the protocol cannot honour stop the server at start,
/// with the reason.
async fn bad_limits_are_refused_at_start(cluster: &Cluster) {
    for (flag, value, reason) in [
        ("--max-publish", "16000000", "client-output-buffer-limit"),
        ("--max-topic-len", "2000", "--max-topic-len 2000: 1 to 1024"),
    ] {
        let output = node_command(free_port(), cluster.redis_port)
            .args([flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value}: {stderr}");
        assert!(stderr.contains(reason), "{flag} {value}: {stderr}");
    }
}

/// Node 0 is killed: its clients lose their connections; the other nodes'
/// clients see no error and keep publishing to each other.
async fn a_node_dying(cluster: &mut Cluster) {
    let live: Vec<bool> = cluster
        .clients
        .iter()
        .map(|c| c.ended().is_none())
        .collect();
    cluster.nodes[0].kill();
    let start = Instant::now();
    for client in cluster.clients.iter().filter(|c| c.node == 0) {
        while client.ended().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "node 0's clients"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let survivors: Vec<_> = cluster.publishers().filter(|(_, c)| c.node != 0).collect();
    let mut expected = HashMap::new();
    let runs = survivors.iter().map(|&(p, client)| {
        for k in 0..200 {
            *expected
                .entry(Key {
                    publisher: p,
                    topic: topic_of(p, k),
                })
                .or_insert(0) += 1;
        }
        async move {
            for k in 0..200 {
                client.publish(p, topic_of(p, k), k).await;
            }
            client.published().await;
        }
    });
    join_all(runs).await;
    cluster.wait_delivered(&[1, 2], &expected).await;
    let (acked, refused) = cluster.take_outcomes();
    assert_eq!(refused, 0);
    for (client, _) in (cluster.clients.iter().zip(live)).filter(|(c, live)| c.node != 0 && *live) {
        assert_eq!(
            client.ended(),
            None,
            "the other nodes' clients see no error"
        );
    }
    cluster.check_delivery(&acked, false);
    assert_eq!(cluster.stats(1).await["broker"], "up");
    assert_eq!(
        redis_subscribers(cluster, "t0").await,
        NODES as i64 - 1,
        "the dead node's subscriptions went with its connection"
    );
    eprintln!("node killed: its 100 clients disconnected, the other nodes' 200 unaffected");
}

// Benchmarks (`bash apps/pubsub/tests/run.sh bench`, release build): figures in
// benches/README.md. Each round runs the cluster and its comparison side by
// side in one process, alternating, as the machine is noisy.

const ROUNDS: usize = 3;

/// A node with no broker: the one-machine comparison.
async fn start_single(port: u16) -> Process {
    let child = Command::new(env("PUBSUB_BIN"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("the pubsub server starts");
    wait_listening(port, "node").await;
    Process(child)
}

/// A subscriber to `topic` that hands each delivery's text to `on`; returns
/// once subscribed.
async fn subscriber(
    port: u16,
    topic: &str,
    on: impl Fn(&str) + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    let url = format!("ws://127.0.0.1:{port}/");
    let (mut ws, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
    ws.send(Message::text(format!("SUB {topic}")))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Text(text))) if text.starts_with("OK SUB") => {}
        other => panic!("{other:?}"),
    }
    tokio::spawn(async move {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => on(&text),
                Some(Ok(_)) => {}
                Some(Err(error)) => return error.to_string(),
                None => return "closed".to_owned(),
            }
        }
    })
}

/// A publisher sending `PUB topic payload` as fast as its replies come
/// back (`WINDOW` unanswered at most) until `stop`.
async fn flood(port: u16, topic: String, payload: String, stop: Arc<AtomicBool>) {
    let url = format!("ws://127.0.0.1:{port}/");
    let (ws, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
    let (mut write, mut read) = ws.split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let w = window.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = read.next().await {
            if let Message::Text(text) = message
                && text.starts_with("OK PUB")
            {
                w.add_permits(1);
            }
        }
    });
    let command = format!("PUB {topic} {payload}");
    while !stop.load(Ordering::Relaxed) {
        window.acquire().await.unwrap().forget();
        write.send(Message::text(command.as_str())).await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), window.acquire_many(WINDOW as u32)).await;
    reader.abort();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Publish-to-receive latency from a node's client to a subscriber on the
/// other node, beside a subscriber on the publisher's node; one publish
/// every 2 ms (64-byte payload, a timestamp).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run apps/pubsub/tests/run.sh bench"]
async fn bench_cross_node_latency() {
    let redis_port = free_port();
    let _redis = start_redis(redis_port).await;
    let (a, b) = (free_port(), free_port());
    let _nodes = [
        start_node(a, redis_port).await,
        start_node(b, redis_port).await,
    ];
    let base = Instant::now();
    let samples = |port| {
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        let on = move |text: &str| {
            let sent = text
                .rsplit(' ')
                .next()
                .and_then(|n| n.trim_start_matches('0').parse().ok());
            if let Some(nanos) = sent {
                let at = base + Duration::from_nanos(nanos);
                keep.lock().unwrap().push(at.elapsed());
            }
        };
        (got, subscriber(port, "lat", on))
    };
    let (remote, remote_task) = samples(b);
    let _remote_task = remote_task.await;
    let (local, local_task) = samples(a);
    let _local_task = local_task.await;
    let url = format!("ws://127.0.0.1:{a}/");
    let (publisher, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
    let (mut write, mut read) = publisher.split();
    tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
    for round in 1..=ROUNDS {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        for _ in 0..2_500 {
            tick.tick().await;
            let nanos = base.elapsed().as_nanos();
            write
                .send(Message::text(format!("PUB lat {nanos:064}")))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut line = format!("latency round {round}:");
        for (name, got) in [("cross-node", &remote), ("same node", &local)] {
            let mut got = std::mem::take(&mut *got.lock().unwrap());
            got.sort();
            line += &format!(
                " {name} n={} p50={:.0?} p99={:.0?} p99.9={:.0?};",
                got.len(),
                percentile(&got, 0.5),
                percentile(&got, 0.99),
                percentile(&got, 0.999)
            );
        }
        eprintln!("{line}");
    }
}

/// Redis's own PUBLISH rate for `payload` bytes with two subscribers
/// (redis-cli), from redis-benchmark: 8 connections, 32 commands pipelined.
fn redis_publish_rate(payload: usize) -> f64 {
    let port = free_port();
    let server = Command::new(env("REDIS_SERVER"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Process(server);
    std::thread::sleep(Duration::from_millis(300));
    let tool = |name| env("REDIS_SERVER").replace("redis-server", name);
    let listeners: Vec<_> = (0..2)
        .map(|_| {
            let child = Command::new(tool("redis-cli"))
                .args(["-p", &port.to_string(), "subscribe", "bench"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            Process(child)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(tool("redis-benchmark"))
        .args([
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "400000",
            "-c",
            "8",
            "-P",
            "32",
        ])
        .args(["PUBLISH", "bench", &"x".repeat(payload)])
        .output()
        .unwrap();
    drop(listeners);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rate = (text.split_whitespace())
        .find_map(|word| word.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(rate > 0.0, "redis-benchmark said: {text}");
    rate
}

/// CPU time process `pid` has used, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after ") ".
    (fields.get(11..13).unwrap_or_default().iter())
        .filter_map(|field| field.parse::<u64>().ok())
        .sum()
}

/// Publishers flooding `payload` (each `(port, topic)` one publisher) for
/// 5 s after a 1 s warm-up: deliveries/s counted by `delivered`, the share
/// and the share of one core process `busy` used meanwhile.
async fn measure(
    publishers: &[(u16, String)],
    payload: &str,
    delivered: &AtomicU64,
    busy: u32,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = (publishers.iter())
        .map(|(port, topic)| {
            let flood = flood(*port, topic.clone(), payload.to_owned(), stop.clone());
            tokio::spawn(flood)
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (start, from, ticks) = (
        Instant::now(),
        delivered.load(Ordering::Relaxed),
        cpu_ticks(busy),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seconds = start.elapsed().as_secs_f64();
    let rate = (delivered.load(Ordering::Relaxed) - from) as f64 / seconds;
    let cpu = cpu_ticks(busy).saturating_sub(ticks) as f64 / 100.0 / seconds;
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        flood.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    (rate, cpu)
}

/// A counting subscriber's callback.
fn count(delivered: &Arc<AtomicU64>) -> impl Fn(&str) + Send + 'static {
    let delivered = delivered.clone();
    move |_| {
        delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Redis, two nodes on it and one node alone (in that order); the nodes'
/// ports and the lone node's.
async fn bench_setup() -> (Vec<Process>, [u16; 2], u16) {
    let redis_port = free_port();
    let ports = [free_port(), free_port()];
    let single = free_port();
    let processes = vec![
        start_redis(redis_port).await,
        start_node(ports[0], redis_port).await,
        start_node(ports[1], redis_port).await,
        start_single(single).await,
    ];
    (processes, ports, single)
}

/// One topic, 1 000 subscribers on each of two nodes, 1 KiB publishes from
/// four clients on each node as fast as replies come, for 5 s; beside the
/// same 2 000 subscribers and eight publishers on one node alone, and
/// Redis's own PUBLISH rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run apps/pubsub/tests/run.sh bench"]
async fn bench_fanout_throughput() {
    const SUBSCRIBERS: usize = 1_000;
    let (processes, ports, single) = bench_setup().await;
    let (redis, alone_pid) = (processes[0].0.id(), processes[3].0.id());
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for port in [ports[0], ports[1], single, single] {
        for _ in 0..SUBSCRIBERS {
            tasks.push(subscriber(port, "fan", count(&delivered)).await);
        }
    }
    let payload = "x".repeat(1024);
    let publishers = |ports: &[u16]| -> Vec<(u16, String)> {
        let per_node = 8 / ports.len();
        (ports.iter())
            .flat_map(|&port| (0..per_node).map(move |_| (port, "fan".to_owned())))
            .collect()
    };
    let subscribers = (2 * SUBSCRIBERS) as f64;
    for round in 1..=ROUNDS {
        let (cluster, redis_cpu) = measure(&publishers(&ports), &payload, &delivered, redis).await;
        let (alone, alone_cpu) =
            measure(&publishers(&[single]), &payload, &delivered, alone_pid).await;
        let ceiling = tokio::task::spawn_blocking(|| redis_publish_rate(1100))
            .await
            .unwrap();
        eprintln!(
            "fan-out round {round}: 2 nodes {cluster:.0} deliveries/s ({:.0} publishes/s, \
             Redis {:.0}% of a core); 1 node {alone:.0} deliveries/s ({:.0} publishes/s, \
             the node {:.0}% of a core); redis-benchmark PUBLISH 1 KiB: {ceiling:.0}/s \
             (cluster at {:.1}%)",
            cluster / subscribers,
            100.0 * redis_cpu,
            alone / subscribers,
            100.0 * alone_cpu,
            100.0 * cluster / subscribers / ceiling,
        );
    }
    let ended = tasks.iter().filter(|task| task.is_finished()).count();
    eprintln!("subscribers closed during the runs: {ended}");
}

/// The broker's share: 16 topics, one subscriber of each on each node,
/// eight publishers on each node (one topic each) flooding 64-byte
/// publishes; each publish crosses Redis once. Beside one node alone with
/// the same clients, and Redis's own PUBLISH rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run apps/pubsub/tests/run.sh bench"]
async fn bench_publish_rate() {
    let (processes, ports, single) = bench_setup().await;
    let redis = processes[0].0.id();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for topic in 0..16 {
        for port in [ports[0], ports[1], single, single] {
            tasks.push(subscriber(port, &format!("r{topic}"), count(&delivered)).await);
        }
    }
    let payload = "x".repeat(64);
    let publishers = |ports: &[u16]| -> Vec<(u16, String)> {
        let per_node = 16 / ports.len();
        (ports.iter().enumerate())
            .flat_map(|(n, &port)| {
                (0..per_node).map(move |i| (port, format!("r{}", n * per_node + i)))
            })
            .collect()
    };
    for round in 1..=ROUNDS {
        let (cluster, redis_cpu) = measure(&publishers(&ports), &payload, &delivered, redis).await;
        let (alone, _) = measure(&publishers(&[single]), &payload, &delivered, redis).await;
        let ceiling = tokio::task::spawn_blocking(|| redis_publish_rate(140))
            .await
            .unwrap();
        eprintln!(
            "publish rate round {round}: 2 nodes {:.0} publishes/s through Redis (Redis {:.0}% \
             of a core); 1 node {:.0} publishes/s; redis-benchmark PUBLISH 140 B: {ceiling:.0}/s \
             (cluster at {:.1}%)",
            cluster / 2.0,
            100.0 * redis_cpu,
            alone / 2.0,
            100.0 * cluster / 2.0 / ceiling,
        );
    }
    let ended = tasks.iter().filter(|task| task.is_finished()).count();
    eprintln!("subscribers closed during the runs: {ended}");
}
