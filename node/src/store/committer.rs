//! Group commit: writers queue; one committer thread takes whatever waits (up
//! to `max_batch_ops`, waiting at most `max_batch_delay` for more), applies it
//! to the tree in one batch, writes values, pages, stale records and the root
//! record in one backend transaction, and answers every writer against the new
//! root. It is the only writer, so the tree state needs no lock of its own.
//!
//! With `pipelined_commits`, the backend transaction runs on a writer thread
//! while the committer applies the next batch on top of the one being
//! written (its pages and value rows shadow the stored ones). The next batch
//! is sent to the writer only after the previous one committed, and the head
//! moves only after its own commit: a failed commit discards what was
//! prepared on top of it, and that batch is applied again on the head.

use crate::store::backend::{Backend, BackendErrorKind, BackendReader, Table, WriteBatch};
use crate::store::config::SyncMode;
use crate::store::error::{Result, StoreError};
use crate::store::keys::{RootRecord, escape_key, versioned};
use crate::store::pages::{ChangedPages, VersionedPages};
use crate::store::{Head, Shared};
use rustorium_core::Fr;
use rustorium_core::field::fr_to_le_bytes;
use rustorium_core::tree::{Lookup, Op, SparseMerkleTree};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant, SystemTime};
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
        let superseded_at = <[u8; 8]>::try_from(stale_key.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("malformed stale record key".into()))?;
        pruned += entries.len();
        for (table, key) in entries {
            writes.delete_superseded(table, key.to_vec(), superseded_at);
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
    pub existed: BTreeSet<Vec<u8>>,
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

/// User keys and their new values (`None`: deleted), as the feed keeps them.
type FeedOps = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A batch applied to the tree and encoded into rows, not committed yet.
struct Prepared {
    version: u64,
    /// The tree and live key count once this batch is committed.
    tree: SparseMerkleTree,
    keys: u64,
    record: RootRecord,
    timestamp: SystemTime,
    /// Changed pages, for the page cache and the next batch's view.
    pages: ChangedPages,
    /// Escaped user key -> (value row written, whether it holds a value),
    /// for the next batch's value lookups.
    values: HashMap<Vec<u8>, (Vec<u8>, bool)>,
    existed: BTreeSet<Vec<u8>>,
    /// The batch's ops, for the replication feed (when it keeps any).
    feed_ops: Option<FeedOps>,
    hashes: u64,
    op_count: usize,
    /// The rows; taken when the batch is sent to the writer.
    job: Option<WriteJob>,
}

/// What the writer commits: the rows of one version.
struct WriteJob {
    writes: WriteBatch,
    version: u64,
    /// Whether the commit is made durable; set by the writer when it is sent.
    durable: bool,
    /// Stale rows this commit may prune.
    prune_budget: usize,
    /// Whether `max_size` applies (a batch of deletes only is let through).
    check_size: bool,
}

/// What one backend commit wrote.
struct Written {
    rows: usize,
    bytes: u64,
    pruned: usize,
}

/// What the backend holds that a crash could still lose.
struct Durability {
    mode: SyncMode,
    flush_interval: Duration,
    /// A commit since the last durable one was not made durable.
    dirty: bool,
    /// When the last durable commit was started.
    last_sync: Instant,
}

impl Durability {
    fn new(mode: SyncMode, flush_interval: Duration) -> Self {
        Self {
            mode,
            flush_interval,
            dirty: false,
            last_sync: Instant::now(),
        }
    }

    /// Whether the next commit should be durable. Under `Async` the commit
    /// sent once the flush interval has passed is made durable itself, so a
    /// steady stream of batches never stops for a separate flush.
    fn next_durable(&self) -> bool {
        match self.mode {
            SyncMode::Full => true,
            SyncMode::Async => self.flush_due(),
            SyncMode::None => false,
        }
    }

    /// Whether `Async` owes a flush now.
    fn flush_due(&self) -> bool {
        self.mode == SyncMode::Async && self.dirty && self.last_sync.elapsed() >= self.flush_interval
    }

    /// How long an idle committer may wait before it owes a flush.
    fn idle_wait(&self) -> Duration {
        match self.mode {
            SyncMode::Async if self.dirty => self.flush_interval.saturating_sub(self.last_sync.elapsed()),
            _ => Duration::from_secs(3600),
        }
    }

    /// Records a commit that succeeded; `started` is when it was sent.
    fn committed(&mut self, durable: bool, started: Instant) {
        if durable {
            // Everything committed before it is durable now too.
            self.dirty = false;
            self.last_sync = started;
        } else {
            self.dirty = true;
        }
    }
}

/// Where backend transactions run: on a thread of their own when commits
/// are pipelined, otherwise on the committer thread.
struct Writer<'a, B: Backend> {
    shared: &'a Shared<B>,
    thread: Option<(SyncSender<WriteJob>, Receiver<Result<Written>>)>,
    /// The outcome of an inline write, until `wait` takes it.
    inline: Option<Result<Written>>,
    durability: Durability,
    /// When the job being written was sent, and whether it is durable.
    sent: (Instant, bool),
}

