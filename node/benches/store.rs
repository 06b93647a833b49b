//! System benchmark of the embedded store, printed as one table:
//! authenticated writes/s (SyncMode Full and Async, 1 and 64 writers, and
//! batched), read-with-proof latency, the same writes into raw redb (the
//! overhead ratio), the hash-bound limit and how close the store comes
//! (batches from 1 client, and from 4 clients alternately without and with
//! pipelined commits, each with its commit phase breakdown), the in-memory
//! ceiling (the same batches through the tree alone), and
//! @iden3/js-merkletree doing the same inserts in node.
//!
//!     cargo bench -p rustorium-node --bench store            # 1 M keys
//!     RUSTORIUM_BENCH_KEYS=50000 cargo bench -p rustorium-node --bench store
//!
//! How cost grows with size (up to 10 M keys) is the `growth` bench.

mod common;

use common::{BATCH, HashCosts, in_memory_ceiling, key, percentile, phase_breakdown, phase_totals, value};
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::time::{Duration, Instant};

fn keys() -> usize {
    std::env::var("RUSTORIUM_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn config(dir: &std::path::Path, sync_mode: SyncMode) -> StorageConfig {
    StorageConfig {
        sync_mode,
        retained_versions: 16,
        ..StorageConfig::at(dir)
    }
}

async fn load(store: &Store, from: u64, count: u64) -> Duration {
    let started = Instant::now();
    let mut i = from;
    while i < from + count {
        let n = (BATCH as u64).min(from + count - i);
        let ops: Vec<BatchOp> = (i..i + n)
            .map(|i| BatchOp::Put {
                key: key(i),
                value: value(i),
            })
            .collect();
        store.write_batch(&ops, false).await.expect("load batch");
        i += n;
    }
    started.elapsed()
}

async fn concurrent_writes(store: &Store, writers: usize, per_writer: u64, offset: u64) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers as u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..per_writer {
                let i = offset + w * per_writer + j;
                store.write_with_proof(&key(i), &value(i + 1)).await.expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    (writers as u64 * per_writer) as f64 / started.elapsed().as_secs_f64()
}

/// One batched-write measurement.
struct Batched {
    rate: f64,
    hashes_per_write: f64,
    phases: String,
}

/// `clients` tasks each write `batches` batches of `BATCH` new keys.
async fn batched(store: &Store, clients: u64, batches: u64, offset: u64) -> Batched {
    let hashes_before = store.metrics().tree_hashes_total.get();
    let writes_before = store.metrics().writes_total.get();
    let phases_before = phase_totals(store);
    let per_client = batches * BATCH as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { load(&store, offset + c * per_client, per_client).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    let count = clients * per_client;
    Batched {
        rate: count as f64 / started.elapsed().as_secs_f64(),
        hashes_per_write: (store.metrics().tree_hashes_total.get() - hashes_before) as f64
            / (store.metrics().writes_total.get() - writes_before) as f64,
        phases: phase_breakdown(store, phases_before, count),
    }
}

fn raw_redb(dir: &std::path::Path, count: u64) -> f64 {
    use redb::{Database, Durability, TableDefinition};
    const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");
    let db = Database::create(dir.join("raw.redb")).expect("raw redb");
    let started = Instant::now();
    let mut i = 0;
    while i < count {
        let n = (BATCH as u64).min(count - i);
        let mut txn = db.begin_write().expect("txn");
        txn.set_durability(Durability::Immediate).expect("durability");
        {
            let mut table = txn.open_table(TABLE).expect("table");
            for j in i..i + n {
                table.insert(key(j).as_slice(), value(j).as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        i += n;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn js_merkletree(count: u64) -> Option<f64> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js/bench_jsmt.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(count.to_string())
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn main() {
    common::bench_main("store", run);
}

async fn run() {
    let n = keys() as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("machine: {cores} cores; store of {n} keys (bytes mode, ~40-byte values), batches of {BATCH}");

    let store = Store::open(config(&data, SyncMode::None)).expect("store");
    let load_time = load(&store, 0, n).await;
    let loaded_rate = n as f64 / load_time.as_secs_f64();
    store.sync().await.expect("sync");
    let rows = store.metrics().stored_rows_total.get() as f64 / n as f64;
    let bytes = store.metrics().stored_bytes_total.get() as f64 / n as f64;
    store.shutdown();
    println!("| measurement | result |\n|---|---|");
    println!("| load {n} keys, batches of {BATCH}, SyncMode None | {loaded_rate:.0} writes/s |");
    println!("| stored rows / bytes per written key (load) | {rows:.2} rows, {bytes:.0} bytes |");

    for mode in [SyncMode::Full, SyncMode::Async] {
        let store = Store::open(config(&data, mode)).expect("store");
        let one = concurrent_writes(&store, 1, 300, n + 10_000_000).await;
        let many = concurrent_writes(&store, 64, 100, n + 20_000_000).await;
        let started = Instant::now();
        let batched_count = 8 * BATCH as u64;
        load(&store, n + 30_000_000, batched_count).await;
        let batched = batched_count as f64 / started.elapsed().as_secs_f64();
        println!("| write_with_proof, {mode:?}, 1 writer | {one:.0} writes/s |");
        println!("| write_with_proof, {mode:?}, 64 writers | {many:.0} writes/s |");
        println!("| write_batch of {BATCH}, {mode:?} | {batched:.0} writes/s |");
        store.shutdown();
    }

    let store = Store::open(config(&data, SyncMode::Full)).expect("store");
    let mut latencies = Vec::with_capacity(10_000);
    let mut depth = 0;
    for j in 0..10_000u64 {
        let i = (j.wrapping_mul(7919)) % n;
        let started = Instant::now();
        let read = store.read(&key(i)).await.expect("read").expect("present");
        latencies.push(started.elapsed());
        depth += read.proof.depth();
    }
    latencies.sort();
    println!(
        "| read with proof (10 k random keys), p50 / p99 | {:?} / {:?} (mean depth {}) |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        depth / 10_000
    );
    let store_batched = batched(&store, 1, 8, n + 40_000_000).await;
    let store_rate = store_batched.rate;
    store.shutdown();
    // Several clients' batches queue at once, so one batch's commit can
    // overlap the next one's hashing: alternately without and with
    // pipelined commits, twice, on the same store.
    let mut concurrent = [Vec::new(), Vec::new()];
    for round in 0..2u64 {
        for pipelined in [false, true] {
            let store = Store::open(StorageConfig {
                pipelined_commits: pipelined,
                ..config(&data, SyncMode::Full)
            })
            .expect("store");
            let offset = n + 50_000_000 + (2 * round + u64::from(pipelined)) * 1_000_000;
            concurrent[usize::from(pipelined)].push(batched(&store, 4, 4, offset).await);
            store.shutdown();
        }
    }
    let raw = raw_redb(dir.path(), 8 * BATCH as u64);
    println!("| raw redb, same key/values, batches of {BATCH}, Immediate | {raw:.0} writes/s |");
    println!(
        "| store (write_batch, Full, 1 client) / raw redb | {:.1} % |",
        100.0 * store_rate / raw
    );
    let costs = HashCosts::measure();
    println!(
        "| Poseidon 2 / 3 inputs; key+value bytes hashing | {:.2} µs / {:.2} µs; {:.2} µs |",
        costs.middle * 1e6,
        costs.leaf * 1e6,
        costs.key_and_value * 1e6
    );
    // The same kind of batches (new keys) through the tree alone: no store
    // can beat it, whatever its storage costs.
    let new_keys: Vec<Vec<u64>> = (0..8u64)
        .map(|b| {
            (0..BATCH as u64)
                .map(|j| n + 60_000_000 + b * BATCH as u64 + j)
                .collect()
        })
        .collect();
    let ceiling = in_memory_ceiling(n, &new_keys, 0, StorageConfig::default().max_levels);
    let ceiling_limit = costs.limit(ceiling.hashes_per_write, cores);
    println!(
        "| in-memory ceiling: 8 batches of {BATCH} new keys through the tree alone, no storage | {:.0} writes/s = {:.0} % \
         of the hash-bound limit {ceiling_limit:.0} ({:.2} tree hashes/write) |",
        ceiling.rate,
        100.0 * ceiling.rate / ceiling_limit,
        ceiling.hashes_per_write,
    );
    let mut rows = vec![("1 client".to_string(), store_batched)];
    for (pipelined, runs) in concurrent.into_iter().enumerate() {
        for (round, run) in runs.into_iter().enumerate() {
            let name = if pipelined == 1 { "pipelined" } else { "not pipelined" };
            rows.push((format!("4 clients, {name}, round {}", round + 1), run));
        }
    }
    for (name, run) in rows {
        let limit = costs.limit(run.hashes_per_write, cores);
        println!(
            "| write_batch of {BATCH}, Full, {name} | {:.0} writes/s = {:.0} % of the hash-bound limit {limit:.0} \
             ({:.2} tree hashes/write, {:.1} µs hashing/write, {cores} cores); commit phases µs/write: {} |",
            run.rate,
            100.0 * run.rate / limit,
            run.hashes_per_write,
            costs.per_write(run.hashes_per_write) * 1e6,
            run.phases,
        );
    }
    match js_merkletree(5_000) {
        Some(js) => println!(
            "| @iden3/js-merkletree, 5 k inserts (node, in-memory DB) | {js:.0} writes/s (store batched is {:.1}x) |",
            store_rate / js
        ),
        None => println!("| @iden3/js-merkletree | not run: node or tests/js/node_modules missing |"),
    }
}
