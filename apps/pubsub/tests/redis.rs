//! The `pubsub` server as a cluster: two node processes, a real Redis, and
//! 400 WebSocket clients over loopback. Exactly once under load, then the
//! faults: Redis killed and restarted, a node killed, garbage on a channel.
//!
//! Ignored by `cargo test`: `bash apps/pubsub/tests/run.sh` runs it, giving
//! `REDIS_SERVER` (a redis-server binary) and `PUBSUB_BIN` (the server,
//! built). Every process it starts is killed by process id when dropped.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rfc6455::Message;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::sync::{Semaphore, mpsc};

const NODES: usize = 2;
const CLIENTS_PER_NODE: usize = 200;
const TOPICS: u32 = 20;
/// Clients on each node that publish (the first ones).
const PUBLISHERS_PER_NODE: usize = 20;
const PUBLISHES: u32 = 50_000;
/// PUB commands a client has sent without a reply yet, at most.
const WINDOW: usize = 32;

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

async fn start_node(port: u16, redis: u16) -> Process {
    let child = Command::new(env("PUBSUB_BIN"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", &format!("redis://127.0.0.1:{redis}/")])
        .spawn()
        .expect("the pubsub example starts");
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
    /// Envelope deliveries whose sequence number jumped.
    gaps: u64,
    /// Per (node, epoch, topic) of envelopes, the last sequence number.
    last_seq: HashMap<(String, String, u32), u64>,
    /// Texts that were none of the expected kinds.
    unexpected: Vec<String>,
    /// Why the connection ended, once it has.
    ended: Option<String>,
}

impl Seen {
    fn record(&mut self, text: &str) {
        if let Some(rest) = text.strip_prefix("MSG ") {
            if let Some((topic, payload)) = rest.split_once(' ')
                && self.publish(topic, payload)
            {
                return;
            }
        } else if let Some(rest) = text.strip_prefix("rfc6455-pubsub/1 ")
            && let Some((header, payload)) = rest.split_once('\n')
            && let [node, epoch, seq, topic] = header.split(' ').collect::<Vec<_>>()[..]
            && let (Ok(seq), Some(t)) = (seq.parse::<u64>(), number(topic, "t"))
            && self.publish(topic, payload)
        {
            let last = (self.last_seq)
                .entry((node.to_owned(), epoch.to_owned(), t))
                .or_insert_with(|| seq.saturating_sub(1));
            if seq > last.saturating_add(1) {
                self.gaps += 1;
            }
            *last = seq;
            return;
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

/// One WebSocket client of a node, its reader and writer each a task.
struct Client {
    node: usize,
    out: mpsc::UnboundedSender<String>,
    replies: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    window: Arc<Semaphore>,
    /// `OK PUB … LOCAL` replies: Redis did not take the publish.
    local_only: Arc<AtomicU64>,
    seen: Arc<Mutex<Seen>>,
    /// The topics it holds.
    topics: Vec<u32>,
}

impl Client {
    async fn connect(node: usize, port: u16) -> Self {
        let url = format!("ws://127.0.0.1:{port}/");
        let (ws, _) = WebSocketStream::connect(url.as_str()).await.unwrap();
        let (mut write, mut read) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
        let (reply, replies) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(WINDOW));
        let local_only = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Seen::default()));
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if write.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let (w, l, s) = (window.clone(), local_only.clone(), seen.clone());
        tokio::spawn(async move {
            let end = loop {
                match read.next().await {
                    Some(Ok(Message::Text(text))) if text.starts_with("OK PUB ") => {
                        if text.ends_with(" LOCAL") {
                            l.fetch_add(1, Ordering::Relaxed);
                        }
                        w.add_permits(1);
                    }
                    Some(Ok(Message::Text(text)))
                        if text.starts_with("OK ") || text.starts_with("ERR ") =>
                    {
                        let _ = reply.send(text.to_string());
                    }
                    Some(Ok(Message::Text(text))) => s.lock().unwrap().record(&text),
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
            local_only,
            seen,
            topics: Vec::new(),
        }
    }

    async fn ask(&self, command: &str) -> String {
        // One question at a time per client: replies come in order.
        let mut replies = self.replies.lock().await;
        self.out.send(command.to_owned()).unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), replies.recv());
        let reply = reply.await.expect("a reply within 10 s");
        reply.unwrap_or_else(|| panic!("no reply to {command}"))
    }

    async fn publish(&self, publisher: u32, topic: u32, k: u32) {
        self.window.acquire().await.unwrap().forget();
        let _ = self.out.send(format!("PUB t{topic} p{publisher}:{k}"));
    }

    /// Waits for the replies to every publish sent.
    async fn published(&self) {
        let all = self.window.acquire_many(WINDOW as u32);
        let all = tokio::time::timeout(Duration::from_secs(30), all).await;
        drop(all.expect("publishes answered within 30 s"));
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
    nodes: Vec<Process>,
    clients: Vec<Client>,
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
            nodes,
            clients,
        };
        for node in 0..NODES {
            cluster.wait_broker(node, "up").await;
        }
        // Two topics each; odd clients take envelopes.
        for (c, client) in cluster.clients.iter_mut().enumerate() {
            let c = c as u32;
            let first = c % TOPICS;
            let second = match (c * 7 + 3) % TOPICS {
                same if same == first => (first + 1) % TOPICS,
                other => other,
            };
            let verb = if c % 2 == 1 { "SUBENV" } else { "SUB" };
            for topic in [first, second] {
                let reply = client.ask(&format!("{verb} t{topic}")).await;
                assert_eq!(reply, format!("OK {verb} t{topic}"));
            }
            client.topics = vec![first, second];
        }
        cluster
    }

    /// The publishing clients: (publisher number, client).
    fn publishers(&self) -> impl Iterator<Item = (u32, &Client)> {
        (self.clients.iter().enumerate())
            .filter(|(c, _)| c % CLIENTS_PER_NODE < PUBLISHERS_PER_NODE)
            .map(|(c, client)| (c as u32, client))
    }

    /// A client still connected to `node`.
    fn any_client(&self, node: usize) -> &Client {
        (self.clients.iter())
            .find(|client| client.node == node)
            .expect("a client")
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

    /// Waits until every client of `nodes` has received `expected` of its
    /// topics (publisher -> how many of each topic).
    async fn wait_delivered(&self, nodes: &[usize], expected: &HashMap<Key, u32>) {
        let start = Instant::now();
        for client in self.clients.iter().filter(|c| nodes.contains(&c.node)) {
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
}

/// Each number once, rising.
fn rising(ks: &[u32]) -> bool {
    ks.windows(2).all(|pair| pair[0] < pair[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and the built server: run apps/pubsub/tests/run.sh"]
async fn a_redis_cluster_delivers_exactly_once_and_survives_faults() {
    let mut cluster = Cluster::start().await;
    subscriptions_follow_local_clients(&cluster).await;
    exactly_once_under_load(&cluster).await;
    garbage_on_a_channel_is_counted_and_dropped(&cluster).await;
    redis_restarting(&cluster).await;
    a_node_dying(&mut cluster).await;
}

/// How many nodes hold a Redis subscription to `topic`.
async fn redis_subscribers(cluster: &Cluster, topic: &str) -> i64 {
    let url = format!("redis://127.0.0.1:{}/", cluster.redis_port);
    let client = redis::Client::open(url).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("pubsub:{topic}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    count
}

/// Each node holds a Redis subscription to a topic exactly while one of its
/// own clients does.
async fn subscriptions_follow_local_clients(cluster: &Cluster) {
    for topic in 0..TOPICS {
        assert_eq!(redis_subscribers(cluster, &format!("t{topic}")).await, 2);
    }
    let (a, b) = (cluster.any_client(0), cluster.any_client(1));
    assert_eq!(redis_subscribers(cluster, "solo").await, 0);
    assert_eq!(a.ask("SUB solo").await, "OK SUB solo");
    assert_eq!(b.ask("SUBENV solo").await, "OK SUBENV solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 2);
    assert_eq!(a.ask("UNSUB solo").await, "OK UNSUB solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 1);
    assert_eq!(b.ask("UNSUB solo").await, "OK UNSUB solo");
    assert_eq!(redis_subscribers(cluster, "solo").await, 0);
}

/// 50 000 publishes from 40 clients on both nodes: every subscriber gets
/// exactly the publishes of its topics, each once, in order per publisher.
async fn exactly_once_under_load(cluster: &Cluster) {
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
    cluster.wait_delivered(&[0, 1], &expected).await;
    let mut deliveries = 0;
    for client in &cluster.clients {
        let seen = client.take();
        deliveries += seen.got.values().map(Vec::len).sum::<usize>();
        assert!(seen.unexpected.is_empty(), "{:?}", &seen.unexpected[..1]);
        assert_eq!(seen.gaps, 0);
        for (key, &count) in expected
            .iter()
            .filter(|(k, _)| client.topics.contains(&k.topic))
        {
            let ks = seen.got.get(key).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(ks.len(), count as usize, "{key:?}: each once");
            assert!(rising(ks), "{key:?}: in publish order");
        }
        assert!(
            seen.got
                .keys()
                .all(|key| client.topics.contains(&key.topic))
        );
        assert_eq!(client.local_only.load(Ordering::Relaxed), 0);
    }
    for node in 0..NODES {
        let stats = cluster.stats(node).await;
        let published = u64::from(per_publisher) * PUBLISHERS_PER_NODE as u64;
        assert_eq!(counter(&stats, "published"), published, "{stats:?}");
        // Every topic has subscribers on both nodes: each node's publishes
        // all came back to it, once, and were dropped there.
        assert_eq!(counter(&stats, "own"), published, "{stats:?}");
        assert_eq!(counter(&stats, "received"), published, "{stats:?}");
        for name in ["publish_failed", "duplicates", "lost", "malformed"] {
            assert_eq!(counter(&stats, name), 0, "{name}: {stats:?}");
        }
    }
    eprintln!(
        "exactly once: {PUBLISHES} publishes, {deliveries} deliveries checked, in {:.1?}",
        started.elapsed()
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

/// Bytes on a node's channel that are not an envelope, or an envelope on
/// another topic's channel: counted, never delivered.
async fn garbage_on_a_channel_is_counted_and_dropped(cluster: &Cluster) {
    let before: Vec<_> = all_stats(cluster).await;
    let url = format!("redis://127.0.0.1:{}/", cluster.redis_port);
    let client = redis::Client::open(url).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let wrong_topic = "rfc6455-pubsub/1 00000000000000ff 0000000000000001 1 t1\np999:1";
    for bytes in [&b"\xff\xfe garbage"[..], wrong_topic.as_bytes(), b""] {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("pubsub:t0")
            .arg(bytes)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(receivers, NODES as i64, "both nodes hold t0");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (node, before) in before.iter().enumerate() {
        let stats = cluster.stats(node).await;
        assert_eq!(
            counter(&stats, "malformed") - counter(before, "malformed"),
            3,
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

/// Publishes go on (one every 5 ms from each publisher) while Redis is
/// killed and started again: local delivery never stops, the nodes come
/// back on their own, and what was lost is counted, never delivered twice.
async fn redis_restarting(cluster: &Cluster) {
    let before = all_stats(cluster).await;
    let stop = AtomicBool::new(false);
    let sent: Mutex<HashMap<Key, Vec<u32>>> = Mutex::default();
    let publishing = join_all(cluster.publishers().map(|(p, client)| {
        let (stop, sent) = (&stop, &sent);
        async move {
            let mut k = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let topic = topic_of(p, k);
                client.publish(p, topic, k).await;
                let key = Key {
                    publisher: p,
                    topic,
                };
                sent.lock().unwrap().entry(key).or_default().push(k);
                k += 1;
            }
            client.published().await;
        }
    }));
    let faults = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.redis.lock().unwrap().kill();
        for node in 0..NODES {
            cluster.wait_broker(node, "down").await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let restarted = Instant::now();
        let fresh = start_redis(cluster.redis_port).await;
        *cluster.redis.lock().unwrap() = fresh;
        let mut back = Vec::new();
        for node in 0..NODES {
            cluster.wait_broker(node, "up").await;
            back.push(restarted.elapsed());
        }
        // Publishing goes on past the return, so every stream ends in
        // publishes that arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        back
    };
    let (back, ()) = tokio::join!(faults, publishing);
    let sent = sent.into_inner().unwrap();
    // Every reply is in; let the last deliveries land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut missing_at = [0u64; NODES];
    let mut gaps = 0;
    for (node, missing) in missing_at.iter_mut().enumerate() {
        // Per (publisher, topic), the numbers every subscriber here got:
        // all subscribers of a topic on one node see the same.
        let mut agreed: HashMap<Key, Vec<u32>> = HashMap::new();
        for client in cluster.clients.iter().filter(|c| c.node == node) {
            let seen = client.take();
            assert!(seen.unexpected.is_empty(), "{:?}", &seen.unexpected[..1]);
            assert!(client.ended().is_none());
            gaps += seen.gaps;
            for (key, ks) in sent
                .iter()
                .filter(|(k, _)| client.topics.contains(&k.topic))
            {
                let got = seen.got.get(key).cloned().unwrap_or_default();
                assert!(rising(&got), "{key:?}: never twice, in order");
                let local = key.publisher as usize / CLIENTS_PER_NODE == node;
                if local {
                    assert_eq!(&got, ks, "{key:?}: local delivery never stopped");
                } else {
                    assert_eq!(got.last(), ks.last(), "{key:?}: delivery resumed");
                }
                if let Some(other) = agreed.insert(*key, got.clone()) {
                    assert_eq!(other, got, "{key:?}: subscribers on a node agree");
                }
            }
        }
        for (key, got) in &agreed {
            if key.publisher as usize / CLIENTS_PER_NODE != node {
                *missing += (sent[key].len() - got.len()) as u64;
            }
        }
    }
    let mut report = Vec::new();
    for node in 0..NODES {
        let stats = cluster.stats(node).await;
        let delta = |name| counter(&stats, name) - counter(&before[node], name);
        assert_eq!(
            delta("lost"),
            missing_at[node],
            "node {node}: the lost counter accounts for what its subscribers missed"
        );
        assert_eq!(delta("duplicates"), 0);
        assert!(delta("publish_failed") > 0, "{stats:?}");
        report.push(format!(
            "node {node}: back {:.1?} after Redis, publish_failed {}, lost {}",
            back[node],
            delta("publish_failed"),
            delta("lost")
        ));
    }
    let local_only: u64 = (cluster.publishers())
        .map(|(_, c)| c.local_only.swap(0, Ordering::Relaxed))
        .sum();
    assert!(local_only > 0, "publishes during the outage said LOCAL");
    assert!(gaps > 0, "an envelope subscriber saw the gap");
    for &wait in &back {
        assert!(
            wait < Duration::from_secs(10),
            "resubscribed within seconds"
        );
    }
    eprintln!(
        "redis restart: {}; {gaps} gaps seen by envelope subscribers",
        report.join("; ")
    );
}

/// Node 0 is killed: its clients lose their connections; node 1's clients
/// see no error and keep publishing to each other.
async fn a_node_dying(cluster: &mut Cluster) {
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
    let survivors: Vec<_> = cluster.publishers().filter(|(_, c)| c.node == 1).collect();
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
    cluster.wait_delivered(&[1], &expected).await;
    for client in cluster.clients.iter().filter(|c| c.node == 1) {
        assert_eq!(client.ended(), None, "node 1's clients see no error");
        let seen = client.take();
        assert!(seen.unexpected.is_empty());
        for (key, &count) in expected
            .iter()
            .filter(|(k, _)| client.topics.contains(&k.topic))
        {
            let ks = &seen.got[key];
            assert!(ks.len() == count as usize && rising(ks), "{key:?}");
        }
        assert_eq!(client.local_only.load(Ordering::Relaxed), 0);
    }
    assert_eq!(cluster.stats(1).await["broker"], "up");
    assert_eq!(
        redis_subscribers(cluster, "t0").await,
        1,
        "the dead node's subscriptions went with its connection"
    );
    eprintln!("node killed: its 200 clients disconnected, the other node's 200 unaffected");
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
        .expect("the pubsub example starts");
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
