//! Async verified replication: a replica store follows a primary by pulling
//! its committed batches (a `ReplicationSource`: the primary's `Store` in
//! process, or its `Replicate` stream over gRPC) and applying each as one
//! local commit, accepted only if the replica's new root equals the
//! primary's root for that version. It serves reads with proofs locally and
//! says which primary version it mirrors; the distance to the primary's
//! head is its lag (`rustorium_store_replication_lag_versions`).
//!
//! A replica that was cut off catches up from the feed once the primary is
//! reachable again; one that missed more than the feed keeps, or whose root
//! stopped matching, resyncs: it rewrites its live keys to the primary's at
//! one version and checks the root again.

use crate::store::backend::{Backend, KeyValue};
use crate::store::diff::{PageSource, StorePages, diff_trees};
use crate::store::error::{Result, StoreError};
use crate::store::feed::{CommittedBatch, FeedGap};
use crate::store::{BatchOp, Store};
use rustorium_core::Fr;
use rustorium_core::field::fr_to_le_bytes;
use rustorium_core::tree::{Node, Page, PageId};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Keys per batch when a replica resyncs.
const RESYNC_BATCH: usize = 4096;
/// How often an idle replica looks for new batches.
const POLL: Duration = Duration::from_millis(5);
/// How often a replica repeats its acknowledgement while idle (a primary
/// forgets replicas it has not heard from in a minute).
const ACK_REFRESH: Duration = Duration::from_secs(10);
/// How long a replica waits before calling an unreachable primary again.
const RECONNECT: Duration = Duration::from_millis(200);

/// Every live entry at one version, with that version and its root.
pub type Snapshot = (Vec<KeyValue>, u64, Fr);

/// Where a replica gets the primary's batches from.
pub trait ReplicationSource: Send + Sync + 'static {
    /// The primary's current version, as last learned.
    fn head(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The committed batches after `version`, or the gap when the feed no
    /// longer holds them. `Err`: the primary could not be reached.
    fn batches_since(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<std::result::Result<Vec<Arc<CommittedBatch>>, FeedGap>>> + Send;
    /// Every live key and value at one version, with that version and root.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot>> + Send;
    /// The primary's current version and root node (where a Merkle diff
    /// starts).
    fn root_node(&self) -> impl Future<Output = Result<(u64, Node)>> + Send;
    /// Pages of the primary's tree at a retained version.
    fn pages(&self, version: u64, ids: Vec<PageId>) -> impl Future<Output = Result<Vec<Option<Arc<Page>>>>> + Send;
    /// The entries at a retained version whose leaf keys are `leaf_keys`.
    fn entries(
        &self,
        version: u64,
        leaf_keys: BTreeSet<[u8; 32]>,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, Vec<u8>)>>> + Send;
    /// Tells the primary this replica verified `version` (its root is
    /// `root`); whether the primary took it. In process, the primary reads
    /// the replica's status instead.
    fn acknowledge(&self, version: u64, root: Fr) -> impl Future<Output = bool> + Send {
        let _ = (version, root);
        async { true }
    }
}

/// A source's pages at one version, for a diff walk or a repair.
#[derive(Debug)]
pub struct SourcePages<'a, S: ReplicationSource> {
    pub source: &'a S,
    pub version: u64,
}

impl<S: ReplicationSource> PageSource for SourcePages<'_, S> {
    async fn pages(&self, ids: Vec<PageId>) -> Result<Vec<Option<Arc<Page>>>> {
        self.source.pages(self.version, ids).await
    }
}

impl<P: Backend> ReplicationSource for Store<P> {
    async fn head(&self) -> Result<u64> {
        Ok(self.root().1)
    }

    async fn batches_since(&self, version: u64) -> Result<std::result::Result<Vec<Arc<CommittedBatch>>, FeedGap>> {
        Ok(Store::batches_since(self, version))
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let (root, version, _) = self.root();
        Ok((self.scan_at(b"", None, usize::MAX, version).await?, version, root))
    }

