//! The connection: the public, sans-IO API over the frame layer and the
//! close handshake (RFC 6455 §5–§7).

mod input;
mod limit;
mod opening;
mod outgoing;
mod recv;
mod send;
mod shrink;
pub(crate) mod snapshot;
mod state;
mod stats;
mod timer;

/// Where a hub's queued delivery stops counting its payload whole.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) use outgoing::SHARED_INLINE;

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};

pub use outgoing::Outgoing;
pub use snapshot::{SNAPSHOT_VERSION, SnapshotError};
pub use state::{Side, State};
pub use stats::{Stats, Traffic};

use self::input::Input;
pub(crate) use self::input::read_zeroed;
use self::limit::Limiter;
pub(crate) use self::opening::Opening;
use self::opening::Record;
use self::recv::Receiver;
use self::send::Sender;
use self::state::Lifecycle;
use self::stats::RoundTrip;
use self::timer::Timers;
use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::config::Config;
use crate::error::{ConfigError, ProtocolError, SendError};
use crate::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::message::{DataKind, Message};
use crate::prepared::PreparedMessage;

/// Which end of the connection this is. Clients mask what they send and
/// require unmasked input; servers the reverse (RFC 6455 §5.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that sent the opening handshake.
    Client,
    /// The endpoint that accepted it.
    Server,
}

/// A WebSocket connection after the opening handshake, with no I/O of its own.
///
/// The caller moves every byte: what arrives from the transport goes in, what
/// the connection queues goes out. Time goes in the same way. Nothing here
/// blocks, spawns or reads a clock, so the same connection runs over TCP,
/// TLS, an HTTP/2 stream or an in-memory buffer.
///
/// # Methods by group
///
/// - **Input**: [`read_buf`](Self::read_buf) (read straight into it),
///   [`receive`](Self::receive) (copy a slice in), [`receive_eof`](Self::receive_eof),
///   [`handle_timeout`](Self::handle_timeout).
/// - **Pull**: [`next_message`](Self::next_message).
/// - **Commands**: [`send`](Self::send), [`send_fragment`](Self::send_fragment),
///   [`close`](Self::close).
/// - **Output**: [`outgoing`](Self::outgoing), [`wants_write`](Self::wants_write),
///   [`poll_timeout`](Self::poll_timeout).
/// - **State**: [`state`](Self::state), [`close_frame`](Self::close_frame),
///   [`wants_read`](Self::wants_read), [`should_close_transport`](Self::should_close_transport),
///   [`role`](Self::role).
///
/// # Call order
///
/// 1. After construction, call [`handle_timeout`](Self::handle_timeout) with
///    the current time once, so the timers have a starting point.
/// 2. After any input (bytes, EOF, a timeout), call
///    [`next_message`](Self::next_message) until it returns `Ok(None)`.
///    Calling [`handle_timeout`](Self::handle_timeout) after each read keeps
///    the idle and keepalive timers exact.
/// 3. Drain [`outgoing`](Self::outgoing) to the transport whenever
///    [`wants_write`](Self::wants_write) is true (after input too: Pongs and
///    Close echoes are queued automatically).
/// 4. Re-arm a timer to [`poll_timeout`](Self::poll_timeout).
/// 5. Close the transport when [`should_close_transport`](Self::should_close_transport) says so.
///
/// # Automatic replies
///
/// A received Ping is returned as [`Message::Ping`] and its Pong is already
/// queued. While more than 4 KiB of output waits to be written, only the
/// newest pending Pong is kept, so a Ping flood cannot grow memory. A received Close is
/// returned as [`Message::Close`] and its echo is already queued. A protocol
/// error queues a Close with the error's code.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    /// Shared with every connection a builder makes (one allocation, not
    /// one copy per connection: `tests/scale.rs` bounds the idle heap).
    config: Arc<Config>,
    /// Where the connection is in its lifetime; the only place that changes.
    life: Lifecycle,
    /// Received bytes, and how reads are sized.
    input: Input,
    /// Frames from the input: the deframer and message assembler.
    receiver: Receiver,
    /// Frames onto the output: masking, compression, fragments, Pongs.
    sender: Sender,
    timers: Timers,
    /// The round-trip time of timed Pings.
    rtt: RoundTrip,
    /// The first time given to `handle_timeout`.
    since: Option<Instant>,
    /// The Close this end queued.
    close_sent: Option<Box<CloseFrame>>,
    /// What the opening handshake settled, when one made the connection.
    opening: Option<Record>,
}

