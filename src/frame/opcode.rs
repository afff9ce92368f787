//! Opcodes (RFC 6455 §5.2, §11.8).

use crate::error::ProtocolError;

/// A frame's opcode.
///
/// The reserved values 0x3–0x7 and 0xB–0xF are rejected when a header is
/// parsed, with [`ProtocolError::ReservedOpcode`] carrying the value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: the first frame of a text message.
    Text = 0x1,
    /// 0x2: the first frame of a binary message.
    Binary = 0x2,
    /// 0x8: Close.
    Close = 0x8,
    /// 0x9: Ping.
    Ping = 0x9,
    /// 0xA: Pong.
    Pong = 0xa,
}

impl OpCode {
    /// Whether this is a control opcode (Close, Ping, Pong; §5.5).
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// The 4-bit wire value.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xa,
        }
    }
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;

    /// The opcode for a 4-bit wire value; reserved values are an error.
    fn try_from(value: u8) -> Result<Self, ProtocolError> {
        Ok(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xa => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §5.2: 0x3-0x7 and 0xB-0xF are reserved.
    #[test]
    fn every_nibble() {
        for v in 0u8..16 {
            match OpCode::try_from(v) {
                Ok(op) => {
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8);
                }
                Err(e) => {
                    assert!(matches!(v, 3..=7 | 0xb..=0xf), "{v}");
                    assert_eq!(e, ProtocolError::ReservedOpcode(v));
                }
            }
        }
    }
}
