//! Group commit: writers queue; one committer thread takes whatever waits (up
//! to `max_batch_ops`, waiting at most `max_batch_delay` for more), applies it
//! to the tree in one batch, writes values, pages, stale records and the root
//! record in one backend transaction, and answers every writer against the new
//! root. It is the only writer, so the tree state needs no lock of its own.

use crate::store::backend::{Backend, BackendErrorKind, BackendReader, Table, WriteBatch};
use crate::store::config::SyncMode;
use crate::store::error::{Result, StoreError};
use crate::store::keys::{RootRecord, escape_key, versioned};
use crate::store::pages::VersionedPages;
use crate::store::{Head, Shared};
use rustorium_core::Fr;
use rustorium_core::field::fr_to_le_bytes;
use rustorium_core::tree::{Lookup, Op};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Times a commit is re-applied after losing to another writer (or after a
/// transient backend failure) before its writers get the error.
const COMMIT_RETRIES: u32 = 8;
/// Stale rows a commit may delete besides its own share, so pruning never
/// stalls a small write behind a large batch's backlog.
const PRUNE_ROWS_PER_COMMIT: usize = 1024;
/// Stale records looked at per commit.
const PRUNE_RECORDS_PER_COMMIT: usize = 64;

/// Adds the deletes of whole stale records of versions `<= oldest` to
/// `writes`, stopping before `budget` rows (a record larger than the budget
/// is taken only when `budget` is 0, by the idle pruner). Returns the rows.
fn prune<R: BackendReader>(reader: &R, writes: &mut WriteBatch, oldest: u64, budget: usize) -> Result<usize> {
    let end = (oldest + 1).to_be_bytes();
    let mut pruned = 0;
    for (stale_key, list) in reader.range(
        Table::Stale,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Excluded(&end),
        PRUNE_RECORDS_PER_COMMIT,
    )? {
        let entries = stale_entries(&list)?;
        if budget > 0 && pruned + entries.len() > budget {
            break;
        }
        pruned += entries.len();
        for (table, key) in entries {
            writes.delete(table, key.to_vec());
        }
        writes.delete(Table::Stale, stale_key);
        if budget == 0 {
            break;
        }
    }
    Ok(pruned)
}

/// Prunes one stale record in a commit of its own; returns whether there was
/// one. Durability does not matter: a lost prune is redone later.
fn prune_idle<B: Backend>(shared: &Shared<B>) -> Result<bool> {
    let head = shared.head();
    let reader = shared.backend.reader()?;
    let mut writes = WriteBatch::default();
    let pruned = prune(&reader, &mut writes, shared.oldest_retained(head.version), 0)?;
    drop(reader);
    if writes.deletes.is_empty() {
        return Ok(false);
    }
    shared.backend.commit(writes, false)?;
    shared.metrics.pruned_rows_total.inc_by(pruned as u64);
    Ok(true)
}

/// Parses a stale record: `[table tag][key length: u32 BE][key]...`.
fn stale_entries(list: &[u8]) -> Result<Vec<(Table, &[u8])>> {
    let corrupt = || StoreError::Corrupt("malformed stale record".into());
    let mut entries = Vec::new();
    let mut rest = list;
    while let Some((&tag, tail)) = rest.split_first() {
        let table = Table::from_tag(tag).ok_or_else(corrupt)?;
        let (len, tail) = tail.split_at_checked(4).ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt())?) as usize;
        let (key, tail) = tail.split_at_checked(len).ok_or_else(corrupt)?;
        entries.push((table, key));
        rest = tail;
    }
    Ok(entries)
}

/// A key prepared by the writer's thread: hashed to its field element.
#[derive(Clone, Debug)]
pub struct PreparedOp {
    pub key: Vec<u8>,
    pub key_field: Fr,
    /// `None` deletes.
    pub value: Option<(Vec<u8>, Fr)>,
}

/// What a committed batch tells its writers.
#[derive(Debug)]
pub struct Committed {
    pub version: u64,
    pub root: Fr,
    pub timestamp: SystemTime,
    /// Proofs against `root`, by the key's field element (little-endian bytes).
    pub proofs: BTreeMap<[u8; 32], Lookup>,
    /// User keys of this batch that held a value before it.
    pub existed: std::collections::BTreeSet<Vec<u8>>,
}