impl Connection {
    /// A connection in the [`State::Open`] state, with no bytes buffered.
    ///
    /// A client's masking keys come from a generator seeded from the
    /// operating system's entropy (or [`Config::dangerous_mask_seed`]).
    /// `config` is a [`Config`], or an `Arc<Config>` that many connections
    /// share (as the builders do).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `config` cannot work, or the entropy source failed.
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Result<Self, ConfigError> {
        let config = config.into();
        config.check()?;
        let rng = match (role, config.dangerous_mask_seed) {
            (Role::Server, _) => None,
            (Role::Client, Some(seed)) => Some(StdRng::seed_from_u64(seed)),
            (Role::Client, None) => {
                Some(StdRng::try_from_rng(&mut SysRng).map_err(|_| ConfigError::Entropy)?)
            }
        };
        let mut receiver = Receiver::new(
            role == Role::Server,
            config.max_frame_size,
            config.max_message_size,
        );
        receiver.limiter = Limiter::new(&config.rate_limits);
        Ok(Self {
            role,
            receiver,
            sender: Sender::new(rng, config.max_send_frame_size),
            config,
            life: Lifecycle::default(),
            input: Input::default(),
            timers: Timers::default(),
            rtt: RoundTrip::default(),
            since: None,
            close_sent: None,
            opening: None,
        })
    }

