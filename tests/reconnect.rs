//! `rfc6455::reconnect`: the retry verdicts and the full-jitter backoff.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rfc6455::handshake::{ClientHandshake, ClientRequest};
use rfc6455::reconnect::{Backoff, BackoffConfig, Verdict};
use rfc6455::{CloseCode, CloseFrame, Error, HandshakeError, ProtocolError};

#[test]
fn delays_lie_within_the_growing_ceiling() {
    let config = BackoffConfig::default();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..200 {
        let mut backoff = Backoff::new(config.clone());
        for n in 0..12 {
            let ceiling = config.base.mul_f64(2f64.powi(n)).min(config.cap);
            assert_eq!(backoff.ceiling(), ceiling);
            let delay = backoff.next_delay(&mut rng);
            assert!(delay <= ceiling, "attempt {n}: {delay:?} > {ceiling:?}");
        }
        // Past the cap it stays there.
        assert_eq!(backoff.ceiling(), config.cap);
    }
}

// 1 000 clients dropped at once draw their first delays spread over the
// whole window, not in one burst: each tenth of [0, base] gets 50-150.
#[test]
fn a_thousand_first_delays_spread_over_the_window() {
    let config = BackoffConfig::default().base(Duration::from_secs(5));
    let mut buckets = [0usize; 10];
    for seed in 0..1_000 {
        let mut backoff = Backoff::new(config.clone());
        let delay = backoff.next_delay(&mut StdRng::seed_from_u64(seed));
        let tenth = (delay.as_secs_f64() / 0.5) as usize;
        buckets[tenth.min(9)] += 1;
    }
    eprintln!("first delays per half second: {buckets:?}");
    assert!(
        buckets.iter().all(|&n| (50..=150).contains(&n)),
        "{buckets:?}"
    );
}

#[test]
fn a_stable_connection_resets_the_delays() {
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..5 {
        backoff.next_delay(&mut rng);
    }
    let t0 = Instant::now();
    backoff.connected(t0);
    backoff.disconnected(t0 + Duration::from_secs(9));
    assert_eq!(backoff.attempt(), 5, "9 s is not stable");
    backoff.connected(t0);
    backoff.disconnected(t0 + Duration::from_secs(10));
    assert_eq!(backoff.attempt(), 0);
    assert_eq!(backoff.ceiling(), Duration::from_millis(500));
}

#[test]
fn close_codes_say_whether_to_come_back() {
    for code in [1001, 1005, 1006, 1011, 1012, 1013, 1014] {
        let close = CloseFrame::new(CloseCode(code), "");
        assert_eq!(Verdict::for_close(&close), Verdict::Retry, "{code}");
    }
    for code in [1000, 1002, 1003, 1007, 1008, 1009, 1010, 1015, 3000, 4000] {
        let close = CloseFrame::new(CloseCode(code), "");
        assert_eq!(Verdict::for_close(&close), Verdict::Stop, "{code}");
    }
}

/// The error a client gets for `response`.
fn refused(response: &str) -> Error {
    let request = ClientRequest::new("ws://h/").unwrap();
    let mut client = ClientHandshake::with_nonce(&request, *b"the sample nonce")
        .unwrap()
        .0;
    let error = client.receive(response.as_bytes()).unwrap_err();
    assert!(matches!(error, HandshakeError::Refused(_)));
    Error::Handshake(error)
}

#[test]
fn errors_say_whether_to_come_back() {
    let io = Error::Io(std::io::ErrorKind::ConnectionRefused.into());
    assert_eq!(Verdict::for_error(&io), Verdict::Retry);
    let timeout = Error::HandshakeTimeout(Duration::from_secs(10));
    assert_eq!(Verdict::for_error(&timeout), Verdict::Retry);
    let idle = Error::Protocol(ProtocolError::IdleTimeout);
    assert_eq!(Verdict::for_error(&idle), Verdict::Retry);
    let gone = Error::Protocol(ProtocolError::AbnormalClosure);
    assert_eq!(Verdict::for_error(&gone), Verdict::Retry);
    let limited = Error::Protocol(ProtocolError::RateLimited);
    assert_eq!(Verdict::for_error(&limited), Verdict::Stop);
    let utf8 = Error::Protocol(ProtocolError::InvalidUtf8);
    assert_eq!(Verdict::for_error(&utf8), Verdict::Stop);

    let busy = refused("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\n");
    assert_eq!(
        Verdict::for_error(&busy),
        Verdict::RetryAfter(Duration::from_secs(5))
    );
    let down = refused("HTTP/1.1 503 Service Unavailable\r\n\r\n");
    assert_eq!(Verdict::for_error(&down), Verdict::Retry);
    // An HTTP date is not waited for: the backoff decides.
    let dated =
        refused("HTTP/1.1 502 Bad Gateway\r\nRetry-After: Fri, 04 Dec 2026 22:00:00 GMT\r\n\r\n");
    assert_eq!(Verdict::for_error(&dated), Verdict::Retry);
    for status in [400, 401, 403, 404, 426] {
        let no = refused(&format!("HTTP/1.1 {status} No\r\n\r\n"));
        assert_eq!(Verdict::for_error(&no), Verdict::Stop, "{status}");
    }
    assert_eq!(Verdict::for_error(&Error::TlsRequired), Verdict::Stop);
}

