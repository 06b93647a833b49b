//! The embedded verifiable store: `Store::open(StorageConfig)`, then writes
//! and reads that return proofs against the root they committed to or read at.
//!
//! Writes go through the group committer (`committer.rs`); reads open a
//! backend snapshot and walk the tree of the version they read. Every version
//! is a root-log entry; the last `retained_versions` stay provable.

pub mod autoshard;
pub mod backend;
pub mod codec;
mod committer;
pub mod config;
pub mod conformance;
pub mod diff;
pub mod error;
pub mod feed;
pub mod keys;
pub mod metrics;
mod pages;
pub mod repair;
pub mod replica;
pub mod sharded;
pub mod verify_db;

pub use backend::{Backend, BackendReader};
pub use committer::Committed;
pub use config::{BackendKind, KeyMode, KeySource, StorageConfig, SyncMode};
pub use error::{Result, StoreError};
pub use keys::RootRecord;
pub use metrics::StorageMetrics;

use backend::any::AnyBackend;
use backend::{Table, WriteBatch};
use codec::RecordCodec;
use committer::{Command, PreparedOp};
use keys::{escape_key, unescape_key, versioned};
use pages::{PageCache, VersionedPages};
use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::field::{fr_from_le_bytes, fr_to_le_bytes};
use rustorium_core::proof::Proof;
use rustorium_core::tree::SparseMerkleTree;
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Batches at least this large hash their keys and values in parallel.
const PARALLEL_PREPARE_MIN_OPS: usize = 256;

/// One op of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// A committed write with its proof against the new root.
#[derive(Clone, Debug)]
pub struct WriteResult {
    /// Whether the key held a value before this write.
    pub existed: bool,
    pub proof: Proof,
    pub root: Fr,
    pub version: u64,
    pub timestamp: SystemTime,
}

/// A key's value (if any) at one version, with a membership or
/// non-membership proof against that version's root.
#[derive(Clone, Debug)]
pub struct ProvenRead {
    pub value: Option<Vec<u8>>,
    pub proof: Proof,
    pub root: Fr,
    pub version: u64,
    pub timestamp: SystemTime,
}

/// The seed's `ReadResult`: a present key's value and proof.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub value: Vec<u8>,
    pub proof: Proof,
    pub root: Fr,
    pub version: u64,
    pub timestamp: SystemTime,
}

/// A tree key's lookup (value element and proof) at one version.
#[derive(Clone, Debug)]
pub struct ElementProof {
    pub lookup: rustorium_core::tree::Lookup,
    pub root: Fr,
    pub version: u64,
}

/// A committed batch.
#[derive(Clone, Debug)]
pub struct BatchResult {
    pub root: Fr,
    pub version: u64,
    pub timestamp: SystemTime,
    /// One proof per op, in op order, when requested.
    pub proofs: Vec<Proof>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub tree: SparseMerkleTree,
    pub version: u64,
    pub timestamp_nanos: u64,
    pub keys: u64,
    /// The writer epoch of the head's root record.
    pub epoch: u64,
}

pub(crate) struct Shared<B: Backend> {
    pub backend: B,
    pub config: StorageConfig,
    pub codec: RecordCodec,
    pub cache: PageCache,
    pub metrics: StorageMetrics,
    pub roots: tokio::sync::broadcast::Sender<RootRecord>,
    /// Recent committed batches, for replicas (`replication_feed_ops`).
    pub feed: feed::Feed,
    head: RwLock<Head>,
    /// When the head was last checked against a shared backend.
    head_checked: std::sync::Mutex<Instant>,
    /// The epoch this store commits under (`Store::claim`); a head with a
    /// higher one means another owner took over, and commits are refused.
    pub writer_epoch: std::sync::atomic::AtomicU64,
}

