//! The `metrics` feature: what the adapters report, read back through the
//! Prometheus exporter, in-process with exact values, and (ignored here; run
//! by tests/metrics/run.sh) scraped from the `echo_server` example's
//! `/metrics` during an echo load.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rfc6455::handshake::{AcceptOptions, Rejection};
use rfc6455::rt::tokio::{WebSocketStream, connect_async};
use rfc6455::{CloseCode, Config, Error, Message, RateLimit, RateLimits, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every name `rfc6455::metrics` documents.
const NAMES: [&str; 10] = [
    "websocket_connections_open",
    "websocket_handshakes_total",
    "websocket_messages_total",
    "websocket_payload_bytes_total",
    "websocket_wire_bytes_total",
    "websocket_control_frames_total",
    "websocket_closes_total",
    "websocket_protocol_errors_total",
    "websocket_rate_limited_total",
    "websocket_ping_rtt_seconds",
];

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new().install_recorder().unwrap();
        rfc6455::metrics::describe();
        handle
    })
}

/// The value of the sample `name{labels…}` in Prometheus text, if present.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labelset, number) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| {
                labelset
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            })
            .then(|| number.trim().parse().ok())?
    })
}

/// A sample's name, labels and value.
type Sample<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn exactly(text: &str, name: &str, labels: &[(&str, &str)], expected: f64) {
    assert_eq!(
        value(text, name, labels),
        Some(expected),
        "{name}{labels:?} in\n{text}"
    );
}

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Echoes data messages until the stream ends.
async fn echo(mut ws: WebSocketStream<TcpStream>) {
    while let Some(Ok(message)) = ws.next().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && ws.send(message).await.is_err()
        {
            break;
        }
    }
}

// One run, every kind of event once or a counted number of times; each
// counter is then exactly what happened (the recorder is this binary's own).
#[test]
fn the_adapters_report_what_happened() {
    let handle = recorder();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A burst of 5 messages at 1 000 a second: 15 messages pause input.
        let limits = RateLimits::default().messages(Some(RateLimit::new(1_000, 5)));
        let server = tokio::spawn(async move {
            let builder = ServerBuilder::new()
                .config(Config::default().rate_limits(limits))
                .unwrap()
                .on_request(|request| {
                    if request.target() == "/deny" {
                        Err(Rejection::new(401))
                    } else {
                        Ok(AcceptOptions::new())
                    }
                });
            let mut tasks = Vec::new();
            for _ in 0..3 {
                let (tcp, _) = listener.accept().await.unwrap();
                match WebSocketStream::accept(tcp, &builder).await {
                    Ok(ws) => tasks.push(tokio::spawn(echo(ws))),
                    Err(Error::Rejected(401)) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            for task in tasks {
                task.await.unwrap();
            }
        });

        // A: 10 text and 5 binary echoes, a timed Ping, a normal close.
        let (mut a, _) = connect_async(format!("ws://{addr}/")).await.unwrap();
        for _ in 0..10 {
            a.send(Message::text("hello")).await.unwrap();
        }
        for _ in 0..5 {
            a.send(Message::binary(&b"abc"[..])).await.unwrap();
        }
        for _ in 0..15 {
            assert!(matches!(a.next().await, Some(Ok(_))));
        }
        a.ping().await.unwrap();
        assert!(matches!(a.next().await, Some(Ok(Message::Pong(_)))));
        a.close(CloseCode::NORMAL, "").await.unwrap();
        drop(a);

        // B: refused by the callback.
        let denied = connect_async(format!("ws://{addr}/deny")).await;
        assert!(denied.is_err());

        // C: an unmasked frame from a client, a protocol error.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(REQUEST).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(raw.read_u8().await.unwrap());
        }
        raw.write_all(&[0x81, 0x01, b'x']).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)).await;
        // The server lingers until this end closes too.
        drop(raw);
        server.await.unwrap();
    });

    let text = handle.render();
    for name in NAMES {
        assert!(text.contains(name), "{name} missing from\n{text}");
        // `describe` gave each its help text.
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no # HELP for {name} in\n{text}"
        );
    }
    let server = ("role", "server");
    let client = ("role", "client");
    let (din, dout) = (("direction", "in"), ("direction", "out"));
    let expected: &[Sample<'_>] = &[
        (
            "websocket_handshakes_total",
            &[server, ("outcome", "accepted")],
            2.0,
        ),
        (
            "websocket_handshakes_total",
            &[server, ("outcome", "rejected")],
            1.0,
        ),
        (
            "websocket_handshakes_total",
            &[client, ("outcome", "accepted")],
            1.0,
        ),
        (
            "websocket_handshakes_total",
            &[client, ("outcome", "invalid")],
            1.0,
        ),
        (
            "websocket_messages_total",
            &[server, din, ("kind", "text")],
            10.0,
        ),
        (
            "websocket_messages_total",
            &[server, din, ("kind", "binary")],
            5.0,
        ),
        (
            "websocket_messages_total",
            &[server, dout, ("kind", "text")],
            10.0,
        ),
        (
            "websocket_messages_total",
            &[server, dout, ("kind", "binary")],
            5.0,
        ),
        ("websocket_payload_bytes_total", &[server, din], 65.0),
        ("websocket_payload_bytes_total", &[server, dout], 65.0),
        (
            "websocket_control_frames_total",
            &[server, din, ("kind", "ping")],
            1.0,
        ),
        (
            "websocket_control_frames_total",
            &[server, dout, ("kind", "pong")],
            1.0,
        ),
        (
            "websocket_control_frames_total",
            &[client, dout, ("kind", "ping")],
            1.0,
        ),
        (
            "websocket_closes_total",
            &[server, ("side", "remote"), ("code", "1000")],
            1.0,
        ),
        (
            "websocket_closes_total",
            &[server, ("side", "local"), ("code", "1000")],
            1.0,
        ),
        (
            "websocket_closes_total",
            &[server, ("side", "local"), ("code", "1002")],
            1.0,
        ),
        (
            "websocket_closes_total",
            &[client, ("side", "local"), ("code", "1000")],
            1.0,
        ),
        (
            "websocket_protocol_errors_total",
            &[server, ("error", "unmasked_frame")],
            1.0,
        ),
        ("websocket_ping_rtt_seconds_count", &[client], 1.0),
        ("websocket_connections_open", &[server], 0.0),
        ("websocket_connections_open", &[client], 0.0),
    ];
    for (name, labels, count) in expected {
        exactly(&text, name, labels, *count);
    }
    let wire = value(&text, "websocket_wire_bytes_total", &[server, din]).unwrap();
    assert!(wire > 65.0 + 15.0 * 6.0, "{wire}");
    let limited = value(&text, "websocket_rate_limited_total", &[server]).unwrap();
    assert!(limited >= 1.0, "{limited}");
}

