//! How write and read cost grow with the store's size: builds one store up
//! to each size in `RUSTORIUM_BENCH_SIZES` (default 1 M, 2 M, 5 M, 10 M keys)
//! and at each prints a row: the insert rate of the build since the last
//! size, update throughput, read-with-proof latency, disk bytes per key,
//! tree hashes per write and how close the store comes to the hash bound.
//! Sizes up to 2 M keys also get the in-memory ceiling: the same updates
//! through the tree alone, what any store on it could reach.
//!
//!     cargo bench -p rustorium-node --bench growth
//!     RUSTORIUM_BENCH_SIZES=1000000 RUSTORIUM_BENCH_DIR=/var/tmp/growth cargo bench -p rustorium-node --bench growth
//!
//! With `RUSTORIUM_BENCH_DIR` the store is kept there and a later run goes on
//! from the keys it holds (measurements only update existing keys, so the
//! key count is the build's progress). The build writes batches of 8192 new
//! keys with SyncMode Full (one fsync per 8192 keys costs little), from 4
//! concurrent clients, as the measured updates are. `RUSTORIUM_BENCH_SYNC`
//! (none, async, full), `RUSTORIUM_BENCH_PIPELINED=0`,
//! `RUSTORIUM_BENCH_MAX_BATCH`, `RUSTORIUM_BENCH_CACHE_PAGES`,
//! `RUSTORIUM_BENCH_FLUSH_MS` (Async's flush interval) and
//! `RUSTORIUM_BENCH_CLIENTS` change the measured store's settings.

mod common;

use common::{BATCH, HashCosts, in_memory_ceiling, key, percentile, phase_breakdown, phase_totals, value};
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Clients writing batches at once (`RUSTORIUM_BENCH_CLIENTS`, default 4).
fn clients() -> usize {
    env_number("RUSTORIUM_BENCH_CLIENTS").unwrap_or(4)
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
/// Update batches measured at each size.
const UPDATE_BATCHES: u64 = 8;
const READS: u64 = 10_000;
/// Sizes up to this also get the in-memory ceiling (its pages take about
/// 1.5 GB of memory per million keys).
const CEILING_MAX_KEYS: u64 = 2_000_000;

fn sizes() -> Vec<u64> {
    std::env::var("RUSTORIUM_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,2000000,5000000,10000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("RUSTORIUM_BENCH_SIZES: comma-separated key counts")
        })
        .collect()
}

