//! Messages, the unit the application sends and receives (RFC 6455 §5.6, §5.5).

use std::fmt;

use bytes::Bytes;

use crate::close::CloseFrame;

/// Bytes that are proven to be UTF-8.
///
/// Built only by safe constructors that check (or from `String`/`&str`, which
/// already are). Received text is checked incrementally as it arrives and
/// then handed over without a copy.
///
/// The crate forbids `unsafe`, so [`as_str`](Self::as_str) runs the standard
/// library's validator again (a fast pass; the bytes are already known to be
/// valid). Call it once and keep the `&str` in hot loops.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// An empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// A string from a `&'static str`, without allocating.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes already proven UTF-8 by this crate's validator.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text as `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // The constructors guarantee validity, so the `None` arm is unreachable.
        crate::utf8::as_str(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying bytes, without a copy.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks the bytes and wraps them without copying.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        if crate::utf8::as_str(&bytes).is_none() {
            // Only invalid input pays for the standard library's error.
            std::str::from_utf8(&bytes)?;
        }
        Ok(Self(bytes))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a data message: what its first frame's opcode says (RFC 6455 §5.6).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

/// A WebSocket message. The same type is sent and received.
///
/// Received payloads are split off the connection's input buffer without a
/// copy (a fragmented message is assembled once).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message, proven UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A Ping (payload ≤ 125 bytes). When one is received, its Pong is
    /// already queued (see [`Config::auto_pong`](crate::Config::auto_pong)).
    Ping(Bytes),
    /// A Pong (payload ≤ 125 bytes), solicited or not.
    Pong(Bytes),
    /// A Close frame; `None` when it had no payload. When one is received,
    /// the connection has already queued its echo.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    #[must_use]
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The payload bytes (for Close, the reason only).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(Some(frame)) => frame.reason.as_bytes(),
            Self::Close(None) => &[],
        }
    }

    /// Whether this is a control message (Ping, Pong or Close; RFC 6455 §5.5).
    #[must_use]
    pub fn is_control(&self) -> bool {
        matches!(self, Self::Ping(_) | Self::Pong(_) | Self::Close(_))
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message.
    #[must_use]
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// Whether this is a Ping.
    #[must_use]
    pub fn is_ping(&self) -> bool {
        matches!(self, Self::Ping(_))
    }

    /// Whether this is a Pong.
    #[must_use]
    pub fn is_pong(&self) -> bool {
        matches!(self, Self::Pong(_))
    }

    /// Whether this is a Close.
    #[must_use]
    pub fn is_close(&self) -> bool {
        matches!(self, Self::Close(_))
    }

    /// The payload's length in bytes (for Close, the reason's).
    #[must_use]
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }

    /// The payload as text: a text message's without a check, any other
    /// message's if it is UTF-8.
    ///
    /// ```
    /// use rfc6455::Message;
    /// let message = Message::text("hello");
    /// assert!(message.is_text());
    /// assert_eq!(message.to_text()?, "hello");
    /// assert!(Message::binary(vec![0xff]).to_text().is_err());
    /// # Ok::<(), std::str::Utf8Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`std::str::Utf8Error`] for a payload that is not UTF-8.
    pub fn to_text(&self) -> Result<&str, std::str::Utf8Error> {
        match self {
            Self::Text(text) => Ok(text.as_str()),
            other => std::str::from_utf8(other.payload()),
        }
    }

    /// The payload, without a copy where it is already `Bytes` (for Close,
    /// the reason).
    #[must_use]
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(Some(frame)) => frame.reason.into_bytes(),
            Self::Close(None) => Bytes::new(),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<Utf8Bytes> for Message {
    fn from(s: Utf8Bytes) -> Self {
        Self::Text(s)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}
