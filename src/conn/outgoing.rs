//! The outgoing byte queue.
//!
//! Frames are encoded into one contiguous write buffer, so a burst of small
//! frames leaves as one write. A large unmasked payload (a server's) is queued
//! as its own chunk between buffered bytes, without a copy; the whole queue is
//! a [`bytes::Buf`], with vectored access for `writev`.
//!
//! The write buffer is never split: segments only record how many of its
//! bytes come before each queued payload. Written bytes are consumed from its
//! front, so once the queue drains its memory is reused, and steady-state
//! sending allocates nothing.
//!
//! A large payload that was the last owner of its allocation (an echoed
//! message read into the connection's input buffer, say) is kept once
//! written, so the next large frame is read into memory already in use
//! rather than into fresh pages; once the connection is idle, such
//! allocations go back to the allocator.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{FrameHeader, extend_masked, put_short_header, short_header_len};

/// Payloads up to this size are copied next to their header; larger ones are
/// queued as their own chunk.
const INLINE_PAYLOAD: usize = 4096;

/// Encoded frames (a prepared message's, shared by every connection it
/// goes to) shorter than this are copied into the write buffer; longer
/// ones are queued by reference, so a hub's subscriber writes a batch of
/// them with one vectored write and no copy of its own (benches/echo
/// `fanout.sh unpaced` at 1 KiB: the server's RSS 20 MB against 187 MB
/// copied).
pub(crate) const SHARED_INLINE: usize = 512;

/// The size the write buffer is given when it runs out of room.
const MIN_WRITE_BUFFER: usize = 2 * 1024;

/// A drained write buffer goes back to the front of its allocation once this
/// much has been consumed from it (not after every small write).
const RECLAIM_AFTER: usize = 1024;

/// A written payload's allocation is kept for reading if it holds at least
/// this much.
const RECYCLE_MIN: usize = 64 * 1024;

/// At most this many allocations are kept: a connection echoing large
/// messages reads the next while the last two are still being written.
const MAX_RECYCLED: usize = 2;

/// A run of the queue that precedes the open end of the write buffer.
#[derive(Debug)]
enum Segment {
    /// The next this many bytes of the write buffer.
    Buffered(usize),
    /// A payload queued without a copy.
    Payload(Bytes),
}

/// Bytes waiting to be written to the transport, in order.
///
/// Obtained from [`Connection::outgoing`](crate::Connection::outgoing). Write
/// [`chunk`](Buf::chunk) (or [`chunks_vectored`](Buf::chunks_vectored)) to the
/// transport and [`advance`](Buf::advance) by what it accepted.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Segments older than the open bytes at the end of `buf`.
    queue: VecDeque<Segment>,
    /// The write buffer: the `Buffered` segments' bytes, in order, then the
    /// open bytes that follow every segment.
    buf: BytesMut,
    /// Bytes at the end of `buf` not yet in a segment.
    open: usize,
    /// Bytes in `queue` and `buf`.
    len: usize,
    /// Bytes consumed from the front of `buf` since it was last reclaimed.
    consumed: usize,
    /// Bytes taken out by `advance`, in total.
    written: u64,
    /// Bytes dropped unwritten by `discard`, in total.
    dropped: u64,
    /// Allocations of written payloads that nothing else shared, empty, each
    /// with room for at least [`RECYCLE_MIN`] bytes (at most [`MAX_RECYCLED`]).
    recycled: Vec<BytesMut>,
    /// The buffer has been grown since it was made or released: later
    /// growth reserves [`MIN_WRITE_BUFFER`], the first only what it needs.
    warm: bool,
}

