//! The codec of permessage-deflate (RFC 7692 §7.2): one direction's
//! compressor and the other's inflater, each holding its zlib state only
//! while the connection is busy.

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::MIN_ZLIB_WINDOW;
use crate::error::ProtocolError;

/// The bytes a sync flush ends with, removed on send and restored on receive (§7.2.1, §7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest growth of the inflate buffer.
const INFLATE_STEP: usize = 32 * 1024;

/// Zlib states kept between the messages of connections that start each
/// message afresh (no context takeover), so such a connection holds none
/// between messages and does not build one (about 256 KiB to compress) per
/// message. A handle, not global state: the connections whose
/// [`DeflateConfig`](super::DeflateConfig) holds clones of one pool share
/// it (a builder's connections share their config), and it goes when the
/// last clone does. At most [`capacity`](Self::with_capacity) states of
/// each kind are kept; a state is reset before it is put back.
///
/// Measured (`benches/README.md`, "deflate states: pooled or per
/// connection"): 1 000 subscribers of a compressed fan-out hold 20 MB with
/// the pool and 250 MB with a state each.
#[derive(Clone)]
pub struct DeflatePool {
    shared: Arc<Pools>,
}

struct Pools {
    capacity: usize,
    compressors: Mutex<Vec<(SharedKey, Compress)>>,
    decompressors: Mutex<Vec<(u8, Decompress)>>,
}

impl DeflatePool {
    /// A pool keeping at most `capacity` states of each kind (0 keeps none:
    /// every message of a connection without context takeover builds its
    /// own).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Pools {
                capacity,
                compressors: Mutex::new(Vec::new()),
                decompressors: Mutex::new(Vec::new()),
            }),
        }
    }

    /// How many states of each kind it keeps at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// States kept now: (compressors, decompressors).
    #[must_use]
    pub fn kept(&self) -> (usize, usize) {
        (
            lock(&self.shared.compressors).len(),
            lock(&self.shared.decompressors).len(),
        )
    }

    fn take<K: PartialEq, T>(pool: &Mutex<Vec<(K, T)>>, key: &K) -> Option<T> {
        let mut pool = lock(pool);
        let at = pool.iter().rposition(|(k, _)| k == key)?;
        Some(pool.swap_remove(at).1)
    }

    fn put<K, T>(&self, pool: &Mutex<Vec<(K, T)>>, key: K, state: T) {
        let mut pool = lock(pool);
        if pool.len() < self.shared.capacity {
            pool.push((key, state));
        }
    }
}

impl Default for DeflatePool {
    /// A new pool of 8 states of each kind.
    fn default() -> Self {
        Self::with_capacity(8)
    }
}

impl PartialEq for DeflatePool {
    /// Two handles are equal when they share one pool.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for DeflatePool {}

impl fmt::Debug for DeflatePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (compressors, decompressors) = self.kept();
        f.debug_struct("DeflatePool")
            .field("capacity", &self.shared.capacity)
            .field("compressors", &compressors)
            .field("decompressors", &decompressors)
            .finish()
    }
}

/// Compresses outgoing messages. The zlib state is made (or taken from the
/// pool) on the first compressed message, not at the handshake; with no
/// context takeover it goes back to the pool after each message, and with
/// context takeover [`release`](Self::release) lets it go while the
/// connection is idle (the next message then refers to nothing before it,
/// which every decompressor accepts).
pub(crate) struct Deflater {
    pool: DeflatePool,
    compress: Option<Compress>,
    fresh_each_message: bool,
    pub(crate) threshold: usize,
    key: SharedKey,
}

/// What makes two compressors interchangeable between messages.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedKey {
    level: u32,
    window_bits: u8,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("fresh_each_message", &self.fresh_each_message)
            .field("live", &self.compress.is_some())
            .finish_non_exhaustive()
    }
}

impl Deflater {
    pub(crate) fn new(
        level: u32,
        window_bits: u8,
        fresh_each_message: bool,
        threshold: usize,
        pool: DeflatePool,
    ) -> Self {
        Self {
            pool,
            compress: None,
            fresh_each_message,
            threshold,
            key: SharedKey {
                level: level.min(9),
                window_bits: window_bits.clamp(MIN_ZLIB_WINDOW, 15),
            },
        }
    }

    /// The key under which this compressor's output may be shared between
    /// connections: only with no context takeover.
    pub(crate) fn shared_key(&self) -> Option<SharedKey> {
        self.fresh_each_message.then_some(self.key)
    }

    /// Whether a zlib state is held.
    pub(crate) fn is_live(&self) -> bool {
        self.compress.is_some()
    }

    /// The window and whether each message starts afresh (what a snapshot
    /// carries: the context itself is let go).
    pub(crate) fn params(&self) -> (u8, bool) {
        (self.key.window_bits, self.fresh_each_message)
    }

    /// Lets the zlib state go (the connection is idle).
    pub(crate) fn release(&mut self) {
        self.compress = None;
    }

