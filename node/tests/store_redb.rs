//! The Redb backend passes the backend conformance suite, and the Redb store's
//! own promises hold: bounded storage under churn, compression, encryption
//! with key checks, max_size, every sync mode, verify-db, and failed commits
//! in a pipeline leaving nothing behind.

use rustorium_node::store::backend::redb::RedbBackend;
use rustorium_node::store::backend::redb::RedbReader;
use rustorium_node::store::backend::{BackendError, WriteBatch};
use rustorium_node::store::conformance::{self, BackendFactory};
use rustorium_node::store::verify_db::verify_redb;
use rustorium_node::store::{Backend, BatchOp, KeySource, StorageConfig, Store, StoreError, SyncMode};

struct Redb;

impl BackendFactory for Redb {
    type Backend = RedbBackend;
    fn open(&self, config: &StorageConfig) -> RedbBackend {
        RedbBackend::open(&config.path).expect("redb opens")
    }
}

fn config(dir: &tempfile::TempDir) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::None,
        ..StorageConfig::at(dir.path())
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            conformance::$name(&Redb, config(&dir)).await;
        }
    )*};
}

conformance!(
    proofs_verify,
    versions_are_retained,
    concurrent_writers,
    survives_reopen,
    bad_input_changes_nothing,
    field_mode,
    pipelined_batches,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_model() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        conformance::matches_model(&Redb, config(&dir), seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stays_bounded_under_overwrite_churn() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StorageConfig {
        retained_versions: 4,
        compression_enabled: false,
        ..config(&dir)
    })
    .unwrap();
    let keys: Vec<Vec<u8>> = (0..200u32).map(|i| format!("key-{i}").into_bytes()).collect();
    let mut sizes = Vec::new();
    for round in 0..60u32 {
        let ops: Vec<_> = keys
            .iter()
            .map(|k| rustorium_node::store::BatchOp::Put {
                key: k.clone(),
                value: round.to_le_bytes().repeat(8),
            })
            .collect();
        store.write_batch(&ops, false).await.unwrap();
        if round % 10 == 9 {
            store.sync().await.unwrap();
            sizes.push(std::fs::metadata(dir.path().join("rustorium.redb")).unwrap().len());
        }
    }
    let first = sizes[1];
    let last = *sizes.last().unwrap();
    assert!(last <= first + first / 2, "storage grows under churn: {sizes:?}");
    let pruned = store.metrics().pruned_rows_total.get();
    assert!(pruned > 200 * 40, "stale rows are pruned: {pruned}");
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_shrinks_compressible_values_and_reports_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    let value = b"the quick brown fox jumps over the lazy dog. ".repeat(100);
    for i in 0..20u32 {
        store.write(format!("doc-{i}").as_bytes(), &value).await.unwrap();
    }
    let ratio = store.metrics().compression_ratio.get();
    assert!(ratio > 3.0, "compression ratio {ratio}");
    assert_eq!(store.read(b"doc-7").await.unwrap().unwrap().value, value);
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_needs_the_right_key_and_proofs_commit_to_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.hex");
    std::fs::write(&key_file, "11".repeat(32)).unwrap();
    let data = dir.path().join("db");
    let encrypted = StorageConfig {
        encryption_enabled: true,
        encryption_key: Some(KeySource::File(key_file.clone())),
        ..StorageConfig::at(&data)
    };
    let store = Store::open(encrypted.clone()).unwrap();
    let secret = b"top secret plaintext value";
    let written = store.write_with_proof(b"k", secret).await.unwrap();
    let plain_root = {
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = Store::open(config(&plain_dir)).unwrap();
        let root = plain.write_with_proof(b"k", secret).await.unwrap().root;
        plain.shutdown();
        root
    };
    assert_eq!(written.root, plain_root, "proofs commit to the plaintext");
    store.shutdown();
    let file = std::fs::read(data.join("rustorium.redb")).unwrap();
    assert!(
        !file.windows(secret.len()).any(|w| w == secret),
        "plaintext is not on disk"
    );

    std::fs::write(&key_file, "22".repeat(32)).unwrap();
    assert!(matches!(
        Store::open(encrypted.clone()),
        Err(StoreError::WrongEncryptionKey { .. })
    ));
    std::fs::write(&key_file, "abc").unwrap();
    assert!(matches!(
        Store::open(encrypted.clone()),
        Err(StoreError::EncryptionKey(_))
    ));
    assert!(matches!(
        Store::open(StorageConfig::at(&data)),
        Err(StoreError::ConfigMismatch { .. })
    ));
    std::fs::write(&key_file, "11".repeat(32)).unwrap();
    let store = Store::open(encrypted).unwrap();
    assert_eq!(store.read(b"k").await.unwrap().unwrap().value, secret);
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_refuses_writes_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StorageConfig {
        max_size: 2 << 20,
        compression_enabled: false,
        ..config(&dir)
    })
    .unwrap();
    store.write(b"first", b"kept").await.unwrap();
    let mut refused = None;
    for i in 0..200u32 {
        match store
            .write(format!("big-{i}").as_bytes(), &vec![i as u8; 64 << 10])
            .await
        {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(matches!(refused, Some(StoreError::StorageFull { .. })), "{refused:?}");
    assert_eq!(store.read(b"first").await.unwrap().unwrap().value, b"kept");
    store
        .delete(b"big-0")
        .await
        .expect("deletes are let through a full store");
    assert!(store.read(b"big-0").await.unwrap().is_none());
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_mode_persists_after_clean_shutdown_and_verify_db_agrees() {
    for mode in [SyncMode::None, SyncMode::Async, SyncMode::Full] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            sync_mode: mode,
            ..StorageConfig::at(dir.path())
        };
        let store = Store::open(cfg.clone()).unwrap();
        for i in 0..50u32 {
            store.write(&i.to_le_bytes(), b"v").await.unwrap();
        }
        let root = store.root().0;
        store.shutdown();
        let report = verify_redb(&cfg).unwrap();
        assert!(report.ok(), "{mode:?}: {report:?}");
        assert_eq!(report.keys, 50);
        assert_eq!(report.stored_root, root);
    }
}

