//! The TiKV backend: rows live in a TiKV cluster, written by one optimistic
//! Percolator transaction per commit through the real `tikv-client`.
//!
//! Atomicity and fencing: a commit that makes version `v` current puts the
//! root record `roots/v` *first*, so it is the transaction's primary key,
//! and reads it inside the transaction. A writer whose head is stale finds
//! `roots/v` already there (it started after the winner committed) or meets
//! a write conflict on it at prewrite (it started before): either way its
//! transaction aborts with `Conflict`, nothing of it lands, and the store
//! reloads the head and re-applies the batch on top of the winner. A stale
//! writer whose locks were rolled back by another writer (its lock TTL ran
//! out while it was paused) fails its commit the same way.
//!
//! Unknown outcomes: when a commit fails or times out after prewrite, the
//! backend rolls the transaction back if it still can, and otherwise
//! re-reads `roots/v` at a fresh timestamp (lock resolution settles the
//! primary) to learn whether its record is the one that landed.

mod records;

use super::{Backend, BackendError, BackendReader, KeyValue, LastIn, Table, WriteBatch};
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;
use tikv_client::{BoundRange, CheckLevel, Key, Timestamp, TimestampExt, TransactionClient, TransactionOptions};
use tokio::runtime::Runtime;

/// Rows fetched per scan request.
const SCAN_PAGE: u32 = 256;

/// Where the TiKV cluster is and how patient to be with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TikvConfig {
    /// PD endpoints, `host:port`.
    pub pd_endpoints: Vec<String>,
    /// A TiKV API v2 keyspace (the cluster must run `storage.api-version = 2`);
    /// `None` uses the shared v1 key space.
    pub keyspace: Option<String>,
    /// Prefix of every key this store writes, so several stores can share
    /// one key space.
    pub namespace: String,
    /// Limit on each client call (gRPC requests and reads).
    #[serde(with = "crate::store::config::millis")]
    pub request_timeout: Duration,
    /// Limit on one commit: prewrite plus commit of the primary.
    #[serde(with = "crate::store::config::millis")]
    pub commit_timeout: Duration,
    /// Retries of a failed read or of a commit that certainly did not land.
    pub max_retries: u32,
    /// First retry delay; doubles per retry.
    #[serde(with = "crate::store::config::millis")]
    pub retry_backoff: Duration,
    /// How long settling an unknown commit outcome may take: at least the
    /// client's lock TTL (3 s), after which readers roll an orphan back.
    #[serde(with = "crate::store::config::millis")]
    pub resolve_timeout: Duration,
    /// Reads use the node's head if it was checked against TiKV within this
    /// interval (bounded staleness when other nodes write the same tree);
    /// zero checks on every read.
    #[serde(with = "crate::store::config::millis")]
    pub head_refresh_interval: Duration,
    /// Hybrid backend only: entries (cached value and page lookups, each a
    /// record of up to a few KiB) the local cache holds before it starts over.
    pub hybrid_cache_entries: u64,
}

impl Default for TikvConfig {
    fn default() -> Self {
        Self {
            pd_endpoints: vec!["127.0.0.1:2379".into()],
            keyspace: None,
            namespace: "rustorium".into(),
            request_timeout: Duration::from_secs(2),
            commit_timeout: Duration::from_secs(10),
            max_retries: 8,
            retry_backoff: Duration::from_millis(20),
            resolve_timeout: Duration::from_secs(15),
            head_refresh_interval: Duration::from_millis(100),
            hybrid_cache_entries: 4_000_000,
        }
    }
}

/// How long a timestamp is reused for reads (see `recent_timestamp`).
const RECENT_TIMESTAMP_LIFETIME: Duration = Duration::from_secs(1);

/// One client and the runtime it runs on, shared by every backend opened
/// from it (`TikvBackend::in_namespace`): a node with many shards keeps one
/// set of PD and TiKV connections.
struct Connection {
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
    client: TransactionClient,
}