    fn state(&mut self) -> &mut Compress {
        let key = self.key;
        let pool = &self.pool;
        self.compress.get_or_insert_with(|| {
            DeflatePool::take(&pool.shared.compressors, &key).unwrap_or_else(|| {
                Compress::new_with_window_bits(Compression::new(key.level), false, key.window_bits)
            })
        })
    }

    pub(crate) fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity((payload.len() / 2).saturating_add(64));
        let mut consumed = 0usize;
        let compress = self.state();
        loop {
            out.reserve((payload.len().saturating_sub(consumed) / 2).saturating_add(64));
            let before = compress.total_in();
            // Compressing into spare room never fails on a stream we produce.
            let _ = compress.compress_vec(
                payload.get(consumed..).unwrap_or_default(),
                &mut out,
                FlushCompress::Sync,
            );
            let taken =
                usize::try_from(compress.total_in().saturating_sub(before)).unwrap_or(usize::MAX);
            consumed = consumed.saturating_add(taken);
            // The flush is complete once all input is in and room was left over.
            if consumed >= payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TRAILER) {
            out.truncate(out.len().saturating_sub(TRAILER.len()));
        }
        if out.is_empty() {
            // An empty message is sent as one empty byte (§7.2.3.6).
            out.push(0x00);
        }
        if self.fresh_each_message
            && let Some(mut compress) = self.compress.take()
        {
            compress.reset();
            self.pool
                .put(&self.pool.shared.compressors, self.key, compress);
        }
        out
    }
}

