//! Multi-node concerns on top of the store: several nodes share one TiKV
//! keyspace, each shard has one owner at a time (a lease in TiKV, fenced by
//! an epoch in the shard's root log), placement decides who, and any node
//! forwards writes to the owner. Replicas follow a primary over the
//! network (`follow`).

pub mod config;
pub mod follow;
pub mod forward;
pub mod load;
pub mod node;
pub mod placement;
pub mod registry;

pub use config::ClusterConfig;
pub use node::{ClusterError, ClusterNode, ShardPlacement};
