//! The handoff as `echo_server` and `chat` use it (`--handoff PATH`, with
//! the `handoff` feature on Linux): take over from the server waiting at
//! PATH, then serve until a successor takes over in turn (or a shutdown
//! drains).

use rfc6455::rt::drain::Drain;
use rfc6455::rt::tokio::WebSocketStream;
use tokio::net::TcpStream;
#[cfg(all(feature = "handoff", target_os = "linux"))]
use {
    rfc6455::Config,
    rfc6455::rt::drain::shutdown_signal,
    rfc6455::rt::handoff::{self, Ended, Handoff, Inherited},
    std::time::Instant,
    tokio::net::TcpListener,
};

/// Hands `ws` (asked for: `Error::HandoffRequested`) to the successor,
/// with `payload`; the stream back if it stays here.
#[cfg(all(feature = "handoff", target_os = "linux"))]
pub(crate) async fn hand_over(
    ws: WebSocketStream<TcpStream>,
    drain: &Drain,
    payload: &[u8],
) -> Option<WebSocketStream<TcpStream>> {
    drain
        .hand_over(ws, payload)
        .await
        .err()
        .map(|back| back.stream)
}

/// Without the feature no handoff is ever asked for.
#[cfg(not(all(feature = "handoff", target_os = "linux")))]
pub(crate) async fn hand_over(
    ws: WebSocketStream<TcpStream>,
    _: &Drain,
    _: &[u8],
) -> Option<WebSocketStream<TcpStream>> {
    Some(ws)
}

/// Why `--handoff` cannot work in this build.
#[cfg(not(all(feature = "handoff", target_os = "linux")))]
pub(crate) fn unavailable(example: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "--handoff needs the handoff feature (Linux): cargo run --example {example} --features handoff"
    ))
}

/// Takes over from the server waiting at `path`, giving each connection
/// it hands over (with its payload) to `inherit`, and returns its
/// listener; with no server there (or none handed over), binds `addr`.
#[cfg(all(feature = "handoff", target_os = "linux"))]
pub(crate) async fn take_over(
    name: &str,
    path: &str,
    addr: &str,
    config: Config,
    mut inherit: impl FnMut(Box<WebSocketStream<TcpStream>>, Vec<u8>),
) -> std::io::Result<TcpListener> {
    let mut listener = None;
    if let Some(mut predecessor) = handoff::take_over(path, config).await? {
        let started = Instant::now();
        let (mut moved, mut refused) = (0usize, 0usize);
        loop {
            match predecessor.next().await {
                Ok(Some(Inherited::Listener(inherited))) => listener = Some(inherited),
                Ok(Some(Inherited::Connection(ws, payload))) => {
                    moved += 1;
                    inherit(ws, payload);
                }
                Ok(Some(Inherited::Refused(error))) => {
                    refused += 1;
                    eprintln!("{name}: a connection could not be taken over: {error}");
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                // What came before is ours; the rest stays with it.
                Err(error) => {
                    eprintln!("{name}: the predecessor went away: {error}");
                    break;
                }
            }
        }
        eprintln!(
            "{name}: took over {moved} connections ({refused} refused) in {:?}",
            started.elapsed()
        );
    }
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(addr).await?,
    };
    eprintln!("{name}: listening on ws://{}", listener.local_addr()?);
    Ok(listener)
}

/// Serves with `serve` until a successor arrives at `path` (everything
/// moves to it) or a shutdown drains, and logs which.
#[cfg(all(feature = "handoff", target_os = "linux"))]
pub(crate) async fn serve(
    name: &str,
    path: &str,
    listener: &TcpListener,
    drain: &Drain,
    serve: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let offered = Some(Handoff::offer(path)?);
    match handoff::serve_until(drain, listener, offered, serve, shutdown_signal()).await? {
        Ended::Drained(report) => eprintln!("{name}: {report}"),
        Ended::HandedOver(report) => eprintln!("{name}: {report}"),
        _ => {}
    }
    Ok(())
}
