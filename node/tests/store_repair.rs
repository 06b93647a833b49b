//! Merkle repair: a replica with a damaged page (a flipped byte, a lost
//! row) is fixed from a healthy copy, fetching only the damaged pages.

use rustorium_node::store::backend::redb::RedbBackend;
use rustorium_node::store::backend::{Backend, BackendReader, Table, WriteBatch};
use rustorium_node::store::verify_db::verify_redb;
use rustorium_node::store::{BatchOp, StorageConfig, Store, StoreError, SyncMode};
use std::ops::Bound;

fn config(dir: &std::path::Path) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::Full,
        compression_enabled: false,
        ..StorageConfig::at(dir)
    }
}

async fn fill(store: &Store) {
    for round in 0..4u32 {
        let ops: Vec<BatchOp> = (0..500u32)
            .map(|i| BatchOp::Put {
                key: format!("key-{}", i + round * 500).into_bytes(),
                value: format!("value {i}").into_bytes(),
            })
            .collect();
        store.write_batch(&ops, false).await.unwrap();
    }
}

/// The latest rows of the deepest pages, deepest first.
fn deep_page_rows(path: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let backend = RedbBackend::open(path).unwrap();
    let mut rows = backend
        .reader()
        .unwrap()
        .range(Table::Pages, Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .unwrap();
    rows.reverse();
    rows
}

fn overwrite(path: &std::path::Path, edits: impl FnOnce(&mut WriteBatch)) {
    let backend = RedbBackend::open(path).unwrap();
    let mut batch = WriteBatch::default();
    edits(&mut batch);
    backend.commit(batch, true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_pages_are_fetched_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (source_dir, replica_dir) = (dir.path().join("source"), dir.path().join("replica"));
    let source = Store::open(config(&source_dir)).unwrap();
    let replica = Store::open(config(&replica_dir)).unwrap();
    fill(&source).await;
    fill(&replica).await;
    assert_eq!(source.root().0, replica.root().0, "same writes, same tree");

    // A healthy replica: everything checked, nothing fetched.
    let clean = replica.repair_pages_from(&source).await.unwrap();
    assert!(clean.pages_checked > 20, "{clean:?}");
    assert_eq!(clean.pages_fetched, 0);
    replica.shutdown();

    // Damage two deep pages: one byte flipped, one row lost.
    let rows = deep_page_rows(&replica_dir);
    let (flipped, lost) = (rows[0].clone(), rows[1].clone());
    overwrite(&replica_dir, |batch| {
        let mut bytes = flipped.1.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        batch.put(Table::Pages, flipped.0.clone(), bytes);
        batch.delete(Table::Pages, lost.0.clone());
    });
    let replica = Store::open(config(&replica_dir)).unwrap();
    let mut broken = 0;
    for i in 0..2000u32 {
        match replica.read(format!("key-{i}").as_bytes()).await {
            Ok(Some(read)) if read.value == format!("value {}", i % 500).into_bytes() => {}
            Ok(_) | Err(StoreError::Corrupt(_)) | Err(StoreError::Tree(_)) => broken += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(broken > 0, "the damage is visible to reads");

    let report = replica.repair_pages_from(&source).await.unwrap();
    assert_eq!(report.pages_checked, clean.pages_checked);
    assert_eq!(
        report.pages_fetched, 2,
        "only the two damaged pages are fetched: {report:?}"
    );
    for i in 0..2000u32 {
        let read = replica
            .read(format!("key-{i}").as_bytes())
            .await
            .unwrap()
            .expect("present again");
        assert_eq!(read.value, format!("value {}", i % 500).into_bytes());
    }
    replica.shutdown();
    source.shutdown();
    assert!(verify_redb(&config(&replica_dir)).unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_at_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(config(&dir.path().join("a"))).unwrap();
    let replica = Store::open(config(&dir.path().join("b"))).unwrap();
    source.write(b"only", b"here").await.unwrap();
    let error = replica.repair_pages_from(&source).await.unwrap_err();
    assert!(
        error.to_string().contains("at this store's version and root"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_command_fixes_a_store_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (source_dir, replica_dir) = (dir.path().join("source"), dir.path().join("replica"));
    for path in [&source_dir, &replica_dir] {
        let store = Store::open(config(path)).unwrap();
        fill(&store).await;
        store.sync().await.unwrap();
        store.shutdown();
    }
    let (row, record) = deep_page_rows(&replica_dir).remove(0);
    overwrite(&replica_dir, |batch| {
        let mut bytes = record;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        batch.put(Table::Pages, row, bytes);
    });
    let run = |args: &[&std::path::Path]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rustorium-node"))
            .arg("repair")
            .arg("--data")
            .arg(args[0])
            .arg("--source")
            .arg(args[1])
            .env_remove("RUSTORIUM_DATA")
            .env_remove("RUSTORIUM_CONFIG")
            .output()
            .unwrap()
    };
    let output = run(&[&replica_dir, &source_dir]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" 1 fetched"), "{stdout}");
    let again = run(&[&replica_dir, &source_dir]);
    assert!(String::from_utf8_lossy(&again.stdout).contains(" 0 fetched"));
    assert!(verify_redb(&config(&replica_dir)).unwrap().ok());
    let missing = run(&[&dir.path().join("nothing"), &source_dir]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no store at"));
}
