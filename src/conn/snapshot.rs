//! Freezing a connection into bytes and thawing it back, so another
//! process can carry it on (a deploy that keeps its connections).
//!
//! A snapshot is taken at a quiet moment for output (everything queued was
//! written) and carries the protocol state: the role, what the handshake
//! settled (target, subprotocol, permessage-deflate's parameters and the
//! peer's window), the close handshake's phase, input received but not yet
//! parsed (a frame or a message half-way included), the UTF-8 state of text
//! half-way, the timers as offsets from the time given, the Ping counter,
//! the rate limits' buckets and the counters. It does not carry the
//! configuration (the process that thaws runs its own: a deploy may change
//! limits), the client's masking-key generator (reseeded: fresh keys are
//! as good), nor this end's compressor context (the next message refers to
//! nothing before it, which every decompressor accepts).
//!
//! The form: the magic `RFC6455S`, a version, the fields in a fixed order
//! (integers little-endian, byte strings length-prefixed), and an FNV-1a
//! checksum over all of it. Thawing checks every field against the rules
//! and the configuration before anything is built: a snapshot of another
//! version, a corrupted or an inconsistent one is a [`SnapshotError`],
//! never a half-restored connection (fuzz target `snapshot`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::ConfigError;

use super::{Connection, Role};

/// The first bytes of every snapshot.
const MAGIC: &[u8; 8] = b"RFC6455S";
/// The snapshot form this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// Why a connection could not be frozen, or bytes thawed into one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Freezing: output waits to be written; drain
    /// [`Connection::outgoing`] first.
    #[error("output waits to be written")]
    OutputPending,
    /// Freezing: a compressed message is half-received, and its
    /// decompressor's state cannot be carried. Freeze once it is whole.
    #[error("a compressed message is half-received")]
    CompressedMessageInProgress,
    /// Freezing: the connection failed, closed, or its transport ended;
    /// there is nothing to carry on.
    #[error("the connection has ended")]
    Ended,
    /// Thawing: the bytes are not a snapshot.
    #[error("not a connection snapshot")]
    NotASnapshot,
    /// Thawing: a snapshot of another version.
    #[error("snapshot version {0}, this build reads {SNAPSHOT_VERSION}")]
    Version(u16),
    /// Thawing: the checksum does not match; the bytes were damaged.
    #[error("snapshot corrupted (checksum)")]
    Corrupted,
    /// Thawing: a field is malformed, out of range, or at odds with another
    /// field or with the configuration (it names which).
    #[error("snapshot field invalid: {0}")]
    Invalid(&'static str),
    /// Thawing: the connection used permessage-deflate, which this build
    /// lacks.
    #[error("snapshot uses permessage-deflate; the `deflate` feature is off")]
    NoDeflate,
    /// Thawing: the configuration given cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Writes a snapshot's fields.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn i128(&mut self, value: i128) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.u64(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// One byte string given in two pieces.
    #[cfg(feature = "deflate")]
    pub(crate) fn bytes_in_two(&mut self, front: &[u8], back: &[u8]) {
        self.u64((front.len() + back.len()) as u64);
        self.buf.extend_from_slice(front);
        self.buf.extend_from_slice(back);
    }

    /// A duration, or none.
    pub(crate) fn duration(&mut self, value: Option<Duration>) {
        self.bool(value.is_some());
        if let Some(value) = value {
            self.u64(value.as_secs());
            self.u64(u64::from(value.subsec_nanos()));
        }
    }

    /// A time as its offset from `now` (ahead or behind), or none.
    pub(crate) fn instant(&mut self, value: Option<Instant>, now: Instant) {
        match value {
            None => self.u8(0),
            Some(at) if at >= now => {
                self.u8(1);
                self.duration(Some(at - now));
            }
            Some(at) => {
                self.u8(2);
                self.duration(Some(now - at));
            }
        }
    }

    pub(crate) fn close_frame(&mut self, frame: &CloseFrame) {
        self.u16(frame.code.0);
        self.bytes(frame.reason.as_bytes());
    }
}

/// Reads a snapshot's fields; every read is checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

