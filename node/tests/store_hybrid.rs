//! The hybrid backend (TiKV with a local Redb cache) against the in-process
//! PD + TiKV server: the conformance suite, cache hits counted in metrics,
//! and invalidation when another node commits (live, and while this node
//! was down).

use rustorium_node::store::backend::hybrid::HybridBackend;
use rustorium_node::store::backend::tikv::{TikvBackend, TikvConfig};
use rustorium_node::store::conformance::{self, BackendFactory};
use rustorium_node::store::{StorageConfig, Store, SyncMode};
use rustorium_tikv_test_server::{ClusterOptions, TestCluster};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Opens hybrid backends on one cluster. The store's path names the TiKV
/// namespace; each open gets its own cache directory under `cache_root`
/// (two stores in one process cannot share a Redb file), except that
/// `reopen_cache` reuses the first one.
struct Hybrid {
    pd_endpoints: Vec<String>,
    cache_root: tempfile::TempDir,
    opened: AtomicUsize,
}

impl Hybrid {
    fn on(cluster: &TestCluster) -> Self {
        Self {
            pd_endpoints: vec![cluster.pd_endpoint()],
            cache_root: tempfile::tempdir().unwrap(),
            opened: AtomicUsize::new(0),
        }
    }

    fn tikv(&self, store: &StorageConfig) -> TikvBackend {
        self.tikv_with(store, 4_000_000)
    }

    fn tikv_with(&self, store: &StorageConfig, hybrid_cache_entries: u64) -> TikvBackend {
        TikvBackend::connect(TikvConfig {
            hybrid_cache_entries,
            pd_endpoints: self.pd_endpoints.clone(),
            namespace: store.path.to_string_lossy().into_owned(),
            request_timeout: Duration::from_millis(800),
            retry_backoff: Duration::from_millis(5),
            head_refresh_interval: Duration::from_millis(50),
            ..TikvConfig::default()
        })
        .expect("TiKV backend connects")
    }

    fn with_cache(&self, store: &StorageConfig, cache: usize) -> HybridBackend {
        let dir = self.cache_root.path().join(cache.to_string());
        HybridBackend::open(self.tikv(store), &dir).expect("hybrid backend opens")
    }
}

impl BackendFactory for Hybrid {
    type Backend = HybridBackend;
    fn open(&self, config: &StorageConfig) -> HybridBackend {
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        self.with_cache(config, n)
    }
}

fn store_config(name: &str) -> StorageConfig {
    StorageConfig {
        sync_mode: SyncMode::Full,
        retained_versions: 50,
        ..StorageConfig::at(format!("hybrid-{name}"))
    }
}

