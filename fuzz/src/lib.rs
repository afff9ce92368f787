//! Shared drivers for the fuzz targets. Everything here goes through the
//! crate's public API only.

pub mod admission;

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::{Buf, Bytes};
use rfc6455::connection::DataKind;
use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
use rfc6455::frame::{FrameHeader, OpCode, apply_mask};
use rfc6455::{
    CloseCode, Config, Connection, Message, OverLimit, RateLimit, RateLimits, Role, SendError,
    SnapshotError, State,
};

/// A configuration small enough that limits are reached by fuzz inputs.
#[derive(Arbitrary, Debug, Clone)]
pub struct FuzzConfig {
    max_frame_size: u16,
    extra_message_size: u16,
    max_write_buffer: u16,
    max_send_frame_size: Option<u8>,
    auto_pong: bool,
    keepalive_ms: Option<u8>,
    idle_ms: Option<u8>,
    close_ms: Option<u8>,
    write_ms: Option<u8>,
    deflate: Option<FuzzDeflate>,
    rate_limits: Option<FuzzLimits>,
}

/// Rate limits small enough to be reached: (per second, burst) per bucket.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct FuzzLimits {
    messages: Option<(u8, u8)>,
    wire_bytes: Option<(u16, u16)>,
    inflated_bytes: Option<(u16, u16)>,
    close: bool,
}

impl FuzzLimits {
    /// The limits (zero rates and bursts kept: the connection must refuse them).
    fn limits(self) -> RateLimits {
        let limit = |(rate, burst): (u16, u16)| RateLimit::new(u64::from(rate), u64::from(burst));
        RateLimits::default()
            .messages(self.messages.map(|(r, b)| limit((r.into(), b.into()))))
            .wire_bytes(self.wire_bytes.map(limit))
            .inflated_bytes(self.inflated_bytes.map(limit))
            .action(if self.close {
                OverLimit::Close
            } else {
                OverLimit::Pause
            })
    }
}

/// Negotiated permessage-deflate parameters, and our own level and threshold.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct FuzzDeflate {
    level: u8,
    threshold: u8,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
}

impl FuzzDeflate {
    /// The agreed parameters (window bits folded into 8–15).
    pub fn params(self) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: 8 + self.server_max_window_bits % 8,
            client_max_window_bits: 8 + self.client_max_window_bits % 8,
        }
    }

    fn config(self) -> DeflateConfig {
        DeflateConfig::default()
            .level(u32::from(self.level % 10))
            .threshold(usize::from(self.threshold))
    }
}

impl FuzzConfig {
    /// The configuration (limits from a few bytes to 64 KiB, timers of a few ms).
    pub fn config(&self) -> Config {
        let ms = |value: Option<u8>| value.map(|v| Duration::from_millis(u64::from(v) + 1));
        let max_frame_size = usize::from(self.max_frame_size).max(1);
        Config::default()
            .max_frame_size(max_frame_size)
            .max_message_size(max_frame_size + usize::from(self.extra_message_size))
            .max_write_buffer(usize::from(self.max_write_buffer).max(1))
            .max_send_frame_size(self.max_send_frame_size.map(|n| usize::from(n).max(1)))
            .auto_pong(self.auto_pong)
            .keepalive_interval(ms(self.keepalive_ms))
            .idle_timeout(ms(self.idle_ms))
            .close_timeout(ms(self.close_ms))
            .write_timeout(ms(self.write_ms))
            .dangerous_mask_seed(Some(7))
            .deflate(self.deflate.map(FuzzDeflate::config))
            .rate_limits(self.rate_limits.map(FuzzLimits::limits).unwrap_or_default())
    }
}

/// One step of a fuzzed conversation.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Queue a well-formed-looking frame from the peer (any opcode nibble,
    /// FIN, RSV bits; masked or not).
    PeerFrame {
        b0: u8,
        mask: Option<[u8; 4]>,
        payload: Vec<u8>,
    },
    /// Queue raw bytes from the peer.
    PeerRaw(Vec<u8>),
    /// Deliver up to this many queued peer bytes (an arbitrary split).
    Deliver(u16),
    /// Deliver through `read_buf` instead of `receive`.
    DeliverViaReadBuf(u16),
    /// The transport ended.
    Eof,
    /// Pull every available message.
    Pull,
    /// Send a whole message.
    Send { binary: bool, data: Vec<u8> },
    /// Send a message without compression.
    SendUncompressed { binary: bool, data: Vec<u8> },
    /// Stream one fragment.
    SendFragment {
        binary: bool,
        data: Vec<u8>,
        fin: bool,
    },
    /// Send a Ping with this payload.
    Ping(Vec<u8>),
    /// Send a Pong with this payload.
    Pong(Vec<u8>),
    /// Start the close handshake.
    Close { code: u16, reason: String },
    /// Let time pass and fire timers.
    Advance(u16),
    /// Write at most this many output bytes to the peer.
    Drain(u16),
    /// Send a timed Ping.
    TimedPing,
    /// Freeze the connection and carry on with its thawed snapshot (when
    /// it may be frozen): every check holds across it.
    Freeze,
}

