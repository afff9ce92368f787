//! What a connection counts about itself: messages, frames and bytes each
//! way, compression, the closes, and the round-trip time of its Pings.
//! The counters are plain additions where the frame and message paths
//! already are (benches/callgrind.sh guards their cost).

use std::time::{Duration, Instant};

use super::snapshot::{Reader, SnapshotError, Writer};
use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::message::DataKind;

/// Traffic one way, counted from the start of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Whole text messages, however many frames each took.
    pub text_messages: u64,
    /// Their payload bytes as the application sees them (inflated when
    /// compressed).
    pub text_bytes: u64,
    /// Whole binary messages.
    pub binary_messages: u64,
    /// Their payload bytes as the application sees them.
    pub binary_bytes: u64,
    /// Frames of every kind, control frames included.
    pub frames: u64,
    /// Ping frames.
    pub pings: u64,
    /// Pong frames.
    pub pongs: u64,
    /// Bytes on the transport: received into the connection, or taken out
    /// of [`Connection::outgoing`](crate::Connection::outgoing) as written.
    pub wire_bytes: u64,
    /// Messages sent or received compressed (permessage-deflate).
    pub compressed_messages: u64,
    /// Their payload bytes as compressed on the wire.
    pub compressed_bytes: u64,
    /// The same messages' payload bytes uncompressed.
    pub uncompressed_bytes: u64,
}

impl Traffic {
    /// Writes the counters (wire bytes are the input's and the queue's).
    pub(crate) fn freeze(&self, w: &mut Writer) {
        for n in [
            self.text_messages,
            self.text_bytes,
            self.binary_messages,
            self.binary_bytes,
            self.frames,
            self.pings,
            self.pongs,
            self.compressed_messages,
            self.compressed_bytes,
            self.uncompressed_bytes,
        ] {
            w.u64(n);
        }
    }

    pub(crate) fn thaw(r: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let mut count = || r.count("traffic");
        Ok(Self {
            text_messages: count()?,
            text_bytes: count()?,
            binary_messages: count()?,
            binary_bytes: count()?,
            frames: count()?,
            pings: count()?,
            pongs: count()?,
            wire_bytes: 0,
            compressed_messages: count()?,
            compressed_bytes: count()?,
            uncompressed_bytes: count()?,
        })
    }

    /// Counts a whole data message of `len` payload bytes.
    pub(crate) fn message(&mut self, kind: DataKind, len: usize) {
        self.fragment(kind, len, true);
    }

    /// Counts `len` payload bytes of a message of `kind`, and the message
    /// itself with its last piece.
    pub(crate) fn fragment(&mut self, kind: DataKind, len: usize, last: bool) {
        let (messages, bytes) = match kind {
            DataKind::Text => (&mut self.text_messages, &mut self.text_bytes),
            DataKind::Binary => (&mut self.binary_messages, &mut self.binary_bytes),
        };
        *messages = messages.wrapping_add(u64::from(last));
        *bytes = bytes.wrapping_add(len as u64);
    }

    /// Counts a message compressed from (or inflated to) `uncompressed`
    /// bytes, `compressed` on the wire; the message itself with its last piece.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed(&mut self, uncompressed: usize, compressed: usize, last: bool) {
        self.compressed_messages = self.compressed_messages.wrapping_add(u64::from(last));
        self.compressed_bytes = self.compressed_bytes.wrapping_add(compressed as u64);
        self.uncompressed_bytes = self.uncompressed_bytes.wrapping_add(uncompressed as u64);
    }
}