async fn cluster() -> TestCluster {
    TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster starts")
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let cluster = cluster().await;
            conformance::$name(&Hybrid::on(&cluster), store_config(stringify!($name))).await;
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
    let cluster = cluster().await;
    conformance::matches_model(&Hybrid::on(&cluster), store_config("model"), 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_hit_the_local_cache_and_metrics_say_so() {
    let cluster = cluster().await;
    let factory = Hybrid::on(&cluster);
    let config = StorageConfig {
        // No in-memory pages: every page lookup reaches the backend.
        cache_pages: 1,
        ..store_config("hits")
    };
    // No periodic head check either: it reads the root log from TiKV (a
    // KvScan), which the call-set check below would count on a slow run.
    let tikv = TikvBackend::connect(TikvConfig {
        head_refresh_interval: Duration::from_secs(3600),
        ..factory.tikv(&config).config().clone()
    })
    .unwrap();
    let backend = HybridBackend::open(tikv, &factory.cache_root.path().join("quiet")).unwrap();
    let store = Store::open_with(backend, config.clone()).unwrap();
    for i in 0..50u32 {
        store.write(format!("k{i}").as_bytes(), b"v").await.unwrap();
    }
    let before = store_counts(&store);
    for i in 0..50u32 {
        store.read(format!("k{i}").as_bytes()).await.unwrap().expect("present");
    }
    let (hits, misses) = diff(store_counts(&store), before);
    assert!(
        hits > 10 * misses,
        "written rows are cached: {hits} hits, {misses} misses"
    );
    // A lookup that missed (a page below a leaf: no row) is cached too.
    cluster.take_call_set();
    let before = store_counts(&store);
    for i in 0..50u32 {
        store.read(format!("k{i}").as_bytes()).await.unwrap().expect("present");
    }
    let (hits, misses) = diff(store_counts(&store), before);
    assert!(hits > 0);
    assert_eq!(misses, 0, "the second pass is all hits");
    let calls = cluster.take_call_set();
    assert!(
        !calls.contains("tikvpb.Tikv/KvScan"),
        "no value or page lookup went to TiKV: {calls:?}"
    );
    store.refresh_metrics();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&store.metrics().registry.gather())
        .unwrap();
    assert!(text.contains("rustorium_backend_cache_hit_ratio"), "{text}");
    assert!(store.metrics().backend_cache_hit_ratio.get() > 0.5);
    store.shutdown();
}

fn store_counts(store: &Store<HybridBackend>) -> (u64, u64) {
    store.refresh_metrics();
    (
        store.metrics().backend_cache_hits.get() as u64,
        store.metrics().backend_cache_misses.get() as u64,
    )
}

fn diff(after: (u64, u64), before: (u64, u64)) -> (u64, u64) {
    (after.0 - before.0, after.1 - before.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_commits_invalidate_the_cache() {
    let cluster = cluster().await;
    let factory = Hybrid::on(&cluster);
    let config = StorageConfig {
        cache_pages: 1,
        ..store_config("invalidate")
    };
    let cached = Store::open_with(factory.with_cache(&config, 0), config.clone()).unwrap();
    cached.write(b"shared", b"old").await.unwrap();
    assert_eq!(cached.read(b"shared").await.unwrap().unwrap().value, b"old");

    // Another node (plain TiKV) overwrites the key.
    let other = Store::open_with(factory.tikv(&config), config.clone()).unwrap();
    let written = other.write_with_proof(b"shared", b"new").await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let read = cached.read(b"shared").await.unwrap().unwrap();
    assert_eq!(
        read.value, b"new",
        "the cache does not answer from before the other node's commit"
    );
    assert_eq!(read.root, written.root);
    assert_eq!(read.version, written.version);

    // While this node is down, the other writes again; the restarted node's
    // cache must not serve the old value.
    cached.shutdown();
    other.write(b"shared", b"newer").await.unwrap();
    let reopened = Store::open_with(factory.with_cache(&config, 0), config.clone()).unwrap();
    assert_eq!(reopened.read(b"shared").await.unwrap().unwrap().value, b"newer");
    // And this node's own writes go on from the adopted head.
    reopened.write(b"mine", b"after restart").await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(other.read(b"mine").await.unwrap().unwrap().value, b"after restart");
    assert_eq!(other.root().0, reopened.root().0);
    assert_eq!(reopened.backend_name(), "hybrid");
    let report = rustorium_node::store::verify_db::verify(&factory.tikv(&config), &config).unwrap();
    assert!(report.ok(), "{report:?}");
    other.shutdown();
    reopened.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_for_hybrid_serves_and_reports_its_backend() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::at(dir.path());
    config.backend = rustorium_node::store::BackendKind::Hybrid;
    config.tikv.pd_endpoints = vec![cluster.pd_endpoint()];
    let store = Store::open(config.clone()).expect("Store::open follows the configured backend");
    assert_eq!(store.backend_name(), "hybrid");
    store.write(b"k", b"v").await.unwrap();
    assert!(
        dir.path().join("rustorium-cache.redb").exists(),
        "the cache lives under path"
    );
    assert!(store.config().tikv.pd_endpoints[0].starts_with("127.0.0.1:"));
    store.shutdown();
    config.backend = rustorium_node::store::BackendKind::Tikv;
    let store = Store::open(config).unwrap();
    assert_eq!(store.backend_name(), "tikv");
    assert_eq!(store.read(b"k").await.unwrap().unwrap().value, b"v");
    store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_starts_over_and_stays_correct() {
    let cluster = cluster().await;
    let factory = Hybrid::on(&cluster);
    let config = StorageConfig {
        cache_pages: 1,
        ..store_config("bounded")
    };
    let backend = HybridBackend::open(
        factory.tikv_with(&config, 40),
        &factory.cache_root.path().join("bounded"),
    )
    .unwrap();
    let store = Store::open_with(backend.clone(), config).unwrap();
    for i in 0..60u32 {
        store
            .write(format!("k{i}").as_bytes(), format!("v{i}").as_bytes())
            .await
            .unwrap();
    }
    assert!(
        backend.cache_clears() > 0,
        "60 keys and their pages do not fit in 40 entries"
    );
    for i in 0..60u32 {
        let read = store.read(format!("k{i}").as_bytes()).await.unwrap().expect("present");
        assert_eq!(read.value, format!("v{i}").into_bytes());
    }
    store.shutdown();
}
