//! Shared helpers: a client and a server `Connection` wired in memory.
#![allow(dead_code, unreachable_pub)]

use bytes::{Buf, BufMut, Bytes};
use rfc6455::frame::{FrameHeader, OpCode, apply_mask};
use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError, Role, SendError, State};

/// The seed every test client uses for its masking keys.
pub const SEED: u64 = 0x5eed;

pub fn client(config: Config) -> Connection {
    Connection::new(Role::Client, config.dangerous_mask_seed(Some(SEED))).unwrap()
}

pub fn server(config: Config) -> Connection {
    Connection::new(Role::Server, config).unwrap()
}

/// Takes every queued output byte of `conn`.
pub fn take_output(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    let out = conn.outgoing();
    while out.has_remaining() {
        let n = out.chunk().len();
        wire.extend_from_slice(out.chunk());
        out.advance(n);
    }
    wire
}

/// Pulls messages until `Ok(None)` or an error.
pub fn pull(conn: &mut Connection) -> (Vec<Message>, Option<ProtocolError>) {
    let mut messages = Vec::new();
    loop {
        match conn.next_message() {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => return (messages, None),
            Err(error) => return (messages, Some(error)),
        }
    }
}

/// Feeds `wire` to `conn` in pieces of `chunk` bytes, pulling after each.
pub fn feed_chunked(
    conn: &mut Connection,
    wire: &[u8],
    chunk: usize,
) -> (Vec<Message>, Option<ProtocolError>) {
    let mut messages = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        conn.receive(piece);
        let (mut got, error) = pull(conn);
        messages.append(&mut got);
        if error.is_some() {
            return (messages, error);
        }
    }
    (messages, None)
}

/// Encodes one frame by hand: masked if `mask` is given.
pub fn frame(opcode: OpCode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    raw_frame(opcode.as_u8() | if fin { 0x80 } else { 0 }, payload, mask)
}

/// Encodes a frame whose first byte is given as is (RSV bits, reserved opcodes).
pub fn raw_frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let opcode = OpCode::try_from(b0 & 0x0f).unwrap_or(OpCode::Binary);
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.mask = mask;
    let mut wire = Vec::new();
    header.encode_into(&mut wire);
    wire[0] = b0;
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        apply_mask(&mut body, key, 0);
    }
    wire.put_slice(&body);
    wire
}

/// A frame as a client would send it (masked with a fixed key).
pub fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, payload, Some([0x12, 0x34, 0x56, 0x78]))
}

/// Parses `wire` (frames from one side) back into (header, unmasked payload).
pub fn parse_frames(mut wire: &[u8]) -> Vec<(FrameHeader, Bytes)> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (header, len) = FrameHeader::parse(wire).unwrap().expect("whole frame");
        let end = len + header.payload_len as usize;
        let mut payload = wire[len..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((header, Bytes::from(payload)));
        wire = &wire[end..];
    }
    frames
}

/// The (opcode, FIN, payload length) of each frame in `wire`.
pub fn frame_shapes(wire: &[u8]) -> Vec<(OpCode, bool, usize)> {
    parse_frames(wire)
        .iter()
        .map(|(h, p)| (h.opcode, h.fin, p.len()))
        .collect()
}

/// A client and a server connected in memory.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    /// Bytes moved per `receive` call.
    pub chunk: usize,
}

impl Pair {
    pub fn new() -> Self {
        Self::with_configs(Config::default(), Config::default())
    }

    pub fn with_configs(client_config: Config, server_config: Config) -> Self {
        Self {
            client: client(client_config),
            server: server(server_config),
            chunk: usize::MAX,
        }
    }

    /// Moves the client's output to the server and pulls there.
    pub fn deliver_to_server(&mut self) -> (Vec<Message>, Option<ProtocolError>) {
        let wire = take_output(&mut self.client);
        feed_chunked(&mut self.server, &wire, self.chunk)
    }

    /// Moves the server's output to the client and pulls there.
    pub fn deliver_to_client(&mut self) -> (Vec<Message>, Option<ProtocolError>) {
        let wire = take_output(&mut self.server);
        feed_chunked(&mut self.client, &wire, self.chunk)
    }
}

/// Feeds `wire`, expects `error`, and checks the sticky-failure contract:
/// a Close with `code` is queued, the state is Closing (local), the same
/// error comes back, and the transport should close once output drains.
pub fn assert_fails(conn: &mut Connection, wire: &[u8], error: ProtocolError, code: CloseCode) {
    conn.receive(wire);
    let (_, got) = pull(conn);
    assert_eq!(got, Some(error));
    assert_eq!(error.close_code(), code);
    assert_eq!(
        conn.state(),
        State::Closing {
            initiated_by: rfc6455::connection::Side::Local
        }
    );
    assert_eq!(conn.next_message(), Err(error), "errors are sticky");
    assert!(!conn.should_close_transport(), "the Close must drain first");
    let frames = parse_frames(&take_output(conn));
    let (header, payload) = frames.last().expect("a Close frame is queued");
    assert_eq!(header.opcode, OpCode::Close);
    assert_eq!(&payload[..2], &code.0.to_be_bytes());
    assert!(conn.should_close_transport());
    assert_eq!(conn.next_message(), Err(error));
    assert_eq!(conn.send(Message::text("late")), Err(SendError::Closed));
}