pub enum Command {
    Write {
        ops: Vec<PreparedOp>,
        want_proofs: bool,
        queued: Instant,
        reply: oneshot::Sender<Result<Arc<Committed>>>,
    },
    Sync {
        reply: oneshot::Sender<Result<()>>,
    },
}

struct Pending {
    ops: Vec<PreparedOp>,
    want_proofs: bool,
    queued: Instant,
    reply: oneshot::Sender<Result<Arc<Committed>>>,
}

pub fn run<B: Backend>(shared: Arc<Shared<B>>, commands: Receiver<Command>) {
    let config = &shared.config;
    let mut dirty = false;
    let mut backlog = true;
    let mut last_sync = Instant::now();
    loop {
        let timeout = match config.sync_mode {
            SyncMode::Async if dirty => config.async_flush_interval.saturating_sub(last_sync.elapsed()),
            _ => Duration::from_secs(3600),
        };
        // Idle: clear the pruning backlog one record at a time, between writers.
        let first = match commands.try_recv() {
            Ok(command) => Some(command),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if backlog => {
                match prune_idle(&shared) {
                    Ok(more) => {
                        backlog = more;
                        dirty |= more;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "idle pruning failed");
                        backlog = false;
                    }
                }
                continue;
            }
            Err(TryRecvError::Empty) => match commands.recv_timeout(timeout) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut batch = Vec::new();
        let mut syncs = Vec::new();
        let mut ops = 0;
        let mut next = first;
        let started = Instant::now();
        while let Some(command) = next.take() {
            match command {
                Command::Write {
                    ops: o,
                    want_proofs,
                    queued,
                    reply,
                } => {
                    ops += o.len();
                    batch.push(Pending {
                        ops: o,
                        want_proofs,
                        queued,
                        reply,
                    });
                }
                Command::Sync { reply } => syncs.push(reply),
            }
            if ops >= config.max_batch_ops {
                break;
            }
            next = match commands.try_recv() {
                Ok(command) => Some(command),
                Err(TryRecvError::Empty) if started.elapsed() < config.max_batch_delay => commands
                    .recv_timeout(config.max_batch_delay.saturating_sub(started.elapsed()))
                    .ok(),
                Err(_) => None,
            };
        }
        if !batch.is_empty() {
            commit_and_answer(&shared, batch);
            backlog = true;
            dirty = config.sync_mode != SyncMode::Full;
        }
        let flush_due =
            config.sync_mode == SyncMode::Async && dirty && last_sync.elapsed() >= config.async_flush_interval;
        if !syncs.is_empty() || flush_due {
            let result = if dirty {
                shared
                    .backend
                    .commit(WriteBatch::default(), true)
                    .map_err(StoreError::from)
            } else {
                Ok(())
            };
            if result.is_ok() {
                dirty = false;
                last_sync = Instant::now();
            }
            for reply in syncs {
                let _ = reply.send(result.clone());
            }
        }
    }
    // Every sender is gone: make everything durable before the thread ends.
    if dirty && let Err(error) = shared.backend.commit(WriteBatch::default(), true) {
        tracing::error!(%error, "final flush failed");
    }
}