/// `GET /metrics` over a plain HTTP/1.0 request.
async fn scrape(addr: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert!(response.contains("# HELP websocket_handshakes_total "));
    // Off its path, the endpoint answers 404.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut other = Vec::new();
    tcp.read_to_end(&mut other).await.unwrap();
    assert!(other.starts_with(b"HTTP/1.1 404 "), "{other:?}");
    response
}

// tests/metrics/run.sh starts `echo_server --metrics` and runs this with
// WS_URL and METRICS_ADDR: 4 clients echo 2 000 messages each while
// /metrics is scraped; the documented names are there with values that fit
// the load.
#[test]
#[ignore = "needs the echo_server example running with --metrics (tests/metrics/run.sh)"]
fn the_example_serves_metrics_during_an_echo_load() {
    let url = std::env::var("WS_URL").expect("WS_URL");
    let metrics = std::env::var("METRICS_ADDR").expect("METRICS_ADDR");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (ws, _) = connect_async(url.as_str()).await.unwrap();
            clients.push(ws);
        }
        let mut tasks = Vec::new();
        for mut ws in clients {
            tasks.push(tokio::spawn(async move {
                for i in 0..2_000u32 {
                    ws.send(Message::binary(i.to_be_bytes().to_vec()))
                        .await
                        .unwrap();
                    // The echo, after the Pong to the Ping below.
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Binary(_))) => break,
                            Some(Ok(Message::Pong(_))) => {}
                            other => panic!("{other:?}"),
                        }
                    }
                    if i == 1_000 {
                        ws.ping().await.unwrap();
                    }
                }
                ws
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let during = scrape(&metrics).await;
        let open = value(&during, "websocket_connections_open", &[("role", "server")]);
        assert_eq!(open, Some(4.0), "{during}");
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await.unwrap());
        }
        let after = scrape(&metrics).await;
        for name in [
            "websocket_connections_open",
            "websocket_handshakes_total",
            "websocket_messages_total",
            "websocket_payload_bytes_total",
            "websocket_wire_bytes_total",
            "websocket_control_frames_total",
        ] {
            assert!(after.contains(name), "{name} missing from\n{after}");
        }
        let server = ("role", "server");
        let received = value(
            &after,
            "websocket_messages_total",
            &[server, ("direction", "in"), ("kind", "binary")],
        )
        .unwrap();
        // Counted as each connection waits: all but the last few.
        assert!((7_000.0..=8_000.0).contains(&received), "{received}");
        let accepted = value(
            &after,
            "websocket_handshakes_total",
            &[server, ("outcome", "accepted")],
        )
        .unwrap();
        assert!(accepted >= 4.0, "{accepted}");
        for mut ws in done {
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let closed = scrape(&metrics).await;
        for name in NAMES.iter().filter(|n| !n.contains("errors")) {
            assert!(closed.contains(name), "{name} missing from\n{closed}");
        }
        exactly(&closed, "websocket_connections_open", &[server], 0.0);
        exactly(
            &closed,
            "websocket_closes_total",
            &[server, ("side", "remote"), ("code", "1000")],
            4.0,
        );
    });
}
