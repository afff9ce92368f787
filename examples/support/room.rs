//! One chat room on the topic hub, shared by the `chat` and `axum_chat`
//! examples: every text message goes to every member (its sender too, as
//! the room's transcript).
//!
//! A member can move to another process between messages (`chat
//! --handoff`): once its stream is asked for, it stops reading, keeps
//! writing until every member has stopped reading (`Drain::handoff_quiet`:
//! nothing published in this process is missed), writes what is left for
//! it, and goes.

use std::pin::Pin;

use rfc6455::rt::drain::Drain;
use rfc6455::rt::hub::{Forwarded, Hub, Member};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) const ROOM: &str = "room";

/// A member's stream on its way to another process: `None` once it went,
/// else the stream back.
pub(crate) type Leaving<S> = Pin<Box<dyn Future<Output = Option<WebSocketStream<S>>> + Send>>;

/// Hands a member's stream over (`--handoff`), beside the drain it asks.
pub(crate) type Mover<S> = Box<dyn FnMut(WebSocketStream<S>) -> Leaving<S> + Send>;

/// Runs member `id` on an accepted WebSocket until it leaves, or moves
/// (see [`serve`]).
pub(crate) async fn member<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    id: u64,
    ws: WebSocketStream<S>,
    hub: &Hub,
    moving: Option<(&Drain, Mover<S>)>,
) -> Result<(), Error> {
    let member = hub.join();
    // One topic per member cannot pass the default limits.
    let _ = hub.subscribe(&member, ROOM);
    hub.publish(
        ROOM,
        &PreparedMessage::text(format!("* client {id} joined")),
    );
    serve(id, ws, hub, member, moving).await
}

/// Runs member `id`, joined to the room as `member`, until it leaves or,
/// when the drain asks for its stream, `moving` hands it over (it gives the
/// stream back if it stays).
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    id: u64,
    mut ws: WebSocketStream<S>,
    hub: &Hub,
    member: Member,
    mut moving: Option<(&Drain, Mover<S>)>,
) -> Result<(), Error> {
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
        let Some((drain, hand_over)) = moving.as_mut() else {
            // Asked for with no way to go: stay.
            ws = reader
                .reunite(writer)
                .map_err(|_| Error::ConnectionClosed)?;
            continue;
        };
        // Forward until every member stopped reading, then what is left.
        let forwarded = member
            .forward_until(&mut writer, drain.handoff_quiet())
            .await;
        let whole = match (forwarded, reader.reunite(writer)) {
            (Ok(()), Ok(whole)) => whole,
            (Err(error), _) => break Err(error),
            (Ok(()), Err(_)) => break Err(Error::ConnectionClosed),
        };
        match hand_over(whole).await {
            Some(back) => ws = back,
            // Gone to the successor, where the room goes on: no notice.
            None => return Ok(()),
        }
    };
    drop(member);
    hub.publish(ROOM, &PreparedMessage::text(format!("* client {id} left")));
    result
}
