//! A single `rustorium-node` process whose Redb store is cut into shards
//! (`--shards`, `[sharding]`): writers on every shard at once, shards that
//! split by themselves while serving, and a root that is always exactly the
//! unsharded tree's, across restarts.

mod common;

use common::{Node, get_latest, http_get, scan_all, unsharded_root, verify_bytes};
use rustorium_core::bytes::bytes_to_field;
use rustorium_proto::v1;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MAX_LEVELS: u16 = 160;
/// The split threshold the node runs with: a shard above it splits.
const SPLIT_ABOVE_KEYS: u64 = 120;

async fn sharding(node: &Node) -> v1::ShardingStatus {
    let mut client = node.client().await;
    let stats = client.stats(v1::StatsRequest {}).await.expect("stats").into_inner();
    stats.sharding.expect("a sharded node reports its cut")
}

async fn global_root(node: &Node) -> (Vec<u8>, u64) {
    let mut client = node.client().await;
    let root = client
        .get_root(v1::GetRootRequest::default())
        .await
        .expect("root")
        .into_inner();
    (root.root, root.version)
}

/// Four writers, each putting its own keys one at a time with proofs.
async fn write_concurrently(node: &Node, round: &str, per_writer: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let writers = (0..4).map(|w| {
        let url = node.url.clone();
        let round = round.to_owned();
        tokio::spawn(async move {
            let mut client = v1::store_client::StoreClient::connect(url).await.unwrap();
            let mut written = BTreeMap::new();
            let mut last_version = 0;
            for i in 0..per_writer {
                let (key, value) = (
                    format!("w{w}-{i}").into_bytes(),
                    format!("{round}-{w}-{i}").into_bytes(),
                );
                let request = v1::PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    want_proof: true,
                };
                let put = client.put(request).await.expect("put").into_inner();
                verify_bytes(put.proof.as_ref(), &put.root, &key, Some(&value), MAX_LEVELS)
                    .expect("each write's proof holds against the global root it names");
                assert!(
                    put.version > last_version,
                    "one writer's versions grow, splits included: {} then {}",
                    last_version,
                    put.version
                );
                last_version = put.version;
                written.insert(key, value);
            }
            written
        })
    });
    let mut all = BTreeMap::new();
    for writer in writers {
        all.extend(writer.await.expect("writer task"));
    }
    all
}

