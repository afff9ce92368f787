//! A broadcast chat room: every text message goes to every other client.
//!
//! ```text
//! cargo run --example chat                 # ws://127.0.0.1:9002
//! cargo run --example client -- ws://127.0.0.1:9002/     # in two terminals
//! ```
//!
//! Every connection has a bounded outgoing queue. Broadcasting never waits:
//! a client whose queue is full is too slow and is dropped (Close 1008), so
//! a stalled client never holds up the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rfc6455::rt::tokio::accept_async;
use rfc6455::{CloseCode, Error, Message};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Messages a client may have waiting before it counts as too slow.
const QUEUE: usize = 256;

type Room = Arc<Mutex<HashMap<u64, mpsc::Sender<Message>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("chat: listening on ws://{}", listener.local_addr()?);
    let room = Room::default();
    for id in 0u64.. {
        let (tcp, _) = listener.accept().await?;
        let room = Arc::clone(&room);
        tokio::spawn(async move {
            if let Err(error) = join(id, tcp, &room).await {
                eprintln!("chat: client {id}: {error}");
            }
            room.lock().unwrap().remove(&id);
        });
    }
    Ok(())
}

async fn join(id: u64, tcp: TcpStream, room: &Room) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let ws = accept_async(tcp).await?;
    let (mut writer, mut reader) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    room.lock().unwrap().insert(id, tx);
    broadcast(room, id, Message::text(format!("* client {id} joined")));
    // The writer: queued messages go out in batches; when the room drops this
    // client (its sender is gone), it says why and closes.
    let writer_task = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            writer.feed(message).await?;
            if rx.is_empty() {
                writer.flush().await?;
            }
        }
        writer.close(CloseCode::POLICY_VIOLATION, "too slow").await
    });
    while let Some(message) = reader.next().await {
        if let Message::Text(text) = message? {
            broadcast(room, id, Message::text(format!("{id}: {text}")));
        }
    }
    room.lock().unwrap().remove(&id);
    broadcast(room, id, Message::text(format!("* client {id} left")));
    writer_task.abort();
    Ok(())
}

/// Offers `message` to everyone but `from`, never waiting: a full queue drops its client.
fn broadcast(room: &Room, from: u64, message: Message) {
    room.lock().unwrap().retain(|&id, queue| {
        id == from
            || match queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    eprintln!("chat: client {id} is too slow, dropping it");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
    });
}
