//! The error families.
//!
//! - [`ProtocolError`]: the peer broke RFC 6455. It carries the close code the
//!   connection sends for it, and once one occurs it is sticky.
//! - [`SendError`]: the caller asked for something the connection cannot do.
//!   The connection is unchanged and nothing was queued.
//! - [`ConfigError`]: a [`Config`](crate::Config) that cannot work, found by
//!   [`Connection::new`](crate::Connection::new).

use crate::close::CloseCode;
use crate::message::Message;

/// The peer's fault: a frame or message that breaks RFC 6455, or a peer that
/// went silent or away.
///
/// When [`Connection::next_message`](crate::Connection::next_message) returns
/// one, the connection has already queued a Close frame with
/// [`close_code`](Self::close_code) (unless the code is local-only, like
/// 1006), moved to [`State::Closing`](crate::State::Closing), and returns the
/// same error from every later call. The queued output still drains, so the
/// Close frame reaches the peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 was set, and no negotiated extension defines it (§5.2).
    #[error("reserved bits set in frame header without a negotiated extension")]
    ReservedBits,
    /// The opcode is one of the reserved values 3–7 or 11–15 (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A client sent a frame without a mask (§5.1).
    #[error("unmasked frame from client")]
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    #[error("masked frame from server")]
    MaskedFrame,
    /// A control frame had FIN clear (§5.5).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame's payload was longer than 125 bytes (§5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A payload length used more bytes than needed (§5.2: "the minimal number
    /// of bytes MUST be used").
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A 64-bit payload length had its most significant bit set (§5.2).
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A continuation frame arrived with no fragmented message to continue (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new Text or Binary frame arrived inside a fragmented message (§5.4).
    #[error("new data frame while a fragmented message is unfinished")]
    ExpectedContinuation,
    /// Text (or a close reason) was not valid UTF-8 (§8.1).
    #[error("invalid UTF-8 in text")]
    InvalidUtf8,
    /// A Close frame payload was a single byte (§5.5.1).
    #[error("close frame payload of one byte")]
    BadClosePayload,
    /// A Close frame carried a code that may not be sent (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A frame's payload was larger than [`Config::max_frame_size`](crate::Config::max_frame_size).
    #[error("frame larger than the configured limit")]
    FrameTooBig,
    /// A message was larger than [`Config::max_message_size`](crate::Config::max_message_size).
    #[error("message larger than the configured limit")]
    MessageTooBig,
    /// A compressed message (permessage-deflate, RFC 7692) was not valid DEFLATE data.
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// The transport ended without a completed close handshake (§7.1.5: 1006).
    #[error("connection closed without a close handshake")]
    AbnormalClosure,
    /// Nothing arrived for [`Config::idle_timeout`](crate::Config::idle_timeout).
    #[error("no data received within the idle timeout")]
    IdleTimeout,
    /// The peer sent more than [`Config::rate_limits`](crate::Config::rate_limits)
    /// allow, and they say to close (or one message inflated past what pausing allows).
    #[error("rate limit exceeded")]
    RateLimited,
    /// Queued output made no progress for
    /// [`Config::write_timeout`](crate::Config::write_timeout): the peer
    /// stopped reading. Its output is dropped and the transport closed
    /// (1006, nothing can reach such a peer).
    #[error("the peer read nothing within the write timeout")]
    WriteTimeout,
}

impl ProtocolError {
    /// Whether this only says the transport ended without the peer's Close.
    /// After a local [`close`](crate::Connection::close) that is how a peer
    /// that hangs up answers: the adapters' `close` counts it as closed.
    #[must_use]
    pub fn is_peer_gone(self) -> bool {
        matches!(self, Self::AbnormalClosure)
    }