/// Waits until no shard holds more keys than the split threshold.
async fn settled_cut(node: &Node) -> v1::ShardingStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = sharding(node).await;
        if status.shards.iter().all(|s| s.keys <= SPLIT_ABOVE_KEYS) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "shards never split below the threshold: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_node_splits_hot_shards_while_serving_and_keeps_the_unsharded_root() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = SPLIT_ABOVE_KEYS.to_string();
    let flags = [
        "--shards",
        "2",
        "--split-above-keys",
        threshold.as_str(),
        "--reshard-interval-ms",
        "100",
        "--sync-mode",
        "async",
    ];
    let node = Node::start(dir.path(), &flags);
    let start = sharding(&node).await;
    assert_eq!(start.shards.len(), 2, "{start:?}");
    assert!(start.automatic);
    assert_eq!(
        global_root(&node).await.0,
        rustorium_proto::fr_to_bytes(&unsharded_root(&BTreeMap::new()))
    );

    // 4 x 150 keys: both shards pass the threshold while the writers run,
    // so they split under load.
    let mut acknowledged = write_concurrently(&node, "first", 150).await;
    let cut = settled_cut(&node).await;
    assert!(cut.splits >= 2, "both starting shards split: {cut:?}");
    assert!(cut.shards.len() >= 4, "{cut:?}");
    assert_eq!(
        cut.shards.iter().map(|s| s.keys).sum::<u64>(),
        acknowledged.len() as u64
    );

    // The global root is the unsharded tree's, and every key reads back
    // with a proof against it.
    let (root, version) = global_root(&node).await;
    assert_eq!(root, rustorium_proto::fr_to_bytes(&unsharded_root(&acknowledged)));
    let mut client = node.client().await;
    for (key, value) in acknowledged.iter().step_by(7) {
        let read = get_latest(&mut client, key).await;
        assert!(read.found);
        assert_eq!(read.root, root, "no write since: the same root");
        verify_bytes(read.proof.as_ref(), &read.root, key, Some(value), MAX_LEVELS).expect("read proof");
    }
    assert_eq!(
        scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
        acknowledged
    );

    // A batch across every shard: one root, a proof per op against it.
    let ops: Vec<v1::Op> = (0..40)
        .map(|i| v1::Op {
            key: format!("batch-{i}").into_bytes(),
            kind: Some(if i % 10 == 9 {
                v1::op::Kind::Delete(v1::op::Delete {})
            } else {
                v1::op::Kind::Value(format!("b{i}").into_bytes())
            }),
        })
        .collect();
    let batch = client
        .put_batch(v1::PutBatchRequest {
            ops: ops.clone(),
            want_proofs: true,
        })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(batch.proofs.len(), ops.len());
    assert!(batch.version > version);
    for (op, proof) in ops.iter().zip(&batch.proofs) {
        let value = match &op.kind {
            Some(v1::op::Kind::Value(value)) => {
                acknowledged.insert(op.key.clone(), value.clone());
                Some(value.as_slice())
            }
            _ => None,
        };
        verify_bytes(Some(proof), &batch.root, &op.key, value, MAX_LEVELS).expect("batch proof");
    }
    assert_eq!(batch.root, rustorium_proto::fr_to_bytes(&unsharded_root(&acknowledged)));

    // A delete proves the key's absence against the new global root.
    let gone = b"w0-0".to_vec();
    let deleted = client
        .delete(v1::DeleteRequest { key: gone.clone() })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.existed);
    acknowledged.remove(&gone);
    verify_bytes(deleted.proof.as_ref(), &deleted.root, &gone, None, MAX_LEVELS).expect("absence proof");
    assert_eq!(
        deleted.root,
        rustorium_proto::fr_to_bytes(&unsharded_root(&acknowledged))
    );

    // History is per shard: per-version reads say so instead of guessing.
    let status = client
        .get_proof(v1::GetProofRequest {
            shard: String::new(),
            key: gone.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    // Metrics are per shard, with the cut's own figures.
    let metrics = http_get(&node, "/metrics").await;
    assert!(
        metrics.contains(&format!("rustorium_sharding_shards {}", cut.shards.len())),
        "{metrics}"
    );
    assert!(metrics.contains("rustorium_store_writes_total{shard=\""), "{metrics}");
    let info: serde_json::Value = serde_json::from_str(&http_get(&node, "/api/info").await).unwrap();
    assert_eq!(info["role"], "sharded");
    assert_eq!(
        info["sharding"]["shards"].as_array().map(Vec::len),
        Some(cut.shards.len())
    );

    // A verified export reads every shard's rows and checks them against
    // the global root.
    let export = std::process::Command::new(common::CLI)
        .args(["--server", node.url.as_str(), "export", "--verify"])
        .output()
        .unwrap();
    let note = String::from_utf8_lossy(&export.stderr);
    assert!(export.status.success(), "{note}");
    assert!(
        note.contains(&format!("verified: the {} exported entries", acknowledged.len())),
        "{note}"
    );

    // A restart without --shards opens the cut it left: same root, and the
    // version goes on from where it was.
    let (root, version) = global_root(&node).await;
    node.stop();
    let node = Node::start(dir.path(), &[]);
    assert_eq!(global_root(&node).await, (root.clone(), version));
    assert_eq!(sharding(&node).await.shards.len(), cut.shards.len());
    assert!(!sharding(&node).await.automatic);
    let mut client = node.client().await;
    let read = get_latest(&mut client, b"w3-149").await;
    verify_bytes(
        read.proof.as_ref(),
        &read.root,
        b"w3-149",
        Some(b"first-3-149"),
        MAX_LEVELS,
    )
    .expect("proof");
    node.stop();

    // verify-db checks every shard of it.
    let out = std::process::Command::new(common::NODE)
        .args(["verify-db", "--data"])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("shard ").count(), cut.shards.len(), "{text}");
    assert!(text.contains("OK: every shard"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_halves_merge_back_without_changing_the_root() {
    let dir = tempfile::tempdir().unwrap();
    // 4 shards that are all small and idle: each sibling pair merges, then
    // the two halves merge again, down to one shard.
    let flags = [
        "--shards",
        "4",
        "--merge-below-keys",
        "1000",
        "--reshard-interval-ms",
        "100",
    ];
    let node = Node::start(dir.path(), &flags);
    let mut client = node.client().await;
    let mut acknowledged = BTreeMap::new();
    for i in 0..60 {
        let (key, value) = (format!("k{i}").into_bytes(), format!("v{i}").into_bytes());
        common::try_put(&mut client, &key, &value).await.expect("put");
        acknowledged.insert(key, value);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let cut = loop {
        let cut = sharding(&node).await;
        if cut.shards.len() == 1 {
            break cut;
        }
        assert!(Instant::now() < deadline, "cold shards never merged: {cut:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cut.merges, 3, "{cut:?}");
    assert_eq!(cut.shards[0].shard, "0-0");
    assert_eq!(
        global_root(&node).await.0,
        rustorium_proto::fr_to_bytes(&unsharded_root(&acknowledged))
    );
    assert_eq!(
        scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
        acknowledged
    );
    node.stop();
}

#[test]
fn an_unsharded_store_is_not_cut_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    node.stop();
    let out = std::process::Command::new(common::NODE)
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "4", "--data"])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("holds an unsharded store"), "{error}");
    // ...and it is still there, untouched.
    assert!(!dir.path().join("db").join("shards.layout").exists());
    let out = std::process::Command::new(common::NODE)
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "3", "--data"])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
}

