//! The admission limits as a state machine: connections accepted before
//! their heads are read, moved to the client a trusted proxy names,
//! admitted after the head, dropped, with time passing; checked against a
//! model of the permits held.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use rfc6455::RateLimit;
use rfc6455::admission::{Admission, AdmissionConfig, Denied, Permit};

/// The addresses connections come from: two trusted proxies, IPv4 hosts,
/// two IPv6 hosts of one /64 and one of another, and an IPv4-mapped
/// address that is the first IPv4 host.
const POOL: [&str; 8] = [
    "10.0.0.1",
    "10.0.0.2",
    "192.0.2.1",
    "192.0.2.2",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:0:1::1",
    "::ffff:192.0.2.1",
];

fn pool(index: u8) -> IpAddr {
    POOL[usize::from(index) % POOL.len()]
        .parse()
        .expect("pool addresses parse")
}

/// What limits key on: IPv4 (mapped or not) as is, IPv6 by its /64.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Limits small enough to be reached.
#[derive(Arbitrary, Debug)]
pub struct Limits {
    max_connections: Option<u8>,
    max_per_address: Option<u8>,
    max_pending_per_proxy: Option<u8>,
    handshakes: Option<(u8, u8)>,
    max_addresses: u8,
}

/// A header a proxy adds.
#[derive(Arbitrary, Debug)]
pub enum Forwarded {
    /// `X-Forwarded-For` listing pool addresses.
    XForwardedFor(Vec<u8>),
    /// `Forwarded` with `for=` pool addresses.
    Forwarded(Vec<u8>),
    /// Any bytes as either header.
    Raw { rfc7239: bool, value: Vec<u8> },
}

/// One step.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// A connection accepted from a pool address, before its head.
    Accept(u8),
    /// A connection admitted once its head is read (an upgrade through hyper).
    Admit(u8),
    /// A held permit's head is read with these headers.
    Resolve { permit: u8, headers: Vec<Forwarded> },
    /// A held permit's connection ends.
    Drop(u8),
    /// Time passes.
    Advance(u16),
}

/// A run of steps under some limits.
#[derive(Arbitrary, Debug)]
pub struct Run {
    limits: Limits,
    steps: Vec<Step>,
}

/// A permit and what the model says it holds.
struct Held {
    permit: Permit,
    /// `Some(proxy)` while a trusted proxy's head is unread.
    pending: Option<IpAddr>,
    /// The key whose connections it counts in, once known.
    client: Option<IpAddr>,
}

fn is_proxy(addr: IpAddr) -> bool {
    key(addr) == key(pool(0)) || key(addr) == key(pool(1))
}