impl<'a, B: Backend> Writer<'a, B> {
    fn start<'scope>(shared: &'a Shared<B>, scope: &'scope std::thread::Scope<'scope, '_>) -> Self
    where
        'a: 'scope,
    {
        let mut writer = Self {
            shared,
            thread: None,
            inline: None,
            durability: Durability::new(shared.config.sync_mode, shared.config.async_flush_interval),
            sent: (Instant::now(), false),
        };
        if !shared.config.pipelined_commits {
            return writer;
        }
        let (jobs, job_queue) = std::sync::mpsc::sync_channel::<WriteJob>(1);
        let (done, results) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("rustorium-writer".into())
            .spawn_scoped(scope, move || {
                for job in job_queue {
                    if done.send(write(shared, job)).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => writer.thread = Some((jobs, results)),
            Err(error) => tracing::warn!(%error, "no writer thread; commits are not pipelined"),
        }
        writer
    }

    fn pipelined(&self) -> bool {
        self.thread.is_some()
    }

    /// Starts writing `job`; `wait` returns the outcome.
    fn send(&mut self, mut job: WriteJob) {
        job.durable = self.durability.next_durable();
        self.sent = (Instant::now(), job.durable);
        let job = match &self.thread {
            Some((jobs, _)) => match jobs.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // The writer thread is gone: write on this thread from now on.
        self.thread = None;
        self.inline = Some(write(self.shared, job));
    }

    fn wait(&mut self) -> Result<Written> {
        let outcome = match (self.inline.take(), &self.thread) {
            (Some(outcome), _) => outcome,
            (None, Some((_, results))) => results.recv().unwrap_or_else(|_| {
                self.thread = None;
                Err(StoreError::Backend(crate::store::backend::BackendError::unknown(
                    "commit",
                    "the writer thread stopped",
                )))
            }),
            (None, None) => Err(StoreError::Closed),
        };
        if outcome.is_ok() {
            let (started, durable) = self.sent;
            self.durability.committed(durable, started);
        }
        outcome
    }

    /// Makes every commit so far durable, if one may not be.
    fn flush(&mut self) -> Result<()> {
        if !self.durability.dirty {
            return Ok(());
        }
        let started = Instant::now();
        self.shared.backend.commit(WriteBatch::default(), true)?;
        self.durability.committed(true, started);
        Ok(())
    }

    /// Writes the prepared batch and waits for it.
    fn write_now(&mut self, mut prepared: Prepared) -> Result<(Prepared, Written)> {
        let job = prepared
            .job
            .take()
            .ok_or_else(|| StoreError::Corrupt("batch written twice".into()))?;
        self.send(job);
        Ok((prepared, self.wait()?))
    }
}

/// A batch whose rows the writer is committing.
struct InFlight {
    batch: Vec<Pending>,
    prepared: Prepared,
    started: Instant,
}

pub fn run<B: Backend>(shared: Arc<Shared<B>>, commands: Receiver<Command>) {
    std::thread::scope(|scope| {
        let mut writer = Writer::start(&shared, scope);
        serve(&shared, &commands, &mut writer);
        // Dropping the writer ends its thread before the scope joins it.
    });
}

fn serve<B: Backend>(shared: &Shared<B>, commands: &Receiver<Command>, writer: &mut Writer<'_, B>) {
    let config = &shared.config;
    let mut backlog = true;
    let mut in_flight: Option<InFlight> = None;
    loop {
        let timeout = writer.durability.idle_wait();
        let first = match commands.try_recv() {
            Ok(command) => Some(command),
            Err(TryRecvError::Disconnected) => break,
            // Nothing to apply meanwhile: answer the batch being written.
            Err(TryRecvError::Empty) if in_flight.is_some() => {
                if let Some(flight) = in_flight.take() {
                    finish(shared, writer, flight);
                }
                continue;
            }
            // Idle: clear the pruning backlog one record at a time, between writers.
            Err(TryRecvError::Empty) if backlog => {
                match prune_idle(shared) {
                    Ok(more) => {
                        backlog = more;
                        writer.durability.dirty |= more;
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
        // While a batch is being written, take only what already waits: its
        // writers are answered once this batch is applied.
        let delay = if in_flight.is_some() {
            Duration::ZERO
        } else {
            config.max_batch_delay
        };
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
                Err(TryRecvError::Empty) if started.elapsed() < delay => {
                    commands.recv_timeout(delay.saturating_sub(started.elapsed())).ok()
                }
                Err(_) => None,
            };
        }
        let wrote = !batch.is_empty();
        if wrote {
            in_flight = commit_batch(shared, writer, batch, in_flight.take());
            backlog = true;
        }
        // A batch just sent carries a flush that was due; an idle committer
        // flushes on its own.
        let flush_due = !wrote && writer.durability.flush_due();
        if !syncs.is_empty() || flush_due {
            // A sync covers every acknowledged write: the one being written too.
            if let Some(flight) = in_flight.take() {
                finish(shared, writer, flight);
            }
            let result = writer.flush();
            for reply in syncs {
                let _ = reply.send(result.clone());
            }
        }
    }
    if let Some(flight) = in_flight.take() {
        finish(shared, writer, flight);
    }
    // Every sender is gone: make everything durable before the thread ends.
    if let Err(error) = writer.flush() {
        tracing::error!(%error, "final flush failed");
    }
}

/// Applies `batch` and starts writing it. When another batch is being
/// written, `batch` is applied on top of it first, and that one is answered
/// before `batch` is sent to the writer. Returns what is being written.
fn commit_batch<B: Backend>(
    shared: &Shared<B>,
    writer: &mut Writer<'_, B>,
    batch: Vec<Pending>,
    in_flight: Option<InFlight>,
) -> Option<InFlight> {
    let span = tracing::info_span!("commit", ops = batch.iter().map(|p| p.ops.len()).sum::<usize>());
    let _guard = span.enter();
    let started = Instant::now();
    // The hashing of this batch overlaps the backend commit of the other.
    let ahead = in_flight.as_ref().map(|f| prepare(shared, &batch, Some(&f.prepared)));
    let base_committed = in_flight.is_none_or(|flight| finish(shared, writer, flight));
    let prepared = match ahead {
        // Valid only on the head it was prepared for: the batch below it
        // committed as prepared, and no other writer's head was adopted.
        Some(Ok(prepared)) if base_committed && prepared.version == shared.head().version + 1 => {
            shared.metrics.pipelined_commits_total.inc();
            Ok(prepared)
        }
        _ => prepare(shared, &batch, None),
    };
    match prepared {
        Ok(mut prepared) if writer.pipelined() => match prepared.job.take() {
            Some(job) => {
                writer.send(job);
                Some(InFlight {
                    batch,
                    prepared,
                    started,
                })
            }
            None => {
                answer(
                    shared,
                    batch,
                    Err(StoreError::Corrupt("batch written twice".into())),
                    started,
                );
                None
            }
        },
        Ok(prepared) => {
            let outcome = writer.write_now(prepared);
            let committed = settle(shared, writer, &batch, outcome);
            answer(shared, batch, committed, started);
            None
        }
        Err(error) => {
            let committed = settle(shared, writer, &batch, Err(error));
            answer(shared, batch, committed, started);
            None
        }
    }
}

/// Waits for the batch being written and answers its writers. Returns
/// whether it committed as prepared (what was prepared on top stays valid).
fn finish<B: Backend>(shared: &Shared<B>, writer: &mut Writer<'_, B>, flight: InFlight) -> bool {
    let outcome = writer.wait().map(|written| (flight.prepared, written));
    let as_prepared = outcome.is_ok();
    let committed = settle(shared, writer, &flight.batch, outcome);
    answer(shared, flight.batch, committed, flight.started);
    as_prepared
}

fn retryable(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(e) if matches!(e.kind, BackendErrorKind::Conflict | BackendErrorKind::Retryable))
}

/// Publishes a written batch, or re-applies it on the latest head after a
/// conflict or a transient failure (up to `COMMIT_RETRIES` times).
fn settle<B: Backend>(
    shared: &Shared<B>,
    writer: &mut Writer<'_, B>,
    batch: &[Pending],
    mut outcome: Result<(Prepared, Written)>,
) -> Result<Committed> {
    let mut retries = 0;
    loop {
        match outcome {
            Ok((prepared, written)) => return publish(shared, batch, prepared, written),
            Err(error) if retryable(&error) && retries < COMMIT_RETRIES => {
                // Another writer won this version, or a transient failure
                // left nothing behind: re-apply on the latest head.
                retries += 1;
                shared.metrics.commit_retries_total.inc();
                tracing::debug!(%error, retries, "re-applying a commit");
                std::thread::sleep(Duration::from_millis(u64::from(retries) * 2));
                shared.adopt_latest()?;
                outcome = prepare(shared, batch, None).and_then(|prepared| writer.write_now(prepared));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Answers every writer of a batch.
fn answer<B: Backend>(shared: &Shared<B>, batch: Vec<Pending>, outcome: Result<Committed>, started: Instant) {
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

/// Applies `batch` to the head, or on top of `base` (a batch prepared on the
/// head and perhaps still being written), and encodes the rows to write.
fn prepare<B: Backend>(shared: &Shared<B>, batch: &[Pending], base: Option<&Prepared>) -> Result<Prepared> {
    let head = shared.head();
    let epoch = shared.writer_epoch.load(std::sync::atomic::Ordering::SeqCst);
    if head.epoch > epoch {
        return Err(StoreError::Fenced {
            mine: epoch,
            current: head.epoch,
            version: head.version,
        });
    }
    let (tree, version, keys_before) = match base {
        Some(base) if base.version == head.version + 1 => (base.tree, base.version + 1, base.keys),
        Some(_) => return Err(StoreError::Corrupt("a pipelined batch lost its base".into())),
        None => (head.tree, head.version + 1, head.keys),
    };
    let mut latest: BTreeMap<&[u8], &PreparedOp> = BTreeMap::new();
    for op in batch.iter().flat_map(|p| &p.ops) {
        latest.insert(&op.key, op);
    }
    let phase_started = Instant::now();
    // Stored rows are read as of the head; `base` shadows them.
    let reader = shared.backend.reader()?;
    let mut view = VersionedPages::new(&reader, head.version, &shared.cache, &shared.codec);
    if let Some(base) = base {
        view = view.with_overlay(base.version, &base.pages);
    }
    let tree_ops: Vec<Op> = latest
        .values()
        .map(|op| Op {
            key: op.key_field,
            value: op.value.as_ref().map(|v| v.1),
        })
        .collect();
    let update = tree
        .apply(&view, &tree_ops)
        .map_err(|e| StoreError::Tree(e.to_string()))?;
    let next_tree = tree.advanced(&update);
    let loading = Duration::from_nanos(view.load_nanos.load(std::sync::atomic::Ordering::Relaxed));
    shared.metrics.phase("pages", loading);
    shared
        .metrics
        .phase("hash", phase_started.elapsed().saturating_sub(loading));
    let phase_started = Instant::now();

    let mut writes = WriteBatch::default();
    // Rows this version supersedes, as one record: they become unreadable once
    // this version leaves the retention window.
    let mut stale_rows = Vec::new();
    let stale = |list: &mut Vec<u8>, table: Table, key: &[u8]| {
        list.push(table.tag());
        list.extend_from_slice(&(key.len() as u32).to_be_bytes());
        list.extend_from_slice(key);
    };
    let mut existed = BTreeSet::new();
    let mut keys = keys_before;
    let mut values = HashMap::with_capacity(latest.len());
    for (key, op) in &latest {
        let escaped = escape_key(key);
        // The previous row of this key, and whether it holds a value.
        let previous = match base.and_then(|b| b.values.get(&escaped)) {
            Some((row, live)) => Some((row.clone(), *live)),
            None => reader
                .last_in(
                    Table::Values,
                    &versioned(&escaped, 0),
                    &versioned(&escaped, head.version),
                )?
                .map(|(row, record)| (row, !record.is_empty())),
        };
        let was_live = previous.as_ref().is_some_and(|(_, live)| *live);
        if was_live {
            existed.insert(key.to_vec());
        }
        match (was_live, op.value.is_some()) {
            (false, true) => keys += 1,
            (true, false) => keys -= 1,
            _ => {}
        }
        let row = versioned(&escaped, version);
        match &op.value {
            Some((value, _)) => {
                let (record, _) = shared.codec.encode(Table::Values, &row, value)?;
                shared.metrics.record_value(value.len(), record.len());
                writes.put(Table::Values, row.clone(), record);
                if let Some((old, _)) = &previous {
                    stale(&mut stale_rows, Table::Values, old);
                }
                values.insert(escaped, (row, true));
            }
            None if was_live => {
                if let Some((old, _)) = &previous {
                    stale(&mut stale_rows, Table::Values, old);
                }
                stale(&mut stale_rows, Table::Values, &row);
                writes.put(Table::Values, row.clone(), Vec::new());
                values.insert(escaped, (row, false));
            }
            None => {}
        }
    }
    let found = view
        .found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut pages = HashMap::with_capacity(update.pages.len());
    for (id, page) in update.pages {
        let prefix = id.to_key();
        let row = versioned(&prefix, version);
        if let Some(old) = found.get(&id) {
            stale(&mut stale_rows, Table::Pages, &versioned(&prefix, *old));
        }
        match &page {
            Some(page) => {
                let (record, _) = shared.codec.encode(Table::Pages, &row, &page.encode())?;
                writes.put(Table::Pages, row, record);
            }
            None => {
                stale(&mut stale_rows, Table::Pages, &row);
                writes.put(Table::Pages, row, Vec::new());
            }
        }
        pages.insert(id, page);
    }
    let timestamp = SystemTime::now();
    let record = RootRecord {
        version,
        root: update.root,
        timestamp_nanos: super::unix_nanos(timestamp),
        op_count: latest.len() as u32,
        keys,
        epoch,
    };
    writes.put(Table::Roots, version.to_be_bytes().to_vec(), record.encode());
    writes.advances_to = Some(version);
    if !stale_rows.is_empty() {
        writes.put(Table::Stale, version.to_be_bytes().to_vec(), stale_rows);
    }
    let feed_ops = (shared.config.replication_feed_ops > 0).then(|| {
        latest
            .iter()
            .map(|(key, op)| (key.to_vec(), op.value.as_ref().map(|(v, _)| v.clone())))
            .collect()
    });
    shared.metrics.phase("rows", phase_started.elapsed());
    Ok(Prepared {
        version,
        tree: next_tree,
        keys,
        record,
        timestamp,
        existed,
        feed_ops,
        hashes: update.hashes,
        op_count: latest.len(),
        job: Some(WriteJob {
            writes,
            version,
            durable: false,
            prune_budget: PRUNE_ROWS_PER_COMMIT.max(2 * latest.len() + pages.len()),
            // A batch of deletes only is always let through: it is how a full
            // store gets its space back once pruning removes the old versions.
            check_size: !latest.values().all(|op| op.value.is_none()),
        }),
        pages,
        values,
    })
}

/// The backend transaction of one version: the prepared rows plus pruning.
fn write<B: Backend>(shared: &Shared<B>, job: WriteJob) -> Result<Written> {
    let WriteJob {
        mut writes,
        version,
        durable,
        prune_budget,
        check_size,
    } = job;
    let phase_started = Instant::now();
    // Rows that went stale at or before the oldest retained version are no
    // longer read by anyone. A commit removes about as many as it makes
    // stale, so pruning keeps pace; an idle committer clears the rest. The
    // reader is taken after the previous commit, so it sees its deletes.
    let reader = shared.backend.reader()?;
    let pruned = prune(&reader, &mut writes, shared.oldest_retained(version), prune_budget)?;
    drop(reader);
    shared.metrics.phase("prune", phase_started.elapsed());

    let adding = writes.bytes();
    if shared.config.max_size > 0 && check_size {
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
    let phase_started = Instant::now();
    shared.backend.commit(writes, durable)?;
    shared.metrics.phase("backend", phase_started.elapsed());
    Ok(Written {
        rows,
        bytes: adding,
        pruned,
    })
}

/// Makes a committed batch the head and builds its writers' proofs.
fn publish<B: Backend>(
    shared: &Shared<B>,
    batch: &[Pending],
    prepared: Prepared,
    written: Written,
) -> Result<Committed> {
    let phase_started = Instant::now();
    let Prepared {
        version,
        tree,
        keys,
        record,
        timestamp,
        pages,
        existed,
        feed_ops,
        hashes,
        op_count,
        ..
    } = prepared;
    shared.metrics.stored_rows_total.inc_by(written.rows as u64);
    shared.metrics.stored_bytes_total.inc_by(written.bytes);
    shared.metrics.pruned_rows_total.inc_by(written.pruned as u64);
    shared.metrics.tree_hashes_total.inc_by(hashes);
    shared.metrics.batch_ops.observe(op_count as f64);
    shared.metrics.version.set(version as i64);

    // Into the feed before the head moves, so a replica that sees the
    // head finds its batch.
    if let Some(ops) = feed_ops {
        shared.feed.push(
            Arc::new(crate::store::feed::CommittedBatch { record, ops }),
            shared.config.replication_feed_ops,
        );
    }
    shared.cache.committed(version, &pages);
    shared.set_head(Head {
        tree,
        version,
        timestamp_nanos: record.timestamp_nanos,
        keys,
        epoch: record.epoch,
    });
    // No subscriber is fine; a slow one sees `Lagged`.
    let _ = shared.roots.send(record);
    shared.sample_metrics();
    tracing::debug!(
        version,
        rows = written.rows,
        bytes = written.bytes,
        pruned = written.pruned,
        hashes,
        "committed"
    );

    let proofs = if batch.iter().any(|p| p.want_proofs) {
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
    shared.metrics.phase("publish", phase_started.elapsed());
    Ok(Committed {
        version,
        root: tree.root(),
        timestamp,
        proofs,
        existed,
    })
}
