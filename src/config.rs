//! Limits and switches for a [`Connection`](crate::Connection).

use std::time::Duration;

use crate::error::ConfigError;

/// Limits and switches for a [`Connection`](crate::Connection).
///
/// Build one from [`Config::default`] with the by-value setters. A value
/// that cannot work (a zero limit or duration) is refused where the config
/// is handed over: [`validate`](Self::validate), the builders'
/// `config` methods and [`Connection::new`](crate::Connection::new) return
/// a [`ConfigError`], so no connection is ever reset for its server's
/// configuration.
///
/// ```
/// use std::time::Duration;
/// use rfc6455::{Config, ConfigError};
/// // The frame limit follows a smaller message limit.
/// let config = Config::default()
///     .max_message_size(1 << 20)
///     .keepalive_interval(Some(Duration::from_secs(20)))
///     .validate()?;
/// assert_eq!(config.frame_limit(), 1 << 20);
/// assert_eq!(
///     Config::default().max_frame_size(0).validate(),
///     Err(ConfigError::ZeroLimit("max_frame_size"))
/// );
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted, in bytes. Default 16 MiB.
    ///
    /// A larger frame fails the connection with 1009 as soon as its header
    /// arrives, before any of its payload is buffered. A value above
    /// [`max_message_size`](Self::max_message_size) follows it down (see
    /// [`frame_limit`](Config::frame_limit)), so setting the message limit
    /// alone is enough.
    pub max_frame_size: usize,
    /// The largest message accepted (the sum of its frames), in bytes. Default 64 MiB.
    ///
    /// A frame that would take its message past this fails the connection
    /// with 1009 as soon as its header arrives.
    pub max_message_size: usize,
    /// Queued output, in bytes, past which [`send`](crate::Connection::send)
    /// hands the message back as [`SendError::Full`](crate::SendError::Full). Default 8 MiB.
    ///
    /// A message is always accepted into an empty queue, so the queue holds at
    /// most this much or one message. Automatic Pongs and Close frames are
    /// exempt (there is at most one pending Pong).
    pub max_write_buffer: usize,
    /// Queued output, in bytes, past which the adapters write before they
    /// accept another message (the async `feed`/`Sink::poll_ready` wait, the
    /// blocking `write` writes first). Default 256 KiB.
    ///
    /// This is the backpressure mark: a task that answers each message it
    /// reads stops reading while its answers are not leaving, instead of
    /// queueing up to [`max_write_buffer`](Self::max_write_buffer) per
    /// connection. Small messages still leave together in one vectored
    /// write; a message larger than the mark is taken once the queue is
    /// empty (see [`Connection::is_write_backlogged`](crate::Connection::is_write_backlogged)).
    /// `0` writes everything out before each message.
    pub write_high_water: usize,
    /// Split outgoing data messages into frames of at most this many payload
    /// bytes. Default `None`: one frame per message.
    pub max_send_frame_size: Option<usize>,
    /// Queue a Pong for every received Ping. Default `true`.
    pub auto_pong: bool,
    /// Send a Ping when nothing has been received for this long. Default `None`.
    pub keepalive_interval: Option<Duration>,
    /// Fail with [`ProtocolError::IdleTimeout`](crate::ProtocolError::IdleTimeout)
    /// (Close 1001) when nothing has been received for this long. Default `None`.
    pub idle_timeout: Option<Duration>,
    /// How long a connection may take to end once its close began (this
    /// end's Close queued): the wait for the peer's Close reply, a client's
    /// wait for the server to close the transport (§7.1.1), and the
    /// lingering read after the transport's write side is shut. When it runs
    /// out, output the peer did not take is dropped and the transport
    /// closed, whatever the peer does. Default 5 seconds; `None` waits for
    /// the peer forever.
    pub close_timeout: Option<Duration>,
    /// Fail with [`ProtocolError::WriteTimeout`](crate::ProtocolError::WriteTimeout)
    /// when queued output makes no progress for this long: the peer stopped
    /// reading, and its socket would otherwise be kept open by TCP's
    /// persist probes for as long as it likes. Detected within twice this
    /// (the deadline moves only when the adapter learns the time). Default
    /// 60 seconds, nginx's `send_timeout`: long enough for a mobile peer's
    /// stall, short enough that a peer cannot pin a task and its buffers.
    pub write_timeout: Option<Duration>,
    /// How long the connection must be quiet (no bytes in or out, nothing
    /// buffered, no message half-received or half-sent) before it gives
    /// back its read and write buffers and its compression states (keeping,
    /// with context takeover, only the bytes of the peer's window).
    /// Default 1 second; `None` keeps them for the connection's life.
    ///
    /// What an idle connection costs is what it holds: with this, a plain
    /// one keeps no buffer. The buffers come back once, on the next read or
    /// send, not per message. Checked from
    /// [`handle_timeout`](crate::Connection::handle_timeout), so a sans-IO
    /// caller gets it by following [`poll_timeout`](crate::Connection::poll_timeout)
    /// (the adapters do). Guarded by `tests/scale.rs`.
    pub shrink_after_idle: Option<Duration>,
    /// Seed for the client's masking keys. Default `None`: seeded from the
    /// operating system's entropy, as RFC 6455 §10.3 requires.
    ///
    /// A fixed seed makes masks predictable to anyone who knows it, which
    /// defeats the purpose of masking; it exists for reproducible tests.
    pub dangerous_mask_seed: Option<u64>,
    /// Token buckets over what the peer sends (messages, wire bytes,
    /// inflated bytes per second) and what to do past them: pause reading
    /// or close with 1008. Default: no limits.
    pub rate_limits: RateLimits,
    /// permessage-deflate (RFC 7692): what to offer (client) or accept
    /// (server) in the adapters' handshakes. Default `None`: no compression.
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub deflate: Option<crate::extensions::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_write_buffer: 8 << 20,
            write_high_water: 256 << 10,
            max_send_frame_size: None,
            auto_pong: true,
            keepalive_interval: None,
            idle_timeout: None,
            close_timeout: Some(Duration::from_secs(5)),
            write_timeout: Some(Duration::from_secs(60)),
            shrink_after_idle: Some(Duration::from_secs(1)),
            dangerous_mask_seed: None,
            rate_limits: RateLimits::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

