//! `rfc6455::admission`: connection and handshake limits per client address,
//! trusted proxies, and the refusals' responses.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rfc6455::RateLimit;
use rfc6455::admission::{Admission, AdmissionConfig, Denied, IpNetwork};
use rfc6455::handshake::Rejection;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn connections_per_address_are_limited_and_given_back() {
    let admission = Admission::new(AdmissionConfig::default().max_per_address(Some(2)));
    let a = ip("192.0.2.1");
    let first = admission.admit(a).unwrap();
    let _second = admission.admit(a).unwrap();
    let denied = admission.admit(a).unwrap_err();
    assert!(matches!(denied, Denied::TooManyConnections { .. }));
    assert_eq!(denied.status(), 429);
    // Another address is not affected.
    let _other = admission.admit(ip("192.0.2.2")).unwrap();
    assert_eq!(admission.connections_from(a), 2);
    assert_eq!(admission.connections(), 3);
    drop(first);
    assert_eq!(admission.connections_from(a), 1);
    let _third = admission.admit(a).unwrap();
}

#[test]
fn the_server_as_a_whole_answers_503_when_full() {
    let admission = Admission::new(AdmissionConfig::default().max_connections(Some(2)));
    let _a = admission.admit(ip("192.0.2.1")).unwrap();
    let b = admission.admit(ip("192.0.2.2")).unwrap();
    let denied = admission.admit(ip("192.0.2.3")).unwrap_err();
    assert_eq!(denied.status(), 503);
    drop(b);
    let _c = admission.admit(ip("192.0.2.3")).unwrap();
}

// 10 handshakes a second with a burst of 5: the sixth at once waits 100 ms.
#[test]
fn handshakes_per_address_are_a_token_bucket() {
    let admission = Admission::new(
        AdmissionConfig::default().handshakes_per_address(Some(RateLimit::new(10, 5))),
    );
    let t0 = Instant::now();
    let a = ip("198.51.100.9");
    let permits: Vec<_> = (0..5).map(|_| admission.admit_at(a, t0).unwrap()).collect();
    drop(permits); // closed connections do not give handshakes back
    let denied = admission.admit_at(a, t0).unwrap_err();
    assert_eq!(
        denied,
        Denied::TooManyHandshakes {
            retry_after: Duration::from_millis(100)
        }
    );
    assert_eq!(denied.status(), 429);
    assert!(
        admission
            .admit_at(a, t0 + Duration::from_millis(99))
            .is_err()
    );
    let _ok = admission
        .admit_at(a, t0 + Duration::from_millis(100))
        .unwrap();
    // That took the one token the 100 ms brought back.
    assert!(
        admission
            .admit_at(a, t0 + Duration::from_millis(100))
            .is_err()
    );
    // Another address has a bucket of its own.
    let _other = admission.admit_at(ip("198.51.100.10"), t0).unwrap();
}

#[test]
fn a_refusal_answers_with_its_status_and_retry_after() {
    let rejection = Rejection::from(Denied::TooManyHandshakes {
        retry_after: Duration::from_millis(1_200),
    });
    let response = String::from_utf8(rejection.to_bytes().unwrap().to_vec()).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nRetry-After: 2\r\n"), "{response}");
    let rejection = Rejection::from(Denied::Full {
        retry_after: Duration::ZERO,
    });
    let response = String::from_utf8(rejection.to_bytes().unwrap().to_vec()).unwrap();
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert!(
        response.contains("\r\nRetry-After: 1\r\n"),
        "at least a second"
    );
}

// One IPv6 host holds a /64: its addresses share a limit; another /64 does not.
#[test]
fn ipv6_clients_are_keyed_by_their_network() {
    let admission = Admission::new(AdmissionConfig::default().max_per_address(Some(1)));
    let _a = admission.admit(ip("2001:db8:1:2::1")).unwrap();
    assert!(admission.admit(ip("2001:db8:1:2::ffff")).is_err());
    let _b = admission.admit(ip("2001:db8:1:3::1")).unwrap();
    // An IPv4-mapped address is the IPv4 address.
    let _c = admission.admit(ip("192.0.2.5")).unwrap();
    assert!(admission.admit(ip("::ffff:192.0.2.5")).is_err());
}

