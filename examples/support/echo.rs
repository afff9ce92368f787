//! The echo loop shared by `echo_server` (over TCP) and `h2_echo_server`
//! (over hyper, HTTP/1.1 or HTTP/2).
//!
//! Each connection runs `next` + `feed`: every message already read is
//! answered, and the answers leave in one write before the next read. A
//! message larger than `Config::write_high_water` is `send`-ed instead
//! (written out before reading on): batching gains nothing at that size,
//! and reading the next large message while one is still being written
//! would hold two of them per connection.

use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, Message};
use tokio::io::{AsyncRead, AsyncWrite};

/// Echoes every text and binary message with its type until the
/// connection ends; Pongs and the Close echo are the connection's own.
/// It borrows the stream: an `async fn` that took it by value would keep
/// it twice in its future (its argument and its local), doubling what an
/// idle connection costs (`benches/echo/scale.sh max 10000`: 2.9 KiB against 5.6).
pub(crate) async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error> {
    let large = ws.connection().config().write_high_water;
    while let Some(message) = ws.next().await {
        let message = message?;
        if !matches!(message, Message::Text(_) | Message::Binary(_)) {
            continue;
        }
        if message.payload().len() > large {
            ws.send(message).await?;
        } else {
            ws.feed(message).await?;
        }
    }
    Ok(())
}
