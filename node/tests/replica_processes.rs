//! A replica node following a primary node over the network (the
//! primary's `Replicate` stream through a TCP proxy the test can cut):
//! it mirrors the primary version by version with matching roots, serves
//! reads with proofs locally and refuses writes, keeps serving while cut
//! off and says the primary is unreachable, catches up from the feed when
//! the link returns (reporting the lag it had), and resyncs when it missed
//! more than the primary's feed holds (by Merkle diff: `GetPages` on the
//! differing paths, `GetEntries` for the differing leaves).

mod common;

use common::{Node, get_latest, try_put, verify_bytes};
use rustorium_proto::v1;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Forwards TCP to `target` until cut.
struct Proxy {
    url: String,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (cut_flag, link_list) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                link_list.lock().unwrap().push(link);
            }
        });
        Self { url, cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn replica_status(node: &Node) -> v1::ReplicaStatus {
    let mut client = node.client().await;
    let stats = client.stats(v1::StatsRequest {}).await.unwrap().into_inner();
    stats.replica.expect("a replica reports its progress")
}

async fn wait_for(node: &Node, what: &str, done: impl Fn(&v1::ReplicaStatus) -> bool) -> v1::ReplicaStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = replica_status(node).await;
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "replica never got to: {what}; last status {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn root_of(node: &Node) -> (Vec<u8>, u64) {
    let root = node
        .client()
        .await
        .get_root(v1::GetRootRequest::default())
        .await
        .unwrap()
        .into_inner();
    (root.root, root.version)
}

async fn put(node: &Node, key: &str, value: &str) {
    try_put(&mut node.client().await, key.as_bytes(), value.as_bytes())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_over_the_network_survives_a_cut_and_resyncs() {
    let (primary_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = Node::start(primary_dir.path(), &["--replication-feed-ops", "300"]);
    let proxy = Proxy::start(primary.addr).await;
    let replica = Node::start(replica_dir.path(), &["--follow", &proxy.url]);

    for i in 0..30 {
        put(&primary, &format!("key-{i}"), &format!("a-{i}")).await;
    }
    let (root, version) = root_of(&primary).await;
    let status = wait_for(&replica, "mirror the first writes", |s| s.mirrors == version).await;
    assert_eq!(
        (status.applied, status.resyncs),
        (30, 0),
        "version by version: {status:?}"
    );
    assert_eq!(root_of(&replica).await.0, root, "same root as the primary");
    // Reads with proofs are served by the replica itself.
    let mut client = replica.client().await;
    let read = get_latest(&mut client, b"key-7").await;
    assert_eq!(read.value, b"a-7");
    verify_bytes(read.proof.as_ref(), &read.root, b"key-7", Some(b"a-7"), 160).unwrap();
    // Writes are not.
    let refused = try_put(&mut client, b"x", b"y").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains(&proxy.url), "{refused:?}");

    // Cut off: the replica keeps serving what it has and says it cannot
    // reach the primary.
    proxy.cut();
    for i in 0..40 {
        put(&primary, &format!("key-{i}"), &format!("b-{i}")).await;
    }
    let (root, version) = root_of(&primary).await;
    wait_for(&replica, "notice the cut", |s| !s.primary_reachable).await;
    let stale = get_latest(&mut client, b"key-7").await;
    assert_eq!(
        stale.value, b"a-7",
        "a cut-off replica serves its last mirrored version"
    );
    assert!(stale.version < version);
    verify_bytes(stale.proof.as_ref(), &stale.root, b"key-7", Some(b"a-7"), 160).unwrap();

    // Back: it catches up from the feed, batch by batch, and reports the
    // lag it had.
    proxy.restore();
    let status = wait_for(&replica, "catch up", |s| s.mirrors == version && s.primary_reachable).await;
    assert_eq!(status.resyncs, 0, "{status:?}");
    assert_eq!(status.applied, 70);
    assert!(status.max_lag_versions >= 40, "the lag was reported: {status:?}");
    assert_eq!(root_of(&replica).await.0, root);

    // Cut again, and the primary commits more ops than its feed keeps:
    // the replica resyncs to the primary's keys and root.
    proxy.cut();
    wait_for(&replica, "notice the second cut", |s| !s.primary_reachable).await;
    let mut primary_client = primary.client().await;
    for round in 0..4 {
        let ops = (0..100)
            .map(|i| v1::Op {
                key: format!("bulk-{round}-{i}").into_bytes(),
                kind: Some(v1::op::Kind::Value(b"c".to_vec())),
            })
            .chain(std::iter::once(v1::Op {
                key: format!("key-{round}").into_bytes(),
                kind: Some(v1::op::Kind::Delete(v1::op::Delete {})),
            }))
            .collect();
        primary_client
            .put_batch(v1::PutBatchRequest {
                ops,
                want_proofs: false,
            })
            .await
            .unwrap();
    }
    let (root, version) = root_of(&primary).await;
    proxy.restore();
    let status = wait_for(&replica, "resync", |s| s.mirrors == version).await;
    assert_eq!(
        (status.resyncs, status.full_resyncs),
        (1, 0),
        "by Merkle diff: {status:?}"
    );
    assert_eq!(status.last_resync_entries, 404, "400 new keys, 4 deleted");
    assert!(status.last_resync_pages_fetched > 0);
    assert_eq!(root_of(&replica).await.0, root);
    let gone = get_latest(&mut client, b"key-2").await;
    assert!(!gone.found, "the resync removed what the primary deleted");
    verify_bytes(gone.proof.as_ref(), &gone.root, b"key-2", None, 160).unwrap();

    // A page of the stopped replica is damaged on disk; `repair` against
    // the live primary (same root) fetches that page and nothing else.
    replica.stop();
    let db = replica_dir.path().join("db");
    damage_deepest_page(&db);
    let repair = |source: &str| {
        std::process::Command::new(common::NODE)
            .args(["repair", "--data"])
            .arg(&db)
            .args(["--source", source])
            .env_remove("RUSTORIUM_DATA")
            .env_remove("RUSTORIUM_CONFIG")
            .output()
            .unwrap()
    };
    let output = repair(&primary.url);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" 1 fetched from http://"), "{stdout}");
    assert!(String::from_utf8_lossy(&repair(&primary.url).stdout).contains(" 0 fetched"));
    // The repaired replica follows on.
    let replica = Node::start(replica_dir.path(), &["--follow", &primary.url]);
    put(&primary, "after-repair", "d").await;
    let (root, version) = root_of(&primary).await;
    let status = wait_for(&replica, "follow after the repair", |s| s.mirrors == version).await;
    assert_eq!(status.full_resyncs, 0, "{status:?}");
    assert_eq!(root_of(&replica).await.0, root);
    let mut client = replica.client().await;
    for i in 0..100 {
        let key = format!("bulk-{}-{}", i % 4, i);
        let read = get_latest(&mut client, key.as_bytes()).await;
        verify_bytes(read.proof.as_ref(), &read.root, key.as_bytes(), Some(b"c"), 160).unwrap();
    }

    replica.stop();
    primary.stop();
}

