//! A data message encoded once and sent to many connections.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "deflate")]
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use crate::frame::{FrameHeader, OpCode};
use crate::message::{DataKind, Message, Utf8Bytes};

/// A text or binary message framed once, for sending to many connections
/// (a chat room, a ticker, a dashboard).
///
/// It holds the server-role wire bytes (header and payload, unmasked) as
/// one shared [`Bytes`]: [`Connection::send_prepared`](crate::Connection::send_prepared)
/// on a server connection queues them by reference, so a recipient costs
/// neither a copy of the payload nor an allocation. Where the bytes cannot
/// be shared the message is still sent correctly from the shared payload: a
/// client masks each frame with its own key, and
/// [`max_send_frame_size`](crate::Config::max_send_frame_size) splits it per
/// connection.
///
/// With permessage-deflate, connections that compress each message with a
/// fresh context (`server_no_context_takeover` for a server) and the same
/// window and level share one compressed encoding, made the first time one
/// of them sends the message and kept here; a connection with context
/// takeover compresses for itself, since its window is its own.
/// [`uncompressed`](Self::uncompressed) opts a message out of compression.
///
/// Cloning is cheap (a reference count).
///
/// ```
/// use rfc6455::{Config, Connection, PreparedMessage, Role};
///
/// let tick = PreparedMessage::text("price 42");
/// let mut subscribers: Vec<Connection> = (0..3)
///     .map(|_| Connection::new(Role::Server, Config::default()))
///     .collect::<Result<_, _>>()?;
/// for conn in &mut subscribers {
///     conn.send_prepared(&tick)?;
/// }
/// assert_eq!(bytes::Buf::chunk(subscribers[2].outgoing()), tick.frame());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    kind: DataKind,
    /// The server-role frame: header, then the payload.
    frame: Bytes,
    header_len: usize,
    may_compress: bool,
    /// Compressed frames, one per (level, window bits) a fresh-context
    /// compressor used, made on first use.
    #[cfg(feature = "deflate")]
    compressed: Mutex<Vec<Compressed>>,
}

/// One shared compressed encoding.
#[cfg(feature = "deflate")]
struct Compressed {
    key: crate::extensions::deflate::SharedKey,
    /// The server-role frame (RSV1 set): header, then the compressed payload.
    frame: Bytes,
    header_len: usize,
}

