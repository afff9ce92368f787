//! The texts positions travel in: what clients send and receive, and what
//! a node reads from a topic's broker channel.
//!
//! A position is written `EPOCH:OFFSET`, the epoch in lowercase hex and
//! the offset in decimal (`3f0a9c2e71d4b855:42`). A message on a topic's
//! broker channel is `EPOCH OFFSET PAYLOAD`, both numbers in decimal (the
//! broker's script writes it). Anything else is refused with `None`, never
//! a panic.

use rfc6455::PreparedMessage;
use rfc6455::rt::hub::Position;

use super::cluster::Carried;

/// `position` as clients read and write it.
pub fn position(position: Position) -> String {
    format!("{:x}:{}", position.epoch, position.offset)
}

/// A position as a client wrote it.
pub fn parse_position(text: &str) -> Option<Position> {
    let (epoch, offset) = text.split_once(':')?;
    let digits = |s: &str, radix| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if !digits(epoch, 16) || !digits(offset, 10) {
        return None;
    }
    Some(Position {
        epoch: u64::from_str_radix(epoch, 16).ok()?,
        offset: offset.parse().ok()?,
    })
}

/// What a plain subscriber receives for a publish: `MSG topic payload`.
pub fn plain(topic: &str, payload: &str) -> PreparedMessage {
    PreparedMessage::text(format!("MSG {topic} {payload}"))
}

/// What a subscriber with positions receives: `MSGP topic EPOCH:OFFSET
/// payload`.
pub fn positioned(topic: &str, at: Position, payload: &str) -> PreparedMessage {
    PreparedMessage::text(format!("MSGP {topic} {} {payload}", position(at)))
}

/// A message on a topic's broker channel: its position in the topic's
/// shared history, and the payload.
pub fn decode_notice(bytes: &[u8]) -> Option<(Position, &str)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (epoch, rest) = text.split_once(' ')?;
    let (offset, payload) = rest.split_once(' ')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let at = Position {
        epoch: number(epoch)?,
        offset: number(offset).filter(|&offset| offset > 0)?,
    };
    Some((at, payload))
}

/// The channel message the broker's script writes for a publish at `at`.
pub fn encode_notice(at: Position, payload: &str) -> Vec<u8> {
    format!("{} {} {payload}", at.epoch, at.offset).into_bytes()
}

/// A client's subscriptions as a handoff carries them: a line each,
/// `P topic [EPOCH:OFFSET]` with positions, `S topic` plain.
pub fn encode_carried(carried: &[Carried]) -> Vec<u8> {
    let mut text = String::new();
    for Carried {
        topic,
        positioned,
        last,
    } in carried
    {
        text.push_str(if *positioned { "P " } else { "S " });
        text.push_str(topic);
        if let Some(last) = last {
            text.push(' ');
            text.push_str(&position(*last));
        }
        text.push('\n');
    }
    text.into_bytes()
}

/// What [`encode_carried`] wrote; `None` for anything else.
pub fn decode_carried(bytes: &[u8]) -> Option<Vec<Carried>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .map(|line| {
            let mut words = line.split(' ');
            let positioned = match words.next()? {
                "P" => true,
                "S" => false,
                _ => return None,
            };
            let topic = words.next().filter(|t| !t.is_empty())?.to_owned();
            let last = match words.next() {
                None => None,
                Some(at) => Some(parse_position(at)?),
            };
            words.next().is_none().then_some(Carried {
                topic,
                positioned,
                last,
            })
        })
        .collect()
}
