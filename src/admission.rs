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
//! A connection counts from the moment it is accepted, before a byte of
//! its request is read ([`Admission::accept`]): one address cannot hold
//! more than its share of half-sent request heads. A trusted proxy's
//! connections count first against the proxy's own, larger limit
//! ([`AdmissionConfig::max_pending_per_proxy`]) and move to the client the
//! proxy reports once the head is read ([`Permit::resolve`]). Until its head
//! completes, a connection held by an adapter costs its socket, the task
//! that runs it, the handshake's state (a few hundred bytes; no connection
//! is made before the head is whole) and a read buffer that starts at
//! 1 KiB and grows only as the head does, up to
//! [`HandshakeLimits::max_head_bytes`](crate::handshake::HandshakeLimits::max_head_bytes).
//! `tests/pre_head.rs` bounds what 3 000 half-sent heads from one address
//! cost and prints the figure per connection; `benches/README.md` records it.
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
//! Every adapter's `accept` takes the connection's place before reading
//! when the [`ServerBuilder::admission`](crate::ServerBuilder::admission)
//! is set and `accept` is given the peer address, and answers a refusal at
//! once; the stream holds the permit. Behind `hyper`, which reads requests
//! itself, call [`Admission::accept`] in the accept loop and keep the
//! permit with the connection.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::RateLimit;
use crate::handshake::Rejection;

mod address;
mod state;

pub use address::IpNetwork;
use address::{canonical, forwarded_hops, mask};
use state::{Place, State};

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
    /// Connections one trusted proxy holds at once before their request
    /// heads are read (the client behind each is known only from its
    /// head); past it, 429. Default `None`.
    pub max_pending_per_proxy: Option<usize>,
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
            max_pending_per_proxy: None,
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
        /// Sets [`max_pending_per_proxy`](Self::max_pending_per_proxy).
        max_pending_per_proxy: Option<usize>;
        /// Sets [`ipv6_prefix`](Self::ipv6_prefix).
        ipv6_prefix: u8;
        /// Sets [`retry_after`](Self::retry_after).
        retry_after: Duration;
        /// Sets [`max_addresses`](Self::max_addresses).
        max_addresses: usize;
    }
}

impl AdmissionConfig {
    /// See [`Admission::client_address`].
    fn client_address<'h>(
        &self,
        peer: IpAddr,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.is_trusted(client) {
            return client;
        }
        let hops = forwarded_hops(headers);
        for hop in hops.iter().rev() {
            let Some(addr) = hop else {
                return client;
            };
            client = canonical(*addr);
            if !self.is_trusted(client) {
                return client;
            }
        }
        client
    }

    fn is_trusted(&self, addr: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(addr))
    }

    /// What limits key on: IPv4 as is, IPv6 by its network.
    fn key(&self, client: IpAddr) -> IpAddr {
        match canonical(client) {
            v6 @ IpAddr::V6(_) => mask(v6, self.ipv6_prefix.min(128)),
            v4 => v4,
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
    /// The trusted proxy holds [`AdmissionConfig::max_pending_per_proxy`]
    /// connections whose heads are not read yet (429).
    #[error("too many pending connections from this proxy")]
    TooManyPending {
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
            Self::TooManyConnections { .. }
            | Self::TooManyPending { .. }
            | Self::TooManyHandshakes { .. } => 429,
        }
    }

    /// How long the client should wait.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Full { retry_after }
            | Self::TooManyConnections { retry_after }
            | Self::TooManyPending { retry_after }
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
    place: Place,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("place", &self.place)
            .finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.lock().give_back(self.place, true);
    }
}

