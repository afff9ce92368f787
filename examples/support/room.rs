//! One chat room on the topic hub, shared by the `chat` and `axum_chat`
//! examples: every text message goes to every member (its sender too, as
//! the room's transcript).
//!
//! A member can move to another process between messages (`chat
//! --handoff`): once its stream is asked for, it stops reading, keeps
//! writing until every member has stopped reading (so nothing published
//! in this process is missed), writes what is left for it, and goes.

use std::pin::Pin;
use std::sync::Mutex;

use rfc6455::rt::hub::{Forwarded, Hub, Member};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

pub(crate) const ROOM: &str = "room";

/// The room: its hub, and how many members still read during a handoff.
pub(crate) struct Room {
    pub(crate) hub: Hub,
    /// Members here, and those of them that stopped reading.
    readers: Mutex<(usize, usize)>,
    quiet: Notify,
}

impl Room {
    pub(crate) fn new(hub: Hub) -> Self {
        Self {
            hub,
            readers: Mutex::new((0, 0)),
            quiet: Notify::new(),
        }
    }

    /// Adds (+1) or removes (-1) a member, and one that stopped reading.
    fn count(&self, members: isize, stopped: isize) {
        let mut readers = self.readers.lock().unwrap();
        readers.0 = readers.0.saturating_add_signed(members);
        readers.1 = readers.1.saturating_add_signed(stopped);
        if readers.1 > 0 && readers.1 >= readers.0 {
            self.quiet.notify_waiters();
        }
    }

    /// Resolves once every member here has stopped reading.
    async fn quiet(&self) {
        loop {
            let notified = self.quiet.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let (members, stopped) = *self.readers.lock().unwrap();
            if stopped >= members {
                return;
            }
            notified.await;
        }
    }
}

/// A member's stream on its way to another process: `None` once it went,
/// else the stream back.
pub(crate) type Leaving<S> = Pin<Box<dyn Future<Output = Option<WebSocketStream<S>>> + Send>>;

/// Runs member `id` on an accepted WebSocket until it leaves, or
/// `hand_over` takes its stream (see [`serve`]).
pub(crate) async fn member<S: AsyncRead + AsyncWrite + Unpin>(
    id: u64,
    ws: WebSocketStream<S>,
    room: &Room,
    hand_over: impl FnMut(WebSocketStream<S>) -> Leaving<S>,
) -> Result<(), Error> {
    let member = room.hub.join();
    // One topic per member cannot pass the default limits.
    let _ = room.hub.subscribe(&member, ROOM);
    room.hub.publish(
        ROOM,
        &PreparedMessage::text(format!("* client {id} joined")),
    );
    serve(id, ws, room, member, hand_over).await
}

/// Runs member `id`, joined to the room as `member`, until it leaves or
/// `hand_over` takes its stream (it gives the stream back if it stays).
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    id: u64,
    mut ws: WebSocketStream<S>,
    room: &Room,
    member: Member,
    mut hand_over: impl FnMut(WebSocketStream<S>) -> Leaving<S>,
) -> Result<(), Error> {
    let hub = &room.hub;
    room.count(1, 0);
    let result = loop {
        let (mut writer, mut reader) = ws.split();
        // `Ok(true)`: the stream is asked for, between messages.
        let reading = async {
            while let Some(message) = reader.next().await {
                match message {
                    Ok(Message::Text(text)) => {
                        // While the server is behind, the sender waits here.
                        hub.ready().await;
                        hub.publish(ROOM, &PreparedMessage::text(format!("{id}: {}", &*text)));
                    }
                    Ok(_) => {}
                    Err(Error::HandoffRequested) => return Ok(true),
                    Err(error) => return Err(error),
                }
            }
            Ok(false)
        };
        let forwarding = async {
            let end = member.forward(&mut writer).await?;
            if let Forwarded::ClosedSlow(code) = end {
                eprintln!("chat: client {id} is too slow, closed with {code}");
            }
            Ok(false)
        };
        let asked = tokio::select! {
            result = reading => result,
            result = forwarding => result,
        };
        match asked {
            Ok(true) => {}
            other => break other.map(drop),
        }
        // Forward until the room is quiet, then what is left, and go.
        room.count(0, 1);
        let quiet = tokio::select! {
            () = room.quiet() => Ok(()),
            result = member.forward(&mut writer) => result.and(Err(Error::ConnectionClosed)),
        };
        let mut flushed = quiet;
        while let (Ok(()), Some(message)) = (&flushed, member.take()) {
            flushed = writer.feed(&message).await;
        }
        let back = match (flushed, reader.reunite(writer)) {
            (Ok(()), Ok(whole)) => Ok(hand_over(whole).await),
            (Err(error), _) => Err(error),
            (Ok(()), Err(_)) => Err(Error::ConnectionClosed),
        };
        room.count(0, -1);
        let back = match back {
            Ok(back) => back,
            Err(error) => break Err(error),
        };
        match back {
            Some(back) => ws = back,
            // Gone to the successor, where the room goes on: no notice.
            None => {
                room.count(-1, 0);
                return Ok(());
            }
        }
    };
    room.count(-1, 0);
    drop(member);
    hub.publish(ROOM, &PreparedMessage::text(format!("* client {id} left")));
    result
}
