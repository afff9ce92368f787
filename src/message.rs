//! Messages, the unit the application sends and receives (RFC 6455 §5.6, §5.5).

use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use crate::close::CloseFrame;

/// Bytes that are proven to be UTF-8: a `&str` through `Deref`, without a
/// copy and without checking again.
///
/// Built only by constructors that check (or from `String`/`&str`, which
/// already are). The proof is carried by `bytestring::ByteString`, so this
/// crate needs no `unsafe` to hand out a `&str`: a received text message is
/// checked once as a whole when it is complete (a fragmented one is also
/// checked as it arrives, to fail fast as RFC 6455 §8.1 asks).
///
/// ```
/// use rfc6455::Utf8Bytes;
///
/// let text = Utf8Bytes::from("héllo");
/// let s: &str = &text;
/// assert_eq!(s.to_uppercase(), "HÉLLO");
/// assert!(text.starts_with("hé"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(ByteString);

impl Utf8Bytes {
    /// An empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(ByteString::new())
    }

    /// A string from a `&'static str`, without allocating.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Self(ByteString::from_static(s))
    }

    /// The text as `&str` (also what `Deref` gives).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The underlying bytes, without a copy.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks the bytes and wraps them without copying.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        ByteString::try_from(bytes).map(Self)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(ByteString::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(ByteString::from(s))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0.into_bytes()
    }
}

impl From<Utf8Bytes> for String {
    fn from(s: Utf8Bytes) -> Self {
        s.0.into()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
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
    /// if let Message::Text(text) = &message {
    ///     let s: &str = &**text; // `Utf8Bytes` dereferences to `str`
    ///     assert_eq!(s.to_uppercase(), "HELLO");
    /// }
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

    /// The payload as text, without a copy: a Text message's own, or a
    /// Binary (or control) payload that is UTF-8 (for Close, the reason).
    ///
    /// # Errors
    ///
    /// [`std::str::Utf8Error`] for a payload that is not UTF-8.
    pub fn into_text(self) -> Result<Utf8Bytes, std::str::Utf8Error> {
        match self {
            Self::Text(text) => Ok(text),
            other => Utf8Bytes::try_from(other.into_data()),
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
