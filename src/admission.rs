//! Admission limits for servers, decided before the upgrade: how many
//! connections the server holds, how many one client address may hold at
//! once, and how fast one address may open them. A refused upgrade gets
//! `429 Too Many Requests` (or `503 Service Unavailable` when the server as
//! a whole is full) with `Retry-After`.
//!
//! Limits key on the socket's peer address; behind a reverse proxy, on the
//! client address the proxy reports (`Forwarded`, RFC 7239, or
//! `X-Forwarded-For`), believed only from addresses configured as trusted
//! proxies. IPv6 clients are keyed by their /64 network (one host usually
//! holds a whole one). A [`Permit`] holds a connection's place and gives it
//! back when dropped; memory is bounded by
//! [`AdmissionConfig::max_addresses`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use rfc6455::admission::{Admission, AdmissionConfig};
//! use rfc6455::RateLimit;
//!
//! let admission = Admission::new(
//!     AdmissionConfig::default()
//!         .max_per_address(Some(2))
//!         .handshakes_per_address(Some(RateLimit::new(10, 20))),
//! );
//! let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
//! let first = admission.admit(client)?;
//! let second = admission.admit(client)?;
//! let third = admission.admit(client).unwrap_err();
//! assert_eq!(third.status(), 429);
//! drop(first); // the connection ended: its place is free again
//! let _again = admission.admit(client)?;
//! # drop(second);
//! # Ok::<(), rfc6455::admission::Denied>(())
//! ```
//!
//! Every adapter runs it inside the handshake when the
//! [`ServerBuilder::admission`](crate::ServerBuilder::admission) is set and
//! `accept` is given the peer address; the stream holds the permit.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ConfigError;
use crate::bucket::Bucket;
use crate::config::RateLimit;
use crate::handshake::Rejection;

/// The limits an [`Admission`] enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdmissionConfig {
    /// Connections the server holds at once; past it upgrades get 503.
    /// Default `None`.
    pub max_connections: Option<usize>,
    /// Connections one client address holds at once; past it, 429.
    /// Default `None`.
    pub max_per_address: Option<usize>,
    /// Upgrade attempts per second one client address may make (accepted
    /// or not), as a token bucket; past it, 429 with the time until the
    /// next token. Default `None`.
    pub handshakes_per_address: Option<RateLimit>,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed.
    /// Default: none (the peer address is the client's).
    pub trusted_proxies: Vec<IpNetwork>,
    /// The prefix an IPv6 client is keyed by. Default 64.
    pub ipv6_prefix: u8,
    /// `Retry-After` for refusals that do not know when a place frees up
    /// (the connection limits). Default 5 seconds.
    pub retry_after: Duration,
    /// Client addresses tracked at once (their open connections and
    /// handshake buckets). Past it, idle entries are swept; if none is
    /// idle, new addresses get 503. Default 100 000.
    pub max_addresses: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_connections: None,
            max_per_address: None,
            handshakes_per_address: None,
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
            retry_after: Duration::from_secs(5),
            max_addresses: 100_000,
        }
    }
}

by_value_setters! {
    AdmissionConfig {
        /// Sets [`max_connections`](Self::max_connections).
        max_connections: Option<usize>;
        /// Sets [`max_per_address`](Self::max_per_address).
        max_per_address: Option<usize>;
        /// Sets [`handshakes_per_address`](Self::handshakes_per_address).
        handshakes_per_address: Option<RateLimit>;
        /// Sets [`trusted_proxies`](Self::trusted_proxies).
        trusted_proxies: Vec<IpNetwork>;
        /// Sets [`ipv6_prefix`](Self::ipv6_prefix).
        ipv6_prefix: u8;
        /// Sets [`retry_after`](Self::retry_after).
        retry_after: Duration;
        /// Sets [`max_addresses`](Self::max_addresses).
        max_addresses: usize;
    }
}

/// An address and prefix length (`10.0.0.0/8`, `::1/128`); a bare address
/// parses as a single host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network of `addr` and its first `prefix` bits (at most 32 for
    /// IPv4, 128 for IPv6).
    #[must_use]
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.min(max);
        Self {
            addr: mask(addr, prefix),
            prefix,
        }
    }

    /// Whether `addr` is in the network.
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.prefix) == self.addr
    }
}

