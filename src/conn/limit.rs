//! Token buckets over what a peer sends: messages, wire bytes and inflated
//! bytes per second, checked at each frame header and as compressed data
//! inflates, with time as an input (refilled by `handle_timeout`).

use std::time::Instant;

use super::snapshot::{Reader, SnapshotError, Writer};
use crate::bucket::Bucket;
use crate::config::{OverLimit, RateLimits};
use crate::error::ProtocolError;

/// The configured buckets and what to do when one runs dry.
#[derive(Clone, Debug)]
pub(crate) struct Limiter {
    messages: Option<Bucket>,
    wire: Option<Bucket>,
    inflated: Option<Bucket>,
    action: OverLimit,
    /// Paused at a frame boundary until the buckets refill.
    paused: bool,
    /// Times input was paused or the connection closed by a limit.
    pub(crate) actions: u64,
}

impl Limiter {
    /// The limiter for `limits`, or `None` if no limit is set.
    pub(crate) fn new(limits: &RateLimits) -> Option<Box<Self>> {
        let limiter = Self {
            messages: limits.messages.map(Bucket::new),
            wire: limits.wire_bytes.map(Bucket::new),
            inflated: limits.inflated_bytes.map(Bucket::new),
            action: limits.action,
            paused: false,
            actions: 0,
        };
        let any = limiter.buckets().next().is_some();
        any.then(|| Box::new(limiter))
    }

    /// Writes the buckets, the pause and the count of actions.
    pub(crate) fn freeze(this: Option<&Self>, w: &mut Writer, now: Instant) {
        let buckets: [Option<&Bucket>; 3] = this.map_or([None; 3], |l| {
            [l.messages.as_ref(), l.wire.as_ref(), l.inflated.as_ref()]
        });
        for bucket in buckets {
            w.bool(bucket.is_some());
            if let Some(bucket) = bucket {
                bucket.freeze(w, now);
            }
        }
        w.bool(this.is_some_and(|l| l.paused));
        w.u64(this.map_or(0, |l| l.actions));
    }

    /// The limiter for `limits` (see [`new`](Self::new)), carrying on the
    /// buckets [`freeze`](Self::freeze) wrote whose limits are unchanged.
    pub(crate) fn thaw(
        r: &mut Reader<'_>,
        limits: &RateLimits,
        now: Instant,
    ) -> Result<Option<Box<Self>>, SnapshotError> {
        let mut buckets = [None, None, None];
        let configured = [limits.messages, limits.wire_bytes, limits.inflated_bytes];
        for (slot, limit) in buckets.iter_mut().zip(configured) {
            if r.bool("bucket")? {
                *slot = Bucket::thaw(r, limit, now)?;
            }
        }
        let paused = r.bool("paused")?;
        let actions = r.count("rate limit actions")?;
        let Some(mut limiter) = Self::new(limits) else {
            return Ok(None);
        };
        let [messages, wire, inflated] = buckets;
        limiter.messages = messages.or(limiter.messages);
        limiter.wire = wire.or(limiter.wire);
        limiter.inflated = inflated.or(limiter.inflated);
        limiter.paused = paused;
        limiter.actions = actions;
        Ok(Some(limiter))
    }

    fn buckets(&self) -> impl Iterator<Item = &Bucket> {
        [&self.messages, &self.wire, &self.inflated]
            .into_iter()
            .flatten()
    }

    /// Refills every bucket to `now`; input paused resumes once each is at
    /// its resume level.
    pub(crate) fn refill(&mut self, now: Instant) {
        for bucket in [&mut self.messages, &mut self.wire, &mut self.inflated]
            .into_iter()
            .flatten()
        {
            bucket.refill(now);
        }
        if self.paused && self.buckets().all(|b| resume_at(b).is_none()) {
            self.paused = false;
        }
    }

    /// Whether input waits for the buckets to refill.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// When paused input may resume.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        if !self.paused {
            return None;
        }
        self.buckets().filter_map(resume_at).max()
    }

    /// A frame of `wire` bytes (header and payload) has its header at the
    /// front of the input; `starts_message` unless it continues a data
    /// message. `Ok(true)`: take it (its cost is charged). `Ok(false)`:
    /// leave it where it is, input is paused. Pausing lets the last frame
    /// taken run the buckets into debt (a frame larger than a burst still
    /// gets through, once the bucket is full again); closing refuses any
    /// frame the buckets cannot pay for in full.
    pub(crate) fn admit(&mut self, wire: u64, starts_message: bool) -> Result<bool, ProtocolError> {
        if self.paused {
            return Ok(false);
        }
        let action = self.action;
        let ok = |bucket: &Option<Bucket>, cost: u64| {
            bucket.as_ref().is_none_or(|b| match action {
                OverLimit::Close => b.available() >= cost,
                OverLimit::Pause => b.has_credit(),
            })
        };
        let affordable = ok(&self.messages, u64::from(starts_message))
            && ok(&self.wire, wire)
            && ok(&self.inflated, 0);
        if !affordable {
            self.actions += 1;
            return match self.action {
                OverLimit::Close => Err(ProtocolError::RateLimited),
                OverLimit::Pause => {
                    self.paused = true;
                    Ok(false)
                }
            };
        }
        if starts_message && let Some(bucket) = &mut self.messages {
            bucket.take(1);
        }
        if let Some(bucket) = &mut self.wire {
            bucket.take(wire);
        }
        Ok(true)
    }

    /// How many more bytes the message being inflated may grow by: what
    /// the inflated-bytes bucket holds, and when pausing, one burst of
    /// debt beyond it (a message that inflates past that is refused, so a
    /// compression bomb stops here rather than at the message size limit).
    #[cfg(feature = "deflate")]
    pub(crate) fn inflate_allowance(&self) -> usize {
        let Some(bucket) = &self.inflated else {
            return usize::MAX;
        };
        let debt = match self.action {
            OverLimit::Close => 0,
            OverLimit::Pause => bucket.limit().burst,
        };
        usize::try_from(bucket.available().saturating_add(debt)).unwrap_or(usize::MAX)
    }

    /// Charges `bytes` inflated.
    #[cfg(feature = "deflate")]
    pub(crate) fn inflated(&mut self, bytes: usize) {
        if let Some(bucket) = &mut self.inflated {
            bucket.take(bytes as u64);
        }
    }

    /// Counts a message refused for inflating past its allowance.
    #[cfg(feature = "deflate")]
    pub(crate) fn refused(&mut self) {
        self.actions += 1;
    }
}

/// When paused input may resume as far as `bucket` is concerned: once it
/// holds 10 ms of refill (at least one token, at most the burst), so a
/// paused connection is woken at most about 100 times a second.
fn resume_at(bucket: &Bucket) -> Option<Instant> {
    let limit = bucket.limit();
    bucket.when_holding((limit.per_second / 100).clamp(1, limit.burst.max(1)))
}
