//! Small records the nodes of a cluster share through TiKV (shard leases,
//! membership), kept in the meta table beside a store's rows, and PD's
//! clock, which every node reads the same.

use super::{TikvBackend, is_conflict, options};
use crate::store::backend::{BackendError, KeyValue, Table};
use tikv_client::BoundRange;

/// Records one `records` call returns at most; a cluster has a few per
/// node and per shard.
const MAX_RECORDS: u32 = 65_536;

impl TikvBackend {
    /// PD's clock, in milliseconds (the physical part of a fresh TSO
    /// timestamp): lease expiry is judged on it, never on a node's own clock.
    pub fn clock_millis(&self) -> Result<u64, BackendError> {
        let client = self.inner.client().clone();
        let ts = self.retrying("read PD's clock", || {
            let client = client.clone();
            async move { client.current_timestamp().await }
        })?;
        Ok(u64::try_from(ts.physical).unwrap_or(0))
    }

    /// Every record whose key starts with `prefix`, at a fresh snapshot.
    pub fn records(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, BackendError> {
        let start = self.key(Table::Meta, prefix);
        let mut end = start.clone();
        end.push(0xFF);
        end.extend_from_slice(&[0xFF; 8]);
        let strip = self.table_prefix_len();
        let client = self.inner.client().clone();
        let rows = self.retrying("read cluster records", || {
            let client = client.clone();
            let range = BoundRange::from(start.clone()..end.clone());
            async move {
                let ts = client.current_timestamp().await?;
                let rows = client.snapshot(ts, options()).scan(range, MAX_RECORDS).await?;
                Ok(rows.collect::<Vec<_>>())
            }
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|pair| {
                let key: Vec<u8> = pair.0.into();
                key.starts_with(&start).then(|| (key[strip..].to_vec(), pair.1))
            })
            .collect())
    }

    /// Replaces the record at `key` with `new` (`None` deletes it) if it
    /// still holds `expected` (`None`: absent), in one transaction. `false`
    /// when it held something else or another node changed it first.
    ///
    /// A commit whose outcome is unknown is retried, and the retry then
    /// finds `new` and answers `false`: a caller may lose a swap it won,
    /// never win one it lost.
    pub fn swap_record(&self, key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool, BackendError> {
        self.transact_records(&[key.to_vec()], |current| {
            (current[0].as_deref() == expected).then(|| vec![(key.to_vec(), new.map(<[u8]>::to_vec))])
        })
    }

    /// Reads the records at `keys` in one transaction and, if `decide`
    /// (given their values, in order) returns writes, applies them all at
    /// once (`None` deletes). `false` when `decide` declined or another
    /// node changed a record first; as with `swap_record`, an unknown
    /// outcome is retried and the retry sees what it wrote, so a caller
    /// whose `decide` checks its preconditions never wins twice.
    pub fn transact_records(
        &self,
        keys: &[Vec<u8>],
        decide: impl Fn(&[Option<Vec<u8>>]) -> Option<Vec<(Vec<u8>, Option<Vec<u8>>)>> + Sync,
    ) -> Result<bool, BackendError> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| self.key(Table::Meta, k)).collect();
        let client = self.inner.client().clone();
        let decide = &decide;
        self.retrying("change cluster records", || {
            let (client, keys) = (client.clone(), keys.clone());
            async move {
                let mut txn = client.begin_with_options(options()).await?;
                let mut current = Vec::with_capacity(keys.len());
                for key in &keys {
                    current.push(txn.get(key.clone()).await?);
                }
                let Some(writes) = decide(&current) else {
                    txn.rollback().await?;
                    return Ok(false);
                };
                for (key, value) in writes {
                    let key = self.key(Table::Meta, &key);
                    match value {
                        Some(value) => txn.put(key, value).await?,
                        None => txn.delete(key).await?,
                    }
                }
                match txn.commit().await {
                    Ok(_) => Ok(true),
                    Err(error) if is_conflict(&error) => {
                        let _ = txn.rollback().await;
                        Ok(false)
                    }
                    Err(error) => Err(error),
                }
            }
        })
    }
}
