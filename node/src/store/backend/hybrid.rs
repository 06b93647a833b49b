//! The hybrid backend: TiKV is the source of truth; a Redb file on the node
//! is a write-through cache of value and page lookups.
//!
//! Reads ask "the newest row of prefix P at or below version v" (`last_in`
//! over `P ++ 0 ..= P ++ v`). The cache stores, per prefix, the answer as
//! of one version, `coherent`: the row's version (or "no row") and record.
//! That answer is also right for any `v` with `written <= v <= coherent`.
//! This node's commits keep the cache coherent (write-through in the same
//! step that advances `coherent`). A commit by another node shows up as a
//! read at a version above `coherent`: the cache then starts a new epoch,
//! which invalidates every entry at once (entries carry their epoch), and
//! refills from TiKV. Root records, settings and scans always go to TiKV.

use super::tikv::{TikvBackend, TikvReader};
use super::{Backend, BackendError, BackendReader, KeyValue, LastIn, Table, WriteBatch};
use crate::store::keys::{split_version, versioned};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const FILE_NAME: &str = "rustorium-cache.redb";
/// `table tag ++ prefix` -> `epoch ++ written version ++ present flag ++ record`.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// "coherent" and "epoch".
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

fn cacheable(table: Table) -> bool {
    matches!(table, Table::Values | Table::Pages)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Coherence {
    /// The version the entries of the current epoch are the latest as of.
    coherent: u64,
    epoch: u64,
}

/// One cached answer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    epoch: u64,
    /// 0 with `row: None`: no row as of `coherent`.
    written: u64,
    row: Option<Vec<u8>>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.row.as_ref().map_or(0, Vec::len));
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.written.to_be_bytes());
        match &self.row {
            Some(record) => {
                out.push(1);
                out.extend_from_slice(record);
            }
            None => out.push(0),
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (epoch, rest) = bytes.split_at_checked(8)?;
        let (written, rest) = rest.split_at_checked(8)?;
        let (&flag, record) = rest.split_first()?;
        Some(Self {
            epoch: u64::from_be_bytes(epoch.try_into().ok()?),
            written: u64::from_be_bytes(written.try_into().ok()?),
            row: match flag {
                1 => Some(record.to_vec()),
                0 if record.is_empty() => None,
                _ => return None,
            },
        })
    }
}

fn entry_key(table: Table, prefix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + prefix.len());
    key.push(table.tag());
    key.extend_from_slice(prefix);
    key
}

#[derive(Debug)]
struct LocalCache {
    db: Database,
    file: PathBuf,
    coherence: Mutex<Coherence>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Entries the cache may hold (one per cached value or page prefix).
    max_entries: u64,
    /// Times the cache was full and started over.
    clears: AtomicU64,
}

