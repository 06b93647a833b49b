//! Async verified replication: a replica store follows a primary by pulling
//! its committed batches (`Store::batches_since`, the replication feed) and
//! applying each as one local commit, accepted only if the replica's new
//! root equals the primary's root for that version. It serves reads with
//! proofs locally and says which primary version it mirrors; the distance
//! to the primary's head is its lag (`rustorium_store_replication_lag_versions`).
//!
//! A replica that was cut off catches up from the feed; one that missed
//! more than the feed keeps, or whose root stopped matching, resyncs: it
//! rewrites its live keys to the primary's at one version and checks the
//! root again.

use crate::store::backend::Backend;
use crate::store::error::{Result, StoreError};
use crate::store::{BatchOp, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Keys per batch when a replica resyncs.
const RESYNC_BATCH: usize = 4096;
/// How often an idle replica looks for new batches.
const POLL: Duration = Duration::from_millis(5);

/// What a replica reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The primary version whose root the replica's root equals.
    pub mirrors: u64,
    /// Primary versions not applied yet.
    pub lag: u64,
    /// Batches applied one by one.
    pub applied: u64,
    /// Full resyncs (missed more than the feed held, or diverged).
    pub resyncs: u64,
}

#[derive(Debug, Default)]
struct Progress {
    mirrors: AtomicU64,
    lag: AtomicU64,
    applied: AtomicU64,
    resyncs: AtomicU64,
    paused: AtomicBool,
    stopped: AtomicBool,
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
    pub fn follow<P: Backend>(primary: Store<P>, local: Store<B>) -> Self {
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
            applied: self.progress.applied.load(Ordering::SeqCst),
            resyncs: self.progress.resyncs.load(Ordering::SeqCst),
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

async fn follow<P: Backend, B: Backend>(primary: Store<P>, local: Store<B>, progress: Arc<Progress>) {
    // A fresh replica mirrors version 0 if it is as empty as the primary
    // was then; anything else starts with a resync.
    let mut mirrors = match (local.root().1, primary.batches_since(0)) {
        (0, Ok(_)) => 0,
        _ => u64::MAX,
    };
    while !progress.stopped.load(Ordering::SeqCst) {
        let head = primary.root().1;
        if progress.paused.load(Ordering::SeqCst) {
            if mirrors != u64::MAX {
                let lag = head.saturating_sub(mirrors);
                progress.lag.store(lag, Ordering::SeqCst);
                local.metrics().replication_lag_versions.set(lag as i64);
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        let step = if mirrors == u64::MAX {
            let step = resync(&primary, &local).await;
            if matches!(step, Ok(Some(_))) {
                progress.resyncs.fetch_add(1, Ordering::SeqCst);
            }
            step
        } else {
            catch_up(&primary, &local, mirrors, &progress).await
        };
        match step {
            Ok(Some(version)) => mirrors = version,
            Ok(None) => tokio::time::sleep(POLL).await,
            Err(error) => {
                tracing::warn!(%error, "replica falls back to a resync");
                match resync(&primary, &local).await {
                    Ok(Some(version)) => {
                        progress.resyncs.fetch_add(1, Ordering::SeqCst);
                        mirrors = version;
                    }
                    _ => tokio::time::sleep(POLL * 20).await,
                }
            }
        }
        if mirrors != u64::MAX {
            progress.mirrors.store(mirrors, Ordering::SeqCst);
            let lag = primary.root().1.saturating_sub(mirrors);
            progress.lag.store(lag, Ordering::SeqCst);
            local.metrics().replication_lag_versions.set(lag as i64);
        }
    }
}

/// Applies the batches after `mirrors`; `Some(version)` mirrored now,
/// `None` when there was nothing new.
async fn catch_up<P: Backend, B: Backend>(
    primary: &Store<P>,
    local: &Store<B>,
    mirrors: u64,
    progress: &Progress,
) -> Result<Option<u64>> {
    let batches = primary
        .batches_since(mirrors)
        .map_err(|gap| StoreError::Config(gap.to_string()))?;
    let Some(last) = batches.last().map(|b| b.record.version) else {
        return Ok(None);
    };
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
            return Err(StoreError::Corrupt(format!(
                "replica root differs from the primary's at version {}",
                batch.record.version
            )));
        }
        progress.applied.fetch_add(1, Ordering::SeqCst);
    }
    Ok(Some(last))
}

/// Makes the replica's live keys the primary's at one version: the
/// primary's keys written over, extra keys deleted, the root compared.
async fn resync<P: Backend, B: Backend>(primary: &Store<P>, local: &Store<B>) -> Result<Option<u64>> {
    // The primary's keys as of one version: scan, and retry if a commit
    // slipped in meanwhile.
    let (entries, version, root) = loop {
        let (_, before, _) = primary.root();
        let entries = primary.scan(b"", None, usize::MAX).await?;
        let (root, after, _) = primary.root();
        if before == after {
            break (entries, after, root);
        }
    };
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
    Ok(Some(version))
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
