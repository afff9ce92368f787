//! Positions and the kept messages of a topic: what lets a subscriber that
//! was away resume where it left off (see [`Hub::subscribe_from`]).
//!
//! [`Hub::subscribe_from`]: super::Hub::subscribe_from

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::PreparedMessage;

use super::ENTRY_COST;

/// A message's place in its topic: `offset` rises by one per message
/// published to the topic; `epoch` names the run of offsets, and changes
/// whenever the topic's continuity is lost (the hub forgot the topic, or
/// the process is a new one), so offsets of two epochs never compare.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The run of offsets this one belongs to.
    pub epoch: u64,
    /// The message's number in its epoch: the first message is 1, so
    /// "after offset 0" is every message of the epoch.
    pub offset: u64,
}

/// How much of each topic's past the hub keeps for subscribers that
/// resume ([`Hub::subscribe_from`](super::Hub::subscribe_from)); the oldest
/// messages go first once any bound is passed. Kept messages share their
/// payload with the queues: each costs its payload and a 16-byte slot,
/// counted in [`HubStats::history_bytes`](super::HubStats::history_bytes).
/// At most [`HubConfig::max_topics`](super::HubConfig::max_topics) topics
/// keep a history, so the hub keeps at most that times `max_bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryConfig {
    /// Messages kept per topic. Default 0: no history (positions are still
    /// given, and a resume is exact only when nothing was missed).
    pub max_messages: usize,
    /// Bytes kept per topic (payload plus slot). Default 256 KiB; keep it
    /// below [`HubConfig::queue_limit`](super::HubConfig::queue_limit), as a
    /// replay is queued like live messages.
    pub max_bytes: usize,
    /// How long a message is kept. Default five minutes.
    pub max_age: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_messages: 0,
            max_bytes: 256 << 10,
            max_age: Duration::from_secs(300),
        }
    }
}

by_value_setters! {
    HistoryConfig {
        /// Sets [`max_messages`](Self::max_messages).
        max_messages: usize;
        /// Sets [`max_bytes`](Self::max_bytes).
        max_bytes: usize;
        /// Sets [`max_age`](Self::max_age).
        max_age: Duration;
    }
}

/// What [`Hub::subscribe_from`](super::Hub::subscribe_from) did: messages
/// `first..next` were queued for the member from the history, and the
/// live ones follow from `next` with no gap and no duplicate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// The first replayed message's position (`next` when none was).
    pub first: Position,
    /// The position the topic's next message takes.
    pub next: Position,
    /// Every message after the asked position was replayed. `false` when
    /// the history no longer reaches back to it or its epoch is not the
    /// topic's: the replay then starts at the oldest kept message
    /// (`first`), and the messages between the asked position and `first`
    /// (in an older epoch: all after it) are lost to this subscriber.
    pub recovered: bool,
}

impl Resumed {
    /// Messages replayed.
    #[must_use]
    pub fn replayed(&self) -> u64 {
        self.next.offset - self.first.offset
    }
}

/// One topic's epoch, next offset and kept messages (oldest first).
#[derive(Debug)]
pub(super) struct History {
    epoch: u64,
    next: u64,
    kept: VecDeque<(Instant, PreparedMessage)>,
    bytes: usize,
}

/// A change in what histories hold: messages and bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) messages: isize,
    pub(super) bytes: isize,
}

impl History {
    pub(super) fn new(epoch: u64) -> Self {
        Self {
            epoch,
            next: 1,
            kept: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The position the next message takes.
    pub(super) fn next(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.next,
        }
    }

    /// Nothing kept.
    pub(super) fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// When the newest kept message was published.
    pub(super) fn newest(&self) -> Option<Instant> {
        self.kept.back().map(|(at, _)| *at)
    }

    /// What forgetting this history takes from the counts.
    pub(super) fn forgotten(&self) -> Held {
        Held {
            messages: -(self.kept.len().cast_signed()),
            bytes: -(self.bytes.cast_signed()),
        }
    }

    /// Makes `at` the position the next message takes: a position other
    /// than the expected one breaks the history's continuity, so what it
    /// kept goes (a resume then reaches back only to `at`).
    pub(super) fn restart_at(&mut self, at: Position) -> Held {
        if at == self.next() {
            return Held::default();
        }
        let held = self.forgotten();
        self.epoch = at.epoch;
        self.next = at.offset;
        self.kept.clear();
        self.bytes = 0;
        held
    }

    /// Gives `message` the next position, keeping it if `config` keeps any.
    pub(super) fn record(
        &mut self,
        message: &PreparedMessage,
        now: Option<Instant>,
        config: &HistoryConfig,
    ) -> (Position, Held) {
        let position = self.next();
        self.next += 1;
        let mut held = Held::default();
        if let Some(now) = now
            && config.max_messages > 0
        {
            let len = message.len() + ENTRY_COST;
            self.kept.push_back((now, message.clone()));
            self.bytes += len;
            held = Held {
                messages: 1,
                bytes: len.cast_signed(),
            };
        }
        let evicted = self.evict(now, config);
        (
            position,
            Held {
                messages: held.messages + evicted.messages,
                bytes: held.bytes + evicted.bytes,
            },
        )
    }

    /// Drops the oldest messages past any bound (age only given `now`).
    pub(super) fn evict(&mut self, now: Option<Instant>, config: &HistoryConfig) -> Held {
        let mut held = Held::default();
        while let Some((at, oldest)) = self.kept.front() {
            let aged = now.is_some_and(|now| now.saturating_duration_since(*at) > config.max_age);
            if !aged && self.kept.len() <= config.max_messages && self.bytes <= config.max_bytes {
                break;
            }
            let len = oldest.len() + ENTRY_COST;
            self.bytes -= len;
            self.kept.pop_front();
            held.messages -= 1;
            held.bytes -= len.cast_signed();
        }
        held
    }

    /// The kept messages after `from` (all kept ones when it cannot be
    /// honoured exactly), and what the replay amounts to.
    pub(super) fn after(
        &self,
        from: Option<Position>,
    ) -> (impl Iterator<Item = &PreparedMessage>, Resumed) {
        let earliest = self.next - self.kept.len() as u64;
        let next = self.next();
        // A live subscription (no position asked) replays nothing.
        let (start, recovered) = match from {
            None => (self.next, true),
            Some(from) if from.epoch == self.epoch && from.offset < self.next => {
                let start = from.offset + 1;
                if start >= earliest {
                    (start, true)
                } else {
                    (earliest, false)
                }
            }
            Some(_) => (earliest, false),
        };
        let skip = usize::try_from(start - earliest).unwrap_or(usize::MAX);
        let resumed = Resumed {
            first: Position {
                epoch: self.epoch,
                offset: start,
            },
            next,
            recovered,
        };
        (self.kept.iter().skip(skip).map(|(_, m)| m), resumed)
    }
}
