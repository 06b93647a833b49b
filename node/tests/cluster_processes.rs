//! Several `rustorium-node` processes sharing one TiKV keyspace (the
//! in-process PD + TiKV test server): shards get owners by lease, any node
//! takes any write and forwards it to the owner, and when an owner is
//! killed mid-stream its shards move to the survivors (epochs raised,
//! the old owner fenced) with no acknowledged write lost. At the end the
//! global root equals the root of a tree built from every acknowledged
//! write, computed here by core. One node runs the hybrid backend (a Redb
//! cache over TiKV).

mod common;

use common::{Node, get_latest, http_get, scan_all, try_put, unsharded_root, verify_bytes};
use rustorium_core::bytes::bytes_to_field;
use rustorium_proto::v1;
use rustorium_tikv_test_server::{ClusterOptions, TestCluster};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SHARDS: usize = 4;

fn start_node(dir: &std::path::Path, pd: &str, id: &str, region: &str) -> Node {
    start_node_with(dir, pd, id, region, &[])
}

fn start_node_with(dir: &std::path::Path, pd: &str, id: &str, region: &str, extra: &[&str]) -> Node {
    let shards = SHARDS.to_string();
    // n2 keeps a local Redb cache over TiKV (the hybrid backend): caches
    // must follow the other nodes' commits too.
    let backend = if id == "n2" { "hybrid" } else { "tikv" };
    let mut args = vec![
        "--backend",
        backend,
        "--pd-endpoints",
        pd,
        "--cluster-node-id",
        id,
        "--cluster-region",
        region,
        "--shard-count",
        &shards,
        "--lease-ttl-ms",
        "1500",
    ];
    args.extend_from_slice(extra);
    Node::start(dir, &args)
}

async fn cluster_status(node: &Node) -> Option<v1::ClusterStatus> {
    let mut client = node.client().await;
    client.stats(v1::StatsRequest {}).await.ok()?.into_inner().cluster
}

