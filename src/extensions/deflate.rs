//! permessage-deflate (RFC 7692), feature `deflate`.
//!
//! Negotiation happens in the opening handshake: a client sends
//! [`DeflateConfig::offer`], a server answers with
//! [`DeflateConfig::negotiate`], and the client checks the answer with
//! [`DeflateConfig::accept`]. Both sides then hand the agreed
//! [`DeflateParams`] to [`Connection::set_deflate`](crate::Connection::set_deflate).
//! The adapters do all of this when [`Config::deflate`](crate::Config::deflate) is set.
//!
//! On the wire (§7.2): the first frame of a compressed message has RSV1 set;
//! the payload is raw DEFLATE with the trailing `00 00 ff ff` of a sync flush
//! removed. Control frames are never compressed. Received messages are
//! inflated in bounded steps and count against
//! [`Config::max_message_size`](crate::Config::max_message_size) as they grow,
//! so a small frame that would inflate to gigabytes fails with 1009 at the
//! limit.

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::handshake::{Extension, HandshakeError};

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// The bytes a sync flush ends with, removed on send and restored on receive (§7.2.1, §7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest growth of the inflate buffer.
const INFLATE_STEP: usize = 32 * 1024;

/// The smallest window zlib's raw deflate supports; RFC 7692 allows 8.
const MIN_ZLIB_WINDOW: u8 = 9;

/// What this endpoint asks for and accepts.
///
/// Window bits are 9–15 (zlib cannot compress with a window of 8; an offer
/// or answer that needs this endpoint to compress with 8 is declined).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0–9. Default 6.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 64 bytes.
    pub threshold: usize,
    /// The client's window bits to ask for (client offer) or to impose
    /// (server answer, when the client's offer allows it). Default 14.
    ///
    /// The receiving end keeps the last 2^bits bytes inflated while idle
    /// (16 KiB at 14, 32 KiB at 15), so this bounds what an idle connection
    /// with context takeover holds; the cost in compression is in
    /// `benches/README.md` (`cargo bench --features deflate --bench deflate_ratio`:
    /// 14 bits sends 3-5 % more bytes than 15 on this crate's sources).
    pub client_max_window_bits: u8,
    /// The server's window bits to ask for (client) or to use at most
    /// (server). Default 14, as [`client_max_window_bits`](Self::client_max_window_bits).
    ///
    /// A client's default offer thus asks the server for at most 14 bits; a
    /// server that cannot limit its window declines compression (RFC 7692
    /// §7.1.2.1). Set 15 (and 15 for the client's window) to offer no limits.
    pub server_max_window_bits: u8,
    /// Ask for (client) or impose (server) a fresh client context per message. Default false.
    pub client_no_context_takeover: bool,
    /// Ask for (client) or use (server) a fresh server context per message. Default false.
    pub server_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 64,
            client_max_window_bits: 14,
            server_max_window_bits: 14,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

by_value_setters! {
    DeflateConfig {
        /// Sets [`level`](Self::level).
        level: u32;
        /// Sets [`threshold`](Self::threshold).
        threshold: usize;
        /// Sets [`client_max_window_bits`](Self::client_max_window_bits).
        client_max_window_bits: u8;
        /// Sets [`server_max_window_bits`](Self::server_max_window_bits).
        server_max_window_bits: u8;
        /// Sets [`client_no_context_takeover`](Self::client_no_context_takeover).
        client_no_context_takeover: bool;
        /// Sets [`server_no_context_takeover`](Self::server_no_context_takeover).
        server_no_context_takeover: bool;
    }
}

/// What both ends agreed on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server starts each message with a fresh context.
    pub server_no_context_takeover: bool,
    /// The client starts each message with a fresh context.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this window (8–15).
    pub server_max_window_bits: u8,
    /// The client compresses with at most this window (8–15).
    pub client_max_window_bits: u8,
}

