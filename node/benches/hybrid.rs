//! Read latency of the hybrid backend (TiKV + local Redb cache) with a
//! simulated network: every PD and TiKV call of the in-process test cluster
//! waits `RUSTORIUM_BENCH_LATENCY_MS` (default 2 ms, a cross-zone round
//! trip). Measures reads with proof that the node's cache answers (hits)
//! and reads on a node whose cache has never seen the key (misses), against
//! the seed's targets: hit < 1 ms, miss < 10 ms.
//!
//! `cargo bench -p rustorium-node --bench hybrid`

use rustorium_node::store::backend::hybrid::HybridBackend;
use rustorium_node::store::backend::tikv::{TikvBackend, TikvConfig};
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use rustorium_tikv_test_server::{ClusterOptions, TestCluster};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn open(cluster: &TestCluster, cache: &std::path::Path) -> Store<HybridBackend> {
    let config = StorageConfig {
        sync_mode: SyncMode::Full,
        ..StorageConfig::at("bench-hybrid")
    };
    let tikv = TikvBackend::connect(TikvConfig {
        pd_endpoints: vec![cluster.pd_endpoint()],
        namespace: "bench".into(),
        ..TikvConfig::default()
    })
    .expect("connects");
    Store::open_with(HybridBackend::open(tikv, cache).expect("cache opens"), config).expect("store opens")
}

async fn measure(store: &Store<HybridBackend>, keys: impl Iterator<Item = Vec<u8>>) -> Vec<Duration> {
    let mut samples = Vec::new();
    for key in keys {
        let started = Instant::now();
        store.read(&key).await.expect("read").expect("present");
        samples.push(started.elapsed());
    }
    samples
}

fn report(name: &str, samples: &mut [Duration]) {
    println!(
        "{name:<34} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms",
        samples.len(),
        percentile(samples, 0.5).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let keys = env("RUSTORIUM_BENCH_KEYS", 20_000) as usize;
    let latency = Duration::from_millis(env("RUSTORIUM_BENCH_LATENCY_MS", 2));
    let cluster = TestCluster::start(ClusterOptions::default())
        .await
        .expect("cluster starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = open(&cluster, &dir.path().join("writer"));
    for chunk in (0..keys).collect::<Vec<_>>().chunks(2000) {
        let ops: Vec<BatchOp> = chunk
            .iter()
            .map(|i| BatchOp::Put {
                key: format!("key-{i}").into_bytes(),
                value: format!("value-{i}").into_bytes(),
            })
            .collect();
        writer.write_batch(&ops, false).await.expect("batch");
    }
    cluster.set_latency(latency);
    println!("{keys} keys, {latency:?} added to every PD and TiKV call");

    let sample = |offset: usize| (0..500).map(move |i| format!("key-{}", (i * 7919 + offset) % keys).into_bytes());
    // The writer's own rows are in its cache (write-through).
    let mut hits = measure(&writer, sample(0)).await;
    report("hit (writer's cache)", &mut hits);

    // A second node, cache empty: each key is new to it (upper pages become
    // cached after its first reads, as on a real node).
    let reader = open(&cluster, &dir.path().join("reader"));
    let started = Instant::now();
    reader.read(b"key-1").await.expect("read").expect("present");
    println!(
        "{:<34} {:>8.3} ms",
        "first read on a cold node",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut misses = measure(&reader, sample(3)).await;
    report("miss (key new to the node)", &mut misses);
    let mut warmed = measure(&reader, sample(3)).await;
    report("hit (same keys again)", &mut warmed);
    reader.refresh_metrics();
    println!(
        "reader cache hit ratio {:.3} ({} hits, {} misses)",
        reader.metrics().backend_cache_hit_ratio.get(),
        reader.metrics().backend_cache_hits.get(),
        reader.metrics().backend_cache_misses.get()
    );
    writer.shutdown();
    reader.shutdown();
}
