//! Node configuration: a TOML file, overridden by `RUSTORIUM_*` environment
//! variables, overridden by command-line flags (flags win). Every field of
//! the seed's `StorageConfig` is settable under `[storage]`.

use crate::store::StorageConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address for gRPC, gRPC-web, /metrics and the dashboard.
    pub listen: SocketAddr,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub tls: Option<TlsConfig>,
    pub limits: LimitsConfig,
    /// The dashboard's built files; served at `/` when the directory exists.
    pub dashboard_dir: PathBuf,
    pub log_format: LogFormat,
    /// Set to run as one node of a cluster sharing a TiKV keyspace.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Set to run as a read-only replica of another node.
    pub replica: Option<ReplicaConfig>,
    /// How many verified copies a write on this node waits for.
    pub replication: ReplicationConfig,
    /// Cutting a single node's Redb store into shards.
    pub sharding: ShardingConfig,
}

/// `[sharding]`: a single node's store cut into shards, each with its own
/// committer (writes to different shards commit in parallel on every
/// core), and, with `[sharding.auto]`, split and merged while serving.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardingConfig {
    /// Shards a new store starts with: a power of two, at most 256 (1:
    /// one unsharded store). A store keeps its cut in `shards.layout`;
    /// once that exists, it wins over this.
    pub shards: u32,
    /// How often the node looks at write rates and key counts.
    pub check_interval_ms: u64,
    /// When shards split and merge by themselves; nothing happens while
    /// every threshold is unset.
    pub auto: crate::store::autoshard::ReshardPolicy,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self {
            shards: 1,
            check_interval_ms: 1000,
            auto: crate::store::autoshard::ReshardPolicy::default(),
        }
    }
}

impl ShardingConfig {
    /// Whether the policy can split or merge anything.
    pub fn automatic(&self) -> bool {
        self.auto.is_active()
    }

    /// Whether a new store is cut at all.
    pub fn enabled(&self) -> bool {
        self.shards > 1 || self.automatic()
    }

    /// Prefix bits of the starting cut.
    pub fn bits(&self) -> Result<u8, String> {
        if !self.shards.is_power_of_two() || self.shards > 256 {
            return Err(format!(
                "sharding.shards = {}: a power of two from 1 to 256",
                self.shards
            ));
        }
        Ok(self.shards.trailing_zeros() as u8)
    }
}

/// `[replication]` on a primary: the seed's `replication_factor` for
/// Redb nodes with replicas (`[replica]` nodes following this one).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Copies a write needs before it is answered, this node counting as
    /// one: 1 answers at once (async replication); 2 waits for one replica
    /// to report it verified the write's version; and so on.
    pub factor: u32,
    /// How long a write waits for its replicas; after that it fails with
    /// DEADLINE_EXCEEDED (it is committed here all the same).
    pub ack_timeout_ms: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            factor: 1,
            ack_timeout_ms: 10_000,
        }
    }
}

