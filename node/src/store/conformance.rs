//! The backend conformance suite: written once, run against every backend.
//! Each check opens stores through a factory and fails with a message naming
//! the property that broke. Used by `node/tests/store_redb.rs` (and any later
//! backend's tests).

use crate::store::{Backend, BatchOp, KeyMode, StorageConfig, Store, StoreError};
use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::tree::{MemoryTree, Op};
use std::collections::BTreeMap;

/// Opens a backend for a config; called again with the same config to reopen.
pub trait BackendFactory {
    type Backend: Backend;
    fn open(&self, config: &StorageConfig) -> Self::Backend;
}

fn model_root(entries: &BTreeMap<Vec<u8>, Vec<u8>>, max_levels: u16) -> Fr {
    let mut tree = MemoryTree::new(max_levels).expect("valid max_levels");
    let ops: Vec<Op> = entries
        .iter()
        .map(|(k, v)| Op::put(bytes_to_field(k), bytes_to_field(v)))
        .collect();
    tree.apply(&ops).expect("model fits");
    tree.root()
}

fn open<F: BackendFactory>(factory: &F, config: &StorageConfig) -> Store<F::Backend> {
    Store::open_with(factory.open(config), config.clone()).expect("store opens")
}

/// Opens a store through a factory (for backend-specific tests).
pub fn open_store<F: BackendFactory>(factory: &F, config: &StorageConfig) -> Store<F::Backend> {
    open(factory, config)
}

/// Writes, reads and deletes return proofs that verify against their roots.
pub async fn proofs_verify<F: BackendFactory>(factory: &F, config: StorageConfig) {
    let store = open(factory, &config);
    let levels = store.max_levels();
    let written = store.write_with_proof(b"alice", b"100").await.unwrap();
    written
        .proof
        .verify(
            &written.root,
            &bytes_to_field(b"alice"),
            Some(&bytes_to_field(b"100")),
            levels,
        )
        .expect("write proof verifies");
    assert_eq!(written.version, 1);
    let read = store.read(b"alice").await.unwrap().expect("alice is present");
    assert_eq!(read.value, b"100");
    assert_eq!(read.root, written.root);
    read.proof
        .verify(
            &read.root,
            &bytes_to_field(b"alice"),
            Some(&bytes_to_field(b"100")),
            levels,
        )
        .expect("read proof verifies");
    assert!(store.verify_proof(b"alice", Some(b"100"), &read.proof).unwrap());
    assert!(!store.verify_proof(b"alice", Some(b"101"), &read.proof).unwrap());

    let absent = store.read_proven(b"bob", None).await.unwrap();
    assert!(absent.value.is_none());
    absent
        .proof
        .verify(&absent.root, &bytes_to_field(b"bob"), None, levels)
        .expect("absence proof verifies");
    assert!(store.read(b"bob").await.unwrap().is_none());

    let deleted = store.delete(b"alice").await.unwrap();
    deleted
        .proof
        .verify(&deleted.root, &bytes_to_field(b"alice"), None, levels)
        .expect("delete returns an absence proof");
    assert_eq!(deleted.root, Fr::from(0u64), "deleting the only key empties the tree");
    let noop = store.delete(b"never-written").await.unwrap();
    assert_eq!(noop.root, deleted.root, "deleting an absent key changes nothing");
    store.shutdown();
}

