//! What one node publishes to the broker for the others: the message and
//! where it came from, so a node can drop its own publishes coming back
//! (it delivered them locally already), drop anything it has seen, and
//! count what went missing.
//!
//! On the wire, one header line and the payload:
//!
//! ```text
//! rfc6455-pubsub/1 ORIGIN EPOCH SEQ TOPIC\n
//! PAYLOAD
//! ```
//!
//! `ORIGIN` is the publishing node's id and `EPOCH` changes each time that
//! node starts (both 16 lowercase hex digits); `SEQ` counts the node's
//! publishes to `TOPIC` within the epoch, from 1, in decimal. The topic is
//! the one the client named (no spaces, no line breaks); the payload is
//! anything. A malformed envelope is an [`EnvelopeError`], never a panic.

use std::collections::HashMap;
use std::fmt;

/// The header line's first word; a different version is refused.
pub const MAGIC: &str = "rfc6455-pubsub/1";
/// The longest header line accepted (the topic is most of it).
pub const MAX_HEADER: usize = 1024;

/// Who published, and which of its publishes to the topic this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The publishing node.
    pub node: u64,
    /// The node's current run: a restarted node starts a new epoch.
    pub epoch: u64,
}

/// One publish as it travels between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Who published it.
    pub origin: Origin,
    /// The publish's number on its topic within the origin's epoch, from 1.
    pub seq: u64,
    /// The topic.
    pub topic: &'a str,
    /// The message itself.
    pub payload: &'a [u8],
}

/// Why bytes from the broker are not an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// No header line within [`MAX_HEADER`] bytes.
    NoHeader,
    /// The header is not UTF-8 or does not have its five fields.
    Malformed,
    /// Another version's envelope.
    Version,
    /// The origin, epoch or sequence number is not a number of its form.
    Number,
    /// The topic is empty or holds a space.
    Topic,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoHeader => "no header line",
            Self::Malformed => "malformed header",
            Self::Version => "unknown envelope version",
            Self::Number => "bad origin, epoch or sequence number",
            Self::Topic => "bad topic",
        })
    }
}

impl std::error::Error for EnvelopeError {}

impl<'a> Envelope<'a> {
    /// The envelope's bytes, for the broker.
    pub fn encode(&self) -> Vec<u8> {
        let header = format!(
            "{MAGIC} {:016x} {:016x} {} {}\n",
            self.origin.node, self.origin.epoch, self.seq, self.topic
        );
        let mut bytes = Vec::with_capacity(header.len() + self.payload.len());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(self.payload);
        bytes
    }

    /// Reads an envelope from the broker's bytes.
    ///
    /// # Errors
    ///
    /// [`EnvelopeError`] for anything but an envelope [`encode`](Self::encode)
    /// could have written.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let window = bytes.get(..MAX_HEADER.min(bytes.len())).unwrap_or(bytes);
        let end = window
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(EnvelopeError::NoHeader)?;
        let (header, rest) = bytes.split_at(end);
        let payload = rest.get(1..).unwrap_or_default();
        let header = std::str::from_utf8(header).map_err(|_| EnvelopeError::Malformed)?;
        let mut fields = header.split(' ');
        let (Some(magic), Some(node), Some(epoch), Some(seq), Some(topic), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(EnvelopeError::Malformed);
        };
        if magic != MAGIC {
            return Err(EnvelopeError::Version);
        }
        let hex = |field: &str| {
            if field.len() == 16
                && field
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                u64::from_str_radix(field, 16).map_err(|_| EnvelopeError::Number)
            } else {
                Err(EnvelopeError::Number)
            }
        };
        let origin = Origin {
            node: hex(node)?,
            epoch: hex(epoch)?,
        };
        let seq = if seq.bytes().all(|b| b.is_ascii_digit()) && !seq.starts_with('0') {
            seq.parse().map_err(|_| EnvelopeError::Number)?
        } else {
            return Err(EnvelopeError::Number);
        };
        if topic.is_empty() || topic.contains(['\r', '\n']) {
            return Err(EnvelopeError::Topic);
        }
        Ok(Self {
            origin,
            seq,
            topic,
            payload,
        })
    }
}

