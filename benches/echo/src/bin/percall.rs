//! Drives the core's receive or send path N times, for instruction counts
//! under `valgrind --tool=callgrind` (see `benches/callgrind.sh`): the
//! difference between two runs of different N, divided by the difference in
//! N, is the cost of one message with setup taken out.
//!
//! ```text
//! percall receive|send|echo binary|text SIZE N
//! ```

use bytes::Buf;
use rfc6455::{Config, Connection, Message, Role};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("receive", String::as_str);
    let text = args.get(2).is_some_and(|k| k == "text");
    let size: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let n: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let message = if text {
        Message::text("a".repeat(size))
    } else {
        Message::binary(vec![0x5a; size])
    };
    // The client's frame, encoded once. Input arrives as blocks of whole
    // frames (about 64 KiB), copied into one `read_buf` each, as a socket
    // read would copy them: that copy is part of the figure, and nothing
    // else in the setup grows with N.
    let mut client = Connection::new(Role::Client, Config::default().dangerous_mask_seed(Some(1)))
        .expect("config");
    client.send(message.clone()).expect("send");
    let frame = drain(&mut client);
    let per_block = (64 * 1024 / frame.len()).max(1);
    let blocks = (0..n.div_ceil(per_block)).map(|i| per_block.min(n - i * per_block));
    let mut server = Connection::new(Role::Server, Config::default()).expect("config");
    let mut checksum = 0usize;
    match path {
        "receive" => {
            for frames in blocks {
                read(&mut server, &frame, frames);
                while let Some(m) = server.next_message().expect("valid") {
                    checksum += m.payload().len();
                }
            }
        }
        "send" => {
            for _ in 0..n {
                server.send(message.clone()).expect("send");
                checksum += write_all(&mut server);
            }
        }
        "echo" => {
            for frames in blocks {
                read(&mut server, &frame, frames);
                while let Some(m) = server.next_message().expect("valid") {
                    server.send(m).expect("send");
                }
                checksum += write_all(&mut server);
            }
        }
        other => panic!("unknown path {other}"),
    }
    println!("{checksum}");
}

/// Copies `frames` copies of `frame` into one read buffer, as one socket read.
fn read(conn: &mut Connection, frame: &[u8], frames: usize) {
    let buf = conn.read_buf();
    for _ in 0..frames {
        buf.extend_from_slice(frame);
    }
}

/// Consumes everything queued, as one complete write; returns its length.
fn write_all(conn: &mut Connection) -> usize {
    let out = conn.outgoing();
    let len = out.remaining();
    out.advance(len);
    len
}

fn drain(conn: &mut Connection) -> Vec<u8> {
    let out = conn.outgoing();
    out.copy_to_bytes(out.remaining()).to_vec()
}
