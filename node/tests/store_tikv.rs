//! The TiKV backend through the real `tikv-client`, against the in-process
//! PD + TiKV test server: the conformance suite, then faults the server
//! injects (region splits mid-batch, NotLeader, ServerIsBusy, slow answers,
//! cut connections, partial multi-region failure, racing and fenced
//! writers). After each: no acknowledged write lost, root == recompute.
//!
//! `PD_ADDRS=host:port,...` additionally runs the suite against a real
//! cluster (`real_cluster_*`); without it those tests say why they skip.

use rustorium_node::store::backend::tikv::{TikvBackend, TikvConfig};
use rustorium_node::store::conformance::{self, BackendFactory};
use rustorium_node::store::verify_db::verify;
use rustorium_node::store::{BatchOp, StorageConfig, Store, StoreError, SyncMode};
use rustorium_tikv_test_server::{ClusterOptions, Fault, FaultAction, TestCluster};
use std::collections::BTreeMap;
use std::time::Duration;

/// Opens TiKV backends on one cluster; the store's path names its namespace,
/// so reopening a config reopens the same tree.
struct Tikv {
    pd_endpoints: Vec<String>,
    tune: fn(&mut TikvConfig),
}

impl Tikv {
    fn on(cluster: &TestCluster) -> Self {
        Self {
            pd_endpoints: vec![cluster.pd_endpoint()],
            tune: |_| {},
        }
    }

    fn config(&self, store: &StorageConfig) -> TikvConfig {
        let mut config = TikvConfig {
            pd_endpoints: self.pd_endpoints.clone(),
            namespace: store.path.to_string_lossy().into_owned(),
            request_timeout: Duration::from_millis(800),
            commit_timeout: Duration::from_secs(3),
            retry_backoff: Duration::from_millis(5),
            head_refresh_interval: Duration::from_millis(50),
            ..TikvConfig::default()
        };
        (self.tune)(&mut config);
        config
    }
}

impl BackendFactory for Tikv {
    type Backend = TikvBackend;
    fn open(&self, config: &StorageConfig) -> TikvBackend {
        TikvBackend::connect(self.config(config)).expect("TiKV backend connects")
    }
}

fn store_config(name: &str) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::Full,
        retained_versions: 50,
        ..StorageConfig::at(format!("test-{name}"))
    }
}

