//! Configs that cannot fail at connect time: a config that cannot work is
//! refused where it is handed over, with a typed error; the frame limit
//! follows a smaller message limit; a server whose own config fails answers
//! 500 rather than resetting.

use std::time::{Duration, Instant};

use bytes::Buf;
use rfc6455::handshake::{AcceptOptions, Progress, ServerDriver, ServerHandshake};
use rfc6455::{ClientBuilder, Config, ConfigError, Error, ServerBuilder};

#[test]
fn an_invalid_config_is_refused_when_handed_over() {
    let zero_frame = || Config::default().max_frame_size(0);
    assert_eq!(
        zero_frame().validate(),
        Err(ConfigError::ZeroLimit("max_frame_size"))
    );
    assert_eq!(
        ServerBuilder::new().config(zero_frame()).err(),
        Some(ConfigError::ZeroLimit("max_frame_size"))
    );
    let client = ClientBuilder::new("ws://localhost/").unwrap();
    assert_eq!(
        client
            .clone()
            .config(Config::default().close_timeout(Some(Duration::ZERO)))
            .err(),
        Some(ConfigError::ZeroDuration("close_timeout"))
    );
    // The tungstenite habit: a message limit alone is a valid config.
    let limited = Config::default().max_message_size(1 << 20);
    assert_eq!(limited.clone().validate(), Ok(limited.clone()));
    assert_eq!(limited.frame_limit(), 1 << 20);
    assert!(ServerBuilder::new().config(limited.clone()).is_ok());
    assert!(client.config(limited).is_ok());
}

#[test]
fn a_server_whose_config_fails_answers_500() {
    let now = Instant::now();
    let bad = Config::default().max_write_buffer(0);
    let mut server = ServerDriver::new(bad, ServerHandshake::new(), now, |_| {
        Ok(AcceptOptions::new())
    });
    // It waits for the request head, as for any request.
    assert!(matches!(server.poll(now), Ok(Progress::Read)));
    server.read_buf().extend_from_slice(
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(matches!(server.poll(now), Ok(Progress::Write)));
    let response = server.outgoing().chunk().to_vec();
    assert!(
        response.starts_with(b"HTTP/1.1 500 "),
        "{}",
        String::from_utf8_lossy(&response)
    );
    server.outgoing().clear();
    assert!(matches!(
        server.poll(now),
        Err(Error::Config(ConfigError::ZeroLimit("max_write_buffer")))
    ));
}

/// `Config::default().max_message_size(1 << 20)` end to end over TCP: 1 MiB
/// passes (in one frame, above no frame limit), 1 MiB + 1 gets Close 1009.
#[cfg(feature = "tokio")]
#[tokio::test]
async fn a_message_limit_alone_works_end_to_end() {
    use rfc6455::rt::tokio::{WebSocketStream, connect_async};
    use rfc6455::{CloseCode, Message, ProtocolError};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = ServerBuilder::new()
        .config(Config::default().max_message_size(1 << 20))
        .unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = WebSocketStream::accept(tcp, &server).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(message)) if !message.is_control() => ws.send(message).await.unwrap(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Some(error.to_string()),
                None => return None,
            }
        }
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    let exact = Message::binary(vec![7u8; 1 << 20]);
    ws.send(exact.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), exact);
    ws.send(Message::binary(vec![7u8; (1 << 20) + 1]))
        .await
        .unwrap();
    let close = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected the server's Close, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::MESSAGE_TOO_BIG));
    // The echo and this end's close let the server's stream end.
    while ws.next().await.is_some() {}
    assert_eq!(
        task.await.unwrap(),
        Some(ProtocolError::MessageTooBig.to_string())
    );
}
