//! Poseidon and bytes mode for the client, through one [`PoseidonCache`] per
//! thread.
//!
//! On wasm32 core keeps static Poseidon tables only for 1 to 3 inputs (the
//! tree's hashes and byte strings up to 62 bytes), which keeps the module
//! small; the wider widths are derived on their first use, in milliseconds,
//! and kept here for the life of the module. Core holds no global state, so
//! the cache lives on this side. Natively every width is static and the cache
//! stays empty.

use rustorium_core::{Fr, PoseidonCache, PoseidonError, bytes};

thread_local! {
    static CACHE: PoseidonCache = const { PoseidonCache::new() };
}

/// circomlib's Poseidon of 1 to 16 field elements.
pub fn poseidon(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    CACHE.with(|cache| cache.poseidon(inputs))
}

/// The bytes-mode tree element of a key or value ([`bytes::bytes_to_field`]).
pub fn bytes_to_field(data: &[u8]) -> Fr {
    CACHE.with(|cache| bytes::bytes_to_field_with(cache, data))
}
