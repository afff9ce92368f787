//! The frame header (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use bytes::BufMut;

use super::OpCode;
use crate::error::ProtocolError;

/// The longest possible header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
///
/// Parsing checks every rule that needs no connection state: reserved
/// opcodes, control frames that are fragmented or longer than 125 bytes,
/// non-minimal length encodings and 64-bit lengths with the top bit set. The
/// connection checks the rest (RSV bits against negotiated extensions, the
/// masking direction, fragmentation order and size limits).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1 (claimed by permessage-deflate, RFC 7692).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every frame a client sends.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (at most 2^63 − 1).
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header with FIN set, no RSV bits and no mask.
    #[must_use]
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` is a valid prefix of a header but too
    /// short, `Ok(Some((header, len)))` with the header's length in bytes when
    /// complete, and an error as soon as the bytes present break a rule: a
    /// reserved opcode or a bad control frame is reported from the first two
    /// bytes alone.
    ///
    /// ```
    /// use rfc6455::frame::{FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a single-frame masked text message ("Hello").
    /// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// assert_eq!(FrameHeader::parse(&wire[..1]), Ok(None));
    /// let (header, len) = FrameHeader::parse(&wire).unwrap().unwrap();
    /// assert_eq!(len, 6);
    /// assert_eq!(header.opcode, OpCode::Text);
    /// assert_eq!(header.payload_len, 5);
    /// assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let Some((&[b0, b1], rest)) = buf.split_first_chunk::<2>() else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::try_from(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlTooLong);
            }
        }
        let (payload_len, rest) = match len7 {
            126 => {
                let Some((bytes, rest)) = rest.split_first_chunk::<2>() else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes(*bytes);
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (u64::from(len), rest)
            }
            127 => {
                let Some((bytes, rest)) = rest.split_first_chunk::<8>() else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(*bytes);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthOverflow);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, rest)
            }
            len => (u64::from(len), rest),
        };
        let (mask, rest) = if masked {
            let Some((key, rest)) = rest.split_first_chunk::<4>() else {
                return Ok(None);
            };
            (Some(*key), rest)
        } else {
            (None, rest)
        };
        let header = Self {
            fin,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, buf.len().saturating_sub(rest.len()))))
    }

    /// The RSV bits as the high nibble's three low bits: RSV1 = 0b100, RSV2 = 0b010, RSV3 = 0b001.
    #[must_use]
    pub fn rsv_bits(&self) -> u8 {
        (u8::from(self.rsv1) << 2) | (u8::from(self.rsv2) << 1) | u8::from(self.rsv3)
    }

    /// The first byte on the wire: FIN, the RSV bits and the opcode.
    #[must_use]
    pub(crate) fn first_byte(&self) -> u8 {
        (u8::from(self.fin) << 7) | (self.rsv_bits() << 4) | self.opcode.as_u8()
    }

    /// The encoded length of this header (2 to 14 bytes).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let len: usize = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        let mask_len = if self.mask.is_some() { 4 } else { 0 };
        len.saturating_add(mask_len)
    }

    /// Writes the header with the minimal length encoding.
    ///
    /// A `payload_len` of 2^63 or more cannot be represented; the top bit is
    /// cleared, so such a header must not be built (the connection never does).
    pub fn encode_into(&self, dst: &mut impl BufMut) {
        let b0 = self.first_byte();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match u16::try_from(self.payload_len) {
            Ok(len) => put_short_header(dst, b0, mask_bit, len),
            Err(_) => {
                dst.put_slice(&[b0, mask_bit | 127]);
                dst.put_u64(self.payload_len & (u64::MAX >> 1));
            }
        }
        if let Some(key) = self.mask {
            dst.put_slice(&key);
        }
    }
}

/// Writes the first two bytes, and the 16-bit length if there is one, of a
/// header whose payload is under 64 KiB (each case a fixed-size store: the
/// small-frame send path, `benches/callgrind.sh`).
#[inline]
pub(crate) fn put_short_header(dst: &mut impl BufMut, first_byte: u8, mask_bit: u8, len: u16) {
    match u8::try_from(len) {
        Ok(short) if short <= 125 => dst.put_slice(&[first_byte, mask_bit | short]),
        _ => {
            let [hi, lo] = len.to_be_bytes();
            dst.put_slice(&[first_byte, mask_bit | 126, hi, lo]);
        }
    }
}

/// How many bytes [`put_short_header`] writes for `len`.
#[inline]
pub(crate) fn short_header_len(len: u16) -> usize {
    if len <= 125 { 2 } else { 4 }
}

/// A data frame in the form nearly every message takes, decoded in one
/// step: FIN set, no RSV bits, Text or Binary, a 7- or 16-bit length
/// (minimally encoded), masked or not as asked. Any other header, or one not
/// all in the buffer yet, is [`FrameHeader::parse`]'s to decide; this
/// decides nothing that would differ from it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct CommonFrame {
    /// Text (else Binary).
    pub(crate) text: bool,
    /// The masking key, when masked.
    pub(crate) mask: Option<[u8; 4]>,
    /// Header bytes, mask included.
    pub(crate) header_len: usize,
    /// Payload bytes.
    pub(crate) payload_len: usize,
}

