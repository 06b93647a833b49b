//! Placement: which node owns which shard, by the seed's strategies, and the
//! TiKV placement rules that keep a shard's data near its owner.
//!
//! Every strategy is a pure function of the nodes, their measured load and
//! the shards' write origins, so every node computes the same answer.
//! Random uses rendezvous hashing: a node joining or leaving moves only the
//! shards it gains or had.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The seed's `placement_strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementStrategy {
    /// Rendezvous hashing over all nodes.
    #[default]
    Random,
    /// The region most of a shard's writes come from, then rendezvous
    /// hashing among that region's nodes.
    Geographic,
    /// Shards move off nodes whose write rate is above the mean.
    LoadBased,
    /// Geographic first, then load-based within each region.
    Hybrid,
}

/// A node that can own shards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    /// Its region label (e.g. "eu-west").
    pub region: String,
}

/// What placement knows about one shard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardLoad {
    /// Writes per second to the shard.
    pub write_rate: f64,
    /// Writes by the region they came from.
    pub writes_by_region: BTreeMap<String, u64>,
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rendezvous winner for shard `id` among `nodes` (highest weight).
fn rendezvous<'a>(id: u64, nodes: impl IntoIterator<Item = &'a NodeInfo>) -> Option<&'a NodeInfo> {
    nodes.into_iter().max_by_key(|node| {
        (
            fnv1a(id.to_le_bytes().into_iter().chain(node.id.bytes())),
            node.id.as_str(),
        )
    })
}

/// The region most of a shard's writes come from, if any node is there.
fn home_region<'a>(load: &ShardLoad, nodes: &'a [NodeInfo]) -> Option<&'a str> {
    load.writes_by_region
        .iter()
        .filter(|(region, _)| nodes.iter().any(|n| &n.region == *region))
        .max_by_key(|(region, writes)| (**writes, std::cmp::Reverse(region.as_str())))
        .and_then(|(region, _)| nodes.iter().find(|n| &n.region == region).map(|n| n.region.as_str()))
}

/// Owner (node id) of each shard. `loads[i]` describes shard `i`; `current`
/// is the present assignment, which load-based placement starts from.
/// Shards are hashed by position (see `place_keyed`).
pub fn place(
    strategy: PlacementStrategy,
    nodes: &[NodeInfo],
    loads: &[ShardLoad],
    current: Option<&[String]>,
) -> Vec<String> {
    let ids: Vec<u64> = (0..loads.len() as u64).collect();
    place_keyed(strategy, nodes, &ids, loads, current)
}

/// A stable id for the shard at `prefix`, for `place_keyed`: a split or
/// merge changes the ids of the shards it makes and no others.
pub fn shard_id(prefix: rustorium_core::tree::shard::Prefix) -> u64 {
    (u64::from(prefix.depth) << 56) | prefix.index as u64
}

/// `place`, with each shard hashed by its id (`ids[i]` for shard `i`)
/// rather than its position, so a cut that changes in one place moves no
/// other shard.
pub fn place_keyed(
    strategy: PlacementStrategy,
    nodes: &[NodeInfo],
    ids: &[u64],
    loads: &[ShardLoad],
    current: Option<&[String]>,
) -> Vec<String> {
    if nodes.is_empty() || ids.len() != loads.len() {
        return Vec::new();
    }
    let by_hash = |shard: usize, pool: &[&NodeInfo]| -> String {
        let id = ids[shard];
        rendezvous(id, pool.iter().copied())
            .or_else(|| rendezvous(id, nodes))
            .map(|n| n.id.clone())
            .unwrap_or_default()
    };
    let everyone: Vec<&NodeInfo> = nodes.iter().collect();
    let geographic = || -> Vec<String> {
        loads
            .iter()
            .enumerate()
            .map(|(shard, load)| match home_region(load, nodes) {
                Some(region) => {
                    let local: Vec<&NodeInfo> = nodes.iter().filter(|n| n.region == region).collect();
                    by_hash(shard, &local)
                }
                None => by_hash(shard, &everyone),
            })
            .collect()
    };
    match strategy {
        PlacementStrategy::Random => (0..loads.len()).map(|shard| by_hash(shard, &everyone)).collect(),
        PlacementStrategy::Geographic => geographic(),
        PlacementStrategy::LoadBased => {
            let start = match current {
                Some(current) if current.len() == loads.len() => current.to_vec(),
                _ => (0..loads.len()).map(|shard| by_hash(shard, &everyone)).collect(),
            };
            balance(start, loads, &everyone)
        }
        PlacementStrategy::Hybrid => {
            let mut owners = geographic();
            let regions: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.region.as_str()).collect();
            for region in regions {
                let pool: Vec<&NodeInfo> = nodes.iter().filter(|n| n.region == region).collect();
                let shards: Vec<usize> = (0..owners.len())
                    .filter(|s| pool.iter().any(|n| n.id == owners[*s]))
                    .collect();
                let sub_loads: Vec<ShardLoad> = shards.iter().map(|s| loads[*s].clone()).collect();
                let sub_owners = balance(shards.iter().map(|s| owners[*s].clone()).collect(), &sub_loads, &pool);
                for (shard, owner) in shards.into_iter().zip(sub_owners) {
                    owners[shard] = owner;
                }
            }
            owners
        }
    }
}