by_value_setters! {
    Config {
        /// Sets [`max_frame_size`](Self::max_frame_size).
        max_frame_size: usize;
        /// Sets [`max_message_size`](Self::max_message_size).
        max_message_size: usize;
        /// Sets [`max_write_buffer`](Self::max_write_buffer).
        max_write_buffer: usize;
        /// Sets [`write_high_water`](Self::write_high_water).
        write_high_water: usize;
        /// Sets [`max_send_frame_size`](Self::max_send_frame_size).
        max_send_frame_size: Option<usize>;
        /// Sets [`auto_pong`](Self::auto_pong).
        auto_pong: bool;
        /// Sets [`keepalive_interval`](Self::keepalive_interval).
        keepalive_interval: Option<Duration>;
        /// Sets [`idle_timeout`](Self::idle_timeout).
        idle_timeout: Option<Duration>;
        /// Sets [`close_timeout`](Self::close_timeout).
        close_timeout: Option<Duration>;
        /// Sets [`write_timeout`](Self::write_timeout).
        write_timeout: Option<Duration>;
        /// Sets [`shrink_after_idle`](Self::shrink_after_idle).
        shrink_after_idle: Option<Duration>;
        /// Sets [`dangerous_mask_seed`](Self::dangerous_mask_seed).
        dangerous_mask_seed: Option<u64>;
        /// Sets [`rate_limits`](Self::rate_limits).
        rate_limits: RateLimits;
    }
}

/// A token bucket: `per_second` tokens added each second, at most `burst`
/// held. A message costs one token, a byte one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: u64,
    /// Tokens the bucket holds when full: what may arrive at once.
    pub burst: u64,
}

impl RateLimit {
    /// `per_second` tokens a second, `burst` at once.
    #[must_use]
    pub const fn new(per_second: u64, burst: u64) -> Self {
        Self { per_second, burst }
    }
}

/// What a connection does with input past a [`RateLimit`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OverLimit {
    /// Stop taking input at the next frame until the buckets refill:
    /// [`Connection::wants_read`](crate::Connection::wants_read) is false
    /// and [`Connection::poll_timeout`](crate::Connection::poll_timeout)
    /// says when to look again, so the adapters stop reading and the peer
    /// feels TCP backpressure. The frame that empties a bucket may run it
    /// into debt, so a frame larger than a burst still gets through.
    #[default]
    Pause,
    /// Fail with [`ProtocolError::RateLimited`](crate::ProtocolError::RateLimited)
    /// (Close 1008, "rate limit exceeded") at the first frame the buckets
    /// cannot pay for in full.
    Close,
}

