//! Replication lag: a primary takes batches from 4 writers as fast as it
//! can while one replica (each batch verified by its root) follows; lag is
//! sampled every 10 ms. Redb, SyncMode::Async on both. Twice: the replica
//! pulling in process, then over gRPC (the primary served on loopback, the
//! replica on its `Replicate` stream).
//!
//! `cargo bench -p rustorium-node --bench replication` (`RUSTORIUM_BENCH_KEYS`, default 40 000)

use rustorium_node::cluster::follow::RemotePrimary;
use rustorium_node::server::config::NodeConfig;
use rustorium_node::store::replica::Replica;
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, feed_ops: usize) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::Async,
        replication_feed_ops: feed_ops,
        ..StorageConfig::at(dir)
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let keys: usize = std::env::var("RUSTORIUM_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    for over_grpc in [false, true] {
        println!(
            "replica {}:",
            if over_grpc {
                "over gRPC (loopback)"
            } else {
                "in process"
            }
        );
        run(keys, over_grpc).await;
    }
}

async fn run(keys: usize, over_grpc: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let primary = Store::open(config(&dir.path().join("primary"), 1 << 20)).expect("primary");
    let local = Store::open(config(&dir.path().join("replica"), 0)).expect("replica");
    let replica = if over_grpc {
        let node = NodeConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..NodeConfig::default()
        };
        let bound = rustorium_node::server::bind(&node).await.expect("bind");
        let url = format!("http://{}", bound.addr);
        let served = primary.clone();
        tokio::spawn(async move {
            let _ = rustorium_node::server::serve(bound, served, &node, std::future::pending()).await;
        });
        Replica::follow(RemotePrimary::new(&url, None, 64 << 20).expect("url"), local)
    } else {
        Replica::follow(primary.clone(), local)
    };
    let started = Instant::now();
    let writers: Vec<_> = (0..4usize)
        .map(|w| {
            let primary = primary.clone();
            tokio::spawn(async move {
                let mine: Vec<usize> = (w..keys).step_by(4).collect();
                for chunk in mine.chunks(512) {
                    let ops: Vec<BatchOp> = chunk
                        .iter()
                        .map(|i| BatchOp::Put {
                            key: format!("key-{i}").into_bytes(),
                            value: b"value of about forty bytes, like the store bench".to_vec(),
                        })
                        .collect();
                    primary.write_batch(&ops, false).await.expect("batch");
                }
            })
        })
        .collect();
    let mut lags = Vec::new();
    while writers.iter().any(|w| !w.is_finished()) {
        lags.push(replica.status().lag);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let written = started.elapsed();
    let head = primary.root().1;
    let status = replica.caught_up(head).await;
    let caught_up = started.elapsed() - written;
    assert_eq!(
        replica.store().root().0,
        primary.root().0,
        "the replica verified every batch"
    );
    lags.sort_unstable();
    let mean = lags.iter().sum::<u64>() as f64 / lags.len().max(1) as f64;
    println!(
        "{keys} keys in {head} primary versions over {:.2} s ({:.0} writes/s); replica applied {} batches, {} resyncs",
        written.as_secs_f64(),
        keys as f64 / written.as_secs_f64(),
        status.applied,
        status.resyncs
    );
    println!(
        "lag during the load (versions): mean {mean:.1}, p50 {}, max {}; caught up {:.0} ms after the last write",
        lags.get(lags.len() / 2).copied().unwrap_or(0),
        lags.last().copied().unwrap_or(0),
        caught_up.as_secs_f64() * 1e3
    );
}
