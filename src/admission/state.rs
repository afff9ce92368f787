//! The counts behind the permits: per address, its open connections, its
//! handshake bucket and (for a trusted proxy) its pending heads; the
//! server's total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::{AdmissionConfig, Denied};
use crate::bucket::Bucket;

/// Which count a permit holds a place in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// The client's connections (keyed as limits key).
    Client(IpAddr),
    /// A trusted proxy's pending heads: `peer` is the proxy's address,
    /// `key` what its entry is keyed by.
    Proxy { peer: IpAddr, key: IpAddr },
}

/// One address's open connections, its handshake bucket, and (for a
/// trusted proxy) its connections whose heads are not read yet.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) connections: usize,
    pub(super) pending: usize,
    handshakes: Option<Bucket>,
}

impl Entry {
    /// Nothing to remember: no connection open or pending and a full bucket.
    fn is_idle(&mut self, now: Instant) -> bool {
        self.connections == 0
            && self.pending == 0
            && self.handshakes.as_mut().is_none_or(|bucket| {
                bucket.refill(now);
                bucket.is_full()
            })
    }

    /// Nothing a refill could change: kept only while it counts something.
    fn is_empty(&self) -> bool {
        self.connections == 0 && self.pending == 0 && self.handshakes.is_none()
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) total: usize,
    pub(super) addresses: HashMap<IpAddr, Entry>,
}

impl State {
    /// The entry for `key`, made if there is room for one more address
    /// (sweeping idle ones when there is not).
    fn entry(
        &mut self,
        config: &AdmissionConfig,
        key: IpAddr,
        now: Instant,
    ) -> Result<&mut Entry, Denied> {
        if !self.addresses.contains_key(&key) && self.addresses.len() >= config.max_addresses {
            self.addresses.retain(|_, entry| !entry.is_idle(now));
            if self.addresses.len() >= config.max_addresses {
                return Err(Denied::TooManyAddresses {
                    retry_after: config.retry_after,
                });
            }
        }
        Ok(self.addresses.entry(key).or_insert_with(|| Entry {
            connections: 0,
            pending: 0,
            handshakes: config.handshakes_per_address.map(Bucket::new),
        }))
    }

    /// Charges `key`'s handshake rate and takes a place under its
    /// connection limit (and, for a new connection, the server's).
    pub(super) fn take_client(
        &mut self,
        config: &AdmissionConfig,
        key: IpAddr,
        now: Instant,
        new: bool,
    ) -> Result<(), Denied> {
        let retry_after = config.retry_after;
        self.take(config, key, now, new, |entry, total| {
            if let Some(bucket) = &mut entry.handshakes {
                bucket.refill(now);
                if bucket.available() == 0 {
                    return Err(Denied::TooManyHandshakes {
                        retry_after: bucket.wait_for(1),
                    });
                }
                bucket.take(1);
            }
            if config
                .max_per_address
                .is_some_and(|max| entry.connections >= max)
            {
                Err(Denied::TooManyConnections { retry_after })
            } else if new && config.max_connections.is_some_and(|max| total >= max) {
                Err(Denied::Full { retry_after })
            } else {
                Ok(&mut entry.connections)
            }
        })
    }

    /// Takes a place for a connection from trusted proxy `key` whose head
    /// is not read yet.
    pub(super) fn take_pending(
        &mut self,
        config: &AdmissionConfig,
        key: IpAddr,
        now: Instant,
    ) -> Result<(), Denied> {
        let retry_after = config.retry_after;
        self.take(config, key, now, true, |entry, total| {
            if config
                .max_pending_per_proxy
                .is_some_and(|max| entry.pending >= max)
            {
                Err(Denied::TooManyPending { retry_after })
            } else if config.max_connections.is_some_and(|max| total >= max) {
                Err(Denied::Full { retry_after })
            } else {
                Ok(&mut entry.pending)
            }
        })
    }

    /// Finds `key`'s entry and lets `decide` pick the count to raise (given
    /// the server's total) or the refusal; a refused entry that counts
    /// nothing is forgotten. `new` raises the total too.
    fn take(
        &mut self,
        config: &AdmissionConfig,
        key: IpAddr,
        now: Instant,
        new: bool,
        decide: impl FnOnce(&mut Entry, usize) -> Result<&mut usize, Denied>,
    ) -> Result<(), Denied> {
        let total = self.total;
        let entry = self.entry(config, key, now)?;
        match decide(entry, total) {
            Ok(count) => {
                *count += 1;
                self.total += usize::from(new);
                Ok(())
            }
            Err(denied) => {
                self.forget_if_empty(key);
                Err(denied)
            }
        }
    }

    /// Gives back a place: `pending` for a proxy's unread head, else a
    /// client's connection; `ended` when the connection is gone.
    pub(super) fn give_back(&mut self, place: Place, ended: bool) {
        let (key, pending) = match place {
            Place::Client(key) => (key, false),
            Place::Proxy { key, .. } => (key, true),
        };
        self.total = self.total.saturating_sub(usize::from(ended));
        if let Some(entry) = self.addresses.get_mut(&key) {
            let count = if pending {
                &mut entry.pending
            } else {
                &mut entry.connections
            };
            *count = count.saturating_sub(1);
        }
        self.forget_if_empty(key);
    }

    /// An address with nothing to remember is not kept.
    fn forget_if_empty(&mut self, key: IpAddr) {
        if self.addresses.get(&key).is_some_and(Entry::is_empty) {
            self.addresses.remove(&key);
        }
    }
}