impl FromStr for IpNetwork {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ConfigError::InvalidNetwork(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| error())?)),
            None => (s, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| error())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(error());
        }
        Ok(Self::new(addr, prefix))
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so a dual-stack socket's peers key
/// the same as an IPv4 socket's.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `addr` with all but its first `prefix` bits cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

/// Why an upgrade was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The server holds [`AdmissionConfig::max_connections`] (503).
    #[error("the server is at its connection limit")]
    Full {
        /// When to try again.
        retry_after: Duration,
    },
    /// The address holds [`AdmissionConfig::max_per_address`] (429).
    #[error("too many connections from this address")]
    TooManyConnections {
        /// When to try again.
        retry_after: Duration,
    },
    /// The address is past [`AdmissionConfig::handshakes_per_address`] (429).
    #[error("too many connection attempts from this address")]
    TooManyHandshakes {
        /// When the address has a token again.
        retry_after: Duration,
    },
    /// [`AdmissionConfig::max_addresses`] are tracked and none is idle (503).
    #[error("too many client addresses to track")]
    TooManyAddresses {
        /// When to try again.
        retry_after: Duration,
    },
}

impl Denied {
    /// The HTTP status to answer with: 503 when the server as a whole is
    /// full, 429 when this client is over its limit.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Full { .. } | Self::TooManyAddresses { .. } => 503,
            Self::TooManyConnections { .. } | Self::TooManyHandshakes { .. } => 429,
        }
    }

    /// How long the client should wait.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Full { retry_after }
            | Self::TooManyConnections { retry_after }
            | Self::TooManyHandshakes { retry_after }
            | Self::TooManyAddresses { retry_after } => *retry_after,
        }
    }
}

impl From<Denied> for Rejection {
    /// The response: the status, `Retry-After` in whole seconds (rounded
    /// up, at least 1), and the reason as the body.
    fn from(denied: Denied) -> Self {
        Self::new(denied.status())
            .retry_after(denied.retry_after())
            .body(denied.to_string())
    }
}

/// One client address's open connections and handshake bucket.
#[derive(Debug)]
struct Entry {
    connections: usize,
    handshakes: Option<Bucket>,
}

impl Entry {
    /// Nothing to remember: no connection open and a full bucket.
    fn is_idle(&mut self, now: Instant) -> bool {
        self.connections == 0
            && self.handshakes.as_mut().is_none_or(|bucket| {
                bucket.refill(now);
                bucket.is_full()
            })
    }
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    addresses: HashMap<IpAddr, Entry>,
}

#[derive(Debug)]
struct Shared {
    config: AdmissionConfig,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }
}

/// Admission limits shared by every connection of a server (clone it into
/// each task). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Admission {
    shared: Arc<Shared>,
}

/// A connection's place under the limits; dropping it gives the place back.
/// Keep it for as long as the connection lives.
#[must_use = "dropping the permit frees the connection's place at once"]
pub struct Permit {
    shared: Arc<Shared>,
    key: IpAddr,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("key", &self.key).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(entry) = state.addresses.get_mut(&self.key) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 && entry.handshakes.is_none() {
                state.addresses.remove(&self.key);
            }
        }
    }
}