impl Outgoing {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes written and dropped, in total (what a snapshot carries).
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.written, self.dropped)
    }

    /// Sets the totals a snapshot carried (the queue is empty).
    pub(crate) fn set_totals(&mut self, written: u64, dropped: u64) {
        self.written = written;
        self.dropped = dropped;
    }

    /// Bytes written (taken out by `advance`) in total.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Bytes dropped unwritten (the transport was abandoned), in total.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A written payload's allocation with room for `capacity` bytes, empty,
    /// if one was kept and is large enough (the newest kept is let go either way).
    pub(crate) fn take_recycled(&mut self, capacity: usize) -> Option<BytesMut> {
        let mut buf = self.recycled.pop()?;
        buf.try_reclaim(capacity).then_some(buf)
    }

    /// Lets go of every kept allocation.
    pub(crate) fn clear_recycled(&mut self) {
        self.recycled.clear();
    }

    /// Whether any allocation is held (the write buffer, the segment queue,
    /// kept payload allocations).
    pub(crate) fn holds_memory(&self) -> bool {
        self.buf.capacity() > 0 || self.queue.capacity() > 0 || !self.recycled.is_empty()
    }

    /// Drops everything waiting (the transport is being abandoned); the
    /// allocations stay for [`release`](Self::release).
    pub(crate) fn discard(&mut self) {
        self.dropped += self.len as u64;
        self.queue.clear();
        self.buf.clear();
        self.open = 0;
        self.len = 0;
        self.consumed = 0;
    }

    /// Lets every allocation go; only while nothing is waiting.
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty());
        self.queue = VecDeque::new();
        self.buf = BytesMut::new();
        self.consumed = 0;
        self.open = 0;
        self.recycled = Vec::new();
        self.warm = false;
    }

    /// Makes room for `needed` more bytes. The first time after creation or
    /// a release, exactly that: a connection that wakes for one small
    /// message and goes quiet again never holds a whole write buffer
    /// (`tests/scale.rs`). After that, room for many small frames at once
    /// (reserving exactly what one frame needs would reclaim the buffer on
    /// nearly every push), counting what is pending, so a buffer of that
    /// size is reused rather than grown (`tests/zero_alloc.rs`).
    fn reserve(&mut self, needed: usize) {
        let room = if std::mem::replace(&mut self.warm, true) {
            MIN_WRITE_BUFFER.saturating_sub(self.buf.len())
        } else {
            0
        };
        self.buf.reserve(needed.max(room));
    }

    /// Keeps a written payload's allocation if nothing else holds it.
    fn recycle(&mut self, payload: Bytes) {
        if self.recycled.len() >= MAX_RECYCLED {
            return;
        }
        if let Ok(mut buf) = payload.try_into_mut() {
            buf.clear();
            if buf.try_reclaim(RECYCLE_MIN) {
                self.recycled.push(buf);
            }
        }
    }

    /// Queues one frame. The header's mask, if any, is applied to the payload
    /// as it is copied.
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: &Bytes) {
        if header.mask.is_none() && payload.len() <= INLINE_PAYLOAD {
            return self.push_inline(header.first_byte(), payload);
        }
        let header_len = header.encoded_len();
        let frame_len = header_len + payload.len();
        self.len += frame_len;
        let copied = header.mask.is_some() || payload.len() <= INLINE_PAYLOAD;
        let needed = if copied { frame_len } else { header_len };
        if self.buf.capacity() - self.buf.len() < needed {
            self.reserve(needed);
        }
        header.encode_into(&mut self.buf);
        match header.mask {
            Some(key) => extend_masked(&mut self.buf, payload, key),
            None if copied => self.buf.extend_from_slice(payload),
            None => {
                let buffered = self.open + header_len;
                self.queue.push_back(Segment::Buffered(buffered));
                self.queue.push_back(Segment::Payload(payload.clone()));
                self.open = 0;
                return;
            }
        }
        self.open += frame_len;
    }
}

impl Outgoing {
    /// Queues a frame already encoded (a prepared message's): copied into
    /// the write buffer when shorter than [`SHARED_INLINE`], else queued by
    /// reference.
    pub(crate) fn push_encoded(&mut self, frame: &Bytes) {
        let len = frame.len();
        self.len += len;
        if len < SHARED_INLINE {
            if self.buf.capacity() - self.buf.len() < len {
                self.reserve(len);
            }
            self.buf.extend_from_slice(frame);
            self.open += len;
            return;
        }
        if self.open > 0 {
            self.queue.push_back(Segment::Buffered(self.open));
        }
        self.queue.push_back(Segment::Payload(frame.clone()));
        self.open = 0;
    }

