//! A broadcast chat room on the topic hub: every text message goes to every
//! client in the room (its sender too, as the room's transcript).
//!
//! ```text
//! cargo run --example chat                 # ws://127.0.0.1:9002
//! cargo run --example client -- ws://127.0.0.1:9002/     # in two terminals
//! ```
//!
//! Each line is framed once (`PreparedMessage`) and queued by reference for
//! everyone. Publishing never waits on a client: one whose socket stops
//! draining while the others keep up is closed with 1008 "too slow", and
//! while the server itself is behind, the sender's next line waits
//! (`Hub::ready`), which slows the sender down instead of dropping anyone.
//!
//! A public room guards itself: at most 8 connections per client address
//! and 5 new ones a second (then `429` with `Retry-After`), and each client
//! may send 20 lines a second in bursts of 40 (past that its reading
//! pauses, so a flood waits in its own TCP buffers).

use std::net::SocketAddr;

use rfc6455::admission::{Admission, AdmissionConfig};
use rfc6455::rt::hub::{Forwarded, Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Config, Error, Message, PreparedMessage, RateLimit, RateLimits, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};

const ROOM: &str = "room";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("chat: listening on ws://{}", listener.local_addr()?);
    let hub = Hub::new(HubConfig::default());
    let admission = Admission::new(
        AdmissionConfig::default()
            .max_per_address(Some(8))
            .handshakes_per_address(Some(RateLimit::new(5, 10))),
    );
    let lines = RateLimits::default().messages(Some(RateLimit::new(20, 40)));
    let server = ServerBuilder::new().config(Config::default().rate_limits(lines));
    for id in 0u64.. {
        let (tcp, peer) = listener.accept().await?;
        let (hub, admission, server) = (hub.clone(), admission.clone(), server.clone());
        tokio::spawn(async move {
            if let Err(error) = join(id, tcp, peer, &hub, &admission, &server).await {
                eprintln!("chat: client {id}: {error}");
            }
        });
    }
    Ok(())
}

async fn join(
    id: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    hub: &Hub,
    admission: &Admission,
    server: &ServerBuilder,
) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    // The permit holds this client's place until the function returns.
    let (ws, _permit) = WebSocketStream::accept_admitted(tcp, peer, server, admission).await?;
    let (mut writer, mut reader) = ws.split();
    let member = hub.join();
    // One topic per member cannot pass the default limits.
    let _ = hub.subscribe(&member, ROOM);
    hub.publish(
        ROOM,
        &PreparedMessage::text(format!("* client {id} joined")),
    );
    let reading = async {
        while let Some(message) = reader.next().await {
            if let Message::Text(text) = message? {
                hub.ready().await;
                hub.publish(ROOM, &PreparedMessage::text(format!("{id}: {}", &*text)));
            }
        }
        Ok(())
    };
    let result = tokio::select! {
        result = reading => result,
        result = member.forward(&mut writer) => result.map(|end| {
            if let Forwarded::ClosedSlow(code) = end {
                eprintln!("chat: client {id} is too slow, closed with {code}");
            }
        }),
    };
    drop(member);
    hub.publish(ROOM, &PreparedMessage::text(format!("* client {id} left")));
    result
}
