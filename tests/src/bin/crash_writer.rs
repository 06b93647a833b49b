//! Test helper for the crash-safety test: writes keys `k{n}` = `v{n}` with
//! SyncMode Full from several concurrent writers, overwriting every fifth key
//! and writing then deleting `d{n}` for every seventh, printing `put n`,
//! `over n` and `del n` as each is acknowledged, until it is killed. Two more
//! writers put batches of `b{n}-0` .. `b{n}-15` = `v{n}` (`batch n`), so
//! batches queue behind each other and commits pipeline.
//!
//! Usage: crash_writer <data dir> <first n> [async <flush interval ms>]
//!
//! With `async`, the store runs SyncMode Async instead: an acknowledged write
//! is durable once the flush interval (and the commit carrying the flush) has
//! passed.

use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys per batch of the batch writers.
const BATCH_KEYS: u64 = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("data dir");
    let first: u64 = args.next().expect("first n").parse().expect("number");
    let mut config = StorageConfig {
        sync_mode: SyncMode::Full,
        retained_versions: 50,
        ..StorageConfig::at(dir)
    };
    if args.next().as_deref() == Some("async") {
        let interval: u64 = args.next().expect("flush interval ms").parse().expect("number");
        config.sync_mode = SyncMode::Async;
        config.async_flush_interval = std::time::Duration::from_millis(interval);
    }
    let store = Store::open(config).expect("store opens");
    let next = Arc::new(AtomicU64::new(first));
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, next, stdout) = (store.clone(), next.clone(), stdout.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let ack = |what: &str| {
                    let mut out = stdout.lock().expect("stdout lock");
                    let _ = writeln!(out, "{what} {n}");
                    let _ = out.flush();
                };
                store
                    .write(format!("k{n}").as_bytes(), format!("v{n}").as_bytes())
                    .await
                    .expect("put");
                ack("put");
                if n % 5 == 0 {
                    store
                        .write(format!("k{n}").as_bytes(), format!("w{n}").as_bytes())
                        .await
                        .expect("overwrite");
                    ack("over");
                }
                if n % 7 == 0 {
                    store.write(format!("d{n}").as_bytes(), b"doomed").await.expect("put");
                    store.delete(format!("d{n}").as_bytes()).await.expect("delete");
                    ack("del");
                }
            }
        }));
    }
    for _ in 0..2 {
        let (store, next, stdout) = (store.clone(), next.clone(), stdout.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let ops: Vec<BatchOp> = (0..BATCH_KEYS)
                    .map(|i| BatchOp::Put {
                        key: format!("b{n}-{i}").into_bytes(),
                        value: format!("v{n}").into_bytes(),
                    })
                    .collect();
                store.write_batch(&ops, false).await.expect("batch");
                let mut out = stdout.lock().expect("stdout lock");
                let _ = writeln!(out, "batch {n}");
                let _ = out.flush();
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