struct Inner {
    connection: Arc<Connection>,
    config: TikvConfig,
    prefix: Vec<u8>,
    recent: std::sync::Mutex<RecentTimestamp>,
}

/// A timestamp readers may reuse, and the count of this process's commits:
/// one fetched while a commit finished must not be kept.
#[derive(Debug, Default)]
struct RecentTimestamp {
    kept: Option<(Timestamp, std::time::Instant)>,
    commits: u64,
}

/// A store's rows in TiKV.
#[derive(Clone)]
pub struct TikvBackend {
    inner: Arc<Inner>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The last handle may go away inside async code, where a runtime
        // may not block on its own shutdown.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    fn runtime(&self) -> &Runtime {
        self.connection
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the backend")
    }

    fn client(&self) -> &TransactionClient {
        &self.connection.client
    }
}

fn key_prefix(namespace: &str) -> Vec<u8> {
    let mut prefix = namespace.as_bytes().to_vec();
    prefix.push(b'/');
    prefix
}

impl std::fmt::Debug for TikvBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikvBackend")
            .field("pd_endpoints", &self.inner.config.pd_endpoints)
            .field("namespace", &self.inner.config.namespace)
            .finish()
    }
}

fn options() -> TransactionOptions {
    // Every transaction ends in commit or rollback; a dropped one (a timed
    // out future) is left to lock resolution, which is what TTLs are for.
    // No heartbeat: a lock's TTL stays short, so an unknown outcome settles
    // within `resolve_timeout` (readers roll orphaned locks back).
    TransactionOptions::new_optimistic()
        .drop_check(CheckLevel::None)
        .heartbeat_option(tikv_client::transaction::HeartbeatOption::NoHeartbeat)
}

/// Whether a client error means another writer got there first.
fn is_conflict(error: &tikv_client::Error) -> bool {
    use tikv_client::Error as E;
    match error {
        E::KeyError(key_error) => key_error.conflict.is_some() || key_error.already_exist.is_some(),
        E::ExtractedErrors(errors) | E::MultipleKeyErrors(errors) => errors.iter().any(is_conflict),
        // An undetermined commit may have landed: never a conflict.
        _ => false,
    }
}

/// Whether retrying the same request can help.
fn is_transient(error: &tikv_client::Error) -> bool {
    use tikv_client::Error as E;
    match error {
        E::Grpc(_) | E::GrpcAPI(_) | E::RegionError(_) | E::Io(_) | E::LeaderNotFound { .. } => true,
        E::ResolveLockError(_) | E::EntryNotFoundInRegionCache | E::NoCurrentRegions => true,
        // tikv-client reports a broken PD timestamp stream this way; it
        // reconnects on a later call.
        E::InternalError { .. } | E::Channel(_) | E::Canceled(_) => true,
        E::ExtractedErrors(errors) | E::MultipleKeyErrors(errors) => errors.iter().all(is_transient),
        E::KeyError(key_error) => key_error.locked.is_some() || !key_error.retryable.is_empty(),
        _ => false,
    }
}

/// Runs a client future to completion from synchronous code: the committer
/// thread, a blocking read task, or `Store::open` called from async code (a
/// runtime worker may not block on another runtime directly).
fn block_on<F>(runtime: &Runtime, future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => runtime.block_on(future),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| runtime.block_on(future)),
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

