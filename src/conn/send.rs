//! The send pipeline (RFC 6455 §5.2–§5.5, RFC 7692 §6): what turns messages
//! into frames on the outgoing queue. It owns the client's masking keys,
//! permessage-deflate's compressor, the fragmented message in progress and
//! the pending automatic Pong; whether sending is allowed at all is the
//! connection's lifecycle, not this.

use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;

use super::outgoing::Outgoing;
use super::snapshot::{Reader, SnapshotError, Writer};
use super::stats::Traffic;
use crate::close::CloseFrame;
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode};
use crate::message::DataKind;
use crate::prepared::PreparedMessage;
use crate::utf8::Utf8Validator;

/// Every Ping gets its own Pong while less than this much output is waiting;
/// past it, only the newest pending Pong is kept (RFC 6455 §5.5.3).
const PONG_BACKLOG: usize = 4096;

/// Frames messages onto the outgoing queue.
#[derive(Debug)]
pub(crate) struct Sender {
    out: Outgoing,
    /// A Pong waiting for the output backlog to drain (only the newest is kept).
    pending_pong: Option<Bytes>,
    /// The kind and UTF-8 state of a fragmented message being sent.
    fragment: Option<(DataKind, Utf8Validator)>,
    /// Masking keys; clients only.
    /// Boxed: a server, which has none, does not carry its 300 bytes.
    rng: Option<Box<StdRng>>,
    /// Data frames are split to at most this many payload bytes.
    max_frame: usize,
    /// permessage-deflate's compressor, once negotiated.
    #[cfg(feature = "deflate")]
    deflater: Option<crate::extensions::deflate::Deflater>,
    /// What was queued; the bytes written are the queue's count.
    pub(crate) traffic: Traffic,
}

impl Sender {
    /// A sender that masks with `rng` (clients) and splits data frames at
    /// `max_frame` payload bytes.
    pub(crate) fn new(rng: Option<StdRng>, max_frame: Option<usize>) -> Self {
        Self {
            out: Outgoing::default(),
            pending_pong: None,
            fragment: None,
            rng: rng.map(Box::new),
            max_frame: max_frame.unwrap_or(usize::MAX),
            #[cfg(feature = "deflate")]
            deflater: None,
            traffic: Traffic::default(),
        }
    }