impl LocalCache {
    fn open(dir: &Path, max_entries: u64) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackendError::new("create cache directory", format!("{}: {e}", dir.display())))?;
        let file = dir.join(FILE_NAME);
        let db = Database::create(&file)
            .map_err(|e| BackendError::new("open the local cache", format!("{}: {e}", file.display())))?;
        let txn = db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
        let coherence = {
            txn.open_table(ENTRIES)
                .map_err(|e| BackendError::new("create table", e))?;
            let meta = txn.open_table(META).map_err(|e| BackendError::new("create table", e))?;
            let read = |name: &str| -> Result<u64, BackendError> {
                Ok(meta
                    .get(name)
                    .map_err(|e| BackendError::new("read cache meta", e))?
                    .map_or(0, |v| v.value()))
            };
            // A restarted node cannot know what other nodes committed while
            // it was down: everything cached before starts a stale epoch.
            Coherence {
                coherent: read("coherent")?,
                epoch: read("epoch")? + 1,
            }
        };
        txn.commit().map_err(|e| BackendError::new("commit", e))?;
        Ok(Self {
            db,
            file,
            coherence: Mutex::new(coherence),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            max_entries: max_entries.max(1),
            clears: AtomicU64::new(0),
        })
    }

    fn coherence(&self) -> std::sync::MutexGuard<'_, Coherence> {
        self.coherence.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a read at `version`; a version above `coherent` was committed
    /// elsewhere, so the cache starts a new epoch there.
    fn observe(&self, version: u64) -> Coherence {
        let mut coherence = self.coherence();
        if version > coherence.coherent {
            coherence.coherent = version;
            coherence.epoch += 1;
        }
        *coherence
    }

    /// Writes entries in one local commit, with the coherence as of that
    /// commit: write transactions are serialized and the epoch only grows,
    /// so the stored epoch is never below an entry's (a restart starts above
    /// every stored entry).
    ///
    /// `filled_as_of`: the coherence a reader's answers were fetched under;
    /// if a commit or an epoch moved it since, the answers may be stale and
    /// are dropped (write-through passes `None`).
    fn store(&self, entries: &[(Vec<u8>, Entry)], filled_as_of: Option<Coherence>) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
        let coherence = *self.coherence();
        if filled_as_of.is_some_and(|c| c != coherence) {
            return Ok(());
        }
        // A cache needs no fsync: a lost entry is refetched, and a Redb
        // commit is atomic even without one.
        txn.set_durability(Durability::None)
            .map_err(|e| BackendError::new("set durability", e))?;
        {
            let mut table = txn
                .open_table(ENTRIES)
                .map_err(|e| BackendError::new("open table", e))?;
            if table.len().map_err(|e| BackendError::new("cache size", e))? + entries.len() as u64 > self.max_entries {
                // Full: start over rather than track recency per entry. The
                // cache refills with what is read and written from now on.
                table
                    .retain(|_, _| false)
                    .map_err(|e| BackendError::new("cache clear", e))?;
                self.clears.fetch_add(1, Ordering::Relaxed);
            }
            for (key, entry) in entries {
                table
                    .insert(key.as_slice(), entry.encode().as_slice())
                    .map_err(|e| BackendError::new("cache insert", e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| BackendError::new("open table", e))?;
            meta.insert("coherent", coherence.coherent)
                .map_err(|e| BackendError::new("cache meta", e))?;
            meta.insert("epoch", coherence.epoch)
                .map_err(|e| BackendError::new("cache meta", e))?;
        }
        txn.commit().map_err(|e| BackendError::new("cache commit", e))
    }
}

/// TiKV with a local Redb cache in front of value and page lookups.
#[derive(Clone, Debug)]
pub struct HybridBackend {
    remote: TikvBackend,
    local: Arc<LocalCache>,
}

impl HybridBackend {
    /// Uses `remote` as the source of truth and `cache_dir` for the cache.
    /// The cache holds at most `remote.config().hybrid_cache_entries`.
    pub fn open(remote: TikvBackend, cache_dir: &Path) -> Result<Self, BackendError> {
        let max_entries = remote.config().hybrid_cache_entries;
        Ok(Self {
            local: Arc::new(LocalCache::open(cache_dir, max_entries)?),
            remote,
        })
    }

    /// A reader of `remote` with a local read transaction taken now.
    fn reader_over(&self, remote: TikvReader) -> Result<HybridReader, BackendError> {
        Ok(HybridReader {
            remote,
            local: self.local.clone(),
            txn: self
                .local
                .db
                .begin_read()
                .map_err(|e| BackendError::new("begin read", e))?,
        })
    }

    /// Times the cache filled up and started over.
    pub fn cache_clears(&self) -> u64 {
        self.local.clears.load(Ordering::Relaxed)
    }
}

impl Backend for HybridBackend {
    type Reader = HybridReader;

