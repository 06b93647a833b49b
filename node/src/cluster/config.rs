//! `[cluster]`: several nodes sharing one TiKV keyspace (the seed's
//! `ShardConfig`, plus what a node needs to find the others).

use crate::cluster::placement::PlacementStrategy;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique per node; the name leases and placement use.
    pub node_id: String,
    /// The URL other nodes forward writes to (`http://host:port`).
    pub advertise: String,
    /// The node's region label, for geographic placement.
    pub region: String,
    /// Shards of the tree (a power of two, at most 256).
    pub shard_count: u32,
    /// TiKV keeps this many Raft replicas of every region; the node does
    /// not set it (PD does: `max-replicas`), it only reports it.
    pub replication_factor: u32,
    pub placement_strategy: PlacementStrategy,
    /// How long a shard stays with an owner that stops renewing. Owners
    /// renew every third of it.
    #[serde(with = "crate::store::config::millis")]
    pub lease_ttl: Duration,
    /// An owner keeps a shard at least this long before placement may move
    /// it to another live node (keeps load-based moves from flapping).
    #[serde(with = "crate::store::config::millis")]
    pub min_ownership: Duration,
    /// When an owner splits its hot or big shards and merges cold small
    /// sibling pairs it owns (`[cluster.reshard]`); unset thresholds do
    /// nothing (the default: the cut stays `shard_count` even shards).
    pub reshard: crate::store::autoshard::ReshardPolicy,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            advertise: String::new(),
            region: "default".into(),
            shard_count: 4,
            replication_factor: 3,
            placement_strategy: PlacementStrategy::Random,
            lease_ttl: Duration::from_secs(10),
            min_ownership: Duration::from_secs(60),
            reshard: crate::store::autoshard::ReshardPolicy::default(),
        }
    }
}

impl ClusterConfig {
    /// log2(shard_count), or why the config is unusable.
    pub fn shard_bits(&self) -> Result<u8, String> {
        if self.node_id.is_empty() || self.node_id.contains('/') {
            return Err("cluster.node_id must be set, without '/'".into());
        }
        if !(self.advertise.starts_with("http://") || self.advertise.starts_with("https://")) {
            return Err(format!(
                "cluster.advertise must be an http:// or https:// URL other nodes can reach, not {:?}",
                self.advertise
            ));
        }
        if !self.shard_count.is_power_of_two() || self.shard_count > 256 {
            return Err(format!(
                "cluster.shard_count must be a power of two up to 256, not {}",
                self.shard_count
            ));
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return Err("cluster.lease_ttl must be at least 300 ms".into());
        }
        Ok(self.shard_count.trailing_zeros() as u8)
    }
}
