//! Connection snapshots: a connection frozen at any point and thawed
//! carries on as one that never was, under any sequence of operations
//! (mid-frame, mid-message, mid-fragment, in the close handshake, with
//! permessage-deflate's context takeover both ways); a damaged, truncated
//! or foreign snapshot is refused with an error, never half-restored.
#![cfg(feature = "deflate")]

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use proptest::prelude::*;
use rfc6455::connection::{DataKind, SNAPSHOT_VERSION};
use rfc6455::extensions::deflate::DeflateParams;
use rfc6455::{CloseCode, Config, Connection, Message, Role, SnapshotError};

/// One step of the property.
#[derive(Clone, Debug)]
enum Op {
    /// The peer sends a message (its frames wait to be delivered).
    PeerSends(Message),
    /// The peer sends a fragment (`fin` ends the message).
    PeerFragment(bool, Vec<u8>, bool),
    /// The peer starts the close handshake.
    PeerCloses,
    /// This many of the waiting bytes arrive.
    Deliver(usize),
    /// This end sends a message.
    Send(Message),
    /// This end sends a fragment.
    Fragment(bool, Vec<u8>, bool),
    /// This end sends a timed Ping.
    Ping,
    /// This end starts the close handshake.
    Close,
    /// Time passes.
    Wait(u64),
    /// The connection under test is frozen and thawed.
    Freeze,
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 126..600),
    ]
}

/// Text that compresses and repeats across messages, so a compressor with
/// context takeover refers back to earlier ones.
const PHRASES: [&str; 3] = [
    "the quick brown fox jumps over the lazy dog; ",
    "pack my box with five dozen liquor jugs, ",
    "sphinx of black quartz, judge my vow. ",
];

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => "[a-zé€😀 ]{0,60}".prop_map(Message::text),
        2 => (0usize..3, 2usize..12).prop_map(|(p, n)| Message::text(PHRASES[p].repeat(n))),
        3 => payload().prop_map(Message::binary),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(|p| Message::Ping(p.into())),
    ]
}

