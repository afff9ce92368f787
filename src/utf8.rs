//! Incremental UTF-8 validation for text messages (RFC 6455 §8.1).
//!
//! Text can arrive split anywhere: across frames of a fragmented message and
//! across reads within one frame. The validator keeps at most three bytes of
//! an unfinished code point between calls, fails as soon as a byte makes the
//! text invalid (not at the end of the message), and fails at the end of the
//! message if a code point is still unfinished.

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use crate::conn::snapshot::{Reader, SnapshotError, Writer};

/// Checks `data` with simdutf8: the fast all-or-nothing check first (SIMD,
/// ~10× the standard library on non-ASCII text), and only for input that
/// fails it the slower check that says where and why.
pub(crate) fn check(data: &[u8]) -> Result<(), simdutf8::compat::Utf8Error> {
    if data.len() < SHORT && is_ascii(data) {
        return Ok(());
    }
    if simdutf8::basic::from_utf8(data).is_ok() {
        return Ok(());
    }
    simdutf8::compat::from_utf8(data).map(drop)
}

/// Below this length a plain ASCII scan costs less than simdutf8's setup
/// (the standard library's check goes byte by byte on short input).
const SHORT: usize = 64;

/// Whether every byte is below 0x80, eight at a time.
fn is_ascii(data: &[u8]) -> bool {
    let (words, tail) = data.as_chunks::<8>();
    let mut high = words
        .iter()
        .fold(0, |acc, word| acc | u64::from_ne_bytes(*word));
    for &byte in tail {
        high |= u64::from(byte);
    }
    high & 0x8080_8080_8080_8080 == 0
}

/// The text so far cannot be UTF-8, whatever follows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

/// Validation state carried across chunks of one text message.
#[derive(Clone, Debug, Default)]
pub(crate) struct Utf8Validator {
    /// The start of a code point whose remaining bytes have not arrived yet.
    partial: [u8; 4],
    partial_len: usize,
}

/// How many bytes the code point starting with `lead` takes. Only called on
/// bytes the standard validator accepted as the start of a sequence.
fn sequence_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// Checks the next chunk of the message.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let width = sequence_width(self.partial[0]);
            let take = width.saturating_sub(self.partial_len).min(data.len());
            let (head, rest) = data.split_at(take);
            let end = self.partial_len.saturating_add(take);
            self.partial
                .get_mut(self.partial_len..end)
                .ok_or(InvalidUtf8)?
                .copy_from_slice(head);
            self.partial_len = end;
            let seq = self.partial.get(..end).ok_or(InvalidUtf8)?;
            match check(seq) {
                Ok(_) => self.partial_len = 0,
                // Still a valid prefix of a sequence: wait for more.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
            data = rest;
        }
        match check(data) {
            Ok(()) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = data.get(e.valid_up_to()..).ok_or(InvalidUtf8)?;
                self.partial
                    .get_mut(..tail.len())
                    .ok_or(InvalidUtf8)?
                    .copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether a code point is unfinished.
    pub(crate) fn is_partial(&self) -> bool {
        self.partial_len > 0
    }

    /// Writes the unfinished code point's bytes.
    pub(crate) fn freeze(&self, w: &mut Writer) {
        w.bytes(self.partial.get(..self.partial_len).unwrap_or_default());
    }

    /// Reads what [`freeze`](Self::freeze) wrote: at most three bytes that
    /// begin a code point and need more.
    pub(crate) fn thaw(r: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let partial = r.bytes(3, "utf-8 state")?;
        let mut validator = Self::default();
        if !partial.is_empty() {
            match check(partial) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => {}
                _ => return Err(SnapshotError::Invalid("utf-8 state")),
            }
            validator
                .partial
                .get_mut(..partial.len())
                .ok_or(SnapshotError::Invalid("utf-8 state"))?
                .copy_from_slice(partial);
            validator.partial_len = partial.len();
        }
        Ok(validator)
    }

    /// Ends the message: fails if a code point is unfinished, and resets.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let unfinished = self.partial_len > 0;
        self.partial_len = 0;
        if unfinished { Err(InvalidUtf8) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_agrees_with_std() {
        for len in 0..=(SHORT + 9) {
            let ascii = vec![b'a'; len];
            assert!(check(&ascii).is_ok(), "ascii {len}");
            for at in 0..len {
                for odd in [0x7f, 0x80, 0xc3, 0xff] {
                    let mut bytes = ascii.clone();
                    bytes[at] = odd;
                    let std = std::str::from_utf8(&bytes).is_ok();
                    assert_eq!(check(&bytes).is_ok(), std, "len {len}, {odd:#x} at {at}");
                }
            }
        }
        assert!(check("κόσμε".as_bytes()).is_ok());
    }

    fn check_split(bytes: &[u8], split: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let (a, b) = bytes.split_at(split);
        v.feed(a)?;
        v.feed(b)?;
        v.finish()
    }

    // RFC 6455 §8.1 with RFC 3629: a code point may be split anywhere.
    #[test]
    fn every_split_of_valid_text_is_valid() {
        let text = "κόσμε €𝄞 ascii ✓".as_bytes();
        for split in 0..=text.len() {
            assert_eq!(check_split(text, split), Ok(()), "split at {split}");
        }
    }

    // §8.1: invalid bytes fail at once, before the message ends.
    #[test]
    fn fails_fast_on_invalid_byte() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"hello"), Ok(()));
        assert_eq!(
            v.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"),
            Err(InvalidUtf8)
        );
        let mut v = Utf8Validator::default();
        // A surrogate lead: invalid as soon as its second byte arrives.
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_code_point_at_end_fails() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"ab\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish resets for the next message.
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    // The short-ASCII shortcut agrees with the standard library on every
    // length around its word size and threshold, wherever the odd byte sits.

    #[test]
    fn byte_at_a_time() {
        let text = "€𝄞x".as_bytes();
        let mut v = Utf8Validator::default();
        for b in text {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        v.finish().unwrap();
    }
}