/// Inflates received messages. The zlib state is made on the first
/// compressed message; with no context takeover it goes back to the pool
/// after each message. With context takeover the peer may refer to anything
/// in the window, so the window's bytes (the last 2^bits of what was
/// inflated) are kept beside the state: [`release`](Self::release) lets the
/// state go while the connection is idle, and the next message's state
/// starts from them as its dictionary. An idle connection then holds the
/// window's bytes, not the whole state (about 48 KiB with zlib-rs,
/// whatever the window).
pub(crate) struct Inflater {
    pool: DeflatePool,
    decompress: Option<Decompress>,
    window_bits: u8,
    fresh_each_message: bool,
    ended: bool,
    /// With context takeover: the last 2^`window_bits` bytes inflated.
    history: VecDeque<u8>,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("fresh_each_message", &self.fresh_each_message)
            .field("live", &self.decompress.is_some())
            .field("history", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl Inflater {
    pub(crate) fn new(window_bits: u8, fresh_each_message: bool, pool: DeflatePool) -> Self {
        Self {
            pool,
            decompress: None,
            window_bits: window_bits.clamp(MIN_ZLIB_WINDOW, 15),
            fresh_each_message,
            ended: false,
            history: VecDeque::new(),
        }
    }

    /// Whether a zlib state is held.
    pub(crate) fn is_live(&self) -> bool {
        self.decompress.is_some()
    }

    /// The window, whether each message starts afresh, and the window's
    /// bytes (what a snapshot carries between messages).
    pub(crate) fn params(&self) -> (u8, bool, (&[u8], &[u8])) {
        (
            self.window_bits,
            self.fresh_each_message,
            self.history.as_slices(),
        )
    }

    /// Restores the window's bytes a snapshot carried: at most 2^bits,
    /// and only with context takeover; the next message's state starts
    /// from them.
    pub(crate) fn set_history(&mut self, history: &[u8]) -> bool {
        let fits = history.len() <= 1usize << self.window_bits;
        if !fits || (self.fresh_each_message && !history.is_empty()) {
            return false;
        }
        self.decompress = None;
        self.history = history.iter().copied().collect();
        true
    }

    /// Lets the zlib state go, keeping the window's bytes; only between messages.
    pub(crate) fn release(&mut self) {
        self.decompress = None;
    }

    /// A state for the next message: the one kept, a pooled one (no context
    /// takeover), or a new one primed with the window's bytes.
    fn state(&mut self) -> Result<Decompress, ProtocolError> {
        if let Some(decompress) = self.decompress.take() {
            return Ok(decompress);
        }
        let bits = self.window_bits;
        if self.fresh_each_message {
            return Ok(DeflatePool::take(&self.pool.shared.decompressors, &bits)
                .unwrap_or_else(|| Decompress::new_with_window_bits(false, bits)));
        }
        let mut decompress = Decompress::new_with_window_bits(false, bits);
        if !self.history.is_empty() {
            decompress
                .set_dictionary(self.history.make_contiguous())
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
        }
        Ok(decompress)
    }

    /// Keeps the last 2^bits bytes of what has been inflated (context takeover).
    fn remember(&mut self, message: &[u8]) {
        let window = 1usize << self.window_bits;
        let tail = message
            .get(message.len().saturating_sub(window)..)
            .unwrap_or_default();
        let excess = self
            .history
            .len()
            .saturating_add(tail.len())
            .saturating_sub(window);
        self.history.drain(..excess.min(self.history.len()));
        self.history.extend(tail);
    }

    /// Inflates one frame's payload onto `out` (the message so far); at
    /// `fin`, the message is complete.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut decompress = self.state()?;
        let mut result = self.feed(&mut decompress, input, out, limit);
        if result.is_ok() && fin {
            result = self.feed(&mut decompress, &TRAILER, out, limit);
            if result.is_ok() {
                if self.fresh_each_message {
                    self.ended = false;
                    decompress.reset(false);
                    let pool = &self.pool;
                    pool.put(&pool.shared.decompressors, self.window_bits, decompress);
                    return Ok(());
                }
                if self.ended {
                    // A peer that ended its stream starts a new one, which
                    // refers to nothing before it.
                    self.ended = false;
                    decompress.reset(false);
                    self.history.clear();
                } else {
                    self.remember(out);
                }
            }
        }
        // After an error the connection fails: the state is not pooled.
        self.decompress = Some(decompress);
        result
    }

    fn feed(
        &mut self,
        decompress: &mut Decompress,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut consumed = 0usize;
        while !self.ended {
            if out.len() == out.capacity() {
                // Grow geometrically, but never past one byte over the limit
                // (enough to see it crossed): memory stays within the limit.
                let target = out
                    .len()
                    .saturating_mul(2)
                    .max(out.len().saturating_add(INFLATE_STEP))
                    .min(limit.saturating_add(1))
                    .max(out.len().saturating_add(1));
                out.reserve_exact(target.saturating_sub(out.len()));
            }
            let (before_in, before_out) = (decompress.total_in(), out.len());
            let status = decompress
                .decompress_vec(
                    input.get(consumed..).unwrap_or_default(),
                    out,
                    FlushDecompress::Sync,
                )
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let taken = usize::try_from(decompress.total_in().saturating_sub(before_in))
                .unwrap_or(usize::MAX);
            consumed = consumed.saturating_add(taken);
            if out.len() > limit {
                return Err(ProtocolError::MessageTooBig);
            }
            if status == Status::StreamEnd {
                self.ended = true;
            } else if consumed >= input.len() && out.len() < out.capacity() {
                break;
            } else if taken == 0 && out.len() == before_out && out.len() < out.capacity() {
                // No progress with input left and room to write: corrupt data.
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7692 §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
    #[test]
    fn rfc_hello() {
        let mut deflater = Deflater::new(6, 15, false, 0, DeflatePool::default());
        assert_eq!(
            deflater.compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        let mut inflater = Inflater::new(15, false, DeflatePool::default());
        let mut out = Vec::new();
        inflater
            .inflate(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                100,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    // §7.2.3.2: with context takeover the second "Hello" refers back to the first.
    #[test]
    fn rfc_context_takeover_second_message() {
        let mut inflater = Inflater::new(15, false, DeflatePool::default());
        let mut out = Vec::new();
        inflater
            .inflate(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                100,
            )
            .unwrap();
        out.clear();
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
        let mut deflater = Deflater::new(6, 15, false, 0, DeflatePool::default());
        deflater.compress(b"Hello");
        let second = deflater.compress(b"Hello");
        assert!(
            second.len() < 7,
            "the second message uses the shared context: {second:x?}"
        );
    }

    // §7.2.3.3: a stored (uncompressed) block is valid input.
    #[test]
    fn rfc_stored_block() {
        let mut inflater = Inflater::new(15, false, DeflatePool::default());
        let mut out = Vec::new();
        inflater
            .inflate(
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
                ],
                true,
                &mut out,
                100,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let mut deflater = Deflater::new(9, 15, false, 0, DeflatePool::default());
        let bomb = deflater.compress(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let mut inflater = Inflater::new(15, false, DeflatePool::default());
        let mut out = Vec::new();
        assert_eq!(
            inflater.inflate(&bomb, true, &mut out, 1 << 20),
            Err(ProtocolError::MessageTooBig)
        );
        assert!(
            out.capacity() <= (1 << 20) + 1,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn states_without_context_takeover_go_back_to_their_pool() {
        let pool = DeflatePool::with_capacity(1);
        let other = DeflatePool::default();
        let mut a = Deflater::new(6, 15, true, 0, pool.clone());
        let mut b = Deflater::new(6, 15, true, 0, pool.clone());
        let message = b"a message compressed afresh".repeat(10);
        let first = a.compress(&message);
        assert_eq!(pool.kept(), (1, 0));
        // The second connection takes the state the first gave back, and
        // it was reset: the same bytes come out.
        assert_eq!(b.compress(&message), first);
        assert_eq!(pool.kept(), (1, 0), "at most its capacity");
        assert!(
            !a.is_live() && !b.is_live(),
            "no state held between messages"
        );
        let mut inflater = Inflater::new(15, true, pool.clone());
        let mut out = Vec::new();
        inflater.inflate(&first, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, message);
        assert_eq!(pool.kept(), (1, 1));
        assert_eq!(other.kept(), (0, 0), "another pool shares nothing");
        assert!(pool == pool.clone() && pool != other);
    }
}
