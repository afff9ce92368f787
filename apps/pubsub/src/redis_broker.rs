//! The [`Broker`] on Redis: each topic's history is a Stream, and one Lua
//! script appends to it and notifies the nodes through Pub/Sub, so what is
//! in the history and what was announced never differ. One RESP3
//! connection (the `redis` crate's connection manager) carries the calls,
//! the subscriptions and the messages Redis pushes back.
//!
//! Keys, for topic `t` and prefix `P`: `P{t}:meta`, a hash holding the
//! epoch `e` and the last offset `s`; `P{t}:stream`, the Stream, entry ids
//! `OFFSET-0`, trimmed to the history length; the channel `Pt`, carrying
//! `EPOCH OFFSET PAYLOAD`. A Redis that lost its data (a restart without
//! persistence) has no meta: the first call that finds none starts a new,
//! random epoch and an empty Stream, which is how clients learn their old
//! positions are gone.
//!
//! The subscriptions are this broker's to keep: it remembers every topic
//! asked for, and each time Redis is reachable again (a heartbeat notices)
//! it subscribes to all of them before it calls itself connected and tells
//! the node, which reads back what it missed. Publishes made while Redis
//! is unreachable wait in a queue bounded in count, bytes and time, and are
//! appended in order when it returns; a call that takes longer than
//! [`CALL_TIMEOUT`] (a frozen Redis) counts as a lost connection, so the
//! queue's time bound is always the longer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, ServerErrorKind};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Script, Value};
use rfc6455::rt::hub::Position;
use tokio::sync::{Notify, oneshot};
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout};

use super::cluster::{Broker, BrokerError, BrokerFuture, Stream};

/// How long a Redis call may take before the connection counts as lost.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a publish may wait for an unreachable Redis before it is
/// refused: longer than [`CALL_TIMEOUT`], so a frozen Redis is noticed
/// while its publishes still wait.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// How often a connected broker checks Redis is still there.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The first wait before trying an unreachable Redis again; it doubles
/// with each failure up to `RETRY_MAX`, with jitter, so nodes that lost
/// Redis together do not all come back in the same instant.
const RETRY: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Publishes sent to Redis in one pipeline.
const BATCH: usize = 256;
/// Publishes waiting for Redis, and their bytes, past which new ones are
/// refused at once: memory stays bounded while Redis is away.
const MAX_QUEUED: usize = 65_536;
const MAX_QUEUED_BYTES: usize = 64 << 20;

/// How both scripts begin: the topic's epoch, or (its meta gone: a new
/// topic, or a Redis that lost its data) a new epoch, given as ARGV[4],
/// and an empty Stream. KEYS: meta, stream.
const EPOCH: &str = r"
local e = redis.call('HGET', KEYS[1], 'e')
if not e then
  e = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', e, 's', 0)
end
";

/// Appends a publish and notifies the topic's channel, atomically, after
/// [`EPOCH`]. ARGV: channel, payload, history length. Returns the position:
/// {epoch, offset}.
const PUBLISH: &str = r"
local s = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], s .. '-0', 'p', ARGV[2])
redis.call('PUBLISH', ARGV[1], e .. ' ' .. s .. ' ' .. ARGV[2])
return {e, tostring(s)}
";

/// Reads a topic's history after a position, after [`EPOCH`]. ARGV: the
/// position's epoch ('' for none) and offset, the most to return. Returns
/// {epoch, last offset, oldest offset held, then offset and payload of
/// each message}.
const READ: &str = r"
local s = tonumber(redis.call('HGET', KEYS[1], 's'))
local out = {e, tostring(s), tostring(s + 1)}
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #oldest > 0 then out[3] = string.match(oldest[1][1], '^%d+') end
local from = '-'
if ARGV[1] == e then from = '(' .. ARGV[2] .. '-0' end
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', ARGV[3])) do
  table.insert(out, string.match(entry[1], '^%d+'))
  table.insert(out, entry[2][2])
end
return out
";

/// A publish waiting for its turn on the connection.
struct Pending {
    topic: String,
    payload: String,
    queued_at: Instant,
    reply: oneshot::Sender<Result<Position, BrokerError>>,
}

/// The publishes waiting, oldest first, and their payload bytes.
#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    bytes: usize,
}

/// What a subscribe, an unsubscribe and a reconnect share.
#[derive(Default)]
struct State {
    /// Every channel asked for, confirmed by Redis or not.
    wanted: HashSet<String>,
    /// Bumped by each change to `wanted`.
    version: u64,
    /// Redis is reachable and holds every wanted subscription.
    connected: bool,
}