/// Polls `node`'s cluster status until `accept` takes it; past `within`,
/// fails saying `what` did not happen, with the last status seen.
async fn status_when(
    node: &Node,
    within: Duration,
    what: &str,
    accept: impl Fn(&v1::ClusterStatus) -> bool,
) -> v1::ClusterStatus {
    let deadline = Instant::now() + within;
    loop {
        let status = cluster_status(node).await;
        if let Some(status) = &status
            && accept(status)
        {
            return status.clone();
        }
        assert!(Instant::now() < deadline, "{what}: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether every shard of the initial cut is owned by one of `owners`.
fn owned_by(status: &v1::ClusterStatus, owners: &[&str]) -> bool {
    status.shards.len() == SHARDS && status.shards.iter().all(|s| owners.contains(&s.owner.as_str()))
}

/// Waits until `node` sees every shard owned by one of `owners`.
async fn settled(node: &Node, owners: &[&str]) -> v1::ClusterStatus {
    let what = format!("shards did not settle on {owners:?}");
    status_when(node, Duration::from_secs(30), &what, |s| owned_by(s, owners)).await
}

/// Waits until `node` sees every one of `owners` as a member and each shard
/// owned where placement prefers it.
async fn placed_as_preferred(node: &Node, owners: &[&str]) -> v1::ClusterStatus {
    // Settling and then moving to the preferred owners may each take a while.
    status_when(node, Duration::from_secs(60), "placement never settled", |s| {
        owned_by(s, owners) && s.members.len() == owners.len() && s.shards.iter().all(|s| s.owner == s.preferred)
    })
    .await
}

/// Puts `key = value` through the nodes in `via` (starting at `first`),
/// retrying on another node until one acknowledges; checks the proof.
async fn put_until_acknowledged(via: &[&Node], first: usize, key: &[u8], value: &[u8]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = first;
    loop {
        let node = via[attempt % via.len()];
        attempt += 1;
        let mut client = node.client().await;
        let put = client
            .put(v1::PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                want_proof: true,
            })
            .await;
        match put {
            Ok(response) => {
                let response = response.into_inner();
                verify_bytes(response.proof.as_ref(), &response.root, key, Some(value), 160)
                    .expect("the acknowledged write's proof verifies against the global root");
                return attempt;
            }
            Err(status) => {
                assert!(
                    matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Aborted),
                    "a failed put says retry: {status:?}"
                );
                assert!(Instant::now() < deadline, "no node took {key:?}: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One counter from the node's `/metrics`.
async fn metric(node: &Node, name: &str) -> u64 {
    let text = http_get(node, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_shard_owner_moves_its_shards_and_loses_no_acknowledged_write() {
    let tikv = TestCluster::start(ClusterOptions {
        stores: 2,
        ..ClusterOptions::default()
    })
    .await
    .expect("test cluster starts");
    let pd = tikv.pd_endpoint();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| start_node(dir.path(), &pd, id, "local"))
        .collect();
    let before = settled(&nodes[0], &["n1", "n2", "n3"]).await;
    for node in &nodes[1..] {
        settled(node, &["n1", "n2", "n3"]).await;
    }
    // Rendezvous placement spreads 4 shards over 3 nodes; pick an owner.
    let victim_id = before.shards[0].owner.clone();
    let victim = nodes
        .iter()
        .position(|n| before.members.iter().any(|m| m.id == victim_id && m.addr == n.url));
    let victim = victim.expect("the owner is one of ours");
    let victims_shards: Vec<String> = before
        .shards
        .iter()
        .filter(|s| s.owner == victim_id)
        .map(|s| s.shard.clone())
        .collect();

    let mut acknowledged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut next = 0;
    // Writes through every node: most are forwarded to another owner.
    for i in 0..60u32 {
        let (key, value) = (format!("key-{i}").into_bytes(), format!("v1-{i}").into_bytes());
        let via: Vec<&Node> = nodes.iter().collect();
        next = put_until_acknowledged(&via, next, &key, &value).await;
        acknowledged.insert(key, value);
    }
    // The owner dies mid-stream (SIGKILL: no lease released).
    nodes[victim].kill();
    let survivors: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .collect();
    for i in 40..140u32 {
        let (key, value) = (format!("key-{i}").into_bytes(), format!("v2-{i}").into_bytes());
        next = put_until_acknowledged(&survivors, next, &key, &value).await;
        acknowledged.insert(key, value);
    }
    let survivor_ids: Vec<&str> = ["n1", "n2", "n3"].into_iter().filter(|id| *id != victim_id).collect();
    let after = settled(survivors[0], &survivor_ids).await;
    for shard in &victims_shards {
        let was = before.shards.iter().find(|s| &s.shard == shard).unwrap();
        let now = after.shards.iter().find(|s| &s.shard == shard).unwrap();
        assert!(
            now.epoch > was.epoch,
            "{shard} changed hands, so its epoch grew: {was:?} -> {now:?}"
        );
        assert_ne!(now.owner, victim_id);
    }
    assert_eq!(
        after.members.len(),
        2,
        "the dead node's membership expired: {:?}",
        after.members
    );

    // Writes sent to non-owners were forwarded, and nothing was fenced
    // (the victim died rather than kept writing).
    let forwarded: u64 = {
        let mut total = 0;
        for node in &survivors {
            total += metric(node, "rustorium_cluster_forwarded_writes_total").await;
        }
        total
    };
    assert!(forwarded > 0, "some writes were forwarded to their owner");

    // Every acknowledged write is there, from every survivor, with a proof.
    for node in &survivors {
        let mut client = node.client().await;
        assert_eq!(
            scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
            acknowledged
        );
        for (key, value) in acknowledged.iter().step_by(7) {
            let read = get_latest(&mut client, key).await;
            assert!(read.found);
            assert_eq!(&read.value, value);
            verify_bytes(read.proof.as_ref(), &read.root, key, Some(value), 160).unwrap();
        }
    }
    // The global root is exactly the unsharded tree of those writes.
    let unsharded = unsharded_root(&acknowledged);
    for node in &survivors {
        let root = node
            .client()
            .await
            .get_root(v1::GetRootRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rustorium_proto::fr_from_bytes(&root.root).unwrap(), unsharded);
    }

    // WatchRoots streams the global root as it changes.
    let mut watch = survivors[1]
        .client()
        .await
        .watch_roots(v1::WatchRootsRequest { from_version: None })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(rustorium_proto::fr_from_bytes(&first.root).unwrap(), unsharded);
    let mut client = survivors[0].client().await;
    let put = try_put(&mut client, b"watched", b"w").await.unwrap();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!((next.root, next.version), (put.root, first.version + 1));
    let history = survivors[1]
        .client()
        .await
        .watch_roots(v1::WatchRootsRequest { from_version: Some(0) })
        .await
        .unwrap_err();
    assert_eq!(history.code(), tonic::Code::FailedPrecondition);

    // A node that comes back under the same id joins again and takes
    // shards only as placement gives them; writes keep working.
    let dir = tempfile::tempdir().unwrap();
    nodes[victim] = start_node(dir.path(), &pd, &victim_id, "local");
    let all: Vec<&Node> = nodes.iter().collect();
    put_until_acknowledged(&all, victim, b"after-rejoin", b"yes").await;
    for node in nodes.drain(..) {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geographic_placement_moves_shards_to_the_region_their_writes_come_from() {
    let tikv = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster starts");
    let pd = tikv.pd_endpoint();
    let (eu_dir, us_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let geo = ["--placement", "geographic", "--min-ownership-ms", "1000"];
    let eu = start_node_with(eu_dir.path(), &pd, "eu-1", "eu", &geo);
    let us = start_node_with(us_dir.path(), &pd, "us-1", "us", &geo);
    // us-1 joined second: hashing hands it its share within a few rounds.
    let start = placed_as_preferred(&eu, &["eu-1", "us-1"]).await;
    assert!(
        start.shards.iter().any(|s| s.owner == "us-1"),
        "with no writes yet, hashing gives us-1 some shards: {start:?}"
    );
    // Every write enters in eu; us-1 owns some shards and sees their
    // writes arrive forwarded from eu.
    let mut acknowledged = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut i = 0u32;
    let moved = loop {
        let (key, value) = (format!("geo-{i}").into_bytes(), format!("v{i}").into_bytes());
        put_until_acknowledged(&[&eu], 0, &key, &value).await;
        acknowledged.insert(key, value);
        i += 1;
        if i.is_multiple_of(20) {
            let status = cluster_status(&eu).await.unwrap();
            if status.shards.iter().all(|s| s.owner == "eu-1") {
                break status;
            }
        }
        assert!(Instant::now() < deadline, "shards never moved to eu");
    };
    for (was, now) in start.shards.iter().zip(&moved.shards) {
        assert_eq!(now.preferred, "eu-1");
        assert_eq!(now.owner_region, "eu");
        if was.owner == "us-1" {
            assert!(
                now.epoch > was.epoch,
                "moved, so fenced under a new epoch: {was:?} -> {now:?}"
            );
        }
    }
    assert!(
        moved
            .shards
            .iter()
            .any(|s| s.writes_by_region.get("eu").is_some_and(|n| *n > 0)),
        "the owners measured where writes come from: {moved:?}"
    );
    // The PD rules now pin every shard's leaders to eu.
    let rules: serde_json::Value = serde_json::from_str(&http_get(&eu, "/api/placement-rules").await).unwrap();
    let rules = rules[0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), SHARDS);
    assert!(
        rules.iter().all(|r| r["label_constraints"][0]["values"][0] == "eu"),
        "{rules:?}"
    );
    // Nothing was lost on the way, and us-1 still serves reads with proofs.
    let mut client = us.client().await;
    assert_eq!(
        scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
        acknowledged
    );
    eu.stop();
    us.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_based_placement_moves_a_hot_shard_off_the_busiest_node() {
    use rustorium_core::tree::shard::shard_of;
    let tikv = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster starts");
    let pd = tikv.pd_endpoint();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let load = ["--placement", "loadbased", "--min-ownership-ms", "1000"];
    let a = start_node_with(a_dir.path(), &pd, "a", "local", &load);
    let b = start_node_with(b_dir.path(), &pd, "b", "local", &load);
    let start = placed_as_preferred(&a, &["a", "b"]).await;
    // The node with two or more shards gets all the writes, spread over
    // its shards: it is above the mean, and moving one shard lowers it.
    let busy = ["a", "b"]
        .into_iter()
        .find(|id| start.shards.iter().filter(|s| s.owner == *id).count() >= 2)
        .expect("4 shards on 2 nodes: one has two");
    let hot: Vec<String> = start
        .shards
        .iter()
        .filter(|s| s.owner == busy)
        .map(|s| s.shard.clone())
        .collect();
    let keys: Vec<Vec<u8>> = (0u32..)
        .map(|i| format!("load-{i}").into_bytes())
        .filter(|k| hot.contains(&format!("2-{}", shard_of(&bytes_to_field(k), 2))))
        .take(4000)
        .collect();
    let mut acknowledged = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let moved = 'writing: loop {
        for (i, key) in keys.iter().enumerate() {
            put_until_acknowledged(&[&a, &b], i, key, b"x").await;
            acknowledged.insert(key.clone(), b"x".to_vec());
            if i % 25 == 24 {
                let status = cluster_status(&a).await.unwrap();
                // A released shard shows no owner until the other node
                // takes it; only a taken one counts as moved.
                let taken_elsewhere = |s: &&v1::ShardPlacement| !s.owner.is_empty() && s.owner != busy;
                if let Some(shard) = status
                    .shards
                    .iter()
                    .find(|s| hot.contains(&s.shard) && taken_elsewhere(s))
                {
                    break 'writing (status.clone(), shard.clone());
                }
            }
            assert!(Instant::now() < deadline, "no hot shard moved off {busy}");
        }
    };
    let (status, shard) = moved;
    let was = start.shards.iter().find(|s| s.shard == shard.shard).unwrap();
    assert!(shard.epoch > was.epoch, "moved under a new epoch: {was:?} -> {shard:?}");
    assert!(
        status.shards.iter().any(|s| s.write_rate > 0.0),
        "owners report measured write rates: {status:?}"
    );
    let mut client = b.client().await;
    assert_eq!(
        scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
        acknowledged
    );
    a.stop();
    b.stop();
}

/// Waits until `node` sees a cut of more than `more_than` shards, each
/// owned by one of `owners`, with no shard over `max_keys` keys.
async fn resharded(node: &Node, owners: &[&str], more_than: usize, max_keys: u64) -> v1::ClusterStatus {
    let what = format!("the cut did not grow past {more_than} shards of at most {max_keys} keys");
    status_when(node, Duration::from_secs(60), &what, |status| {
        status.shards.len() > more_than
            && status
                .shards
                .iter()
                .all(|s| owners.contains(&s.owner.as_str()) && s.keys <= max_keys)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_across_the_cluster_while_serving_and_every_node_adopts_the_cut() {
    let tikv = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster starts");
    let pd = tikv.pd_endpoint();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let split = ["--split-above-keys", "50", "--min-ownership-ms", "1000"];
    let a = start_node_with(a_dir.path(), &pd, "a", "local", &split);
    let b = start_node_with(b_dir.path(), &pd, "b", "local", &split);
    let before = settled(&a, &["a", "b"]).await;
    let (root_before, _) = {
        let mut client = a.client().await;
        let root = client
            .get_root(v1::GetRootRequest::default())
            .await
            .unwrap()
            .into_inner();
        (root.root, root.version)
    };
    assert_eq!(
        root_before,
        rustorium_proto::fr_to_bytes(&unsharded_root(&BTreeMap::new()))
    );

    // 300 keys through both nodes: every starting shard passes 50 keys and
    // its owner splits it (twice) while the writes go on.
    let mut acknowledged = BTreeMap::new();
    let mut next = 0;
    let mut last_version = 0;
    for i in 0..300u32 {
        let (key, value) = (format!("split-{i}").into_bytes(), format!("v{i}").into_bytes());
        next = put_until_acknowledged(&[&a, &b], next, &key, &value).await;
        acknowledged.insert(key.clone(), value);
        if i % 50 == 49 {
            // Cluster versions keep growing through splits.
            let mut client = a.client().await;
            let root = client
                .get_root(v1::GetRootRequest::default())
                .await
                .unwrap()
                .into_inner();
            assert!(root.version >= last_version, "{} then {}", last_version, root.version);
            last_version = root.version;
        }
    }
    let after_a = resharded(&a, &["a", "b"], SHARDS, 50).await;
    let after_b = resharded(&b, &["a", "b"], SHARDS, 50).await;
    let labels = |s: &v1::ClusterStatus| s.shards.iter().map(|p| p.shard.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&after_a), labels(&after_b), "both nodes serve the same cut");
    assert!(
        after_a.shards.iter().all(|s| !s.shard.starts_with("2-")),
        "every starting shard split: {:?}",
        labels(&after_a)
    );
    assert!(before.shards.iter().all(|s| s.shard.starts_with("2-")));

    // Each node's global root is exactly the unsharded tree's; every key
    // reads back with a proof on both nodes.
    let unsharded = unsharded_root(&acknowledged);
    let expected = rustorium_proto::fr_to_bytes(&unsharded);
    for node in [&a, &b] {
        let mut client = node.client().await;
        let root = client
            .get_root(v1::GetRootRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(root.root, expected, "{}", node.url);
        for (key, value) in acknowledged.iter().step_by(11) {
            let read = get_latest(&mut client, key).await;
            verify_bytes(read.proof.as_ref(), &read.root, key, Some(value), 160).expect("read proof");
        }
        assert_eq!(
            scan_all(&mut client).await.into_iter().collect::<BTreeMap<_, _>>(),
            acknowledged
        );
    }
    // Writes go on in the new cut, from either node.
    for i in 300..320u32 {
        let (key, value) = (format!("split-{i}").into_bytes(), format!("v{i}").into_bytes());
        next = put_until_acknowledged(&[&a, &b], next, &key, &value).await;
    }
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_merges_its_cold_sibling_shards_and_a_joining_node_adopts_the_cut() {
    let tikv = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster starts");
    let pd = tikv.pd_endpoint();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Alone, node a owns all 4 shards: each sibling pair is cold and small,
    // so it merges them, then merges the halves again.
    let a = start_node_with(a_dir.path(), &pd, "a", "local", &["--merge-below-keys", "1000"]);
    let mut acknowledged = BTreeMap::new();
    let mut next = 0;
    for i in 0..40u32 {
        let (key, value) = (format!("merge-{i}").into_bytes(), format!("v{i}").into_bytes());
        next = put_until_acknowledged(&[&a], next, &key, &value).await;
        acknowledged.insert(key, value);
    }
    let merged = status_when(&a, Duration::from_secs(60), "the shards never merged", |s| {
        s.shards.len() == 1 && s.shards[0].owner == "a"
    })
    .await;
    assert_eq!(merged.shards[0].shard, "0-0");
    assert_eq!(merged.shards[0].keys, 40);
    // A node joining later starts from the published cut, not its
    // --shard-count, and reads everything with proofs.
    let b = start_node(b_dir.path(), &pd, "b", "local");
    let joined = cluster_status(&b).await.expect("cluster status");
    assert_eq!(
        joined.shards.iter().map(|s| s.shard.as_str()).collect::<Vec<_>>(),
        ["0-0"]
    );
    let unsharded = unsharded_root(&acknowledged);
    let mut client = b.client().await;
    let root = client
        .get_root(v1::GetRootRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(root.root, rustorium_proto::fr_to_bytes(&unsharded));
    for (key, value) in &acknowledged {
        let read = get_latest(&mut client, key).await;
        verify_bytes(read.proof.as_ref(), &read.root, key, Some(value), 160).expect("read proof");
    }
    a.stop();
    b.stop();
}