fn header_values(headers: &[Forwarded]) -> Vec<(&'static str, Vec<u8>)> {
    let list = |indices: &[u8], prefix: &str| {
        indices
            .iter()
            .map(|&i| match pool(i) {
                IpAddr::V6(v6) => format!("{prefix}\"[{v6}]\""),
                v4 => format!("{prefix}{v4}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes()
    };
    headers
        .iter()
        .map(|header| match header {
            Forwarded::XForwardedFor(indices) => ("X-Forwarded-For", list(indices, "")),
            Forwarded::Forwarded(indices) => ("Forwarded", list(indices, "for=")),
            Forwarded::Raw { rfc7239, value } => (
                if *rfc7239 {
                    "Forwarded"
                } else {
                    "X-Forwarded-For"
                },
                value.clone(),
            ),
        })
        .collect()
}

/// Runs the steps and checks after each: the server's count is the permits
/// held; no key holds more than its limit, no proxy more pending heads than
/// its limit, the server no more than its; a refusal names a limit that was
/// reached (or one the model cannot see: the handshake rate, the tracked
/// addresses); a refused resolve leaves its permit pending; once every
/// permit is dropped nothing is counted.
pub fn run_admission(run: Run) {
    let limits = &run.limits;
    let max = |value: Option<u8>| value.map(usize::from);
    let config = AdmissionConfig::default()
        .max_connections(max(limits.max_connections))
        .max_per_address(max(limits.max_per_address))
        .max_pending_per_proxy(max(limits.max_pending_per_proxy))
        .handshakes_per_address(
            limits
                .handshakes
                .map(|(rate, burst)| RateLimit::new(u64::from(rate), u64::from(burst))),
        )
        .trusted_proxies(vec!["10.0.0.0/30".parse().expect("a network")])
        .max_addresses(usize::from(limits.max_addresses));
    let admission = Admission::new(config.clone());
    let mut now = Instant::now();
    let mut held: Vec<Held> = Vec::new();
    // Every key the admission may have tracked (a limit on tracked
    // addresses can refuse only once this many reach it).
    let mut seen: HashSet<IpAddr> = HashSet::new();

    let count = |held: &[Held], client: IpAddr| {
        held.iter()
            .filter(|h| h.client == Some(key(client)))
            .count()
    };
    let pending = |held: &[Held], proxy: IpAddr| {
        held.iter()
            .filter(|h| h.pending.is_some_and(|p| key(p) == key(proxy)))
            .count()
    };
    // A refusal must name a limit that was reached, or one the model does
    // not follow.
    let justified = |denied: &Denied,
                     held: &[Held],
                     seen: &HashSet<IpAddr>,
                     client: IpAddr,
                     new: bool| match denied {
        Denied::Full { .. } => new && max(limits.max_connections).is_some_and(|m| held.len() >= m),
        Denied::TooManyConnections { .. } => {
            max(limits.max_per_address).is_some_and(|m| count(held, client) >= m)
        }
        Denied::TooManyPending { .. } => {
            max(limits.max_pending_per_proxy).is_some_and(|m| pending(held, client) >= m)
        }
        Denied::TooManyHandshakes { .. } => limits.handshakes.is_some(),
        Denied::TooManyAddresses { .. } => seen.len() >= usize::from(limits.max_addresses),
        _ => false,
    };

    for step in run.steps {
        match step {
            Step::Accept(index) => {
                let peer = pool(index);
                seen.insert(key(peer));
                match admission.accept_at(peer, now) {
                    Ok(permit) => held.push(if is_proxy(peer) {
                        Held {
                            permit,
                            pending: Some(peer),
                            client: None,
                        }
                    } else {
                        Held {
                            permit,
                            pending: None,
                            client: Some(key(peer)),
                        }
                    }),
                    Err(denied) => assert!(
                        justified(&denied, &held, &seen, peer, true),
                        "accept refused without cause: {denied:?}"
                    ),
                }
            }
            Step::Admit(index) => {
                let client = pool(index);
                seen.insert(key(client));
                match admission.admit_at(client, now) {
                    Ok(permit) => held.push(Held {
                        permit,
                        pending: None,
                        client: Some(key(client)),
                    }),
                    Err(denied) => assert!(
                        justified(&denied, &held, &seen, client, true),
                        "admit refused without cause: {denied:?}"
                    ),
                }
            }
            Step::Resolve { permit, headers } => {
                if held.is_empty() {
                    continue;
                }
                let index = usize::from(permit) % held.len();
                let values = header_values(&headers);
                let pairs = values.iter().map(|(name, value)| (*name, value.as_slice()));
                let Some(proxy) = held[index].pending else {
                    // A direct connection's place does not move.
                    let before = held[index].client;
                    held[index]
                        .permit
                        .resolve(pairs, now)
                        .expect("a direct permit resolves");
                    assert_eq!(held[index].client, before);
                    continue;
                };
                let client = admission.client_address(proxy, pairs.clone());
                seen.insert(key(client));
                match held[index].permit.resolve(pairs, now) {
                    Ok(()) => {
                        held[index].pending = None;
                        held[index].client = Some(key(client));
                    }
                    Err(denied) => assert!(
                        justified(&denied, &held, &seen, client, false),
                        "resolve refused without cause: {denied:?}"
                    ),
                }
            }
            Step::Drop(index) => {
                if !held.is_empty() {
                    let index = usize::from(index) % held.len();
                    drop(held.swap_remove(index));
                }
            }
            Step::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
        }
        assert_eq!(admission.connections(), held.len(), "the server's count");
        if let Some(m) = max(limits.max_connections) {
            assert!(held.len() <= m, "over the server's limit");
        }
        for index in 0..POOL.len() as u8 {
            let addr = pool(index);
            let counted = admission.connections_from(addr);
            assert_eq!(counted, count(&held, addr), "connections of {addr}");
            if let Some(m) = max(limits.max_per_address) {
                assert!(counted <= m, "{addr} over its limit");
            }
            let waiting = admission.pending_from(addr);
            assert_eq!(waiting, pending(&held, addr), "pending heads of {addr}");
            if let Some(m) = max(limits.max_pending_per_proxy) {
                assert!(waiting <= m, "{addr} over its pending limit");
            }
        }
    }
    drop(held);
    assert_eq!(admission.connections(), 0, "places left after every permit");
    for index in 0..POOL.len() as u8 {
        assert_eq!(admission.pending_from(pool(index)), 0);
        assert_eq!(admission.connections_from(pool(index)), 0);
    }
}