/// A [`Broker`] on one Redis server.
pub struct RedisBroker {
    manager: ConnectionManager,
    prefix: String,
    /// Messages kept per topic.
    history: usize,
    state: Arc<Mutex<State>>,
    /// Wakes the heartbeat when the connection drops.
    dropped: Arc<Notify>,
    queue: Mutex<Queue>,
    /// Wakes the publisher: a publish was queued, or Redis is back.
    wake: Arc<Notify>,
    /// Told each time Redis is back with every subscription restored.
    reconnected: Box<dyn Fn() + Send + Sync>,
    /// Where new epochs come from.
    epochs: RandomState,
    /// The scripts, loaded on every (re)connection and called by hash.
    publish_script: Script,
    read_script: Script,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisBroker {
    /// A broker on the Redis at `url`, keeping `history` messages per
    /// topic, handing each message that arrives on a subscribed channel to
    /// `deliver` (topic, bytes), and calling `reconnected` each time Redis
    /// is back. Waits up to five seconds for Redis; if it is not there
    /// yet, the broker keeps trying and publishes wait for it.
    ///
    /// # Errors
    ///
    /// `url` is not a Redis URL.
    pub async fn connect(
        url: &str,
        prefix: &str,
        history: usize,
        deliver: impl Fn(&str, &[u8]) + Send + Sync + 'static,
        reconnected: impl Fn() + Send + Sync + 'static,
    ) -> redis::RedisResult<Arc<Self>> {
        let info = url.into_connection_info()?;
        // Pushed messages and commands share one connection only on RESP3.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let state = Arc::new(Mutex::new(State::default()));
        let dropped = Arc::new(Notify::new());
        let pushed = {
            let (state, dropped, prefix) = (state.clone(), dropped.clone(), prefix.to_owned());
            move |push: PushInfo| {
                match (push.kind, push.data.as_slice()) {
                    (PushKind::Message, [Value::BulkString(channel), Value::BulkString(bytes)]) => {
                        let topic = channel.strip_prefix(prefix.as_bytes());
                        if let Some(Ok(topic)) = topic.map(std::str::from_utf8) {
                            deliver(topic, bytes);
                        }
                    }
                    (PushKind::Disconnection, _) => {
                        lock(&state).connected = false;
                        dropped.notify_one();
                    }
                    _ => {}
                }
                Ok::<(), redis::aio::SendError>(())
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_push_sender(pushed)
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(3);
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        let broker = Arc::new(Self {
            manager,
            prefix: prefix.to_owned(),
            history,
            state,
            dropped,
            queue: Mutex::default(),
            wake: Arc::default(),
            reconnected: Box::new(reconnected),
            epochs: RandomState::new(),
            publish_script: Script::new(&format!("{EPOCH}{PUBLISH}")),
            read_script: Script::new(&format!("{EPOCH}{READ}")),
        });
        tokio::spawn(publisher(Arc::downgrade(&broker)));
        tokio::spawn(heartbeat(Arc::downgrade(&broker)));
        for _ in 0..50 {
            if broker.connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !broker.connected() {
            eprintln!("pubsub: redis at {url} not reachable yet; publishes wait for it");
        }
        Ok(broker)
    }

    /// The largest single message Redis lets a subscriber's connection
    /// hold (the hard `client-output-buffer-limit` of the `pubsub` class;
    /// `None` when unlimited or not readable).
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn subscriber_buffer_limit(&self) -> Result<Option<u64>, BrokerError> {
        let mut manager = self.manager.clone();
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg("client-output-buffer-limit");
        let get = get.query_async::<HashMap<String, String>>(&mut manager);
        let reply = self.outcome(timeout(CALL_TIMEOUT, get).await)?;
        // "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60"
        let value = reply.get("client-output-buffer-limit");
        let words: Vec<&str> = value.map_or("", String::as_str).split(' ').collect();
        let hard = (words.iter().position(|w| *w == "pubsub"))
            .and_then(|at| words.get(at + 1)?.parse::<u64>().ok());
        Ok(hard.filter(|&hard| hard > 0))
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// The topic's meta hash and Stream.
    fn keys(&self, topic: &str) -> [String; 2] {
        let prefix = &self.prefix;
        [
            format!("{prefix}{{{topic}}}:meta"),
            format!("{prefix}{{{topic}}}:stream"),
        ]
    }

    /// An epoch for a topic found with none.
    fn new_epoch(&self) -> String {
        let now = std::time::SystemTime::now();
        self.epochs.hash_one(now).to_string()
    }

    /// Marks the connection lost; the heartbeat takes it from there.
    fn lost(&self) {
        lock(&self.state).connected = false;
        self.dropped.notify_one();
    }

    /// A Redis call's result for the node. A timeout or a broken connection
    /// marks the connection lost; a refusal (say, no permission) does not.
    fn outcome<T>(&self, result: Result<redis::RedisResult<T>, Elapsed>) -> Result<T, BrokerError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                // NOSCRIPT: the script cache was flushed; reconnecting
                // loads the scripts again.
                let flushed = error.kind() == ErrorKind::Server(ServerErrorKind::NoScript);
                if error.is_io_error()
                    || error.is_unrecoverable_error()
                    || error.is_timeout()
                    || flushed
                {
                    self.lost();
                }
                Err(BrokerError(error.to_string()))
            }
            Err(Elapsed { .. }) => {
                self.lost();
                Err(BrokerError("redis timed out".to_owned()))
            }
        }
    }

    /// One heartbeat: checks Redis answers and, when it is back, subscribes
    /// to everything wanted.
    async fn check(&self) {
        let mut manager = self.manager.clone();
        let ping = redis::cmd("PING");
        if (self.outcome(timeout(CALL_TIMEOUT, ping.query_async::<()>(&mut manager)).await))
            .is_err()
        {
            return;
        }
        if lock(&self.state).connected {
            return;
        }
        // A Redis that restarted lost its script cache.
        for script in [&self.publish_script, &self.read_script] {
            let invocation = script.prepare_invoke();
            let load = invocation.load_async(&mut manager);
            if (self.outcome(timeout(CALL_TIMEOUT, load).await)).is_err() {
                return;
            }
        }
        // Subscribe to everything wanted, then call it connected, unless a
        // subscribe or unsubscribe came in meanwhile (then again, next beat).
        let (channels, version) = {
            let state = lock(&self.state);
            (
                state.wanted.iter().cloned().collect::<Vec<_>>(),
                state.version,
            )
        };
        for chunk in channels.chunks(1024) {
            if (self.outcome(timeout(CALL_TIMEOUT, manager.subscribe(chunk)).await)).is_err() {
                return;
            }
        }
        let mut state = lock(&self.state);
        if state.version == version {
            state.connected = true;
            drop(state);
            eprintln!(
                "pubsub: redis connected, {} topics subscribed",
                channels.len()
            );
            self.wake.notify_one();
            (self.reconnected)();
        }
    }

    /// Sends one batch of publishes, oldest first; refuses those that
    /// waited too long. Returns `false` when nothing could be sent now.
    async fn send_batch(&self) -> bool {
        let batch: Vec<Pending> = {
            let mut queue = lock(&self.queue);
            let expired = |p: &Pending| p.queued_at.elapsed() > QUEUE_WAIT;
            while queue.pending.front().is_some_and(expired) {
                let pending = queue.pending.pop_front().expect("a front");
                queue.bytes -= pending.payload.len();
                let _ = (pending.reply).send(Err(BrokerError(format!(
                    "redis unreachable for {}s",
                    QUEUE_WAIT.as_secs()
                ))));
            }
            if queue.pending.is_empty() || !lock(&self.state).connected {
                return false;
            }
            let take = queue.pending.len().min(BATCH);
            let batch: Vec<Pending> = queue.pending.drain(..take).collect();
            queue.bytes -= batch.iter().map(|p| p.payload.len()).sum::<usize>();
            batch
        };
        let mut pipe = redis::pipe();
        for publish in &batch {
            let [meta, stream] = self.keys(&publish.topic);
            pipe.cmd("EVALSHA")
                .arg(self.publish_script.get_hash())
                .arg(2)
                .arg(meta)
                .arg(stream)
                .arg(self.channel(&publish.topic))
                .arg(&publish.payload)
                .arg(self.history)
                .arg(self.new_epoch());
        }
        let mut manager = self.manager.clone();
        let sent = timeout(
            CALL_TIMEOUT,
            pipe.query_async::<Vec<(String, u64)>>(&mut manager),
        );
        match self.outcome(sent.await) {
            Ok(positions) if positions.len() == batch.len() => {
                for (publish, (epoch, offset)) in batch.into_iter().zip(positions) {
                    let position = epoch.parse().map(|epoch| Position { epoch, offset });
                    let position = position.map_err(|_| BrokerError("bad epoch".to_owned()));
                    let _ = publish.reply.send(position);
                }
            }
            // Whether Redis ran them is unknown: refused, never retried, so
            // none is appended twice (a NOSCRIPT ran none of them).
            result => {
                let error = result
                    .err()
                    .unwrap_or(BrokerError("short reply".to_owned()));
                for publish in batch {
                    let _ = publish.reply.send(Err(error.clone()));
                }
            }
        }
        true
    }
}

/// Keeps the connection checked while the broker lives: every second
/// while connected; at once when it drops, then after a growing, jittered
/// wait while it stays unreachable.
async fn heartbeat(broker: Weak<RedisBroker>) {
    let jitter = RandomState::new();
    let mut retry = RETRY;
    for attempt in 0u64.. {
        let Some(strong) = broker.upgrade() else {
            return;
        };
        strong.check().await;
        let pause = if strong.connected() {
            retry = RETRY;
            HEARTBEAT
        } else {
            // Between half and all of the current wait.
            let half = retry / 2;
            let spread = jitter.hash_one(attempt) % (half.as_millis() as u64 + 1);
            let pause = half + Duration::from_millis(spread);
            retry = (retry * 2).min(RETRY_MAX);
            pause
        };
        let dropped = strong.dropped.clone();
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = dropped.notified() => {}
        }
    }
}

/// Sends queued publishes in order, a pipeline at a time, while Redis is
/// connected; wakes for new publishes, for Redis coming back, and often
/// enough to refuse those that waited too long.
async fn publisher(broker: Weak<RedisBroker>) {
    loop {
        let Some(strong) = broker.upgrade() else {
            return;
        };
        if strong.send_batch().await {
            continue;
        }
        let wake = Arc::clone(&strong.wake);
        drop(strong);
        let _ = timeout(Duration::from_millis(250), wake.notified()).await;
    }
}

impl Broker for RedisBroker {
    fn publish(&self, topic: &str, payload: &str) -> BrokerFuture<'static, Position> {
        // Queued now, so publishes reach Redis in the order of these calls.
        let (reply, replied) = oneshot::channel();
        let refused = {
            let mut queue = lock(&self.queue);
            if queue.pending.len() >= MAX_QUEUED || queue.bytes + payload.len() > MAX_QUEUED_BYTES {
                true
            } else {
                queue.bytes += payload.len();
                queue.pending.push_back(Pending {
                    topic: topic.to_owned(),
                    payload: payload.to_owned(),
                    queued_at: Instant::now(),
                    reply,
                });
                false
            }
        };
        if !refused {
            self.wake.notify_one();
        }
        Box::pin(async move {
            if refused {
                return Err(BrokerError(
                    "too many publishes waiting for redis".to_owned(),
                ));
            }
            (replied.await).unwrap_or_else(|_| Err(BrokerError("broker stopped".to_owned())))
        })
    }

    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a, ()> {
        let channel = self.channel(topic);
        let connected = {
            let mut state = lock(&self.state);
            state.wanted.insert(channel.clone());
            state.version += 1;
            state.connected
        };
        Box::pin(async move {
            if !connected {
                return Err(BrokerError(
                    "redis unreachable; subscribing when it is back".to_owned(),
                ));
            }
            let mut manager = self.manager.clone();
            self.outcome(timeout(CALL_TIMEOUT, manager.subscribe(&channel)).await)
        })
    }

    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a, ()> {
        let channel = self.channel(topic);
        let connected = {
            let mut state = lock(&self.state);
            state.wanted.remove(&channel);
            state.version += 1;
            state.connected
        };
        Box::pin(async move {
            if !connected {
                // Not subscribed again when Redis is back.
                return Ok(());
            }
            let mut manager = self.manager.clone();
            self.outcome(timeout(CALL_TIMEOUT, manager.unsubscribe(&channel)).await)
        })
    }

