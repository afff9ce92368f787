//! The input buffer, and how much room a read is offered.
//!
//! The one read-sizing policy every adapter follows: the room
//! [`Input::read_buf`] reserves (sized by the frame in progress, or by how
//! full the last read came back), and for transports that read into
//! initialised memory, how much of it is zeroed and offered
//! ([`Input::read_into`]). Guarded by `tests/zero_alloc.rs` (no allocation
//! per message) and `benches/echo` (large and pipelined cells).

use bytes::BytesMut;

use super::outgoing::Outgoing;
use super::snapshot::{Reader, SnapshotError, Writer};
use crate::config::Config;
use crate::frame::MAX_HEADER_LEN;

/// The smallest spare capacity [`Input::read_buf`] offers.
const MIN_READ: usize = 2 * 1024;
/// The most spare capacity [`Input::read_buf`] offers between frames.
const MAX_READ: usize = 256 * 1024;
/// The most [`Input::read_buf`] reserves for a frame beyond the bytes that
/// have arrived (a frame this size or smaller gets one allocation).
const RESERVE_AHEAD: usize = 1024 * 1024;
/// Between messages, with nothing buffered either way, a read buffer with
/// room for at least this much (grown for a large frame) is let go (the
/// written payloads' allocations kept for reading go whatever its size).
const IDLE_KEEP: usize = 2 * MAX_READ;
/// The least a read into initialised memory is offered.
const MIN_INIT_OFFER: usize = 8 * 1024;

/// Received bytes not yet consumed, and the counters that size reads.
#[derive(Debug)]
pub(crate) struct Input {
    /// The bytes themselves; frames are parsed from its front.
    pub(crate) buf: BytesMut,
    /// Bytes consumed from the front of `buf`, ever.
    consumed: u64,
    /// The spare room offered between frames: doubles (up to [`MAX_READ`])
    /// each time a read fills all it was offered.
    read_hint: usize,
    /// Bytes received in total, and the room offered, at the last `read_buf`.
    last_offer: (u64, usize),
    /// How much a read into initialised memory is offered at most: twice
    /// what the last one took, at least [`MIN_INIT_OFFER`].
    init_offer: usize,
    /// Bytes have arrived since the buffer was made or released: see
    /// [`fill_released`](Self::fill_released).
    warm: bool,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            buf: BytesMut::new(),
            consumed: 0,
            read_hint: MIN_READ,
            last_offer: (0, 0),
            init_offer: MIN_INIT_OFFER,
            warm: false,
        }
    }
}

impl Input {
    /// Writes what was received and not yet parsed, and the count before it.
    pub(crate) fn freeze(&self, w: &mut Writer) {
        w.u64(self.consumed);
        w.bytes(&self.buf);
    }

    /// Reads what [`freeze`](Self::freeze) wrote; the read sizing starts
    /// afresh.
    pub(crate) fn thaw(&mut self, r: &mut Reader<'_>, _: &Config) -> Result<(), SnapshotError> {
        // A count no connection reaches: the additions ahead cannot overflow.
        self.consumed = r.count("input count")?;
        let buf = r.bytes(usize::MAX, "input")?;
        self.buf = BytesMut::from(buf);
        self.last_offer = (self.total(), 0);
        self.warm = !buf.is_empty();
        Ok(())
    }

    /// Bytes received in total, consumed or not.
    pub(crate) fn total(&self) -> u64 {
        self.consumed + self.buf.len() as u64
    }

    /// Records that the buffer shrank from `before` bytes by parsing.
    pub(crate) fn consumed_from(&mut self, before: usize) {
        self.consumed += (before - self.buf.len()) as u64;
    }

    /// Whether the buffer has given its allocation back (see [`release`](Self::release)).
    pub(crate) fn is_released(&self) -> bool {
        self.buf.capacity() == 0
    }

    /// Lets the buffer's allocation go; only while nothing is buffered. The
    /// read sizing starts again from the smallest read.
    pub(crate) fn release(&mut self) {
        debug_assert!(self.buf.is_empty());
        self.buf = BytesMut::new();
        self.read_hint = MIN_READ;
        self.last_offer = (self.total(), 0);
        self.warm = false;
    }