const TRUNCATED: SnapshotError = SnapshotError::Invalid("truncated");

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        if len > self.buf.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        self.take(N)?.try_into().map_err(|_| TRUNCATED)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Invalid(field)),
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i128(&mut self) -> Result<i128, SnapshotError> {
        Ok(i128::from_le_bytes(self.array()?))
    }

    /// A running total (bytes, frames): below 2^62, which no connection
    /// reaches, so the additions ahead of it cannot overflow.
    pub(crate) fn count(&mut self, field: &'static str) -> Result<u64, SnapshotError> {
        Some(self.u64()?)
            .filter(|&n| n < 1 << 62)
            .ok_or(SnapshotError::Invalid(field))
    }

    /// A `usize` of at most `max`.
    pub(crate) fn usize(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<usize, SnapshotError> {
        usize::try_from(self.u64()?)
            .ok()
            .filter(|&value| value <= max)
            .ok_or(SnapshotError::Invalid(field))
    }

    /// A byte string of at most `max` bytes.
    pub(crate) fn bytes(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], SnapshotError> {
        let len = self.usize(max, field)?;
        self.take(len)
    }

    pub(crate) fn string(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a str, SnapshotError> {
        std::str::from_utf8(self.bytes(max, field)?).map_err(|_| SnapshotError::Invalid(field))
    }

    pub(crate) fn duration(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Duration>, SnapshotError> {
        if !self.bool(field)? {
            return Ok(None);
        }
        let secs = self.u64()?;
        let nanos = u32::try_from(self.u64()?)
            .ok()
            .filter(|&n| n < 1_000_000_000)
            .ok_or(SnapshotError::Invalid(field))?;
        Ok(Some(Duration::new(secs, nanos)))
    }

    /// A time written as an offset from the snapshot's time, placed
    /// against `now`.
    pub(crate) fn instant(
        &mut self,
        now: Instant,
        field: &'static str,
    ) -> Result<Option<Instant>, SnapshotError> {
        let tag = self.u8()?;
        if tag == 0 {
            return Ok(None);
        }
        let offset = self.duration(field)?.ok_or(SnapshotError::Invalid(field))?;
        let at = match tag {
            1 => now.checked_add(offset),
            2 => now.checked_sub(offset),
            _ => None,
        };
        at.map(Some).ok_or(SnapshotError::Invalid(field))
    }

    pub(crate) fn close_frame(&mut self, field: &'static str) -> Result<CloseFrame, SnapshotError> {
        let code = CloseCode(self.u16()?);
        let reason = self.string(crate::close::MAX_REASON_LEN, field)?;
        Ok(CloseFrame::new(code, reason))
    }
}

/// FNV-1a, 64 bits: catches damage, not tampering (a snapshot is trusted
/// as much as the process that wrote it).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Connection {
    /// Whether the connection could be [frozen](Self::freeze) once its
    /// output is written: it is open or its Close is sent, and no
    /// compressed message is half-received.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Ended`] or
    /// [`SnapshotError::CompressedMessageInProgress`].
    pub fn can_freeze(&self) -> Result<(), SnapshotError> {
        if !self.life.may_freeze() {
            return Err(SnapshotError::Ended);
        }
        if self.receiver.is_mid_compressed() {
            return Err(SnapshotError::CompressedMessageInProgress);
        }
        Ok(())
    }

    /// Freezes the connection into bytes another process can
    /// [`thaw`](Self::thaw), at `now`; this connection is then done with
    /// (drop it without closing: the peer keeps talking to the thawed one,
    /// over the same transport). Take it once output is written
    /// ([`wants_write`](Self::wants_write) false); a frame or an
    /// uncompressed message half-received is carried.
    ///
    /// ```
    /// use std::time::Instant;
    /// use rfc6455::{Config, Connection, Message, Role};
    ///
    /// let mut conn = Connection::new(Role::Server, Config::default())?;
    /// conn.receive(&[0x81, 0x82, 1, 2, 3, 4]); // half a masked text frame
    /// assert_eq!(conn.next_message()?, None);
    /// let snapshot = conn.freeze(Instant::now())?;
    /// let mut thawed = Connection::thaw(&snapshot, Config::default(), Instant::now())?;
    /// thawed.receive(&[b'h' ^ 1, b'i' ^ 2]); // its masked payload
    /// assert_eq!(thawed.next_message()?, Some(Message::text("hi")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SnapshotError::OutputPending`],
    /// [`SnapshotError::CompressedMessageInProgress`] or
    /// [`SnapshotError::Ended`]. Nothing changed.
    pub fn freeze(&mut self, now: Instant) -> Result<Vec<u8>, SnapshotError> {
        self.can_freeze()?;
        if self.sender.wants_write() {
            return Err(SnapshotError::OutputPending);
        }
        let mut w = Writer::default();
        w.buf.extend_from_slice(MAGIC);
        w.u16(SNAPSHOT_VERSION);
        w.u8(match self.role {
            Role::Client => 0,
            Role::Server => 1,
        });
        match &self.opening {
            None => w.bool(false),
            Some(record) => {
                w.bool(true);
                w.bytes(record.target().as_bytes());
                w.bool(record.protocol().is_some());
                w.bytes(record.protocol().unwrap_or_default().as_bytes());
            }
        }
        self.life.freeze(&mut w);
        w.bool(self.close_sent.is_some());
        if let Some(frame) = &self.close_sent {
            w.close_frame(frame);
        }
        self.input.freeze(&mut w);
        self.receiver.freeze(&mut w, now);
        self.sender.freeze(&mut w);
        self.timers.freeze(&mut w, now);
        self.rtt.freeze(&mut w, now);
        w.instant(self.since, now);
        let sum = checksum(&w.buf);
        w.u64(sum);
        Ok(w.buf)
    }

    /// A connection carried on from a [`freeze`](Self::freeze) snapshot,
    /// running with `config` from `now` (the snapshot's timers are placed
    /// against it). The client's masking keys come from a fresh generator.
    ///
    /// # Errors
    ///
    /// The thawing [`SnapshotError`]s: not a snapshot, another version, damaged, a field
    /// out of range or at odds with `config` (a frame or message past its
    /// limits), permessage-deflate without the `deflate` feature, or a
    /// `config` that cannot work. Nothing is half-restored.
    pub fn thaw(
        snapshot: &[u8],
        config: impl Into<Arc<Config>>,
        now: Instant,
    ) -> Result<Self, SnapshotError> {
        let body_len = snapshot
            .len()
            .checked_sub(8)
            .filter(|&len| len >= MAGIC.len() + 2)
            .ok_or(SnapshotError::NotASnapshot)?;
        let (body, sum) = snapshot.split_at(body_len);
        let Some(fields) = body.strip_prefix(MAGIC.as_slice()) else {
            return Err(SnapshotError::NotASnapshot);
        };
        let mut r = Reader { buf: fields };
        let version = r.u16()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        let sum: [u8; 8] = sum.try_into().map_err(|_| SnapshotError::NotASnapshot)?;
        if checksum(body) != u64::from_le_bytes(sum) {
            return Err(SnapshotError::Corrupted);
        }
        let role = match r.u8()? {
            0 => Role::Client,
            1 => Role::Server,
            _ => return Err(SnapshotError::Invalid("role")),
        };
        let mut conn = Self::new(role, config)?;
        if r.bool("opening")? {
            let target = r.string(1 << 16, "target")?;
            let has_protocol = r.bool("protocol")?;
            let protocol = r.string(1 << 16, "protocol")?;
            let opening = super::Opening {
                protocol: has_protocol.then(|| protocol.into()),
                ..super::Opening::default()
            };
            conn.opened(opening, target);
        }
        conn.life = super::state::Lifecycle::thaw(&mut r)?;
        if r.bool("close sent")? {
            conn.close_sent = Some(Box::new(r.close_frame("close sent")?));
        }
        conn.input.thaw(&mut r, &conn.config)?;
        let config = Arc::clone(&conn.config);
        let theirs = conn.receiver.thaw(&mut r, &config, now)?;
        let ours = conn.sender.thaw(&mut r)?;
        match (ours, theirs) {
            (None, None) => {}
            (Some(ours), Some(theirs)) => conn.thaw_deflate(ours, theirs)?,
            _ => return Err(SnapshotError::Invalid("deflate")),
        }
        conn.timers = super::timer::Timers::thaw(&mut r, now)?;
        conn.rtt = super::stats::RoundTrip::thaw(&mut r, now)?;
        conn.since = r.instant(now, "since")?;
        if !r.buf.is_empty() {
            return Err(SnapshotError::Invalid("trailing bytes"));
        }
        conn.receiver.check_against(&conn.input.buf)?;
        Ok(conn)
    }

    /// Sets permessage-deflate up again from this end's compressor
    /// parameters and the peer's (with its window's bytes).
    #[cfg(feature = "deflate")]
    fn thaw_deflate(
        &mut self,
        (our_bits, our_fresh): (u8, bool),
        (their_bits, their_fresh, window): super::recv::PeerDeflate<'_>,
    ) -> Result<(), SnapshotError> {
        let ((server_bits, server_fresh), (client_bits, client_fresh)) = match self.role {
            Role::Server => ((our_bits, our_fresh), (their_bits, their_fresh)),
            Role::Client => ((their_bits, their_fresh), (our_bits, our_fresh)),
        };
        self.set_deflate(crate::extensions::deflate::DeflateParams {
            server_no_context_takeover: server_fresh,
            client_no_context_takeover: client_fresh,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        });
        if self.receiver.set_window(window) {
            Ok(())
        } else {
            Err(SnapshotError::Invalid("deflate window"))
        }
    }

    #[cfg(not(feature = "deflate"))]
    fn thaw_deflate(
        &self,
        _: (u8, bool),
        _: super::recv::PeerDeflate<'_>,
    ) -> Result<(), SnapshotError> {
        Err(SnapshotError::NoDeflate)
    }
}