    fn history<'a>(
        &'a self,
        topic: &'a str,
        after: Option<Position>,
        limit: usize,
    ) -> BrokerFuture<'a, Stream> {
        Box::pin(async move {
            if !self.connected() {
                return Err(BrokerError("redis unreachable".to_owned()));
            }
            let [meta, stream] = self.keys(topic);
            let (epoch, offset) =
                after.map_or((String::new(), 0), |p| (p.epoch.to_string(), p.offset));
            let mut manager = self.manager.clone();
            let mut read = redis::cmd("EVALSHA");
            read.arg(self.read_script.get_hash())
                .arg(2)
                .arg(meta)
                .arg(stream)
                .arg(epoch)
                .arg(offset)
                .arg(limit)
                .arg(self.new_epoch());
            let read = read.query_async::<Vec<String>>(&mut manager);
            let words = self.outcome(timeout(CALL_TIMEOUT, read).await)?;
            parse_stream(&words).ok_or_else(|| BrokerError("malformed history".to_owned()))
        })
    }

    fn connected(&self) -> bool {
        lock(&self.state).connected
    }

    fn queued(&self) -> usize {
        lock(&self.queue).pending.len()
    }
}

/// The read script's reply as a [`Stream`].
fn parse_stream(words: &[String]) -> Option<Stream> {
    let [epoch, last, first, rest @ ..] = words else {
        return None;
    };
    let mut stream = Stream {
        epoch: epoch.parse().ok()?,
        last: last.parse().ok()?,
        first: first.parse().ok()?,
        entries: Vec::with_capacity(rest.len() / 2),
    };
    for pair in rest.chunks(2) {
        let [offset, payload] = pair else {
            return None;
        };
        // Offsets start at 1: an entry at 0 is not one the script wrote.
        let offset = offset.parse().ok().filter(|&offset| offset > 0)?;
        stream.entries.push((offset, payload.clone()));
    }
    Some(stream)
}