/// Random batches of puts and deletes match a BTreeMap model and the
/// in-memory tree, version by version; every batch is one version.
pub async fn matches_model<F: BackendFactory>(factory: &F, config: StorageConfig, seed: u64) {
    let store = open(factory, &config);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..25u64 {
        let mut ops = Vec::new();
        for _ in 0..(next() % 40 + 1) {
            let key = format!("key-{}", next() % 120).into_bytes();
            if next() % 4 == 0 {
                ops.push(BatchOp::Delete { key });
            } else {
                let len = (next() % 600) as usize;
                let value: Vec<u8> = (0..len).map(|i| (i as u64 % 7 + round) as u8).collect();
                ops.push(BatchOp::Put { key, value });
            }
        }
        for op in &ops {
            match op {
                BatchOp::Put { key, value } => model.insert(key.clone(), value.clone()),
                BatchOp::Delete { key } => model.remove(key),
            };
        }
        let result = store.write_batch(&ops, true).await.unwrap();
        assert_eq!(result.version, round + 1, "one batch is one version");
        assert_eq!(
            result.root,
            model_root(&model, store.max_levels()),
            "root after batch {round}"
        );
        assert_eq!(result.proofs.len(), ops.len());
        for (op, proof) in ops.iter().zip(&result.proofs) {
            let key = match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
            };
            let value = model.get(key).map(|v| bytes_to_field(v));
            proof
                .verify(&result.root, &bytes_to_field(key), value.as_ref(), store.max_levels())
                .expect("batch proof verifies against the final state");
        }
    }
    let scanned = store.scan(b"", None, usize::MAX).await.unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(scanned, expected, "scan returns the live keys in order");
    store.shutdown();
}

/// Old versions stay readable with proofs against their own roots, inside
/// the retention window and not outside it.
pub async fn versions_are_retained<F: BackendFactory>(factory: &F, mut config: StorageConfig) {
    config.retained_versions = 5;
    let store = open(factory, &config);
    let mut roots = vec![store.root().0];
    for i in 0..10u32 {
        let r = store.write_with_proof(b"counter", &i.to_be_bytes()).await.unwrap();
        roots.push(r.root);
    }
    for version in 6..=10u64 {
        let read = store.read_at(b"counter", version).await.unwrap();
        assert_eq!(
            read.value.as_deref(),
            Some(&((version - 1) as u32).to_be_bytes()[..]),
            "value at version {version}"
        );
        assert_eq!(read.root, roots[version as usize]);
        read.proof
            .verify(
                &read.root,
                &bytes_to_field(b"counter"),
                read.value.as_deref().map(bytes_to_field).as_ref(),
                store.max_levels(),
            )
            .unwrap();
    }
    assert!(matches!(
        store.read_at(b"counter", 5).await,
        Err(StoreError::VersionNotRetained {
            oldest: 6,
            latest: 10,
            ..
        })
    ));
    assert!(matches!(
        store.read_at(b"counter", 11).await,
        Err(StoreError::VersionNotRetained { .. })
    ));
    let log = store.roots(0..=10, 100).await.unwrap();
    assert_eq!(log.len(), 11, "the root log keeps every version");
    assert!(log.iter().zip(&roots).all(|(record, root)| record.root.hash() == *root));
    store.shutdown();
}

/// Many concurrent writers all commit, and the result equals the model.
pub async fn concurrent_writers<F: BackendFactory>(factory: &F, config: StorageConfig) {
    let store = open(factory, &config);
    let mut tasks = Vec::new();
    for writer in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u32 {
                let key = format!("w{writer}-k{i}");
                let r = store
                    .write_with_proof(key.as_bytes(), &writer.to_le_bytes())
                    .await
                    .unwrap();
                r.proof
                    .verify(
                        &r.root,
                        &bytes_to_field(key.as_bytes()),
                        Some(&bytes_to_field(&writer.to_le_bytes())),
                        store.max_levels(),
                    )
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..64u32)
        .flat_map(|w| (0..10u32).map(move |i| (format!("w{w}-k{i}").into_bytes(), w.to_le_bytes().to_vec())))
        .collect();
    let (root, version, _) = store.root();
    assert_eq!(root, model_root(&model, store.max_levels()));
    assert!(version <= 640, "group commit never adds versions");
    store.shutdown();
}

/// Closing and reopening keeps root, version and values.
pub async fn survives_reopen<F: BackendFactory>(factory: &F, config: StorageConfig) {
    let store = open(factory, &config);
    store.write(b"a", b"1").await.unwrap();
    store
        .write_batch(
            &[
                BatchOp::Put {
                    key: b"b".to_vec(),
                    value: b"2".to_vec(),
                },
                BatchOp::Delete { key: b"a".to_vec() },
            ],
            false,
        )
        .await
        .unwrap();
    let (root, version, _) = store.root();
    store.shutdown();
    let store = open(factory, &config);
    assert_eq!(store.root().0, root);
    assert_eq!(store.root().1, version);
    assert_eq!(store.read(b"b").await.unwrap().unwrap().value, b"2");
    assert!(store.read(b"a").await.unwrap().is_none());
    store.shutdown();
}

