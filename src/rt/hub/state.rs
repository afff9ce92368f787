//! The hub's books: members, topics with their subscribers and
//! positions, and how one delivery meets a subscriber's queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::history::{Held, History};
use super::{Entry, HubConfig, HubError, HubShared, HubStats, Publish, Slot, SlowPolicy};
use crate::PreparedMessage;

pub(super) struct State {
    pub(super) members: HashMap<u64, Entry>,
    pub(super) topics: HashMap<Box<str>, Topic>,
    pub(super) next_id: u64,
    pub(super) stats: HubStats,
    /// Where the next topic's epoch comes from: random per hub, so a new
    /// process (or a new hub) never repeats one.
    epochs: u64,
}

/// A topic's subscribers and its position (with what it keeps).
pub(super) struct Topic {
    /// Members that get the plain message, with their queues: a publish
    /// reaches a queue without looking its member up (benches/echo
    /// `fanout.sh unpaced`, 10 000 × 16 B).
    pub(super) plain: HashMap<u64, Arc<Slot>>,
    /// Members that get the message with its position
    /// ([`Hub::subscribe_from`]).
    pub(super) positioned: HashMap<u64, Arc<Slot>>,
    pub(super) history: History,
    /// When its last publish ended: a topic quiet since long enough is
    /// written to directly ([`HubConfig::direct_after`]).
    pub(super) quiet_since: Option<Instant>,
}

impl Topic {
    pub(super) fn subscribers(&self) -> usize {
        self.plain.len() + self.positioned.len()
    }
}

impl State {
    pub(super) fn new() -> Self {
        use rand::TryRng as _;
        let mut seed = [0u8; 8];
        // Without entropy, the clock still makes a new process's epochs new.
        if rand::rngs::SysRng.try_fill_bytes(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            seed = (nanos as u64).to_le_bytes();
        }
        Self {
            members: HashMap::new(),
            topics: HashMap::new(),
            next_id: 0,
            stats: HubStats::default(),
            epochs: u64::from_le_bytes(seed),
        }
    }

    /// `topic`'s entry, made (with a new epoch) if there is room for one.
    pub(super) fn topic(
        &mut self,
        config: &HubConfig,
        topic: &str,
    ) -> Result<&mut Topic, HubError> {
        if !self.topics.contains_key(topic) && self.topics.len() >= config.max_topics {
            self.make_room(config);
            if self.topics.len() >= config.max_topics {
                return Err(HubError::TooManyTopics(config.max_topics));
            }
        }
        let epochs = &mut self.epochs;
        Ok(self.topics.entry(topic.into()).or_insert_with(|| {
            // splitmix64: every topic made takes the next value of a
            // random sequence, so no epoch repeats within the hub.
            *epochs = epochs.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *epochs;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Topic {
                plain: HashMap::new(),
                positioned: HashMap::new(),
                history: History::new(z ^ (z >> 31)),
                quiet_since: None,
            }
        }))
    }

    /// At the topic limit, a topic that only keeps a history gives way to
    /// a new one: those whose messages all aged out, else the one whose
    /// newest message is oldest. Its members find a new epoch on return,
    /// and are told so ([`Resumed::recovered`]).
    pub(super) fn make_room(&mut self, config: &HubConfig) {
        let now = Instant::now();
        let mut held = Held::default();
        self.topics.retain(|_, topic| {
            if topic.subscribers() > 0 {
                return true;
            }
            let evicted = topic.history.evict(Some(now), &config.history);
            held.messages += evicted.messages;
            held.bytes += evicted.bytes;
            !topic.history.is_empty()
        });
        if self.topics.len() >= config.max_topics {
            let stalest = self
                .topics
                .iter()
                .filter(|(_, topic)| topic.subscribers() == 0)
                .min_by_key(|(_, topic)| topic.history.newest())
                .map(|(name, _)| name.clone());
            if let Some(topic) = stalest.and_then(|name| self.topics.remove(&name)) {
                let forgotten = topic.history.forgotten();
                held.messages += forgotten.messages;
                held.bytes += forgotten.bytes;
            }
        }
        self.hold(held);
    }