/// A fuzzed conversation: who we are, how we are configured, what happens.
#[derive(Arbitrary, Debug)]
pub struct Conversation {
    pub config: FuzzConfig,
    pub ops: Vec<Op>,
}

/// What we successfully sent: the messages the peer must see, in order.
#[derive(Default)]
struct Sent {
    messages: Vec<(bool, Vec<u8>)>,
    partial: Option<(bool, Vec<u8>)>,
    /// A timeout dropped queued output (`Config::close_timeout`,
    /// `Config::write_timeout`): the wire may end inside a frame, and only
    /// a prefix of the messages arrives.
    abandoned: bool,
}

/// Runs a conversation for `role` and checks the invariants:
/// no panic; the output parses, in the opposite role, as valid frames that
/// carry exactly the data messages we sent; nothing follows our Close.
pub fn run_conversation(role: Role, conversation: Conversation) {
    run(role, conversation, false);
}

/// Runs a conversation as an adapter does, the timers fired after every
/// step, and checks how the connection ends besides
/// [`run_conversation`]'s invariants: once finished it stays finished, has
/// nothing to write and wants no input; a shut write side stays shut; and
/// no connection outlives `close_timeout` after its close began (our Close,
/// the peer's, or a failure), whatever the peer does.
pub fn run_ending(role: Role, conversation: Conversation) {
    run(role, conversation, true);
}

/// What the ending oracle has seen so far.
struct Ending {
    close_timeout: Option<Duration>,
    /// When the connection left `State::Open` (its close wait is armed
    /// from the same `handle_timeout`).
    began: Option<Instant>,
    finished: bool,
    shut: bool,
}

impl Ending {
    fn check(&mut self, conn: &mut Connection, now: Instant) {
        if self.began.is_none() && conn.state() != State::Open {
            self.began = Some(now);
        }
        let finished = conn.is_finished();
        assert!(
            finished || !self.finished,
            "a finished connection came back"
        );
        let shut = conn.should_close_transport();
        assert!(shut || !self.shut, "a shut write side was asked to write");
        self.finished = finished;
        self.shut = shut;
        if shut {
            assert!(!conn.outgoing().has_remaining(), "output left at shutdown");
        }
        if finished {
            assert!(!conn.wants_read(), "a finished connection wants input");
        }
        if let (Some(began), Some(limit)) = (self.began, self.close_timeout)
            && now >= began + limit
        {
            assert!(finished, "the connection outlived close_timeout");
        }
    }
}

/// Fires the timers at `now`; notes when they dropped queued output (the
/// close or write timeout: the transport is abandoned, possibly inside a
/// frame).
fn fire_timers(conn: &mut Connection, now: Instant, start: Instant, sent: &mut Sent) {
    let queued = conn.stats().queued_output;
    conn.handle_timeout(now);
    if queued > 0 && conn.stats().queued_output == 0 {
        sent.abandoned = true;
    }
    // A deadline is never in the past of a call that just fired.
    if let Some(deadline) = conn.poll_timeout() {
        assert!(deadline >= start, "deadline before the start");
    }
}