    async fn root_node(&self) -> Result<(u64, Node)> {
        Ok(self.head_root())
    }

    async fn pages(&self, version: u64, ids: Vec<PageId>) -> Result<Vec<Option<Arc<Page>>>> {
        self.pages_at(version, ids).await
    }

    async fn entries(&self, version: u64, leaf_keys: BTreeSet<[u8; 32]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.entries_at(version, leaf_keys, usize::MAX).await
    }
}

/// What a replica reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The primary version whose root the replica's root equals.
    pub mirrors: u64,
    /// Primary versions not applied yet.
    pub lag: u64,
    /// The largest lag seen since the replica started.
    pub max_lag: u64,
    /// Batches applied one by one.
    pub applied: u64,
    /// Resyncs (missed more than the feed held, or diverged).
    pub resyncs: u64,
    /// Whether the last call to the primary succeeded.
    pub reachable: bool,
    /// The last resync: primary pages fetched by the Merkle diff (0 for a
    /// full copy) and entries changed.
    pub last_resync_pages_fetched: u64,
    pub last_resync_entries: u64,
    /// Resyncs that fell back to copying every key.
    pub full_resyncs: u64,
}

#[derive(Debug, Default)]
struct Progress {
    mirrors: AtomicU64,
    lag: AtomicU64,
    max_lag: AtomicU64,
    applied: AtomicU64,
    resyncs: AtomicU64,
    unreachable: AtomicBool,
    last_resync_pages_fetched: AtomicU64,
    last_resync_entries: AtomicU64,
    full_resyncs: AtomicU64,
    paused: AtomicBool,
    stopped: AtomicBool,
}

impl Progress {
    fn set_lag<B: Backend>(&self, local: &Store<B>, lag: u64) {
        self.lag.store(lag, Ordering::SeqCst);
        self.max_lag.fetch_max(lag, Ordering::SeqCst);
        local.metrics().replication_lag_versions.set(lag as i64);
    }
}

/// A running replica; dropping it stops the follower.
#[derive(Debug)]
pub struct Replica<B: Backend> {
    store: Store<B>,
    progress: Arc<Progress>,
    task: tokio::task::JoinHandle<()>,
}

impl<B: Backend> Replica<B> {
    /// Starts following `primary` into `local` (an empty store, or one that
    /// followed this primary before: it resyncs first if it must).
    pub fn follow<S: ReplicationSource>(primary: S, local: Store<B>) -> Self {
        let progress = Arc::new(Progress::default());
        let task = tokio::spawn(follow(primary, local.clone(), progress.clone()));
        Self {
            store: local,
            progress,
            task,
        }
    }

