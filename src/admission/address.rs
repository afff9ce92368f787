//! Client addresses: networks (for trusted proxies and IPv6 keys) and the
//! addresses proxies report in `Forwarded` and `X-Forwarded-For`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::ConfigError;

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
pub(super) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `addr` with all but its first `prefix` bits cleared.
pub(super) fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
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

/// At most this many hops of a forwarding chain are read (the nearest ones).
const MAX_HOPS: usize = 32;

/// The client addresses the proxies reported, farthest first: `Forwarded`'s
/// `for=` parameters if that header is present, else `X-Forwarded-For`'s
/// list (every field line, in order). `None` for a hop that does not parse.
pub(super) fn forwarded_hops<'h>(
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
