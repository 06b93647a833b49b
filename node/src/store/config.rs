//! Configuration of an embedded store: the seed's `StorageConfig`, extended.

use std::path::PathBuf;
use std::time::Duration;

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// No fsync until shutdown: a crash loses every write since the last
    /// clean shutdown (or explicit `sync`).
    None,
    /// Commits are not fsynced; every `async_flush_interval` one is (the next
    /// commit, or a flush when idle). A crash loses at most that window plus
    /// the commit carrying the flush.
    Async,
    /// Every commit is fsynced before any writer in its batch is answered.
    Full,
}

impl SyncMode {
    /// The name used in settings, flags and status answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Async => "async",
            Self::Full => "full",
        }
    }
}

impl std::str::FromStr for SyncMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::None, Self::Async, Self::Full]
            .into_iter()
            .find(|mode| mode.name() == s)
            .ok_or_else(|| format!("sync mode is none, async or full, not {s:?}"))
    }
}

/// Where the rows live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Embedded Redb under `path` (one machine).
    #[default]
    Redb,
    /// A TiKV cluster (`[storage.tikv]`); several nodes may share a tree.
    Tikv,
    /// TiKV as the source of truth with a Redb cache under `path`.
    Hybrid,
}

/// How keys and values become tree leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// Keys and values are arbitrary bytes, mapped to field elements by the
    /// bytes-mode sponge (`rustorium_core::bytes`).
    Bytes,
    /// Keys and values are field elements, 32 bytes little-endian, exactly as
    /// iden3: the leaf is `Poseidon(key, value, 1)`.
    Field,
}

/// Where the encryption key comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A file holding 64 hex characters (32 bytes).
    File(PathBuf),
    /// An environment variable holding 64 hex characters.
    Env(String),
}

/// Everything an embedded store needs to open.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the database (Redb) or of the local cache (hybrid);
    /// created if missing.
    pub path: PathBuf,
    pub backend: BackendKind,
    /// The TiKV cluster, for `backend = "tikv"` or `"hybrid"`.
    pub tikv: crate::store::backend::tikv::TikvConfig,
    /// Writes that would grow the database past this many bytes fail with
    /// `StoreError::StorageFull`; 0 means no limit.
    pub max_size: u64,
    /// zstd-compress values of at least `compression_threshold` bytes.
    pub compression_enabled: bool,
    pub compression_threshold: usize,
    pub compression_level: i32,
    /// Encrypt values and pages at rest (XChaCha20-Poly1305).
    pub encryption_enabled: bool,
    pub encryption_key: Option<KeySource>,
    pub sync_mode: SyncMode,
    /// For `SyncMode::Async`: how often commits are made durable.
    #[serde(with = "millis")]
    pub async_flush_interval: Duration,
    pub key_mode: KeyMode,
    /// Leaves sit at depth <= max_levels - 1; fixed when the store is created.
    pub max_levels: u16,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Group commit: the most ops one commit takes.
    pub max_batch_ops: usize,
    /// Group commit: how long the committer waits for more writers after
    /// the first one; zero takes only what is already queued.
    #[serde(with = "millis")]
    pub max_batch_delay: Duration,
    /// Writers that may wait in the queue before `write` waits for room.
    pub queue_depth: usize,
    /// How many versions stay readable (and provable); at least 2.
    pub retained_versions: u64,
    /// Pages kept in memory (upper levels first); about 3 KiB each.
    pub cache_pages: usize,
    /// Group commit: write one batch's rows (on a writer thread) while the
    /// next batch is applied to the tree. Writers are still answered only
    /// after their own batch committed.
    pub pipelined_commits: bool,
    /// Keep the ops of recent commits, up to this many, for replicas to
    /// pull (`Store::batches_since`); 0 keeps none.
    pub replication_feed_ops: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data"),
            backend: BackendKind::Redb,
            tikv: crate::store::backend::tikv::TikvConfig::default(),
            max_size: 0,
            compression_enabled: true,
            compression_threshold: 256,
            compression_level: 3,
            encryption_enabled: false,
            encryption_key: None,
            sync_mode: SyncMode::Full,
            async_flush_interval: Duration::from_millis(100),
            key_mode: KeyMode::Bytes,
            max_levels: 160,
            max_key_bytes: 4096,
            max_value_bytes: 1 << 20,
            max_batch_ops: 8192,
            max_batch_delay: Duration::ZERO,
            queue_depth: 65_536,
            retained_versions: 1000,
            cache_pages: 32_768,
            pipelined_commits: true,
            replication_feed_ops: 0,
        }
    }
}

impl StorageConfig {
    /// A config for `path` with every other field at its default.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}

pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::SyncMode;

    #[test]
    fn sync_mode_names_parse_back_and_others_are_refused() {
        for mode in [SyncMode::None, SyncMode::Async, SyncMode::Full] {
            assert_eq!(mode.name().parse::<SyncMode>(), Ok(mode));
        }
        let error = "sometimes".parse::<SyncMode>().unwrap_err();
        assert!(
            error.contains("none, async or full") && error.contains("sometimes"),
            "{error}"
        );
    }
}