/// Flips a byte in the latest row of the deepest page of a stopped store.
fn damage_deepest_page(db: &std::path::Path) {
    use rustorium_node::store::backend::redb::RedbBackend;
    use rustorium_node::store::backend::{Backend, BackendReader, Table, WriteBatch};
    let backend = RedbBackend::open(db).unwrap();
    let (row, mut record) = backend
        .reader()
        .unwrap()
        .range(
            Table::Pages,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            usize::MAX,
        )
        .unwrap()
        .pop()
        .unwrap();
    let middle = record.len() / 2;
    record[middle] ^= 0x40;
    let mut batch = WriteBatch::default();
    batch.put(Table::Pages, row, record);
    backend.commit(batch, true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replication_factor_2_a_write_waits_for_a_verified_replica() {
    let (primary_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = Node::start(
        primary_dir.path(),
        &[
            "--replication-feed-ops",
            "10000",
            "--replication-factor",
            "2",
            "--replication-ack-timeout-ms",
            "1500",
        ],
    );
    let mut client = primary.client().await;
    // No replica yet: the write commits here but is not acknowledged.
    let alone = try_put(&mut client, b"k0", b"v0").await.unwrap_err();
    assert_eq!(alone.code(), tonic::Code::DeadlineExceeded, "{alone:?}");
    assert!(alone.message().contains("verified by 0 of the 1 replica"), "{alone:?}");
    let committed = get_latest(&mut client, b"k0").await;
    assert!(committed.found, "committed on the primary all the same");

    let proxy = Proxy::start(primary.addr).await;
    let replica = Node::start(
        replica_dir.path(),
        &["--follow", &proxy.url, "--replica-id", "replica-1"],
    );
    // With the replica verifying, writes are answered, each once the
    // replica reported its version (so a read there sees it at once).
    let mut replica_client = replica.client().await;
    for i in 1..20 {
        let key = format!("k{i}");
        let put = try_put(&mut client, key.as_bytes(), b"v").await.unwrap();
        let read = get_latest(&mut replica_client, key.as_bytes()).await;
        assert!(
            read.found && read.version >= put.version,
            "the replica verified it before the answer"
        );
    }
    let stats = client.stats(v1::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.replication_factor, 2);
    assert_eq!(stats.replicas.len(), 1);
    assert_eq!(stats.replicas[0].replica_id, "replica-1");
    assert_eq!(stats.replicas[0].mirrors, stats.version);

    // The replica cut off: writes are refused acknowledgement again.
    proxy.cut();
    let cut = try_put(&mut client, b"late", b"v").await.unwrap_err();
    assert_eq!(cut.code(), tonic::Code::DeadlineExceeded, "{cut:?}");
    proxy.restore();
    try_put(&mut client, b"back", b"v")
        .await
        .expect("acknowledged once the replica is back");
    // A replica claiming a root the primary never had is refused.
    let forged = client
        .ack_replica(v1::AckReplicaRequest {
            shard: String::new(),
            replica_id: "forger".into(),
            mirrors: 1,
            root: vec![7; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::FailedPrecondition, "{forged:?}");
    replica.stop();
    primary.stop();
}