impl PreparedMessage {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::new(DataKind::Text, text.into().into_bytes())
    }

    /// A binary message.
    #[must_use]
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(DataKind::Binary, data.into())
    }

    /// The prepared form of a text or binary message; `None` for a control
    /// message (Ping, Pong, Close), which is never shared.
    #[must_use]
    pub fn from_message(message: Message) -> Option<Self> {
        match message {
            Message::Text(text) => Some(Self::text(text)),
            Message::Binary(data) => Some(Self::binary(data)),
            _ => None,
        }
    }

    fn new(kind: DataKind, payload: Bytes) -> Self {
        let (frame, header_len) = encode(kind.opcode(), false, &payload);
        Self {
            inner: Arc::new(Inner {
                kind,
                frame,
                header_len,
                may_compress: true,
                #[cfg(feature = "deflate")]
                compressed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The same message, never compressed even where permessage-deflate is
    /// on (for secrets next to attacker-chosen data, against CRIME/BREACH,
    /// or data that is already compressed).
    #[must_use]
    pub fn uncompressed(self) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind: self.inner.kind,
                frame: self.inner.frame.clone(),
                header_len: self.inner.header_len,
                may_compress: false,
                #[cfg(feature = "deflate")]
                compressed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether it is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        self.inner.kind == DataKind::Text
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.frame.len() - self.inner.header_len
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload (shared, not copied).
    #[must_use]
    pub fn payload(&self) -> Bytes {
        self.inner.frame.slice(self.inner.header_len..)
    }

    /// The server-role frame: what a server connection without compression
    /// or a frame size limit writes for it.
    #[must_use]
    pub fn frame(&self) -> &Bytes {
        &self.inner.frame
    }

    /// How many compressed encodings have been made (one per compression
    /// setting among the connections it was sent to that share theirs).
    #[must_use]
    pub fn compressed_encodings(&self) -> usize {
        #[cfg(feature = "deflate")]
        return crate::sync::lock(&self.inner.compressed).len();
        #[cfg(not(feature = "deflate"))]
        0
    }

    /// The message it was made from.
    #[must_use]
    pub fn to_message(&self) -> Message {
        let payload = self.payload();
        match self.inner.kind {
            // Made from `Utf8Bytes` (or checked): the bytes are UTF-8.
            DataKind::Text => Utf8Bytes::try_from(payload)
                .map_or_else(|_| Message::Binary(self.payload()), Message::Text),
            DataKind::Binary => Message::Binary(payload),
        }
    }

    pub(crate) fn kind(&self) -> DataKind {
        self.inner.kind
    }

    pub(crate) fn header_len(&self) -> usize {
        self.inner.header_len
    }

    #[cfg(feature = "deflate")]
    pub(crate) fn may_compress(&self) -> bool {
        self.inner.may_compress
    }

    /// The compressed server-role frame and its header length for `key`,
    /// made with `compress` the first time.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed(
        &self,
        key: crate::extensions::deflate::SharedKey,
        compress: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> (Bytes, usize) {
        let mut cache = crate::sync::lock(&self.inner.compressed);
        if let Some(found) = cache.iter().find(|c| c.key == key) {
            return (found.frame.clone(), found.header_len);
        }
        let body = compress(self.payload().as_ref());
        let (frame, header_len) = encode(self.inner.kind.opcode(), true, &body);
        cache.push(Compressed {
            key,
            frame: frame.clone(),
            header_len,
        });
        (frame, header_len)
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.inner.kind)
            .field("len", &self.len())
            .field("may_compress", &self.inner.may_compress)
            .field("compressed_encodings", &self.compressed_encodings())
            .finish()
    }
}

impl From<Utf8Bytes> for PreparedMessage {
    fn from(text: Utf8Bytes) -> Self {
        Self::text(text)
    }
}

impl From<Bytes> for PreparedMessage {
    fn from(data: Bytes) -> Self {
        Self::binary(data)
    }
}

/// One unmasked final frame: header, then `payload`; and the header's length.
fn encode(opcode: OpCode, rsv1: bool, payload: &[u8]) -> (Bytes, usize) {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.rsv1 = rsv1;
    let header_len = header.encoded_len();
    let mut frame = BytesMut::with_capacity(header_len + payload.len());
    header.encode_into(&mut frame);
    frame.extend_from_slice(payload);
    (frame.freeze(), header_len)
}

/// What the adapters' `feed`, `send` and `write` take: a [`Message`], or a
/// [`PreparedMessage`] (by value or by reference) for fan-out.
pub trait Outbound: sealed::Queue {}

impl Outbound for Message {}
impl Outbound for PreparedMessage {}
impl Outbound for &PreparedMessage {}

/// What an [`Outbound`] does, nameable only inside the crate: the seal.
pub(crate) mod sealed {
    /// Only the crate's message types are outbound.
    #[allow(unnameable_types)]
    pub trait Queue {
        /// The payload length, for backpressure.
        fn payload_len(&self) -> usize;
        /// Queues it on `conn`.
        fn queue_on(self, conn: &mut crate::Connection) -> Result<(), crate::SendError>;
    }
}

impl sealed::Queue for Message {
    fn payload_len(&self) -> usize {
        self.payload().len()
    }

    fn queue_on(self, conn: &mut crate::Connection) -> Result<(), crate::SendError> {
        conn.send(self)
    }
}

impl sealed::Queue for &PreparedMessage {
    fn payload_len(&self) -> usize {
        self.len()
    }

    fn queue_on(self, conn: &mut crate::Connection) -> Result<(), crate::SendError> {
        conn.send_prepared(self)
    }
}

impl sealed::Queue for PreparedMessage {
    fn payload_len(&self) -> usize {
        (&self).payload_len()
    }

    fn queue_on(self, conn: &mut crate::Connection) -> Result<(), crate::SendError> {
        conn.send_prepared(&self)
    }
}
