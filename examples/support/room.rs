//! One chat room on the topic hub, shared by the `chat` and `axum_chat`
//! examples: every text message goes to every member (its sender too, as
//! the room's transcript).

use rfc6455::rt::hub::{Forwarded, Hub};
use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};

const ROOM: &str = "room";

/// Runs member `id` on an accepted WebSocket until it leaves.
pub(crate) async fn member<S: AsyncRead + AsyncWrite + Unpin>(
    id: u64,
    ws: WebSocketStream<S>,
    hub: &Hub,
) -> Result<(), Error> {
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
                // While the server is behind, the sender waits here.
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