    /// Compresses data messages from now on.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_deflater(&mut self, deflater: crate::extensions::deflate::Deflater) {
        self.deflater = Some(deflater);
    }

    /// Writes the fragmented message being sent, the counters and the
    /// compressor's parameters (not its context); only with nothing queued.
    pub(crate) fn freeze(&self, w: &mut Writer) {
        w.bool(self.fragment.is_some());
        if let Some((kind, utf8)) = &self.fragment {
            w.bool(*kind == DataKind::Text);
            utf8.freeze(w);
        }
        self.traffic.freeze(w);
        let (written, dropped) = self.out.totals();
        w.u64(written);
        w.u64(dropped);
        #[cfg(feature = "deflate")]
        if let Some(deflater) = &self.deflater {
            let (bits, fresh) = deflater.params();
            w.bool(true);
            w.u8(bits);
            w.bool(fresh);
            return;
        }
        w.bool(false);
    }

    /// Reads what [`freeze`](Self::freeze) wrote; the compressor's
    /// parameters, if any, are returned for permessage-deflate's set-up.
    pub(crate) fn thaw(&mut self, r: &mut Reader<'_>) -> Result<Option<(u8, bool)>, SnapshotError> {
        if r.bool("fragment")? {
            let kind = if r.bool("fragment kind")? {
                DataKind::Text
            } else {
                DataKind::Binary
            };
            let utf8 = Utf8Validator::thaw(r)?;
            if kind == DataKind::Binary && utf8.is_partial() {
                return Err(SnapshotError::Invalid("fragment"));
            }
            self.fragment = Some((kind, utf8));
        }
        self.traffic = Traffic::thaw(r)?;
        let written = r.count("written")?;
        let dropped = r.count("dropped")?;
        self.out.set_totals(written, dropped);
        if !r.bool("deflate")? {
            return Ok(None);
        }
        let bits = r.u8()?;
        let fresh = r.bool("deflate")?;
        if !(8..=15).contains(&bits) {
            return Err(SnapshotError::Invalid("deflate window"));
        }
        Ok(Some((bits, fresh)))
    }

    /// The queue, for the input buffer's recycling of written payloads.
    pub(crate) fn queue(&mut self) -> &mut Outgoing {
        &mut self.out
    }

    /// The bytes to write, with a pending Pong queued once the backlog allows.
    pub(crate) fn outgoing(&mut self) -> &mut Outgoing {
        self.queue_pending_pong();
        &mut self.out
    }

    /// Bytes taken out of the queue as written.
    pub(crate) fn written(&self) -> u64 {
        self.out.written()
    }

    /// Bytes dropped unwritten, in total.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn dropped(&self) -> u64 {
        self.out.dropped()
    }

    /// Bytes waiting to be written (a pending Pong not counted).
    pub(crate) fn queued(&self) -> usize {
        self.out.len()
    }

    /// Whether anything waits to be written.
    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty() || self.pending_pong.is_some()
    }

    /// Nothing is queued, pending or half-sent.
    pub(crate) fn is_quiet(&self) -> bool {
        !self.wants_write() && self.fragment.is_none()
    }

    /// Whether an allocation that [`release`](Self::release) lets go is held.
    pub(crate) fn holds_memory(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.deflater.as_ref().is_some_and(|d| d.is_live()) {
            return true;
        }
        self.out.holds_memory()
    }

    /// Lets the output buffers (and a compressor with context takeover) go;
    /// only while [quiet](Self::is_quiet).
    pub(crate) fn release(&mut self) {
        self.out.release();
        #[cfg(feature = "deflate")]
        if let Some(deflater) = &mut self.deflater {
            deflater.release();
        }
    }

    /// Whether a fragmented message is being sent.
    pub(crate) fn is_fragmenting(&self) -> bool {
        self.fragment.is_some()
    }

    /// Queues a whole data message: compressed if permessage-deflate is on,
    /// it may be, and it is long enough; split into frames of the maximum
    /// frame size. Only the first frame carries RSV1.
    pub(crate) fn data(&mut self, kind: DataKind, payload: Bytes, may_compress: bool) {
        self.traffic.message(kind, payload.len());
        let (payload, rsv1) = self.maybe_compress(payload, may_compress);
        self.split(kind.opcode(), true, payload, rsv1);
    }

    /// Queues a prepared message: its shared frame where the wire bytes are
    /// the same for every connection (a server's, within the frame size
    /// limit), else frames made from its shared payload. Compressed, when
    /// it may and is long enough, into the encoding it shares with every
    /// connection of the same fresh-context settings, or by this
    /// connection's own compressor when it keeps its context.
    pub(crate) fn prepared(&mut self, message: &PreparedMessage) {
        let kind = message.kind();
        self.traffic.message(kind, message.len());
        #[cfg(feature = "deflate")]
        if let Some(deflater) = self.deflater.as_mut()
            && message.may_compress()
            && message.len() >= deflater.threshold
        {
            match deflater.shared_key() {
                Some(key) => {
                    let (frame, header_len) =
                        message.compressed(key, |payload| deflater.compress(payload));
                    self.count_compressed(message.len(), frame.len().saturating_sub(header_len));
                    return self.shared(kind, &frame, header_len, true);
                }
                None => {
                    let body = Bytes::from(deflater.compress(&message.payload()));
                    self.count_compressed(message.len(), body.len());
                    return self.split(kind.opcode(), true, body, true);
                }
            }
        }
        self.shared(kind, message.frame(), message.header_len(), false);
    }

    /// Queues a shared server-role frame as it is if this connection would
    /// write exactly those bytes, else re-frames its payload. By reference:
    /// a short frame is copied, and its count is not touched.
    fn shared(&mut self, kind: DataKind, frame: &Bytes, header_len: usize, rsv1: bool) {
        let payload_len = frame.len().saturating_sub(header_len);
        if self.rng.is_none() && payload_len <= self.max_frame {
            self.traffic.frames += 1;
            self.out.push_encoded(frame);
        } else {
            self.split(kind.opcode(), true, frame.slice(header_len..), rsv1);
        }
    }

    /// Queues one fragment of a streamed message (never compressed): the
    /// first starts a message of `kind`, `fin` ends it. Text is checked as
    /// it goes, so invalid UTF-8 is refused before it is sent.
    ///
    /// `room` is whether the queue takes more data; without it the bytes are
    /// handed back. On error nothing was queued and the message in progress
    /// is unchanged.
    pub(crate) fn fragment(
        &mut self,
        kind: DataKind,
        data: Bytes,
        fin: bool,
        room: bool,
    ) -> Result<(), SendError> {
        let (opcode, mut utf8) = match &self.fragment {
            None => (kind.opcode(), Utf8Validator::default()),
            Some((current, utf8)) if *current == kind => (OpCode::Continuation, utf8.clone()),
            Some(_) => return Err(SendError::FragmentKindMismatch),
        };
        if kind == DataKind::Text {
            utf8.feed(&data).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
        }
        if !room {
            return Err(SendError::FullFragment(data));
        }
        self.traffic.fragment(kind, data.len(), fin);
        self.split(opcode, fin, data, false);
        self.fragment = if fin { None } else { Some((kind, utf8)) };
        Ok(())
    }

    /// Queues a Ping, Pong or Close.
    pub(crate) fn control(&mut self, opcode: OpCode, payload: &Bytes) {
        match opcode {
            OpCode::Ping => self.traffic.pings += 1,
            OpCode::Pong => self.traffic.pongs += 1,
            _ => {}
        }
        self.frame(opcode, true, payload, false);
    }

    /// Answers a Ping: its Pong goes out now, or once the backlog drains
    /// (only the newest pending one is kept).
    pub(crate) fn pong(&mut self, data: Bytes) {
        self.pending_pong = Some(data);
        self.queue_pending_pong();
    }

    /// Queues a Close (after any pending Pong); a fragmented message in
    /// progress ends unfinished.
    pub(crate) fn close(&mut self, frame: Option<&CloseFrame>) {
        if let Some(pong) = self.pending_pong.take() {
            self.control(OpCode::Pong, &pong);
        }
        let payload = frame.map_or_else(Bytes::new, CloseFrame::to_payload);
        self.control(OpCode::Close, &payload);
        self.fragment = None;
    }

    /// Drops all output, queued or pending: the transport is abandoned.
    pub(crate) fn discard(&mut self) {
        self.out.discard();
        self.pending_pong = None;
        self.fragment = None;
    }

    /// Drops the fragmented message in progress (the connection failed).
    pub(crate) fn abandon_fragment(&mut self) {
        self.fragment = None;
    }

    /// Queues the pending Pong unless too much output is already waiting.
    fn queue_pending_pong(&mut self) {
        if self.out.len() < PONG_BACKLOG
            && let Some(pong) = self.pending_pong.take()
        {
            self.control(OpCode::Pong, &pong);
        }
    }

    /// Queues `payload` as frames of at most the maximum frame size: the
    /// first with `opcode` and `rsv1`, the rest continuations; only the last
    /// carries `fin`.
    fn split(&mut self, opcode: OpCode, fin: bool, payload: Bytes, rsv1: bool) {
        if payload.len() <= self.max_frame {
            return self.frame(opcode, fin, &payload, rsv1);
        }
        let (mut opcode, mut rsv1, mut rest) = (opcode, rsv1, payload);
        while !rest.is_empty() {
            let piece = rest.split_to(self.max_frame.min(rest.len()));
            self.frame(opcode, fin && rest.is_empty(), &piece, rsv1);
            opcode = OpCode::Continuation;
            rsv1 = false;
        }
    }

    #[cfg(feature = "deflate")]
    fn maybe_compress(&mut self, payload: Bytes, may_compress: bool) -> (Bytes, bool) {
        match self.deflater.as_mut() {
            Some(deflater) if may_compress && payload.len() >= deflater.threshold => {
                let body = Bytes::from(deflater.compress(&payload));
                self.count_compressed(payload.len(), body.len());
                (body, true)
            }
            _ => (payload, false),
        }
    }

    /// Counts a message compressed from `uncompressed` to `compressed` bytes.
    #[cfg(feature = "deflate")]
    fn count_compressed(&mut self, uncompressed: usize, compressed: usize) {
        self.traffic.compressed(uncompressed, compressed, true);
    }

    #[cfg(not(feature = "deflate"))]
    fn maybe_compress(&self, payload: Bytes, _: bool) -> (Bytes, bool) {
        (payload, false)
    }

    /// Queues one frame; a client's is masked with a fresh key.
    fn frame(&mut self, opcode: OpCode, fin: bool, payload: &Bytes, rsv1: bool) {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv1 = rsv1;
        header.mask = self.rng.as_mut().map(|rng| rng.next_u32().to_ne_bytes());
        self.traffic.frames += 1;
        self.out.push_frame(&header, payload);
    }
}

impl DataKind {
    /// The opcode of a message's first frame.
    pub(crate) fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}