/// Moves shards off nodes above the mean write rate onto the least loaded
/// node, while that lowers the busiest node's rate.
fn balance(mut owners: Vec<String>, loads: &[ShardLoad], pool: &[&NodeInfo]) -> Vec<String> {
    if pool.len() < 2 {
        return owners;
    }
    let rate_of = |owners: &[String], id: &str| -> f64 {
        owners
            .iter()
            .zip(loads)
            .filter(|(o, _)| o.as_str() == id)
            .map(|(_, l)| l.write_rate)
            .sum()
    };
    let mean = loads.iter().map(|l| l.write_rate).sum::<f64>() / pool.len() as f64;
    for _ in 0..owners.len() * pool.len() {
        let (busiest, busiest_rate) = pool
            .iter()
            .map(|n| (n.id.clone(), rate_of(&owners, &n.id)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .unwrap_or_default();
        if busiest_rate <= mean {
            break;
        }
        let (idlest, idlest_rate) = pool
            .iter()
            .map(|n| (n.id.clone(), rate_of(&owners, &n.id)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
            .unwrap_or_default();
        // The busiest node's smallest shard that still helps.
        let candidate = owners
            .iter()
            .enumerate()
            .filter(|(s, o)| **o == busiest && loads[*s].write_rate > 0.0)
            .map(|(s, _)| s)
            .filter(|s| idlest_rate + loads[*s].write_rate < busiest_rate)
            .min_by(|a, b| loads[*a].write_rate.total_cmp(&loads[*b].write_rate));
        match candidate {
            Some(shard) => owners[shard] = idlest,
            None => break,
        }
    }
    owners
}

/// TiKV's memcomparable encoding of a raw key (how transactional keys and
/// region boundaries appear in PD): 8-byte groups, each followed by
/// `0xff - padding`.
pub fn memcomparable(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((key.len() / 8 + 1) * 9);
    let mut chunks = key.chunks_exact(8);
    for chunk in chunks.by_ref() {
        out.extend_from_slice(chunk);
        out.push(0xff);
    }
    let rest = chunks.remainder();
    out.extend_from_slice(rest);
    out.extend(std::iter::repeat_n(0, 8 - rest.len()));
    out.push(0xff - (8 - rest.len()) as u8);
    out
}

/// PD placement rules (`pd-ctl config placement-rules rule-bundle save`)
/// that keep the leader of each shard's key range in its owner's region.
/// `shards` gives each shard's TiKV namespace (as `ShardedStore` names it:
/// `namespace/shard-D-III-gG`, see `sharded::shard_namespace`) and region.
/// Keys are those of TiKV's v1 transactional key space (no API v2 keyspace).
pub fn placement_rules(shards: &[(String, String)]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = shards
        .iter()
        .map(|(namespace, region)| {
            // Every key the shard's store writes starts with "namespace/".
            let start = format!("{namespace}/").into_bytes();
            let mut end = start.clone();
            if let Some(last) = end.last_mut() {
                *last += 1; // '/' + 1: just past every key under the prefix
            }
            serde_json::json!({
                "group_id": "rustorium",
                "id": format!("{namespace}-leader"),
                "start_key": hex::encode(memcomparable(&start)),
                "end_key": hex::encode(memcomparable(&end)),
                "role": "leader",
                "count": 1,
                "label_constraints": [{"key": "region", "op": "in", "values": [region]}],
                "location_labels": ["region"],
            })
        })
        .collect();
    serde_json::json!([{ "group_id": "rustorium", "group_index": 0, "group_override": false, "rules": rules }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(spec: &[(&str, &str)]) -> Vec<NodeInfo> {
        spec.iter()
            .map(|(id, region)| NodeInfo {
                id: (*id).into(),
                region: (*region).into(),
            })
            .collect()
    }

    fn loads(rates: &[f64]) -> Vec<ShardLoad> {
        rates
            .iter()
            .map(|r| ShardLoad {
                write_rate: *r,
                ..ShardLoad::default()
            })
            .collect()
    }

    #[test]
    fn random_moves_only_the_leaving_nodes_shards() {
        let all = nodes(&[("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]);
        let shards = loads(&[0.0; 64]);
        let before = place(PlacementStrategy::Random, &all, &shards, None);
        assert!(all.iter().all(|n| before.contains(&n.id)), "every node gets shards");
        let without_c: Vec<NodeInfo> = all.iter().filter(|n| n.id != "c").cloned().collect();
        let after = place(PlacementStrategy::Random, &without_c, &shards, None);
        for (b, a) in before.iter().zip(&after) {
            if b != "c" {
                assert_eq!(b, a, "a shard not on the leaving node stays put");
            } else {
                assert_ne!(a, "c");
            }
        }
    }

    #[test]
    fn geographic_follows_the_writes() {
        let all = nodes(&[("eu1", "eu"), ("eu2", "eu"), ("us1", "us")]);
        let mut shards = loads(&[1.0; 4]);
        shards[0].writes_by_region = BTreeMap::from([("us".into(), 90), ("eu".into(), 10)]);
        shards[1].writes_by_region = BTreeMap::from([("eu".into(), 50)]);
        shards[2].writes_by_region = BTreeMap::from([("ap".into(), 500)]); // no node there
        let owners = place(PlacementStrategy::Geographic, &all, &shards, None);
        assert_eq!(owners[0], "us1");
        assert!(owners[1].starts_with("eu"));
        assert!(!owners[2].is_empty(), "a region without nodes falls back to all nodes");
    }

    #[test]
    fn load_based_moves_shards_off_busy_nodes() {
        let all = nodes(&[("a", "x"), ("b", "x"), ("c", "x")]);
        let shards = loads(&[50.0, 40.0, 30.0, 5.0, 5.0, 5.0]);
        let current: Vec<String> = vec!["a".into(); 6];
        let owners = place(PlacementStrategy::LoadBased, &all, &shards, Some(&current));
        let rate = |id: &str| -> f64 {
            owners
                .iter()
                .zip(&shards)
                .filter(|(o, _)| o.as_str() == id)
                .map(|(_, l)| l.write_rate)
                .sum()
        };
        let max = ["a", "b", "c"].iter().map(|n| rate(n)).fold(0.0, f64::max);
        assert!(
            max <= 50.0,
            "the busiest node went from 135 to at most one big shard: {owners:?}"
        );
    }

    #[test]
    fn hybrid_balances_within_regions_only() {
        let all = nodes(&[("eu1", "eu"), ("eu2", "eu"), ("us1", "us")]);
        let mut shards = loads(&[30.0, 30.0, 30.0, 30.0]);
        for shard in &mut shards {
            shard.writes_by_region = BTreeMap::from([("eu".into(), 10)]);
        }
        let owners = place(PlacementStrategy::Hybrid, &all, &shards, None);
        assert!(owners.iter().all(|o| o.starts_with("eu")), "{owners:?}");
        assert_eq!(owners.iter().filter(|o| *o == "eu1").count(), 2, "{owners:?}");
    }

    #[test]
    fn placement_rules_cover_each_shard_range() {
        assert_eq!(memcomparable(b""), [0, 0, 0, 0, 0, 0, 0, 0, 0xf7]);
        assert_eq!(memcomparable(b"abcdefgh").len(), 18);
        use crate::store::sharded::shard_namespace;
        use rustorium_core::tree::shard::Prefix;
        let shards = [
            (
                shard_namespace("tree", Prefix { depth: 1, index: 0 }, 0),
                "eu".to_owned(),
            ),
            (
                shard_namespace("tree", Prefix { depth: 1, index: 1 }, 0),
                "us".to_owned(),
            ),
        ];
        let rules = placement_rules(&shards);
        let rules = rules[0]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1]["label_constraints"][0]["values"][0], "us");
        let start = rules[0]["start_key"].as_str().unwrap();
        let end = rules[0]["end_key"].as_str().unwrap();
        assert!(start < end, "hex of memcomparable keys keeps their order");
        assert!(end <= rules[1]["start_key"].as_str().unwrap());
    }
}
