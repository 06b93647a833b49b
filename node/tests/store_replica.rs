//! Async verified replication: a replica follows a primary batch by batch
//! (each accepted only if its root matches), reports its lag while cut off,
//! catches up from the feed, and resyncs when it missed more than the feed
//! holds or diverged.

use rustorium_core::bytes::bytes_to_field;
use rustorium_node::store::replica::Replica;
use rustorium_node::store::{BatchOp, StorageConfig, Store, SyncMode};
use std::time::Duration;

fn config(dir: &std::path::Path, feed_ops: usize) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::None,
        replication_feed_ops: feed_ops,
        ..StorageConfig::at(dir)
    }
}

async fn write_rounds(primary: &Store, from: u32, to: u32) {
    for round in from..to {
        let ops: Vec<BatchOp> = (0..20u32)
            .map(|i| {
                let key = format!("key-{}", (i * 13 + round * 7) % 150).into_bytes();
                if (i + round) % 6 == 0 {
                    BatchOp::Delete { key }
                } else {
                    BatchOp::Put {
                        key,
                        value: format!("r{round}-{i}").into_bytes(),
                    }
                }
            })
            .collect();
        primary.write_batch(&ops, false).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_catches_up_and_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Store::open(config(&dir.path().join("primary"), 2_000)).unwrap();
    let local = Store::open(config(&dir.path().join("replica"), 0)).unwrap();
    let replica = Replica::follow(primary.clone(), local);

    write_rounds(&primary, 0, 30).await;
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!(status.mirrors, 30);
    assert_eq!(status.applied, 30, "batch by batch");
    assert_eq!(status.resyncs, 0);
    assert_eq!(replica.store().root().0, primary.root().0);
    let read = replica.store().read(b"key-7").await.unwrap();
    let expected = primary.read(b"key-7").await.unwrap();
    assert_eq!(read.as_ref().map(|r| &r.value), expected.as_ref().map(|r| &r.value));
    if let Some(read) = read {
        read.proof
            .verify(
                &read.root,
                &bytes_to_field(b"key-7"),
                Some(&bytes_to_field(&read.value)),
                160,
            )
            .expect("the replica serves reads with proofs");
    }

    // Cut off: the lag shows; back within the feed, it catches up batch by batch.
    replica.pause();
    write_rounds(&primary, 30, 40).await;
    for _ in 0..1000 {
        if replica.status().lag == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(replica.status().lag, 10, "the replica reports how far behind it is");
    assert_eq!(
        replica.store().metrics().replication_lag_versions.get(),
        10,
        "and in its metrics"
    );
    replica.resume();
    let status = replica.caught_up(40).await;
    assert_eq!((status.applied, status.resyncs), (40, 0));
    assert_eq!(replica.store().root().0, primary.root().0);
    assert_eq!(replica.store().metrics().replication_lag_versions.get(), 0);

    // Cut off past what the feed keeps (2,000 ops = 100 rounds): a resync.
    replica.pause();
    write_rounds(&primary, 40, 160).await;
    replica.resume();
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!(status.resyncs, 1, "{status:?}");
    assert_eq!(replica.store().root().0, primary.root().0);
    write_rounds(&primary, 160, 165).await;
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!(status.resyncs, 1, "after the resync it follows batch by batch again");
    assert_eq!(replica.store().root().0, primary.root().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_replica_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Store::open(config(&dir.path().join("primary"), 10_000)).unwrap();
    write_rounds(&primary, 0, 5).await;
    // A replica store with data of its own (a write that never came from
    // the primary): it does not match, so it resyncs before following.
    let local = Store::open(config(&dir.path().join("replica"), 0)).unwrap();
    local.write(b"stray", b"write").await.unwrap();
    let replica = Replica::follow(primary.clone(), local);
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!(status.resyncs, 1);
    assert!(
        replica.store().read(b"stray").await.unwrap().is_none(),
        "the stray key is gone"
    );
    write_rounds(&primary, 5, 8).await;
    replica.caught_up(primary.root().1).await;
    assert_eq!(replica.store().root().0, primary.root().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_factor_waits_for_verified_copies() {
    use rustorium_node::store::replica::ReplicaSet;
    let dir = tempfile::tempdir().unwrap();
    let primary = Store::open(config(&dir.path().join("primary"), 10_000)).unwrap();
    let replicas: Vec<_> = (0..2)
        .map(|i| {
            Replica::follow(
                primary.clone(),
                Store::open(config(&dir.path().join(format!("r{i}")), 0)).unwrap(),
            )
        })
        .collect();
    assert!(
        ReplicaSet::new(
            primary.clone(),
            Vec::<Replica<rustorium_node::store::backend::any::AnyBackend>>::new(),
            2
        )
        .is_err(),
        "no replica to wait for"
    );
    let mut set = ReplicaSet::new(primary.clone(), replicas, 3).unwrap();
    let written = set.write_with_proof(b"k", b"v").await.unwrap();
    for replica in set.replicas() {
        assert!(
            replica.status().mirrors >= written.version,
            "both copies verified it before the answer"
        );
        assert_eq!(replica.store().read(b"k").await.unwrap().unwrap().value, b"v");
    }
    // One replica cut off: a factor of 3 cannot be met, the write says so
    // (it is committed on the primary and reaches the replica later).
    set.replicas()[1].pause();
    set.ack_timeout = Duration::from_millis(200);
    let error = set.write_with_proof(b"k2", b"v2").await.unwrap_err();
    assert!(error.to_string().contains("not verified by 2 replica(s)"), "{error}");
    set.replicas()[1].resume();
    let version = primary.root().1;
    assert!(set.replicas()[1].caught_up(version).await.mirrors >= version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_past_the_feed_resyncs_by_merkle_diff() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Store::open(config(&dir.path().join("primary"), 100)).unwrap();
    for chunk in 0..20 {
        let ops: Vec<BatchOp> = (0..1000)
            .map(|i| BatchOp::Put {
                key: format!("k{}", chunk * 1000 + i).into_bytes(),
                value: b"v0".to_vec(),
            })
            .collect();
        primary.write_batch(&ops, false).await.unwrap();
    }
    // A new replica of a store whose feed no longer starts at 0: the diff
    // against its empty tree fetches every page of the primary's.
    let replica = Replica::follow(
        primary.clone(),
        Store::open(config(&dir.path().join("replica"), 0)).unwrap(),
    );
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!((status.resyncs, status.full_resyncs), (1, 0), "{status:?}");
    assert_eq!(status.last_resync_entries, 20_000);
    let every_page = status.last_resync_pages_fetched;
    assert!(every_page > 1000, "{status:?}");
    assert_eq!(replica.store().root().0, primary.root().0);

    // Cut off while a few keys change many times (more ops than the feed
    // keeps): the diff finds just those leaves and fetches only their paths.
    replica.pause();
    for round in 0..12 {
        for i in 0..10 {
            primary
                .write(format!("k{}", i * 1777).as_bytes(), format!("v{round}").as_bytes())
                .await
                .unwrap();
        }
    }
    for i in 0..5 {
        primary.delete(format!("k{}", i * 3001 + 5).as_bytes()).await.unwrap();
        primary.write(format!("new-{i}").as_bytes(), b"n").await.unwrap();
    }
    replica.resume();
    let status = replica.caught_up(primary.root().1).await;
    assert_eq!((status.resyncs, status.full_resyncs), (2, 0), "{status:?}");
    assert_eq!(status.last_resync_entries, 20, "10 changed, 5 deleted, 5 new");
    println!(
        "Merkle diff resync of 20 changed entries in 20k keys: {} of {every_page} pages fetched",
        status.last_resync_pages_fetched
    );
    assert!(
        status.last_resync_pages_fetched * 10 < every_page,
        "only differing paths: {} of {every_page} pages",
        status.last_resync_pages_fetched
    );
    assert_eq!(replica.store().root().0, primary.root().0);
    assert!(replica.store().read(b"k5").await.unwrap().is_none());
    assert_eq!(replica.store().read(b"k1777").await.unwrap().unwrap().value, b"v11");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_by_leaf_key_stream_and_stop_at_a_byte_budget() {
    use rustorium_core::field::fr_to_le_bytes;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 0)).unwrap();
    for chunk in 0..2 {
        let ops: Vec<BatchOp> = (chunk * 5000..(chunk + 1) * 5000)
            .map(|i| BatchOp::Put {
                key: format!("k{i}").into_bytes(),
                value: vec![b'v'; 100],
            })
            .collect();
        store.write_batch(&ops, false).await.unwrap();
    }
    let version = store.root().1;
    store.write(b"k5", b"later").await.unwrap();
    let wanted: std::collections::BTreeSet<[u8; 32]> = ["k5", "k9999", "k4242", "absent"]
        .iter()
        .map(|k| fr_to_le_bytes(&store.key_field(k.as_bytes()).unwrap()))
        .collect();
    // At the older version, in key order, the later write not seen.
    let all = store.entries_at(version, wanted.clone(), usize::MAX).await.unwrap();
    let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [b"k4242".as_slice(), b"k5", b"k9999"]);
    assert_eq!(all[1].1, vec![b'v'; 100]);
    // A budget of one byte still answers one entry; the caller asks again.
    let first = store.entries_at(version, wanted, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store.entries_at(version + 5, Default::default(), 1).await.is_err(),
        "a version not held"
    );
}