impl CommonFrame {
    /// The common frame at the start of `buf`, if that is what starts it.
    #[inline]
    pub(crate) fn parse(buf: &[u8], masked: bool) -> Option<Self> {
        let &[b0, b1] = buf.first_chunk::<2>()?;
        let text = match b0 {
            0x81 => true,
            0x82 => false,
            _ => return None,
        };
        if (b1 & 0x80 != 0) != masked {
            return None;
        }
        let (payload_len, at): (usize, usize) = match b1 & 0x7f {
            127 => return None,
            126 => match buf.get(2..4) {
                Some(&[hi, lo]) if u16::from_be_bytes([hi, lo]) >= 126 => {
                    (usize::from(u16::from_be_bytes([hi, lo])), 4)
                }
                _ => return None,
            },
            len => (usize::from(len), 2),
        };
        let (mask, header_len) = if masked {
            let key = buf.get(at..at.saturating_add(4))?;
            (<[u8; 4]>::try_from(key).ok(), at.saturating_add(4))
        } else {
            (None, at)
        };
        Some(Self {
            text,
            mask,
            header_len,
            payload_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(bytes: &[u8]) -> ProtocolError {
        FrameHeader::parse(bytes).unwrap_err()
    }

    // RFC 6455 §5.2: every prefix of a valid header is "need more".
    #[test]
    fn prefixes_need_more() {
        let mut header = FrameHeader::new(OpCode::Binary, 70_000);
        header.mask = Some([1, 2, 3, 4]);
        let mut wire = Vec::new();
        header.encode_into(&mut wire);
        assert_eq!(wire.len(), MAX_HEADER_LEN);
        for end in 0..wire.len() {
            assert_eq!(FrameHeader::parse(&wire[..end]), Ok(None), "prefix {end}");
        }
        assert_eq!(FrameHeader::parse(&wire), Ok(Some((header, 14))));
    }

    // §5.2: the three length encodings round-trip at their boundaries.
    #[test]
    fn length_encodings() {
        for (len, header_len) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (i64::MAX as u64, 10),
        ] {
            let header = FrameHeader::new(OpCode::Text, len);
            let mut wire = Vec::new();
            header.encode_into(&mut wire);
            assert_eq!(wire.len(), header_len);
            assert_eq!(FrameHeader::parse(&wire), Ok(Some((header, header_len))));
        }
    }

    // The one-step decoder agrees with FrameHeader::parse on every header it
    // takes, and takes the common ones.
    #[test]
    fn common_frames_decode_as_the_general_parser_does() {
        let mut seen = 0;
        for b0 in [0x01u8, 0x81, 0x82, 0x88, 0xc1, 0x80] {
            for len in [0u64, 5, 125, 126, 300, 65535, 65536] {
                for mask in [None, Some([9, 8, 7, 6])] {
                    let mut header = FrameHeader::parse(&[b0, 0]).unwrap().unwrap().0;
                    header.payload_len = len;
                    header.mask = mask;
                    let mut wire = Vec::new();
                    header.encode_into(&mut wire);
                    let Some(common) = CommonFrame::parse(&wire, mask.is_some()) else {
                        continue;
                    };
                    seen += 1;
                    let (general, header_len) = FrameHeader::parse(&wire).unwrap().unwrap();
                    assert!(general.fin && general.rsv_bits() == 0);
                    assert_eq!(common.text, general.opcode == OpCode::Text);
                    assert_eq!((common.mask, common.header_len), (general.mask, header_len));
                    assert_eq!(common.payload_len as u64, general.payload_len);
                    assert!(CommonFrame::parse(&wire, mask.is_none()).is_none());
                    assert!(CommonFrame::parse(&wire[..header_len - 1], mask.is_some()).is_none());
                }
            }
        }
        // Text and Binary, masked or not, at six lengths under 64 KiB.
        assert_eq!(seen, 2 * 6 * 2);
    }

    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    #[test]
    fn non_minimal_lengths_rejected() {
        assert_eq!(
            parse_err(&[0x82, 126, 0, 125]),
            ProtocolError::NonMinimalLength
        );
        assert_eq!(
            parse_err(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            ProtocolError::NonMinimalLength
        );
        assert_eq!(
            parse_err(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5]),
            ProtocolError::NonMinimalLength
        );
    }

    // §5.2: "the most significant bit MUST be 0".
    #[test]
    fn top_bit_of_64_bit_length_rejected() {
        assert_eq!(
            parse_err(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            ProtocolError::LengthOverflow
        );
    }

    // §5.2 reserved opcodes; §5.5 control frames: FIN set and at most 125 bytes.
    #[test]
    fn context_free_rejections_need_only_two_bytes() {
        assert_eq!(parse_err(&[0x83, 0]), ProtocolError::ReservedOpcode(3));
        assert_eq!(parse_err(&[0x8f, 0]), ProtocolError::ReservedOpcode(0xf));
        assert_eq!(parse_err(&[0x09, 0]), ProtocolError::FragmentedControl);
        assert_eq!(parse_err(&[0x89, 126]), ProtocolError::ControlTooLong);
        assert_eq!(parse_err(&[0x88, 127]), ProtocolError::ControlTooLong);
        // 125 is fine.
        assert!(FrameHeader::parse(&[0x8a, 125]).unwrap().is_some());
    }

    #[test]
    fn rsv_bits_parse() {
        let (h, _) = FrameHeader::parse(&[0xf1, 0]).unwrap().unwrap();
        assert!(h.rsv1 && h.rsv2 && h.rsv3);
        assert_eq!(h.rsv_bits(), 0b111);
        let (h, _) = FrameHeader::parse(&[0xc1, 0]).unwrap().unwrap();
        assert_eq!(h.rsv_bits(), 0b100);
    }
}