/// Numbers a node's publishes per topic within its epoch.
#[derive(Debug, Default)]
pub struct Sequencer {
    next: HashMap<String, u64>,
}

impl Sequencer {
    /// The next publish's number on `topic`, from 1.
    pub fn next(&mut self, topic: &str) -> u64 {
        let seq = match self.next.get_mut(topic) {
            Some(seq) => seq,
            None => self.next.entry(topic.to_owned()).or_insert(0),
        };
        *seq = seq.saturating_add(1);
        *seq
    }
}

/// What a receiving node makes of an envelope's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next one expected (or the first seen from this origin's epoch on
    /// this topic): deliver.
    InOrder,
    /// Deliver, but `missed` publishes before it never arrived (lost while
    /// the broker or this node's link to it was down).
    AfterGap {
        /// How many are missing.
        missed: u64,
    },
    /// Already delivered, or older than what was: drop.
    Duplicate,
}

/// The most publishing nodes a [`Tracker`] remembers at once; past it, the
/// one heard from least recently is forgotten. Nodes that restart with a
/// fresh id leave theirs behind, and broker input must not grow memory
/// without bound.
pub const MAX_ORIGINS: usize = 256;

/// Per origin epoch and topic, the last sequence number delivered: what
/// makes delivery at most once and gaps visible. A topic first seen part-way
/// (this node subscribed after the origin's first publishes) starts in order.
/// At most [`MAX_ORIGINS`] node ids are remembered.
#[derive(Debug, Default)]
pub struct Tracker {
    nodes: HashMap<u64, Heard>,
    clock: u64,
}

/// What a [`Tracker`] keeps of one publishing node: only its latest epoch.
#[derive(Debug)]
struct Heard {
    epoch: u64,
    /// When it was last heard from, on the tracker's clock.
    at: u64,
    /// Per topic, the last sequence number delivered.
    last: HashMap<String, u64>,
}

impl Tracker {
    /// Classifies `envelope` and records it if it is to be delivered. An
    /// origin's new epoch forgets its earlier one (the node restarted: their
    /// numbers will not come again). Allocates only for a topic not yet
    /// seen from that origin.
    pub fn arrive(&mut self, envelope: &Envelope<'_>) -> Arrival {
        let origin = envelope.origin;
        self.clock += 1;
        if !self.nodes.contains_key(&origin.node) && self.nodes.len() >= MAX_ORIGINS {
            // Forget the node heard from least recently.
            let oldest = (self.nodes.iter())
                .min_by_key(|(_, heard)| heard.at)
                .map(|(&node, _)| node);
            if let Some(oldest) = oldest {
                self.nodes.remove(&oldest);
            }
        }
        let heard = (self.nodes.entry(origin.node)).or_insert_with(|| Heard {
            epoch: origin.epoch,
            at: 0,
            last: HashMap::new(),
        });
        heard.at = self.clock;
        if heard.epoch != origin.epoch {
            heard.epoch = origin.epoch;
            heard.last.clear();
        }
        let last = match heard.last.get_mut(envelope.topic) {
            Some(last) => last,
            None => heard.last.entry(envelope.topic.to_owned()).or_insert(0),
        };
        if envelope.seq <= *last {
            return Arrival::Duplicate;
        }
        let first = *last == 0;
        let missed = envelope.seq - *last - 1;
        *last = envelope.seq;
        if first || missed == 0 {
            Arrival::InOrder
        } else {
            Arrival::AfterGap { missed }
        }
    }

    /// Forgets `topic` (this node no longer subscribes to it).
    pub fn forget_topic(&mut self, topic: &str) {
        for heard in self.nodes.values_mut() {
            heard.last.remove(topic);
        }
    }

    /// How many (origin epoch, topic) records are held.
    pub fn records(&self) -> usize {
        self.nodes.values().map(|heard| heard.last.len()).sum()
    }
}
