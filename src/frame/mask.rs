//! Payload masking (RFC 6455 §5.3).
//!
//! Masking XORs byte `i` of the payload with byte `i % 4` of the key. Both
//! functions XOR whole 8-byte words against the key repeated twice, a loop
//! the compiler turns into SIMD XORs; there is no `unsafe` here.

use bytes::BytesMut;

const BLOCK: usize = 64;
/// From this length on, [`apply_mask`] first masks the bytes up to the next
/// 64-byte boundary, so every block lies within one cache line ([`xor_aligned`]);
/// shorter payloads are not worth the split.
const ALIGN_FROM: usize = 4096;

/// The key, started at key byte `offset % 4`, repeated over one machine word.
fn key_word(key: [u8; 4], offset: usize) -> u64 {
    // Little-endian numbering makes byte i of the key bits 8i..8i+8, so a
    // right rotation by whole bytes starts the key at byte `offset % 4`.
    let shift = u32::try_from(offset % 4).unwrap_or(0).wrapping_mul(8);
    let rotated = u32::from_le_bytes(key).rotate_right(shift).to_le_bytes();
    // Both halves of the word hold the same four bytes, so the word reads
    // the same in either byte order.
    let half = u64::from(u32::from_ne_bytes(rotated));
    (half << 32) | half
}

/// XORs `buf` with `word` repeated: 32-byte chunks of four words, then
/// whole words, then the tail byte by byte.
///
/// The compiler unrolls the chunk loop into 64-byte steps of SSE2 XORs on the
/// baseline target and widens it with AVX2 or AVX-512. With 64-byte chunks
/// and AVX-512 enabled (`-C target-cpu=native` on a recent x86-64), LLVM
/// vectorises the loop across chunks with gathers and scatters, which are
/// slow; `benches/codegen.sh` fails on any. A plain word loop or 16-byte
/// chunks cost more instructions per short payload (`benches/callgrind.sh`).
fn xor_words(buf: &mut [u8], word: u64) {
    let (chunks, rest) = buf.as_chunks_mut::<32>();
    for chunk in chunks {
        xor_each(chunk.as_chunks_mut::<8>().0, word);
    }
    let (words, tail) = rest.as_chunks_mut::<8>();
    xor_each(words, word);
    for (byte, k) in tail.iter_mut().zip(word.to_ne_bytes()) {
        *byte ^= k;
    }
}

/// XORs each 8-byte word with `word`: the one loop body every path shares
/// (over a fixed-size chunk or block the compiler unrolls it fully).
#[inline(always)]
fn xor_each(words: &mut [[u8; 8]], word: u64) {
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
}

/// XORs `buf` in place with `key`, as if `buf` began `offset` bytes into the
/// payload. Masking twice with the same key and offset restores the input,
/// and masking a payload in pieces with running offsets equals masking it whole.
///
/// ```
/// use rfc6455::frame::apply_mask;
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// apply_mask(&mut data, key, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// let (a, b) = data.split_at_mut(2);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    if buf.len() >= ALIGN_FROM {
        xor_aligned(buf, key, offset);
    } else {
        xor_words(buf, key_word(key, offset));
    }
}

/// [`xor_words`] on a long payload, its blocks aligned to cache lines: a
/// block that straddles two lines costs both, and a payload that follows a
/// 14-byte header usually starts mid-line. Kept out of line, so the short
/// payloads' path stays as small as it was.
#[inline(never)]
fn xor_aligned(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // `align_offset` may decline to answer (usize::MAX): then no split.
    let head = buf.as_ptr().align_offset(BLOCK);
    if head < BLOCK {
        let (front, rest) = buf.split_at_mut(head);
        xor_words(front, key_word(key, offset));
        // `key_word` reads the offset modulo 4, which wrapping keeps exact
        // (2^64 is a multiple of 4).
        xor_words(rest, key_word(key, offset.wrapping_add(head)));
    } else {
        xor_words(buf, key_word(key, offset));
    }
}

/// Appends `src` masked with `key` to `dst` in one pass (client sends).
///
/// Each block is masked into a stack buffer and appended, so the payload is
/// read once and written once, like a plain copy.
pub fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    let word = key_word(key, 0);
    dst.reserve(src.len());
    let (blocks, tail) = src.as_chunks::<BLOCK>();
    for block in blocks {
        let mut out = *block;
        xor_each(out.as_chunks_mut::<8>().0, word);
        dst.extend_from_slice(&out);
    }
    let mut out = [0u8; BLOCK];
    if let Some(out) = out.get_mut(..tail.len()) {
        out.copy_from_slice(tail);
        xor_words(out, word);
        dst.extend_from_slice(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    // RFC 6455 §5.3: octet i of the transformed data is octet i XOR key[i mod 4].
    #[test]
    fn matches_definition_at_every_length_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        for len in [
            0, 1, 3, 4, 7, 63, 64, 65, 127, 128, 200, 4095, 4096, 4097, 5000,
        ] {
            for offset in 0..8 {
                // Every start within a cache line, for the head split off
                // before the aligned blocks.
                for start in [0, 1, 2, 3, 5, 14, 30, 63] {
                    let data: Vec<u8> = (0..len + start).map(|i| i as u8).collect();
                    let mut fast = data.clone();
                    let mut slow = data.clone();
                    apply_mask(&mut fast[start..], key, offset);
                    naive(&mut slow[start..], key, offset);
                    assert_eq!(fast, slow, "len {len} offset {offset} start {start}");
                }
            }
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fused = BytesMut::from(&b"head"[..]);
            extend_masked(&mut fused, &data, key);
            let mut slow = data.clone();
            naive(&mut slow, key, 0);
            assert_eq!(&fused[..4], b"head");
            assert_eq!(&fused[4..], &slow[..]);
        }
    }
}
