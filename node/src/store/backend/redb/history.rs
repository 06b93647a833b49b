//! Redb's layout for the versioned tables (values and pages).
//!
//! The engine writes `prefix ++ version` rows and reads "the last row of a
//! prefix at or below a version". Stored as such, every write would insert a
//! row at a random place in the B-tree and pruning would later delete another
//! one there: two random copy-on-write leaves per row, which is what bounds a
//! commit on this backend. Here a prefix's newest row lives in a `latest`
//! table under the bare prefix and is overwritten in place; the row it replaces
//! moves to a `history` table under `superseded_at ++ prefix`, where
//! `superseded_at` is the version of the row that replaced it. All the rows a
//! commit moves share its version, so they append at the history table's end,
//! and the rows pruning removes for one version sit together too.
//!
//! A prefix's rows form a chain, newest first: the row in `latest`, then
//! `history[newest.version ++ prefix]`, then `history[that.version ++ prefix]`,
//! and so on, versions strictly falling. Every history row is on its prefix's
//! chain; every write below keeps it so. Prefixes must be prefix-free (escaped
//! user keys and page keys are): that makes the order of `prefix ++ version`
//! keys the order of (prefix, version) pairs, which `range` relies on.

use crate::store::backend::{BackendError, KeyValue, Table};
use crate::store::keys::{VERSION_BYTES, split_version, versioned};
use redb::{ReadableTable, TableDefinition};
use std::ops::{Bound, RangeBounds};

type Bytes = &'static [u8];
pub type Definition = TableDefinition<'static, Bytes, Bytes>;

/// The two Redb tables behind one versioned engine table.
#[derive(Clone, Copy)]
pub struct VersionedTables {
    pub latest: Definition,
    pub history: Definition,
}

/// The tables behind `table` when it is versioned, `None` for plain tables.
pub fn versioned_tables(table: Table) -> Option<VersionedTables> {
    match table {
        Table::Values => Some(VersionedTables {
            latest: TableDefinition::new("values.latest"),
            history: TableDefinition::new("values.history"),
        }),
        Table::Pages => Some(VersionedTables {
            latest: TableDefinition::new("pages.latest"),
            history: TableDefinition::new("pages.history"),
        }),
        Table::Roots | Table::Stale | Table::Meta => None,
    }
}

/// One stored version of a prefix.
#[derive(Debug)]
struct Row {
    version: u64,
    record: Vec<u8>,
}

impl Row {
    fn decode(bytes: &[u8]) -> Result<Self, BackendError> {
        let (version, record) = bytes
            .split_first_chunk::<VERSION_BYTES>()
            .ok_or_else(|| BackendError::new("read versioned row", "stored row is shorter than its version"))?;
        Ok(Self {
            version: u64::from_be_bytes(*version),
            record: record.to_vec(),
        })
    }

    fn encode(version: u64, record: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(VERSION_BYTES + record.len());
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(record);
        bytes
    }
}

fn history_key(superseded_at: u64, prefix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(VERSION_BYTES + prefix.len());
    key.extend_from_slice(&superseded_at.to_be_bytes());
    key.extend_from_slice(prefix);
    key
}

/// Splits an engine row key into its prefix and version.
pub fn split_row_key(key: &[u8]) -> Result<(&[u8], u64), BackendError> {
    split_version(key).ok_or_else(|| {
        BackendError::new(
            "versioned row",
            format!("key {} is shorter than a version", hex::encode(key)),
        )
    })
}

/// Reads one versioned table through its two Redb tables (read-only or in a
/// write transaction).
pub struct Chains<L, H> {
    pub latest: L,
    pub history: H,
}