    fn name(&self) -> &'static str {
        "hybrid"
    }

    fn latest_reader(&self) -> Result<HybridReader, BackendError> {
        self.reader_over(self.remote.latest_reader()?)
    }

    fn reader(&self) -> Result<HybridReader, BackendError> {
        self.reader_over(self.remote.reader()?)
    }

    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError> {
        let cached_puts: Vec<(Vec<u8>, u64, Vec<u8>)> = batch
            .puts
            .iter()
            .filter(|(table, _, _)| cacheable(*table))
            .filter_map(|(table, key, record)| {
                let (prefix, written) = split_version(key)?;
                Some((entry_key(*table, prefix), written, record.clone()))
            })
            .collect();
        let cached_deletes: Vec<(Vec<u8>, u64)> = batch
            .deletes
            .iter()
            .filter(|delete| cacheable(delete.table))
            .filter_map(|delete| {
                let (prefix, written) = split_version(&delete.key)?;
                Some((entry_key(delete.table, prefix), written))
            })
            .collect();
        let advances_to = batch.advances_to;
        self.remote.commit(batch, durable)?;
        if let Err(error) = self.write_through(advances_to, &cached_puts, &cached_deletes) {
            // TiKV has the commit; the cache must not answer from before it.
            let mut coherence = self.local.coherence();
            coherence.epoch += 1;
            tracing::warn!(%error, "hybrid cache write-through failed; cache invalidated");
        }
        Ok(())
    }

    fn format(&self) -> &'static [u8] {
        b"1"
    }

    fn disk_bytes(&self) -> u64 {
        // This node's disk holds only the cache; TiKV's size is the cluster's.
        std::fs::metadata(&self.local.file).map_or(0, |m| m.len())
    }

    fn shared(&self) -> Option<std::time::Duration> {
        self.remote.shared()
    }

    fn cache_counts(&self) -> Option<(u64, u64)> {
        Some((
            self.local.hits.load(Ordering::Relaxed),
            self.local.misses.load(Ordering::Relaxed),
        ))
    }
}

impl HybridBackend {
    /// Applies a committed batch to the cache.
    fn write_through(
        &self,
        advances_to: Option<u64>,
        puts: &[(Vec<u8>, u64, Vec<u8>)],
        deletes: &[(Vec<u8>, u64)],
    ) -> Result<(), BackendError> {
        let mut coherence = self.local.coherence();
        if let Some(version) = advances_to {
            if version <= coherence.coherent {
                // A newer head was seen meanwhile; these rows may be superseded.
                return Ok(());
            }
            if version > coherence.coherent + 1 {
                // Versions committed elsewhere in between.
                coherence.epoch += 1;
            }
            coherence.coherent = version;
        }
        let mut entries = Vec::with_capacity(puts.len() + deletes.len());
        if advances_to.is_some() {
            for (key, written, record) in puts {
                let entry = Entry {
                    epoch: coherence.epoch,
                    written: *written,
                    row: Some(record.clone()),
                };
                entries.push((key.clone(), entry));
            }
        }
        if !deletes.is_empty() {
            // Pruning deletes superseded rows, and tombstones once they age
            // out: an entry that names a deleted row now means "no row".
            let txn = self
                .local
                .db
                .begin_read()
                .map_err(|e| BackendError::new("begin read", e))?;
            let table = txn
                .open_table(ENTRIES)
                .map_err(|e| BackendError::new("open table", e))?;
            // A prefix this batch also writes has its new entry already: the
            // pruned row is older than it (the entry below predates this batch).
            let written_now: std::collections::HashSet<&[u8]> = if advances_to.is_some() {
                puts.iter().map(|(key, _, _)| key.as_slice()).collect()
            } else {
                std::collections::HashSet::new()
            };
            for (key, written) in deletes {
                if written_now.contains(key.as_slice()) {
                    continue;
                }
                let current = table
                    .get(key.as_slice())
                    .map_err(|e| BackendError::new("cache get", e))?
                    .and_then(|v| Entry::decode(v.value()));
                if let Some(entry) = current
                    && entry.written == *written
                {
                    entries.push((
                        key.clone(),
                        Entry {
                            written: 0,
                            row: None,
                            ..entry
                        },
                    ));
                }
            }
        }
        drop(coherence);
        self.local.store(&entries, None)
    }
}

/// A TiKV snapshot (taken lazily, so a read the cache answers never asks
/// PD for a timestamp) and a local read transaction.
pub struct HybridReader {
    remote: TikvReader,
    local: Arc<LocalCache>,
    txn: redb::ReadTransaction,
}

impl std::fmt::Debug for HybridReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridReader").field("remote", &self.remote).finish()
    }
}

