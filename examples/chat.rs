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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfc6455::admission::{Admission, AdmissionConfig};
use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
use rfc6455::rt::hub::{Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Config, Error, RateLimit, RateLimits, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/room.rs"]
mod room;

/// What every connection task shares.
#[derive(Clone)]
struct Room {
    hub: Hub,
    server: ServerBuilder,
    refused: Arc<Refused>,
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
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("chat: listening on ws://{}", listener.local_addr()?);
    let admission = Admission::new(
        AdmissionConfig::default()
            .max_per_address(Some(8))
            .handshakes_per_address(Some(RateLimit::new(5, 10))),
    );
    let lines = RateLimits::default().messages(Some(RateLimit::new(20, 40)));
    let drain = Drain::new(DrainConfig::default());
    let refused = Arc::new(Refused::default());
    tokio::spawn(Arc::clone(&refused).log_every(Duration::from_secs(10)));
    let room = Room {
        hub: Hub::new(HubConfig::default()),
        refused,
        // Past the limits, or once the drain begins, an upgrade is refused.
        server: ServerBuilder::new()
            .config(Config::default().rate_limits(lines))?
            .admission(admission)
            .drain(&drain),
    };
    let report = drain
        .serve_until(serve(&listener, &drain, &room), shutdown_signal())
        .await?;
    eprintln!("chat: {report}");
    Ok(())
}

/// Accepts clients, each a task the drain watches.
async fn serve(listener: &TcpListener, drain: &Drain, room: &Room) -> std::io::Result<()> {
    for id in 0u64.. {
        let (tcp, peer) = listener.accept().await?;
        let room = room.clone();
        tokio::spawn(drain.watch(async move {
            if let Err(error) = join(id, tcp, peer, &room).await
                && !room.refused.count(&error)
            {
                eprintln!("chat: client {id}: {error}");
            }
        }));
    }
    Ok(())
}

async fn join(id: u64, tcp: TcpStream, peer: SocketAddr, room: &Room) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    // The stream holds this client's place under the limits until it drops.
    let ws = WebSocketStream::accept((tcp, peer), &room.server).await?;
    room::member(id, ws, &room.hub).await
}