impl<B: Backend> Shared<B> {
    pub fn head(&self) -> Head {
        *self.head.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `head` current unless a newer one already is (another node's
    /// commit adopted meanwhile).
    pub fn set_head(&self, head: Head) {
        let mut current = self.head.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if head.version > current.version {
            *current = head;
        }
    }

    /// Samples the gauges that depend on the backend and the caches.
    pub fn sample_metrics(&self) {
        self.metrics.sample(self.backend.disk_bytes(), self.cache.hit_ratio());
        self.metrics.sample_backend_cache(self.backend.cache_counts());
    }

    /// Adopts the backend's latest root record (read at a fresh snapshot) if another writer made it
    /// newer than the head: the page cache (which holds the latest pages as
    /// of the head) starts over at that version. Returns whether it moved.
    pub fn adopt_latest(&self) -> Result<bool> {
        let reader = self.backend.latest_reader()?;
        let Some((_, record)) = reader.last_in(Table::Roots, &0u64.to_be_bytes(), &u64::MAX.to_be_bytes())? else {
            return Err(StoreError::Corrupt("no root record".into()));
        };
        let record = RootRecord::decode(&record)?;
        let mut head = self.head.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if record.version <= head.version {
            return Ok(false);
        }
        let tree = SparseMerkleTree::with_root::<StoreError>(record.root, self.config.max_levels)
            .map_err(|e| StoreError::Tree(e.to_string()))?;
        self.cache.reset(record.version);
        *head = Head {
            tree,
            version: record.version,
            timestamp_nanos: record.timestamp_nanos,
            keys: record.keys,
            epoch: record.epoch,
        };
        drop(head);
        self.metrics.version.set(record.version as i64);
        self.metrics.adopted_versions_total.inc();
        tracing::debug!(version = record.version, "adopted another writer's head");
        let _ = self.roots.send(record);
        Ok(true)
    }

    /// The oldest version still readable once `version` is current.
    pub fn oldest_retained(&self, version: u64) -> u64 {
        (version + 1).saturating_sub(self.config.retained_versions)
    }

    /// The head and a snapshot that holds at least the head's version: the
    /// committer replaces the head only after its commit, and never runs two
    /// commits ahead of a reader that holds the head lock.
    ///
    /// On a shared backend, a head older than the backend's refresh
    /// interval is first checked against the latest root record, so reads
    /// see other nodes' commits within that interval.
    fn snapshot(&self) -> Result<(Head, B::Reader)> {
        if let Some(interval) = self.backend.shared() {
            // One reader checks at a time; the others go on with the head
            // they have rather than wait on a network call.
            if let Ok(mut checked) = self.head_checked.try_lock()
                && checked.elapsed() >= interval
            {
                self.adopt_latest()?;
                *checked = Instant::now();
            }
        }
        // The reader is taken after the head, so it sees at least the head.
        let guard = self.head.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let reader = self.backend.reader()?;
        Ok((*guard, reader))
    }
}

/// Size of a proof in the iden3 compact form, as the seed's traces report it.
fn proof_bytes(proof: &Proof) -> usize {
    proof.to_compact().map_or(0, |bytes| bytes.len())
}

fn time_of(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// Nanoseconds since the Unix epoch, as root records and answers carry
/// time (0 for a clock set before 1970).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// An open store. Cheap to clone; all clones share one committer.
pub struct Store<B: Backend = AnyBackend> {
    shared: Arc<Shared<B>>,
    commands: std::sync::mpsc::SyncSender<Command>,
    committer: Arc<CommitterHandle>,
}

impl<B: Backend> Store<B> {
    /// Whether `other` is a handle to this very store (not just one with
    /// the same contents).
    pub fn is_same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<B: Backend> Clone for Store<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            commands: self.commands.clone(),
            committer: self.committer.clone(),
        }
    }
}

struct CommitterHandle {
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<B: Backend> std::fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.shared.backend.name())
            .field("path", &self.shared.config.path)
            .finish()
    }
}

impl Store<AnyBackend> {
    /// Opens the store the config describes, on the backend it names.
    pub fn open(config: StorageConfig) -> Result<Self> {
        let backend = AnyBackend::open(&config)?;
        Self::open_with(backend, config)
    }
}