impl HybridReader {
    fn cached(
        &self,
        table: Table,
        prefix: &[u8],
        version: u64,
        epoch: u64,
    ) -> Result<Option<Option<KeyValue>>, BackendError> {
        let entries = self
            .txn
            .open_table(ENTRIES)
            .map_err(|e| BackendError::new("open table", e))?;
        let Some(entry) = entries
            .get(entry_key(table, prefix).as_slice())
            .map_err(|e| BackendError::new("cache get", e))?
            .and_then(|v| Entry::decode(v.value()))
        else {
            return Ok(None);
        };
        if entry.epoch != epoch || entry.written > version {
            return Ok(None);
        }
        Ok(Some(entry.row.map(|record| (versioned(prefix, entry.written), record))))
    }
}

impl BackendReader for HybridReader {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.remote.get(table, key)
    }

    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        Ok(self
            .last_in_many(&[(table, start.to_vec(), end.to_vec())])?
            .pop()
            .flatten())
    }

    fn last_in_many(&self, lookups: &[LastIn]) -> Result<Vec<Option<KeyValue>>, BackendError> {
        // Only "newest version of one prefix" lookups of values and pages
        // are cacheable; the rest go to TiKV, in the same batch as misses.
        let cacheable_lookup = |(table, start, end): &LastIn| -> Option<(Vec<u8>, u64)> {
            if !cacheable(*table) {
                return None;
            }
            let (prefix, version) = split_version(end)?;
            (start.as_slice() == versioned(prefix, 0).as_slice()).then(|| (prefix.to_vec(), version))
        };
        let mut answers = Vec::with_capacity(lookups.len());
        let mut remote = Vec::new();
        let (mut hits, mut misses) = (0, 0);
        for (i, lookup) in lookups.iter().enumerate() {
            let cached = match cacheable_lookup(lookup) {
                Some((prefix, version)) => {
                    let coherence = self.local.observe(version);
                    let cached = self.cached(lookup.0, &prefix, version, coherence.epoch)?;
                    if cached.is_some() {
                        hits += 1;
                    } else {
                        misses += 1;
                    }
                    cached
                }
                None => None,
            };
            match cached {
                Some(answer) => answers.push(answer),
                None => {
                    answers.push(None);
                    remote.push(i);
                }
            }
        }
        self.local.hits.fetch_add(hits, Ordering::Relaxed);
        self.local.misses.fetch_add(misses, Ordering::Relaxed);
        if remote.is_empty() {
            return Ok(answers);
        }
        let remote_lookups: Vec<LastIn> = remote.iter().map(|&i| lookups[i].clone()).collect();
        let fetched = self.remote.last_in_many(&remote_lookups)?;
        let coherence = *self.local.coherence();
        let mut fills = Vec::new();
        for (&i, answer) in remote.iter().zip(fetched) {
            // Only an answer as of `coherent` is the latest as of it.
            if let Some((prefix, version)) = cacheable_lookup(&lookups[i])
                && version == coherence.coherent
            {
                let entry = Entry {
                    epoch: coherence.epoch,
                    written: answer
                        .as_ref()
                        .and_then(|(key, _)| split_version(key))
                        .map_or(0, |(_, w)| w),
                    row: answer.as_ref().map(|(_, record)| record.clone()),
                };
                fills.push((entry_key(lookups[i].0, &prefix), entry));
            }
            answers[i] = answer;
        }
        if !fills.is_empty()
            && let Err(error) = self.local.store(&fills, Some(coherence))
        {
            tracing::warn!(%error, "hybrid cache fill failed");
        }
        Ok(answers)
    }

    fn range(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        self.remote.range(table, start, end, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for entry in [
            Entry {
                epoch: 3,
                written: 9,
                row: Some(b"record".to_vec()),
            },
            Entry {
                epoch: 1,
                written: 4,
                row: Some(Vec::new()),
            },
            Entry {
                epoch: u64::MAX,
                written: 0,
                row: None,
            },
        ] {
            assert_eq!(Entry::decode(&entry.encode()), Some(entry));
        }
        assert_eq!(Entry::decode(&[0; 16]), None);
        assert_eq!(Entry::decode(&[0; 18]), None, "no row but a record");
    }
}