/// `[replica]`: follow another node's committed batches (its
/// `Replicate` stream), verify each root, serve reads locally.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// The primary's URL, e.g. `http://primary:7070`.
    pub follow: String,
    /// Bearer token for a primary that protects reads.
    #[serde(default)]
    pub token: Option<String>,
    /// The name this replica reports its progress under (default: its
    /// listen address).
    #[serde(default)]
    pub id: Option<String>,
    /// Follow only this shard ("depth-index") of a sharded primary
    /// ([sharding]); this replica then holds and proves that shard's own
    /// tree. Unset: the primary's whole (unsharded) tree.
    #[serde(default)]
    pub shard: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When set, writes need `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Reads need the token too.
    pub protect_reads: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request or response message.
    pub max_message_bytes: usize,
    /// Requests served at once; more wait.
    pub max_concurrent_requests: usize,
    /// Deadline of one unary request; streams are not cut.
    pub request_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 << 20,
            max_concurrent_requests: 1024,
            request_timeout_ms: 30_000,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            limits: LimitsConfig::default(),
            dashboard_dir: PathBuf::from("web-demo/dist"),
            log_format: LogFormat::Text,
            cluster: None,
            replica: None,
            replication: ReplicationConfig::default(),
            sharding: ShardingConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Parses a TOML file; unknown keys are errors that name the key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Settings a node serving a sharded store cannot have: checked for
    /// `[sharding]`, and again when the data directory turns out to hold a
    /// sharded store (its `shards.layout` decides, whatever the config says).
    pub fn check_sharded(&self) -> Result<(), String> {
        if self.cluster.is_some() {
            return Err("[sharding] is for a single node; a cluster cuts its tree by cluster.shard_count".into());
        }
        if self.replica.is_some() {
            return Err("[sharding] and [replica] do not go together: a replica mirrors one unsharded store".into());
        }
        if self.storage.backend != crate::store::BackendKind::Redb {
            return Err(
                "[sharding] needs storage.backend = \"redb\"; with TiKV, run a [cluster] (cluster.shard_count)".into(),
            );
        }
        if self.replication.factor > 1 {
            return Err("replication.factor > 1 needs an unsharded store (replicas follow one root log)".into());
        }
        Ok(())
    }

    /// Settings that cannot go together.
    pub fn check(&self) -> Result<(), String> {
        if self.cluster.is_some() && self.replica.is_some() {
            return Err("a node is either a cluster member or a replica, not both".into());
        }
        if let Some(cluster) = &self.cluster {
            if !cluster.advertise.is_empty() {
                cluster.shard_bits()?;
            }
            if self.storage.backend == crate::store::BackendKind::Redb {
                return Err(
                    "[cluster] needs storage.backend = \"tikv\" or \"hybrid\" (nodes share one TiKV keyspace)".into(),
                );
            }
        }
        if self.replication.factor == 0 {
            return Err("replication.factor counts this node too: at least 1".into());
        }
        if self.replication.factor > 1 && (self.cluster.is_some() || self.replica.is_some()) {
            return Err(
                "replication.factor applies to a single node with replicas (a cluster's TiKV replicates itself)".into(),
            );
        }
        if self.replication.factor > 1 && self.storage.replication_feed_ops == 0 {
            return Err(
                "replication.factor > 1 needs storage.replication_feed_ops > 0 (replicas stream the feed)".into(),
            );
        }
        self.sharding.bits()?;
        if self.sharding.check_interval_ms == 0 {
            return Err("sharding.check_interval_ms must be at least 1".into());
        }
        if self.sharding.enabled() {
            self.check_sharded()?;
        }
        if let Some(replica) = &self.replica
            && !(replica.follow.starts_with("http://") || replica.follow.starts_with("https://"))
        {
            return Err(format!(
                "replica.follow must be an http:// or https:// URL, not {:?}",
                replica.follow
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_matches_the_defaults() {
        let sample = NodeConfig::from_toml(include_str!("../../../rustorium.example.toml")).expect("sample parses");
        let defaults = NodeConfig::default();
        assert_eq!(toml::to_string(&sample).unwrap(), toml::to_string(&defaults).unwrap());
    }

    #[test]
    fn cluster_and_replica_sections() {
        let cluster = "[storage]\nbackend = \"tikv\"\n[cluster]\nnode_id = \"a\"\nadvertise = \"http://a:7070\"\nshard_count = 8\nplacement_strategy = \"geographic\"\nlease_ttl = 2000\n";
        let config = NodeConfig::from_toml(cluster).unwrap();
        config.check().unwrap();
        let section = config.cluster.as_ref().unwrap();
        assert_eq!(section.shard_bits(), Ok(3));
        assert_eq!(section.lease_ttl, std::time::Duration::from_secs(2));
        let on_redb = NodeConfig::from_toml(&cluster.replace("tikv", "redb")).unwrap();
        assert!(on_redb.check().unwrap_err().contains("storage.backend"));
        let both = NodeConfig::from_toml(&format!("{cluster}[replica]\nfollow = \"http://p:1\"\n")).unwrap();
        assert!(both.check().unwrap_err().contains("not both"));
        let odd = NodeConfig::from_toml(&cluster.replace("shard_count = 8", "shard_count = 6")).unwrap();
        assert!(odd.check().unwrap_err().contains("power of two"));
        let replica = NodeConfig::from_toml("[replica]\nfollow = \"primary:7070\"\n").unwrap();
        assert!(replica.check().unwrap_err().contains("http://"));
    }

    #[test]
    fn sharding_section() {
        let config = NodeConfig::from_toml(
            "[sharding]\nshards = 4\ncheck_interval_ms = 250\n[sharding.auto]\nsplit_above_keys = 1000\nmax_depth = 4\n",
        )
        .unwrap();
        config.check().unwrap();
        assert_eq!(config.sharding.bits(), Ok(2));
        assert!(config.sharding.automatic() && config.sharding.enabled());
        assert_eq!(config.sharding.auto.split_above_keys, Some(1000));
        assert!(!NodeConfig::default().sharding.enabled());
        let odd = NodeConfig::from_toml("[sharding]\nshards = 3\n").unwrap();
        assert!(odd.check().unwrap_err().contains("power of two"));
        let on_tikv = NodeConfig::from_toml("[storage]\nbackend = \"tikv\"\n[sharding]\nshards = 2\n").unwrap();
        assert!(on_tikv.check().unwrap_err().contains("redb"));
        let replica = NodeConfig::from_toml("[sharding]\nshards = 2\n[replica]\nfollow = \"http://p:1\"\n").unwrap();
        assert!(replica.check().unwrap_err().contains("[replica]"));
        let typo = NodeConfig::from_toml("[sharding.auto]\nsplit_above_key = 3\n").unwrap_err();
        assert!(typo.contains("split_above_key"), "{typo}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = NodeConfig::from_toml("[storage]\nsync_mod = \"full\"\n").unwrap_err();
        assert!(error.contains("sync_mod"), "{error}");
        let error = NodeConfig::from_toml("[storage]\nsync_mode = \"sometimes\"\n").unwrap_err();
        assert!(error.contains("sometimes"), "{error}");
    }
}
