//! System benchmark of the embedded store, printed as one table:
//! authenticated writes/s (SyncMode Full and Async, 1 and 64 writers, and
//! batched), read-with-proof latency, the same writes into raw redb (the
//! overhead ratio), the hash-bound limit and how close the store comes, and
//! @iden3/js-merkletree doing the same inserts in node.
//!
//!     cargo bench -p rustorium-node --bench store            # 1 M keys
//!     RUSTORIUM_BENCH_KEYS=10000000 cargo bench -p rustorium-node --bench store

use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::poseidon::{hash2, hash3};
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::time::{Duration, Instant};

const BATCH: usize = 8192;

fn keys() -> usize {
    std::env::var("RUSTORIUM_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn key(i: u64) -> Vec<u8> {
    // Spread keys over the key space the way real users' ids are.
    format!("user:{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("{{\"balance\":{i},\"nonce\":{}}}", i % 97).into_bytes()
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
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

/// Seconds per call of `f`, over 20 k calls.
fn seconds_per_call(mut f: impl FnMut(u64) -> Fr) -> f64 {
    let started = Instant::now();
    let mut acc = Fr::from(0u64);
    for i in 0..20_000 {
        acc += f(i);
    }
    std::hint::black_box(acc);
    started.elapsed().as_secs_f64() / 20_000.0
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
    if std::env::args().any(|a| a == "--list") {
        println!("store: bench");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
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
    let hashes_before = store.metrics().tree_hashes_total.get();
    let writes_before = store.metrics().writes_total.get();
    let started = Instant::now();
    let count = 8 * BATCH as u64;
    load(&store, n + 40_000_000, count).await;
    let store_batched = count as f64 / started.elapsed().as_secs_f64();
    let tree_hashes_per_write = (store.metrics().tree_hashes_total.get() - hashes_before) as f64
        / (store.metrics().writes_total.get() - writes_before) as f64;
    store.shutdown();

    let raw = raw_redb(dir.path(), 8 * BATCH as u64);
    println!("| raw redb, same key/values, batches of {BATCH}, Immediate | {raw:.0} writes/s |");
    println!(
        "| store (write_batch, Full) / raw redb | {:.1} % |",
        100.0 * store_batched / raw
    );
    // A write hashes its key and value (bytes mode), one leaf (3 inputs) and
    // the changed middle nodes (2 inputs).
    let middle = seconds_per_call(|i| hash2(Fr::from(i), Fr::from(i + 1)));
    let leaf = seconds_per_call(|i| hash3(Fr::from(i), Fr::from(i + 1), Fr::from(1u64)));
    let key_and_value = seconds_per_call(|i| bytes_to_field(&key(i)) + bytes_to_field(&value(i)));
    let per_write = (tree_hashes_per_write - 1.0) * middle + leaf + key_and_value;
    let limit = cores as f64 / per_write;
    println!(
        "| Poseidon 2 / 3 inputs; key+value bytes hashing | {:.2} µs / {:.2} µs; {:.2} µs |",
        middle * 1e6,
        leaf * 1e6,
        key_and_value * 1e6
    );
    println!("| tree hashes per write at this size | {tree_hashes_per_write:.2} |");
    println!(
        "| hash-bound limit ({:.1} µs of hashing per write, {cores} cores) | {limit:.0} writes/s |",
        per_write * 1e6
    );
    println!(
        "| store batched writes / hash-bound limit | {:.0} % |",
        100.0 * store_batched / limit
    );
    match js_merkletree(5_000) {
        Some(js) => println!(
            "| @iden3/js-merkletree, 5 k inserts (node, in-memory DB) | {js:.0} writes/s (store batched is {:.1}x) |",
            store_batched / js
        ),
        None => println!("| @iden3/js-merkletree | not run: node or tests/js/node_modules missing |"),
    }
}
