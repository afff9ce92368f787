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

use std::fmt;

use crate::handshake::{Extension, HandshakeError};

mod codec;

pub use codec::DeflatePool;
pub(crate) use codec::{Deflater, Inflater, SharedKey};

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// The smallest window zlib's raw deflate supports; RFC 7692 allows 8.
pub(crate) const MIN_ZLIB_WINDOW: u8 = 9;

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
    /// Where connections without context takeover keep their zlib states
    /// between messages: shared by every connection whose config holds a
    /// clone of this one (a builder's connections). Default: a new pool of
    /// 8 states of each kind.
    pub pool: DeflatePool,
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
            pool: DeflatePool::default(),
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
        /// Sets [`pool`](Self::pool).
        pool: DeflatePool;
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