impl Permit {
    /// Once the request head is read, at `now`: a connection from a trusted
    /// proxy gives back the proxy's pending place and takes the place of
    /// the client the proxy reports in `headers` (charging its handshake
    /// rate, under its connection limit; see
    /// [`Admission::client_address`]). A direct connection holds its
    /// client's place from [`Admission::accept`] on: nothing changes.
    ///
    /// # Errors
    ///
    /// [`Denied`] when the client is over its limits; the permit still
    /// holds the proxy's pending place until it is dropped.
    pub fn resolve<'h>(
        &mut self,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        now: Instant,
    ) -> Result<(), Denied> {
        let Place::Proxy { peer, .. } = self.place else {
            return Ok(());
        };
        let config = &self.shared.config;
        let key = config.key(config.client_address(peer, headers));
        let mut state = self.shared.lock();
        state.take_client(config, key, now, false)?;
        state.give_back(self.place, false);
        self.place = Place::Client(key);
        Ok(())
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
        self.shared.config.client_address(peer, headers)
    }

    /// Admits a connection from `client` now. See [`admit_at`](Self::admit_at).
    ///
    /// # Errors
    ///
    /// As [`admit_at`](Self::admit_at).
    pub fn admit(&self, client: IpAddr) -> Result<Permit, Denied> {
        self.admit_at(client, Instant::now())
    }

    /// Admits a connection from `client` at `now`, for a server that knows
    /// the client only once the request is read (an upgrade through
    /// `hyper`): counts the attempt against the address's handshake rate,
    /// then takes a place under the server's and the address's connection
    /// limits. A server that sees the connection arrive calls
    /// [`accept_at`](Self::accept_at) instead.
    ///
    /// # Errors
    ///
    /// [`Denied`], saying which limit and when to try again.
    pub fn admit_at(&self, client: IpAddr, now: Instant) -> Result<Permit, Denied> {
        let key = self.key(client);
        self.shared
            .lock()
            .take_client(&self.shared.config, key, now, true)?;
        Ok(self.permit(Place::Client(key)))
    }

    /// A place for a connection accepted from socket address `peer` now.
    /// See [`accept_at`](Self::accept_at).
    ///
    /// # Errors
    ///
    /// As [`accept_at`](Self::accept_at).
    pub fn accept(&self, peer: IpAddr) -> Result<Permit, Denied> {
        self.accept_at(peer, Instant::now())
    }

    /// A place for a connection accepted from socket address `peer` at
    /// `now`, before any of its request is read. A direct client is
    /// admitted as by [`admit_at`](Self::admit_at); a trusted proxy's
    /// connection takes a pending place under
    /// [`max_pending_per_proxy`](AdmissionConfig::max_pending_per_proxy)
    /// and the server's limit, and moves to its client with
    /// [`Permit::resolve`] once the head is read.
    ///
    /// ```
    /// use std::time::Instant;
    /// use rfc6455::admission::{Admission, AdmissionConfig};
    ///
    /// let admission = Admission::new(
    ///     AdmissionConfig::default()
    ///         .max_per_address(Some(1))
    ///         .trusted_proxies(vec!["10.0.0.1".parse()?])
    ///         .max_pending_per_proxy(Some(100)),
    /// );
    /// let now = Instant::now();
    /// let mut through_proxy = admission.accept_at("10.0.0.1".parse()?, now)?;
    /// let head = [("X-Forwarded-For", &b"192.0.2.7"[..])];
    /// through_proxy.resolve(head, now)?;
    /// assert_eq!(admission.connections_from("192.0.2.7".parse()?), 1);
    /// // The client's own direct connection is over its limit of one.
    /// assert_eq!(admission.accept_at("192.0.2.7".parse()?, now).unwrap_err().status(), 429);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Denied`], saying which limit and when to try again.
    pub fn accept_at(&self, peer: IpAddr, now: Instant) -> Result<Permit, Denied> {
        let peer = canonical(peer);
        if !self.shared.config.is_trusted(peer) {
            return self.admit_at(peer, now);
        }
        let key = self.key(peer);
        self.shared
            .lock()
            .take_pending(&self.shared.config, key, now)?;
        Ok(self.permit(Place::Proxy { peer, key }))
    }

    fn permit(&self, place: Place) -> Permit {
        Permit {
            shared: Arc::clone(&self.shared),
            place,
        }
    }

    /// Connections holding a permit, their heads read or not.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.lock().total
    }

    /// Connections holding a permit for `client`'s key (a trusted proxy's
    /// pending connections not included).
    #[must_use]
    pub fn connections_from(&self, client: IpAddr) -> usize {
        let key = self.key(client);
        self.shared
            .lock()
            .addresses
            .get(&key)
            .map_or(0, |entry| entry.connections)
    }

    /// A trusted proxy's connections whose heads are not read yet.
    #[must_use]
    pub fn pending_from(&self, proxy: IpAddr) -> usize {
        let key = self.key(proxy);
        self.shared
            .lock()
            .addresses
            .get(&key)
            .map_or(0, |entry| entry.pending)
    }

    fn key(&self, client: IpAddr) -> IpAddr {
        self.shared.config.key(client)
    }
}