    /// Subscribes member `id` to `topic` (`positioned`: with positions);
    /// `Ok(None)` if it already was.
    pub(super) fn link(
        &mut self,
        shared: &HubShared,
        id: u64,
        topic: &str,
        positioned: bool,
    ) -> Result<Option<()>, HubError> {
        let config = &shared.config;
        if topic.is_empty() || topic.len() > config.max_topic_len {
            return Err(HubError::TopicLength(config.max_topic_len));
        }
        let Some(entry) = self.members.get(&id) else {
            return Err(HubError::Closed);
        };
        if entry.topics.contains(topic) {
            return Ok(None);
        }
        if entry.topics.len() >= config.max_topics_per_member {
            return Err(HubError::TooManySubscriptions(config.max_topics_per_member));
        }
        let slot = Arc::clone(&entry.slot);
        let target = self.topic(config, topic)?;
        let first = target.subscribers() == 0;
        if positioned {
            target.positioned.insert(id, slot);
        } else {
            target.plain.insert(id, slot);
        }
        if let Some(entry) = self.members.get_mut(&id) {
            entry.topics.insert(topic.into());
        }
        self.stats.subscriptions += 1;
        self.stats.topics += usize::from(first);
        Ok(Some(()))
    }

    /// Drops `id` from `topic`'s subscribers (and the topic once it has
    /// none and keeps nothing).
    pub(super) fn unlink(&mut self, id: u64, topic: &str) {
        if let Some(target) = self.topics.get_mut(topic) {
            if target.plain.remove(&id).is_none() {
                target.positioned.remove(&id);
            }
            if target.subscribers() == 0 {
                self.stats.topics -= 1;
                if target.history.is_empty() {
                    self.topics.remove(topic);
                }
            }
        }
        self.stats.subscriptions -= 1;
    }

    /// Counts what histories gained or lost.
    pub(super) fn hold(&mut self, held: Held) {
        self.stats.history_messages = self
            .stats
            .history_messages
            .saturating_add_signed(held.messages);
        self.stats.history_bytes = self.stats.history_bytes.saturating_add_signed(held.bytes);
    }

    /// Removes a member and its subscriptions.
    pub(super) fn remove(&mut self, id: u64) {
        if let Some(entry) = self.members.remove(&id) {
            for topic in &entry.topics {
                self.unlink(id, topic);
            }
        }
        self.stats.members = self.members.len();
    }
}

/// What [`deliver`] did for one subscriber.
pub(super) enum Delivered {
    /// The message waits in its queue.
    Queued,
    /// Dropped for it (the policy, or overload).
    Dropped,
    /// The policy closed it.
    Closed,
}

/// Queues `message` (`len` bytes with its slot, `charge` of them in the
/// hub's total: both counted in the totals by the caller) on one
/// subscriber's queue, or applies the policy to a full one.
pub(super) fn deliver(
    shared: &HubShared,
    slot: &Slot,
    message: &PreparedMessage,
    (len, charge): (usize, usize),
    progress: u64,
    report: &mut Publish,
) -> Delivered {
    let mut queue = slot.queue_behind();
    if queue.bytes < shared.config.queue_limit {
        queue.push_counted(message.clone(), len, charge, shared);
        report.delivered += 1;
        return Delivered::Queued;
    }
    match &shared.config.policy {
        SlowPolicy::DropNewest => report.dropped += 1,
        SlowPolicy::KeepLatest => {
            report.dropped += queue.clear(shared);
            queue.push_counted(message.clone(), len, charge, shared);
            report.delivered += 1;
            return Delivered::Queued;
        }
        SlowPolicy::Close { code, reason } => {
            if queue.is_slow(progress, &shared.config) {
                queue.close = Some((*code, reason));
                report.dropped += queue.clear(shared);
                queue.wake();
                report.closed += 1;
                return Delivered::Closed;
            }
            report.dropped += 1;
        }
    }
    Delivered::Dropped
}
