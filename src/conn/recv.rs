//! The deframer and message assembler (RFC 6455 §5.2–§5.5, §8.1).
//!
//! Per frame: parse the header from the front of the input, check it against
//! the connection's rules and limits before any payload is buffered, then
//! unmask (and, for text, validate) the payload in place as it arrives, and
//! split it off the input as `Bytes` once whole. Fragmented messages are
//! assembled here; control frames between fragments are returned at once.

use bytes::{Buf, Bytes, BytesMut};

use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, apply_mask};
use crate::message::DataKind;
use crate::utf8::Utf8Validator;

/// What the receiver hands to the connection.
#[derive(Debug)]
pub(crate) enum Received {
    /// A whole data message; text is already validated.
    Data(DataKind, Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

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
    data: BytesMut,
}

/// Deframer state. Knows the rules; owns no input.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// A masked frame is required (server) or forbidden (client).
    expect_masked: bool,
    /// RSV bits a negotiated extension has claimed (RSV1 = 0b100).
    allowed_rsv: u8,
    max_frame_size: u64,
    max_message_size: u64,
    current: Option<InFrame>,
    fragmented: Option<Fragmented>,
    utf8: Utf8Validator,
}

impl Receiver {
    pub(crate) fn new(expect_masked: bool, max_frame_size: usize, max_message_size: usize) -> Self {
        Self {
            expect_masked,
            allowed_rsv: 0,
            max_frame_size: max_frame_size as u64,
            max_message_size: max_message_size as u64,
            current: None,
            fragmented: None,
            utf8: Utf8Validator::default(),
        }
    }

    /// Payload bytes the current frame still needs, or 0 between frames.
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
    pub(crate) fn poll(&mut self, rx: &mut BytesMut) -> Result<Option<Received>, ProtocolError> {
        loop {
            let frame = match &mut self.current {
                Some(frame) => frame,
                None => {
                    let Some((header, header_len)) = FrameHeader::parse(rx)? else {
                        return Ok(None);
                    };
                    self.check(&header)?;
                    rx.advance(header_len);
                    let text = match header.opcode {
                        OpCode::Text => true,
                        OpCode::Continuation => self
                            .fragmented
                            .as_ref()
                            .is_some_and(|f| f.kind == DataKind::Text),
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
    ) -> Result<Option<Received>, ProtocolError> {
        let kind = match header.opcode {
            OpCode::Ping => return Ok(Some(Received::Ping(payload.freeze()))),
            OpCode::Pong => return Ok(Some(Received::Pong(payload.freeze()))),
            OpCode::Close => {
                return CloseFrame::parse(payload.freeze()).map(|f| Some(Received::Close(f)));
            }
            OpCode::Text => DataKind::Text,
            OpCode::Binary => DataKind::Binary,
            OpCode::Continuation => {
                let Some(fragmented) = &mut self.fragmented else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                fragmented.data.extend_from_slice(&payload);
                if !header.fin {
                    return Ok(None);
                }
                let kind = fragmented.kind;
                let data = std::mem::take(&mut fragmented.data);
                self.fragmented = None;
                return self.finish(kind, data.freeze()).map(Some);
            }
        };
        if header.fin {
            return self.finish(kind, payload.freeze()).map(Some);
        }
        self.fragmented = Some(Fragmented {
            kind,
            data: payload,
        });
        Ok(None)
    }

    fn finish(&mut self, kind: DataKind, data: Bytes) -> Result<Received, ProtocolError> {
        if kind == DataKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Received::Data(kind, data))
    }
}