    /// The replica's store, for reads with proofs.
    pub fn store(&self) -> &Store<B> {
        &self.store
    }

    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            mirrors: self.progress.mirrors.load(Ordering::SeqCst),
            lag: self.progress.lag.load(Ordering::SeqCst),
            max_lag: self.progress.max_lag.load(Ordering::SeqCst),
            applied: self.progress.applied.load(Ordering::SeqCst),
            resyncs: self.progress.resyncs.load(Ordering::SeqCst),
            reachable: !self.progress.unreachable.load(Ordering::SeqCst),
            last_resync_pages_fetched: self.progress.last_resync_pages_fetched.load(Ordering::SeqCst),
            last_resync_entries: self.progress.last_resync_entries.load(Ordering::SeqCst),
            full_resyncs: self.progress.full_resyncs.load(Ordering::SeqCst),
        }
    }

    /// Stops pulling (as a network cut would); `resume` goes on.
    pub fn pause(&self) {
        self.progress.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.progress.paused.store(false, Ordering::SeqCst);
    }

    /// Waits until the replica mirrors at least `version`.
    pub async fn caught_up(&self, version: u64) -> ReplicaStatus {
        loop {
            let status = self.status();
            if status.mirrors >= version || self.task.is_finished() {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl<B: Backend> Drop for Replica<B> {
    fn drop(&mut self) {
        self.progress.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

/// What one round of following did.
enum Step {
    /// Mirrors this primary version now.
    Mirrors(u64),
    /// Nothing new.
    Idle,
    /// The feed lacks what is needed, or the roots differ.
    Resync(String),
}

async fn follow<S: ReplicationSource, B: Backend>(primary: S, local: Store<B>, progress: Arc<Progress>) {
    // A fresh replica mirrors version 0 if it is as empty as the primary
    // was then; anything else starts with a resync.
    let mut mirrors = match (local.root().1, primary.batches_since(0).await) {
        (0, Ok(Ok(_))) => Some(0),
        _ => None,
    };
    // The last version the primary took an acknowledgement of, and when.
    let mut acknowledged: Option<(u64, std::time::Instant)> = None;
    while !progress.stopped.load(Ordering::SeqCst) {
        if let Some(version) = mirrors
            && acknowledged.is_none_or(|(v, at)| v != version || at.elapsed() > ACK_REFRESH)
            && primary.acknowledge(version, local.root().0).await
        {
            acknowledged = Some((version, std::time::Instant::now()));
        }
        if progress.paused.load(Ordering::SeqCst) {
            if let (Some(mirrors), Ok(head)) = (mirrors, primary.head().await) {
                progress.set_lag(&local, head.saturating_sub(mirrors));
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        let step = match mirrors {
            None => Ok(Step::Resync("no mirrored version yet".into())),
            Some(version) => catch_up(&primary, &local, version, &progress).await,
        };
        let failed = |error: StoreError| {
            if !progress.unreachable.swap(true, Ordering::SeqCst) {
                tracing::warn!(%error, "replica cannot follow its primary for now");
            }
        };
        match step {
            Ok(Step::Mirrors(version)) => {
                progress.unreachable.store(false, Ordering::SeqCst);
                mirrors = Some(version);
            }
            Ok(Step::Idle) => {
                progress.unreachable.store(false, Ordering::SeqCst);
                tokio::time::sleep(POLL).await;
            }
            Ok(Step::Resync(why)) => {
                tracing::warn!(why, "replica resyncs");
                match resync(&primary, &local, &progress).await {
                    Ok(version) => {
                        progress.resyncs.fetch_add(1, Ordering::SeqCst);
                        progress.unreachable.store(false, Ordering::SeqCst);
                        mirrors = Some(version);
                    }
                    Err(error) => {
                        // Part of it may have been written: no version is
                        // mirrored until a resync completes.
                        mirrors = None;
                        failed(error);
                        tokio::time::sleep(RECONNECT).await;
                    }
                }
            }
            Err(error) => {
                // Batches verified before the failure are mirrored; the
                // primary (or this store) is called again later.
                if mirrors.is_some() {
                    mirrors = Some(progress.mirrors.load(Ordering::SeqCst)).max(mirrors);
                }
                failed(error);
                tokio::time::sleep(RECONNECT).await;
            }
        }
        if let (Some(mirrors), Ok(head)) = (mirrors, primary.head().await) {
            progress.mirrors.store(mirrors, Ordering::SeqCst);
            progress.set_lag(&local, head.saturating_sub(mirrors));
        }
    }
}

/// Applies the batches after `mirrors`.
async fn catch_up<S: ReplicationSource, B: Backend>(
    primary: &S,
    local: &Store<B>,
    mirrors: u64,
    progress: &Progress,
) -> Result<Step> {
    let batches = match primary.batches_since(mirrors).await? {
        Ok(batches) => batches,
        Err(gap) => return Ok(Step::Resync(gap.to_string())),
    };
    let Some(last) = batches.last().map(|b| b.record.version) else {
        return Ok(Step::Idle);
    };
    // The lag as the batches arrive, before they are applied.
    if let Ok(head) = primary.head().await {
        progress.set_lag(local, head.saturating_sub(mirrors));
    }
    for batch in batches {
        let ops: Vec<BatchOp> = batch
            .ops
            .iter()
            .map(|(key, value)| match value {
                Some(value) => BatchOp::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
                None => BatchOp::Delete { key: key.clone() },
            })
            .collect();
        // Group commit may have put more ops in one version than one
        // write_batch takes: apply in pieces, compare after the last.
        let mut root = local.root().0;
        for piece in ops.chunks(local.config().max_batch_ops.max(1)) {
            root = local.write_batch(piece, false).await?.root;
        }
        if root != batch.record.root.hash() {
            return Ok(Step::Resync(format!(
                "replica root differs from the primary's at version {}",
                batch.record.version
            )));
        }
        progress.applied.fetch_add(1, Ordering::SeqCst);
        progress.mirrors.store(batch.record.version, Ordering::SeqCst);
    }
    Ok(Step::Mirrors(last))
}

/// Brings the replica to the primary's current version: by Merkle diff
/// when it can, else by copying every key.
async fn resync<S: ReplicationSource, B: Backend>(primary: &S, local: &Store<B>, progress: &Progress) -> Result<u64> {
    match diff_resync(primary, local).await {
        Ok((version, pages, entries)) => {
            progress.last_resync_pages_fetched.store(pages, Ordering::SeqCst);
            progress.last_resync_entries.store(entries, Ordering::SeqCst);
            tracing::info!(version, pages, entries, "replica resynced by Merkle diff");
            Ok(version)
        }
        Err(error) => {
            tracing::warn!(%error, "Merkle diff resync failed; copying every key");
            let (version, entries) = full_resync(primary, local).await?;
            progress.full_resyncs.fetch_add(1, Ordering::SeqCst);
            progress.last_resync_pages_fetched.store(0, Ordering::SeqCst);
            progress.last_resync_entries.store(entries, Ordering::SeqCst);
            Ok(version)
        }
    }
}

/// Walks both trees from the root, fetching only the primary's pages on
/// paths whose hashes differ; the differing leaves become one set of puts
/// (entries fetched from the primary by leaf key) and deletes. Returns the
/// version mirrored, pages fetched and entries changed.
async fn diff_resync<S: ReplicationSource, B: Backend>(primary: &S, local: &Store<B>) -> Result<(u64, u64, u64)> {
    let (version, root) = primary.root_node().await?;
    let (local_version, local_root) = local.head_root();
    let diff = diff_trees(
        &StorePages {
            store: local,
            version: local_version,
        },
        local_root,
        &SourcePages {
            source: primary,
            version,
        },
        root,
        local.max_levels(),
    )
    .await?;
    let puts = primary.entries(version, diff.puts.keys().copied().collect()).await?;
    // The primary's entries must be the leaves the walk found.
    for (key, value) in &puts {
        let field = fr_to_le_bytes(&local.key_field(key)?);
        if diff.puts.get(&field) != Some(&local.value_field(value)?) {
            return Err(StoreError::Corrupt(format!(
                "the primary sent an entry for {key:?} that is not a differing leaf"
            )));
        }
    }
    if puts.len() != diff.puts.len() {
        return Err(StoreError::Corrupt(format!(
            "the primary resolved {} of {} differing leaves",
            puts.len(),
            diff.puts.len()
        )));
    }
    let deletes = local
        .entries_at(local_version, diff.deletes.clone(), usize::MAX)
        .await?;
    if deletes.len() != diff.deletes.len() {
        return Err(StoreError::Corrupt(format!(
            "{} of {} local leaves to delete have no entry",
            diff.deletes.len() - deletes.len(),
            diff.deletes.len()
        )));
    }
    let ops: Vec<BatchOp> = deletes
        .into_iter()
        .map(|(key, _)| BatchOp::Delete { key })
        .chain(puts.into_iter().map(|(key, value)| BatchOp::Put { key, value }))
        .collect();
    for chunk in ops.chunks(local.config().max_batch_ops.max(1)) {
        local.write_batch(chunk, false).await?;
    }
    if local.root().0 != root.hash() {
        return Err(StoreError::Corrupt(format!(
            "replica root after a Merkle diff resync differs from the primary's at version {version}"
        )));
    }
    Ok((version, diff.pages_fetched, ops.len() as u64))
}

/// Makes the replica's live keys the primary's at one version: the
/// primary's keys written over, extra keys deleted, the root compared.
async fn full_resync<S: ReplicationSource, B: Backend>(primary: &S, local: &Store<B>) -> Result<(u64, u64)> {
    let (entries, version, root) = primary.snapshot().await?;
    let keep: BTreeSet<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
    let stale: Vec<BatchOp> = local
        .scan(b"", None, usize::MAX)
        .await?
        .into_iter()
        .filter(|(k, _)| !keep.contains(k.as_slice()))
        .map(|(key, _)| BatchOp::Delete { key })
        .collect();
    for chunk in stale.chunks(RESYNC_BATCH) {
        local.write_batch(chunk, false).await?;
    }
    for chunk in entries.chunks(RESYNC_BATCH) {
        let ops: Vec<BatchOp> = chunk
            .iter()
            .map(|(key, value)| BatchOp::Put {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        local.write_batch(&ops, false).await?;
    }
    if local.root().0 != root {
        return Err(StoreError::Corrupt(format!(
            "replica root after a resync differs from the primary's at version {version}"
        )));
    }
    Ok((version, (stale.len() + entries.len()) as u64))
}

/// A primary with replicas and the seed's `replication_factor`: a write is
/// acknowledged once that many copies hold it verified (the primary counts
/// as one; 1 is plain async replication).
#[derive(Debug)]
pub struct ReplicaSet<P: Backend, B: Backend> {
    primary: Store<P>,
    replicas: Vec<Replica<B>>,
    replication_factor: usize,
    /// How long a write waits for its replicas before it fails.
    pub ack_timeout: Duration,
}

impl<P: Backend, B: Backend> ReplicaSet<P, B> {
    /// `replication_factor` must be between 1 and 1 + the number of replicas.
    pub fn new(primary: Store<P>, replicas: Vec<Replica<B>>, replication_factor: usize) -> Result<Self> {
        if replication_factor == 0 || replication_factor > replicas.len() + 1 {
            return Err(StoreError::Config(format!(
                "replication_factor {replication_factor} needs 1..={} (the primary and {} replicas)",
                replicas.len() + 1,
                replicas.len()
            )));
        }
        Ok(Self {
            primary,
            replicas,
            replication_factor,
            ack_timeout: Duration::from_secs(10),
        })
    }

    pub fn replicas(&self) -> &[Replica<B>] {
        &self.replicas
    }

    /// Waits until `replication_factor - 1` replicas mirror `version`.
    async fn acknowledged(&self, version: u64) -> Result<()> {
        let needed = self.replication_factor - 1;
        let wait = async {
            loop {
                let verified = self.replicas.iter().filter(|r| r.status().mirrors >= version).count();
                if verified >= needed {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        };
        tokio::time::timeout(self.ack_timeout, wait).await.map_err(|_| {
            StoreError::Config(format!(
                "version {version} committed on the primary but not verified by {needed} replica(s) within {:?}",
                self.ack_timeout
            ))
        })
    }

    /// Writes on the primary; answers once enough replicas verified it.
    pub async fn write_with_proof(&self, key: &[u8], value: &[u8]) -> Result<crate::store::WriteResult> {
        let written = self.primary.write_with_proof(key, value).await?;
        self.acknowledged(written.version).await?;
        Ok(written)
    }

    /// `write_batch` on the primary, acknowledged the same way.
    pub async fn write_batch(&self, ops: &[BatchOp]) -> Result<crate::store::BatchResult> {
        let written = self.primary.write_batch(ops, false).await?;
        self.acknowledged(written.version).await?;
        Ok(written)
    }
}