/// A connection's counters and facts, from
/// [`Connection::stats`](crate::Connection::stats).
///
/// ```
/// use rfc6455::{Config, Connection, Message, Role};
///
/// let mut server = Connection::new(Role::Server, Config::default())?;
/// server.send(Message::text("hello"))?;
/// let stats = server.stats();
/// assert_eq!(stats.sent.text_messages, 1);
/// assert_eq!(stats.sent.text_bytes, 5);
/// assert_eq!(stats.queued_output, 7); // a 2-byte header and the payload
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// What arrived from the peer.
    pub received: Traffic,
    /// What this end sent.
    pub sent: Traffic,
    /// Bytes queued for the transport and not yet written.
    pub queued_output: usize,
    /// The peer's Close: its code and reason, 1005 if it was empty, 1006 if
    /// the transport ended (or the wait timed out) without one.
    pub close_received: Option<CloseFrame>,
    /// The Close this end queued: one it started, its echo of the peer's,
    /// or the one reporting a protocol error.
    pub close_sent: Option<CloseFrame>,
    /// The protocol error the connection failed with, if it did.
    pub error: Option<ProtocolError>,
    /// The first time given to
    /// [`Connection::handle_timeout`](crate::Connection::handle_timeout)
    /// (the adapters give it when the connection starts).
    pub connected_since: Option<Instant>,
    /// The round-trip time of the latest timed Ping answered (see
    /// [`Connection::ping`](crate::Connection::ping)).
    pub rtt: Option<Duration>,
    /// The round-trip times smoothed (RFC 6298's 1/8 gain): what a health
    /// check should look at.
    pub smoothed_rtt: Option<Duration>,
    /// Timed Pings answered: round-trip samples taken.
    pub rtt_samples: u64,
    /// Times a [rate limit](crate::Config::rate_limits) paused input or
    /// closed the connection.
    pub rate_limited: u64,
}

/// The round-trip time of the connection's own Pings: each carries the
/// next number of a counter, and the Pong that echoes the latest one gives
/// a sample. Any other Pong is not a sample (RFC 6455 §5.5.3 allows a Pong
/// nobody asked for, and a peer answers only the newest of several Pings).
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundTrip {
    sent: u64,
    /// The latest timed Ping: its number and when it was queued.
    outstanding: Option<(u64, Instant)>,
    pub(crate) last: Option<Duration>,
    pub(crate) smoothed: Option<Duration>,
    /// Samples taken.
    pub(crate) samples: u64,
}

/// Length of a timed Ping's payload: the counter, big-endian.
const PING_LEN: usize = 8;

impl RoundTrip {
    pub(crate) fn freeze(&self, w: &mut Writer, now: Instant) {
        w.u64(self.sent);
        w.bool(self.outstanding.is_some());
        if let Some((number, at)) = self.outstanding {
            w.u64(number);
            w.instant(Some(at), now);
        }
        w.duration(self.last);
        w.duration(self.smoothed);
        w.u64(self.samples);
    }

    pub(crate) fn thaw(r: &mut Reader<'_>, now: Instant) -> Result<Self, SnapshotError> {
        let sent = r.u64()?;
        let outstanding = if r.bool("ping")? {
            let number = r.u64()?;
            let at = r
                .instant(now, "ping")?
                .ok_or(SnapshotError::Invalid("ping"))?;
            Some((number, at))
        } else {
            None
        };
        Ok(Self {
            sent,
            outstanding,
            last: r.duration("rtt")?,
            smoothed: r.duration("rtt")?,
            samples: r.count("rtt samples")?,
        })
    }

    /// The payload of a timed Ping queued at `now`.
    pub(crate) fn ping(&mut self, now: Instant) -> [u8; PING_LEN] {
        self.sent = self.sent.wrapping_add(1);
        self.outstanding = Some((self.sent, now));
        self.sent.to_be_bytes()
    }

    /// Whether a timed Ping waits for its Pong (the adapters then tell the
    /// connection the time after every read).
    pub(crate) fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
    }

    /// A Pong with `payload` arrived at `now`.
    pub(crate) fn on_pong(&mut self, payload: &[u8], now: Option<Instant>) {
        let (Some((number, sent)), Some(now)) = (self.outstanding, now) else {
            return;
        };
        if payload != number.to_be_bytes() {
            return;
        }
        self.outstanding = None;
        self.samples = self.samples.wrapping_add(1);
        let sample = now.saturating_duration_since(sent);
        self.last = Some(sample);
        // RFC 6298 §2.3: SRTT <- 7/8 SRTT + 1/8 R'.
        let smoothed = self.smoothed.map_or(sample, |srtt| {
            srtt.checked_mul(7)
                .and_then(|d| d.checked_add(sample))
                .map_or(sample, |d| d / 8)
        });
        self.smoothed = Some(smoothed);
    }
}
