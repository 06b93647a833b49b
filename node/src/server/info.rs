//! `GET /api/info`: what the dashboard shows about the node, as JSON.

use super::engine::Engine;
use crate::cluster::ShardPlacement;
use crate::store::KeyMode;

#[derive(Debug, serde::Serialize)]
pub struct NodeInfo {
    pub backend: &'static str,
    pub sync_mode: &'static str,
    pub compression: bool,
    pub encryption: bool,
    /// Shards this node serves (every shard of the tree in a cluster).
    pub shards: u32,
    pub key_mode: &'static str,
    pub max_levels: u16,
    /// The store's version; when sharded, the sum of the shard versions
    /// and of those retired shards had reached.
    pub version: u64,
    pub keys: u64,
    pub server_version: &'static str,
    /// "single", "sharded", "replica" or "cluster".
    pub role: &'static str,
    /// In a cluster: this node's id and where every shard lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<ShardPlacement>>,
    /// On a replica: the primary, the version mirrored and the lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaInfo>,
    /// A sharded single node: its current cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharding: Option<ShardingInfo>,
}

#[derive(Debug, serde::Serialize)]
pub struct ShardingInfo {
    pub shards: Vec<LocalShardInfo>,
    pub splits: u64,
    pub merges: u64,
    pub automatic: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct LocalShardInfo {
    pub shard: String,
    pub version: u64,
    pub keys: u64,
    pub writes_total: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct ReplicaInfo {
    pub primary: String,
    /// The primary's shard followed; empty: its whole tree.
    pub shard: String,
    pub mirrors: u64,
    pub lag_versions: u64,
    pub primary_reachable: bool,
}

impl NodeInfo {
    pub fn of(engine: &Engine) -> Self {
        let stores = engine.stores();
        let config = engine.config();
        let (role, node_id, placement, replica) = match engine {
            Engine::Single(_) => ("single", None, None, None),
            Engine::Sharded(_) => ("sharded", None, None, None),
            Engine::Cluster(cluster) => (
                "cluster",
                Some(cluster.config().node_id.clone()),
                Some(cluster.placement()),
                None,
            ),
            Engine::Replica(node) => {
                let status = node.replica.status();
                let info = ReplicaInfo {
                    primary: node.primary.clone(),
                    shard: node.shard.clone(),
                    mirrors: status.mirrors,
                    lag_versions: status.lag,
                    primary_reachable: status.reachable,
                };
                ("replica", None, None, Some(info))
            }
        };
        Self {
            backend: stores.first().map_or("none", |s| s.backend_name()),
            sync_mode: config.sync_mode.name(),
            compression: config.compression_enabled,
            encryption: config.encryption_enabled,
            shards: stores.len() as u32,
            key_mode: match config.key_mode {
                KeyMode::Bytes => "bytes",
                KeyMode::Field => "field",
            },
            max_levels: engine.max_levels(),
            version: match engine {
                Engine::Sharded(node) => node.store.head_version(),
                Engine::Cluster(cluster) => cluster.head_version(),
                _ => stores.iter().map(|s| s.root().1).sum(),
            },
            keys: stores.iter().map(|s| s.keys()).sum(),
            server_version: env!("CARGO_PKG_VERSION"),
            role,
            node_id,
            placement,
            replica,
            sharding: engine.sharding_status().map(|status| ShardingInfo {
                shards: status
                    .shards
                    .into_iter()
                    .map(|s| LocalShardInfo {
                        shard: s.shard,
                        version: s.version,
                        keys: s.keys,
                        writes_total: s.writes_total,
                    })
                    .collect(),
                splits: status.splits,
                merges: status.merges,
                automatic: status.automatic,
            }),
        }
    }
}
