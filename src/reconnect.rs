//! When a client should connect again, and how soon: which failures and
//! close codes mean "try again" ([`Verdict`]), and a full-jitter
//! exponential [`Backoff`] with time and randomness as inputs, so a fleet
//! of clients that lost their server at once does not come back at once
//! (RFC 6455 §7.2.3 asks for a random first delay and growing ones after).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::SeedableRng;
//! use rfc6455::reconnect::{Backoff, BackoffConfig};
//!
//! let mut backoff = Backoff::new(BackoffConfig::default());
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let first = backoff.next_delay(&mut rng); // in [0, 0.5 s]
//! let second = backoff.next_delay(&mut rng); // in [0, 1 s]
//! assert!(first <= Duration::from_millis(500) && second <= Duration::from_secs(1));
//! backoff.connected(Instant::now());
//! ```

use std::io;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::close::{CloseCode, CloseFrame};
use crate::error::Error;
use crate::handshake::HandshakeError;

/// Whether and when to connect again after a failure or a closed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Try again after the backoff's delay.
    Retry,
    /// Try again, not sooner than this (the server's `Retry-After`).
    RetryAfter(Duration),
    /// Do not: the server or the peer refused, or the same attempt would
    /// fail the same way.
    Stop,
}

impl CloseCode {
    /// Whether a connection that ended with this code is worth opening
    /// again: 1001 (going away), 1005 and 1006 (no code, no close), 1011
    /// (server error), 1012 (restart), 1013 (try again later) and 1014 (bad
    /// gateway). Not a normal closure, a protocol, data, policy or size
    /// violation, a missing extension, a TLS failure, or an application's
    /// own code (3000-4999), which the application must judge.
    #[must_use]
    pub fn suggests_retry(self) -> bool {
        matches!(self.0, 1001 | 1005 | 1006 | 1011..=1014)
    }
}

impl Verdict {
    /// The verdict on a connection that ended with the peer's `close` (as
    /// [`Connection::close_frame`](crate::Connection::close_frame) reports
    /// it: 1006 when the transport ended without one).
    #[must_use]
    pub fn for_close(close: &CloseFrame) -> Self {
        if close.code.suggests_retry() {
            Self::Retry
        } else {
            Self::Stop
        }
    }

    /// The verdict on an error from connecting or from a connection:
    /// retry after transport errors and timeouts, after a Close or protocol
    /// error whose code [suggests it](CloseCode::suggests_retry), and after
    /// HTTP 429, 500, 502, 503 and 504 (honouring a `Retry-After` in
    /// seconds); stop after any other refusal, a handshake the server got
    /// wrong, a TLS certificate the client does not trust, or a mistake in
    /// the client's own request or configuration.
    #[must_use]
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::Io(error) if untrusted_certificate(error) => Self::Stop,
            Error::Io(_) | Error::HandshakeTimeout(_) => Self::Retry,
            Error::Protocol(error) if error.close_code().suggests_retry() => Self::Retry,
            Error::Handshake(HandshakeError::Refused(refusal)) => match refusal.status {
                429 | 500 | 502 | 503 | 504 => refusal
                    .header("retry-after")
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map_or(Self::Retry, |seconds| {
                        Self::RetryAfter(Duration::from_secs(seconds))
                    }),
                _ => Self::Stop,
            },
            _ => Self::Stop,
        }
    }
}

/// Whether an I/O error is TLS refusing the server's certificate.
#[cfg(feature = "rustls")]
fn untrusted_certificate(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
}

/// Without TLS in the library no I/O error is a certificate's.
#[cfg(not(feature = "rustls"))]
fn untrusted_certificate(_: &io::Error) -> bool {
    false
}

/// How a [`Backoff`] grows.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The ceiling of the first delay. Default 0.5 s.
    pub base: Duration,
    /// How much the ceiling grows per failed attempt. Default 2.
    pub factor: f64,
    /// The largest ceiling. Default 30 s.
    pub cap: Duration,
    /// A connection that lasted this long resets the delays to the first
    /// one's. Default 10 s.
    pub stable_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            factor: 2.0,
            cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
        }
    }
}

by_value_setters! {
    BackoffConfig {
        /// Sets [`base`](Self::base).
        base: Duration;
        /// Sets [`factor`](Self::factor).
        factor: f64;
        /// Sets [`cap`](Self::cap).
        cap: Duration;
        /// Sets [`stable_after`](Self::stable_after).
        stable_after: Duration;
    }
}

/// Full-jitter exponential backoff: the delay before attempt `n` (from 0)
/// is uniformly random in `[0, min(cap, base · factorⁿ)]`. The attempt
/// count resets when a connection lasted
/// [`stable_after`](BackoffConfig::stable_after).
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    connected_at: Option<Instant>,
}

impl Backoff {
    /// A backoff at its first attempt.
    #[must_use]
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            attempt: 0,
            connected_at: None,
        }
    }

    /// Attempts made since the last reset.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay: `min(cap, base · factorⁿ)`.
    #[must_use]
    pub fn ceiling(&self) -> Duration {
        let exponent = i32::try_from(self.attempt).unwrap_or(i32::MAX);
        let seconds = self.config.base.as_secs_f64() * self.config.factor.powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .map_or(self.config.cap, |ceiling| ceiling.min(self.config.cap))
    }

    /// The delay before the next attempt, drawn from `rng`, and counts the
    /// attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = u128::from(u64::try_from(self.ceiling().as_nanos()).unwrap_or(u64::MAX));
        // Uniform in [0, ceiling]: the high bits of a 64-bit draw scaled.
        let nanos = (u128::from(rng.next_u64()) * (ceiling + 1)) >> 64;
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A connection opened at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The connection ended at `now`: if it lasted
    /// [`stable_after`](BackoffConfig::stable_after), the delays start over.
    pub fn disconnected(&mut self, now: Instant) {
        if let Some(since) = self.connected_at.take()
            && now.saturating_duration_since(since) >= self.config.stable_after
        {
            self.attempt = 0;
        }
    }
}