#[test]
fn tracked_addresses_are_bounded() {
    let admission = Admission::new(
        AdmissionConfig::default()
            .handshakes_per_address(Some(RateLimit::new(1, 1)))
            .max_addresses(2),
    );
    let t0 = Instant::now();
    let _a = admission.admit_at(ip("192.0.2.1"), t0).unwrap();
    let _b = admission.admit_at(ip("192.0.2.2"), t0).unwrap();
    let denied = admission.admit_at(ip("192.0.2.3"), t0).unwrap_err();
    assert!(matches!(denied, Denied::TooManyAddresses { .. }));
    assert_eq!(denied.status(), 503);
    // Once an entry is idle (connection gone, bucket refilled) it is swept.
    drop(_a);
    let later = t0 + Duration::from_secs(1);
    let _c = admission.admit_at(ip("192.0.2.3"), later).unwrap();
}

fn headers<'a>(list: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = (&'a str, &'a [u8])> {
    list.iter().map(|(n, v)| (*n, v.as_bytes()))
}

#[test]
fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let admission = Admission::new(AdmissionConfig::default().trusted_proxies(vec![
        "127.0.0.1".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ]));
    let xff = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3")];
    // An untrusted peer's header is ignored.
    assert_eq!(
        admission.client_address(ip("198.51.100.1"), headers(&xff)),
        ip("198.51.100.1")
    );
    // Through trusted proxies: the nearest address that is not one. The
    // leftmost entry is whatever the client wrote, and is not believed.
    assert_eq!(
        admission.client_address(ip("127.0.0.1"), headers(&xff)),
        ip("203.0.113.7")
    );
    // Across several field lines, in order.
    let lines = [
        ("x-forwarded-for", "203.0.113.8"),
        ("X-Forwarded-For", "10.0.0.1"),
    ];
    assert_eq!(
        admission.client_address(ip("10.9.9.9"), headers(&lines)),
        ip("203.0.113.8")
    );
    // Forwarded (RFC 7239) wins over X-Forwarded-For; ports and brackets go.
    let forwarded = [
        ("X-Forwarded-For", "192.0.2.99"),
        (
            "Forwarded",
            r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2:8080"#,
        ),
    ];
    assert_eq!(
        admission.client_address(ip("::ffff:127.0.0.1"), headers(&forwarded)),
        ip("2001:db8:cafe::17")
    );
    // An obfuscated hop stops the walk at the last proxy.
    let hidden = [("Forwarded", "for=_hidden, for=10.0.0.3")];
    assert_eq!(
        admission.client_address(ip("127.0.0.1"), headers(&hidden)),
        ip("10.0.0.3")
    );
    // No header at all: the proxy itself.
    assert_eq!(
        admission.client_address(ip("fd00::1"), headers(&[])),
        ip("fd00::1")
    );
}

#[test]
fn networks_parse_and_match() {
    let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
    assert!(net.contains(ip("10.255.0.1")));
    assert!(!net.contains(ip("11.0.0.1")));
    assert!(!net.contains(ip("::1")));
    let host: IpNetwork = "::1".parse().unwrap();
    assert!(host.contains(ip("::1")));
    assert!(!host.contains(ip("::2")));
    assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
    assert!("nonsense".parse::<IpNetwork>().is_err());
    assert_eq!(
        "10.1.2.3/8".parse::<IpNetwork>().unwrap(),
        "10.0.0.0/8".parse().unwrap()
    );
}

// Over real sockets: a second connection from 127.0.0.1 under a limit of
// one gets 429 with Retry-After; once the first ends, a third gets in.
#[cfg(feature = "tokio")]
#[test]
fn the_tokio_adapter_refuses_over_the_limit() {
    use rfc6455::rt::tokio::WebSocketStream;
    use rfc6455::{Error, ServerBuilder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let admission = Admission::new(AdmissionConfig::default().max_per_address(Some(1)));
        let watch = admission.clone();
        let server = tokio::spawn(async move {
            let builder = ServerBuilder::new().admission(admission.clone());
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                let (tcp, peer) = listener.accept().await.unwrap();
                match WebSocketStream::accept((tcp, peer), &builder).await {
                    Ok(mut ws) => {
                        outcomes.push(200);
                        // The stream holds the place until it drops.
                        tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
                    }
                    Err(Error::Rejected(status)) => outcomes.push(status),
                    Err(other) => panic!("{other}"),
                }
            }
            outcomes
        });
        let (mut first, _) = rfc6455::rt::tokio::connect_async(&url).await.unwrap();
        // The second, by hand, to read the refusal's response.
        let mut tcp = tokio::net::TcpStream::connect(&url[5..url.len() - 1])
            .await
            .unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 429 "), "{response}");
        assert!(response.contains("\r\nRetry-After: 5\r\n"), "{response}");
        first.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
        drop(first);
        // The server task drops the permit when the connection ends.
        while watch.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(rfc6455::rt::tokio::connect_async(&url).await.is_ok());
        assert_eq!(server.await.unwrap(), vec![200, 429, 200]);
    });
}

