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

use crate::store::backend::Backend;
use crate::store::error::{Result, StoreError};
use crate::store::feed::{CommittedBatch, FeedGap};
use crate::store::{BatchOp, Store};
use rustorium_core::Fr;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Keys per batch when a replica resyncs.
const RESYNC_BATCH: usize = 4096;
/// How often an idle replica looks for new batches.
const POLL: Duration = Duration::from_millis(5);
/// How long a replica waits before calling an unreachable primary again.
const RECONNECT: Duration = Duration::from_millis(200);

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
    fn snapshot(&self) -> impl Future<Output = Result<(Vec<(Vec<u8>, Vec<u8>)>, u64, Fr)>> + Send;
}

impl<P: Backend> ReplicationSource for Store<P> {
    async fn head(&self) -> Result<u64> {
        Ok(self.root().1)
    }

    async fn batches_since(&self, version: u64) -> Result<std::result::Result<Vec<Arc<CommittedBatch>>, FeedGap>> {
        Ok(Store::batches_since(self, version))
    }

    async fn snapshot(&self) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, u64, Fr)> {
        // Scan, and retry if a commit slipped in meanwhile.
        loop {
            let (_, before, _) = self.root();
            let entries = self.scan(b"", None, usize::MAX).await?;
            let (root, after, _) = self.root();
            if before == after {
                return Ok((entries, after, root));
            }
        }
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
    /// Full resyncs (missed more than the feed held, or diverged).
    pub resyncs: u64,
    /// Whether the last call to the primary succeeded.
    pub reachable: bool,
}

#[derive(Debug, Default)]
struct Progress {
    mirrors: AtomicU64,
    lag: AtomicU64,
    max_lag: AtomicU64,
    applied: AtomicU64,
    resyncs: AtomicU64,
    unreachable: AtomicBool,
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
    while !progress.stopped.load(Ordering::SeqCst) {
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
        let step = match step {
            Ok(Step::Resync(why)) => {
                tracing::warn!(why, "replica resyncs");
                match resync(&primary, &local).await {
                    Ok(version) => {
                        progress.resyncs.fetch_add(1, Ordering::SeqCst);
                        Ok(Step::Mirrors(version))
                    }
                    Err(error) => Err(error),
                }
            }
            step => step,
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
            Ok(Step::Resync(_)) => unreachable!("resynced above"),
            Err(error) => {
                // The primary is unreachable (or the resync failed): keep
                // serving what is mirrored and call again later.
                if !progress.unreachable.swap(true, Ordering::SeqCst) {
                    tracing::warn!(%error, "replica cannot follow its primary for now");
                }
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

/// Makes the replica's live keys the primary's at one version: the
/// primary's keys written over, extra keys deleted, the root compared.
async fn resync<S: ReplicationSource, B: Backend>(primary: &S, local: &Store<B>) -> Result<u64> {
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
    Ok(version)
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
