//! The deframer and message assembler (RFC 6455 §5.2–§5.5, §8.1).
//!
//! Per frame: parse the header from the front of the input, check it against
//! the connection's rules and limits before any payload is buffered, then
//! unmask (and, for text, validate) the payload in place as it arrives, and
//! split it off the input as `Bytes` once whole. Fragmented messages are
//! assembled here; control frames between fragments are returned at once.

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::limit::Limiter;
use super::snapshot::{Reader, SnapshotError, Writer};
use super::stats::Traffic;
use crate::close::CloseFrame;
use crate::config::Config;
use crate::error::ProtocolError;
use crate::frame::{CommonFrame, FrameHeader, OpCode, apply_mask};
use crate::message::{DataKind, Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// RSV1 in [`FrameHeader::rsv_bits`] terms.
#[cfg(feature = "deflate")]
const RSV1: u8 = 0b100;

/// The peer's compressor as a snapshot carries it: its window bits,
/// whether each message starts afresh, and the window's bytes.
pub(crate) type PeerDeflate<'a> = (u8, bool, &'a [u8]);

/// A frame whose header has been consumed and whose payload is arriving.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    len: usize,
    /// Payload bytes already unmasked (and validated, for text).
    processed: usize,
    /// The payload is (part of) a text message.
    text: bool,
}

/// A data message that has started but not finished.
#[derive(Debug)]
struct Fragmented {
    kind: DataKind,
    /// permessage-deflate: the frames carry compressed data (RSV1 on the first).
    compressed: bool,
    /// The message so far (inflated, if compressed).
    data: Vec<u8>,
}

/// Deframer state. Knows the rules; owns no input.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// A masked frame is required (server) or forbidden (client).
    expect_masked: bool,
    /// RSV bits a negotiated extension has claimed (RSV1 = 0b100).
    allowed_rsv: u8,
    /// permessage-deflate's decompressor, once negotiated (it claims RSV1).
    #[cfg(feature = "deflate")]
    inflater: Option<crate::extensions::deflate::Inflater>,
    max_frame_size: u64,
    max_message_size: u64,
    current: Option<InFrame>,
    fragmented: Option<Fragmented>,
    utf8: Utf8Validator,
    /// Frames and compression counted here; messages by the connection.
    pub(crate) traffic: Traffic,
    /// The rate limits, if any are set.
    pub(crate) limiter: Option<Box<Limiter>>,
}

impl Receiver {
    pub(crate) fn new(expect_masked: bool, max_frame_size: usize, max_message_size: usize) -> Self {
        Self {
            expect_masked,
            allowed_rsv: 0,
            #[cfg(feature = "deflate")]
            inflater: None,
            max_frame_size: max_frame_size as u64,
            max_message_size: max_message_size as u64,
            current: None,
            fragmented: None,
            utf8: Utf8Validator::default(),
            traffic: Traffic::default(),
            limiter: None,
        }
    }

