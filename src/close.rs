//! Close codes and the Close frame payload (RFC 6455 §5.5.1, §7.4).
//!
//! Every named code, its text and whether it may appear on the wire come
//! from one table, so the constants, `Display` and the validity rule cannot
//! drift apart.

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::message::Utf8Bytes;

/// A WebSocket close status code (RFC 6455 §7.4).
///
/// Any `u16` is representable, so a code received from a peer or defined by
/// an application (3000–4999) can be carried around; [`CloseCode::is_sendable`]
/// says whether it may appear in a Close frame.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

macro_rules! close_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal, $wire:literal;)*) => {
        impl CloseCode {
            $($(#[$doc])* pub const $name: Self = Self($value);)*

            /// The registered name of this code, if it has one.
            #[must_use]
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }

            fn registered_on_wire(self) -> Option<bool> {
                match self.0 {
                    $($value => Some($wire),)*
                    _ => None,
                }
            }
        }
    };
}

close_codes! {
    /// 1000: the purpose of the connection has been fulfilled.
    #[doc(alias = "Normal")]
    NORMAL = 1000, "normal closure", true;
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    #[doc(alias = "Away")]
    GOING_AWAY = 1001, "going away", true;
    /// 1002: the endpoint received a frame that breaks the protocol.
    #[doc(alias = "Protocol")]
    PROTOCOL_ERROR = 1002, "protocol error", true;
    /// 1003: the endpoint cannot accept this type of data.
    #[doc(alias = "Unsupported")]
    UNSUPPORTED_DATA = 1003, "unsupported data", true;
    /// 1005: no status code was present (local only, never sent).
    #[doc(alias = "Status")]
    NO_STATUS_RECEIVED = 1005, "no status received", false;
    /// 1006: the connection closed without a Close frame (local only, never sent).
    #[doc(alias = "Abnormal")]
    ABNORMAL = 1006, "abnormal closure", false;
    /// 1007: a message's data was not consistent with its type (e.g. bad UTF-8 in text).
    #[doc(alias = "Invalid")]
    INVALID_PAYLOAD = 1007, "invalid frame payload data", true;
    /// 1008: a message violated the endpoint's policy.
    #[doc(alias = "Policy")]
    POLICY_VIOLATION = 1008, "policy violation", true;
    /// 1009: a message was too big to process.
    #[doc(alias = "Size")]
    MESSAGE_TOO_BIG = 1009, "message too big", true;
    /// 1010: the client expected the server to negotiate an extension.
    #[doc(alias = "Extension")]
    MANDATORY_EXTENSION = 1010, "mandatory extension", true;
    /// 1011: the server met an unexpected condition.
    #[doc(alias = "Error")]
    INTERNAL_ERROR = 1011, "internal error", true;
    /// 1012: the service is restarting.
    #[doc(alias = "Restart")]
    SERVICE_RESTART = 1012, "service restart", true;
    /// 1013: try again later (temporary overload).
    #[doc(alias = "Again")]
    TRY_AGAIN_LATER = 1013, "try again later", true;
    /// 1014: a gateway or proxy received an invalid response upstream.
    #[doc(alias = "Bad")]
    BAD_GATEWAY = 1014, "bad gateway", true;
    /// 1015: the TLS handshake failed (local only, never sent).
    #[doc(alias = "Tls")]
    TLS_HANDSHAKE = 1015, "TLS handshake failure", false;
}

impl CloseCode {
    /// Whether this code may appear in a Close frame, sent or received
    /// (RFC 6455 §7.4.1, §7.4.2; IANA registry).
    ///
    /// True for the registered codes except 1005, 1006 and 1015, and for
    /// 3000–4999 (libraries, frameworks and applications). False for
    /// everything below 1000, the unassigned 1004 and 1016–2999, and 5000 and up.
    #[must_use]
    pub fn is_sendable(self) -> bool {
        match self.registered_on_wire() {
            Some(on_wire) => on_wire,
            None => (3000..=4999).contains(&self.0),
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "CloseCode({} {name})", self.0),
            None => write!(f, "CloseCode({})", self.0),
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The longest reason that fits in a control frame next to the code (125 − 2).
pub(crate) const MAX_REASON_LEN: usize = 123;

/// The body of a Close frame: a status code and a UTF-8 reason (RFC 6455 §5.5.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8 when sent. May be empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    ///
    /// Nothing is checked here; [`Connection::close`](crate::Connection::close)
    /// and [`Connection::send`](crate::Connection::send) check the code and the
    /// reason length before anything is queued.
    #[must_use]
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// Parses a received Close payload (RFC 6455 §5.5.1, §7.1.5, §7.4).
    ///
    /// An empty payload is `Ok(None)` (status 1005 in the RFC's terms). A
    /// single byte is a protocol error, a code that may not be sent is a
    /// protocol error, and a reason that is not UTF-8 is an invalid payload.
    pub(crate) fn parse(payload: Bytes) -> Result<Option<Self>, ProtocolError> {
        let Some((&[hi, lo], _)) = payload.split_first_chunk::<2>() else {
            return if payload.is_empty() {
                Ok(None)
            } else {
                Err(ProtocolError::BadClosePayload)
            };
        };
        let code = CloseCode(u16::from_be_bytes([hi, lo]));
        if !code.is_sendable() {
            return Err(ProtocolError::InvalidCloseCode(code.0));
        }
        let reason =
            Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Some(Self { code, reason }))
    }

    /// Length of the encoded payload.
    pub(crate) fn encoded_len(&self) -> usize {
        self.reason.len().saturating_add(2)
    }

    /// Writes code and reason into `dst`.
    pub(crate) fn encode_into(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.code.0);
        dst.put_slice(self.reason.as_bytes());
    }

    /// The encoded payload as its own buffer.
    pub(crate) fn to_payload(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §7.4.1 and §7.4.2: which codes may be sent or received.
    #[test]
    fn sendable_ranges() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expected, "code {code}");
        }
    }

    #[test]
    fn display_names_registered_codes() {
        assert_eq!(CloseCode::NORMAL.to_string(), "1000 (normal closure)");
        assert_eq!(CloseCode(4000).to_string(), "4000");
        assert_eq!(
            format!("{:?}", CloseCode(1006)),
            "CloseCode(1006 abnormal closure)"
        );
    }

    // RFC 6455 §5.5.1: body is a 2-byte code then UTF-8 reason.
    #[test]
    fn parse_rules() {
        assert_eq!(CloseFrame::parse(Bytes::new()), Ok(None));
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[0x03])),
            Err(ProtocolError::BadClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[0x03, 0xed])),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[0x03, 0xe8, 0xff])),
            Err(ProtocolError::InvalidUtf8)
        );
        let ok = CloseFrame::parse(Bytes::from_static(b"\x0f\xa0bye"))
            .unwrap()
            .unwrap();
        assert_eq!(ok.code, CloseCode(4000));
        assert_eq!(ok.reason.as_str(), "bye");
        assert_eq!(ok.to_payload(), Bytes::from_static(b"\x0f\xa0bye"));
    }
}
