//! What a node serves: one embedded store, one store cut into shards, a
//! read-only replica of another node, or its part of a cluster.

use crate::cluster::ClusterNode;
use crate::store::backend::any::AnyBackend;
use crate::store::error::StoreError;
use crate::store::replica::Replica;
use crate::store::sharded::{ShardedStore, render_shard_metrics, shard_label};
use crate::store::{StorageConfig, Store};
use rustorium_core::Fr;
use rustorium_proto::v1;
use std::sync::Arc;
use tonic::Status;

/// A single node whose store is cut into shards (`[sharding]`).
#[derive(Debug)]
pub struct ShardedNode {
    pub store: Arc<ShardedStore>,
    /// The settings every shard was opened with.
    pub config: StorageConfig,
    /// Whether a resharding policy runs.
    pub automatic: bool,
}

impl ShardedNode {
    fn render_metrics(&self) -> String {
        use prometheus::core::Collector;
        let (splits, merges) = self.store.reshapes();
        let shards = self.store.shards();
        let gauge = |name: &str, help: &str, value: u64| {
            let gauge = prometheus::IntGauge::new(name, help).expect("a valid metric name");
            gauge.set(value as i64);
            gauge.collect()
        };
        let own = [
            gauge(
                "rustorium_sharding_shards",
                "Shards in the current cut",
                shards.len() as u64,
            ),
            gauge(
                "rustorium_sharding_splits",
                "Shard splits since the node started",
                splits,
            ),
            gauge(
                "rustorium_sharding_merges",
                "Shard merges since the node started",
                merges,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        render_shard_metrics(&shards, own)
    }
}

/// A replica node: its local store follows `primary`.
#[derive(Debug)]
pub struct ReplicaNode {
    pub replica: Replica<AnyBackend>,
    pub primary: String,
    /// The primary's shard followed; empty: its whole tree.
    pub shard: String,
}

#[derive(Clone, Debug)]
pub enum Engine {
    Single(Store),
    Sharded(Arc<ShardedNode>),
    Replica(Arc<ReplicaNode>),
    Cluster(Arc<ClusterNode>),
}

impl From<Store> for Engine {
    fn from(store: Store) -> Self {
        Self::Single(store)
    }
}

impl Engine {
    /// The one store reads come from (none when the tree is sharded).
    pub fn local(&self) -> Option<&Store> {
        match self {
            Self::Single(store) => Some(store),
            Self::Replica(node) => Some(node.replica.store()),
            Self::Sharded(_) | Self::Cluster(_) => None,
        }
    }

    /// The store writes go to, outside cluster mode.
    pub fn writable(&self) -> Result<&Store, Status> {
        match self {
            Self::Single(store) => Ok(store),
            Self::Replica(node) => Err(Status::failed_precondition(format!(
                "this node is a read-only replica of {}; write there",
                node.primary
            ))),
            Self::Sharded(_) | Self::Cluster(_) => Err(Status::internal("sharded writes are routed by shard")),
        }
    }

    /// Every store this node serves from.
    pub fn stores(&self) -> Vec<Store> {
        match self {
            Self::Cluster(cluster) => cluster.stores(),
            Self::Sharded(node) => node.store.stores(),
            other => other.local().into_iter().cloned().collect(),
        }
    }

    pub fn config(&self) -> &StorageConfig {
        match self {
            Self::Cluster(cluster) => cluster.storage(),
            Self::Sharded(node) => &node.config,
            other => other.local().expect("not a cluster").config(),
        }
    }

    pub fn max_levels(&self) -> u16 {
        match self {
            Self::Cluster(cluster) => cluster.max_levels(),
            Self::Sharded(node) => node.store.max_levels(),
            other => other.local().expect("not a cluster").max_levels(),
        }
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self) -> String {
        match self {
            Self::Cluster(cluster) => cluster.render_metrics(),
            Self::Sharded(node) => node.render_metrics(),
            other => {
                let store = other.local().expect("not a cluster");
                store.refresh_metrics();
                store.metrics().render()
            }
        }
    }

    /// The root over every shard (or the one store's) and its version.
    pub async fn global_root(&self) -> Result<(Fr, u64), StoreError> {
        match self {
            Self::Cluster(cluster) => cluster.root().await,
            Self::Sharded(node) => node.store.global_root().await.map(|g| (g.root, g.version)),
            other => {
                let store = other.local().expect("one store");
                let (root, version, _) = store.root();
                Ok((root, version))
            }
        }
    }

    pub fn sharding_status(&self) -> Option<v1::ShardingStatus> {
        let Self::Sharded(node) = self else { return None };
        let (splits, merges) = node.store.reshapes();
        Some(v1::ShardingStatus {
            shards: node
                .store
                .shards()
                .into_iter()
                .map(|(prefix, store)| v1::LocalShard {
                    shard: shard_label(prefix),
                    version: store.root().1,
                    keys: store.keys(),
                    writes_total: store.metrics().writes_total.get(),
                })
                .collect(),
            splits,
            merges,
            automatic: node.automatic,
        })
    }

    pub fn cluster_status(&self) -> Option<v1::ClusterStatus> {
        let Self::Cluster(cluster) = self else { return None };
        let config = cluster.config();
        Some(v1::ClusterStatus {
            node_id: config.node_id.clone(),
            region: config.region.clone(),
            placement_strategy: serde_json::to_value(config.placement_strategy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            replication_factor: config.replication_factor,
            members: cluster
                .members()
                .into_iter()
                .map(|m| v1::ClusterMember {
                    id: m.id,
                    addr: m.addr,
                    region: m.region,
                })
                .collect(),
            shards: cluster
                .placement()
                .into_iter()
                .map(|p| v1::ShardPlacement {
                    shard: p.shard,
                    owner: p.owner,
                    owner_addr: p.owner_addr,
                    owner_region: p.owner_region,
                    epoch: p.epoch,
                    preferred: p.preferred,
                    version: p.version,
                    write_rate: p.write_rate,
                    writes_by_region: p.writes_by_region.into_iter().collect(),
                    keys: p.keys,
                })
                .collect(),
        })
    }

    pub fn replica_status(&self) -> Option<v1::ReplicaStatus> {
        let Self::Replica(node) = self else { return None };
        let status = node.replica.status();
        Some(v1::ReplicaStatus {
            primary: node.primary.clone(),
            mirrors: status.mirrors,
            lag_versions: status.lag,
            max_lag_versions: status.max_lag,
            applied: status.applied,
            resyncs: status.resyncs,
            primary_reachable: status.reachable,
            last_resync_pages_fetched: status.last_resync_pages_fetched,
            last_resync_entries: status.last_resync_entries,
            full_resyncs: status.full_resyncs,
            shard: node.shard.clone(),
        })
    }
}
