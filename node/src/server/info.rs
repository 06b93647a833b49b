//! `GET /api/info`: what the dashboard shows about the node, as JSON.

use crate::store::{KeyMode, Store, SyncMode};

#[derive(Debug, serde::Serialize)]
pub struct NodeInfo {
    pub backend: &'static str,
    pub sync_mode: &'static str,
    pub compression: bool,
    pub encryption: bool,
    /// Shards this node serves; the store is not sharded yet, so one.
    pub shards: u32,
    pub key_mode: &'static str,
    pub max_levels: u16,
    pub version: u64,
    pub keys: u64,
    pub server_version: &'static str,
}

impl NodeInfo {
    pub fn of(store: &Store) -> Self {
        let config = store.config();
        Self {
            backend: store.backend_name(),
            sync_mode: match config.sync_mode {
                SyncMode::None => "none",
                SyncMode::Async => "async",
                SyncMode::Full => "full",
            },
            compression: config.compression_enabled,
            encryption: config.encryption_enabled,
            shards: 1,
            key_mode: match config.key_mode {
                KeyMode::Bytes => "bytes",
                KeyMode::Field => "field",
            },
            max_levels: store.max_levels(),
            version: store.root().1,
            keys: store.keys(),
            server_version: env!("CARGO_PKG_VERSION"),
        }
    }
}