/// Writes `indices` in batches of `BATCH` from `clients()` concurrent clients,
/// so that batches queue and commits pipeline.
async fn write_batches(store: &Store, indices: impl Iterator<Item = u64>, salt: u64) {
    let indices: Vec<u64> = indices.collect();
    let chunks: Arc<Vec<Vec<u64>>> = Arc::new(indices.chunks(BATCH).map(<[u64]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients())
        .map(|_| {
            let (store, chunks, next) = (store.clone(), chunks.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let ops: Vec<BatchOp> = chunk
                        .iter()
                        .map(|&i| BatchOp::Put {
                            key: key(i),
                            value: value(i + salt),
                        })
                        .collect();
                    store.write_batch(&ops, false).await.expect("batch");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
}

/// Spreads `count` picks over `[0, n)` without repeats for `count <= n`.
fn spread(n: u64, count: u64, seed: u64) -> impl Iterator<Item = u64> {
    // A multiplier coprime to most n (large odd prime) walks the range.
    (0..count).map(move |j| (seed + j.wrapping_mul(2_654_435_761)) % n)
}

fn main() {
    common::bench_main("growth", run);
}

async fn run() {
    let kept = std::env::var_os("RUSTORIUM_BENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = kept.unwrap_or_else(|| temp.path().join("store"));
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut costs = HashCosts::measure();
    let store = Store::open(StorageConfig {
        // `RUSTORIUM_BENCH_SYNC=async|none` measures another sync mode.
        sync_mode: std::env::var("RUSTORIUM_BENCH_SYNC").map_or(SyncMode::Full, |v| {
            v.parse().expect("RUSTORIUM_BENCH_SYNC: none, async or full")
        }),
        retained_versions: 16,
        // `RUSTORIUM_BENCH_PIPELINED=0` measures without pipelined commits.
        pipelined_commits: std::env::var("RUSTORIUM_BENCH_PIPELINED").map_or(true, |v| v != "0"),
        // `RUSTORIUM_BENCH_MAX_BATCH`: group commits may merge client batches up to this many ops.
        max_batch_ops: env_number("RUSTORIUM_BENCH_MAX_BATCH").unwrap_or(BATCH),
        cache_pages: env_number("RUSTORIUM_BENCH_CACHE_PAGES").unwrap_or(StorageConfig::default().cache_pages),
        async_flush_interval: env_number("RUSTORIUM_BENCH_FLUSH_MS")
            .map_or(StorageConfig::default().async_flush_interval, |ms| {
                Duration::from_millis(ms as u64)
            }),
        ..StorageConfig::at(&dir)
    })
    .expect("store");
    println!(
        "machine: {cores} cores; store in {} (bytes mode, ~40-byte values); Poseidon 2 / 3 inputs {:.2} / {:.2} µs",
        dir.display(),
        costs.middle * 1e6,
        costs.leaf * 1e6
    );
    println!(
        "| keys | build inserts/s since last row | updates/s ({} clients, batches of {BATCH}, sync {}) | hash-bound limit | store / limit \
         | read with proof p50 / p99 | mean depth | disk bytes per key | page cache hit ratio (cumulative) | commit phases, µs per update |",
        clients(),
        store.config().sync_mode.name()
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut ceilings = Vec::new();
    for size in sizes() {
        let from = store.keys();
        if from > size {
            continue;
        }
        let started = Instant::now();
        write_batches(&store, from..size, 0).await;
        let build_rate = (size - from) as f64 / started.elapsed().as_secs_f64().max(1e-9);

        // Updates of existing keys, spread over the key space.
        let count = UPDATE_BATCHES * BATCH as u64;
        let hashes_before = store.metrics().tree_hashes_total.get();
        let writes_before = store.metrics().writes_total.get();
        let phases_before = phase_totals(&store);
        let started = Instant::now();
        // New values each run (the version only grows), so every update
        // changes its leaf.
        let salt = store.root().1 + 1;
        let picks: Vec<u64> = spread(size, count, size).collect();
        write_batches(&store, picks.iter().copied(), salt).await;
        let updates = count as f64 / started.elapsed().as_secs_f64();
        let hashes_per_write = (store.metrics().tree_hashes_total.get() - hashes_before) as f64
            / (store.metrics().writes_total.get() - writes_before) as f64;
        let phases = phase_breakdown(&store, phases_before, count);
        // Measured again beside the updates, so a host that was busy at the
        // start does not lower the limit.
        costs = costs.fastest(HashCosts::measure());
        let limit = costs.limit(hashes_per_write, cores);

        let mut latencies: Vec<Duration> = Vec::with_capacity(READS as usize);
        let mut depth = 0;
        for i in spread(size, READS, 7 * size + 1) {
            let started = Instant::now();
            let read = store.read(&key(i)).await.expect("read").expect("present");
            latencies.push(started.elapsed());
            depth += read.proof.depth();
        }
        latencies.sort();
        store.refresh_metrics();
        let disk = store.metrics().disk_usage.get() as f64 / size as f64;
        println!(
            "| {size} | {build_rate:.0} | {updates:.0} | {limit:.0} ({hashes_per_write:.2} hashes/write) | {:.0} % \
             | {:?} / {:?} | {} | {disk:.0} | {:.3} | {phases} |",
            100.0 * updates / limit,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            depth / READS as usize,
            store.metrics().cache_hit_ratio.get(),
        );
        if size <= CEILING_MAX_KEYS {
            let batches: Vec<Vec<u64>> = picks.chunks(BATCH).map(<[u64]>::to_vec).collect();
            let ceiling = in_memory_ceiling(size, &batches, salt, store.config().max_levels);
            let limit = costs.limit(ceiling.hashes_per_write, cores);
            ceilings.push(format!(
                "in-memory ceiling at {size} keys (the same updates through the tree alone, no storage): \
                 {:.0} updates/s = {:.0} % of its hash-bound limit {limit:.0} ({:.2} hashes/write); the store reached {:.0} % of that rate",
                ceiling.rate,
                100.0 * ceiling.rate / limit,
                ceiling.hashes_per_write,
                100.0 * updates / ceiling.rate,
            ));
        }
    }
    for line in ceilings {
        println!("{line}");
    }
    println!(
        "limits computed from Poseidon 2 / 3 inputs {:.2} / {:.2} µs (the fastest round, before or after each size's updates)",
        costs.middle * 1e6,
        costs.leaf * 1e6
    );
    store.shutdown();
}