fn run(role: Role, conversation: Conversation, adapter: bool) {
    let config = conversation.config.config();
    let Ok(mut conn) = Connection::new(role, config.clone()) else {
        return;
    };
    let params = conversation.config.deflate.map(FuzzDeflate::params);
    if let Some(params) = params {
        conn.set_deflate(params);
    }
    let start = Instant::now();
    let mut now = start;
    let mut peer_bytes: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let mut sent = Sent::default();
    let mut received = 0usize;
    let mut ending = adapter.then_some(Ending {
        close_timeout: config.close_timeout,
        began: None,
        finished: false,
        shut: false,
    });
    if ending.is_some() {
        conn.handle_timeout(now);
    }

    for op in conversation.ops {
        match op {
            Op::PeerFrame { b0, mask, payload } => {
                peer_bytes.extend_from_slice(&encode_raw(b0, mask, &payload));
            }
            Op::PeerRaw(bytes) => peer_bytes.extend_from_slice(&bytes),
            Op::Deliver(n) => {
                let n = usize::from(n).min(peer_bytes.len());
                conn.receive(&peer_bytes[..n]);
                peer_bytes.drain(..n);
                received += pull_all(&mut conn);
            }
            Op::DeliverViaReadBuf(n) => {
                let n = usize::from(n).min(peer_bytes.len());
                conn.read_buf().extend_from_slice(&peer_bytes[..n]);
                peer_bytes.drain(..n);
                received += pull_all(&mut conn);
            }
            Op::Eof => {
                conn.receive_eof();
                received += pull_all(&mut conn);
            }
            Op::Pull => received += pull_all(&mut conn),
            Op::Send { binary, data } => {
                let message = data_message(binary, &data);
                let payload = message.payload().to_vec();
                let result = conn.send(message);
                record_send(&mut sent, binary, payload, true, &result);
            }
            Op::SendUncompressed { binary, data } => {
                let message = data_message(binary, &data);
                let payload = message.payload().to_vec();
                let result = conn.send_uncompressed(message);
                record_send(&mut sent, binary, payload, true, &result);
            }
            Op::SendFragment { binary, data, fin } => {
                let kind = if binary {
                    DataKind::Binary
                } else {
                    DataKind::Text
                };
                let result = conn.send_fragment(kind, Bytes::from(data.clone()), fin);
                record_send(&mut sent, binary, data, fin, &result);
            }
            Op::Ping(data) => {
                let len = data.len();
                let result = conn.send(Message::Ping(data.into()));
                assert!(
                    len <= 125 || result.is_err(),
                    "a Ping over 125 bytes was taken"
                );
            }
            Op::Pong(data) => {
                let _ = conn.send(Message::Pong(data.into()));
            }
            Op::Close { code, reason } => {
                let _ = conn.close(CloseCode(code), &reason);
            }
            Op::TimedPing => {
                let _ = conn.ping(now);
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                fire_timers(&mut conn, now, start, &mut sent);
                received += pull_all(&mut conn);
            }
            Op::Drain(n) => drain(&mut conn, &mut wire, usize::from(n)),
            Op::Freeze => {
                let can = conn.can_freeze();
                match conn.freeze(now) {
                    Ok(snapshot) => {
                        assert_eq!(can, Ok(()), "can_freeze refused what froze");
                        conn = Connection::thaw(&snapshot, config.clone(), now)
                            .expect("a connection's own snapshot thaws");
                    }
                    // Output is the one refusal `can_freeze` leaves out.
                    Err(SnapshotError::OutputPending) => assert_eq!(can, Ok(())),
                    Err(refused) => assert_eq!(can, Err(refused), "can_freeze and freeze differ"),
                }
            }
        }
        if let Some(ending) = &mut ending {
            fire_timers(&mut conn, now, start, &mut sent);
            ending.check(&mut conn, now);
        }
        assert!(received <= 1 << 20, "more messages than input could carry");
    }
    drain(&mut conn, &mut wire, usize::MAX);
    if let Some(ending) = &mut ending {
        // The peer took everything; once the close timeout has passed
        // since the close began, the connection is over.
        fire_timers(&mut conn, now, start, &mut sent);
        ending.check(&mut conn, now);
        if let (Some(began), Some(limit)) = (ending.began, ending.close_timeout) {
            now = now.max(began + limit);
            fire_timers(&mut conn, now, start, &mut sent);
            ending.check(&mut conn, now);
        }
    }
    check_wire(role, &config, params, &wire, &sent);
}

fn data_message(binary: bool, data: &[u8]) -> Message {
    if binary {
        Message::binary(data.to_vec())
    } else {
        Message::text(String::from_utf8_lossy(data).into_owned())
    }
}

/// Records a data frame the connection took, byte for byte as it took it: a
/// text fragment may end inside a code point the next one completes, so
/// fragments are never converted one by one.
fn record_send(
    sent: &mut Sent,
    binary: bool,
    data: Vec<u8>,
    fin: bool,
    result: &Result<(), SendError>,
) {
    if result.is_err() {
        return;
    }
    let (kind, mut whole) = sent.partial.take().unwrap_or((binary, Vec::new()));
    assert_eq!(kind, binary, "a fragment of another kind was taken");
    whole.extend_from_slice(&data);
    if fin {
        sent.messages.push((kind, whole));
    } else {
        sent.partial = Some((kind, whole));
    }
}

/// Pulls until `Ok(None)` or an error; the error must be sticky.
fn pull_all(conn: &mut Connection) -> usize {
    let mut count = 0;
    loop {
        match conn.next_message() {
            Ok(Some(_)) => count += 1,
            Ok(None) => return count,
            Err(error) => {
                assert_eq!(conn.next_message(), Err(error), "errors are sticky");
                return count;
            }
        }
    }
}

