//! What a node serves: one embedded store, a read-only replica of another
//! node, or its part of a cluster.

use crate::cluster::ClusterNode;
use crate::store::backend::any::AnyBackend;
use crate::store::replica::Replica;
use crate::store::{StorageConfig, Store};
use rustorium_proto::v1;
use std::sync::Arc;
use tonic::Status;

/// A replica node: its local store follows `primary`.
#[derive(Debug)]
pub struct ReplicaNode {
    pub replica: Replica<AnyBackend>,
    pub primary: String,
}

#[derive(Clone, Debug)]
pub enum Engine {
    Single(Store),
    Replica(Arc<ReplicaNode>),
    Cluster(Arc<ClusterNode>),
}

impl From<Store> for Engine {
    fn from(store: Store) -> Self {
        Self::Single(store)
    }
}

impl Engine {
    /// The one store reads come from (not in cluster mode).
    pub fn local(&self) -> Option<&Store> {
        match self {
            Self::Single(store) => Some(store),
            Self::Replica(node) => Some(node.replica.store()),
            Self::Cluster(_) => None,
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
            Self::Cluster(_) => Err(Status::internal("cluster writes are routed by the cluster node")),
        }
    }

    /// Every store this node serves from.
    pub fn stores(&self) -> Vec<Store> {
        match self {
            Self::Cluster(cluster) => cluster.stores(),
            other => other.local().into_iter().cloned().collect(),
        }
    }

    pub fn config(&self) -> &StorageConfig {
        match self {
            Self::Cluster(cluster) => cluster.any_store().config(),
            other => other.local().expect("not a cluster").config(),
        }
    }

    pub fn max_levels(&self) -> u16 {
        match self {
            Self::Cluster(cluster) => cluster.max_levels(),
            other => other.local().expect("not a cluster").max_levels(),
        }
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self) -> String {
        match self {
            Self::Cluster(cluster) => cluster.render_metrics(),
            other => {
                let store = other.local().expect("not a cluster");
                store.refresh_metrics();
                store.metrics().render()
            }
        }
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
        })
    }
}