impl fmt::Display for DeflateParams {
    /// The `Sec-WebSocket-Extensions` value a server answers with.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if self.server_max_window_bits < 15 {
            write!(
                f,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            )?;
        }
        if self.client_max_window_bits < 15 {
            write!(
                f,
                "; client_max_window_bits={}",
                self.client_max_window_bits
            )?;
        }
        Ok(())
    }
}

/// The parameters of one offer or answer, checked: known names, no
/// duplicates, window bits 8–15 (§7.1). `client_max_window_bits` may come
/// without a value in an offer (`Some(None)`).
#[derive(Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: Option<&str>) -> Option<u8> {
    let value = value?;
    if value.len() > 2 || value.starts_with('0') {
        return None;
    }
    value
        .parse::<u8>()
        .ok()
        .filter(|bits| (8..=15).contains(bits))
}

fn parse(extension: &Extension<'_>) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    for (name, value) in &extension.params {
        let value = value.as_deref();
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover"
                if !parsed.server_no_context_takeover && value.is_none() =>
            {
                parsed.server_no_context_takeover = true;
            }
            "client_no_context_takeover"
                if !parsed.client_no_context_takeover && value.is_none() =>
            {
                parsed.client_no_context_takeover = true;
            }
            "server_max_window_bits" if parsed.server_max_window_bits.is_none() => {
                parsed.server_max_window_bits = Some(window_bits(value)?);
            }
            "client_max_window_bits" if parsed.client_max_window_bits.is_none() => {
                parsed.client_max_window_bits = Some(match value {
                    None => None,
                    Some(_) => Some(window_bits(value)?),
                });
            }
            _ => return None,
        }
    }
    Some(parsed)
}

impl DeflateConfig {
    /// The client's `Sec-WebSocket-Extensions` offer (§7.1).
    #[must_use]
    pub fn offer(&self) -> String {
        let mut offer = NAME.to_owned();
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits.max(MIN_ZLIB_WINDOW)
            ));
        }
        if self.client_max_window_bits < 15 {
            offer.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits.max(MIN_ZLIB_WINDOW)
            ));
        } else {
            // Tells the server it may limit our window (§7.1.2.2).
            offer.push_str("; client_max_window_bits");
        }
        offer
    }

    /// A server's choice among the client's offers (§7.1): the first
    /// acceptable `permessage-deflate` offer, with the response value to send.
    /// Offers with unknown or repeated parameters, or values out of range,
    /// are declined; so is an offer that limits the server's window to 8,
    /// which zlib cannot produce. `None` means no compression.
    #[must_use]
    pub fn negotiate(&self, offers: &[Extension<'_>]) -> Option<(String, DeflateParams)> {
        offers
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(NAME))
            .find_map(|offer| {
                let parsed = parse(offer)?;
                let server_bits = parsed
                    .server_max_window_bits
                    .unwrap_or(15)
                    .min(self.server_max_window_bits.clamp(MIN_ZLIB_WINDOW, 15));
                if server_bits < MIN_ZLIB_WINDOW {
                    return None;
                }
                let client_bits = match parsed.client_max_window_bits {
                    // The client did not offer to take a limit: 15, whatever we would prefer.
                    None => 15,
                    Some(offered) => offered
                        .unwrap_or(15)
                        .min(self.client_max_window_bits.clamp(8, 15)),
                };
                let params = DeflateParams {
                    server_no_context_takeover: parsed.server_no_context_takeover
                        || self.server_no_context_takeover,
                    client_no_context_takeover: parsed.client_no_context_takeover
                        || self.client_no_context_takeover,
                    server_max_window_bits: server_bits,
                    client_max_window_bits: client_bits,
                };
                Some((params.to_string(), params))
            })
    }

    /// A client's check of the server's answer (§7.1): `Ok(None)` if the
    /// server did not accept permessage-deflate, the agreed parameters if it
    /// did, and an error if the answer is not one the offer allowed.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::ExtensionNotOffered`] for an answer with unknown,
    /// repeated or out-of-range parameters, a client window the offer did not
    /// allow, one zlib cannot compress with (8), or a second
    /// `permessage-deflate`.
    pub fn accept(
        &self,
        accepted: &[Extension<'_>],
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        let mut answers = accepted
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(NAME));
        let Some(answer) = answers.next() else {
            return Ok(None);
        };
        let bad = HandshakeError::ExtensionNotOffered;
        if answers.next().is_some() {
            return Err(bad);
        }
        let parsed = parse(answer).ok_or_else(|| bad.clone())?;
        let client_bits = match parsed.client_max_window_bits {
            None => 15,
            // A value is required in an answer (§7.1.2.2).
            Some(None) => return Err(bad),
            Some(Some(bits))
                if bits < MIN_ZLIB_WINDOW
                    || bits > self.client_max_window_bits.max(MIN_ZLIB_WINDOW) =>
            {
                return Err(bad);
            }
            Some(Some(bits)) => bits,
        };
        let server_bits = parsed.server_max_window_bits.unwrap_or(15);
        if server_bits > self.server_max_window_bits.max(MIN_ZLIB_WINDOW)
            && self.server_max_window_bits < 15
        {
            return Err(bad);
        }
        if self.server_no_context_takeover && !parsed.server_no_context_takeover {
            return Err(bad);
        }
        Ok(Some(DeflateParams {
            server_no_context_takeover: parsed.server_no_context_takeover,
            client_no_context_takeover: parsed.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }))
    }
}

