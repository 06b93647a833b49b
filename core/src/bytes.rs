//! Bytes mode: how an arbitrary byte string becomes a field element.
//!
//! ```text
//! chunks  = bytes split into 31-byte pieces, each read as a little-endian
//!           integer (the last piece may be shorter; the empty string has none)
//! header  = BYTES_DOMAIN * 2^64 + len(bytes)
//! h       = Poseidon(header, chunk_1 .. chunk_k)          k = min(15, #chunks)
//! h       = Poseidon(h, next up to 15 chunks)             while chunks remain
//! result  = h
//! ```
//!
//! Every chunk is below 2^248 < r, so it is a field element as is. The length is
//! absorbed first, which fixes the number of chunks and of Poseidon calls, so the
//! map from byte strings to Poseidon input sequences is injective: two distinct
//! strings can only collide through a Poseidon collision. A circuit with a fixed
//! maximum length recomputes it with one `Poseidon(16)` per 465 bytes.
//!
//! Strings longer than 62 bytes hash with 4 or more inputs, whose parameters
//! wasm32 builds derive at run time: there, use [`bytes_to_field_with`] and a
//! [`PoseidonCache`] that lives as long as the program.

use crate::field::Fr;
use crate::poseidon::{MAX_INPUTS, PoseidonCache, PoseidonError, poseidon};
use ark_ff::{BigInt, PrimeField};

/// Bytes in one absorbed chunk: the largest count always below r.
pub const CHUNK_BYTES: usize = 31;

/// `"rustorium"` read as a big-endian integer; separates bytes-mode hashes
/// from any other Poseidon use.
pub const BYTES_DOMAIN: u128 = 0x72_75_73_74_6f_72_69_75_6d;

fn chunk_to_field(chunk: &[u8]) -> Fr {
    let mut limbs = [0u64; 4];
    for (i, byte) in chunk.iter().enumerate() {
        limbs[i / 8] |= u64::from(*byte) << (8 * (i % 8));
    }
    // 31 bytes are below 2^248 < r, so this is the canonical element.
    Fr::from_bigint(BigInt::new(limbs)).unwrap_or_default()
}

fn header(len: usize) -> Fr {
    let len = len as u64;
    let tagged = (BYTES_DOMAIN << 64) | u128::from(len);
    Fr::from_bigint(BigInt::new([tagged as u64, (tagged >> 64) as u64, 0, 0])).unwrap_or_default()
}

/// Maps a byte string to a field element (see the module documentation).
pub fn bytes_to_field(bytes: &[u8]) -> Fr {
    absorb_all(bytes, poseidon)
}

/// [`bytes_to_field`] hashing through `cache`: the same element, with the
/// parameters of widths without a static table derived only once.
pub fn bytes_to_field_with(cache: &PoseidonCache, bytes: &[u8]) -> Fr {
    absorb_all(bytes, |inputs| cache.poseidon(inputs))
}

/// Absorbs `bytes` with `hash`, a Poseidon of 1 to 16 inputs.
fn absorb_all(bytes: &[u8], hash: impl Fn(&[Fr]) -> Result<Fr, PoseidonError>) -> Fr {
    // 1 <= inputs.len() <= MAX_INPUTS by construction below, so `hash` accepts
    // every call and `unwrap_or_default` never applies.
    let absorb = |inputs: &[Fr]| hash(inputs).unwrap_or_default();
    let mut inputs = [Fr::from(0u64); MAX_INPUTS];
    inputs[0] = header(bytes.len());
    let mut filled = 1;
    for chunk in bytes.chunks(CHUNK_BYTES) {
        if filled == MAX_INPUTS {
            inputs[0] = absorb(&inputs[..filled]);
            filled = 1;
        }
        inputs[filled] = chunk_to_field(chunk);
        filled += 1;
    }
    absorb(&inputs[..filled])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::hash2;

    #[test]
    fn empty_string_is_the_header_alone() {
        assert_eq!(bytes_to_field(b""), poseidon(&[header(0)]).unwrap());
    }

    #[test]
    fn short_string_is_one_call() {
        let expected = hash2(
            header(3),
            Fr::from(u64::from_le_bytes([b'a', b'b', b'c', 0, 0, 0, 0, 0])),
        );
        assert_eq!(bytes_to_field(b"abc"), expected);
    }

    #[test]
    fn trailing_zero_bytes_change_the_result() {
        assert_ne!(bytes_to_field(b"a"), bytes_to_field(b"a\0"));
        assert_ne!(bytes_to_field(b""), bytes_to_field(b"\0"));
    }

    #[test]
    fn long_strings_chain_blocks_of_fifteen_chunks() {
        let data: alloc::vec::Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let chunks: alloc::vec::Vec<Fr> = data.chunks(CHUNK_BYTES).map(chunk_to_field).collect();
        let mut first = alloc::vec![header(data.len())];
        first.extend_from_slice(&chunks[..15]);
        let mut h = poseidon(&first).unwrap();
        for block in chunks[15..].chunks(15) {
            let mut next = alloc::vec![h];
            next.extend_from_slice(block);
            h = poseidon(&next).unwrap();
        }
        assert_eq!(bytes_to_field(&data), h);
        assert_ne!(bytes_to_field(&data), bytes_to_field(&data[..999]));
    }

    #[test]
    fn the_cached_form_is_the_same_map() {
        let cache = PoseidonCache::new();
        let data: alloc::vec::Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for len in [0, 1, 31, 62, 63, 93, 465, 466, 1000] {
            assert_eq!(
                bytes_to_field_with(&cache, &data[..len]),
                bytes_to_field(&data[..len]),
                "{len} bytes"
            );
        }
    }
}