/// Limits on what the peer sends, checked as it arrives, with time from
/// [`Connection::handle_timeout`](crate::Connection::handle_timeout).
///
/// ```
/// use rfc6455::{Config, OverLimit, RateLimit, RateLimits};
/// let config = Config::default().rate_limits(
///     RateLimits::default()
///         .messages(Some(RateLimit::new(1_000, 100)))
///         .wire_bytes(Some(RateLimit::new(1 << 20, 4 << 20)))
///         .action(OverLimit::Close),
/// );
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimits {
    /// Messages per second: each data message and each control frame, at
    /// its first frame's header.
    pub messages: Option<RateLimit>,
    /// Bytes on the wire per second (headers and payloads), charged at each
    /// frame's header.
    pub wire_bytes: Option<RateLimit>,
    /// Payload bytes per second after inflating (permessage-deflate),
    /// charged as they inflate: a flood of compressed data counts at its
    /// real size. A message may inflate past what the bucket holds by at
    /// most one burst when pausing (not at all when closing); past that it
    /// fails with [`ProtocolError::RateLimited`](crate::ProtocolError::RateLimited),
    /// before [`Config::max_message_size`] is reached.
    pub inflated_bytes: Option<RateLimit>,
    /// Pause reading (the default) or close with 1008.
    pub action: OverLimit,
}

by_value_setters! {
    RateLimits {
        /// Sets [`messages`](Self::messages).
        messages: Option<RateLimit>;
        /// Sets [`wire_bytes`](Self::wire_bytes).
        wire_bytes: Option<RateLimit>;
        /// Sets [`inflated_bytes`](Self::inflated_bytes).
        inflated_bytes: Option<RateLimit>;
        /// Sets [`action`](Self::action).
        action: OverLimit;
    }
}

#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
impl Config {
    /// Sets [`deflate`](Self::deflate).
    #[must_use = "setters return the changed Config"]
    pub fn deflate(mut self, value: Option<crate::extensions::deflate::DeflateConfig>) -> Self {
        self.deflate = value;
        self
    }
}

impl Config {
    /// The largest frame payload accepted: [`max_frame_size`](Self::max_frame_size),
    /// or [`max_message_size`](Self::max_message_size) when that is smaller
    /// (no frame can be larger than its message).
    #[must_use]
    pub fn frame_limit(&self) -> usize {
        self.max_frame_size.min(self.max_message_size)
    }

    /// The configuration, once checked that it can work: every size limit
    /// and rate above zero, every duration that is set above zero.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] and [`ConfigError::ZeroDuration`], naming the field.
    pub fn validate(self) -> Result<Self, ConfigError> {
        self.check()?;
        Ok(self)
    }

    /// [`validate`](Self::validate) by reference.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.max_frame_size == 0 {
            return Err(ConfigError::ZeroLimit("max_frame_size"));
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::ZeroLimit("max_message_size"));
        }
        if self.max_write_buffer == 0 {
            return Err(ConfigError::ZeroLimit("max_write_buffer"));
        }
        if self.max_send_frame_size == Some(0) {
            return Err(ConfigError::ZeroLimit("max_send_frame_size"));
        }
        for (name, value) in [
            ("keepalive_interval", self.keepalive_interval),
            ("idle_timeout", self.idle_timeout),
            ("close_timeout", self.close_timeout),
            ("write_timeout", self.write_timeout),
            ("shrink_after_idle", self.shrink_after_idle),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        let limits = &self.rate_limits;
        for (name, limit) in [
            ("rate_limits.messages", limits.messages),
            ("rate_limits.wire_bytes", limits.wire_bytes),
            ("rate_limits.inflated_bytes", limits.inflated_bytes),
        ] {
            if limit.is_some_and(|l| l.per_second == 0 || l.burst == 0) {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().check(), Ok(()));
    }

    #[test]
    fn the_frame_limit_follows_a_smaller_message_limit() {
        let c = Config::default().max_message_size(1 << 20);
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.frame_limit(), 1 << 20);
        assert_eq!(c.max_message_size(4 << 20).frame_limit(), 4 << 20);
        let c = Config::default().max_frame_size(4096);
        assert_eq!(c.frame_limit(), 4096);
    }

    #[test]
    fn rejects_unworkable_values() {
        let c = Config::default();
        assert_eq!(
            c.clone().max_frame_size(0).check(),
            Err(ConfigError::ZeroLimit("max_frame_size"))
        );
        assert_eq!(
            c.clone().max_send_frame_size(Some(0)).check(),
            Err(ConfigError::ZeroLimit("max_send_frame_size"))
        );
        assert_eq!(
            c.idle_timeout(Some(Duration::ZERO)).check(),
            Err(ConfigError::ZeroDuration("idle_timeout"))
        );
    }
}