/// Limits that key on an address the server never gave: its own setup is
/// at fault, so the client is answered 500, not reset or admitted.
#[test]
fn limits_without_a_peer_address_answer_500() {
    use rfc6455::blocking::WebSocket;
    use rfc6455::{ClientBuilder, Error, HandshakeError, ServerBuilder};
    use std::os::unix::net::UnixStream;

    let (a, b) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let builder = ServerBuilder::new().admission(Admission::new(AdmissionConfig::default()));
        WebSocket::accept(b, &builder).map(drop)
    });
    let client = ClientBuilder::new("ws://h/").unwrap();
    let Err(Error::Handshake(HandshakeError::Refused(refusal))) = WebSocket::client(a, &client)
    else {
        panic!("expected a refusal")
    };
    assert_eq!(refusal.status, 500);
    assert!(matches!(server.join().unwrap(), Err(Error::Rejected(500))));
}

// A connection counts from accept: a direct client's place is taken before
// its head is read, and the handshake rate is charged then.
#[test]
fn a_direct_connection_counts_from_accept() {
    let admission = Admission::new(
        AdmissionConfig::default()
            .max_per_address(Some(2))
            .max_connections(Some(3)),
    );
    let t0 = Instant::now();
    let a = ip("192.0.2.1");
    let mut first = admission.accept_at(a, t0).unwrap();
    let _second = admission.accept_at(a, t0).unwrap();
    assert_eq!(admission.connections_from(a), 2);
    assert!(matches!(
        admission.accept_at(a, t0).unwrap_err(),
        Denied::TooManyConnections { .. }
    ));
    // Resolving a direct connection changes nothing, whatever it claims.
    first
        .resolve(headers(&[("X-Forwarded-For", "203.0.113.1")]), t0)
        .unwrap();
    assert_eq!(admission.connections_from(a), 2);
    assert_eq!(admission.connections_from(ip("203.0.113.1")), 0);
    let _other = admission.accept_at(ip("192.0.2.2"), t0).unwrap();
    assert_eq!(
        admission
            .accept_at(ip("192.0.2.3"), t0)
            .unwrap_err()
            .status(),
        503
    );
    drop(first);
    assert_eq!(admission.connections(), 2);
}

// A trusted proxy's connections are pending under its own limit until
// their heads name the clients, then count as the clients'.
#[test]
fn a_proxied_connection_moves_to_its_client_once_the_head_is_read() {
    let admission = Admission::new(
        AdmissionConfig::default()
            .trusted_proxies(vec!["10.0.0.0/8".parse().unwrap()])
            .max_pending_per_proxy(Some(3))
            .max_per_address(Some(1))
            .handshakes_per_address(Some(RateLimit::new(1, 2))),
    );
    let t0 = Instant::now();
    let proxy = ip("10.0.0.1");
    let mut pending: Vec<_> = (0..3)
        .map(|_| admission.accept_at(proxy, t0).unwrap())
        .collect();
    assert_eq!(admission.pending_from(proxy), 3);
    let denied = admission.accept_at(proxy, t0).unwrap_err();
    assert!(matches!(denied, Denied::TooManyPending { .. }));
    assert_eq!(denied.status(), 429);
    // A head resolves to its client: the proxy's pending place is free.
    let client = [("X-Forwarded-For", "203.0.113.7")];
    pending[0].resolve(headers(&client), t0).unwrap();
    assert_eq!(admission.pending_from(proxy), 2);
    assert_eq!(admission.connections_from(ip("203.0.113.7")), 1);
    assert_eq!(admission.connections(), 3);
    // The same client again is over its own limit; that permit stays
    // pending until it is dropped.
    let denied = pending[1].resolve(headers(&client), t0).unwrap_err();
    assert!(matches!(denied, Denied::TooManyConnections { .. }));
    assert_eq!(admission.pending_from(proxy), 2);
    drop(pending.remove(1));
    assert_eq!(admission.pending_from(proxy), 1);
    // The client's rate was charged by both heads: a third is refused.
    drop(pending.remove(0));
    let denied = pending[0].resolve(headers(&client), t0).unwrap_err();
    assert!(matches!(denied, Denied::TooManyHandshakes { .. }));
    drop(pending);
    assert_eq!(admission.connections(), 0);
    assert_eq!(admission.pending_from(proxy), 0);
    // A proxy's head with no forwarding header is the proxy's own.
    let mut own = admission.accept_at(proxy, t0).unwrap();
    own.resolve(headers(&[]), t0).unwrap();
    assert_eq!(admission.connections_from(proxy), 1);
    assert_eq!(admission.pending_from(proxy), 0);
}