async fn cluster(stores: usize) -> TestCluster {
    TestCluster::start(ClusterOptions {
        stores,
        ..ClusterOptions::default()
    })
    .await
    .expect("test cluster starts")
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let cluster = cluster(1).await;
            conformance::$name(&Tikv::on(&cluster), store_config(stringify!($name))).await;
            assert!(cluster.pending_faults() == 0);
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
    shared_writers,
    pipelined_batches,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_model() {
    let cluster = cluster(1).await;
    conformance::matches_model(&Tikv::on(&cluster), store_config("model"), 7).await;
}

/// Writes `count` keys named `{prefix}{i}` one batch each; returns the model.
async fn write_keys(store: &Store<TikvBackend>, prefix: &str, count: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for i in 0..count {
        let key = format!("{prefix}{i}").into_bytes();
        let value = format!("value {i}").into_bytes();
        store.write(&key, &value).await.expect("write is acknowledged");
        model.insert(key, value);
    }
    model
}

/// Every acknowledged write reads back, and the root recomputed from the
/// stored values equals the root log's.
async fn assert_consistent(factory: &Tikv, config: &StorageConfig, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let backend = factory.open(config);
    let report = verify(&backend, config).expect("verify runs");
    assert!(report.ok(), "root == recompute: {report:?}");
    let store = Store::open_with(backend, config.clone()).expect("reopens");
    for (key, value) in model {
        let read = store.read(key).await.unwrap();
        assert_eq!(
            read.map(|r| r.value).as_ref(),
            Some(value),
            "acknowledged write {} is present",
            String::from_utf8_lossy(key)
        );
    }
    assert_eq!(store.keys(), model.len() as u64);
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_split_mid_batch() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("split");
    let store = conformance::open_store(&factory, &config);
    let mut model = write_keys(&store, "before-", 5).await;
    // The next commit's prewrite meets a split of its region, then a second
    // split lands during its commit: both are retried on the new regions.
    let mut split_key = format!("{}/", config.path.display()).into_bytes();
    split_key.push(3); // inside the pages table
    cluster.inject(Fault::new("KvPrewrite", FaultAction::SplitAt(split_key.clone())));
    split_key.push(0x80);
    cluster.inject(Fault::new("KvCommit", FaultAction::SplitAt(split_key)));
    let ops: Vec<BatchOp> = (0..40)
        .map(|i| BatchOp::Put {
            key: format!("batch-{i}").into_bytes(),
            value: vec![i as u8; 100],
        })
        .collect();
    store
        .write_batch(&ops, true)
        .await
        .expect("the batch survives the splits");
    for op in ops {
        if let BatchOp::Put { key, value } = op {
            model.insert(key, value);
        }
    }
    assert_eq!(cluster.pending_faults(), 0);
    assert_eq!(cluster.region_count(), 3);
    model.extend(write_keys(&store, "after-", 5).await);
    store.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_and_busy_servers_are_retried() {
    let cluster = cluster(3).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("leader");
    let store = conformance::open_store(&factory, &config);
    cluster.inject(Fault::new("KvPrewrite", FaultAction::NotLeader));
    cluster.inject(Fault::new("KvCommit", FaultAction::NotLeader));
    cluster.inject(Fault::new("KvPrewrite", FaultAction::ServerIsBusy).skip(1).times(2));
    let model = write_keys(&store, "k", 8).await;
    cluster.inject(Fault::new("KvScan", FaultAction::ServerIsBusy).times(3));
    for (key, value) in &model {
        assert_eq!(&store.read(key).await.unwrap().unwrap().value, value);
    }
    // Root records (a commit's check that its version is free, reads of old
    // versions) are point gets.
    cluster.inject(Fault::new("KvGet", FaultAction::NotLeader));
    cluster.inject(Fault::new("KvGet", FaultAction::ServerIsBusy).skip(1));
    let mut model = model;
    model.extend(write_keys(&store, "after-get-faults-", 1).await);
    assert!(store.read_at(b"k0", 2).await.unwrap().value.is_some());
    assert_eq!(cluster.pending_faults(), 0, "every fault was met and survived");
    store.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_past_the_timeout() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("slow");
    let store = conformance::open_store(&factory, &config);
    let mut model = write_keys(&store, "k", 3).await;
    // A read that outlives request_timeout is cancelled and retried.
    cluster.inject(Fault::new("KvScan", FaultAction::DelayBefore(Duration::from_secs(2))));
    assert!(store.read(b"k1").await.unwrap().is_some());
    // A commit answered after commit_timeout has landed anyway: its outcome
    // is unknown until the root record is read back.
    cluster.inject(Fault::new("KvCommit", FaultAction::DelayAfter(Duration::from_secs(4))));
    store
        .write(b"slow", b"commit")
        .await
        .expect("the slow commit is found to have landed");
    model.insert(b"slow".to_vec(), b"commit".to_vec());
    // A prewrite that never answers in time: cancelled, rolled back, retried.
    cluster.inject(Fault::new(
        "KvPrewrite",
        FaultAction::DelayBefore(Duration::from_secs(4)),
    ));
    store
        .write(b"late", b"prewrite")
        .await
        .expect("retried after the timeout");
    model.insert(b"late".to_vec(), b"prewrite".to_vec());
    assert_eq!(cluster.pending_faults(), 0);
    store.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("drop");
    let store = conformance::open_store(&factory, &config);
    let mut model = write_keys(&store, "k", 2).await;
    cluster.inject(Fault::new("KvPrewrite", FaultAction::DropConnection));
    model.extend(write_keys(&store, "after-prewrite-cut-", 2).await);
    // Applied, then the connection drops before the answer: unknown outcome.
    cluster.inject(Fault::new("KvCommit", FaultAction::DropAfterApply));
    model.extend(write_keys(&store, "after-commit-cut-", 2).await);
    cluster.inject(Fault::new("KvScan", FaultAction::DropConnection));
    assert!(store.read(b"k0").await.unwrap().is_some());
    // tikv-client reconnects to PD at most once a second, counted from its
    // last connect: cut PD only after that, as a real outage would come.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cluster.drop_connections(rustorium_tikv_test_server::PD_STORE);
    model.extend(write_keys(&store, "after-pd-cut-", 2).await);
    assert_eq!(cluster.pending_faults(), 0);
    store.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_multi_region_failure() {
    let cluster = cluster(2).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("partial");
    let store = conformance::open_store(&factory, &config);
    let mut model = write_keys(&store, "k", 3).await;
    // Values and pages in different regions: the pages' region refuses the
    // prewrite that the values' region accepted.
    let mut pages = format!("{}/", config.path.display()).into_bytes();
    pages.push(3);
    cluster.split(&pages);
    cluster.inject(Fault::new("KvPrewrite", FaultAction::Abort).in_region_of(pages.clone()));
    store
        .write(b"once", b"retried")
        .await
        .expect("rolled back, then retried");
    model.insert(b"once".to_vec(), b"retried".to_vec());
    // A region that keeps refusing: the write fails cleanly, nothing lands.
    let (root, version, _) = store.root();
    cluster.inject(
        Fault::new("KvPrewrite", FaultAction::Abort)
            .in_region_of(pages)
            .times(1000),
    );
    let error = store.write(b"never", b"lands").await.expect_err("the write fails");
    assert!(matches!(error, StoreError::Backend(_)), "{error}");
    assert_eq!(store.root().0, root);
    assert_eq!(store.root().1, version);
    assert!(store.read(b"never").await.unwrap().is_none());
    store.shutdown();
    // Secondary commits finish in the background; no lock may stay behind.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        cluster.locked_keys().is_empty(),
        "left locks: {:?}",
        cluster.locked_keys()
    );
    cluster.inject(Fault::new("Unused", FaultAction::Abort));
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_on_one_tree() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("race");
    let first = conformance::open_store(&factory, &config);
    let second = conformance::open_store(&factory, &config);
    // Both write version 1 from the same head: exactly one wins it.
    let (a, b) = tokio::join!(first.write_with_proof(b"a", b"1"), second.write_with_proof(b"b", b"2"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.version, b.version, "one version, one winner");
    assert_eq!(a.version.max(b.version), 2, "the loser re-applied on the winner's head");
    let retried = first.metrics().commit_retries_total.get() + second.metrics().commit_retries_total.get();
    assert!(retried >= 1, "the loser retried");
    let model = BTreeMap::from([(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    first.shutdown();
    second.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_writer_is_fenced() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("fence");
    let stale = conformance::open_store(&factory, &config);
    let fresh = conformance::open_store(&factory, &config);
    // The stale writer prewrites, then stalls before its commit reaches
    // TiKV, long enough for its locks to expire.
    cluster.inject(Fault::new(
        "KvCommit",
        FaultAction::DelayBefore(Duration::from_millis(1500)),
    ));
    let stalled = tokio::spawn({
        let stale = stale.clone();
        async move { stale.write_with_proof(b"stale", b"writer").await }
    });
    while cluster.pending_faults() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.advance_clock(60_000);
    // The fresh writer meets the expired locks, rolls the stale transaction
    // back and takes the version.
    let won = fresh.write_with_proof(b"fresh", b"writer").await.unwrap();
    assert_eq!(won.version, 1);
    // The stale commit then fails (its locks are gone); the stale writer
    // learns the version is taken and re-applies on top.
    let late = stalled
        .await
        .unwrap()
        .expect("the stale writer re-applies after being fenced");
    assert_eq!(late.version, 2);
    assert!(stale.metrics().commit_retries_total.get() >= 1);
    let model = BTreeMap::from([
        (b"fresh".to_vec(), b"writer".to_vec()),
        (b"stale".to_vec(), b"writer".to_vec()),
    ]);
    stale.shutdown();
    fresh.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_epoch_fences_the_old_owner() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("epochs");
    let old = conformance::open_store(&factory, &config);
    let new = conformance::open_store(&factory, &config);
    let claimed = old.claim(1).await.unwrap();
    assert_eq!(claimed, 1, "a claim is a version of its own");
    old.write_with_proof(b"a", b"old-1").await.unwrap();
    // Another node takes the shard with a higher epoch: its claim lands
    // above everything the old owner acknowledged.
    let fence = new.claim(2).await.unwrap();
    assert_eq!(fence, 3);
    assert_eq!(new.head_epoch(), 2);
    // The old owner does not know yet: its next commit finds the version
    // taken, adopts the head, sees epoch 2 and refuses.
    let refused = old.write_with_proof(b"b", b"old-2").await.unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Fenced {
                mine: 1,
                current: 2,
                version: 3
            }
        ),
        "{refused:?}"
    );
    // And keeps refusing without touching TiKV's data.
    assert!(matches!(
        old.write(b"c", b"old-3").await,
        Err(StoreError::Fenced { .. })
    ));
    new.write_with_proof(b"a", b"new-1").await.unwrap();
    // Claiming again under its old epoch gives no way back in (epochs come
    // from lease swaps, so no two owners ever hold the same one).
    assert!(matches!(old.claim(1).await, Err(StoreError::Fenced { .. })));
    let model = BTreeMap::from([(b"a".to_vec(), b"new-1".to_vec())]);
    old.shutdown();
    new.shutdown();
    assert_consistent(&factory, &config, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_set_is_pinned() {
    let cluster = cluster(1).await;
    let factory = Tikv::on(&cluster);
    let config = store_config("pinned");
    let store = conformance::open_store(&factory, &config);
    // Let the committer's idle pruner look for stale rows once (a scan).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = cluster.take_call_set();
    let expected_open: std::collections::BTreeSet<String> = [
        "pdpb.PD/GetMembers",
        "pdpb.PD/Tso",
        "pdpb.PD/GetRegion",
        "pdpb.PD/GetStore",
        "tikvpb.Tikv/KvGet",
        "tikvpb.Tikv/KvPrewrite",
        "tikvpb.Tikv/KvCommit",
        "tikvpb.Tikv/KvScan",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(opened, expected_open, "opening a new store");
    store.write_with_proof(b"k", b"v").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.read(b"k").await.unwrap().unwrap();
    let used = cluster.take_call_set();
    // Timestamps keep flowing over the one Tso stream opened at connect.
    let expected: std::collections::BTreeSet<String> = [
        "tikvpb.Tikv/KvGet",
        "tikvpb.Tikv/KvScan",
        "tikvpb.Tikv/KvPrewrite",
        "tikvpb.Tikv/KvCommit",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(used, expected, "a write with proof and a read with proof");
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspaces_and_bad_endpoints_give_clear_errors() {
    let cluster = cluster(1).await;
    let mut config = Tikv::on(&cluster).config(&store_config("keyspace"));
    config.keyspace = Some("rustorium".into());
    let store = Store::open_with(
        TikvBackend::connect(config.clone()).expect("known keyspace"),
        store_config("keyspace"),
    )
    .unwrap();
    store.write(b"in", b"keyspace").await.unwrap();
    assert!(cluster.take_call_set().contains("keyspacepb.Keyspace/LoadKeyspace"));
    assert!(
        cluster.committed().keys().all(|k| k.starts_with(b"x\0\0\x01")),
        "API v2 keys carry the keyspace prefix"
    );
    store.shutdown();

    config.keyspace = Some("missing".into());
    let error = TikvBackend::connect(config.clone()).expect_err("unknown keyspace");
    assert!(error.to_string().contains("missing"), "{error}");
    config.keyspace = None;
    config.pd_endpoints = vec!["127.0.0.1:1".into()];
    config.request_timeout = Duration::from_millis(200);
    let error = TikvBackend::connect(config).expect_err("nothing listens there");
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
}

/// `PD_ADDRS` from the environment, or why the real-cluster tests skip.
fn real_cluster() -> Option<Tikv> {
    match std::env::var("PD_ADDRS") {
        Ok(addrs) if !addrs.trim().is_empty() => Some(Tikv {
            pd_endpoints: addrs.split(',').map(|a| a.trim().to_owned()).collect(),
            tune: |config| {
                config.request_timeout = Duration::from_secs(3);
                config.commit_timeout = Duration::from_secs(10);
            },
        }),
        _ => {
            eprintln!(
                "skipped: set PD_ADDRS=host:port[,...] to run against a real TiKV cluster (README: tiup playground)"
            );
            None
        }
    }
}

fn unique(name: &str) -> StorageConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    store_config(&format!("{name}-{nanos}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_conformance() {
    let Some(factory) = real_cluster() else { return };
    conformance::proofs_verify(&factory, unique("proofs")).await;
    conformance::matches_model(&factory, unique("model"), 3).await;
    conformance::versions_are_retained(&factory, unique("versions")).await;
    conformance::survives_reopen(&factory, unique("reopen")).await;
    conformance::shared_writers(&factory, unique("shared")).await;
}