/// Bad input is refused with a clear error and changes nothing.
pub async fn bad_input_changes_nothing<F: BackendFactory>(factory: &F, mut config: StorageConfig) {
    config.max_key_bytes = 8;
    config.max_value_bytes = 16;
    config.max_batch_ops = 4;
    let store = open(factory, &config);
    store.write(b"k", b"v").await.unwrap();
    let before = store.root();
    assert!(matches!(
        store.write(b"123456789", b"v").await,
        Err(StoreError::KeyTooLarge { got: 9, max: 8 })
    ));
    assert!(matches!(
        store.write(b"k", &[0; 17]).await,
        Err(StoreError::ValueTooLarge { got: 17, max: 16 })
    ));
    assert!(matches!(
        store.write_batch(&[], false).await,
        Err(StoreError::EmptyBatch)
    ));
    let five = vec![BatchOp::Delete { key: b"k".to_vec() }; 5];
    assert!(matches!(
        store.write_batch(&five, false).await,
        Err(StoreError::BatchTooLarge { got: 5, max: 4 })
    ));
    let mixed = [
        BatchOp::Delete { key: b"k".to_vec() },
        BatchOp::Put {
            key: b"way-too-long-key".to_vec(),
            value: vec![],
        },
    ];
    assert!(
        store.write_batch(&mixed, false).await.is_err(),
        "one bad op fails the batch"
    );
    assert_eq!(store.root().0, before.0);
    assert_eq!(store.root().1, before.1);
    assert_eq!(store.read(b"k").await.unwrap().unwrap().value, b"v");
    store.shutdown();
}

/// Field mode: keys and values are iden3 field elements.
pub async fn field_mode<F: BackendFactory>(factory: &F, mut config: StorageConfig) {
    use rustorium_core::field::fr_to_le_bytes;
    config.key_mode = KeyMode::Field;
    let store = open(factory, &config);
    let (key, value) = (Fr::from(5u64), Fr::from(55u64));
    let r = store
        .write_with_proof(&fr_to_le_bytes(&key), &fr_to_le_bytes(&value))
        .await
        .unwrap();
    let mut tree = MemoryTree::new(config.max_levels).unwrap();
    tree.insert(key, value).unwrap();
    assert_eq!(r.root, tree.root(), "field mode uses the raw elements, as iden3");
    let r_bytes = [0xffu8; 32];
    assert!(matches!(
        store.write(&r_bytes, &fr_to_le_bytes(&value)).await,
        Err(StoreError::NotAFieldElement { what: "key", .. })
    ));
    assert!(matches!(
        store.write(&fr_to_le_bytes(&key), b"short").await,
        Err(StoreError::NotAFieldElement { what: "value", .. })
    ));
    store.shutdown();
}

