//! The Redb backend: one file, five `&[u8] -> &[u8]` tables.

use super::{Backend, BackendError, BackendReader, KeyValue, Table, WriteBatch};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// The Redb file in a store directory.
pub const FILE_NAME: &str = "rustorium.redb";

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// Redb on one file under the store directory.
pub struct RedbBackend {
    db: Database,
    file: PathBuf,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend").field("file", &self.file).finish()
    }
}

impl RedbBackend {
    /// Opens or creates the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackendError::new("create data directory", format!("{}: {e}", dir.display())))?;
        let file = dir.join(FILE_NAME);
        let db =
            Database::create(&file).map_err(|e| BackendError::new("open redb", format!("{}: {e}", file.display())))?;
        let txn = db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
        for table in Table::ALL {
            txn.open_table(definition(table))
                .map_err(|e| BackendError::new("create table", e))?;
        }
        txn.commit().map_err(|e| BackendError::new("commit", e))?;
        Ok(Self { db, file })
    }
}

/// A redb read transaction.
#[derive(Debug)]
pub struct RedbReader {
    txn: ReadTransaction,
}

impl BackendReader for RedbReader {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let t = self
            .txn
            .open_table(definition(table))
            .map_err(|e| BackendError::new("open table", e))?;
        Ok(t.get(key)
            .map_err(|e| BackendError::new("get", e))?
            .map(|v| v.value().to_vec()))
    }

    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        let t = self
            .txn
            .open_table(definition(table))
            .map_err(|e| BackendError::new("open table", e))?;
        let mut range = t.range(start..=end).map_err(|e| BackendError::new("range", e))?;
        match range.next_back() {
            None => Ok(None),
            Some(entry) => {
                let (k, v) = entry.map_err(|e| BackendError::new("range", e))?;
                Ok(Some((k.value().to_vec(), v.value().to_vec())))
            }
        }
    }

    fn range(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        let t = self
            .txn
            .open_table(definition(table))
            .map_err(|e| BackendError::new("open table", e))?;
        let range = t
            .range::<&[u8]>((start, end))
            .map_err(|e| BackendError::new("range", e))?;
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (k, v) = entry.map_err(|e| BackendError::new("range", e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl Backend for RedbBackend {
    type Reader = RedbReader;

    fn name(&self) -> &'static str {
        "redb"
    }

    fn reader(&self) -> Result<RedbReader, BackendError> {
        Ok(RedbReader {
            txn: self.db.begin_read().map_err(|e| BackendError::new("begin read", e))?,
        })
    }

    fn commit(&self, batch: WriteBatch, durable: bool) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| BackendError::new("set durability", e))?;
        if let Some(version) = batch.advances_to {
            let roots = txn
                .open_table(definition(Table::Roots))
                .map_err(|e| BackendError::new("open table", e))?;
            let taken = roots
                .get(version.to_be_bytes().as_slice())
                .map_err(|e| BackendError::new("get", e))?
                .is_some();
            if taken {
                return Err(BackendError::conflict(
                    "commit",
                    format!("version {version} is already committed"),
                ));
            }
        }
        for table in Table::ALL {
            let puts: Vec<_> = batch.puts.iter().filter(|(t, _, _)| *t == table).collect();
            let deletes: Vec<_> = batch.deletes.iter().filter(|(t, _)| *t == table).collect();
            if puts.is_empty() && deletes.is_empty() {
                continue;
            }
            let mut t = txn
                .open_table(definition(table))
                .map_err(|e| BackendError::new("open table", e))?;
            for (_, key) in deletes {
                t.remove(key.as_slice()).map_err(|e| BackendError::new("delete", e))?;
            }
            for (_, key, value) in puts {
                t.insert(key.as_slice(), value.as_slice())
                    .map_err(|e| BackendError::new("insert", e))?;
            }
        }
        txn.commit().map_err(|e| BackendError::new("commit", e))
    }

    fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }
}
