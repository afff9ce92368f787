//! A broadcast chat room on the topic hub (`examples/support/room.rs`):
//! every text message goes to every client in the room (its sender too, as
//! the room's transcript).
//!
//! ```text
//! cargo run --example chat                 # ws://127.0.0.1:9002
//! cargo run --example client -- ws://127.0.0.1:9002/     # in two terminals
//! ```
//!
//! Each line is framed once (`PreparedMessage`) and queued by reference for
//! everyone. Publishing never waits on a client: one whose socket stops
//! draining while the others keep up is closed with 1008 "too slow", and
//! while the server itself is behind, the sender's next line waits
//! (`Hub::ready`), which slows the sender down instead of dropping anyone.
//!
//! A public room guards itself: at most 8 connections per client address
//! and 5 new ones a second (then `429` with `Retry-After`), and each client
//! may send 20 lines a second in bursts of 40 (past that its reading
//! pauses, so a flood waits in its own TCP buffers).
//!
//! On Ctrl-C or SIGTERM the room drains (`rfc6455::rt::drain`): new
//! upgrades get 503, and the members are closed with 1001 over five seconds.
//!
//! With the `handoff` feature (Linux), `--handoff PATH` moves the room to
//! a new process without a reconnect (`rfc6455::rt::handoff`): a server
//! started with the same PATH takes over the listening socket and every
//! member from the one waiting there. The members stop reading, every line
//! already published reaches them, and they move with their names; the new
//! process reads from them once all are in its room.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfc6455::admission::{Admission, AdmissionConfig};
use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Config, Error, RateLimit, RateLimits, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/deploy.rs"]
mod deploy;
#[path = "support/room.rs"]
mod room;

/// What every connection task shares.
#[derive(Clone)]
struct Chat {
    hub: Hub,
    server: ServerBuilder,
    drain: Drain,
    refused: Arc<Refused>,
    next_id: Arc<AtomicU64>,
}

/// Upgrades refused, by reason: logged as counts once per period, not a
/// line each, so a flood of refusals does not flood the log.
#[derive(Default)]
struct Refused(Mutex<BTreeMap<&'static str, u64>>);

impl Refused {
    /// Counts `error` if it is a refused upgrade; `false` if it is not one.
    fn count(&self, error: &Error) -> bool {
        let reason = match error {
            Error::Rejected(429) => "429 over a per-address limit",
            Error::Rejected(503) => "503 over the server's limit or draining",
            Error::Rejected(_) => "rejected by the request callback",
            Error::Handshake(_) => "invalid upgrade request",
            Error::HandshakeTimeout(_) => "handshake timed out",
            _ => return false,
        };
        *self.0.lock().unwrap().entry(reason).or_default() += 1;
        true
    }

    /// Logs the counts every `period` in which there were any.
    async fn log_every(self: Arc<Self>, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let counts = std::mem::take(&mut *self.0.lock().unwrap());
            if !counts.is_empty() {
                let counts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
                eprintln!(
                    "chat: upgrades refused in the last {period:?}: {}",
                    counts.join(", ")
                );
            }
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut handoff = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--handoff" => {
                let path = args.next();
                handoff =
                    Some(path.ok_or_else(|| std::io::Error::other("--handoff needs a path"))?);
            }
            _ => addr = arg,
        }
    }
    let admission = Admission::new(
        AdmissionConfig::default()
            .max_per_address(Some(8))
            .handshakes_per_address(Some(RateLimit::new(5, 10))),
    );
    let lines = RateLimits::default().messages(Some(RateLimit::new(20, 40)));
    let config = Config::default().rate_limits(lines);
    let drain = Drain::new(DrainConfig::default());
    let refused = Arc::new(Refused::default());
    tokio::spawn(Arc::clone(&refused).log_every(Duration::from_secs(10)));
    let chat = Chat {
        hub: Hub::new(HubConfig::default()),
        refused,
        // Past the limits, or once the drain begins, an upgrade is refused.
        server: ServerBuilder::new()
            .config(config.clone())?
            .admission(admission)
            .drain(&drain),
        drain: drain.clone(),
        next_id: Arc::new(AtomicU64::new(0)),
    };
    if let Some(path) = handoff {
        return with_handoff(&path, &addr, config, &chat).await;
    }
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("chat: listening on ws://{}", listener.local_addr()?);
    let report = drain
        .serve_until(serve(&listener, &chat), shutdown_signal())
        .await?;
    eprintln!("chat: {report}");
    Ok(())
}

/// Takes the room over from the server waiting at `path` (or binds
/// `addr`), then serves until a successor takes over in turn, or a
/// shutdown drains.
#[cfg(all(feature = "handoff", target_os = "linux"))]
async fn with_handoff(path: &str, addr: &str, config: Config, chat: &Chat) -> std::io::Result<()> {
    let mut members = Vec::new();
    let listener = deploy::take_over("chat", path, addr, config, |ws, payload| {
        members.push((*ws, payload));
    })
    .await?;
    // Every member is in the room before any is read from: a line sent
    // now reaches all of them.
    let hub = &chat.hub;
    let mut joined = Vec::new();
    for (ws, payload) in members {
        let Some(id) = std::str::from_utf8(&payload)
            .ok()
            .and_then(|id| id.parse::<u64>().ok())
        else {
            eprintln!("chat: a member came without its name; dropped");
            continue;
        };
        chat.next_id.fetch_max(id + 1, Ordering::Relaxed);
        let member = hub.join();
        let _ = hub.subscribe(&member, room::ROOM);
        joined.push((id, ws, member));
    }
    for (id, ws, member) in joined {
        let chat = chat.clone();
        tokio::spawn(chat.drain.clone().watch(async move {
            // Tied to the drain from inside its task, as an accept would.
            let mut ws = ws;
            chat.drain.attach(&mut ws);
            let hand_over = leave(id, &chat.drain);
            let moving = Some((&chat.drain, hand_over));
            if let Err(error) = room::serve(id, ws, &chat.hub, member, moving).await {
                eprintln!("chat: client {id}: {error}");
            }
        }));
    }
    deploy::serve("chat", path, &listener, &chat.drain, serve(&listener, chat)).await
}

#[cfg(not(all(feature = "handoff", target_os = "linux")))]
async fn with_handoff(_: &str, _: &str, _: Config, _: &Chat) -> std::io::Result<()> {
    Err(deploy::unavailable("chat"))
}

/// Accepts clients, each a task the drain watches.
async fn serve(listener: &TcpListener, chat: &Chat) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
        let chat = chat.clone();
        tokio::spawn(chat.drain.clone().watch(async move {
            if let Err(error) = join(id, tcp, peer, &chat).await
                && !chat.refused.count(&error)
            {
                eprintln!("chat: client {id}: {error}");
            }
        }));
    }
}

async fn join(id: u64, tcp: TcpStream, peer: SocketAddr, chat: &Chat) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    // The stream holds this client's place under the limits until it drops.
    let ws = WebSocketStream::accept((tcp, peer), &chat.server).await?;
    let moving = Some((&chat.drain, leave(id, &chat.drain)));
    room::member(id, ws, &chat.hub, moving).await
}

/// Member `id` leaving for the successor, its id as the payload.
fn leave(id: u64, drain: &Drain) -> room::Mover<TcpStream> {
    let drain = drain.clone();
    Box::new(move |ws| {
        let drain = drain.clone();
        Box::pin(async move { deploy::hand_over(ws, &drain, id.to_string().as_bytes()).await })
    })
}
