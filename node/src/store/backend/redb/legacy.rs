//! Stores written before the latest/history layout kept each versioned table
//! as one `prefix ++ version` table under the engine table's own name. Opening
//! one moves its rows into the new layout, in one durable transaction, and
//! drops the old tables; a crash before that commit leaves the file as it was.

use super::history::versioned_tables;
use super::{open, open_chains, plain_definition};
use crate::store::backend::{BackendError, Table};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableHandle};

/// Rewrites the legacy tables of `db` into the current layout; returns the
/// rows moved.
pub fn migrate(db: &Database) -> Result<u64, BackendError> {
    let existing: Vec<String> = {
        let txn = db.begin_read().map_err(|e| BackendError::new("begin read", e))?;
        txn.list_tables()
            .map_err(|e| BackendError::new("list tables", e))?
            .map(|handle| handle.name().to_string())
            .collect()
    };
    let legacy: Vec<Table> = [Table::Values, Table::Pages]
        .into_iter()
        .filter(|table| existing.iter().any(|name| name == table.name()))
        .collect();
    if legacy.is_empty() {
        return Ok(0);
    }
    let mut txn = db.begin_write().map_err(|e| BackendError::new("begin write", e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| BackendError::new("set durability", e))?;
    let mut moved = 0;
    for table in legacy {
        let Some(tables) = versioned_tables(table) else {
            continue;
        };
        {
            // A legacy versioned table had the plain table's name.
            let old = open(&txn, plain_definition(table))?;
            let mut chains = open_chains(&txn, tables)?;
            // Key order is version order within a prefix, so every put
            // supersedes the one before it, as commits did.
            for entry in old.iter().map_err(|e| BackendError::new("migrate", e))? {
                let (key, record) = entry.map_err(|e| BackendError::new("migrate", e))?;
                chains.put(key.value(), record.value())?;
                moved += 1;
            }
        }
        txn.delete_table(plain_definition(table))
            .map_err(|e| BackendError::new("drop legacy table", e))?;
    }
    // In the same commit, so that no file of the new layout says format 1.
    {
        let mut meta = open(&txn, plain_definition(Table::Meta))?;
        let stored = meta
            .get(b"format".as_slice())
            .map_err(|e| BackendError::new("get", e))?
            .map(|format| format.value().to_vec());
        if stored.as_deref() == Some(b"1".as_slice()) {
            meta.insert(b"format".as_slice(), super::FORMAT)
                .map_err(|e| BackendError::new("insert", e))?;
        }
    }
    txn.commit().map_err(|e| BackendError::new("commit", e))?;
    Ok(moved)
}