/// Writes at most `limit` bytes of output to `wire`.
fn drain(conn: &mut Connection, wire: &mut Vec<u8>, limit: usize) {
    let out = conn.outgoing();
    let mut left = limit;
    while out.has_remaining() && left > 0 {
        let chunk = out.chunk();
        assert!(!chunk.is_empty(), "an empty chunk with bytes remaining");
        let n = chunk.len().min(left);
        wire.extend_from_slice(&chunk[..n]);
        out.advance(n);
        left -= n;
    }
}

/// Encodes a frame with any first byte, masked if `mask` is given.
pub fn encode_raw(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let opcode = OpCode::try_from(b0 & 0x0f).unwrap_or(OpCode::Binary);
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.mask = mask;
    let mut wire = Vec::with_capacity(header.encoded_len() + payload.len());
    header.encode_into(&mut wire);
    wire[0] = b0;
    let start = wire.len();
    wire.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut wire[start..], key, 0);
    }
    wire
}

/// Checks everything we emitted: frame by frame, nothing after a Close; then
/// through a connection in the opposite role, which must find no fault and
/// deliver exactly the data messages we sent.
fn check_wire(
    role: Role,
    config: &Config,
    params: Option<DeflateParams>,
    wire: &[u8],
    sent: &Sent,
) {
    let mut rest = wire;
    let mut closed = false;
    let mut whole = wire.len();
    while !rest.is_empty() {
        assert!(!closed, "bytes after our Close: {rest:02x?}");
        let (header, len) = match FrameHeader::parse(rest) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if sent.abandoned => {
                whole = wire.len() - rest.len();
                break;
            }
            Ok(None) => panic!("our output ends inside a frame header"),
            Err(error) => panic!("our output has a bad frame header: {error}"),
        };
        assert_eq!(
            header.mask.is_some(),
            role == Role::Client,
            "clients mask, servers do not"
        );
        let total = len as u64 + header.payload_len;
        if sent.abandoned && total > rest.len() as u64 {
            whole = wire.len() - rest.len();
            break;
        }
        assert!(total <= rest.len() as u64, "our output ends inside a frame");
        if header.opcode.is_control() {
            assert!(header.payload_len <= 125 && header.fin, "bad control frame");
        } else if let Some(limit) = config.max_send_frame_size {
            assert!(
                header.payload_len <= limit as u64,
                "frame over max_send_frame_size"
            );
        }
        closed |= header.opcode == OpCode::Close;
        rest = &rest[total as usize..];
    }

    let peer_role = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut peer = Connection::new(
        peer_role,
        Config::default()
            .max_frame_size(usize::MAX >> 1)
            .max_message_size(usize::MAX >> 1),
    )
    .expect("a permissive config is valid");
    if let Some(params) = params {
        peer.set_deflate(params);
    }
    peer.receive(&wire[..whole]);
    let mut data = Vec::new();
    loop {
        match peer.next_message() {
            Ok(Some(Message::Text(text))) => data.push((false, text.as_bytes().to_vec())),
            Ok(Some(Message::Binary(bytes))) => data.push((true, bytes.to_vec())),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(error) => panic!("our own output fails the peer: {error}"),
        }
    }
    if sent.abandoned {
        assert!(data.len() <= sent.messages.len(), "messages invented");
    } else {
        assert_eq!(data.len(), sent.messages.len(), "messages lost or invented");
    }
    for (got, want) in data.iter().zip(&sent.messages) {
        assert!(got == want, "a message changed on the way");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A code point split across two text fragments (0xEA | 0x9C 0x9E is
    // U+A71E) is valid and must arrive whole: the oracle records fragments
    // byte for byte, never converting each on its own.
    #[test]
    fn a_code_point_split_across_fragments_arrives_whole() {
        let config = FuzzConfig {
            max_frame_size: 1024,
            extra_message_size: 0,
            max_write_buffer: 4096,
            max_send_frame_size: None,
            auto_pong: true,
            keepalive_ms: None,
            idle_ms: None,
            close_ms: None,
            write_ms: None,
            deflate: None,
            rate_limits: None,
        };
        let ops = vec![
            Op::SendFragment {
                binary: false,
                data: vec![0xEA],
                fin: false,
            },
            Op::SendFragment {
                binary: false,
                data: vec![0x9C, 0x9E],
                fin: true,
            },
        ];
        for role in [Role::Client, Role::Server] {
            run_conversation(
                role,
                Conversation {
                    config: config.clone(),
                    ops: ops.clone(),
                },
            );
        }
    }
}
