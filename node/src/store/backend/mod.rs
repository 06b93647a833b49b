//! Storage backends: ordered byte tables with atomic batch commits and
//! consistent snapshot reads. Backends never hash; they persist what the
//! engine computed.

pub mod any;
pub mod hybrid;
pub mod redb;
pub mod tikv;

use std::ops::Bound;

/// The tables every backend provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `escaped user key ++ version` -> value record (empty = deleted).
    /// Versioned: row keys are a prefix-free prefix and an 8-byte version.
    Values,
    /// `page key ++ version` -> page record (empty = page removed).
    /// Versioned, as `Values`.
    Pages,
    /// `version` -> root record.
    Roots,
    /// `version` -> the rows that version superseded: what pruning deletes
    /// once the version leaves the retention window.
    Stale,
    /// Store-wide settings and checks.
    Meta,
}

impl Table {
    pub const ALL: [Self; 5] = [Self::Values, Self::Pages, Self::Roots, Self::Stale, Self::Meta];

    pub fn name(self) -> &'static str {
        match self {
            Self::Values => "values",
            Self::Pages => "pages",
            Self::Roots => "roots",
            Self::Stale => "stale",
            Self::Meta => "meta",
        }
    }

    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

/// What a caller can do about a backend failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendErrorKind {
    /// Another writer committed the version first: reload the head and
    /// re-apply. Nothing of the failed commit landed.
    Conflict,
    /// A transient failure (timeouts, unavailable servers) that outlasted the
    /// backend's own retries; nothing landed, trying again later may work.
    Retryable,
    /// A commit whose outcome could not be learned: it may have landed.
    Unknown,
    Other,
}

/// A backend failure, with the operation that failed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct BackendError {
    pub operation: &'static str,
    pub message: String,
    pub kind: BackendErrorKind,
}

impl BackendError {
    pub fn new(operation: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            operation,
            message: error.to_string(),
            kind: BackendErrorKind::Other,
        }
    }

    pub fn conflict(operation: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            kind: BackendErrorKind::Conflict,
            ..Self::new(operation, error)
        }
    }

    pub fn unknown(operation: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            kind: BackendErrorKind::Unknown,
            ..Self::new(operation, error)
        }
    }

    pub fn retryable(operation: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            kind: BackendErrorKind::Retryable,
            ..Self::new(operation, error)
        }
    }
}

/// One row a batch deletes.
#[derive(Debug)]
pub struct Delete {
    pub table: Table,
    pub key: Vec<u8>,
    /// For a versioned row that pruning removes: the version that superseded
    /// it. A backend that files old rows by that version may use it to find
    /// the row without walking its history; it must check it.
    pub superseded_at: Option<u64>,
}

/// Puts and deletes that commit together or not at all.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub puts: Vec<(Table, Vec<u8>, Vec<u8>)>,
    pub deletes: Vec<Delete>,
    /// The version this batch makes current (its root record is among the
    /// puts). The commit fails with `BackendErrorKind::Conflict` if a root
    /// record for that version exists already: that is what serializes
    /// writers sharing one backend.
    pub advances_to: Option<u64>,
}

impl WriteBatch {
    pub fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.puts.push((table, key, value));
    }

    pub fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.deletes.push(Delete {
            table,
            key,
            superseded_at: None,
        });
    }

    /// Deletes a versioned row that the row of version `superseded_at`
    /// replaced.
    pub fn delete_superseded(&mut self, table: Table, key: Vec<u8>, superseded_at: u64) {
        self.deletes.push(Delete {
            table,
            key,
            superseded_at: Some(superseded_at),
        });
    }

    /// Bytes this batch adds, for `max_size` accounting.
    pub fn bytes(&self) -> u64 {
        self.puts.iter().map(|(_, k, v)| (k.len() + v.len()) as u64).sum()
    }

    pub fn rows(&self) -> usize {
        self.puts.len()
    }
}

pub type KeyValue = (Vec<u8>, Vec<u8>);

/// "The last entry of `table` in `[start, end]`", for `last_in_many`.
pub type LastIn = (Table, Vec<u8>, Vec<u8>);

/// A consistent read-only view of a backend.
pub trait BackendReader: Send {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// The last entry whose key lies in `[start, end]`.
    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError>;

    /// `last_in` for several ranges at once; remote backends fetch them
    /// concurrently, in one round trip's time.
    fn last_in_many(&self, lookups: &[LastIn]) -> Result<Vec<Option<KeyValue>>, BackendError> {
        lookups
            .iter()
            .map(|(table, start, end)| self.last_in(*table, start, end))
            .collect()
    }

    /// Entries in key order within the bounds, at most `limit`.
    fn range(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError>;
}

/// An ordered key-value backend.
pub trait Backend: Send + Sync + 'static {
    type Reader: BackendReader;

    fn name(&self) -> &'static str;

    /// A snapshot that sees every commit this process made or read before
    /// this call (a shared backend may reuse a recent timestamp for that).
    fn reader(&self) -> Result<Self::Reader, BackendError>;

    /// A snapshot that also sees every commit other processes made before
    /// this call: what checking for a newer head needs.
    fn latest_reader(&self) -> Result<Self::Reader, BackendError> {
        self.reader()
    }

    /// Commits the batch atomically; `durable` makes it survive a crash
    /// (and every non-durable commit before it) before returning.
    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError>;

    /// The store format this backend's layout is (the `format` row of
    /// `Table::Meta`); a store of another format does not open. Required, so
    /// that a wrapper cannot silently report another backend's format.
    fn format(&self) -> &'static [u8];

    /// Bytes the backend occupies on disk.
    fn disk_bytes(&self) -> u64;

    /// `Some(interval)` when other processes may commit to the same tree:
    /// the store then re-reads the latest root record when its head is
    /// older than `interval`, and treats conflicts as another writer's win.
    fn shared(&self) -> Option<std::time::Duration> {
        None
    }

    /// Hits and misses of a backend-level cache, if it has one.
    fn cache_counts(&self) -> Option<(u64, u64)> {
        None
    }
}
