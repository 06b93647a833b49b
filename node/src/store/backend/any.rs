//! The backend a node's config chooses at run time: `backend = "redb" |
//! "tikv" | "hybrid"` under `[storage]`.

use super::hybrid::{HybridBackend, HybridReader};
use super::redb::{RedbBackend, RedbReader};
use super::tikv::{TikvBackend, TikvReader};
use super::{Backend, BackendError, BackendReader, KeyValue, LastIn, Table, WriteBatch};
use crate::store::config::{BackendKind, StorageConfig};
use std::ops::Bound;

/// One of the backends, chosen by `StorageConfig::backend`.
#[derive(Debug)]
pub enum AnyBackend {
    Redb(RedbBackend),
    Tikv(TikvBackend),
    Hybrid(HybridBackend),
}

impl AnyBackend {
    /// Opens what the config names: Redb under `path`, TiKV at
    /// `tikv.pd_endpoints`, or TiKV with its cache under `path`.
    pub fn open(config: &StorageConfig) -> Result<Self, BackendError> {
        Ok(match config.backend {
            BackendKind::Redb => Self::Redb(RedbBackend::open(&config.path)?),
            BackendKind::Tikv => Self::Tikv(TikvBackend::connect(config.tikv.clone())?),
            BackendKind::Hybrid => Self::Hybrid(HybridBackend::open(
                TikvBackend::connect(config.tikv.clone())?,
                &config.path,
            )?),
        })
    }

    /// The same, sharing `connection`'s TiKV client (its namespace taken
    /// from the config) for the tikv and hybrid backends.
    pub fn open_on(config: &StorageConfig, connection: &TikvBackend) -> Result<Self, BackendError> {
        let remote = || connection.in_namespace(&config.tikv.namespace);
        Ok(match config.backend {
            BackendKind::Redb => Self::Redb(RedbBackend::open(&config.path)?),
            BackendKind::Tikv => Self::Tikv(remote()),
            BackendKind::Hybrid => Self::Hybrid(HybridBackend::open(remote(), &config.path)?),
        })
    }
}

/// The reader of whichever backend is in use.
#[derive(Debug)]
pub enum AnyReader {
    Redb(RedbReader),
    Tikv(TikvReader),
    Hybrid(HybridReader),
}

macro_rules! each {
    ($value:expr, $inner:ident => $body:expr) => {
        match $value {
            Self::Redb($inner) => $body,
            Self::Tikv($inner) => $body,
            Self::Hybrid($inner) => $body,
        }
    };
}

impl BackendReader for AnyReader {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        each!(self, r => r.get(table, key))
    }

    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        each!(self, r => r.last_in(table, start, end))
    }

    fn last_in_many(&self, lookups: &[LastIn]) -> Result<Vec<Option<KeyValue>>, BackendError> {
        each!(self, r => r.last_in_many(lookups))
    }

    fn range(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        each!(self, r => r.range(table, start, end, limit))
    }
}

impl Backend for AnyBackend {
    type Reader = AnyReader;

    fn name(&self) -> &'static str {
        each!(self, b => b.name())
    }

    fn reader(&self) -> Result<AnyReader, BackendError> {
        Ok(match self {
            Self::Redb(b) => AnyReader::Redb(b.reader()?),
            Self::Tikv(b) => AnyReader::Tikv(b.reader()?),
            Self::Hybrid(b) => AnyReader::Hybrid(b.reader()?),
        })
    }

    fn latest_reader(&self) -> Result<AnyReader, BackendError> {
        Ok(match self {
            Self::Redb(b) => AnyReader::Redb(b.latest_reader()?),
            Self::Tikv(b) => AnyReader::Tikv(b.latest_reader()?),
            Self::Hybrid(b) => AnyReader::Hybrid(b.latest_reader()?),
        })
    }

    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError> {
        each!(self, b => b.commit(batch, durable))
    }

    fn format(&self) -> &'static [u8] {
        each!(self, b => b.format())
    }

    fn disk_bytes(&self) -> u64 {
        each!(self, b => b.disk_bytes())
    }

    fn shared(&self) -> Option<std::time::Duration> {
        each!(self, b => b.shared())
    }

    fn cache_counts(&self) -> Option<(u64, u64)> {
        each!(self, b => b.cache_counts())
    }
}