    /// Queues an unmasked frame whose payload is copied next to its header
    /// (a server's small frames): the header written directly, no segment.
    fn push_inline(&mut self, first_byte: u8, payload: &[u8]) {
        // INLINE_PAYLOAD is far below 2^16.
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        let frame_len = payload.len() + short_header_len(len);
        if self.buf.capacity() - self.buf.len() < frame_len {
            self.reserve(frame_len);
        }
        put_short_header(&mut self.buf, first_byte, 0, len);
        self.buf.extend_from_slice(payload);
        self.len += frame_len;
        self.open += frame_len;
    }
}

impl Buf for Outgoing {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.queue.front() {
            Some(Segment::Buffered(n)) => self.buf.get(..*n).unwrap_or_default(),
            Some(Segment::Payload(payload)) => payload,
            None => &self.buf,
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut buffered: &[u8] = &self.buf;
        let mut filled: usize = 0;
        let mut slots = dst.iter_mut();
        for segment in &self.queue {
            let chunk: &[u8] = match segment {
                Segment::Buffered(n) => {
                    let (head, rest) = buffered.split_at((*n).min(buffered.len()));
                    buffered = rest;
                    head
                }
                Segment::Payload(payload) => payload,
            };
            if chunk.is_empty() {
                continue;
            }
            let Some(slot) = slots.next() else {
                return filled;
            };
            *slot = IoSlice::new(chunk);
            filled += 1;
        }
        if let (false, Some(slot)) = (buffered.is_empty(), slots.next()) {
            *slot = IoSlice::new(buffered);
            filled += 1;
        }
        filled
    }

    /// Consumes `cnt` bytes. Advancing past the end empties the queue (it does
    /// not panic).
    fn advance(&mut self, mut cnt: usize) {
        cnt = cnt.min(self.len);
        self.written += cnt as u64;
        if cnt == self.len && self.queue.is_empty() {
            // All of it, all in the buffer (the common case of small
            // frames): no segment to walk, no front to move
            // (benches/callgrind.sh, the send path).
            self.consumed += cnt;
            self.len = 0;
            return self.drained();
        }
        self.len -= cnt;
        while cnt > 0 {
            let (taken, done) = match self.queue.front_mut() {
                None => {
                    let taken = cnt.min(self.buf.len());
                    self.buf.advance(taken);
                    self.consumed += taken;
                    self.open -= taken;
                    break;
                }
                Some(Segment::Buffered(n)) => {
                    let taken = cnt.min(*n).min(self.buf.len());
                    self.buf.advance(taken);
                    self.consumed += taken;
                    *n -= taken;
                    (taken, *n == 0)
                }
                Some(Segment::Payload(payload)) => {
                    let taken = cnt.min(payload.len());
                    payload.advance(taken);
                    (taken, payload.is_empty())
                }
            };
            // A finished segment is popped whatever it is; a payload's
            // allocation may be kept.
            if done && let Some(Segment::Payload(payload)) = self.queue.pop_front() {
                self.recycle(payload);
            }
            if taken == 0 && !done {
                break;
            }
            cnt -= taken;
        }
        if self.len == 0 {
            self.drained();
        }
    }
}

