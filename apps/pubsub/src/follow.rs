//! The client side of resuming: a [`Follower`] keeps the last position it
//! received on each topic it follows, and on every new connection (through
//! [`Reconnect`]: backoff, `Retry-After`, refusals) subscribes again from
//! there, so a dropped connection costs no message while the server's
//! history still holds them, and is reported when it does not.
//!
//! ```no_run
//! # async fn run() -> Result<(), rfc6455::Error> {
//! use pubsub::follow::{Event, Follower};
//! use rfc6455::rt::reconnect::Reconnect;
//!
//! let mut follower = Follower::new(Reconnect::new("ws://127.0.0.1:9101/")?).follow("news");
//! loop {
//!     match follower.next().await? {
//!         Event::Message { topic, at, payload } => println!("{topic} {at:?} {payload}"),
//!         Event::Lost { topic, last, earliest } => eprintln!("{topic}: lost {last:?}..{earliest:?}"),
//!         _ => {}
//!     }
//! }
//! # }
//! ```

use std::collections::{BTreeMap, VecDeque};

use rfc6455::rt::hub::Position;
use rfc6455::rt::reconnect::Reconnect;
use rfc6455::rt::tokio::{MaybeTlsStream, WebSocketStream};
use rfc6455::{Error, Message};

use super::wire;

/// What [`Follower::next`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A connection opened, and every topic was asked for again.
    Connected,
    /// A message on a followed topic, at its position (never one at or
    /// before a position already seen in the same epoch).
    Message {
        /// The topic.
        topic: String,
        /// Its position.
        at: Position,
        /// The payload.
        payload: String,
    },
    /// A topic is followed live from now (its first subscription).
    Subscribed {
        /// The topic.
        topic: String,
    },
    /// A resume was answered: the `replayed` messages before this were the
    /// ones missed, and the live ones follow.
    Resumed {
        /// The topic.
        topic: String,
        /// Messages replayed.
        replayed: u64,
    },
    /// The history no longer reached back to `last` (or it is of an older
    /// epoch): the messages after it and before `earliest` are lost; those
    /// from `earliest` on were replayed.
    Lost {
        /// The topic.
        topic: String,
        /// The last position received before.
        last: Position,
        /// The oldest position the server still held.
        earliest: Position,
    },
    /// Anything else the server sent, and an answer to a subscription whose
    /// count or position does not parse, as sent (its `ERR` to a
    /// subscription ends the connection, so the next one asks again after
    /// the backoff).
    Other(String),
    /// The connection ended; the next call opens another.
    Disconnected,
}

/// Follows topics across reconnections (see the [module docs](self)).
pub struct Follower {
    reconnect: Reconnect,
    /// Each topic followed, and the last position received on it.
    topics: BTreeMap<String, Option<Position>>,
    ws: Option<WebSocketStream<MaybeTlsStream>>,
    /// Subscriptions sent on this connection, not yet answered, in order.
    asked: VecDeque<(String, Option<Position>)>,
}

impl Follower {
    /// A follower connecting through `reconnect`.
    pub fn new(reconnect: Reconnect) -> Self {
        Self {
            reconnect,
            topics: BTreeMap::new(),
            ws: None,
            asked: VecDeque::new(),
        }
    }

    /// Follows `topic` too, from the next connection on.
    #[must_use]
    pub fn follow(mut self, topic: &str) -> Self {
        self.topics.entry(topic.to_owned()).or_insert(None);
        self
    }

    /// Follows `topic` from after `last` (a position kept from an earlier
    /// run), from the next connection on.
    #[must_use]
    pub fn follow_from(mut self, topic: &str, last: Position) -> Self {
        self.topics.insert(topic.to_owned(), Some(last));
        self
    }

    /// The last position received on `topic`.
    pub fn position(&self, topic: &str) -> Option<Position> {
        self.topics.get(topic).copied().flatten()
    }

    /// The next event: connects (again) when needed and asks for every
    /// topic from its last position.
    ///
    /// # Errors
    ///
    /// What [`Reconnect::connect`] gives up on: a refusal, or a Close that
    /// says not to come back.
    pub async fn next(&mut self) -> Result<Event, Error> {
        if self.ws.is_none() {
            let mut ws = self.reconnect.connect().await?;
            self.asked.clear();
            for (topic, last) in &self.topics {
                let command = match last {
                    Some(last) => format!("SUBP {topic} {}", wire::position(*last)),
                    None => format!("SUBP {topic}"),
                };
                if let Err(error) = ws.feed(Message::text(command)).await {
                    return Ok(self.ended(ws, Some(&error)));
                }
                self.asked.push_back((topic.clone(), *last));
            }
            if let Err(error) = ws.flush().await {
                return Ok(self.ended(ws, Some(&error)));
            }
            self.ws = Some(ws);
            return Ok(Event::Connected);
        }
        loop {
            let ws = self.ws.as_mut().expect("connected");
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    let ws = self.ws.take().expect("connected");
                    return Ok(self.ended(ws, Some(&error)));
                }
                None => {
                    let ws = self.ws.take().expect("connected");
                    return Ok(self.ended(ws, None));
                }
            };
            if let Some(event) = self.read(&text) {
                if event == Event::Disconnected {
                    let ws = self.ws.take().expect("connected");
                    return Ok(self.ended(ws, None));
                }
                return Ok(event);
            }
        }
    }

    /// What one text from the server means; `None` for a repeat, dropped.
    fn read(&mut self, text: &str) -> Option<Event> {
        let words: Vec<&str> = text.splitn(4, ' ').collect();
        match words[..] {
            ["MSGP", topic, at, payload] => {
                let (Some(at), Some(last)) = (wire::parse_position(at), self.topics.get_mut(topic))
                else {
                    return Some(Event::Other(text.to_owned()));
                };
                if last.is_some_and(|last| last.epoch == at.epoch && at.offset <= last.offset) {
                    return None;
                }
                *last = Some(at);
                Some(Event::Message {
                    topic: topic.to_owned(),
                    at,
                    payload: payload.to_owned(),
                })
            }
            ["OK", "SUBP", topic, ..] if self.asked.front().is_some_and(|(t, _)| t == topic) => {
                let (topic, asked_from) = self.asked.pop_front().expect("asked");
                let rest: Vec<&str> = text.split(' ').skip(3).collect();
                // A count or position it cannot read is handed over as sent:
                // the answer is not dropped, nor made up.
                let unread = || Event::Other(text.to_owned());
                Some(match (&rest[..], asked_from) {
                    (["RECOVERED", n], _) => n
                        .parse()
                        .map_or_else(|_| unread(), |replayed| Event::Resumed { topic, replayed }),
                    (["UNRECOVERABLE", earliest, _], Some(last)) => wire::parse_position(earliest)
                        .map_or_else(unread, |earliest| Event::Lost {
                            topic,
                            last,
                            earliest,
                        }),
                    _ => Event::Subscribed { topic },
                })
            }
            // A subscription refused (the server's history unreachable, a
            // limit): this connection cannot follow everything.
            ["ERR", ..] if !self.asked.is_empty() => {
                self.asked.pop_front();
                Some(Event::Disconnected)
            }
            _ => Some(Event::Other(text.to_owned())),
        }
    }

    fn ended(&mut self, ws: WebSocketStream<MaybeTlsStream>, error: Option<&Error>) -> Event {
        self.reconnect.ended(&ws, error);
        self.asked.clear();
        Event::Disconnected
    }
}