    /// Like [`new`](Self::new), with bytes that arrived after the opening
    /// handshake already buffered (a peer may send its first frame at once).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_leftover(
        role: Role,
        config: impl Into<Arc<Config>>,
        leftover: &[u8],
    ) -> Result<Self, ConfigError> {
        let mut conn = Self::new(role, config)?;
        conn.receive(leftover);
        Ok(conn)
    }

    /// Turns on permessage-deflate with the parameters both ends agreed on
    /// in the handshake ([`DeflateConfig::negotiate`] or
    /// [`DeflateConfig::accept`]). Call it right after construction, before
    /// any input or output: from then on RSV1 marks compressed messages, and
    /// data messages of at least the configured threshold are sent compressed.
    /// The level and threshold come from [`Config::deflate`] (or the defaults).
    ///
    /// [`DeflateConfig::negotiate`]: crate::extensions::deflate::DeflateConfig::negotiate
    /// [`DeflateConfig::accept`]: crate::extensions::deflate::DeflateConfig::accept
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub fn set_deflate(&mut self, params: crate::extensions::deflate::DeflateParams) {
        use crate::extensions::deflate::{Deflater, Inflater};
        let settings = self.config.deflate.clone().unwrap_or_default();
        let (ours, theirs) = match self.role {
            Role::Server => (
                (
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                ),
                (
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                ),
            ),
            Role::Client => (
                (
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                ),
                (
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                ),
            ),
        };
        self.sender.set_deflater(Deflater::new(
            settings.level,
            ours.0,
            ours.1,
            settings.threshold,
            settings.pool.clone(),
        ));
        self.receiver
            .set_inflater(Inflater::new(theirs.0, theirs.1, settings.pool));
    }

    /// Records what the opening handshake settled (the handshake drivers
    /// and the `http` upgrade call it).
    pub(crate) fn opened(&mut self, opening: Opening, target: &str) {
        self.opening = Some(Record::new(opening, target));
    }

    // ---- The opening handshake -------------------------------------------

    /// The subprotocol the opening handshake agreed on, if any: the one a
    /// server chose, or a client was answered with.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.opening.as_ref()?.protocol()
    }

    /// The path of the request that opened the connection, without its
    /// query; `None` for a connection no handshake made ([`new`](Self::new)).
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        Some(self.opening.as_ref()?.path())
    }

    /// The query of the request that opened the connection, without the `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.opening.as_ref()?.query()
    }

    /// The value the server's request callback handed on with
    /// [`AcceptOptions::data`](crate::handshake::AcceptOptions::data), if it
    /// is a `T`.
    #[must_use]
    pub fn data<T: Any>(&self) -> Option<&T> {
        let data: &dyn Any = self.opening.as_ref()?.data()?;
        data.downcast_ref()
    }

    /// Takes the value [`data`](Self::data) would show, if it is a `T`;
    /// a value of another type stays.
    pub fn take_data<T: Any>(&mut self) -> Option<T> {
        let slot = self.opening.as_mut()?.data_slot()?;
        if !slot.as_deref()?.is::<T>() {
            return None;
        }
        slot.take()?.downcast().ok().map(|value: Box<T>| *value)
    }

    // ---- Input -------------------------------------------------------------

    /// The input buffer, with spare capacity reserved: read from the
    /// transport straight into it (e.g. `BufMut`-based reads), then call
    /// [`next_message`](Self::next_message).
    ///
    /// Within a frame, the spare capacity is the rest of the frame (and room
    /// for the next frame's header), so the rest of a payload of up to 1 MiB
    /// arrives in one allocation and is handed out without a copy. Past that
    /// it grows with the bytes that have arrived (at most 1 MiB, or as much
    /// again as is buffered, ahead of them), never with a length a peer
    /// merely announces. Between frames it starts at 2 KiB and doubles (up
    /// to 256 KiB) whenever a read filled all of it, so a peer that
    /// pipelines many frames is read in few system calls while an idle
    /// connection keeps a small buffer. Once the message has been handed out
    /// and no output is waiting, a buffer grown past 512 KiB for a large
    /// frame is let go (if nothing else holds it), and so are the written
    /// payloads' allocations kept to read into while the connection is busy.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        let missing = self.receiver.frame_bytes_missing(self.input.buf.len());
        let out = self.sender.queue();
        let idle = !out.has_remaining();
        self.input.read_buf(missing, idle, out)
    }

    /// Whether the input buffer was given back while idle: the adapters then
    /// read into a small buffer of their own ([`fill_from`](Self::fill_from))
    /// and the input buffer comes back only when bytes do.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn is_input_released(&self) -> bool {
        self.input.is_released()
    }

    /// Takes bytes read elsewhere into the input (allocating the buffer);
    /// `more`: the read filled all it was offered, more may be waiting.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn fill_from(&mut self, bytes: &[u8], more: bool) {
        if !bytes.is_empty() && !self.input.fill_released(bytes, more) {
            self.read_buf().extend_from_slice(bytes);
        }
    }

    /// Reads into initialised memory (for `std::io::Read`-style transports):
    /// `read` is offered part of the room [`read_buf`](Self::read_buf)
    /// reserves, zeroed, and what it reports as written is kept.
    pub(crate) fn read_into<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.read_buf();
        self.input.read_into(read)
    }

    /// Copies `data` into the input buffer; then call
    /// [`next_message`](Self::next_message).
    ///
    /// Once the connection is done reading (a Close arrived, it failed, or
    /// it closed) input is dropped, so a transport that keeps delivering
    /// cannot grow memory.
    pub fn receive(&mut self, data: &[u8]) {
        if self.life.is_done_reading() {
            self.input.skip(data.len());
        } else {
            self.input.buf.extend_from_slice(data);
        }
    }

    /// The transport reached end of input. Then call
    /// [`next_message`](Self::next_message): it returns the messages still
    /// buffered, then [`ProtocolError::AbnormalClosure`] unless the close
    /// handshake had completed.
    pub fn receive_eof(&mut self) {
        self.life.on_eof();
    }

    /// Tells the connection the time, and fires what is due: a keepalive Ping
    /// is queued, an idle peer fails the connection with
    /// [`ProtocolError::IdleTimeout`] (returned by the next
    /// [`next_message`](Self::next_message)), an unanswered Close stops being
    /// waited for. Then drain [`outgoing`](Self::outgoing) and re-arm
    /// [`poll_timeout`](Self::poll_timeout).
    ///
    /// It may be called at any time; calling it after each read keeps the
    /// idle and keepalive timers exact (input is credited at the next call).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.since.get_or_insert(now);
        if let Some(limiter) = &mut self.receiver.limiter {
            limiter.refill(now);
        }
        let rx_total = self.input.total();
        self.timers.advance(
            now,
            rx_total,
            self.config.keepalive_interval,
            self.config.idle_timeout,
            self.config.close_timeout,
        );
        if !self.life.times_input() {
            self.timers.keepalive = None;
            self.timers.idle = None;
        }
        if Timers::take_due(&mut self.timers.idle, now) {
            self.fail(ProtocolError::IdleTimeout);
        }
        if Timers::take_due(&mut self.timers.keepalive, now) && self.life.state() == State::Open {
            let payload = self.rtt.ping(now);
            self.sender
                .control(OpCode::Ping, &Bytes::copy_from_slice(&payload));
            self.timers.keepalive = self
                .config
                .keepalive_interval
                .and_then(|interval| now.checked_add(interval));
        }
        if Timers::take_due(&mut self.timers.close, now) {
            self.life.on_close_wait_over();
            // The close took its time: what the peer did not take is dropped.
            self.sender.discard();
        }
        let (written, waiting) = (self.sender.written(), self.sender.wants_write());
        if self
            .timers
            .check_write(now, written, waiting, self.config.write_timeout)
        {
            self.fail(ProtocolError::WriteTimeout);
            self.sender.discard();
        }
        // A Close queued just now (by an idle failure) is waited for from now.
        self.timers.arm_close(now, self.config.close_timeout);
        self.check_shrink(now);
    }

    /// Whether the connection can use more input: false once the transport
    /// ended or [is finished](Self::is_finished) (input that arrives after
    /// the connection is done reading is read and discarded), while a whole frame's
    /// worth of input is buffered and not yet pulled, and while a
    /// [rate limit](Config::rate_limits) pauses input (until
    /// [`poll_timeout`](Self::poll_timeout)).
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.life.wants_read(self.role, self.wants_write())
            && self.input.buf.len() < self.config.frame_limit().saturating_add(MAX_HEADER_LEN)
            && !self.receiver.is_paused()
    }

    /// Whether a [rate limit](Config::rate_limits) holds input back until
    /// [`poll_timeout`](Self::poll_timeout).
    #[must_use]
    pub fn is_input_paused(&self) -> bool {
        self.receiver.is_paused()
    }

    // ---- Pull --------------------------------------------------------------

    /// The next message from the buffered input, or `Ok(None)` when more
    /// bytes are needed (or the connection is closed).
    ///
    /// Call it until `Ok(None)` after every input, then drain
    /// [`outgoing`](Self::outgoing): a Ping's Pong, a Close's echo or a
    /// failure's Close may have been queued.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] if the peer broke the protocol, went idle, or the
    /// transport ended without a close handshake. The error is sticky: every
    /// later call returns it again, and the Close frame it queued still drains.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtocolError> {
        if self.life.is_done_reading() {
            // Nothing may follow a Close (§5.5.1) or a failure; anything that does is dropped.
            self.input.discard();
            return self.life.failure().map_or(Ok(None), Err);
        }
        let before = self.input.buf.len();
        let polled = self.receiver.poll(&mut self.input.buf);
        self.input.consumed_from(before);
        match &polled {
            // Data needs nothing more: counted and handed on.
            Ok(Some(Message::Text(text))) => {
                self.receiver.traffic.message(DataKind::Text, text.len());
                polled
            }
            Ok(Some(Message::Binary(data))) => {
                self.receiver.traffic.message(DataKind::Binary, data.len());
                polled
            }
            Ok(Some(Message::Pong(data))) => {
                self.receiver.traffic.pongs += 1;
                self.rtt.on_pong(data, self.timers.now);
                polled
            }
            Ok(Some(Message::Ping(data))) => {
                self.receiver.traffic.pings += 1;
                if self.config.auto_pong && self.life.may_send() {
                    self.sender.pong(data.clone());
                }
                polled
            }
            Ok(Some(Message::Close(frame))) => {
                self.on_close(frame.as_ref());
                polled
            }
            // Frames held back by a rate limit are still delivered first.
            Ok(None) if self.life.eof() && !self.receiver.is_paused() => {
                Err(self.fail(ProtocolError::AbnormalClosure))
            }
            Ok(None) => polled,
            Err(error) => Err(self.fail(*error)),
        }
    }

    /// The peer's Close arrived: record it, answer it, stop reading.
    fn on_close(&mut self, frame: Option<&CloseFrame>) {
        if self.life.on_received_close(frame) {
            // Echo the code (§5.5.1); an empty Close is echoed empty.
            let echo = frame.map(|f| CloseFrame::new(f.code, ""));
            self.queue_close(echo.as_ref());
        }
        self.input.discard();
    }

    /// Records a failure, queues its Close, and returns it.
    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.sender.abandon_fragment();
        if self.life.on_failure(error) {
            let frame = CloseFrame::new(error.close_code(), error.close_reason());
            self.queue_close(Some(&frame));
        } else if self.config.close_timeout.is_some() && self.timers.close.is_none() {
            // The close begins here even with no Close to send: output
            // still queued gets the close timeout to leave, no longer
            // (fuzz target `connection_ending`).
            self.timers.close_pending = true;
        }
        self.input.discard();
        error
    }

    // ---- Commands ----------------------------------------------------------

    /// Queues a whole message. Then drain [`outgoing`](Self::outgoing).
    ///
    /// Data messages are split into frames of
    /// [`Config::max_send_frame_size`] if set. A client masks each frame with
    /// a fresh key; a server's large payloads are queued without a copy.
    /// Sending [`Message::Close`] is [`close`](Self::close).
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] hands the message back when queued output is at
    /// [`Config::max_write_buffer`]; drain and retry. [`SendError::Closed`]
    /// after a Close was sent or the connection failed. Also the control
    /// frame and fragmentation rules in [`SendError`]. On error nothing was queued.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.send_message(message, true)
    }

    fn send_message(&mut self, message: Message, may_compress: bool) -> Result<(), SendError> {
        if !self.life.may_send() {
            return Err(SendError::Closed);
        }
        match &message {
            Message::Close(frame) => return self.send_close(frame.as_ref()),
            Message::Ping(data) | Message::Pong(data) if data.len() > MAX_CONTROL_PAYLOAD => {
                return Err(SendError::ControlTooLong);
            }
            Message::Text(_) | Message::Binary(_) if self.sender.is_fragmenting() => {
                return Err(SendError::FragmentInProgress);
            }
            _ => {}
        }
        if self.is_write_buffer_full() {
            return Err(SendError::Full(message));
        }
        // One call for both data kinds keeps this function small: with a
        // call per kind it saved three more registers on every message
        // (benches/callgrind.sh, the send path).
        let (kind, payload) = match message {
            Message::Text(text) => (DataKind::Text, text.into_bytes()),
            Message::Binary(data) => (DataKind::Binary, data),
            Message::Ping(data) => {
                self.sender.control(OpCode::Ping, &data);
                return Ok(());
            }
            Message::Pong(data) => {
                self.sender.control(OpCode::Pong, &data);
                return Ok(());
            }
            Message::Close(_) => return Ok(()),
        };
        self.sender.data(kind, payload, may_compress);
        Ok(())
    }

    /// Queues a [`PreparedMessage`]: on a server connection its shared frame
    /// by reference (no copy of the payload, no allocation), or one
    /// compressed encoding shared with every connection of the same
    /// fresh-context deflate settings; otherwise frames made from its shared
    /// payload (masked for a client, split at
    /// [`Config::max_send_frame_size`], compressed by this connection's own
    /// compressor when it keeps its context).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`SendError::Full`] hands back the message
    /// as a [`Message`] (the prepared one is still the caller's to retry).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        if !self.life.may_send() {
            return Err(SendError::Closed);
        }
        if self.sender.is_fragmenting() {
            return Err(SendError::FragmentInProgress);
        }
        if self.is_write_buffer_full() {
            return Err(SendError::Full(message.to_message()));
        }
        self.sender.prepared(message);
        Ok(())
    }

    /// Queues a Ping whose Pong the connection times, sent at `now`: when
    /// the Pong arrives, [`Stats::rtt`] and [`Stats::smoothed_rtt`] take
    /// the sample (measured to the time last given to
    /// [`handle_timeout`](Self::handle_timeout), which the adapters give
    /// after every read while a timed Ping waits). Keepalive Pings are timed
    /// the same way. Its payload is the connection's own (8 bytes); only the
    /// latest timed Ping is waited for. Then drain [`outgoing`](Self::outgoing).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send) for a Ping.
    pub fn ping(&mut self, now: Instant) -> Result<(), SendError> {
        if !self.life.may_send() {
            return Err(SendError::Closed);
        }
        if self.is_write_buffer_full() {
            return Err(SendError::Full(Message::Ping(Bytes::new())));
        }
        let payload = self.rtt.ping(now);
        self.sender
            .control(OpCode::Ping, &Bytes::copy_from_slice(&payload));
        Ok(())
    }

    /// Like [`send`](Self::send), but a data message is never compressed,
    /// even with permessage-deflate on (e.g. data that is already compressed).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), SendError> {
        self.send_message(message, false)
    }

    /// Queues one fragment of a message being streamed (§5.4), itself split
    /// into frames of [`Config::max_send_frame_size`] if set. Fragments
    /// are never compressed. The first
    /// call starts a message of `kind`; later calls continue it; `fin` ends
    /// it. Control messages may be sent between fragments.
    ///
    /// Text fragments may split a code point; the text as a whole is checked
    /// as it goes, so invalid UTF-8 is refused before it is sent.
    ///
    /// # Errors
    ///
    /// [`SendError::FragmentKindMismatch`] if `kind` differs from the message
    /// in progress, [`SendError::InvalidUtf8`] for text that cannot be UTF-8,
    /// [`SendError::FullFragment`] (handing the bytes back) and
    /// [`SendError::Closed`] as for [`send`](Self::send). On error nothing
    /// was queued and the message in progress is unchanged.
    pub fn send_fragment(
        &mut self,
        kind: DataKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), SendError> {
        if !self.life.may_send() {
            return Err(SendError::Closed);
        }
        let room = !self.is_write_buffer_full();
        self.sender.fragment(kind, data, fin, room)
    }

    /// Starts the close handshake (§7.1.2): queues a Close frame with `code`
    /// and `reason`. Messages keep arriving until the peer's Close, which
    /// [`next_message`](Self::next_message) returns; then the state is
    /// [`State::Closed`]. Then drain [`outgoing`](Self::outgoing).
    ///
    /// # Errors
    ///
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent,
    /// [`SendError::ReasonTooLong`] past 123 bytes, [`SendError::Closed`] if
    /// a Close was already sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !self.life.may_send() {
            return Err(SendError::Closed);
        }
        self.send_close(Some(&CloseFrame::new(code, reason)))
    }

    fn send_close(&mut self, frame: Option<&CloseFrame>) -> Result<(), SendError> {
        if let Some(frame) = frame {
            if !frame.code.is_sendable() {
                return Err(SendError::InvalidCloseCode(frame.code.0));
            }
            if frame.reason.len() > MAX_REASON_LEN {
                return Err(SendError::ReasonTooLong);
            }
        }
        self.queue_close(frame);
        Ok(())
    }

    /// Queues a Close (after any pending Pong) and moves the state on.
    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        self.sender.close(frame);
        // Boxed: sent once, and every connection carries the slot.
        self.close_sent =
            Some(Box::new(frame.cloned().unwrap_or_else(|| {
                CloseFrame::new(CloseCode::NO_STATUS_RECEIVED, "")
            })));
        self.life.on_sent_close();
        if self.config.close_timeout.is_some() {
            self.timers.close_pending = true;
        }
    }

    // ---- Output ------------------------------------------------------------

    /// The bytes to write to the transport, as a [`bytes::Buf`]: write
    /// [`chunk`](Buf::chunk) or [`chunks_vectored`](Buf::chunks_vectored),
    /// then [`advance`](Buf::advance) by what was written.
    ///
    /// A pending automatic Pong joins the queue here once the backlog has
    /// drained.
    pub fn outgoing(&mut self) -> &mut Outgoing {
        self.sender.outgoing()
    }

    /// The error the connection failed with, if it did.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn failure(&self) -> Option<ProtocolError> {
        self.life.failure()
    }

    /// Drops all queued output: the transport takes no more (a write failed).
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn discard_output(&mut self) {
        self.sender.discard();
    }

    /// Output bytes dropped unwritten, in total: at the close or write
    /// timeout, or when a write failed.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn dropped_output(&self) -> u64 {
        self.sender.dropped()
    }

    /// Bytes queued for the transport (a pending Pong not counted).
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn queued_output(&self) -> usize {
        self.sender.queued()
    }

    /// Whether there are bytes to write (see [`outgoing`](Self::outgoing)).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.sender.wants_write()
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has work
    /// to do (a timer, or input paused by a rate limit resuming), or `None`
    /// when there is none. A time already past means "call it now".
    #[must_use = "re-arm the timer to this deadline"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resume = self.receiver.limiter.as_ref().and_then(|l| l.resume_at());
        [
            self.timers.earliest(),
            resume,
            self.shrink_deadline(),
            self.write_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The write deadline, or, while output waits and none is armed
    /// (queued since the last `handle_timeout`), one timeout after the last
    /// known time, when `handle_timeout` arms it.
    fn write_deadline(&self) -> Option<Instant> {
        match (self.timers.write, self.config.write_timeout) {
            (Some(at), _) => Some(at),
            (None, Some(timeout)) if self.sender.wants_write() => {
                self.timers.now.and_then(|now| now.checked_add(timeout))
            }
            (None, _) => None,
        }
    }

    // ---- State -------------------------------------------------------------

    /// Where the connection is in its lifetime.
    #[must_use]
    pub fn state(&self) -> State {
        self.life.state()
    }

    /// The Close the peer sent: its code and reason, 1005 if it was empty,
    /// or 1006 if the transport ended (or the wait timed out) without one.
    /// `None` while no Close has been received.
    #[must_use]
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.life.peer_close()
    }

    /// Whether to close the transport's write side now (TCP `shutdown`,
    /// TLS `close_notify`): all output is written, and the connection
    /// failed, the transport ended, or the close handshake is over. The
    /// server closes first (§7.1.1); a client waits for the server to do
    /// so, up to [`Config::close_timeout`].
    ///
    /// Then keep reading until [`is_finished`](Self::is_finished): input is
    /// discarded, and a transport closed with unread input would answer the
    /// peer with a reset that can destroy the Close still on its way (the
    /// lingering close; `tests/endings.rs`).
    #[must_use]
    pub fn should_close_transport(&self) -> bool {
        self.life
            .should_close_transport(self.role, self.wants_write())
    }

    /// Whether to drop the transport now: it [should
    /// close](Self::should_close_transport) and the peer ended its side, or
    /// [`Config::close_timeout`] has passed since the close began (output
    /// the peer did not take is dropped then), or the connection failed
    /// with nothing left to say ([`ProtocolError::WriteTimeout`], a
    /// transport that ended). No I/O is due after it.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.life.is_finished(self.role, self.wants_write())
    }

    /// The configuration this connection runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether queued output has reached [`Config::max_write_buffer`]:
    /// [`send`](Self::send) would hand a data message back. Drain
    /// [`outgoing`](Self::outgoing) first.
    #[must_use]
    pub fn is_write_buffer_full(&self) -> bool {
        self.sender.queued() >= self.config.max_write_buffer
    }

    /// Whether to write queued output out before queueing a message of
    /// `len` payload bytes (0 when unknown): the backpressure the adapters
    /// wait on ([`send`](Self::send) itself only refuses at
    /// [`Config::max_write_buffer`], see
    /// [`is_write_buffer_full`](Self::is_write_buffer_full)). A message within
    /// [`Config::write_high_water`] waits while the queue is past the mark; a
    /// larger one waits for the queue to empty, so a connection echoing large
    /// messages holds one being written and one being read, not more. Either
    /// waits while the queue is full.
    #[must_use]
    pub fn is_write_backlogged(&self, len: usize) -> bool {
        let queued = self.sender.queued();
        let past = if len > self.config.write_high_water {
            queued > 0
        } else {
            queued > self.config.write_high_water
        };
        past || self.is_write_buffer_full()
    }

    /// Whether this is the client or the server end.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The connection's counters: messages, frames and bytes each way,
    /// compression, the closes, the error, and the Ping round-trip time.
    /// Counting costs a few additions per message; this call copies them
    /// (and clones the Close frames).
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            received: Traffic {
                wire_bytes: self.input.total(),
                ..self.receiver.traffic
            },
            sent: Traffic {
                wire_bytes: self.sender.written(),
                ..self.sender.traffic
            },
            queued_output: self.sender.queued(),
            close_received: self.life.peer_close().cloned(),
            close_sent: self.close_sent.as_deref().cloned(),
            error: self.life.failure(),
            connected_since: self.since,
            rtt: self.rtt.last,
            smoothed_rtt: self.rtt.smoothed,
            rtt_samples: self.rtt.samples,
            rate_limited: self.receiver.limiter.as_ref().map_or(0, |l| l.actions),
        }
    }

    /// Whether the adapters should give the time after every read: a timer
    /// is armed, a timed Ping waits for its Pong, or rate limits refill.
    pub(crate) fn wants_clock(&self) -> bool {
        self.timers.earliest().is_some() || self.rtt.is_waiting() || self.receiver.limiter.is_some()
    }
}
