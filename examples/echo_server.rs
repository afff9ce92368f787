//! An echo server: every text and binary message comes back with its type.
//!
//! ```text
//! cargo run --release --example echo_server            # ws://127.0.0.1:9001
//! cargo run --release --example echo_server -- 0.0.0.0:9002
//! cargo run --release --example echo_server --features metrics -- --metrics 127.0.0.1:9090
//! cargo run --release --example echo_server --features handoff -- --handoff /tmp/echo.sock
//! ```
//!
//! With the `metrics` feature, `--metrics ADDR` serves the adapter's
//! metrics (see `rfc6455::metrics`) in Prometheus's text format on
//! `http://ADDR/metrics`.
//!
//! Each connection runs the echo loop in `examples/support/echo.rs`.
//! permessage-deflate is accepted when offered. This is the Autobahn and
//! benchmark target; nothing is logged per message.
//!
//! On Ctrl-C or SIGTERM it drains (`rfc6455::rt::drain`): new upgrades get
//! 503, and the open connections are closed with 1001 over five seconds.
//!
//! With the `handoff` feature (Linux), `--handoff PATH` deploys without a
//! reconnect (`rfc6455::rt::handoff`): the server waits at PATH for a
//! successor, and a server started with the same PATH takes over the
//! listening socket and every connection, between messages, from the one
//! waiting there, which then exits. Clients notice nothing.

use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::rt::drain::{Drain, DrainConfig, shutdown_signal};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Config, Error, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/deploy.rs"]
mod deploy;

#[path = "support/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut handoff = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--metrics" => {
                let Some(metrics) = args.next() else {
                    return Err(std::io::Error::other("--metrics needs an address"));
                };
                serve_metrics(&metrics)?;
            }
            "--handoff" => {
                handoff = Some(
                    args.next()
                        .ok_or_else(|| std::io::Error::other("--handoff needs a path"))?,
                )
            }
            _ => addr = arg,
        }
    }
    // permessage-deflate is accepted when the client offers it; an echo
    // answers in kind, so every message is compressed (threshold 0).
    // The drain refuses upgrades once it begins and closes each connection.
    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let drain = Drain::new(DrainConfig::default());
    let server = ServerBuilder::new().config(config.clone())?.drain(&drain);
    if let Some(path) = handoff {
        return with_handoff(&path, &addr, config, &drain, &server).await;
    }
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo_server: listening on ws://{}", listener.local_addr()?);
    let serve = serve(&listener, &drain, &server);
    let report = drain.serve_until(serve, shutdown_signal()).await?;
    eprintln!("echo_server: {report}");
    Ok(())
}

/// Takes over from the server waiting at `path` (or binds `addr`), then
/// serves until a successor takes over in turn, or a shutdown drains.
#[cfg(all(feature = "handoff", target_os = "linux"))]
async fn with_handoff(
    path: &str,
    addr: &str,
    config: Config,
    drain: &Drain,
    server: &ServerBuilder,
) -> std::io::Result<()> {
    let listener = deploy::take_over("echo_server", path, addr, config, |ws, _| {
        tokio::spawn(drain.watch(run(Incoming::Inherited(ws), drain.clone())));
    })
    .await?;
    deploy::serve(
        "echo_server",
        path,
        &listener,
        drain,
        serve(&listener, drain, server),
    )
    .await
}

#[cfg(not(all(feature = "handoff", target_os = "linux")))]
async fn with_handoff(
    _: &str,
    _: &str,
    _: Config,
    _: &Drain,
    _: &ServerBuilder,
) -> std::io::Result<()> {
    Err(deploy::unavailable("echo_server"))
}

/// Accepts connections, each an echo task the drain watches.
async fn serve(
    listener: &TcpListener,
    drain: &Drain,
    server: &ServerBuilder,
) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        let incoming = Incoming::Accept(tcp, server.clone());
        tokio::spawn(drain.watch(run(incoming, drain.clone())));
    }
}

/// Where a connection comes from.
enum Incoming {
    /// A TCP connection to accept.
    Accept(TcpStream, ServerBuilder),
    /// A stream a predecessor handed over (boxed: this argument stays in
    /// the task's future beside the stream it yields).
    #[cfg(all(feature = "handoff", target_os = "linux"))]
    Inherited(Box<WebSocketStream<TcpStream>>),
}

/// Echoes until the connection ends, or (with `--handoff`) moves to the
/// successor between messages. The task is this future alone, so the
/// stream is held once: moved into another `async fn`, it would stay in
/// this one's future too, doubling what an idle connection costs
/// (`benches/echo/scale.sh max 10000`: 2.9 KiB against 5.6).
async fn run(incoming: Incoming, drain: Drain) {
    let mut ws = match incoming {
        Incoming::Accept(tcp, server) => match accept(tcp, &server).await {
            Ok(ws) => ws,
            Err(error) => return report(&error),
        },
        #[cfg(all(feature = "handoff", target_os = "linux"))]
        Incoming::Inherited(ws) => *ws,
    };
    // Tied to the drain from inside its task (an accepted one already is).
    drain.attach(&mut ws);
    loop {
        match echo::echo(&mut ws).await {
            // Boxed: the idle task stays the size of its echo loop.
            Err(Error::HandoffRequested) => {
                match Box::pin(deploy::hand_over(ws, &drain, &[])).await {
                    Some(back) => ws = back,
                    None => return,
                }
            }
            Err(error) => return report(&error),
            Ok(()) => return,
        }
    }
}

async fn accept(
    tcp: TcpStream,
    server: &ServerBuilder,
) -> Result<WebSocketStream<TcpStream>, Error> {
    tcp.set_nodelay(true)?;
    WebSocketStream::accept(tcp, server).await
}

fn report(error: &Error) {
    if !matches!(error, Error::ConnectionClosed) {
        eprintln!("echo_server: connection ended: {error}");
    }
}

/// Installs the Prometheus recorder and its HTTP listener on `addr`.
#[cfg(feature = "metrics")]
fn serve_metrics(addr: &str) -> std::io::Result<()> {
    let addr: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    rfc6455::metrics::describe();
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    eprintln!("echo_server: metrics on http://{addr}/metrics");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = answer_metrics(tcp, &handle).await;
            });
        }
    });
    Ok(())
}

/// Answers one scrape: `GET /metrics` gets the Prometheus text format (its
/// content type with the format's version), any other path 404. The request
/// head is read up to 8 KiB, with a deadline.
#[cfg(feature = "metrics")]
async fn answer_metrics(
    mut tcp: TcpStream,
    handle: &metrics_exporter_prometheus::PrometheusHandle,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read_head)
        .await
        .map_err(std::io::Error::other)??;
    let (status, content_type, body) = if head.starts_with(b"GET /metrics ") {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(response.as_bytes()).await?;
    tcp.shutdown().await
}

#[cfg(not(feature = "metrics"))]
fn serve_metrics(_: &str) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "--metrics needs the metrics feature: cargo run --example echo_server --features metrics",
    ))
}