/// Text fragments cut anywhere in a code point: the UTF-8 state carried.
fn fragment() -> impl Strategy<Value = (bool, Vec<u8>, bool)> {
    prop_oneof![
        ("[é€😀a]{0,6}", 0usize..4, any::<bool>()).prop_map(|(text, cut, fin)| {
            let bytes = text.into_bytes();
            let cut = cut.min(bytes.len());
            (true, bytes[cut..].to_vec(), fin)
        }),
        (payload(), any::<bool>()).prop_map(|(p, fin)| (false, p, fin)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => message().prop_map(Op::PeerSends),
        2 => fragment().prop_map(|(t, p, f)| Op::PeerFragment(t, p, f)),
        1 => Just(Op::PeerCloses),
        6 => (1usize..300).prop_map(Op::Deliver),
        3 => message().prop_map(Op::Send),
        1 => fragment().prop_map(|(t, p, f)| Op::Fragment(t, p, f)),
        1 => Just(Op::Ping),
        1 => Just(Op::Close),
        2 => (0u64..3_000).prop_map(Op::Wait),
        4 => Just(Op::Freeze),
    ]
}

fn kind(text: bool) -> DataKind {
    if text {
        DataKind::Text
    } else {
        DataKind::Binary
    }
}

/// The idle shrink is off: its check wakes a connection that holds
/// buffers, and a thawed one holds none yet (a memory matter, not the
/// protocol's).
fn config() -> Config {
    Config::default()
        .shrink_after_idle(None)
        .keepalive_interval(Some(Duration::from_millis(1_500)))
        .idle_timeout(Some(Duration::from_secs(20)))
        .dangerous_mask_seed(Some(7))
}

/// Everything waiting on `conn`'s output.
fn drain(conn: &mut Connection) -> Vec<u8> {
    let out = conn.outgoing();
    let mut bytes = Vec::new();
    while out.has_remaining() {
        let chunk = out.chunk().to_vec();
        out.advance(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// What a connection handed out after an input, errors included.
fn pull(conn: &mut Connection) -> Vec<Result<Message, rfc6455::ProtocolError>> {
    let mut got = Vec::new();
    loop {
        match conn.next_message() {
            Ok(Some(message)) => got.push(Ok(message)),
            Ok(None) => return got,
            Err(error) => {
                got.push(Err(error));
                return got;
            }
        }
    }
}

/// A connection of `role`, with permessage-deflate if `deflate` says so.
fn connection(role: Role, deflate: Option<DeflateParams>) -> Connection {
    let mut conn = Connection::new(role, config()).unwrap();
    if let Some(params) = deflate {
        conn.set_deflate(params);
    }
    conn
}

fn deflate() -> impl Strategy<Value = Option<DeflateParams>> {
    prop_oneof![
        2 => Just(None),
        1 => (any::<bool>(), any::<bool>(), 9u8..=15, 9u8..=15).prop_map(|(s, c, sb, cb)| {
            Some(DeflateParams {
                server_no_context_takeover: s,
                client_no_context_takeover: c,
                server_max_window_bits: sb,
                client_max_window_bits: cb,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    // The connection under test (`thawed`) is frozen and thawed at every
    // `Freeze`; the reference never is. After every step both have handed
    // out the same messages and errors, are in the same state with the same
    // deadlines, and have written output the peer reads as the same
    // messages: byte for byte for a server without compression (a client's
    // masking keys are drawn afresh, a compressor starts without context).
    #[test]
    fn a_thawed_connection_carries_on_as_the_original(
        server in any::<bool>(),
        deflate in deflate(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let peer_role = if server { Role::Client } else { Role::Server };
        let mut peer = connection(peer_role, deflate);
        let mut reference = connection(role, deflate);
        let mut thawed = connection(role, deflate);
        // What each one's peer reads of its output.
        let (mut reads_reference, mut reads_thawed) =
            (connection(peer_role, deflate), connection(peer_role, deflate));
        let start = Instant::now();
        let mut now = start;
        for conn in [&mut reference, &mut thawed] {
            conn.handle_timeout(now);
        }
        let mut waiting: Vec<u8> = Vec::new();
        let mut frozen = 0;
        for op in ops {
            match op {
                Op::PeerSends(message) => {
                    let _ = peer.send(message);
                    waiting.extend(drain(&mut peer));
                }
                Op::PeerFragment(text, data, fin) => {
                    let _ = peer.send_fragment(kind(text), Bytes::from(data), fin);
                    waiting.extend(drain(&mut peer));
                }
                Op::PeerCloses => {
                    let _ = peer.close(CloseCode::NORMAL, "bye");
                    waiting.extend(drain(&mut peer));
                }
                Op::Deliver(n) => {
                    let n = n.min(waiting.len());
                    let bytes: Vec<u8> = waiting.drain(..n).collect();
                    for conn in [&mut reference, &mut thawed] {
                        conn.receive(&bytes);
                    }
                }
                Op::Send(message) => {
                    let (a, b) = (reference.send(message.clone()), thawed.send(message));
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                }
                Op::Fragment(text, data, fin) => {
                    let data = Bytes::from(data);
                    let a = reference.send_fragment(kind(text), data.clone(), fin);
                    let b = thawed.send_fragment(kind(text), data, fin);
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                }
                Op::Ping => {
                    prop_assert_eq!(reference.ping(now).is_ok(), thawed.ping(now).is_ok());
                }
                Op::Close => {
                    let a = reference.close(CloseCode::GOING_AWAY, "going");
                    let b = thawed.close(CloseCode::GOING_AWAY, "going");
                    prop_assert_eq!(a, b);
                }
                Op::Wait(ms) => {
                    now += Duration::from_millis(ms);
                    for conn in [&mut reference, &mut thawed] {
                        conn.handle_timeout(now);
                    }
                }
                Op::Freeze => match (thawed.can_freeze(), thawed.freeze(now)) {
                    // `can_freeze` says what `freeze` does, but for output.
                    (can, result) if can != result.as_ref().map(drop).map_err(Clone::clone) => {
                        prop_assert!(false, "can_freeze {:?}, freeze {:?}", can, result);
                    }
                    (_, Ok(snapshot)) => {
                        thawed = Connection::thaw(&snapshot, config(), now).unwrap();
                        frozen += 1;
                    }
                    (_, Err(SnapshotError::OutputPending)) => {
                        prop_assert!(false, "output was drained");
                    }
                    (_, Err(SnapshotError::CompressedMessageInProgress)) => {
                        prop_assert!(deflate.is_some());
                    }
                    (_, Err(SnapshotError::Ended)) => {
                        prop_assert!(reference.state() != rfc6455::State::Open);
                    }
                    (_, Err(other)) => prop_assert!(false, "{other:?}"),
                },
            }
            let (a, b) = (pull(&mut reference), pull(&mut thawed));
            prop_assert_eq!(&a, &b);
            let (out_a, out_b) = (drain(&mut reference), drain(&mut thawed));
            if server && deflate.is_none() {
                prop_assert_eq!(&out_a, &out_b);
            }
            reads_reference.receive(&out_a);
            reads_thawed.receive(&out_b);
            prop_assert_eq!(pull(&mut reads_reference), pull(&mut reads_thawed));
            prop_assert_eq!(reference.state(), thawed.state());
            prop_assert_eq!(reference.close_frame(), thawed.close_frame());
            prop_assert_eq!(reference.poll_timeout(), thawed.poll_timeout());
            prop_assert_eq!(reference.wants_read(), thawed.wants_read());
            prop_assert_eq!(reference.is_finished(), thawed.is_finished());
            let (sa, sb) = (reference.stats(), thawed.stats());
            prop_assert_eq!(sa.received, sb.received);
            prop_assert_eq!(sa.error, sb.error);
            prop_assert_eq!(sa.rtt_samples, sb.rtt_samples);
            if deflate.is_none() {
                prop_assert_eq!(sa.sent, sb.sent);
            }
        }
        let _ = frozen;
    }
}

/// A snapshot of a connection with a frame half-received.
fn sample() -> Vec<u8> {
    let mut conn = Connection::new(Role::Server, Config::default()).unwrap();
    conn.receive(&[0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1]);
    assert_eq!(conn.next_message(), Ok(None));
    conn.freeze(Instant::now()).unwrap()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `body` with its checksum: a snapshot as a writer would seal it.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let sum = fnv(&body);
    body.extend_from_slice(&sum.to_le_bytes());
    body
}

fn thaw(bytes: &[u8]) -> Result<Connection, SnapshotError> {
    Connection::thaw(bytes, Config::default(), Instant::now())
}

#[test]
fn damaged_truncated_or_foreign_snapshots_are_refused() {
    let snapshot = sample();
    assert!(thaw(&snapshot).is_ok());
    for at in 0..snapshot.len() {
        let mut damaged = snapshot.clone();
        damaged[at] ^= 0x20;
        assert!(thaw(&damaged).is_err(), "byte {at} flipped");
        assert!(thaw(&snapshot[..at]).is_err(), "cut at {at}");
    }
    assert_eq!(
        thaw(b"GET / HTTP/1.1\r\n\r\n").err(),
        Some(SnapshotError::NotASnapshot)
    );
    // Another version, sealed as its writer would.
    let body = &snapshot[..snapshot.len() - 8];
    let mut other = body.to_vec();
    other[8..10].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    assert_eq!(
        thaw(&seal(other)).err(),
        Some(SnapshotError::Version(SNAPSHOT_VERSION + 1))
    );
    // Sealed but inconsistent: a client's snapshot of a masked frame.
    let mut client = body.to_vec();
    client[10] = 0;
    assert!(matches!(
        thaw(&seal(client)).err(),
        Some(SnapshotError::Invalid(_))
    ));
    // Trailing bytes.
    let mut longer = body.to_vec();
    longer.push(0);
    assert!(thaw(&seal(longer)).is_err());
}

// A frame that fits the first configuration but not the second is refused,
// not carried into a connection that would never have taken it.
#[test]
fn a_snapshot_at_odds_with_the_configuration_is_refused() {
    let snapshot = sample();
    let small = Config::default().max_frame_size(4);
    assert_eq!(
        Connection::thaw(&snapshot, small, Instant::now()).err(),
        Some(SnapshotError::Invalid("frame"))
    );
}

#[test]
fn only_an_open_connection_with_its_output_written_freezes() {
    let mut conn = Connection::new(Role::Server, Config::default()).unwrap();
    conn.send(Message::text("queued")).unwrap();
    assert_eq!(
        conn.freeze(Instant::now()),
        Err(SnapshotError::OutputPending)
    );
    assert_eq!(conn.can_freeze(), Ok(()), "once the output is written");
    drain(&mut conn);
    assert!(conn.freeze(Instant::now()).is_ok());
    conn.receive_eof();
    assert_eq!(conn.freeze(Instant::now()), Err(SnapshotError::Ended));
    assert_eq!(conn.can_freeze(), Err(SnapshotError::Ended));
    // A compressed message half-received waits for its end.
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let (mut client, mut server) = (
        connection(Role::Client, Some(params)),
        connection(Role::Server, Some(params)),
    );
    client
        .send(Message::text("a compressible message ".repeat(40)))
        .unwrap();
    let wire = drain(&mut client);
    server.receive(&wire[..wire.len() - 3]);
    assert_eq!(server.next_message(), Ok(None));
    assert_eq!(
        server.freeze(Instant::now()),
        Err(SnapshotError::CompressedMessageInProgress)
    );
    assert_eq!(
        server.can_freeze(),
        Err(SnapshotError::CompressedMessageInProgress)
    );
    server.receive(&wire[wire.len() - 3..]);
    assert!(server.next_message().unwrap().is_some());
    assert!(server.freeze(Instant::now()).is_ok());
}

// Over a real TCP socket with permessage-deflate: the server's stream is
// taken apart between messages, its connection frozen and its socket sent
// through a raw descriptor (as another process would receive it), then
// put back together from the thawed connection. The client sees every echo
// once and in order, and no Close.
#[cfg(feature = "tokio")]
#[tokio::test]
async fn a_live_stream_carries_on_from_its_snapshot_over_the_same_socket() {
    use std::os::fd::OwnedFd;

    use rfc6455::ServerBuilder;
    use rfc6455::extensions::deflate::DeflateConfig;
    use rfc6455::rt::tokio::WebSocketStream;

    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let builder = ServerBuilder::new().config(server_config.clone()).unwrap();
        let mut ws = WebSocketStream::accept(tcp, &builder).await.unwrap();
        let mut moves = 0;
        while let Some(message) = ws.next().await {
            let message = message.unwrap();
            if message.is_close() {
                break;
            }
            ws.send(message).await.unwrap();
            // Every tenth message, the stream moves.
            moves += 1;
            if moves % 10 == 0 {
                let (mut conn, tcp) = ws.into_parts();
                let snapshot = conn.freeze(Instant::now()).unwrap();
                drop(conn);
                let fd: OwnedFd = tcp.into_std().unwrap().into();
                let tcp = tokio::net::TcpStream::from_std(fd.into()).unwrap();
                let conn =
                    Connection::thaw(&snapshot, server_config.clone(), Instant::now()).unwrap();
                ws = WebSocketStream::new(tcp, conn);
            }
        }
        moves
    });
    let client = rfc6455::ClientBuilder::new(url.as_str())
        .unwrap()
        .config(config)
        .unwrap();
    let (mut ws, _) = WebSocketStream::connect(&client).await.unwrap();
    for n in 0..100 {
        let text = format!("message {n}: {}", PHRASES[n % 3].repeat(3));
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(server.await.unwrap(), 100);
}