impl Admission {
    /// Limits as `config` says.
    #[must_use]
    pub fn new(config: AdmissionConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &AdmissionConfig {
        &self.shared.config
    }

    /// The address limits key on for a request from `peer` with these
    /// headers (e.g. [`RequestView::headers`](crate::handshake::RequestView::headers)):
    /// `peer` itself unless it is a trusted proxy; then, walking the
    /// proxies' reports from the nearest hop back (`Forwarded`'s `for=`,
    /// or `X-Forwarded-For` when there is no `Forwarded`), the first
    /// address that is not a trusted proxy. A hop that does not parse (an
    /// obfuscated or `unknown` node) stops the walk at the last proxy.
    pub fn client_address<'h>(
        &self,
        peer: IpAddr,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> IpAddr {
        let trusted = |addr: IpAddr| {
            self.shared
                .config
                .trusted_proxies
                .iter()
                .any(|net| net.contains(addr))
        };
        let mut client = canonical(peer);
        if !trusted(client) {
            return client;
        }
        let hops = forwarded_hops(headers);
        for hop in hops.iter().rev() {
            let Some(addr) = hop else {
                return client;
            };
            client = canonical(*addr);
            if !trusted(client) {
                return client;
            }
        }
        client
    }

    /// Admits a connection from `client` now. See [`admit_at`](Self::admit_at).
    ///
    /// # Errors
    ///
    /// As [`admit_at`](Self::admit_at).
    pub fn admit(&self, client: IpAddr) -> Result<Permit, Denied> {
        self.admit_at(client, Instant::now())
    }

    /// Admits a connection from `client` at `now`: counts the attempt
    /// against the address's handshake rate, then takes a place under the
    /// server's and the address's connection limits.
    ///
    /// # Errors
    ///
    /// [`Denied`], saying which limit and when to try again.
    pub fn admit_at(&self, client: IpAddr, now: Instant) -> Result<Permit, Denied> {
        let config = &self.shared.config;
        let key = self.key(client);
        let mut state = self.shared.lock();
        let state = &mut *state;
        if !state.addresses.contains_key(&key) && state.addresses.len() >= config.max_addresses {
            state.addresses.retain(|_, entry| !entry.is_idle(now));
            if state.addresses.len() >= config.max_addresses {
                return Err(Denied::TooManyAddresses {
                    retry_after: config.retry_after,
                });
            }
        }
        let entry = state.addresses.entry(key).or_insert_with(|| Entry {
            connections: 0,
            handshakes: config.handshakes_per_address.map(Bucket::new),
        });
        if let Some(bucket) = &mut entry.handshakes {
            bucket.refill(now);
            if bucket.available() == 0 {
                return Err(Denied::TooManyHandshakes {
                    retry_after: bucket.wait_for(1),
                });
            }
            bucket.take(1);
        }
        let retry_after = config.retry_after;
        let denied = if config
            .max_per_address
            .is_some_and(|max| entry.connections >= max)
        {
            Some(Denied::TooManyConnections { retry_after })
        } else if config.max_connections.is_some_and(|max| state.total >= max) {
            Some(Denied::Full { retry_after })
        } else {
            None
        };
        if let Some(denied) = denied {
            // An address with nothing to remember is not kept for a refusal.
            if entry.connections == 0 && entry.handshakes.is_none() {
                state.addresses.remove(&key);
            }
            return Err(denied);
        }
        entry.connections += 1;
        state.total += 1;
        Ok(Permit {
            shared: Arc::clone(&self.shared),
            key,
        })
    }

    /// Connections holding a permit.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.lock().total
    }

    /// Connections holding a permit for `client`'s key.
    #[must_use]
    pub fn connections_from(&self, client: IpAddr) -> usize {
        let key = self.key(client);
        self.shared
            .lock()
            .addresses
            .get(&key)
            .map_or(0, |entry| entry.connections)
    }

    /// What limits key on: IPv4 as is, IPv6 by its network.
    fn key(&self, client: IpAddr) -> IpAddr {
        match canonical(client) {
            v6 @ IpAddr::V6(_) => mask(v6, self.shared.config.ipv6_prefix.min(128)),
            v4 => v4,
        }
    }
}

/// At most this many hops of a forwarding chain are read (the nearest ones).
const MAX_HOPS: usize = 32;

/// The client addresses the proxies reported, farthest first: `Forwarded`'s
/// `for=` parameters if that header is present, else `X-Forwarded-For`'s
/// list (every field line, in order). `None` for a hop that does not parse.
fn forwarded_hops<'h>(
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) -> Vec<Option<IpAddr>> {
    let mut forwarded = Vec::new();
    let mut x_forwarded = Vec::new();
    for (name, value) in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if name.eq_ignore_ascii_case("forwarded") {
            forwarded.extend(value.split(',').map(forwarded_for));
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            x_forwarded.extend(value.split(',').map(|hop| parse_node(hop.trim())));
        }
    }
    let mut hops = if forwarded.is_empty() {
        x_forwarded
    } else {
        forwarded
    };
    let skip = hops.len().saturating_sub(MAX_HOPS);
    hops.drain(..skip);
    hops
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4), if it is an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))?
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(socket) = node.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = node.strip_prefix('[')?.split(']').next()?;
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}
