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

use rfc6455::rt::hub::{Forwarded, Hub, HubConfig};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message, PreparedMessage};
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
    for id in 0u64.. {
        let (tcp, _) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(async move {
            if let Err(error) = join(id, tcp, &hub).await {
                eprintln!("chat: client {id}: {error}");
            }
        });
    }
    Ok(())
}

async fn join(id: u64, tcp: TcpStream, hub: &Hub) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let (mut writer, mut reader) = WebSocketStream::accept(tcp).await?.split();
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
