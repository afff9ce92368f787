//! The echo server on std threads and the blocking adapter: one thread per
//! connection, the same behaviour as `echo_server`.
//!
//! ```text
//! cargo run --release --example echo_server_blocking            # ws://127.0.0.1:9001
//! cargo run --release --example echo_server_blocking -- 127.0.0.1:9002
//! ```

use std::net::{TcpListener, TcpStream};
use std::thread;

use rfc6455::blocking::WebSocket;
use rfc6455::{Error, Message, ServerBuilder};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr)?;
    eprintln!(
        "echo_server_blocking: listening on ws://{}",
        listener.local_addr()?
    );
    for tcp in listener.incoming() {
        let tcp = tcp?;
        thread::spawn(move || {
            if let Err(error) = echo(tcp) {
                eprintln!("echo_server_blocking: connection ended: {error}");
            }
        });
    }
    Ok(())
}

fn echo(tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let mut ws = WebSocket::accept(tcp, &ServerBuilder::new())?;
    loop {
        match ws.read() {
            // `write` queues; the next `read` writes everything queued before it blocks.
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => ws.write(message)?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