// A certificate the client does not trust will not be trusted next time.
#[cfg(feature = "rustls")]
#[test]
fn an_untrusted_certificate_is_not_retried() {
    let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let error = Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
    assert_eq!(Verdict::for_error(&error), Verdict::Stop);
    let other = Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::DecryptError,
    ));
    assert_eq!(Verdict::for_error(&other), Verdict::Retry);
}

/// `rt::reconnect::Reconnect` against real servers on loopback, on tokio's
/// paused clock where a test measures waits, else on a real clock with
/// short delays.
#[cfg(feature = "tokio")]
mod adapter {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rfc6455::handshake::{AcceptOptions, Rejection};
    use rfc6455::reconnect::BackoffConfig;
    use rfc6455::rt::reconnect::{Event, Reconnect};
    use rfc6455::rt::tokio::{MaybeTlsStream, WebSocketStream};
    use rfc6455::{CloseCode, Error, HandshakeError, Message, ServerBuilder};
    use tokio::net::TcpListener;

    /// What the server does with its n-th connection.
    #[derive(Clone, Copy, Debug)]
    enum Script {
        /// Accept, then close with this code.
        Close(u16),
        /// Accept, wait this long, then close with this code.
        CloseAfter(Duration, u16),
        /// Refuse the upgrade with this status and `Retry-After` in seconds.
        Refuse(u16, u64),
        /// Accept and echo until the client goes.
        Echo,
    }

