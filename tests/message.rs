//! The helpers on `Message` that tokio-tungstenite users reach for.

use bytes::Bytes;
use rfc6455::{CloseCode, CloseFrame, Message};

#[test]
fn kind_predicates_name_exactly_one_kind() {
    let all = [
        Message::text("t"),
        Message::binary(vec![1u8]),
        Message::Ping(Bytes::from_static(b"p")),
        Message::Pong(Bytes::from_static(b"q")),
        Message::Close(None),
    ];
    for (i, message) in all.iter().enumerate() {
        let kinds = [
            message.is_text(),
            message.is_binary(),
            message.is_ping(),
            message.is_pong(),
            message.is_close(),
        ];
        assert_eq!(kinds.iter().filter(|&&k| k).count(), 1, "{message:?}");
        assert!(kinds[i], "{message:?}");
        assert_eq!(message.is_control(), i >= 2);
    }
}

#[test]
fn payload_length_text_and_data() {
    let text = Message::text("κόσμε");
    assert_eq!((text.len(), text.is_empty()), (10, false));
    assert_eq!(text.to_text(), Ok("κόσμε"));
    assert_eq!(text.into_data(), Bytes::from("κόσμε"));

    let binary = Message::binary(vec![0xff, 0xfe]);
    assert!(binary.to_text().is_err(), "not UTF-8");
    assert_eq!(Message::binary(b"ok".to_vec()).to_text(), Ok("ok"));
    assert_eq!(binary.into_data(), Bytes::from_static(&[0xff, 0xfe]));

    let close = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")));
    assert_eq!((close.len(), close.to_text()), (3, Ok("bye")));
    assert_eq!(close.into_data(), Bytes::from_static(b"bye"));
    let empty = Message::Close(None);
    assert!(empty.is_empty());
    assert_eq!(empty.into_data(), Bytes::new());
}