    /// The reason the Close reporting this error carries: empty, except
    /// where the code alone does not say what happened (1008 for a rate
    /// limit).
    #[must_use]
    pub fn close_reason(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limit exceeded",
            _ => "",
        }
    }

    /// The close code this error stands for (RFC 6455 §7.4.1).
    ///
    /// 1002 for framing errors, 1007 for bad UTF-8, 1009 for limits, 1001 for
    /// an idle peer, 1008 past a rate limit, and 1006 for a transport that
    /// ended without a close handshake or a peer that stopped reading. 1006 is reported locally and never sent.
    #[must_use]
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::ReservedBits
            | Self::ReservedOpcode(_)
            | Self::UnmaskedFrame
            | Self::MaskedFrame
            | Self::FragmentedControl
            | Self::ControlTooLong
            | Self::NonMinimalLength
            | Self::LengthOverflow
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::BadClosePayload
            | Self::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig | Self::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            Self::IdleTimeout => CloseCode::GOING_AWAY,
            Self::RateLimited => CloseCode::POLICY_VIOLATION,
            Self::AbnormalClosure | Self::WriteTimeout => CloseCode::ABNORMAL,
        }
    }
}

/// The caller's fault: a send the connection refused. The connection is
/// unchanged and nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A Close frame was already sent, or the connection failed; no frame may follow (§5.5.1).
    #[error("the connection is closing or closed")]
    Closed,
    /// Queued output is at [`Config::max_write_buffer`](crate::Config::max_write_buffer).
    /// The message is handed back; drain [`Connection::outgoing`](crate::Connection::outgoing) and retry.
    #[error("outgoing buffer is full")]
    Full(Message),
    /// A Ping, Pong or Close payload was longer than 125 bytes (§5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A close reason was longer than 123 bytes (§5.5.1).
    #[error("close reason longer than 123 bytes")]
    ReasonTooLong,
    /// The close code may not be sent (1005, 1006, 1015, unassigned or out of range; §7.4).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A whole Text or Binary message was sent, or a new fragmented message
    /// started, while a fragmented message is unfinished (§5.4).
    #[error("a fragmented message is in progress")]
    FragmentInProgress,
    /// Queued output is at [`Config::max_write_buffer`](crate::Config::max_write_buffer)
    /// when [`Connection::send_fragment`](crate::Connection::send_fragment) was
    /// called. The fragment's bytes are handed back; drain and retry.
    #[error("outgoing buffer is full")]
    FullFragment(bytes::Bytes),
    /// Text sent with [`Connection::send_fragment`](crate::Connection::send_fragment)
    /// is not UTF-8, or ends inside a code point (§8.1).
    #[error("text fragment is not valid UTF-8")]
    InvalidUtf8,
    /// [`Connection::send_fragment`](crate::Connection::send_fragment) continued
    /// a message of the other kind than the one in progress.
    #[error("fragment kind does not match the message in progress")]
    FragmentKindMismatch,
}

/// The caller's setup cannot work: a [`Config`](crate::Config), a URI, a
/// header, a subprotocol choice or a status that cannot be used. Nothing
/// was sent and no connection was made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size limit was zero.
    #[error("{0} must be greater than zero")]
    ZeroLimit(&'static str),
    /// A duration was zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The URI is not `ws://` or `wss://` with a host, or has a fragment (§3).
    #[error("invalid WebSocket URI: {0}")]
    InvalidUri(&'static str),
    /// A header name is not a token, or a value contains CR, LF or control characters.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// A subprotocol or extension name is not a token.
    #[error("invalid token {0:?}")]
    InvalidToken(String),
    /// [`AcceptOptions::protocol`](crate::handshake::AcceptOptions::protocol)
    /// named a subprotocol the client did not offer (§4.2.2).
    #[error("subprotocol {0:?} was not offered by the client")]
    ProtocolNotOffered(String),
    /// A rejection status outside 200–599.
    #[error("status {0} cannot reject a handshake")]
    InvalidStatus(u16),
    /// An address or network that does not parse (`10.0.0.0/8`, `::1`).
    #[error("invalid network {0:?}")]
    InvalidNetwork(String),
    /// The operating system's entropy source failed, so no masking key
    /// generator (or handshake key) could be seeded.
    #[error("the operating system's entropy source failed")]
    Entropy,
}

/// What the adapters report: the core's errors plus the transport's.
///
/// A variant that wraps another error is transparent: its `Display` is the
/// inner error's and `source()` continues from there, so a reporter that
/// walks the chain prints each message once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol; the Close frame reporting it was sent if the transport allowed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The peer's opening handshake was not acceptable (a server has already answered it).
    #[error(transparent)]
    Handshake(#[from] crate::handshake::HandshakeError),
    /// What the caller gave cannot work: a config, a URI, a header (see
    /// [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connection refused a send (see [`SendError`]).
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server's application rejected the request (its callback returned
    /// a [`Rejection`](crate::handshake::Rejection)), and that response,
    /// with this status, was sent. A client whose server answered with
    /// anything but 101 gets
    /// [`HandshakeError::Refused`](crate::HandshakeError::Refused) instead.
    #[error("handshake rejected with status {0}")]
    Rejected(u16),
    /// The opening handshake did not finish within
    /// [`HandshakeLimits::timeout`](crate::handshake::HandshakeLimits::timeout);
    /// the transport was dropped.
    #[error("the opening handshake did not finish within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    /// A `wss://` URL needs TLS: enable the `rustls` feature (tokio's
    /// `connect`), or connect a TLS stream and use the adapter's `client`.
    #[error(
        "wss:// needs TLS: enable the rustls feature, or connect a TLS stream and use client()"
    )]
    TlsRequired,
    /// The connection is closed: the close handshake finished (or timed out)
    /// and the transport was shut down. Not a failure.
    #[error("connection closed")]
    ConnectionClosed,
    /// A connection could not be frozen or thawed (see [`SnapshotError`](crate::SnapshotError)).
    #[error(transparent)]
    Snapshot(#[from] crate::SnapshotError),
    /// The stream's [`CloseSignal`](crate::rt::CloseSignal) asks for it to
    /// be handed to another process, and it is between messages: hand it
    /// over (`rt::handoff`), or go on using it. Not a failure, and not the
    /// stream's end: it is reported once per request.
    #[error("the connection is asked to be handed over")]
    HandoffRequested,
}