    /// Takes `bytes`, read into the adapter's own small buffer while this
    /// one was released, unless `more` (that buffer came back full). The
    /// first such read after creation or a release gets an allocation of
    /// exactly its size: a connection that wakes for one small message and
    /// goes quiet again never holds a whole read buffer (`tests/scale.rs`).
    /// Returns false, taking nothing, when the bytes belong in a buffer of
    /// the usual size ([`read_buf`](Self::read_buf)); a busy connection's
    /// reads land there, with no allocation per message.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn fill_released(&mut self, bytes: &[u8], more: bool) -> bool {
        let first = !std::mem::replace(&mut self.warm, true);
        if first && !more && self.buf.capacity() == 0 {
            self.buf = BytesMut::from(bytes);
            return true;
        }
        false
    }

    /// Drops everything buffered (counted as received).
    pub(crate) fn discard(&mut self) {
        self.consumed += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Counts bytes that arrived and were dropped unbuffered.
    pub(crate) fn skip(&mut self, len: usize) {
        self.consumed += len as u64;
    }

    /// The buffer with spare room for the next read: the rest of the frame
    /// in progress (`missing` bytes, 0 between frames), bounded by what has
    /// arrived, or the read hint between frames. `idle`: nothing is waiting
    /// to be written, so large allocations may go.
    pub(crate) fn read_buf(
        &mut self,
        missing: usize,
        idle: bool,
        out: &mut Outgoing,
    ) -> &mut BytesMut {
        let received = self.total();
        let (offered_at, offered) = self.last_offer;
        if offered > 0 && received - offered_at >= offered as u64 {
            self.read_hint = (self.read_hint * 2).min(MAX_READ);
        }
        if missing == 0 && self.buf.is_empty() && idle {
            self.release_large_buffers(out);
        }
        let want = if missing > 0 {
            // A large frame is read in two steps (header, then the rest), so
            // little of it lands in a buffer that must be regrown and copied.
            if missing > MAX_READ {
                self.read_hint = MIN_READ;
            }
            // Room for the rest of the frame in one allocation, but never
            // more than RESERVE_AHEAD (or as much again as has arrived) on
            // the strength of an announced length alone.
            missing.min(RESERVE_AHEAD.max(self.buf.len()))
        } else {
            self.read_hint
        };
        if self.buf.capacity() - self.buf.len() < want {
            // Growing anyway: room for a read of the usual size, and, when the
            // rest of a frame fits, for the next one's header past it, so a
            // read that takes the whole frame comes back short of what was
            // offered: the sign an edge-triggered reader (tokio's) takes for
            // a drained socket, instead of a further read that finds nothing.
            let past_frame = if missing > 0 && want == missing {
                MAX_HEADER_LEN
            } else {
                0
            };
            // `want` is at most RESERVE_AHEAD, or what is already buffered.
            self.grow((want + past_frame).max(self.read_hint), out);
        }
        self.last_offer = (received, self.buf.capacity() - self.buf.len());
        &mut self.buf
    }

    /// Reads into initialised memory: zeroes part of the spare room that
    /// [`read_buf`](Self::read_buf) reserved and offers it to `read`, then
    /// keeps what `read` says it wrote. Zeroing costs as much per byte as
    /// the read itself, so only twice what the last read took is offered,
    /// not all the room reserved (up to 1 MiB while a large frame arrives).
    pub(crate) fn read_into<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let result = read_zeroed(&mut self.buf, self.init_offer, read);
        if let Ok(read) = result {
            // A read takes at most what it was offered, a buffer's room.
            self.init_offer = (read * 2).max(MIN_INIT_OFFER);
        }
        result
    }

    /// Gives a read buffer grown for a large frame (if nothing else holds
    /// it) and the large payloads' allocations kept for reading back to the
    /// allocator. An idle connection then holds little memory, and the next
    /// large message is read into memory the allocator hands out again: the
    /// most recently freed, still in cache, where a buffer kept per
    /// connection has gone cold while the other connections were served
    /// (`benches/echo`, 1 MiB messages over 64 connections).
    fn release_large_buffers(&mut self, out: &mut Outgoing) {
        // True only if the buffer's allocation is its own (or already has
        // the room): a message handed out may still share it.
        if self.buf.try_reclaim(IDLE_KEEP) {
            self.buf = BytesMut::new();
        }
        out.clear_recycled();
    }

    /// Makes room for `want` more bytes, allocating only if it must: in the
    /// buffer's own allocation once nothing else holds it (the message split
    /// off it was dropped, or written), else in a written payload's
    /// allocation if one was kept (an echoed message's, usually), else by
    /// growing the buffer.
    fn grow(&mut self, want: usize, out: &mut Outgoing) {
        if self.buf.try_reclaim(want) {
            return;
        }
        let needed = self.buf.len() + want;
        match out.take_recycled(needed) {
            Some(mut buf) => {
                buf.extend_from_slice(&self.buf);
                self.buf = buf;
            }
            None => self.buf.reserve(want),
        }
    }
}

/// Offers `read` up to `most` bytes of `buf`'s spare room, zeroed (what a
/// reader into initialised memory needs), and keeps what it says it wrote.
pub(crate) fn read_zeroed<E>(
    buf: &mut BytesMut,
    most: usize,
    read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, E> {
    let len = buf.len();
    let offer = (buf.capacity() - len).min(most);
    buf.resize(len + offer, 0);
    let result = read(buf.get_mut(len..).unwrap_or_default());
    let read = *result.as_ref().unwrap_or(&0);
    buf.truncate(len + read.min(offer));
    result
}
