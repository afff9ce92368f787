//! The idle-shrink policy: a connection quiet for
//! [`Config::shrink_after_idle`](crate::Config::shrink_after_idle) gives back its read and write buffers and
//! its compression states, so what an idle connection costs is what it
//! holds (`tests/scale.rs` bounds it).

use std::time::Instant;

use super::Connection;

impl Connection {
    /// Gives back the buffers (and the compression states) once
    /// a whole [`shrink_after_idle`](Config::shrink_after_idle) passed with
    /// no bytes in or out and the connection quiet; otherwise checks again
    /// one period later. Checking by counters, not per read, keeps the
    /// deadline (and the adapters' timer) still while traffic flows.
    pub(super) fn check_shrink(&mut self, now: Instant) {
        let Some(period) = self.config.shrink_after_idle else {
            return;
        };
        let activity = (self.input.total(), self.sender.written());
        match self.timers.shrink {
            Some(at) if at > now => {}
            Some(_) if activity == self.timers.activity && self.is_quiet() => {
                self.input.release();
                #[cfg(feature = "deflate")]
                self.receiver.release();
                self.sender.release();
                self.timers.shrink = None;
            }
            _ if self.holds_idle_memory() => {
                self.timers.activity = activity;
                self.timers.shrink = now.checked_add(period);
            }
            _ => self.timers.shrink = None,
        }
    }

    /// Nothing buffered either way, no frame or message half-way.
    fn is_quiet(&self) -> bool {
        self.input.buf.is_empty() && self.receiver.is_quiet() && self.sender.is_quiet()
    }

    /// Whether the connection holds memory a shrink would give back.
    fn holds_idle_memory(&self) -> bool {
        !self.input.is_released() || self.receiver.holds_memory() || self.sender.holds_memory()
    }

    /// When the shrink check is due: its deadline, or, with memory held and
    /// no check armed (traffic resumed since the last shrink), one period
    /// after the last known time; the `handle_timeout` then arms the check
    /// from a fresh `now`.
    pub(super) fn shrink_deadline(&self) -> Option<Instant> {
        match (self.timers.shrink, self.config.shrink_after_idle) {
            (Some(at), _) => Some(at),
            (None, Some(period)) if self.holds_idle_memory() => {
                self.timers.now.and_then(|now| now.checked_add(period))
            }
            (None, _) => None,
        }
    }
}