impl<B: Backend> Store<B> {
    /// Opens a store over any backend.
    pub fn open_with(backend: B, config: StorageConfig) -> Result<Self> {
        if config.retained_versions < 2 {
            return Err(StoreError::Config("retained_versions must be at least 2".into()));
        }
        if config.max_batch_ops == 0 || config.queue_depth == 0 {
            return Err(StoreError::Config(
                "max_batch_ops and queue_depth must be positive".into(),
            ));
        }
        let codec = RecordCodec::new(&config)?;
        let head = initialize(&backend, &config, &codec)?;
        let shared = Arc::new(Shared {
            cache: PageCache::new(config.cache_pages, head.version),
            metrics: StorageMetrics::new(),
            roots: tokio::sync::broadcast::channel(1024).0,
            feed: feed::Feed::default(),
            head: RwLock::new(head),
            head_checked: std::sync::Mutex::new(Instant::now()),
            writer_epoch: std::sync::atomic::AtomicU64::new(head.epoch),
            backend,
            config,
            codec,
        });
        shared.metrics.version.set(head.version as i64);
        let (commands, receiver) = std::sync::mpsc::sync_channel(shared.config.queue_depth);
        let committer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rustorium-committer".into())
            .spawn(move || committer::run(committer_shared, receiver))
            .map_err(|e| StoreError::Config(format!("cannot start the committer thread: {e}")))?;
        Ok(Self {
            shared,
            commands,
            committer: Arc::new(CommitterHandle {
                thread: std::sync::Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn config(&self) -> &StorageConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &StorageMetrics {
        &self.shared.metrics
    }

    /// Samples the gauges (disk, memory, cache hit ratio) now.
    pub fn refresh_metrics(&self) {
        self.shared.sample_metrics();
    }

    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name()
    }

    /// The current root, version and commit time.
    pub fn root(&self) -> (Fr, u64, SystemTime) {
        let head = self.shared.head();
        (head.tree.root(), head.version, time_of(head.timestamp_nanos))
    }

    pub fn max_levels(&self) -> u16 {
        self.shared.config.max_levels
    }

    /// Maps a user key to its tree key, checking limits and (field mode) encoding.
    pub fn key_field(&self, key: &[u8]) -> Result<Fr> {
        let max = self.shared.config.max_key_bytes;
        if key.len() > max {
            return Err(StoreError::KeyTooLarge { got: key.len(), max });
        }
        self.leaf_element("key", key)
    }

    /// Maps a value to its leaf value, checking limits and (field mode) encoding.
    pub fn value_field(&self, value: &[u8]) -> Result<Fr> {
        let max = self.shared.config.max_value_bytes;
        if value.len() > max {
            return Err(StoreError::ValueTooLarge { got: value.len(), max });
        }
        self.leaf_element("value", value)
    }

    fn leaf_element(&self, what: &'static str, bytes: &[u8]) -> Result<Fr> {
        match self.shared.config.key_mode {
            KeyMode::Bytes => Ok(bytes_to_field(bytes)),
            KeyMode::Field => fr_from_le_bytes(bytes).map_err(|source| StoreError::NotAFieldElement { what, source }),
        }
    }

    fn prepare(&self, op: &BatchOp) -> Result<PreparedOp> {
        Ok(match op {
            BatchOp::Put { key, value } => PreparedOp {
                key: key.clone(),
                key_field: self.key_field(key)?,
                value: Some((value.clone(), self.value_field(value)?)),
            },
            BatchOp::Delete { key } => PreparedOp {
                key: key.clone(),
                key_field: self.key_field(key)?,
                value: None,
            },
        })
    }

    async fn submit(&self, ops: Vec<PreparedOp>, want_proofs: bool) -> Result<Arc<Committed>> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Write {
            ops,
            want_proofs,
            queued: Instant::now(),
            reply,
        };
        let sender = self.commands.clone();
        // The queue is bounded: a full queue parks this writer on a blocking
        // thread instead of the async runtime.
        match sender.try_send(command) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(command)) => {
                tokio::task::spawn_blocking(move || sender.send(command))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes `key = value` and returns its membership proof against the new root.
    #[tracing::instrument(skip(self, key, value), fields(key_bytes = key.len(), value_bytes = value.len()))]
    pub async fn write_with_proof(&self, key: &[u8], value: &[u8]) -> Result<WriteResult> {
        let op = self.prepare(&BatchOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        })?;
        self.commit_one_with_proof(op).await
    }

    /// Commits one prepared op and returns its proof against the new root.
    async fn commit_one_with_proof(&self, op: PreparedOp) -> Result<WriteResult> {
        let field = fr_to_le_bytes(&op.key_field);
        let key = op.key.clone();
        let committed = self.submit(vec![op], true).await?;
        let lookup = committed
            .proofs
            .get(&field)
            .ok_or_else(|| StoreError::Corrupt("committer returned no proof".into()))?;
        tracing::debug!(
            version = committed.version,
            depth = lookup.proof.depth(),
            proof_bytes = proof_bytes(&lookup.proof),
            "write committed"
        );
        Ok(WriteResult {
            existed: committed.existed.contains(&key),
            proof: lookup.proof.clone(),
            root: committed.root,
            version: committed.version,
            timestamp: committed.timestamp,
        })
    }

    /// Writes `key = value`; returns once committed per the sync mode.
    pub async fn write(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        let op = self.prepare(&BatchOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        })?;
        Ok(self.submit(vec![op], false).await?.version)
    }

    /// Deletes `key` (a no-op when absent); returns the proof of its absence.
    pub async fn delete(&self, key: &[u8]) -> Result<WriteResult> {
        let op = self.prepare(&BatchOp::Delete { key: key.to_vec() })?;
        self.commit_one_with_proof(op).await
    }

    /// Puts and deletes committed atomically as one version.
    pub async fn write_batch(&self, ops: &[BatchOp], want_proofs: bool) -> Result<BatchResult> {
        if ops.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        if ops.len() > self.shared.config.max_batch_ops {
            return Err(StoreError::BatchTooLarge {
                got: ops.len(),
                max: self.shared.config.max_batch_ops,
            });
        }
        let prepared = if ops.len() < PARALLEL_PREPARE_MIN_OPS {
            ops.iter().map(|op| self.prepare(op)).collect::<Result<Vec<_>>>()?
        } else {
            // Hashing keys and values is most of a large batch's CPU work:
            // spread it over all cores, off the async runtime.
            let store = self.clone();
            let ops = ops.to_vec();
            tokio::task::spawn_blocking(move || {
                use rayon::prelude::*;
                ops.par_iter().map(|op| store.prepare(op)).collect::<Result<Vec<_>>>()
            })
            .await
            .map_err(|_| StoreError::Closed)??
        };
        let fields: Vec<[u8; 32]> = prepared.iter().map(|op| fr_to_le_bytes(&op.key_field)).collect();
        let committed = self.submit(prepared, want_proofs).await?;
        let proofs = if want_proofs {
            fields
                .iter()
                .map(|f| {
                    committed
                        .proofs
                        .get(f)
                        .map(|l| l.proof.clone())
                        .ok_or_else(|| StoreError::Corrupt("committer returned no proof".into()))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(BatchResult {
            root: committed.root,
            version: committed.version,
            timestamp: committed.timestamp,
            proofs,
        })
    }

    /// Takes over writing under `epoch` (higher than any epoch before, e.g.
    /// a lease's): adopts the latest head and commits a version with no ops
    /// under the new epoch. From then on an older writer that meets this
    /// version is fenced (`StoreError::Fenced`), and every version it
    /// committed before is below this one. Returns the fencing version.
    pub async fn claim(&self, epoch: u64) -> Result<u64> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.adopt_latest())
            .await
            .map_err(|_| StoreError::Closed)??;
        self.shared
            .writer_epoch
            .fetch_max(epoch, std::sync::atomic::Ordering::SeqCst);
        Ok(self.submit(Vec::new(), false).await?.version)
    }

    /// The epoch this store commits under.
    pub fn writer_epoch(&self) -> u64 {
        self.shared.writer_epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The epoch of the head's root record.
    pub fn head_epoch(&self) -> u64 {
        self.shared.head().epoch
    }

    /// Adopts another writer's newer head, if a shared backend has one.
    pub async fn refresh_head(&self) -> Result<bool> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.adopt_latest())
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Makes every acknowledged write durable now (whatever the sync mode).
    pub async fn sync(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command::Sync { reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The value of `key` (if present) with its proof at the current version.
    pub async fn read(&self, key: &[u8]) -> Result<Option<ReadResult>> {
        let read = self.read_proven(key, None).await?;
        Ok(read.value.map(|value| ReadResult {
            value,
            proof: read.proof,
            root: read.root,
            version: read.version,
            timestamp: read.timestamp,
        }))
    }

    /// The value (or absence) of `key` with a membership or non-membership
    /// proof, at `version` (the current one when `None`).
    #[tracing::instrument(skip(self, key), fields(key_bytes = key.len()))]
    pub async fn read_proven(&self, key: &[u8], version: Option<u64>) -> Result<ProvenRead> {
        let key_field = self.key_field(key)?;
        let shared = self.shared.clone();
        let key = key.to_vec();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || read_blocking(&shared, &key, key_field, version))
            .await
            .map_err(|_| StoreError::Closed)?;
        match &result {
            Ok(read) => {
                self.shared.metrics.reads_total.inc();
                self.shared
                    .metrics
                    .read_latency
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    version = read.version,
                    depth = read.proof.depth(),
                    proof_bytes = proof_bytes(&read.proof),
                    proof_micros = started.elapsed().as_micros() as u64,
                    found = read.value.is_some(),
                    "read"
                );
            }
            Err(_) => self.shared.metrics.errors_total.inc(),
        }
        result
    }

    /// A proof for a tree key (a field element, not a user key) against the
    /// current head: what putting shards together needs (`sharded.rs`).
    pub async fn prove_element(&self, key: Fr) -> Result<ElementProof> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let (head, reader) = shared.snapshot()?;
            let view = VersionedPages::new(&reader, head.version, &shared.cache, &shared.codec);
            let lookup = head
                .tree
                .prove(&view, &key)
                .map_err(|e| StoreError::Tree(e.to_string()))?;
            Ok(ElementProof {
                lookup,
                root: head.tree.root(),
                version: head.version,
            })
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// The committed batches after `version`, oldest first, from the
    /// replication feed; `Err` names the oldest version still there when
    /// some were already dropped (the reader must resync).
    pub fn batches_since(&self, version: u64) -> std::result::Result<Vec<Arc<feed::CommittedBatch>>, feed::FeedGap> {
        self.shared.feed.since(version, self.shared.head().version)
    }

    /// `read_proven` at a retained historical version.
    pub async fn read_at(&self, key: &[u8], version: u64) -> Result<ProvenRead> {
        self.read_proven(key, Some(version)).await
    }

    /// Checks a proof for `key` holding `value` (or absent) against the current root.
    pub fn verify_proof(&self, key: &[u8], value: Option<&[u8]>, proof: &Proof) -> Result<bool> {
        let key_field = self.key_field(key)?;
        let value_field = value.map(|v| self.value_field(v)).transpose()?;
        let (root, _, _) = self.root();
        Ok(proof
            .verify(&root, &key_field, value_field.as_ref(), self.max_levels())
            .is_ok())
    }

    /// Root-log entries with versions in `range`, oldest first, at most `limit`.
    pub async fn roots(&self, range: std::ops::RangeInclusive<u64>, limit: usize) -> Result<Vec<RootRecord>> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let (_, reader) = shared.snapshot()?;
            let start = range.start().to_be_bytes();
            let end = range.end().to_be_bytes();
            reader
                .range(Table::Roots, Bound::Included(&start), Bound::Included(&end), limit)?
                .into_iter()
                .map(|(_, record)| RootRecord::decode(&record))
                .collect()
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Live keys in `[start, end)` (user-key byte order) at the current
    /// version, with their values, at most `limit`.
    pub async fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let shared = self.shared.clone();
        let start = escape_key(start);
        let end = end.map(escape_key);
        tokio::task::spawn_blocking(move || scan_blocking(&shared, start, end, limit, None))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// `scan` as of a retained `version`.
    pub async fn scan_at(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        version: u64,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (oldest, latest) = (self.oldest_version(), self.root().1);
        if version < oldest || version > latest {
            return Err(StoreError::VersionNotRetained {
                requested: version,
                oldest,
                latest,
            });
        }
        let shared = self.shared.clone();
        let start = escape_key(start);
        let end = end.map(escape_key);
        tokio::task::spawn_blocking(move || scan_blocking(&shared, start, end, limit, Some(version)))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// New root-log entries as they commit. A subscriber that falls more than
    /// 1024 versions behind gets `RecvError::Lagged`.
    pub fn subscribe_roots(&self) -> tokio::sync::broadcast::Receiver<RootRecord> {
        self.shared.roots.subscribe()
    }

    /// Live keys at the current version.
    pub fn keys(&self) -> u64 {
        self.shared.head().keys
    }

    /// The oldest version whose proofs are still available.
    pub fn oldest_version(&self) -> u64 {
        let head = self.shared.head();
        self.shared.oldest_retained(head.version)
    }

    /// Stops accepting writes, commits what is queued, flushes, and waits
    /// for the committer. Other clones of this store get `Closed` afterwards.
    pub fn shutdown(self) {
        let Self {
            shared,
            commands,
            committer,
        } = self;
        drop(commands);
        drop(shared);
        if Arc::strong_count(&committer) == 1
            && let Some(thread) = committer
                .thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        {
            let _ = thread.join();
        }
    }
}

fn read_blocking<B: Backend>(
    shared: &Shared<B>,
    key: &[u8],
    key_field: Fr,
    version: Option<u64>,
) -> Result<ProvenRead> {
    let (head, reader) = shared.snapshot()?;
    let (tree, version, timestamp_nanos) = match version {
        None => (head.tree, head.version, head.timestamp_nanos),
        Some(v) => {
            let oldest = shared.oldest_retained(head.version);
            if v < oldest || v > head.version {
                return Err(StoreError::VersionNotRetained {
                    requested: v,
                    oldest,
                    latest: head.version,
                });
            }
            let record = reader
                .get(Table::Roots, &v.to_be_bytes())?
                .ok_or_else(|| StoreError::Corrupt(format!("no root record for version {v}")))?;
            let record = RootRecord::decode(&record)?;
            let tree = SparseMerkleTree::with_root::<StoreError>(record.root, shared.config.max_levels)
                .map_err(|e| StoreError::Tree(e.to_string()))?;
            (tree, v, record.timestamp_nanos)
        }
    };
    let escaped = escape_key(key);
    let value_lookup = (Table::Values, versioned(&escaped, 0), versioned(&escaped, version));
    let view = VersionedPages::new(&reader, version, &shared.cache, &shared.codec);
    let started = Instant::now();
    let value_row = if shared.backend.shared().is_some() {
        // Remote backend: the value and the pages on the key's path in one
        // batched call, one round trip. A leaf sits about log2(keys) deep;
        // pages down to there exist on nearly every path, and a deeper one
        // is loaded by the walk itself (asking for more would fetch pages
        // that do not exist on most paths).
        let expected_depth = (64 - head.keys.leading_zeros()) as usize;
        let depth = expected_depth.min(usize::from(shared.config.max_levels));
        view.prefetch_path(&key_field, depth, std::slice::from_ref(&value_lookup))?
            .pop()
            .flatten()
    } else {
        reader.last_in(value_lookup.0, &value_lookup.1, &value_lookup.2)?
    };
    let value = match value_row {
        Some((row, record)) if !record.is_empty() => Some(shared.codec.decode(Table::Values, &row, &record)?),
        _ => None,
    };
    let lookup = tree
        .prove(&view, &key_field)
        .map_err(|e| StoreError::Tree(e.to_string()))?;
    shared
        .metrics
        .proof_generation_time
        .observe(started.elapsed().as_secs_f64());
    if lookup.value.is_some() != value.is_some() {
        return Err(StoreError::Corrupt(format!(
            "value table and tree disagree on a key at version {version}"
        )));
    }
    Ok(ProvenRead {
        value,
        proof: lookup.proof,
        root: tree.root(),
        version,
        timestamp: time_of(timestamp_nanos),
    })
}

fn scan_blocking<B: Backend>(
    shared: &Shared<B>,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    limit: usize,
    at: Option<u64>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    const PAGE_ROWS: usize = 1024;
    let (head, reader) = shared.snapshot()?;
    // A retained older version reads the rows it had (superseded rows stay
    // until their version leaves the window).
    let as_of = at.unwrap_or(head.version).min(head.version);
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut cursor = Bound::Included(start);
    // The latest entry (<= head version) of the key being grouped.
    let mut current: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = None;
    let flush = |current: &mut Option<(Vec<u8>, Vec<u8>, Vec<u8>)>, out: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<()> {
        if let Some((key, row, record)) = current.take()
            && !record.is_empty()
        {
            out.push((key, shared.codec.decode(Table::Values, &row, &record)?));
        }
        Ok(())
    };
    'pages: loop {
        let start_bound = match &cursor {
            Bound::Included(k) => Bound::Included(k.as_slice()),
            Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows = reader.range(Table::Values, start_bound, end_bound, PAGE_ROWS)?;
        let done = rows.len() < PAGE_ROWS;
        for (row, record) in rows {
            let (key, version) = unescape_key(&row)
                .and_then(|(k, rest)| Some((k, u64::from_be_bytes(rest.try_into().ok()?))))
                .ok_or_else(|| StoreError::Corrupt("malformed value key".into()))?;
            if current.as_ref().is_some_and(|(k, _, _)| *k != key) {
                flush(&mut current, &mut out)?;
                if out.len() >= limit {
                    break 'pages;
                }
            }
            if version <= as_of {
                current = Some((key, row.clone(), record));
            }
            cursor = Bound::Excluded(row);
        }
        if done {
            break;
        }
    }
    if out.len() < limit {
        flush(&mut current, &mut out)?;
    }
    out.truncate(limit);
    Ok(out)
}

/// Checks or writes the store-wide settings and returns the current head.
fn initialize<B: Backend>(backend: &B, config: &StorageConfig, codec: &RecordCodec) -> Result<Head> {
    let reader = backend.reader()?;
    let settings = format!("max_levels={} key_mode={:?}", config.max_levels, config.key_mode);
    match reader.get(Table::Meta, b"format")? {
        None => {
            let tree = SparseMerkleTree::new(config.max_levels).map_err(|e| StoreError::Config(e.to_string()))?;
            let mut batch = WriteBatch::default();
            batch.put(Table::Meta, b"format".to_vec(), backend.format().to_vec());
            batch.put(Table::Meta, b"settings".to_vec(), settings.into_bytes());
            if let Some(check) = codec.key_check()? {
                batch.put(Table::Meta, b"key_check".to_vec(), check);
            }
            let now = unix_nanos(SystemTime::now());
            let record = RootRecord {
                version: 0,
                root: tree.root_node(),
                timestamp_nanos: now,
                op_count: 0,
                keys: 0,
                epoch: 0,
            };
            batch.put(Table::Roots, 0u64.to_be_bytes().to_vec(), record.encode());
            drop(reader);
            backend.commit(batch, true)?;
            Ok(Head {
                tree,
                version: 0,
                timestamp_nanos: now,
                keys: 0,
                epoch: 0,
            })
        }
        Some(format) if format != backend.format() => Err(StoreError::Corrupt(format!(
            "unknown store format {:?}",
            String::from_utf8_lossy(&format)
        ))),
        Some(_) => {
            let stored = reader.get(Table::Meta, b"settings")?.unwrap_or_default();
            if stored != settings.as_bytes() {
                return Err(StoreError::ConfigMismatch {
                    stored: String::from_utf8_lossy(&stored).into_owned(),
                    configured: settings,
                });
            }
            match (reader.get(Table::Meta, b"key_check")?, codec.encrypted()) {
                (Some(check), true) if !codec.matches_key_check(&check) => {
                    return Err(StoreError::WrongEncryptionKey {
                        path: config.path.clone(),
                    });
                }
                (Some(_), false) => {
                    return Err(StoreError::ConfigMismatch {
                        stored: "encryption enabled".into(),
                        configured: "encryption disabled".into(),
                    });
                }
                (None, true) => {
                    return Err(StoreError::ConfigMismatch {
                        stored: "encryption disabled".into(),
                        configured: "encryption enabled".into(),
                    });
                }
                _ => {}
            }
            let (_, record) = reader
                .last_in(Table::Roots, &0u64.to_be_bytes(), &u64::MAX.to_be_bytes())?
                .ok_or_else(|| StoreError::Corrupt("no root record".into()))?;
            let record = RootRecord::decode(&record)?;
            let tree = SparseMerkleTree::with_root::<StoreError>(record.root, config.max_levels)
                .map_err(|e| StoreError::Tree(e.to_string()))?;
            Ok(Head {
                tree,
                version: record.version,
                timestamp_nanos: record.timestamp_nanos,
                keys: record.keys,
                epoch: record.epoch,
            })
        }
    }
}