/// Redb that fails every fifth version commit: alternately with a plain
/// error (nothing landed; the writers get it) and a transient one (the
/// store re-applies the batch).
struct Flaky {
    inner: RedbBackend,
    commits: std::sync::atomic::AtomicU32,
}

impl Backend for Flaky {
    type Reader = RedbReader;

    fn name(&self) -> &'static str {
        "flaky-redb"
    }

    fn reader(&self) -> Result<RedbReader, BackendError> {
        self.inner.reader()
    }

    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError> {
        if batch.advances_to.is_some() {
            let n = self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 10 == 5 {
                return Err(BackendError::new("commit", "injected failure"));
            }
            if n.is_multiple_of(10) {
                return Err(BackendError::retryable("commit", "injected transient failure"));
            }
        }
        self.inner.commit(batch, durable)
    }

    fn format(&self) -> &'static [u8] {
        self.inner.format()
    }

    fn disk_bytes(&self) -> u64 {
        self.inner.disk_bytes()
    }
}

/// A commit that fails while the next batch is already applied on top of it
/// leaves neither batch half-applied: the failed batch is absent, the next
/// one is re-applied on the head, and the store equals the acknowledged
/// batches in version order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pipelined_commits_leave_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        max_batch_ops: 16,
        pipelined_commits: true,
        retained_versions: 3,
        ..config(&dir)
    };
    let backend = Flaky {
        inner: RedbBackend::open(dir.path()).unwrap(),
        commits: std::sync::atomic::AtomicU32::new(0),
    };
    let store = Store::open_with(backend, config).unwrap();
    let tasks: Vec<_> = (0..6u32)
        .map(|client| {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut done, mut failed) = (Vec::new(), 0);
                for round in 0..10u32 {
                    let ops: Vec<BatchOp> = (0..16u32)
                        .map(|j| {
                            let key = format!("k{}", (client * 3 + round * 11 + j * 7) % 53).into_bytes();
                            match (client + round + j) % 4 {
                                0 => BatchOp::Delete { key },
                                _ => BatchOp::Put {
                                    key,
                                    value: format!("{client}/{round}/{j}").into_bytes(),
                                },
                            }
                        })
                        .collect();
                    match store.write_batch(&ops, false).await {
                        Ok(result) => done.push((result.version, ops)),
                        Err(StoreError::Backend(error)) => {
                            assert!(error.message.contains("injected failure"), "{error}");
                            failed += 1;
                        }
                        Err(error) => panic!("unexpected error: {error}"),
                    }
                }
                (done, failed)
            })
        })
        .collect();
    let (mut batches, mut failed) = (Vec::new(), 0);
    for task in tasks {
        let (done, f) = task.await.unwrap();
        batches.extend(done);
        failed += f;
    }
    assert!(failed > 0, "some commits failed");
    assert!(
        store.metrics().pipelined_commits_total.get() > 0,
        "commits were pipelined"
    );
    let model = conformance::model_of(batches);
    conformance::assert_holds(&store, &model).await;
    store.shutdown();
}