impl<L: ReadableTable<Bytes, Bytes>, H: ReadableTable<Bytes, Bytes>> Chains<L, H> {
    fn newest(&self, prefix: &[u8]) -> Result<Option<Row>, BackendError> {
        match self.latest.get(prefix).map_err(|e| BackendError::new("get", e))? {
            Some(bytes) => Row::decode(bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The row that the row of version `successor` replaced.
    fn before(&self, successor: u64, prefix: &[u8]) -> Result<Option<Row>, BackendError> {
        match self
            .history
            .get(history_key(successor, prefix).as_slice())
            .map_err(|e| BackendError::new("get", e))?
        {
            Some(bytes) => Row::decode(bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The newest row of `prefix` whose version is at most `version`.
    fn at_most(&self, prefix: &[u8], version: u64) -> Result<Option<Row>, BackendError> {
        let mut row = self.newest(prefix)?;
        while let Some(current) = row.as_ref().filter(|r| r.version > version) {
            row = self.before(current.version, prefix)?;
        }
        Ok(row)
    }

    /// Every row of the chain that starts at `newest`, oldest first.
    fn chain(&self, prefix: &[u8], newest: Row) -> Result<Vec<Row>, BackendError> {
        let mut rows = vec![newest];
        while let Some(older) = self.before(rows[rows.len() - 1].version, prefix)? {
            rows.push(older);
        }
        rows.reverse();
        Ok(rows)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let (prefix, version) = split_row_key(key)?;
        Ok(self
            .at_most(prefix, version)?
            .filter(|row| row.version == version)
            .map(|row| row.record))
    }

    /// The last row in `[start, end]`. The engine always asks within one
    /// prefix, which walks that prefix's chain; any other range is answered
    /// from `range`.
    pub fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        if let (Some((low_prefix, low)), Some((prefix, high))) = (split_version(start), split_version(end))
            && low_prefix == prefix
        {
            return Ok(self
                .at_most(prefix, high)?
                .filter(|row| row.version >= low)
                .map(|row| (versioned(prefix, row.version), row.record)));
        }
        Ok(self
            .range(Bound::Included(start), Bound::Included(end), usize::MAX)?
            .pop())
    }

    /// Rows in `prefix ++ version` order within the bounds, at most `limit`.
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, limit: usize) -> Result<Vec<KeyValue>, BackendError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let from = match start {
            Bound::Included(key) | Bound::Excluded(key) => key,
            Bound::Unbounded => &[][..],
        };
        // A prefix sorting before `from` can still have rows after it: the
        // one stored prefix that `from` begins with, which (prefixes being
        // prefix-free) is the last prefix before `from`.
        let before = self
            .latest
            .range::<&[u8]>(..from)
            .map_err(|e| BackendError::new("range", e))?
            .next_back()
            .transpose()
            .map_err(|e| BackendError::new("range", e))?
            .filter(|(prefix, _)| from.starts_with(prefix.value()))
            .map(|(prefix, row)| (prefix.value().to_vec(), row.value().to_vec()));
        let after = self
            .latest
            .range::<&[u8]>(from..)
            .map_err(|e| BackendError::new("range", e))?
            .map(|entry| {
                entry
                    .map(|(prefix, row)| (prefix.value().to_vec(), row.value().to_vec()))
                    .map_err(|e| BackendError::new("range", e))
            });
        let past_end = |prefix: &[u8]| match end {
            Bound::Included(end) | Bound::Excluded(end) => prefix > end,
            Bound::Unbounded => false,
        };
        let in_bounds = |key: &[u8]| RangeBounds::<[u8]>::contains(&(start, end), key);
        for entry in before.map(Ok).into_iter().chain(after) {
            let (prefix, newest) = entry?;
            if past_end(&prefix) {
                break;
            }
            for row in self.chain(&prefix, Row::decode(&newest)?)? {
                let key = versioned(&prefix, row.version);
                if in_bounds(&key) {
                    out.push((key, row.record));
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Chains<redb::Table<'_, Bytes, Bytes>, redb::Table<'_, Bytes, Bytes>> {
    fn set_latest(&mut self, prefix: &[u8], version: u64, record: &[u8]) -> Result<(), BackendError> {
        self.latest
            .insert(prefix, Row::encode(version, record).as_slice())
            .map_err(|e| BackendError::new("insert", e))?;
        Ok(())
    }

    fn set_before(&mut self, successor: u64, prefix: &[u8], version: u64, record: &[u8]) -> Result<(), BackendError> {
        self.history
            .insert(
                history_key(successor, prefix).as_slice(),
                Row::encode(version, record).as_slice(),
            )
            .map_err(|e| BackendError::new("insert", e))?;
        Ok(())
    }

    fn remove_before(&mut self, successor: u64, prefix: &[u8]) -> Result<(), BackendError> {
        self.history
            .remove(history_key(successor, prefix).as_slice())
            .map_err(|e| BackendError::new("delete", e))?;
        Ok(())
    }

    /// Stores the row `key` (`prefix ++ version`), replacing a row of the
    /// same key.
    pub fn put(&mut self, key: &[u8], record: &[u8]) -> Result<(), BackendError> {
        let (prefix, version) = split_row_key(key)?;
        let Some(newest) = self.newest(prefix)? else {
            return self.set_latest(prefix, version, record);
        };
        if newest.version < version {
            // The engine's case: a commit supersedes the newest row.
            self.set_before(version, prefix, newest.version, &newest.record)?;
            return self.set_latest(prefix, version, record);
        }
        if newest.version == version {
            return self.set_latest(prefix, version, record);
        }
        // An older version goes inside the chain, after the first row newer
        // than it.
        let mut successor = newest.version;
        loop {
            match self.before(successor, prefix)? {
                Some(row) if row.version > version => successor = row.version,
                Some(row) if row.version < version => {
                    self.set_before(version, prefix, row.version, &row.record)?;
                    return self.set_before(successor, prefix, version, record);
                }
                _ => return self.set_before(successor, prefix, version, record),
            }
        }
    }

    /// Deletes the row `key` if it is stored. `superseded_at`, when given, is
    /// what the caller believes to be the version of the row that replaced
    /// it (pruning knows it); it is checked, and saves walking the chain.
    pub fn delete(&mut self, key: &[u8], superseded_at: Option<u64>) -> Result<(), BackendError> {
        let (prefix, version) = split_row_key(key)?;
        let hinted = match superseded_at {
            Some(successor)
                if self
                    .before(successor, prefix)?
                    .is_some_and(|row| row.version == version) =>
            {
                Some(successor)
            }
            _ => None,
        };
        // Where the row sits: `None` for `latest`, else its successor's version.
        let successor = match hinted {
            Some(successor) => Some(successor),
            None => {
                let Some(newest) = self.newest(prefix)? else {
                    return Ok(());
                };
                let mut successor = newest.version;
                if successor != version {
                    loop {
                        match self.before(successor, prefix)? {
                            Some(row) if row.version == version => break,
                            Some(row) if row.version > version => successor = row.version,
                            _ => return Ok(()),
                        }
                    }
                }
                (successor != version).then_some(successor)
            }
        };
        let predecessor = self.before(version, prefix)?;
        if predecessor.is_some() {
            self.remove_before(version, prefix)?;
        }
        match (successor, predecessor) {
            (None, None) => {
                self.latest.remove(prefix).map_err(|e| BackendError::new("delete", e))?;
                Ok(())
            }
            (None, Some(row)) => self.set_latest(prefix, row.version, &row.record),
            (Some(successor), None) => self.remove_before(successor, prefix),
            (Some(successor), Some(row)) => self.set_before(successor, prefix, row.version, &row.record),
        }
    }
}