/// For backends several stores share (TiKV, hybrid): two stores write the
/// same tree at once. Every acknowledged write is present, conflicts are
/// resolved by re-applying on the winner's head, and both stores end on the
/// root the union of their writes must have.
pub async fn shared_writers<F: BackendFactory>(factory: &F, config: StorageConfig) {
    let first = open(factory, &config);
    let second = open(factory, &config);
    let mut tasks = Vec::new();
    for (name, store) in [("a", first.clone()), ("b", second.clone())] {
        for writer in 0..4u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..6u32 {
                    let key = format!("{name}{writer}-{i}");
                    let r = store.write_with_proof(key.as_bytes(), name.as_bytes()).await.unwrap();
                    r.proof
                        .verify(
                            &r.root,
                            &bytes_to_field(key.as_bytes()),
                            Some(&bytes_to_field(name.as_bytes())),
                            store.max_levels(),
                        )
                        .expect("a write's proof verifies against the root it committed");
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let model: BTreeMap<Vec<u8>, Vec<u8>> = ["a", "b"]
        .into_iter()
        .flat_map(|name| {
            (0..4u32).flat_map(move |w| (0..6u32).map(move |i| (format!("{name}{w}-{i}").into_bytes(), name.into())))
        })
        .collect();
    let expected = model_root(&model, first.max_levels());
    // A read past the refresh interval adopts the other store's commits.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for store in [&first, &second] {
        let read = store.read(b"a0-0").await.unwrap().expect("a0-0 was acknowledged");
        assert_eq!(
            read.root, expected,
            "both stores converge on the root of every acknowledged write"
        );
    }
    let scanned = first.scan(b"", None, usize::MAX).await.unwrap();
    assert_eq!(scanned, model.into_iter().collect::<Vec<_>>());
    first.shutdown();
    second.shutdown();
}

/// One client's batch of `pipelined_batches`: 40 ops on 97 shared keys,
/// some of them deletes, overlapping other clients' batches.
fn shared_batch(client: u32, round: u32) -> Vec<BatchOp> {
    (0..40u32)
        .map(|j| {
            let key = format!("shared-{}", (client * 7 + round * 13 + j * 5) % 97).into_bytes();
            if (client + round + j).is_multiple_of(5) {
                BatchOp::Delete { key }
            } else {
                let value = format!("{client}-{round}-{j}").into_bytes();
                BatchOp::Put { key, value }
            }
        })
        .collect()
}

/// Applies committed batches in version order: what the store must hold.
pub fn model_of(mut batches: Vec<(u64, Vec<BatchOp>)>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    batches.sort_by_key(|(version, _)| *version);
    assert!(
        batches.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "each batch is its own version"
    );
    let mut model = BTreeMap::new();
    for op in batches.into_iter().flat_map(|(_, ops)| ops) {
        match op {
            BatchOp::Put { key, value } => model.insert(key, value),
            BatchOp::Delete { key } => model.remove(&key),
        };
    }
    model
}

/// The store holds exactly `model`: root, key count, scan, and a verified
/// read of every key (which needs every page on its path).
pub async fn assert_holds<B: Backend>(store: &Store<B>, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let (root, version, _) = store.root();
    assert_eq!(root, model_root(model, store.max_levels()), "root at version {version}");
    assert_eq!(store.keys(), model.len() as u64, "live key count");
    let scanned: BTreeMap<Vec<u8>, Vec<u8>> = store.scan(b"", None, usize::MAX).await.unwrap().into_iter().collect();
    assert_eq!(&scanned, model, "scan");
    for (key, value) in model {
        let read = store.read(key).await.unwrap().expect("present");
        assert_eq!(&read.value, value);
        assert!(store.verify_proof(key, Some(value), &read.proof).unwrap());
    }
}

/// Batches from several clients at once on shared keys: the committer applies
/// one batch while the previous one is written (`pipelined_commits`). The
/// store ends up as the batches applied in version order, and stays readable
/// once pruning removed every row those versions superseded.
pub async fn pipelined_batches<F: BackendFactory>(factory: &F, mut config: StorageConfig) {
    config.pipelined_commits = true;
    config.retained_versions = 2;
    // One client batch per version, so the version order is the apply order.
    config.max_batch_ops = 40;
    let store = open(factory, &config);
    let tasks: Vec<_> = (0..6u32)
        .map(|client| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                for round in 0..8 {
                    let ops = shared_batch(client, round);
                    let result = store.write_batch(&ops, false).await.expect("batch commits");
                    done.push((result.version, ops));
                }
                done
            })
        })
        .collect();
    let mut batches = Vec::new();
    for task in tasks {
        batches.extend(task.await.unwrap());
    }
    let mut model = model_of(batches);
    assert!(
        store.metrics().pipelined_commits_total.get() > 0,
        "some batches were applied while another was written"
    );
    assert_holds(&store, &model).await;
    // Move every version above out of the retention window: their stale
    // rows are pruned, and nothing still live may be among them.
    for i in 0..4u32 {
        store.write(b"filler", &i.to_le_bytes()).await.unwrap();
    }
    model.insert(b"filler".to_vec(), 3u32.to_le_bytes().to_vec());
    assert_holds(&store, &model).await;
    store.shutdown();
    let store = open(factory, &config);
    assert_holds(&store, &model).await;
    store.shutdown();
}