impl TikvBackend {
    /// Connects to the cluster (bounded by `request_timeout` per attempt).
    pub fn connect(config: TikvConfig) -> Result<Self, BackendError> {
        if config.pd_endpoints.is_empty() {
            return Err(BackendError::new("connect to TiKV", "no PD endpoints configured"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rustorium-tikv")
            .enable_all()
            .build()
            .map_err(|e| BackendError::new("start the TiKV client runtime", e))?;
        let mut client_config = tikv_client::Config::default().with_timeout(config.request_timeout);
        if let Some(keyspace) = &config.keyspace {
            client_config = client_config.with_keyspace(keyspace);
        }
        let endpoints = config.pd_endpoints.clone();
        let connect_timeout = config.request_timeout * 3;
        let connected = block_on(&runtime, async {
            tokio::time::timeout(
                connect_timeout,
                TransactionClient::new_with_config(endpoints, client_config),
            )
            .await
        });
        let client = match connected {
            Ok(Ok(client)) => client,
            failed => {
                runtime.shutdown_background();
                return Err(match failed {
                    Err(_) => BackendError::retryable(
                        "connect to TiKV",
                        format!("PD {:?} did not answer within {connect_timeout:?}", config.pd_endpoints),
                    ),
                    Ok(Err(e)) => BackendError::new("connect to TiKV", format!("PD {:?}: {e}", config.pd_endpoints)),
                    Ok(Ok(_)) => unreachable!("handled above"),
                });
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                connection: Arc::new(Connection {
                    runtime: Some(runtime),
                    client,
                }),
                prefix: key_prefix(&config.namespace),
                config,
                recent: std::sync::Mutex::new(RecentTimestamp::default()),
            }),
        })
    }

    /// Another store's rows (under `namespace`) over this backend's
    /// connection.
    pub fn in_namespace(&self, namespace: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection: self.inner.connection.clone(),
                config: TikvConfig {
                    namespace: namespace.to_owned(),
                    ..self.inner.config.clone()
                },
                prefix: key_prefix(namespace),
                recent: std::sync::Mutex::new(RecentTimestamp::default()),
            }),
        }
    }

    pub fn config(&self) -> &TikvConfig {
        &self.inner.config
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        block_on(self.inner.runtime(), future)
    }

    fn key(&self, table: Table, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.inner.prefix.len() + 1 + key.len());
        out.extend_from_slice(&self.inner.prefix);
        out.push(table.tag());
        out.extend_from_slice(key);
        out
    }

    fn table_prefix_len(&self) -> usize {
        self.inner.prefix.len() + 1
    }

    /// Runs `attempt` until it succeeds, fails for good, or retries run out;
    /// each attempt is bounded by `request_timeout`.
    fn retrying<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, BackendError>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, tikv_client::Error>> + Send,
    {
        let config = &self.inner.config;
        self.block_on(async {
            let mut delay = config.retry_backoff;
            let mut tries = 0;
            loop {
                let error = match tokio::time::timeout(config.request_timeout, attempt()).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(error)) if !is_transient(&error) => return Err(BackendError::new(operation, error)),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no answer within {:?}", config.request_timeout),
                };
                tries += 1;
                if tries > config.max_retries {
                    return Err(BackendError::retryable(
                        operation,
                        format!("{error} (gave up after {tries} tries)"),
                    ));
                }
                tracing::debug!(operation, %error, tries, "retrying a TiKV call");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        })
    }

    /// A fresh timestamp from PD, remembered for `reader`.
    fn timestamp(&self) -> Result<Timestamp, BackendError> {
        let commits_before = self.recent().commits;
        let client = self.inner.client().clone();
        let ts = self.retrying("get a timestamp from PD", || {
            let client = client.clone();
            async move { client.current_timestamp().await }
        })?;
        let mut recent = self.recent();
        // Keep it only if no commit of ours finished meanwhile (it might
        // predate that commit) and it is newer than the one kept.
        let newer = recent
            .kept
            .as_ref()
            .is_none_or(|(kept, _)| kept.version() < ts.version());
        if recent.commits == commits_before && newer {
            recent.kept = Some((ts.clone(), std::time::Instant::now()));
        }
        Ok(ts)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentTimestamp> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A timestamp taken after this process's last commit, and recently
    /// enough to be far from TiKV's GC safe point: any snapshot at it sees
    /// every version this process committed or adopted, and versioned rows
    /// never change, so reads need no new timestamp (a round trip to PD).
    fn recent_timestamp(&self) -> Option<Timestamp> {
        let recent = self.recent();
        recent
            .kept
            .as_ref()
            .filter(|(_, taken)| taken.elapsed() < RECENT_TIMESTAMP_LIFETIME)
            .map(|(ts, _)| ts.clone())
    }

    /// One transaction: reads `roots/v` if the batch advances to `v`, writes
    /// the batch with the root record as primary, commits.
    async fn try_commit(&self, batch: &WriteBatch) -> Result<(), CommitFailure> {
        let limit = self.inner.config.request_timeout;
        // Nothing is prewritten before the commit call: a timeout up to
        // there certainly left nothing behind, and is retried.
        let timed_out = || CommitFailure::NotCommitted(format!("no answer within {limit:?} before prewrite"));
        let mut txn = tokio::time::timeout(limit, self.inner.client().begin_with_options(options()))
            .await
            .map_err(|_| timed_out())?
            .map_err(CommitFailure::BeforePrewrite)?;
        let root_key = batch.advances_to.map(|v| self.key(Table::Roots, &v.to_be_bytes()));
        if let Some(root_key) = &root_key {
            // Nothing is prewritten yet: a rollback here only tidies up.
            match tokio::time::timeout(limit, txn.get(root_key.clone())).await {
                Ok(Ok(None)) => {}
                Ok(Ok(Some(_))) => {
                    let _ = tokio::time::timeout(limit, txn.rollback()).await;
                    return Err(CommitFailure::Conflict);
                }
                Ok(Err(error)) => {
                    let _ = tokio::time::timeout(limit, txn.rollback()).await;
                    return Err(CommitFailure::BeforePrewrite(error));
                }
                Err(_) => return Err(timed_out()),
            }
        }
        // The root record first: the first key buffered is the primary.
        let mut puts: Vec<_> = batch.puts.iter().collect();
        puts.sort_by_key(|(table, key, _)| Some(self.key(*table, key)) != root_key);
        for (table, key, value) in puts {
            txn.put(self.key(*table, key), value.clone())
                .await
                .map_err(CommitFailure::BeforePrewrite)?;
        }
        for delete in &batch.deletes {
            txn.delete(self.key(delete.table, &delete.key))
                .await
                .map_err(CommitFailure::BeforePrewrite)?;
        }
        match tokio::time::timeout(self.inner.config.commit_timeout, txn.commit()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if is_conflict(&error) => {
                let _ = tokio::time::timeout(self.inner.config.request_timeout, txn.rollback()).await;
                Err(CommitFailure::Conflict)
            }
            outcome => {
                let error = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {:?}", self.inner.config.commit_timeout),
                };
                // A successful rollback proves the commit did not land (the
                // rollback record stops a late commit of the primary).
                match tokio::time::timeout(self.inner.config.request_timeout, txn.rollback()).await {
                    Ok(Ok(())) => Err(CommitFailure::NotCommitted(error)),
                    _ => Err(CommitFailure::Unknown(error)),
                }
            }
        }
    }

    /// Learns whether the commit that advanced to `version` with `record`
    /// landed, by reading the root record at a fresh timestamp.
    fn resolve_outcome(&self, version: u64, record: &[u8]) -> Result<bool, BackendError> {
        let key = self.key(Table::Roots, &version.to_be_bytes());
        let client = self.inner.client().clone();
        let config = &self.inner.config;
        self.block_on(async {
            let deadline = tokio::time::Instant::now() + config.resolve_timeout;
            let mut delay = config.retry_backoff;
            loop {
                let read = async {
                    let ts = client.current_timestamp().await?;
                    client.snapshot(ts, options()).get(key.clone()).await
                };
                match tokio::time::timeout(config.request_timeout, read).await {
                    Ok(Ok(found)) => return Ok(found.as_deref() == Some(record)),
                    Ok(Err(error)) => tracing::debug!(%error, version, "root record not readable yet"),
                    Err(_) => tracing::debug!(version, "root record read timed out"),
                }
                if tokio::time::Instant::now() + delay > deadline {
                    return Err(BackendError::unknown(
                        "settle an unknown commit outcome",
                        format!(
                            "the root record of version {version} stayed unreadable for {:?}",
                            config.resolve_timeout
                        ),
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        })
    }
}

/// How one commit attempt failed.
enum CommitFailure {
    /// Another writer committed this version (or a key of the batch) first.
    Conflict,
    /// Failed before anything was prewritten.
    BeforePrewrite(tikv_client::Error),
    /// Failed, and rolled back: certainly not committed.
    NotCommitted(String),
    /// Failed, and the rollback failed too: the outcome must be read back.
    Unknown(String),
}

impl Backend for TikvBackend {
    type Reader = TikvReader;

    fn name(&self) -> &'static str {
        "tikv"
    }

    fn reader(&self) -> Result<TikvReader, BackendError> {
        let timestamp = std::sync::OnceLock::new();
        if let Some(recent) = self.recent_timestamp() {
            let _ = timestamp.set(recent);
        }
        Ok(TikvReader {
            backend: self.clone(),
            timestamp,
        })
    }

    fn latest_reader(&self) -> Result<TikvReader, BackendError> {
        Ok(TikvReader {
            backend: self.clone(),
            timestamp: std::sync::OnceLock::new(),
        })
    }

    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError> {
        let result = self.commit_batch(batch, durable);
        // Whatever happened, later readers need a timestamp after it.
        let mut recent = self.recent();
        recent.kept = None;
        recent.commits += 1;
        drop(recent);
        result
    }

    fn format(&self) -> &'static [u8] {
        b"1"
    }

    fn disk_bytes(&self) -> u64 {
        // TiKV's size is the cluster's business (and region statistics are
        // approximate); the node reports none and max_size does not apply.
        0
    }

    fn shared(&self) -> Option<Duration> {
        Some(self.inner.config.head_refresh_interval)
    }
}

impl TikvBackend {
    fn commit_batch(&self, batch: WriteBatch, _durable: bool) -> Result<(), BackendError> {
        // TiKV commits are replicated by Raft before they are acknowledged:
        // every commit is durable.
        if batch.puts.is_empty() && batch.deletes.is_empty() {
            return Ok(());
        }
        let record = batch.advances_to.and_then(|v| {
            batch
                .puts
                .iter()
                .find(|(t, k, _)| *t == Table::Roots && *k == v.to_be_bytes())
                .map(|(_, _, r)| r.clone())
        });
        let config = &self.inner.config;
        let mut delay = config.retry_backoff;
        let mut tries = 0;
        loop {
            let failure = match self.block_on(self.try_commit(&batch)) {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            let message = match failure {
                CommitFailure::Conflict => {
                    return Err(BackendError::conflict(
                        "commit to TiKV",
                        format!("another writer committed version {:?} first", batch.advances_to),
                    ));
                }
                CommitFailure::BeforePrewrite(error) if !is_transient(&error) => {
                    return Err(BackendError::new("commit to TiKV", error));
                }
                CommitFailure::BeforePrewrite(error) => error.to_string(),
                CommitFailure::NotCommitted(error) => error,
                CommitFailure::Unknown(error) => match (batch.advances_to, &record) {
                    (Some(version), Some(record)) => {
                        if self.resolve_outcome(version, record)? {
                            tracing::info!(version, %error, "commit outcome was unknown; it landed");
                            return Ok(());
                        }
                        // Someone else's record, or none: ours did not land.
                        return Err(BackendError::conflict(
                            "commit to TiKV",
                            format!("commit of version {version} failed ({error}) and did not land"),
                        ));
                    }
                    // Pruning and flushes are idempotent: redone later.
                    _ => {
                        return Err(BackendError::unknown(
                            "commit to TiKV",
                            format!("outcome unknown: {error}"),
                        ));
                    }
                },
            };
            tries += 1;
            if tries > config.max_retries {
                return Err(BackendError::retryable(
                    "commit to TiKV",
                    format!("{message} (gave up after {tries} tries)"),
                ));
            }
            tracing::debug!(%message, tries, "retrying a TiKV commit");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

/// A snapshot at one TSO timestamp, taken on first use.
pub struct TikvReader {
    backend: TikvBackend,
    timestamp: std::sync::OnceLock<Timestamp>,
}

impl std::fmt::Debug for TikvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikvReader")
            .field("timestamp", &self.timestamp.get())
            .finish()
    }
}

impl TikvReader {
    /// The reader's timestamp, fetched from PD on first use.
    fn timestamp(&self) -> Result<Timestamp, BackendError> {
        match self.timestamp.get() {
            Some(ts) => Ok(ts.clone()),
            None => {
                let ts = self.backend.timestamp()?;
                Ok(self.timestamp.get_or_init(|| ts).clone())
            }
        }
    }

    fn snapshot(&self, ts: &Timestamp) -> tikv_client::Snapshot {
        self.backend.inner.client().snapshot(ts.clone(), options())
    }

    fn strip(&self, key: Key) -> Vec<u8> {
        let key: Vec<u8> = key.into();
        key[self.backend.table_prefix_len()..].to_vec()
    }

    fn bound(&self, table: Table, bound: Bound<&[u8]>) -> Bound<Key> {
        match bound {
            Bound::Included(k) => Bound::Included(self.backend.key(table, k).into()),
            Bound::Excluded(k) => Bound::Excluded(self.backend.key(table, k).into()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    /// The end of the whole table, so unbounded scans stay within it.
    fn table_end(&self, table: Table) -> Bound<Key> {
        let mut end = self.backend.inner.prefix.clone();
        end.push(table.tag() + 1);
        Bound::Excluded(end.into())
    }
}

impl BackendReader for TikvReader {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let ts = self.timestamp()?;
        let key = self.backend.key(table, key);
        self.backend.retrying("get from TiKV", || {
            let mut snapshot = self.snapshot(&ts);
            let key = key.clone();
            async move { snapshot.get(key).await }
        })
    }

    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        Ok(self
            .last_in_many(&[(table, start.to_vec(), end.to_vec())])?
            .pop()
            .flatten())
    }

    fn last_in_many(&self, lookups: &[LastIn]) -> Result<Vec<Option<KeyValue>>, BackendError> {
        let ts = self.timestamp()?;
        let ranges: Vec<BoundRange> = lookups
            .iter()
            .map(|(table, start, end)| (self.backend.key(*table, start)..=self.backend.key(*table, end)).into())
            .collect();
        let found = self.backend.retrying("reverse scan in TiKV", || {
            let scans = ranges.iter().map(|range| {
                let mut snapshot = self.snapshot(&ts);
                let range = range.clone();
                async move { snapshot.scan_reverse(range, 1).await.map(|mut pairs| pairs.next()) }
            });
            futures::future::try_join_all(scans)
        })?;
        Ok(found
            .into_iter()
            .map(|pair| pair.map(|pair| (self.strip(pair.0), pair.1)))
            .collect())
    }

    fn range(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        let ts = self.timestamp()?;
        let mut lower = match start {
            Bound::Unbounded => Bound::Included(self.backend.key(table, &[]).into()),
            bound => self.bound(table, bound),
        };
        let upper = match end {
            Bound::Unbounded => self.table_end(table),
            bound => self.bound(table, bound),
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let want = SCAN_PAGE.min((limit - out.len()).try_into().unwrap_or(u32::MAX));
            let range: BoundRange = (lower.clone(), upper.clone()).into();
            let page: Vec<_> = self.backend.retrying("scan TiKV", || {
                let mut snapshot = self.snapshot(&ts);
                let range = range.clone();
                async move { snapshot.scan(range, want).await.map(Iterator::collect::<Vec<_>>) }
            })?;
            let done = (page.len() as u32) < want;
            if let Some(last) = page.last() {
                lower = Bound::Excluded(last.0.clone());
            }
            out.extend(page.into_iter().map(|pair| (self.strip(pair.0), pair.1)));
            if done {
                break;
            }
        }
        Ok(out)
    }
}
