//! What the store benches share: the key and value shapes, the commit-phase
//! breakdown, and the hash-bound limit the store is measured against.

#![allow(dead_code, reason = "each bench uses a different part")]

use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::poseidon::{hash2, hash3};
use rustorium_node::store::Store;
use std::time::Duration;

pub const BATCH: usize = 8192;

/// A bench binary's `main`: answers cargo's `--list` probe with `name`,
/// else runs `run` on a multi-thread runtime.
pub fn bench_main<F: std::future::Future<Output = ()>>(name: &str, run: impl FnOnce() -> F) {
    if std::env::args().any(|a| a == "--list") {
        println!("{name}: bench");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

pub fn key(i: u64) -> Vec<u8> {
    // Spread keys over the key space the way real users' ids are.
    format!("user:{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes()
}

pub fn value(i: u64) -> Vec<u8> {
    format!("{{\"balance\":{i},\"nonce\":{}}}", i % 97).into_bytes()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub const PHASES: [&str; 6] = ["pages", "hash", "rows", "prune", "backend", "publish"];

/// Seconds spent so far in each commit phase.
pub fn phase_totals(store: &Store) -> [f64; 6] {
    PHASES.map(|p| store.metrics().phase_total_seconds(p))
}

/// Microseconds per written key in each commit phase since `before`.
pub fn phase_breakdown(store: &Store, before: [f64; 6], writes: u64) -> String {
    let after = phase_totals(store);
    PHASES
        .iter()
        .zip(after.iter().zip(before))
        .map(|(name, (a, b))| format!("{name} {:.1}", (a - b) * 1e6 / writes as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds per call of `f`: the fastest of 10 rounds of 2,000 calls. One
/// round of 20 k calls varied by a third between runs on a shared host; the
/// fastest round is what the core does undisturbed, so the limit computed
/// from it is both the steadiest and the strictest.
fn seconds_per_call(mut f: impl FnMut(u64) -> Fr) -> f64 {
    const ROUNDS: u64 = 10;
    const CALLS: u64 = 2_000;
    let mut acc = Fr::from(0u64);
    let mut fastest = f64::INFINITY;
    for round in 0..ROUNDS {
        let started = std::time::Instant::now();
        for i in 0..CALLS {
            acc += f(round * CALLS + i);
        }
        fastest = fastest.min(started.elapsed().as_secs_f64() / CALLS as f64);
    }
    std::hint::black_box(acc);
    fastest
}

/// Measured Poseidon costs: what one write's hashing takes.
#[derive(Clone, Copy, Debug)]
pub struct HashCosts {
    /// One 2-input Poseidon (a middle node), seconds.
    pub middle: f64,
    /// One 3-input Poseidon (a leaf), seconds.
    pub leaf: f64,
    /// Bytes-mode hashing of one key and one value, seconds.
    pub key_and_value: f64,
}

impl HashCosts {
    pub fn measure() -> Self {
        Self {
            middle: seconds_per_call(|i| hash2(Fr::from(i), Fr::from(i + 1))),
            leaf: seconds_per_call(|i| hash3(Fr::from(i), Fr::from(i + 1), Fr::from(1u64))),
            key_and_value: seconds_per_call(|i| bytes_to_field(&key(i)) + bytes_to_field(&value(i))),
        }
    }

    /// Each cost at the faster of two measurements (taken at different
    /// moments: a bench measures again after its writes).
    pub fn fastest(self, other: Self) -> Self {
        Self {
            middle: self.middle.min(other.middle),
            leaf: self.leaf.min(other.leaf),
            key_and_value: self.key_and_value.min(other.key_and_value),
        }
    }

    /// Hashing seconds per write: its key and value (bytes mode), one leaf
    /// (3 inputs) and the changed middle nodes (2 inputs).
    pub fn per_write(&self, tree_hashes_per_write: f64) -> f64 {
        (tree_hashes_per_write - 1.0) * self.middle + self.leaf + self.key_and_value
    }

    /// Writes/s if every core did nothing but this hashing.
    pub fn limit(&self, tree_hashes_per_write: f64, cores: usize) -> f64 {
        cores as f64 / self.per_write(tree_hashes_per_write)
    }
}

/// The same kind of batches through the in-memory tree alone.
#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    /// Updates per second: key and value hashing plus the batch's tree update.
    pub rate: f64,
    pub hashes_per_write: f64,
}

/// What a store on this tree would reach if storing cost nothing: a
/// `MemoryTree` of the keys `0..keys` takes `batches` of puts (values made
/// with `salt`; an index at or above `keys` is a new key), each batch's key
/// and value hashing spread over every core as the store's clients spread
/// it, then applied as one batch.
pub fn in_memory_ceiling(keys: u64, batches: &[Vec<u64>], salt: u64, max_levels: u16) -> Ceiling {
    use rayon::prelude::*;
    use rustorium_core::tree::{MemoryTree, Op};
    let ops_of = |indices: &[u64], salt: u64| -> Vec<Op> {
        indices
            .par_iter()
            .map(|&i| Op::put(bytes_to_field(&key(i)), bytes_to_field(&value(i + salt))))
            .collect()
    };
    let mut tree = MemoryTree::new(max_levels).expect("tree");
    let all: Vec<u64> = (0..keys).collect();
    for chunk in all.chunks(8 * BATCH) {
        tree.apply(&ops_of(chunk, 0)).expect("build");
    }
    let (mut hashes, mut writes) = (0u64, 0u64);
    let started = std::time::Instant::now();
    for batch in batches {
        let update = tree.apply(&ops_of(batch, salt)).expect("update");
        hashes += update.hashes;
        writes += batch.len() as u64;
    }
    Ceiling {
        rate: writes as f64 / started.elapsed().as_secs_f64(),
        hashes_per_write: hashes as f64 / writes as f64,
    }
}