impl From<Error> for std::io::Error {
    /// Maps each kind onto the closest `io::ErrorKind`, keeping the original as the source.
    fn from(error: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match &error {
            Error::Io(e) => e.kind(),
            Error::Protocol(ProtocolError::AbnormalClosure) => ErrorKind::UnexpectedEof,
            Error::Protocol(ProtocolError::IdleTimeout | ProtocolError::WriteTimeout)
            | Error::HandshakeTimeout(_) => ErrorKind::TimedOut,
            Error::Protocol(_) | Error::Handshake(_) => ErrorKind::InvalidData,
            Error::Config(_) | Error::Send(_) | Error::TlsRequired => ErrorKind::InvalidInput,
            Error::Snapshot(_) => ErrorKind::InvalidData,
            Error::Rejected(_) => ErrorKind::ConnectionRefused,
            Error::ConnectionClosed => ErrorKind::NotConnected,
            Error::HandoffRequested => ErrorKind::Interrupted,
        };
        match error {
            Error::Io(e) => e,
            other => Self::new(kind, other),
        }
    }
}

impl From<ConfigError> for std::io::Error {
    /// An `InvalidInput` error carrying the config error, for servers whose
    /// setup speaks `io::Result`.
    fn from(error: ConfigError) -> Self {
        Self::new(std::io::ErrorKind::InvalidInput, error)
    }
}

impl ProtocolError {
    /// A short, fixed name for the error, for logs and metrics (the
    /// `error` label of the `metrics` feature's
    /// `websocket_protocol_errors_total`).
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::ReservedBits => "reserved_bits",
            Self::ReservedOpcode(_) => "reserved_opcode",
            Self::UnmaskedFrame => "unmasked_frame",
            Self::MaskedFrame => "masked_frame",
            Self::FragmentedControl => "fragmented_control",
            Self::ControlTooLong => "control_too_long",
            Self::NonMinimalLength => "non_minimal_length",
            Self::LengthOverflow => "length_overflow",
            Self::UnexpectedContinuation => "unexpected_continuation",
            Self::ExpectedContinuation => "expected_continuation",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::BadClosePayload => "bad_close_payload",
            Self::InvalidCloseCode(_) => "invalid_close_code",
            Self::FrameTooBig => "frame_too_big",
            Self::MessageTooBig => "message_too_big",
            Self::InvalidCompressedData => "invalid_compressed_data",
            Self::AbnormalClosure => "abnormal_closure",
            Self::IdleTimeout => "idle_timeout",
            Self::RateLimited => "rate_limited",
            Self::WriteTimeout => "write_timeout",
        }
    }
}