/// Rewrites a closed store's file into format 1, the layout before the
/// latest/history tables (one `prefix ++ version` table per versioned engine
/// table, under the table's own name), as an older binary left it.
fn downgrade_to_format_1(dir: &std::path::Path) {
    use redb::{ReadableDatabase, TableDefinition};
    use rustorium_node::store::backend::{BackendReader, KeyValue, Table};
    use std::ops::Bound;
    type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
    let rows: Vec<(Table, Vec<KeyValue>)> = {
        let backend = RedbBackend::open(dir).unwrap();
        let reader = backend.reader().unwrap();
        [Table::Values, Table::Pages]
            .into_iter()
            .map(|table| {
                (
                    table,
                    reader
                        .range(table, Bound::Unbounded, Bound::Unbounded, usize::MAX)
                        .unwrap(),
                )
            })
            .collect()
    };
    let db = redb::Database::create(dir.join(rustorium_node::store::backend::redb::FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    for name in ["values.latest", "values.history", "pages.latest", "pages.history"] {
        assert!(txn.delete_table(Def::new(name)).unwrap(), "{name} exists");
    }
    for (table, rows) in rows {
        let mut legacy = txn.open_table(Def::new(table.name())).unwrap();
        for (key, record) in rows {
            legacy.insert(key.as_slice(), record.as_slice()).unwrap();
        }
    }
    txn.open_table(Def::new(Table::Meta.name()))
        .unwrap()
        .insert(b"format".as_slice(), b"1".as_slice())
        .unwrap();
    txn.commit().unwrap();
    let names: Vec<String> = db
        .begin_read()
        .unwrap()
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    assert!(names.iter().any(|n| n == "values") && !names.iter().any(|n| n == "values.latest"));
}

/// A store written in format 1 opens: its rows move into the current layout,
/// every key reads with a verified proof, older retained versions still
/// read as they were, verify-db agrees, and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_store_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        retained_versions: 8,
        ..config(&dir)
    };
    let store = Store::open(cfg.clone()).unwrap();
    let mut batches = Vec::new();
    for round in 0..6u32 {
        let ops: Vec<BatchOp> = (0..120u32)
            .filter(|i| (i + round) % 4 != 0)
            .map(|i| {
                let key = format!("k{i:03}").into_bytes();
                if (i + round) % 7 == 0 {
                    BatchOp::Delete { key }
                } else {
                    BatchOp::Put {
                        key,
                        value: format!("{round}-{i}").into_bytes(),
                    }
                }
            })
            .collect();
        let version = store.write_batch(&ops, false).await.unwrap().version;
        batches.push((version, ops));
    }
    let (root, head, _) = store.root();
    let older = batches[2].0;
    let older_model = conformance::model_of(batches[..3].to_vec());
    let model = conformance::model_of(batches);
    store.shutdown();

    downgrade_to_format_1(dir.path());
    let store = Store::open(cfg.clone()).unwrap();
    assert_eq!(store.root().0, root);
    assert_eq!(store.root().1, head);
    conformance::assert_holds(&store, &model).await;
    for i in 0..120u32 {
        let key = format!("k{i:03}").into_bytes();
        let read = store.read_at(&key, older).await.unwrap();
        assert_eq!(read.value.as_ref(), older_model.get(&key), "k{i:03} at version {older}");
        assert_eq!(read.version, older);
    }
    store.write(b"after-upgrade", b"v").await.unwrap();
    store.shutdown();
    let report = verify_redb(&cfg).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.keys, model.len() as u64 + 1);
}
