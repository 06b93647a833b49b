//! Write throughput of a sharded store with 1, 2 and 4 shards (Redb,
//! SyncMode::Async): each shard commits on its own committer thread, so
//! shards scale with cores until hashing saturates them. Two workloads:
//! 64 concurrent single-key writers, and batches of 512 from 8 writers.
//!
//! `cargo bench -p rustorium-node --bench shards` (`RUSTORIUM_BENCH_KEYS`,
//! default 40 000 per run)

use rustorium_node::store::sharded::ShardedStore;
use rustorium_node::store::{BatchOp, StorageConfig, SyncMode};
use std::sync::Arc;
use std::time::Instant;

fn keys() -> usize {
    std::env::var("RUSTORIUM_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

fn open(bits: u8, dir: &std::path::Path) -> Arc<ShardedStore> {
    let config = StorageConfig {
        sync_mode: SyncMode::Async,
        ..StorageConfig::at(dir)
    };
    Arc::new(ShardedStore::open(&config, bits).expect("opens"))
}

async fn single_writers(store: Arc<ShardedStore>, keys: usize) -> f64 {
    let started = Instant::now();
    let writers = 64;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (w..keys).step_by(writers) {
                    store
                        .write(
                            format!("single-{i}").as_bytes(),
                            b"value of about forty bytes, like the store bench",
                        )
                        .await
                        .expect("write");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    keys as f64 / started.elapsed().as_secs_f64()
}

async fn batch_writers(store: Arc<ShardedStore>, keys: usize) -> f64 {
    let started = Instant::now();
    let writers = 8;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mine: Vec<usize> = (w..keys).step_by(writers).collect();
                for chunk in mine.chunks(512) {
                    let ops: Vec<BatchOp> = chunk
                        .iter()
                        .map(|i| BatchOp::Put {
                            key: format!("batch-{i}").into_bytes(),
                            value: b"value of about forty bytes, like the store bench".to_vec(),
                        })
                        .collect();
                    store.write_batch(&ops).await.expect("batch");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    keys as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let keys = keys();
    println!(
        "{keys} keys per run, {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut base = (0.0, 0.0);
    for bits in [0u8, 1, 2] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(bits, dir.path());
        let single = single_writers(store.clone(), keys).await;
        let batched = batch_writers(store.clone(), keys).await;
        if bits == 0 {
            base = (single, batched);
        }
        println!(
            "{} shard(s): 64 single writers {:>8.0} writes/s ({:.2}x)   batches of 512 {:>8.0} writes/s ({:.2}x)",
            1 << bits,
            single,
            single / base.0,
            batched,
            batched / base.1
        );
        if let Ok(store) = Arc::try_unwrap(store) {
            store.shutdown();
        }
    }
}
