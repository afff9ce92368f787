//! The [`Broker`] over Redis Pub/Sub, on the `redis` crate's connection
//! manager: one RESP3 connection carries the publishes, the subscriptions
//! and the messages Redis pushes back, and is made again with backoff when
//! it drops.
//!
//! The subscriptions are this broker's to keep: it remembers every topic
//! asked for, and each time Redis is reachable again (a heartbeat notices)
//! it subscribes to all of them before it calls itself connected. The
//! connection manager's own resubscription restores only subscriptions
//! Redis had confirmed, so one asked for during an outage would be missed.
//! While Redis is unreachable, calls fail at once, without waiting for it
//! (local delivery goes on, and the node counts what it could not share),
//! and the heartbeat tries again after a wait that grows to two seconds,
//! jittered.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc};
use tokio::time::error::Elapsed;
use tokio::time::timeout;

use super::cluster::{Broker, BrokerError, BrokerFuture, Done};

/// How long a Redis call may take before the connection counts as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a connected broker checks Redis is still there.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The first wait before trying an unreachable Redis again; it doubles
/// with each failure up to `RETRY_MAX`, with jitter, so nodes that lost
/// Redis together do not all come back in the same instant.
const RETRY: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Publishes sent to Redis in one pipeline.
const BATCH: usize = 256;
/// Publishes waiting for Redis past which new ones fail at once: memory
/// stays bounded when Redis is slower than the publishers.
const MAX_QUEUED: usize = 65_536;

/// A publish waiting for its turn on the connection.
struct Pending {
    channel: String,
    bytes: Vec<u8>,
    done: Done,
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

/// A [`Broker`] on one Redis server. Topic `t` is the channel `PREFIX` + `t`.
pub struct RedisBroker {
    manager: ConnectionManager,
    prefix: String,
    state: Arc<Mutex<State>>,
    /// Wakes the heartbeat when the connection drops.
    dropped: Arc<Notify>,
    queue: mpsc::UnboundedSender<Pending>,
    queued: Arc<AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unreachable() -> BrokerError {
    BrokerError("redis unreachable".to_owned())
}

impl RedisBroker {
    /// A broker on the Redis at `url`, handing each message that arrives on
    /// a subscribed channel to `deliver` (topic, bytes). Waits up to five
    /// seconds for Redis; if it is not there yet, the broker keeps trying
    /// and the node serves its own clients meanwhile.
    ///
    /// # Errors
    ///
    /// `url` is not a Redis URL.
    pub async fn connect(
        url: &str,
        prefix: &str,
        deliver: impl Fn(&str, &[u8]) + Send + Sync + 'static,
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
        let (queue, pending) = mpsc::unbounded_channel();
        let broker = Arc::new(Self {
            manager,
            prefix: prefix.to_owned(),
            state,
            dropped,
            queue,
            queued: Arc::default(),
        });
        tokio::spawn(publisher(Arc::downgrade(&broker), pending));
        tokio::spawn(heartbeat(Arc::downgrade(&broker)));
        for _ in 0..50 {
            if broker.connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !broker.connected() {
            eprintln!("pubsub: redis at {url} not reachable yet; serving local clients meanwhile");
        }
        Ok(broker)
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// Marks the connection lost; the heartbeat takes it from there.
    fn lost(&self) {
        lock(&self.state).connected = false;
        self.dropped.notify_one();
    }

    /// A Redis call's result for the node. A timeout or a broken connection
    /// marks the connection lost; a refusal (say, no permission) does not.
    fn outcome(&self, result: Result<redis::RedisResult<()>, Elapsed>) -> Result<(), BrokerError> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                if error.is_io_error() || error.is_unrecoverable_error() || error.is_timeout() {
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
            eprintln!(
                "pubsub: redis connected, {} topics subscribed",
                channels.len()
            );
        }
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

/// Sends queued publishes in order, a pipeline at a time.
async fn publisher(broker: Weak<RedisBroker>, mut pending: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let Some(broker) = broker.upgrade() else {
            return;
        };
        broker.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let result = if lock(&broker.state).connected {
            let mut pipe = redis::pipe();
            for publish in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&publish.channel)
                    .arg(&publish.bytes)
                    .ignore();
            }
            let mut manager = broker.manager.clone();
            broker.outcome(timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut manager)).await)
        } else {
            Err(unreachable())
        };
        for publish in batch.drain(..) {
            (publish.done)(result.clone());
        }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, topic: &str, bytes: Vec<u8>, done: Done) {
        // Queued now, so publishes reach Redis in the order of these calls.
        if !self.connected() {
            return done(Err(unreachable()));
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return done(Err(BrokerError(
                "too many publishes waiting for redis".to_owned(),
            )));
        }
        let pending = Pending {
            channel: self.channel(topic),
            bytes,
            done,
        };
        if let Err(mpsc::error::SendError(pending)) = self.queue.send(pending) {
            (pending.done)(Err(unreachable()));
        }
    }

    fn subscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a> {
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

    fn unsubscribe<'a>(&'a self, topic: &'a str) -> BrokerFuture<'a> {
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

    fn connected(&self) -> bool {
        lock(&self.state).connected
    }
}
