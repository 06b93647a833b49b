//! The Redb backend: one file. Plain tables are `&[u8] -> &[u8]` tables
//! under the engine table's name; the versioned ones (values, pages) use the
//! latest/history layout of `history`.

mod history;
mod legacy;

use super::{Backend, BackendError, BackendReader, Delete, KeyValue, Table, WriteBatch};
use history::{Chains, VersionedTables, versioned_tables};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// The Redb file in a store directory.
pub const FILE_NAME: &str = "rustorium.redb";

/// The store format of this layout: 1 was one `prefix ++ version` table per
/// versioned table; 2 is the latest/history layout. Older binaries refuse 2
/// instead of reading a migrated file as empty.
pub const FORMAT: &[u8] = b"2";

fn plain_definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
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
    /// Opens or creates the database in `dir`, moving a store of the older
    /// layout into the current one.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackendError::new("create data directory", format!("{}: {e}", dir.display())))?;
        let file = dir.join(FILE_NAME);
        let db =
            Database::create(&file).map_err(|e| BackendError::new("open redb", format!("{}: {e}", file.display())))?;
        let moved = legacy::migrate(&db)?;
        if moved > 0 {
            tracing::info!(rows = moved, file = %file.display(), "moved the store into the latest/history layout");
        }
        let txn = db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
        for table in Table::ALL {
            match versioned_tables(table) {
                Some(tables) => {
                    open_chains(&txn, tables)?;
                }
                None => {
                    open(&txn, plain_definition(table))?;
                }
            }
        }
        txn.commit().map_err(|e| BackendError::new("commit", e))?;
        Ok(Self { db, file })
    }
}

type WriteTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

fn open<'txn>(
    txn: &'txn WriteTransaction,
    definition: TableDefinition<'static, &'static [u8], &'static [u8]>,
) -> Result<WriteTable<'txn>, BackendError> {
    txn.open_table(definition)
        .map_err(|e| BackendError::new("open table", e))
}

/// A versioned table's two Redb tables, open for writing.
fn open_chains(
    txn: &WriteTransaction,
    tables: VersionedTables,
) -> Result<Chains<WriteTable<'_>, WriteTable<'_>>, BackendError> {
    Ok(Chains {
        latest: open(txn, tables.latest)?,
        history: open(txn, tables.history)?,
    })
}

/// A redb read transaction.
#[derive(Debug)]
pub struct RedbReader {
    txn: ReadTransaction,
}

type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl RedbReader {
    fn open(
        &self,
        definition: TableDefinition<'static, &'static [u8], &'static [u8]>,
    ) -> Result<ReadTable, BackendError> {
        self.txn
            .open_table(definition)
            .map_err(|e| BackendError::new("open table", e))
    }

    fn plain(&self, table: Table) -> Result<ReadTable, BackendError> {
        self.open(plain_definition(table))
    }

    fn chains(&self, table: Table) -> Result<Option<Chains<ReadTable, ReadTable>>, BackendError> {
        let Some(tables) = versioned_tables(table) else {
            return Ok(None);
        };
        Ok(Some(Chains {
            latest: self.open(tables.latest)?,
            history: self.open(tables.history)?,
        }))
    }
}

impl BackendReader for RedbReader {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        if let Some(chains) = self.chains(table)? {
            return chains.get(key);
        }
        Ok(self
            .plain(table)?
            .get(key)
            .map_err(|e| BackendError::new("get", e))?
            .map(|v| v.value().to_vec()))
    }

    fn last_in(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Option<KeyValue>, BackendError> {
        if let Some(chains) = self.chains(table)? {
            return chains.last_in(start, end);
        }
        let t = self.plain(table)?;
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
        if let Some(chains) = self.chains(table)? {
            return chains.range(start, end, limit);
        }
        let t = self.plain(table)?;
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
            let roots = open(&txn, plain_definition(Table::Roots))?;
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
            let deletes: Vec<&Delete> = batch.deletes.iter().filter(|d| d.table == table).collect();
            if puts.is_empty() && deletes.is_empty() {
                continue;
            }
            if let Some(tables) = versioned_tables(table) {
                let mut chains = open_chains(&txn, tables)?;
                for delete in deletes {
                    chains.delete(&delete.key, delete.superseded_at)?;
                }
                for (_, key, value) in puts {
                    chains.put(key, value)?;
                }
                continue;
            }
            let mut t = open(&txn, plain_definition(table))?;
            for delete in deletes {
                t.remove(delete.key.as_slice())
                    .map_err(|e| BackendError::new("delete", e))?;
            }
            for (_, key, value) in puts {
                t.insert(key.as_slice(), value.as_slice())
                    .map_err(|e| BackendError::new("insert", e))?;
            }
        }
        txn.commit().map_err(|e| BackendError::new("commit", e))
    }

    fn format(&self) -> &'static [u8] {
        FORMAT
    }

    fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