fn commit_and_answer<B: Backend>(shared: &Shared<B>, batch: Vec<Pending>) {
    let span = tracing::info_span!("commit", ops = batch.iter().map(|p| p.ops.len()).sum::<usize>());
    let _guard = span.enter();
    let started = Instant::now();
    let want_proofs = batch.iter().any(|p| p.want_proofs);
    let mut retries = 0;
    let outcome = loop {
        match commit(shared, &batch, want_proofs) {
            Err(StoreError::Backend(error))
                if matches!(error.kind, BackendErrorKind::Conflict | BackendErrorKind::Retryable)
                    && retries < COMMIT_RETRIES =>
            {
                // Another writer won this version, or a transient failure
                // left nothing behind: re-apply on the latest head.
                retries += 1;
                shared.metrics.commit_retries_total.inc();
                tracing::debug!(%error, retries, "re-applying a commit");
                std::thread::sleep(Duration::from_millis(u64::from(retries) * 2));
                match shared.adopt_latest() {
                    Ok(_) => continue,
                    Err(error) => break Err(error),
                }
            }
            outcome => break outcome,
        }
    };
    match outcome {
        Ok(committed) => {
            shared.metrics.commit_latency.observe(started.elapsed().as_secs_f64());
            let committed = Arc::new(committed);
            for pending in batch {
                shared.metrics.writes_total.inc_by(pending.ops.len() as u64);
                shared
                    .metrics
                    .write_latency
                    .observe(pending.queued.elapsed().as_secs_f64());
                let _ = pending.reply.send(Ok(committed.clone()));
            }
        }
        Err(error) => {
            match &error {
                StoreError::Backend(e) if e.kind == BackendErrorKind::Unknown => {
                    // It may have landed: take whatever head the backend has.
                    tracing::error!(%error, "commit outcome unknown; writers get the error");
                    if let Err(reload) = shared.adopt_latest() {
                        tracing::warn!(error = %reload, "could not reload the head");
                    }
                }
                _ => tracing::warn!(%error, "commit failed; nothing was written"),
            }
            shared.metrics.errors_total.inc();
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}

fn now_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn commit<B: Backend>(shared: &Shared<B>, batch: &[Pending], want_proofs: bool) -> Result<Committed> {
    let head = shared.head();
    let version = head.version + 1;
    let epoch = shared.writer_epoch.load(std::sync::atomic::Ordering::SeqCst);
    if head.epoch > epoch {
        return Err(StoreError::Fenced {
            mine: epoch,
            current: head.epoch,
            version: head.version,
        });
    }
    let mut latest: BTreeMap<&[u8], &PreparedOp> = BTreeMap::new();
    for op in batch.iter().flat_map(|p| &p.ops) {
        latest.insert(&op.key, op);
    }
    let reader = shared.backend.reader()?;
    let view = VersionedPages::new(&reader, head.version, &shared.cache, &shared.codec);
    let tree_ops: Vec<Op> = latest
        .values()
        .map(|op| Op {
            key: op.key_field,
            value: op.value.as_ref().map(|v| v.1),
        })
        .collect();
    let update = head
        .tree
        .apply(&view, &tree_ops)
        .map_err(|e| StoreError::Tree(e.to_string()))?;

    let mut writes = WriteBatch::default();
    // Rows this version supersedes, as one record: they become unreadable once
    // this version leaves the retention window.
    let mut stale_rows = Vec::new();
    let stale = |list: &mut Vec<u8>, table: Table, key: &[u8]| {
        list.push(table.tag());
        list.extend_from_slice(&(key.len() as u32).to_be_bytes());
        list.extend_from_slice(key);
    };
    let mut existed = std::collections::BTreeSet::new();
    let mut keys = head.keys;
    for (key, op) in &latest {
        let escaped = escape_key(key);
        let previous = reader.last_in(
            Table::Values,
            &versioned(&escaped, 0),
            &versioned(&escaped, head.version),
        )?;
        let live_previous = previous.as_ref().filter(|(_, record)| !record.is_empty());
        if live_previous.is_some() {
            existed.insert(key.to_vec());
        }
        match (live_previous.is_some(), op.value.is_some()) {
            (false, true) => keys += 1,
            (true, false) => keys -= 1,
            _ => {}
        }
        let row = versioned(&escaped, version);
        match &op.value {
            Some((value, _)) => {
                let (record, _) = shared.codec.encode(Table::Values, &row, value)?;
                shared.metrics.record_value(value.len(), record.len());
                writes.put(Table::Values, row, record);
                if let Some((old, _)) = &previous {
                    stale(&mut stale_rows, Table::Values, old);
                }
            }
            None if live_previous.is_some() => {
                stale(
                    &mut stale_rows,
                    Table::Values,
                    &previous.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
                );
                stale(&mut stale_rows, Table::Values, &row);
                writes.put(Table::Values, row, Vec::new());
            }
            None => {}
        }
    }
    let found = view
        .found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (id, page) in &update.pages {
        let prefix = id.to_key();
        let row = versioned(&prefix, version);
        if let Some(old) = found.get(id) {
            stale(&mut stale_rows, Table::Pages, &versioned(&prefix, *old));
        }
        match page {
            Some(page) => {
                let (record, _) = shared.codec.encode(Table::Pages, &row, &page.encode())?;
                writes.put(Table::Pages, row, record);
            }
            None => {
                stale(&mut stale_rows, Table::Pages, &row);
                writes.put(Table::Pages, row, Vec::new());
            }
        }
    }
    let timestamp = SystemTime::now();
    let record = RootRecord {
        version,
        root: update.root,
        timestamp_nanos: now_nanos(timestamp),
        op_count: latest.len() as u32,
        keys,
        epoch,
    };
    writes.put(Table::Roots, version.to_be_bytes().to_vec(), record.encode());
    writes.advances_to = Some(version);

    if !stale_rows.is_empty() {
        writes.put(Table::Stale, version.to_be_bytes().to_vec(), stale_rows);
    }

    // Rows that went stale at or before the oldest retained version are no
    // longer read by anyone. A commit removes about as many as it makes
    // stale, so pruning keeps pace; an idle committer clears the rest.
    let budget = PRUNE_ROWS_PER_COMMIT.max(2 * latest.len() + update.pages.len());
    let pruned = prune(&reader, &mut writes, shared.oldest_retained(version), budget)?;
    drop(reader);

    let adding = writes.bytes();
    // A batch of deletes only is always let through: it is how a full store
    // gets its space back once pruning removes the old versions.
    let only_deletes = latest.values().all(|op| op.value.is_none());
    if shared.config.max_size > 0 && !only_deletes {
        let used = shared.backend.disk_bytes();
        if used + adding > shared.config.max_size {
            return Err(StoreError::StorageFull {
                max_size: shared.config.max_size,
                used,
                adding,
            });
        }
    }
    let rows = writes.rows();
    shared
        .backend
        .commit(writes, shared.config.sync_mode == SyncMode::Full)?;
    shared.metrics.stored_rows_total.inc_by(rows as u64);
    shared.metrics.stored_bytes_total.inc_by(adding);
    shared.metrics.pruned_rows_total.inc_by(pruned as u64);
    shared.metrics.tree_hashes_total.inc_by(update.hashes);
    shared.metrics.batch_ops.observe(latest.len() as f64);
    shared.metrics.version.set(version as i64);

    // Into the feed before the head moves, so a replica that sees the
    // head finds its batch.
    if shared.config.replication_feed_ops > 0 {
        let ops = latest
            .iter()
            .map(|(key, op)| (key.to_vec(), op.value.as_ref().map(|(v, _)| v.clone())))
            .collect();
        shared.feed.push(
            Arc::new(crate::store::feed::CommittedBatch { record, ops }),
            shared.config.replication_feed_ops,
        );
    }
    let tree = head.tree.advanced(&update);
    shared.cache.committed(version, &update.pages);
    shared.set_head(Head {
        tree,
        version,
        timestamp_nanos: record.timestamp_nanos,
        keys,
        epoch,
    });
    // No subscriber is fine; a slow one sees `Lagged`.
    let _ = shared.roots.send(record);
    shared.sample_metrics();
    tracing::debug!(
        version,
        rows,
        bytes = adding,
        pruned,
        hashes = update.hashes,
        "committed"
    );

    let proofs = if want_proofs {
        let started = Instant::now();
        let reader = shared.backend.reader()?;
        let view = VersionedPages::new(&reader, version, &shared.cache, &shared.codec);
        let keys: Vec<Fr> = batch
            .iter()
            .filter(|p| p.want_proofs)
            .flat_map(|p| p.ops.iter().map(|op| op.key_field))
            .collect();
        let proofs = tree
            .prove_many(&view, &keys)
            .map_err(|e| StoreError::Tree(e.to_string()))?;
        shared
            .metrics
            .proof_generation_time
            .observe(started.elapsed().as_secs_f64());
        proofs
            .into_iter()
            .map(|lookup| (fr_to_le_bytes(&lookup.key), lookup))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(Committed {
        version,
        root: tree.root(),
        timestamp,
        proofs,
        existed,
    })
}
