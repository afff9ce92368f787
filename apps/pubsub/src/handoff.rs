//! `--handoff PATH`: a node takes its listener and clients over from the
//! node waiting at PATH (`rfc6455::rt::handoff`), each client with its
//! subscriptions, and waits there in turn for a successor.
//!
//! The clients stop sending commands at a message boundary; once all have
//! (`Drain::handoff_quiet`), each leaves its topics, noting the last
//! position delivered to it, receives what was queued for it, and moves.
//! The new node subscribes every client again before it reads from any:
//! in a cluster from the noted positions, so what was published meanwhile
//! through Redis is replayed, none missed or repeated; alone, live, as
//! nothing was published meanwhile (the topics' histories stay behind, so
//! positions start a new epoch).

use std::sync::Arc;

use rfc6455::rt::drain::Drain;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::net::TcpStream;

use super::{BoxError, Mover, Server};

/// Hands a client's stream over to the successor with `payload`.
#[cfg(target_os = "linux")]
pub(crate) fn mover(drain: &Drain) -> Mover<TcpStream> {
    let drain = drain.clone();
    Box::new(move |ws: WebSocketStream<TcpStream>, payload: Vec<u8>| {
        let drain = drain.clone();
        Box::pin(async move {
            drain
                .hand_over(ws, &payload)
                .await
                .err()
                .map(|back| back.stream)
        })
    })
}

/// No handoff is asked for where there is none.
#[cfg(not(target_os = "linux"))]
pub(crate) fn mover(_: &Drain) -> Mover<TcpStream> {
    Box::new(|ws, _| Box::pin(std::future::ready(Some(ws))))
}

/// Takes over from the node waiting at `path` (or listens on `listen`),
/// then serves until a successor takes over or a shutdown drains.
#[cfg(target_os = "linux")]
pub(crate) async fn run(
    path: &str,
    listen: &str,
    server: &Arc<Server>,
    drain: &Drain,
) -> Result<(), BoxError> {
    use std::collections::HashSet;

    use rfc6455::rt::drain::shutdown_signal;
    use rfc6455::rt::handoff::{self, Ended, Handoff};
    use tokio::net::TcpListener;

    let mut listener = None;
    if let Some(predecessor) = handoff::take_over(path, server.limits()).await? {
        let started = std::time::Instant::now();
        let taken = predecessor.receive_all().await;
        for error in &taken.refused {
            eprintln!("pubsub: a client could not be taken over: {error}");
        }
        if let Some(error) = &taken.broken_off {
            eprintln!("pubsub: the predecessor went away: {error}");
        }
        listener = taken.listeners.into_iter().next();
        // Every client is subscribed again before any is read from.
        let mut arrived = Vec::new();
        for (ws, payload) in taken.connections {
            let carried = super::wire::decode_carried(&payload).unwrap_or_else(|| {
                eprintln!("pubsub: a client came without its subscriptions");
                Vec::new()
            });
            let member = server.node.hub().join();
            server.node.arrive(&member, &carried).await;
            let positioned: HashSet<String> = carried
                .into_iter()
                .filter(|c| c.positioned)
                .map(|c| c.topic)
                .collect();
            arrived.push((ws, member, positioned));
        }
        let count = arrived.len();
        for (ws, member, positioned) in arrived {
            let (server, drain) = (server.clone(), drain.clone());
            tokio::spawn(drain.clone().watch(async move {
                // Tied to the drain from inside its task, as an accept would.
                let mut ws = ws;
                drain.attach(&mut ws);
                let moving = Some((&drain, mover(&drain)));
                if let Err(error) =
                    super::serve_member(ws, &server, member, positioned, moving).await
                {
                    eprintln!("pubsub: connection ended: {error}");
                }
            }));
        }
        eprintln!(
            "pubsub: took over {count} clients ({} refused) in {:?}",
            taken.refused.len(),
            started.elapsed()
        );
    }
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(listen).await?,
    };
    eprintln!("pubsub: listening on ws://{}", listener.local_addr()?);
    let offered = Some(Handoff::offer(path)?);
    let serve = super::accept(&listener, drain, server, true);
    let stats = || server.node.stats();
    match handoff::serve_until(drain, &listener, offered, serve, shutdown_signal()).await? {
        Ended::Drained(report) => eprintln!("pubsub: {report}; {}", stats()),
        Ended::HandedOver(report) => eprintln!("pubsub: {report}; {}", stats()),
        _ => {}
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) async fn run(_: &str, _: &str, _: &Arc<Server>, _: &Drain) -> Result<(), BoxError> {
    Err("--handoff works on Linux only".into())
}
