//! A token bucket with time as an input: the rate limits on what a peer
//! sends (`conn::limit`) and the handshake rate of
//! [`admission`](crate::admission) both count with it.

use std::time::{Duration, Instant};

use crate::config::RateLimit;
use crate::conn::snapshot::{Reader, SnapshotError, Writer};

/// Fixed-point scale: a bucket counts billionths of a token, so a refill
/// over any number of nanoseconds is exact.
const SCALE: i128 = 1_000_000_000;

/// One bucket: `level` billionths of a token, negative while in debt.
/// Full when made; refilled only by [`refill`](Self::refill).
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    level: i128,
    /// When it was last refilled.
    at: Option<Instant>,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            level: i128::from(limit.burst) * SCALE,
            at: None,
        }
    }

    /// Writes the limit, the level and the last refill (from `now`).
    pub(crate) fn freeze(&self, w: &mut Writer, now: Instant) {
        w.u64(self.limit.per_second);
        w.u64(self.limit.burst);
        w.i128(self.level);
        w.instant(self.at, now);
    }

    /// Reads what [`freeze`](Self::freeze) wrote: the bucket, if its limit
    /// is `limit` (another limit starts a bucket afresh).
    pub(crate) fn thaw(
        r: &mut Reader<'_>,
        limit: Option<RateLimit>,
        now: Instant,
    ) -> Result<Option<Self>, SnapshotError> {
        let carried = RateLimit::new(r.u64()?, r.u64()?);
        let level = r.i128()?;
        let at = r.instant(now, "bucket")?;
        let Some(limit) = limit else {
            return Ok(None);
        };
        let mut bucket = Self::new(limit);
        // Debt is at most one frame's cost; anything beyond is damage (and
        // would overflow the refill's arithmetic).
        let floor = -i128::from(u64::MAX).saturating_mul(SCALE);
        if !(floor..=bucket.capacity()).contains(&level) && carried == limit {
            return Err(SnapshotError::Invalid("bucket level"));
        }
        if carried == limit {
            bucket.level = level;
            bucket.at = at;
        }
        Ok(Some(bucket))
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    fn capacity(&self) -> i128 {
        i128::from(self.limit.burst) * SCALE
    }

    /// Adds what `now` brings since the last refill (the first call only
    /// starts the clock); time that goes backwards adds nothing.
    pub(crate) fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let elapsed =
                i128::try_from(now.saturating_duration_since(at).as_nanos()).unwrap_or(i128::MAX);
            let added = elapsed.saturating_mul(i128::from(self.limit.per_second));
            self.level = self.level.saturating_add(added).min(self.capacity());
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    /// Whole tokens available (none while in debt).
    pub(crate) fn available(&self) -> u64 {
        u64::try_from(self.level / SCALE).unwrap_or(0)
    }

    /// Whether any part of a token is left (not empty, not in debt).
    pub(crate) fn has_credit(&self) -> bool {
        self.level > 0
    }

    /// Whether the bucket is full.
    pub(crate) fn is_full(&self) -> bool {
        self.level >= self.capacity()
    }

    /// Takes `tokens`, into debt if there are not enough.
    pub(crate) fn take(&mut self, tokens: u64) {
        self.level = self
            .level
            .saturating_sub(i128::from(tokens).saturating_mul(SCALE));
    }

    /// How long from the last refill until it holds `tokens` (zero if it does).
    pub(crate) fn wait_for(&self, tokens: u64) -> Duration {
        let missing = (i128::from(tokens) * SCALE).saturating_sub(self.level);
        if missing <= 0 {
            return Duration::ZERO;
        }
        let rate = i128::from(self.limit.per_second.max(1));
        // Billionths of a token over tokens per second: nanoseconds, rounded up.
        let nanos = (missing + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When it will hold `tokens`, if it does not now.
    pub(crate) fn when_holding(&self, tokens: u64) -> Option<Instant> {
        let wait = self.wait_for(tokens);
        if wait.is_zero() {
            return None;
        }
        self.at.and_then(|at| at.checked_add(wait))
    }
}