/// One direction's compressor.
/// Compressor and decompressor states kept between the messages of
/// connections that start each message afresh (no context takeover), so
/// such a connection holds none while idle and does not build one per
/// message. A state taken is reset before it is put back; at most
/// [`POOL_MAX`] of each kind are kept (the rest are dropped).
static COMPRESSORS: Mutex<Vec<(SharedKey, Compress)>> = Mutex::new(Vec::new());
static DECOMPRESSORS: Mutex<Vec<(u8, Decompress)>> = Mutex::new(Vec::new());
const POOL_MAX: usize = 8;

/// Takes a pooled state made for `key`, if one is kept.
fn take_pooled<K: PartialEq, T>(pool: &Mutex<Vec<(K, T)>>, key: &K) -> Option<T> {
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    let at = pool.iter().rposition(|(k, _)| k == key)?;
    Some(pool.swap_remove(at).1)
}

/// Keeps a reset state for the next message (of any connection), if there is room.
fn put_pooled<K, T>(pool: &Mutex<Vec<(K, T)>>, key: K, state: T) {
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < POOL_MAX {
        pool.push((key, state));
    }
}

/// Compresses outgoing messages. The zlib state is made on the first
/// compressed message, not at the handshake; with no context takeover it
/// goes back to the pool after each message, and with context takeover
/// [`release`](Self::release) lets it go while the connection is idle
/// (the next message then refers to nothing before it, which every
/// decompressor accepts).
pub(crate) struct Deflater {
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
    ) -> Self {
        Self {
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

    /// Lets the zlib state go (the connection is idle).
    pub(crate) fn release(&mut self) {
        self.compress = None;
    }

    fn state(&mut self) -> &mut Compress {
        let key = self.key;
        self.compress.get_or_insert_with(|| {
            take_pooled(&COMPRESSORS, &key).unwrap_or_else(|| {
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
            put_pooled(&COMPRESSORS, self.key, compress);
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
    pub(crate) fn new(window_bits: u8, fresh_each_message: bool) -> Self {
        Self {
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
            return Ok(take_pooled(&DECOMPRESSORS, &bits)
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
                    put_pooled(&DECOMPRESSORS, self.window_bits, decompress);
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
        let mut deflater = Deflater::new(6, 15, false, 0);
        assert_eq!(
            deflater.compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        let mut inflater = Inflater::new(15, false);
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
        let mut inflater = Inflater::new(15, false);
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
        let mut deflater = Deflater::new(6, 15, false, 0);
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
        let mut inflater = Inflater::new(15, false);
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
        let mut deflater = Deflater::new(9, 15, false, 0);
        let bomb = deflater.compress(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let mut inflater = Inflater::new(15, false);
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
}