    /// A server playing `scripts` in turn (the last one for ever); its URL
    /// and a count of the TCP connections it took.
    async fn server(scripts: Vec<Script>) -> (String, Arc<Mutex<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let taken = Arc::new(Mutex::new(0));
        let count = Arc::clone(&taken);
        tokio::spawn(async move {
            for n in 0.. {
                let (tcp, _) = listener.accept().await.unwrap();
                *count.lock().unwrap() += 1;
                let script = scripts[n.min(scripts.len() - 1)];
                tokio::spawn(async move {
                    let builder = ServerBuilder::new().on_request(move |_| match script {
                        Script::Refuse(status, after) => {
                            Err(Rejection::new(status).retry_after(Duration::from_secs(after)))
                        }
                        _ => Ok(AcceptOptions::new()),
                    });
                    let Ok(mut ws) = WebSocketStream::accept(tcp, &builder).await else {
                        return;
                    };
                    match script {
                        Script::Close(code) => {
                            let _ = ws.close(CloseCode(code), "bye").await;
                        }
                        Script::CloseAfter(after, code) => {
                            tokio::time::sleep(after).await;
                            let _ = ws.close(CloseCode(code), "bye").await;
                        }
                        _ => {
                            while let Some(Ok(message)) = ws.next().await {
                                if message.is_text() && ws.send(message).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        (url, taken)
    }

    fn log(events: &Arc<Mutex<Vec<String>>>) -> impl FnMut(&Event<'_>) + Send + 'static {
        let events = Arc::clone(events);
        move |event| {
            let line = match event {
                Event::Connecting { attempt, delay } => format!("connecting {attempt} {delay:?}"),
                Event::Connected => "connected".to_owned(),
                Event::Failed(error) => format!("failed {error}"),
                Event::Disconnected { close, .. } => {
                    format!("disconnected {:?}", close.map(|c| c.code.0))
                }
                _ => "other".to_owned(),
            };
            events.lock().unwrap().push(line);
        }
    }

    fn quick() -> BackoffConfig {
        BackoffConfig::default().base(Duration::from_millis(50))
    }

    async fn run_out(ws: &mut WebSocketStream<MaybeTlsStream>) -> Option<Error> {
        loop {
            match ws.next().await {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Some(error),
                None => return None,
            }
        }
    }

    // A server restart (1012) is come back from after a random delay within
    // the first ceiling, and the resume step runs on the new connection.
    #[tokio::test]
    async fn a_restart_is_come_back_from() {
        let (url, taken) = server(vec![Script::Close(1012), Script::Echo]).await;
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reconnect = Reconnect::new(url.as_str())
            .unwrap()
            .backoff(quick())
            .seed(3)
            .on_event(log(&events));
        let mut ws = reconnect.connect().await.unwrap();
        let error = run_out(&mut ws).await;
        reconnect.ended(&ws, error.as_ref());
        let mut ws = reconnect.connect().await.unwrap();
        ws.send(Message::text("resume")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("resume"));
        assert_eq!(*taken.lock().unwrap(), 2);
        let events = events.lock().unwrap().clone();
        assert_eq!(events[0], "connecting 1 0ns");
        assert_eq!(events[1], "connected");
        assert_eq!(events[2], "disconnected Some(1012)");
        assert!(events[3].starts_with("connecting 1 "), "{events:?}");
        assert_eq!(events[4], "connected");
    }

    // 1008 (policy) and 401 are not retried.
    #[tokio::test]
    async fn refusals_are_final() {
        let (url, taken) = server(vec![Script::Close(1008)]).await;
        let mut reconnect = Reconnect::new(url.as_str()).unwrap().backoff(quick());
        let mut ws = reconnect.connect().await.unwrap();
        let error = run_out(&mut ws).await;
        reconnect.ended(&ws, error.as_ref());
        assert!(matches!(
            reconnect.connect().await,
            Err(Error::ConnectionClosed)
        ));
        assert_eq!(*taken.lock().unwrap(), 1);

        let (url, taken) = server(vec![Script::Refuse(401, 1)]).await;
        let mut reconnect = Reconnect::new(url.as_str()).unwrap().backoff(quick());
        let result = reconnect.connect().await;
        assert!(
            matches!(&result, Err(Error::Handshake(HandshakeError::Refused(r))) if r.status == 401),
            "{result:?}"
        );
        assert_eq!(*taken.lock().unwrap(), 1);
    }

    // 503 with Retry-After: 5 waits those 5 s (on the paused clock), then
    // gets in.
    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let (url, taken) = server(vec![Script::Refuse(503, 5), Script::Echo]).await;
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reconnect = Reconnect::new(url.as_str())
            .unwrap()
            .backoff(quick())
            .on_event(log(&events));
        let started = tokio::time::Instant::now();
        let _ws = reconnect.connect().await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_100),
            "{waited:?}"
        );
        assert_eq!(*taken.lock().unwrap(), 2);
        let events = events.lock().unwrap().clone();
        assert!(events[1].starts_with("failed "), "{events:?}");
        assert_eq!(events[2], "connecting 1 5s");
    }

    // On the paused clock: each wait is the delay drawn for it, within its
    // attempt's ceiling, and a connection that lasted the stable period
    // starts the count again while a short one does not.
    #[tokio::test(start_paused = true)]
    async fn waits_follow_the_backoff_and_reset_after_a_stable_connection() {
        let (url, _) = server(vec![
            Script::Refuse(502, 1),
            Script::CloseAfter(Duration::from_secs(1), 1012),
            Script::CloseAfter(Duration::from_secs(11), 1012),
            Script::Echo,
        ])
        .await;
        let config = BackoffConfig::default()
            .base(Duration::from_secs(1))
            .stable_after(Duration::from_secs(10));
        let times = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&times);
        let mut reconnect = Reconnect::new(url.as_str())
            .unwrap()
            .backoff(config.clone())
            .seed(5)
            .on_event(move |event| {
                if let Event::Connecting { attempt, delay } = event {
                    let now = tokio::time::Instant::now();
                    recorded.lock().unwrap().push((now, *attempt, *delay));
                }
            });
        for _ in 0..2 {
            let mut ws = reconnect.connect().await.unwrap();
            let error = run_out(&mut ws).await;
            reconnect.ended(&ws, error.as_ref());
        }
        let _ws = reconnect.connect().await.unwrap();
        let times = times.lock().unwrap().clone();
        let attempts: Vec<u32> = times.iter().map(|&(_, attempt, _)| attempt).collect();
        // 502 with Retry-After (retried after it); a 1 s connection (not
        // stable: the count goes on); an 11 s one (stable: it starts again).
        assert_eq!(attempts, [1, 1, 2, 1], "{times:?}");
        // Each attempt waited its delay before the next event.
        for pair in times.windows(2) {
            let ((at, _, delay), (next, _, _)) = (pair[0], pair[1]);
            assert!(next - at >= delay, "{times:?}");
        }
        for (n, &(_, attempt, delay)) in times.iter().enumerate().skip(1) {
            let ceiling = config.base * 2u32.pow(attempt - 1);
            let retry_after = n == 1;
            assert!(
                if retry_after {
                    delay == Duration::from_secs(1)
                } else {
                    delay <= ceiling
                },
                "attempt {attempt}: {delay:?} over {ceiling:?}"
            );
        }
    }
    // Nothing listening yet: refused connections are retried with growing
    // ceilings until the server appears.
    #[tokio::test]
    async fn a_server_that_is_not_up_yet_is_waited_for() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reconnect = Reconnect::new(format!("ws://{addr}/").as_str())
            .unwrap()
            .backoff(BackoffConfig::default().base(Duration::from_millis(20)))
            .seed(9)
            .on_event(log(&events));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let listener = TcpListener::bind(addr).await.unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let ws = WebSocketStream::accept(tcp, &ServerBuilder::new())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(ws);
        });
        let _ws = reconnect.connect().await.unwrap();
        let events = events.lock().unwrap().clone();
        let failed = events.iter().filter(|e| e.starts_with("failed")).count();
        assert!(failed >= 2, "{events:?}");
        assert_eq!(events.last().unwrap(), "connected");
    }

    /// An echo server on `listener`; aborting its task drops the listener
    /// and every connection (no Close: the clients see 1006).
    fn echo_server(listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                tasks.spawn(async move {
                    let Ok(mut ws) = WebSocketStream::accept(tcp, &ServerBuilder::new()).await
                    else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_text() && ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        })
    }

    // The echo server dies and a new one starts on the same port: 1 000
    // reconnecting clients come back, each after its own random delay,
    // spread over the first ceiling instead of in one burst, and each
    // runs its resume step on the new connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_clients_come_back_spread_over_the_window() {
        const CLIENTS: usize = 1_000;
        const BASE: Duration = Duration::from_secs(1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("ws://{addr}/");
        let first = echo_server(listener);
        let (ready_tx, mut ready) = tokio::sync::mpsc::channel(CLIENTS);
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (url, ready_tx) = (url.clone(), ready_tx.clone());
            clients.push(tokio::spawn(async move {
                let delay = Arc::new(Mutex::new(Duration::MAX));
                let drawn = Arc::clone(&delay);
                let mut reconnect = Reconnect::new(url.as_str())
                    .unwrap()
                    .backoff(BackoffConfig::default().base(BASE))
                    .on_event(move |event| {
                        if let Event::Connecting { delay, .. } = event {
                            *drawn.lock().unwrap() = *delay;
                        }
                    });
                let mut ws = reconnect.connect().await.unwrap();
                ready_tx.send(()).await.unwrap();
                let error = run_out(&mut ws).await;
                reconnect.ended(&ws, error.as_ref());
                let mut ws = reconnect.connect().await.unwrap();
                let back = tokio::time::Instant::now();
                ws.send(Message::text("resume")).await.unwrap();
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("resume"));
                let delay = *delay.lock().unwrap();
                (back, delay)
            }));
        }
        for _ in 0..CLIENTS {
            ready.recv().await.unwrap();
        }
        // The restart: the old server and its connections go, a new one
        // listens on the same port.
        first.abort();
        let _ = first.await;
        let stopped = tokio::time::Instant::now();
        let _second = echo_server(TcpListener::bind(addr).await.unwrap());

        let mut tenths = [0usize; 10];
        let mut delays = Vec::new();
        for client in clients {
            let (back, delay) = client.await.unwrap();
            assert!(delay <= BASE, "{delay:?}");
            delays.push(delay);
            let tenth = ((back - stopped).as_secs_f64() / BASE.as_secs_f64() * 10.0) as usize;
            tenths[tenth.min(9)] += 1;
        }
        eprintln!("reconnections per tenth of {BASE:?} after the restart: {tenths:?}");
        let mean = CLIENTS / 10;
        assert!(tenths.iter().all(|&n| n <= 2 * mean), "{tenths:?}");
        delays.sort();
        delays.dedup();
        assert!(
            delays.len() > CLIENTS * 99 / 100,
            "delays are random: {} distinct",
            delays.len()
        );
    }
}