/// The primary's root and version of one shard.
async fn shard_root(node: &Node, shard: &str) -> Result<(Vec<u8>, u64), tonic::Status> {
    let mut client = node.client().await;
    let root = client
        .get_root(v1::GetRootRequest { shard: shard.into() })
        .await?
        .into_inner();
    Ok((root.root, root.version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_one_shard_of_a_sharded_node() {
    use rustorium_core::tree::shard::Prefix;
    let (primary_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A feed of 10 ops: the replica, started after 120 writes, must resync.
    let primary = Node::start(primary_dir.path(), &["--shards", "2", "--replication-feed-ops", "10"]);
    let mut client = primary.client().await;
    let mut in_shard = BTreeMap::new();
    let mut put = |i: u32| {
        let (key, value) = (format!("k{i}").into_bytes(), format!("v{i}").into_bytes());
        if Prefix::of(&bytes_to_field(&key), 1).index == 1 {
            in_shard.insert(key.clone(), value.clone());
        }
        (key, value)
    };
    for i in 0..120 {
        let (key, value) = put(i);
        common::try_put(&mut client, &key, &value).await.expect("put");
    }
    let replica = Node::start(
        replica_dir.path(),
        &["--follow", primary.url.as_str(), "--follow-shard", "1-1"],
    );
    for i in 120..140 {
        let (key, value) = put(i);
        common::try_put(&mut client, &key, &value).await.expect("put");
    }
    let (root, version) = shard_root(&primary, "1-1").await.expect("the shard's root");
    let mut replica_client = replica.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let stats = replica_client.stats(v1::StatsRequest {}).await.unwrap().into_inner();
        let status = stats.replica.expect("replica status");
        if status.mirrors == version {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never caught up with shard 1-1: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.shard, "1-1");
    assert!(status.resyncs >= 1, "it started past the feed: {status:?}");
    // The replica holds exactly the shard's keys and its root (its own
    // versions count its own commits; `mirrors` is the primary's).
    let (replica_root, _) = global_root(&replica).await;
    assert_eq!(replica_root, root);
    assert_eq!(
        scan_all(&mut replica_client)
            .await
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        in_shard
    );
    let (key, value) = in_shard.iter().next().unwrap();
    let read = get_latest(&mut replica_client, key).await;
    assert_eq!(read.root, replica_root);
    verify_bytes(read.proof.as_ref(), &read.root, key, Some(value), MAX_LEVELS).expect("replica proof");
    // A shard the primary does not have, and a shard of a store that is
    // not cut, are named as such.
    let missing = shard_root(&primary, "3-0").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let unsharded = shard_root(&replica, "1-0").await.unwrap_err();
    assert_eq!(unsharded.code(), tonic::Code::FailedPrecondition, "{unsharded:?}");
    replica.stop();
    primary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_replica_is_told_when_its_shard_splits_away() {
    let (primary_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = Node::start(
        primary_dir.path(),
        &[
            "--shards",
            "2",
            "--split-above-keys",
            "40",
            "--reshard-interval-ms",
            "100",
            "--replication-feed-ops",
            "1000",
        ],
    );
    let replica = Node::start(
        replica_dir.path(),
        &["--follow", primary.url.as_str(), "--follow-shard", "1-1"],
    );
    let mut client = primary.client().await;
    let mut replica_client = replica.client().await;
    let replica_status = |stats: v1::StatsResponse| stats.replica.expect("replica status");
    // A few keys: no split yet, and the replica follows.
    for i in 0..20 {
        common::try_put(&mut client, format!("s{i}").as_bytes(), b"v")
            .await
            .expect("put");
    }
    let (_, version) = shard_root(&primary, "1-1").await.expect("shard 1-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica_status(replica_client.stats(v1::StatsRequest {}).await.unwrap().into_inner()).mirrors < version {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Enough keys that shard 1-1 splits: its stream ends, the replica says
    // the primary no longer serves what it follows, and keeps serving.
    for i in 20..200 {
        common::try_put(&mut client, format!("s{i}").as_bytes(), b"v")
            .await
            .expect("put");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gone = matches!(shard_root(&primary, "1-1").await, Err(s) if s.code() == tonic::Code::NotFound);
        let status = replica_status(replica_client.stats(v1::StatsRequest {}).await.unwrap().into_inner());
        if gone && !status.primary_reachable {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the split never reached the replica: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root = replica_client
        .get_root(v1::GetRootRequest::default())
        .await
        .expect("still serving");
    assert_eq!(root.into_inner().root.len(), 32);
    let bad = shard_root(&primary, "one-one").await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    replica.stop();
    primary.stop();
}