    /// Installs permessage-deflate's decompressor: RSV1 now marks compressed messages.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_inflater(&mut self, inflater: crate::extensions::deflate::Inflater) {
        self.allowed_rsv |= RSV1;
        self.inflater = Some(inflater);
    }

    /// Whether a rate limit holds input back.
    pub(crate) fn is_paused(&self) -> bool {
        self.limiter.as_ref().is_some_and(|l| l.is_paused())
    }

    /// A compressed message is half-received (its decompressor's state
    /// cannot be carried in a snapshot).
    pub(crate) fn is_mid_compressed(&self) -> bool {
        self.fragmented.as_ref().is_some_and(|f| f.compressed)
            || self.current.as_ref().is_some_and(|f| f.header.rsv1)
    }

    /// Writes the frame and the message in progress, the UTF-8 state, the
    /// counters, the rate limits' buckets and the decompressor's window.
    /// Not while [`is_mid_compressed`](Self::is_mid_compressed).
    pub(crate) fn freeze(&self, w: &mut Writer, now: Instant) {
        w.bool(self.current.is_some());
        if let Some(frame) = &self.current {
            let h = &frame.header;
            w.u8(h.first_byte());
            w.bool(h.mask.is_some());
            w.bytes(&h.mask.unwrap_or_default());
            w.u64(h.payload_len);
            w.u64(frame.processed as u64);
        }
        w.bool(self.fragmented.is_some());
        if let Some(message) = &self.fragmented {
            w.bool(message.kind == DataKind::Text);
            w.bytes(&message.data);
        }
        self.utf8.freeze(w);
        self.traffic.freeze(w);
        Limiter::freeze(self.limiter.as_deref(), w, now);
        #[cfg(feature = "deflate")]
        if let Some(inflater) = &self.inflater {
            let (bits, fresh, (front, back)) = inflater.params();
            w.bool(true);
            w.u8(bits);
            w.bool(fresh);
            w.bytes_in_two(front, back);
            return;
        }
        w.bool(false);
    }

    /// Reads what [`freeze`](Self::freeze) wrote, checking it against
    /// this end's rules and `config`'s limits. The decompressor's window,
    /// if any, is returned for after permessage-deflate is set up.
    pub(crate) fn thaw<'a>(
        &mut self,
        r: &mut Reader<'a>,
        config: &Config,
        now: Instant,
    ) -> Result<Option<PeerDeflate<'a>>, SnapshotError> {
        let invalid = SnapshotError::Invalid;
        let current = if r.bool("frame")? {
            let first = r.u8()?;
            let masked = r.bool("mask")?;
            let key: [u8; 4] = r
                .bytes(4, "mask")?
                .try_into()
                .map_err(|_| invalid("mask"))?;
            let payload_len = r.u64()?;
            let processed = r.usize(usize::MAX, "frame")?;
            let opcode = OpCode::try_from(first & 0x0f).map_err(|_| invalid("opcode"))?;
            let header = FrameHeader {
                fin: first & 0x80 != 0,
                rsv1: first & 0x40 != 0,
                rsv2: first & 0x20 != 0,
                rsv3: first & 0x10 != 0,
                opcode,
                mask: masked.then_some(key),
                payload_len,
            };
            Some((header, processed))
        } else {
            None
        };
        if r.bool("message")? {
            let kind = if r.bool("message kind")? {
                DataKind::Text
            } else {
                DataKind::Binary
            };
            let data = r.bytes(config.max_message_size, "message")?;
            self.fragmented = Some(Fragmented {
                kind,
                compressed: false,
                data: data.to_vec(),
            });
        }
        self.utf8 = Utf8Validator::thaw(r)?;
        self.traffic = Traffic::thaw(r)?;
        self.limiter = Limiter::thaw(r, &config.rate_limits, now)?;
        let inflater = if r.bool("deflate")? {
            let bits = r.u8()?;
            let fresh = r.bool("deflate")?;
            let history = r.bytes(1 << 15, "deflate window")?;
            if !(8..=15).contains(&bits) {
                return Err(invalid("deflate window"));
            }
            Some((bits, fresh, history))
        } else {
            None
        };
        if let Some((header, processed)) = current {
            // The frame passed these checks when its header arrived; they
            // hold again under this configuration, or the snapshot is refused.
            self.check(&header).map_err(|_| invalid("frame"))?;
            if header.opcode.is_control() && (!header.fin || header.payload_len > 125) {
                return Err(invalid("frame"));
            }
            if header.rsv1 {
                return Err(invalid("frame"));
            }
            let len = usize::try_from(header.payload_len).map_err(|_| invalid("frame"))?;
            if processed > len {
                return Err(invalid("frame"));
            }
            let text = match header.opcode {
                OpCode::Text => true,
                OpCode::Continuation => self
                    .fragmented
                    .as_ref()
                    .is_some_and(|f| f.kind == DataKind::Text),
                _ => false,
            };
            self.current = Some(InFrame {
                header,
                len,
                processed,
                text,
            });
        }
        let texting = self.current.as_ref().is_some_and(|f| f.text)
            || self
                .fragmented
                .as_ref()
                .is_some_and(|f| f.kind == DataKind::Text);
        if self.utf8.is_partial() && !texting {
            return Err(invalid("utf-8 state"));
        }
        Ok(inflater)
    }

    /// Restores the decompressor's window a snapshot carried; false if it
    /// cannot be this decompressor's.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_window(&mut self, window: &[u8]) -> bool {
        self.inflater
            .as_mut()
            .is_some_and(|inflater| inflater.set_history(window))
    }

    /// Checks the frame in progress against the input it was read from:
    /// the bytes it has unmasked are there.
    pub(crate) fn check_against(&self, input: &BytesMut) -> Result<(), SnapshotError> {
        match &self.current {
            Some(frame) if frame.processed > input.len() => Err(SnapshotError::Invalid("frame")),
            _ => Ok(()),
        }
    }

    /// Payload bytes the current frame still needs, or 0 between frames.
    /// No frame or message is in progress.
    pub(crate) fn is_quiet(&self) -> bool {
        self.current.is_none() && self.fragmented.is_none()
    }

    /// Whether a decompressor state [`release`](Self::release) lets go is held.
    pub(crate) fn holds_memory(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.inflater.as_ref().is_some_and(|i| i.is_live()) {
            return true;
        }
        false
    }

    /// Lets the decompressor state go (its window's bytes stay); only while
    /// [quiet](Self::is_quiet).
    #[cfg(feature = "deflate")]
    pub(crate) fn release(&mut self) {
        if let Some(inflater) = &mut self.inflater {
            inflater.release();
        }
    }

    pub(crate) fn frame_bytes_missing(&self, buffered: usize) -> usize {
        self.current
            .as_ref()
            .map_or(0, |f| f.len.saturating_sub(buffered))
    }

    /// Checks a header against the rules that need connection state, before
    /// any of its payload is buffered.
    fn check(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        if header.rsv_bits() & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        // RSV1 (compression) belongs on the first frame of a data message only (RFC 7692 §6).
        if header.rsv1 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits);
        }
        match (header.mask.is_some(), self.expect_masked) {
            (false, true) => return Err(ProtocolError::UnmaskedFrame),
            (true, false) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.payload_len > self.max_frame_size {
            return Err(ProtocolError::FrameTooBig);
        }
        let assembled = match (header.opcode, &self.fragmented) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (OpCode::Continuation, Some(f)) => f.data.len() as u64,
            _ => 0,
        };
        if assembled.saturating_add(header.payload_len) > self.max_message_size {
            return Err(ProtocolError::MessageTooBig);
        }
        Ok(())
    }

    /// Consumes what it can from the front of `rx` and returns the next item,
    /// or `Ok(None)` when `rx` holds no more whole items.
    #[inline]
    pub(crate) fn poll(&mut self, rx: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        // Rate-limited input takes the general path, which admits each frame.
        if self.current.is_none() && self.fragmented.is_none() && self.limiter.is_none() {
            let whole = self.whole_message(rx);
            if !matches!(whole, Ok(None)) {
                self.traffic.frames = self.traffic.frames.wrapping_add(1);
                return whole;
            }
        }
        self.poll_frames(rx)
    }

    /// The common case in one pass: a whole single-frame data message
    /// (FIN set, no RSV bits, masked as required, under 64 KiB, within the
    /// limits) at the front of `rx`. Anything else, including every frame
    /// that breaks a rule, is left for [`poll_frames`](Self::poll_frames),
    /// which reports it; this path decides nothing the general one would
    /// decide differently. `Ok(None)`: not such a message, nothing consumed.
    #[inline]
    fn whole_message(&self, rx: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        let Some(frame) = CommonFrame::parse(rx, self.expect_masked) else {
            return Ok(None);
        };
        let frame_len = frame.header_len.saturating_add(frame.payload_len);
        let limit = self.max_frame_size.min(self.max_message_size);
        if frame.payload_len as u64 > limit || rx.len() < frame_len {
            return Ok(None);
        }
        let Some(payload) = rx.get_mut(frame.header_len..frame_len) else {
            return Ok(None);
        };
        if let Some(key) = frame.mask {
            apply_mask(payload, key, 0);
        }
        // Unmasked now: past this point the frame is consumed either way.
        let mut whole = rx.split_to(frame_len).freeze();
        whole.advance(frame.header_len);
        Ok(Some(if frame.text {
            // The one check of a whole text frame is the one that proves it.
            let text = Utf8Bytes::try_from(whole).map_err(|_| ProtocolError::InvalidUtf8)?;
            Message::Text(text)
        } else {
            Message::Binary(whole)
        }))
    }

    /// The general deframer: any frame, whole or in pieces.
    fn poll_frames(&mut self, rx: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let frame = match &mut self.current {
                Some(frame) => frame,
                None => {
                    let Some((header, header_len)) = FrameHeader::parse(rx)? else {
                        return Ok(None);
                    };
                    self.check(&header)?;
                    if let Some(limiter) = &mut self.limiter {
                        let wire = (header_len as u64).saturating_add(header.payload_len);
                        let starts = header.opcode != OpCode::Continuation;
                        if !limiter.admit(wire, starts)? {
                            return Ok(None);
                        }
                    }
                    rx.advance(header_len);
                    self.traffic.frames = self.traffic.frames.wrapping_add(1);
                    // Compressed text is checked after inflating, not here.
                    let text = match header.opcode {
                        OpCode::Text => !header.rsv1,
                        OpCode::Continuation => self
                            .fragmented
                            .as_ref()
                            .is_some_and(|f| f.kind == DataKind::Text && !f.compressed),
                        _ => false,
                    };
                    // `check` bounded the length by `max_frame_size`, a usize.
                    let len = usize::try_from(header.payload_len)
                        .map_err(|_| ProtocolError::FrameTooBig)?;
                    self.current.insert(InFrame {
                        header,
                        len,
                        processed: 0,
                        text,
                    })
                }
            };
            let available = rx.len().min(frame.len);
            if let Some(fresh) = rx.get_mut(frame.processed..available) {
                if let Some(key) = frame.header.mask {
                    apply_mask(fresh, key, frame.processed);
                }
                if frame.text {
                    self.utf8
                        .feed(fresh)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                frame.processed = available;
            }
            if frame.processed < frame.len {
                return Ok(None);
            }
            let header = frame.header;
            let payload = rx.split_to(frame.len);
            self.current = None;
            if let Some(item) = self.complete(header, payload)? {
                return Ok(Some(item));
            }
        }
    }

    /// A whole frame has arrived: assemble or hand over.
    fn complete(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        let kind = match header.opcode {
            OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
            OpCode::Pong => return Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => {
                return CloseFrame::parse(payload.freeze()).map(|f| Some(Message::Close(f)));
            }
            OpCode::Text => DataKind::Text,
            OpCode::Binary => DataKind::Binary,
            OpCode::Continuation => {
                let Some(mut fragmented) = self.fragmented.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                if fragmented.compressed {
                    self.inflate(&payload, header.fin, &mut fragmented)?;
                } else {
                    fragmented.data.extend_from_slice(&payload);
                }
                if !header.fin {
                    self.fragmented = Some(fragmented);
                    return Ok(None);
                }
                return self
                    .finish(fragmented.kind, fragmented.data.into())
                    .map(Some);
            }
        };
        if header.rsv1 {
            let mut fragmented = Fragmented {
                kind,
                compressed: true,
                data: Vec::new(),
            };
            self.inflate(&payload, header.fin, &mut fragmented)?;
            if header.fin {
                return self.finish(kind, fragmented.data.into()).map(Some);
            }
            self.fragmented = Some(fragmented);
            return Ok(None);
        }
        if header.fin {
            return self.finish(kind, payload.freeze()).map(Some);
        }
        self.fragmented = Some(Fragmented {
            kind,
            compressed: false,
            data: payload.to_vec(),
        });
        Ok(None)
    }

    /// Inflates a compressed frame onto its message and checks new text.
    #[cfg(feature = "deflate")]
    fn inflate(
        &mut self,
        payload: &[u8],
        fin: bool,
        fragmented: &mut Fragmented,
    ) -> Result<(), ProtocolError> {
        let message_limit = usize::try_from(self.max_message_size).unwrap_or(usize::MAX);
        let Some(inflater) = self.inflater.as_mut() else {
            return Err(ProtocolError::ReservedBits);
        };
        let start = fragmented.data.len();
        let allowance = self
            .limiter
            .as_ref()
            .map_or(usize::MAX, |l| l.inflate_allowance());
        let limit = message_limit.min(start.saturating_add(allowance));
        match inflater.inflate(payload, fin, &mut fragmented.data, limit) {
            Err(ProtocolError::MessageTooBig) if limit < message_limit => {
                if let Some(limiter) = &mut self.limiter {
                    limiter.refused();
                }
                return Err(ProtocolError::RateLimited);
            }
            result => result?,
        }
        let grown = fragmented.data.len().saturating_sub(start);
        if let Some(limiter) = &mut self.limiter {
            limiter.inflated(grown);
        }
        self.traffic.compressed(grown, payload.len(), fin);
        if fragmented.kind == DataKind::Text {
            let fresh = fragmented.data.get(start..).unwrap_or_default();
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// Without the `deflate` feature nothing claims RSV1, so no frame gets here.
    #[cfg(not(feature = "deflate"))]
    fn inflate(&self, _: &[u8], _: bool, _: &mut Fragmented) -> Result<(), ProtocolError> {
        Err(ProtocolError::ReservedBits)
    }

    fn finish(&mut self, kind: DataKind, data: Bytes) -> Result<Message, ProtocolError> {
        Ok(match kind {
            DataKind::Text => {
                // Checked as it arrived (to fail fast); the final check is
                // what lets `Utf8Bytes` hand out a `&str` without `unsafe`.
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                Message::Text(Utf8Bytes::try_from(data).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
            DataKind::Binary => Message::Binary(data),
        })
    }
}
