//! Keepalive, idle and close-handshake deadlines.
//!
//! Time is an input: the connection learns it only from
//! [`Connection::handle_timeout`](crate::Connection::handle_timeout), and
//! answers [`Connection::poll_timeout`](crate::Connection::poll_timeout) with
//! the earliest armed deadline.

use std::time::{Duration, Instant};

use super::snapshot::{Reader, SnapshotError, Writer};

/// The deadlines, and what the connection knew at the last `handle_timeout`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    /// The latest time seen.
    pub(crate) now: Option<Instant>,
    /// Bytes received (in total) when the timers were last re-armed.
    rx_seen: u64,
    /// When to send a keepalive Ping.
    pub(crate) keepalive: Option<Instant>,
    /// When to give up on a silent peer.
    pub(crate) idle: Option<Instant>,
    /// When to stop waiting in the close handshake.
    pub(crate) close: Option<Instant>,
    /// A close wait started since the last `handle_timeout`; its deadline is
    /// armed from the next `now`.
    pub(crate) close_pending: bool,
    /// When queued output must have made progress (armed once output is
    /// seen waiting).
    pub(crate) write: Option<Instant>,
    /// Bytes written (in total) when `write` was armed.
    tx_seen: u64,
    /// When to check whether the connection stayed quiet (and shrink it).
    /// Not among the deadlines reads need the time for: the check compares
    /// `activity`, and the connection reports it from `poll_timeout`.
    pub(crate) shrink: Option<Instant>,
    /// Bytes received and written, in total, when `shrink` was armed.
    pub(crate) activity: (u64, u64),
}

fn after(now: Instant, interval: Option<Duration>) -> Option<Instant> {
    interval.and_then(|d| now.checked_add(d))
}

impl Timers {
    /// Writes the deadlines as offsets from `now`, and the counts beside them.
    pub(crate) fn freeze(&self, w: &mut Writer, now: Instant) {
        w.instant(self.now, now);
        w.u64(self.rx_seen);
        for deadline in [
            self.keepalive,
            self.idle,
            self.close,
            self.write,
            self.shrink,
        ] {
            w.instant(deadline, now);
        }
        w.bool(self.close_pending);
        w.u64(self.tx_seen);
        w.u64(self.activity.0);
        w.u64(self.activity.1);
    }

    pub(crate) fn thaw(r: &mut Reader<'_>, now: Instant) -> Result<Self, SnapshotError> {
        Ok(Self {
            now: r.instant(now, "timers")?,
            rx_seen: r.u64()?,
            keepalive: r.instant(now, "keepalive")?,
            idle: r.instant(now, "idle")?,
            close: r.instant(now, "close")?,
            write: r.instant(now, "write")?,
            shrink: r.instant(now, "shrink")?,
            close_pending: r.bool("close pending")?,
            tx_seen: r.u64()?,
            activity: (r.u64()?, r.u64()?),
        })
    }

    /// Records `now` and re-arms the input deadlines if bytes arrived since
    /// the last call (or this is the first call).
    pub(crate) fn advance(
        &mut self,
        now: Instant,
        rx_total: u64,
        keepalive: Option<Duration>,
        idle: Option<Duration>,
        close: Option<Duration>,
    ) {
        if self.now.is_none() || rx_total != self.rx_seen {
            self.rx_seen = rx_total;
            self.keepalive = after(now, keepalive);
            self.idle = after(now, idle);
        }
        self.arm_close(now, close);
        self.now = Some(now);
    }

    /// Arms the close deadline from `now` if a close wait started since it was last armed.
    pub(crate) fn arm_close(&mut self, now: Instant, close: Option<Duration>) {
        if self.close_pending {
            self.close_pending = false;
            self.close = after(now, close);
        }
    }

    /// Checks the write deadline at `now`, given the bytes written in total
    /// and whether output waits; true when it passed with output waiting
    /// and no byte written since it was armed. It is armed when output is
    /// seen waiting and moves only when it passes (to `now` + `timeout` if
    /// bytes went out meanwhile), so a busy connection resets no timer per
    /// write: a stall is caught between one and two timeouts after the last
    /// byte went out.
    pub(crate) fn check_write(
        &mut self,
        now: Instant,
        tx_total: u64,
        waiting: bool,
        timeout: Option<Duration>,
    ) -> bool {
        let due = match self.write {
            _ if timeout.is_none() => {
                self.write = None;
                return false;
            }
            None => waiting,
            Some(at) => at <= now,
        };
        if !due {
            return false;
        }
        if self.write.is_some() && waiting && tx_total == self.tx_seen {
            self.write = None;
            return true;
        }
        self.tx_seen = tx_total;
        self.write = if waiting { after(now, timeout) } else { None };
        false
    }

    /// Takes the deadline in `slot` if it is due at `now`.
    pub(crate) fn take_due(slot: &mut Option<Instant>, now: Instant) -> bool {
        if slot.is_some_and(|t| t <= now) {
            *slot = None;
            true
        } else {
            false
        }
    }

    /// The earliest deadline but the write deadline (which needs no fresh
    /// time after each read: it is checked only when it passes); a close
    /// wait that started since the last call reports the last known time,
    /// so the driver calls back at once to arm it.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        let pending = if self.close_pending { self.now } else { None };
        [self.keepalive, self.idle, self.close, pending]
            .into_iter()
            .flatten()
            .min()
    }
}
