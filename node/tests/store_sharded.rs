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
    let used: Vec<u64> = sharded.stores().iter().map(|s| s.root().1).collect();
    assert!(used.iter().all(|v| *v > 0), "every shard took writes: {used:?}");
    whole.shutdown();
}

#[test]
fn bad_shard_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = ShardedStore::open(&config(dir.path()), 9).unwrap_err();
    assert!(error.to_string().contains("at most 8"), "{error}");
}

async fn same_as(sharded: &ShardedStore, whole: &Store, keys: impl Iterator<Item = Vec<u8>>) {
    let (root, _) = sharded.root().await.unwrap();
    assert_eq!(root, whole.root().0, "global root");
    for key in keys {
        let read = sharded.read(&key).await.unwrap();
        let expected = whole.read_proven(&key, None).await.unwrap();
        assert_eq!(read.root, expected.root);
        assert_eq!(read.value, expected.value);
        assert_eq!(read.proof, expected.proof);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_merge_change_no_root_and_survive_reopen() {
    use rustorium_core::tree::shard::Prefix;
    let dir = tempfile::tempdir().unwrap();
    let sharded = ShardedStore::open(&config(&dir.path().join("s")), 1).unwrap();
    let whole = Store::open(config(&dir.path().join("whole"))).unwrap();
    let ops = |from: u32, to: u32| -> Vec<BatchOp> {
        (from..to)
            .map(|i| BatchOp::Put {
                key: format!("key-{i}").into_bytes(),
                value: format!("value-{i}").into_bytes(),
            })
            .collect()
    };
    let keys = |to: u32| (0..to + 5).map(|i| format!("key-{i}").into_bytes());
    sharded.write_batch(&ops(0, 300)).await.unwrap();
    whole.write_batch(&ops(0, 300), false).await.unwrap();
    same_as(&sharded, &whole, keys(300)).await;

    let hot = Prefix { depth: 1, index: 0 };
    sharded.split(hot).await.unwrap();
    assert_eq!(
        sharded.cut(),
        vec![
            Prefix { depth: 1, index: 1 },
            Prefix { depth: 2, index: 0 },
            Prefix { depth: 2, index: 2 }
        ]
    );
    same_as(&sharded, &whole, keys(300)).await;
    sharded.split(Prefix { depth: 2, index: 2 }).await.unwrap();
    sharded.write_batch(&ops(300, 400)).await.unwrap();
    whole.write_batch(&ops(300, 400), false).await.unwrap();
    same_as(&sharded, &whole, keys(400)).await;

    sharded.merge(Prefix { depth: 2, index: 2 }).await.unwrap();
    sharded.merge(hot).await.unwrap();
    assert_eq!(sharded.cut(), Prefix::uniform(1));
    same_as(&sharded, &whole, keys(400)).await;
    let error = sharded.merge(hot).await.unwrap_err();
    assert!(error.to_string().contains("no shard"), "{error}");

    sharded.split(hot).await.unwrap();
    let cut = sharded.cut();
    sharded.shutdown();
    let reopened = ShardedStore::open(&config(&dir.path().join("s")), 1).unwrap();
    assert_eq!(reopened.cut(), cut, "the cut is kept on disk");
    same_as(&reopened, &whole, keys(400)).await;
    reopened.shutdown();
    whole.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_under_load_loses_nothing() {
    use rustorium_core::tree::shard::Prefix;
    let dir = tempfile::tempdir().unwrap();
    let sharded = std::sync::Arc::new(ShardedStore::open(&config(&dir.path().join("s")), 0).unwrap());
    for i in 0..200u32 {
        sharded.write(format!("pre-{i}").as_bytes(), b"v").await.unwrap();
    }
    let writers: Vec<_> = (0..8u32)
        .map(|w| {
            let sharded = sharded.clone();
            tokio::spawn(async move {
                for i in 0..40u32 {
                    let key = format!("during-{w}-{i}");
                    let r = sharded.write_with_proof(key.as_bytes(), b"x").await.unwrap();
                    r.proof
                        .verify(
                            &r.root,
                            &bytes_to_field(key.as_bytes()),
                            Some(&bytes_to_field(b"x")),
                            160,
                        )
                        .expect("proofs verify while the cut moves");
                }
            })
        })
        .collect();
    sharded.split(Prefix::ROOT).await.unwrap();
    sharded.split(Prefix { depth: 1, index: 1 }).await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let whole = Store::open(config(&dir.path().join("whole"))).unwrap();
    let mut ops: Vec<BatchOp> = (0..200u32)
        .map(|i| BatchOp::Put {
            key: format!("pre-{i}").into_bytes(),
            value: b"v".to_vec(),
        })
        .collect();
    ops.extend((0..8u32).flat_map(|w| {
        (0..40u32).map(move |i| BatchOp::Put {
            key: format!("during-{w}-{i}").into_bytes(),
            value: b"x".to_vec(),
        })
    }));
    whole.write_batch(&ops, false).await.unwrap();
    assert_eq!(sharded.shard_count(), 3);
    assert_eq!(
        sharded.root().await.unwrap().0,
        whole.root().0,
        "no write lost or doubled"
    );
    whole.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_shards_split_and_small_siblings_merge_by_policy() {
    use rustorium_core::tree::shard::Prefix;
    use rustorium_node::store::autoshard::{Observations, Reshard, ReshardPolicy};
    let dir = tempfile::tempdir().unwrap();
    let sharded = ShardedStore::open(&config(dir.path()), 0).unwrap();
    let whole = Store::open(config(&dir.path().join("whole"))).unwrap();
    let policy = ReshardPolicy {
        split_above_keys: Some(600),
        merge_below_keys: Some(200),
        ..ReshardPolicy::default()
    };
    let observed = Observations::default();
    let ops: Vec<BatchOp> = (0..1000)
        .map(|i| BatchOp::Put {
            key: format!("key-{i}").into_bytes(),
            value: b"v".to_vec(),
        })
        .collect();
    sharded.write_batch(&ops).await.unwrap();
    whole.write_batch(&ops, false).await.unwrap();
    let before = sharded.root().await.unwrap().0;
    // 1000 keys in one shard: split; about 500 in each half: stable.
    assert_eq!(
        sharded.rebalance(&policy, &observed).await.unwrap(),
        [Reshard::Split(Prefix::ROOT)]
    );
    assert_eq!(sharded.shard_count(), 2);
    assert!(sharded.rebalance(&policy, &observed).await.unwrap().is_empty());
    assert_eq!(sharded.root().await.unwrap().0, before, "no root moved");
    // Most keys deleted: the two halves are small and merge back.
    let deletes: Vec<BatchOp> = (0..900)
        .map(|i| BatchOp::Delete {
            key: format!("key-{i}").into_bytes(),
        })
        .collect();
    sharded.write_batch(&deletes).await.unwrap();
    whole.write_batch(&deletes, false).await.unwrap();
    assert_eq!(
        sharded.rebalance(&policy, &observed).await.unwrap(),
        [Reshard::Merged(Prefix::ROOT)]
    );
    assert_eq!(sharded.shard_count(), 1);
    same_as(&sharded, &whole, (0..1000).map(|i| format!("key-{i}").into_bytes())).await;

    // A hot shard (writes per second) splits too.
    let hot = ReshardPolicy {
        split_above_writes_per_sec: Some(1.0),
        max_depth: 1,
        ..ReshardPolicy::default()
    };
    let observed = Observations::default();
    assert!(
        sharded.rebalance(&hot, &observed).await.unwrap().is_empty(),
        "no rate on the first look"
    );
    for i in 0..50 {
        sharded.write(format!("hot-{i}").as_bytes(), b"h").await.unwrap();
    }
    assert_eq!(
        sharded.rebalance(&hot, &observed).await.unwrap(),
        [Reshard::Split(Prefix::ROOT)]
    );
    for i in 0..50 {
        sharded.write(format!("hot-{i}").as_bytes(), b"i").await.unwrap();
    }
    assert!(
        sharded.rebalance(&hot, &observed).await.unwrap().is_empty(),
        "max_depth holds"
    );
}
