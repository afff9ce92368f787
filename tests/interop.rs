//! Our tokio client against an independent server (the Python `websockets`
//! library), started by `tests/interop/run.sh`, which sets `INTEROP_URL`.
#![cfg(all(feature = "tokio", feature = "deflate"))]

use bytes::Bytes;
use rfc6455::ClientBuilder;
use rfc6455::rt::tokio::connect_async;
use rfc6455::{CloseCode, Config, Message};

#[tokio::test]
#[ignore = "needs the Python peer: run tests/interop/run.sh"]
async fn against_python_websockets_server() {
    let url = std::env::var("INTEROP_URL").expect("INTEROP_URL");
    // Frames of at most 64 KiB, so the 1 MiB message arrives fragmented;
    // permessage-deflate offered (websockets accepts it by default).
    let config = Config::default()
        .max_send_frame_size(Some(64 * 1024))
        .deflate(Some(rfc6455::extensions::deflate::DeflateConfig::default()));
    let (mut ws, _) = connect_async(ClientBuilder::new(&url).unwrap().config(config).unwrap())
        .await
        .unwrap();
    let messages = [
        Message::text("hello"),
        Message::text("κόσμε 𝄞 – multi-byte UTF-8"),
        Message::binary(&b"\x00\xff\x01 binary"[..]),
        Message::text(""),
        Message::binary(Bytes::new()),
        Message::binary((0..1 << 20).map(|i: u32| i as u8).collect::<Vec<_>>()),
    ];
    for m in messages {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), m);
    }
    ws.send(Message::Ping(Bytes::from_static(b"rust ping")))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"rust ping"))
    );
    ws.close(CloseCode(4001), "rust done").await.unwrap();
    let echoed = ws.connection().close_frame().unwrap();
    assert_eq!(echoed.code, CloseCode(4001));
}
