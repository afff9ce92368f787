//! The outgoing byte queue.
//!
//! Frames are encoded into a contiguous write buffer, so a burst of small
//! frames leaves as one write. A large unmasked payload (a server's) is queued
//! as its own chunk after the buffered bytes, without a copy; the whole queue
//! is a [`bytes::Buf`], with vectored access for `writev`.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{FrameHeader, MAX_HEADER_LEN, extend_masked};

/// Payloads up to this size are copied next to their header; larger ones are
/// queued as their own chunk.
const INLINE_PAYLOAD: usize = 4096;

/// Bytes waiting to be written to the transport, in order.
///
/// Obtained from [`Connection::outgoing`](crate::Connection::outgoing). Write
/// [`chunk`](Buf::chunk) (or [`chunks_vectored`](Buf::chunks_vectored)) to the
/// transport and [`advance`](Buf::advance) by what it accepted.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Frozen chunks, older than everything in `tail`.
    queue: VecDeque<Bytes>,
    /// The open write buffer, after every chunk in `queue`.
    tail: BytesMut,
    /// Bytes in `queue` and `tail`.
    len: usize,
}

impl Outgoing {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues one frame. The header's mask, if any, is applied to the payload
    /// as it is copied.
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: &Bytes) {
        let frame_len = header.encoded_len().saturating_add(payload.len());
        self.len = self.len.saturating_add(frame_len);
        self.tail
            .reserve(frame_len.min(INLINE_PAYLOAD.saturating_add(MAX_HEADER_LEN)));
        header.encode_into(&mut self.tail);
        match header.mask {
            Some(key) => extend_masked(&mut self.tail, payload, key),
            None if payload.len() <= INLINE_PAYLOAD => self.tail.extend_from_slice(payload),
            None => {
                self.queue.push_back(self.tail.split().freeze());
                self.queue.push_back(payload.clone());
            }
        }
    }
}

impl Buf for Outgoing {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.queue.front() {
            Some(chunk) => chunk,
            None => &self.tail,
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let sources = self
            .queue
            .iter()
            .map(|chunk| &chunk[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|chunk| !chunk.is_empty());
        let mut filled: usize = 0;
        for (slot, chunk) in dst.iter_mut().zip(sources) {
            *slot = IoSlice::new(chunk);
            filled = filled.saturating_add(1);
        }
        filled
    }

    /// Consumes `cnt` bytes. Advancing past the end empties the queue (it does
    /// not panic).
    fn advance(&mut self, mut cnt: usize) {
        cnt = cnt.min(self.len);
        self.len = self.len.saturating_sub(cnt);
        while cnt > 0 {
            let Some(front) = self.queue.front_mut() else {
                self.tail.advance(cnt.min(self.tail.len()));
                break;
            };
            if cnt < front.len() {
                front.advance(cnt);
                break;
            }
            cnt = cnt.saturating_sub(front.len());
            self.queue.pop_front();
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

    #[test]
    fn advance_past_end_does_not_panic() {
        let mut out = Outgoing::default();
        out.push_frame(&FrameHeader::new(OpCode::Ping, 0), &Bytes::new());
        out.advance(100);
        assert_eq!(out.remaining(), 0);
        assert!(out.chunk().is_empty());
    }
}