impl Outgoing {
    /// Everything was written: empty the queue and the buffer.
    fn drained(&mut self) {
        self.queue.clear();
        self.buf.clear();
        self.open = 0;
        // Start the next burst at the front of the allocation (free now
        // that nothing is pending), not where this one ended: a burst
        // that ran out of room part-way would have to copy its frames
        // forward.
        if self.consumed >= RECLAIM_AFTER {
            let _ = self.buf.try_reclaim(self.buf.capacity() + 1);
            self.consumed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::OpCode;

    fn drain(out: &mut Outgoing, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while out.has_remaining() {
            let n = out.chunk().len().min(step);
            wire.extend_from_slice(&out.chunk()[..n]);
            out.advance(n);
        }
        wire
    }

    #[test]
    fn small_frames_coalesce_and_large_payloads_are_not_copied() {
        let mut out = Outgoing::default();
        let small = Bytes::from_static(b"hi");
        let large = Bytes::from(vec![7u8; 10_000]);
        out.push_frame(&FrameHeader::new(OpCode::Text, 2), &small);
        out.push_frame(&FrameHeader::new(OpCode::Text, 2), &small);
        assert_eq!(out.chunk().len(), 8, "two small frames in one chunk");
        out.push_frame(&FrameHeader::new(OpCode::Binary, 10_000), &large);
        assert_eq!(out.remaining(), 8 + 4 + 10_000);
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(out.chunks_vectored(&mut slices), 2);
        assert_eq!(
            slices[1].as_ptr(),
            large.as_ptr(),
            "payload queued without a copy"
        );
        let wire = drain(&mut out, 3);
        assert_eq!(wire.len(), 10_012);
        assert_eq!(&wire[..8], b"\x81\x02hi\x81\x02hi");
        assert_eq!(&wire[8..12], &[0x82, 126, 0x27, 0x10]);
    }

    // Once a burst of at least RECLAIM_AFTER bytes is all written, the next
    // burst starts at the front of the same allocation: it neither grows the
    // buffer nor copies frames forward.
    #[test]
    fn a_drained_queue_starts_the_next_burst_at_the_front() {
        let payload = Bytes::from(vec![5u8; 200]);
        let header = FrameHeader::new(OpCode::Binary, 200);
        let mut out = Outgoing::default();
        // The first frame gets exactly its room; the bursts use the buffer
        // a larger one grows.
        out.push_frame(
            &FrameHeader::new(OpCode::Text, 2),
            &Bytes::from_static(b"hi"),
        );
        assert!(
            out.buf.capacity() < 64,
            "the first frame gets about its room"
        );
        out.advance(out.remaining());
        out.push_frame(&header, &payload);
        let start = out.chunk().as_ptr();
        let fits = out.buf.capacity() / 204;
        assert!(
            (fits - 3) * 204 >= RECLAIM_AFTER,
            "room for bursts: {fits} frames"
        );
        for _ in 1..fits {
            out.push_frame(&header, &payload);
        }
        for burst in [fits - 3, fits, fits - 1, fits] {
            // Written in two steps, the second leaving nothing pending.
            out.advance(204);
            out.advance(out.remaining());
            for _ in 0..burst {
                out.push_frame(&header, &payload);
                assert_eq!(out.chunk().as_ptr(), start, "the burst starts at the front");
            }
        }
    }

    /// Writes through `chunks_vectored` as a transport accepting at most
    /// `step` bytes per write would.
    fn drain_vectored(out: &mut Outgoing, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while out.has_remaining() {
            let written = drain_vectored_once(out, step);
            assert!(!written.is_empty(), "bytes remain, so a slice is offered");
            wire.extend(written);
        }
        wire
    }

    #[test]
    fn interleaved_frames_come_out_in_order_at_any_write_size() {
        let small = Bytes::from_static(b"abc");
        let large = Bytes::from((0..=255u8).cycle().take(5000).collect::<Vec<_>>());
        let headers = [
            FrameHeader::new(OpCode::Text, 3),
            FrameHeader::new(OpCode::Binary, 5000),
            FrameHeader::new(OpCode::Binary, 5000),
            FrameHeader::new(OpCode::Text, 3),
            FrameHeader::new(OpCode::Binary, 5000),
        ];
        let payloads = [&small, &large, &large, &small, &large];
        let mut expected = BytesMut::new();
        for (header, payload) in headers.iter().zip(payloads) {
            header.encode_into(&mut expected);
            expected.extend_from_slice(payload);
        }
        for step in [1, 2, 7, 4096, 5006, usize::MAX] {
            let mut out = Outgoing::default();
            // Twice over, so the second round reuses a drained buffer.
            for _ in 0..2 {
                for (header, payload) in headers.iter().zip(payloads) {
                    out.push_frame(header, payload);
                }
                assert_eq!(out.remaining(), expected.len());
                assert_eq!(drain_vectored(&mut out, step), expected, "step {step}");
            }
        }
        // Frames queued while earlier ones are partly written.
        for written in [0, 1, 3, 5, 9, 5009, 10_000, 10_015] {
            let mut out = Outgoing::default();
            for (header, payload) in headers.iter().zip(payloads).take(3) {
                out.push_frame(header, payload);
            }
            let mut wire = drain_vectored_at_most(&mut out, written);
            for (header, payload) in headers.iter().zip(payloads).skip(3) {
                out.push_frame(header, payload);
            }
            wire.extend(drain_vectored(&mut out, 4000));
            assert_eq!(wire, expected, "{written} bytes written first");
        }
    }

    proptest::proptest! {
        // Any mix of copied, shared and by-reference frames, pushed between
        // vectored writes of any size, comes out whole and in order.
        #[test]
        fn any_frames_between_any_writes_come_out_in_order(
            pushes in proptest::collection::vec((0usize..6000, proptest::bool::ANY, 0usize..9000), 1..24),
        ) {
            let mut out = Outgoing::default();
            let (mut expected, mut wire) = (Vec::new(), Vec::new());
            for (i, &(len, encoded, written)) in pushes.iter().enumerate() {
                let payload = Bytes::from(vec![i as u8; len]);
                let header = FrameHeader::new(OpCode::Binary, len as u64);
                let mut frame = BytesMut::new();
                header.encode_into(&mut frame);
                frame.extend_from_slice(&payload);
                expected.extend_from_slice(&frame);
                if encoded {
                    out.push_encoded(&frame.freeze());
                } else {
                    out.push_frame(&header, &payload);
                }
                wire.extend(drain_vectored_at_most(&mut out, written));
            }
            wire.extend(drain_vectored(&mut out, 777));
            proptest::prop_assert_eq!(wire, expected);
        }
    }

    fn drain_vectored_at_most(out: &mut Outgoing, limit: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while wire.len() < limit && out.has_remaining() {
            wire.extend(drain_vectored_once(out, limit - wire.len()));
        }
        wire
    }

    fn drain_vectored_once(out: &mut Outgoing, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut slices = [IoSlice::new(&[]); 4];
        let count = out.chunks_vectored(&mut slices);
        for slice in &slices[..count] {
            let n = slice.len().min(step - wire.len());
            wire.extend_from_slice(&slice[..n]);
        }
        out.advance(wire.len());
        wire
    }

    // A written payload nothing else holds gives its allocation back for
    // reading (at most MAX_RECYCLED of them); a shared or small one does not.
    #[test]
    fn written_payloads_nothing_else_holds_are_kept() {
        let large = |byte| Bytes::from(vec![byte; RECYCLE_MIN]);
        let header = FrameHeader::new(OpCode::Binary, RECYCLE_MIN as u64);
        let mut out = Outgoing::default();
        let held = large(1);
        out.push_frame(&header, &held);
        out.advance(out.remaining());
        assert!(out.recycled.is_empty(), "the caller still holds it");
        let small = Bytes::from(vec![2; INLINE_PAYLOAD + 1]);
        out.push_frame(
            &FrameHeader::new(OpCode::Binary, small.len() as u64),
            &small,
        );
        drop(small);
        out.advance(out.remaining());
        assert!(out.recycled.is_empty(), "too small to keep");
        let mut starts = Vec::new();
        for byte in 3..6 {
            let payload = large(byte);
            starts.push(payload.as_ptr());
            out.push_frame(&header, &payload);
            drop(payload);
        }
        drain(&mut out, 1000);
        assert_eq!(out.recycled.len(), MAX_RECYCLED);
        let buf = out.take_recycled(RECYCLE_MIN).expect("kept");
        assert!(buf.is_empty());
        assert_eq!(
            buf.as_ptr(),
            starts[1],
            "the allocation itself, at its start"
        );
        assert!(out.take_recycled(RECYCLE_MIN + 1).is_none(), "too small");
        assert!(out.recycled.is_empty(), "let go either way");
        drop(held);
    }

    #[test]
    fn advance_past_end_does_not_panic() {
        let mut out = Outgoing::default();
        out.push_frame(&FrameHeader::new(OpCode::Ping, 0), &Bytes::new());
        out.advance(100);
        assert_eq!(out.remaining(), 0);
        assert!(out.chunk().is_empty());
    }
}
