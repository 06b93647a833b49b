//! Sharded stores against one unsharded store fed the same writes: the
//! global root and every proof (writes, reads, absent keys) are exactly the
//! unsharded ones, with 1 to 8 shards, under concurrent writers too.

use rustorium_core::bytes::bytes_to_field;
use rustorium_node::store::sharded::ShardedStore;
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};

fn config(dir: &std::path::Path) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::None,
        ..StorageConfig::at(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_roots_and_proofs_are_the_unsharded_ones() {
    for bits in [0u8, 1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let sharded = ShardedStore::open(&config(&dir.path().join("sharded")), bits).unwrap();
        let whole = Store::open(config(&dir.path().join("whole"))).unwrap();
        assert_eq!(sharded.shard_count(), 1 << bits);
        let (empty_root, _) = sharded.root().await.unwrap();
        assert_eq!(empty_root, whole.root().0, "empty trees agree");

        for round in 0..6u32 {
            let ops: Vec<BatchOp> = (0..25u32)
                .map(|i| {
                    let key = format!("key-{}", (i * 7 + round * 3) % 60).into_bytes();
                    if (i + round) % 5 == 0 {
                        BatchOp::Delete { key }
                    } else {
                        BatchOp::Put {
                            key,
                            value: format!("v{round}-{i}").into_bytes(),
                        }
                    }
                })
                .collect();
            sharded.write_batch(&ops).await.unwrap();
            whole.write_batch(&ops, false).await.unwrap();
            let (root, versions) = sharded.root().await.unwrap();
            assert_eq!(root, whole.root().0, "{bits} bits, round {round}");
            assert_eq!(versions.len(), 1 << bits);
        }
        let written = sharded.write_with_proof(b"fresh", b"value").await.unwrap();
        let expected = whole.write_with_proof(b"fresh", b"value").await.unwrap();
        assert_eq!(written.root, expected.root);
        assert_eq!(
            written.proof, expected.proof,
            "a write's global proof is the unsharded proof"
        );

        for i in 0..64u32 {
            let key = format!("key-{i}").into_bytes();
            let read = sharded.read(&key).await.unwrap();
            let expected = whole.read_proven(&key, None).await.unwrap();
            assert_eq!(read.root, expected.root);
            assert_eq!(read.value, expected.value);
            assert_eq!(read.proof, expected.proof, "proof of {}", String::from_utf8_lossy(&key));
            read.proof
                .verify(
                    &read.root,
                    &bytes_to_field(&key),
                    read.value.as_deref().map(bytes_to_field).as_ref(),
                    sharded.max_levels(),
                )
                .expect("global proof verifies");
        }
        sharded.shutdown();
        whole.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let sharded = std::sync::Arc::new(ShardedStore::open(&config(&dir.path().join("s")), 2).unwrap());
    let mut tasks = Vec::new();
    for writer in 0..16u32 {
        let sharded = sharded.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u32 {
                let key = format!("w{writer}-{i}");
                let r = sharded.write_with_proof(key.as_bytes(), b"x").await.unwrap();
                r.proof
                    .verify(
                        &r.root,
                        &bytes_to_field(key.as_bytes()),
                        Some(&bytes_to_field(b"x")),
                        sharded.max_levels(),
                    )
                    .expect("each write's proof verifies against the global root of its cut");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let whole = Store::open(config(&dir.path().join("whole"))).unwrap();
    let ops: Vec<BatchOp> = (0..16u32)
        .flat_map(|w| {
            (0..10u32).map(move |i| BatchOp::Put {
                key: format!("w{w}-{i}").into_bytes(),
                value: b"x".to_vec(),
            })
        })
        .collect();
    whole.write_batch(&ops, false).await.unwrap();
    assert_eq!(sharded.root().await.unwrap().0, whole.root().0);
    let used: Vec<u64> = sharded.shards().iter().map(|s| s.root().1).collect();
    assert!(used.iter().all(|v| *v > 0), "every shard took writes: {used:?}");
    whole.shutdown();
}

#[test]
fn bad_shard_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = ShardedStore::open(&config(dir.path()), 9).unwrap_err();
    assert!(error.to_string().contains("at most 8"), "{error}");
}
