//! `verify-db`: recomputes the root from the stored values and compares it
//! with the root log, so an operator can check a store after a crash or a
//! copy without trusting its pages.

use crate::store::backend::redb::RedbBackend;
use crate::store::backend::{Backend, BackendReader, Table};
use crate::store::codec::RecordCodec;
use crate::store::config::{KeyMode, StorageConfig};
use crate::store::error::{Result, StoreError};
use crate::store::keys::{RootRecord, unescape_key};
use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::field::fr_from_le_bytes;
use rustorium_core::tree::{MemoryTree, Op};
use std::ops::Bound;

/// What `verify-db` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub version: u64,
    pub keys: u64,
    pub root_versions: u64,
    pub stored_root: Fr,
    pub recomputed_root: Fr,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.stored_root == self.recomputed_root
    }
}

/// Verifies the Redb store described by `config` (opened read-only in effect:
/// nothing is written).
pub fn verify_redb(config: &StorageConfig) -> Result<VerifyReport> {
    if !config.path.join(crate::store::backend::redb::FILE_NAME).exists() {
        return Err(StoreError::Config(format!("no store at {}", config.path.display())));
    }
    let backend = RedbBackend::open(&config.path)?;
    verify(&backend, config)
}

pub fn verify<B: Backend>(backend: &B, config: &StorageConfig) -> Result<VerifyReport> {
    let codec = RecordCodec::new(config)?;
    let reader = backend.reader()?;
    let mut problems = Vec::new();

    let roots = reader.range(Table::Roots, Bound::Unbounded, Bound::Unbounded, usize::MAX)?;
    let mut latest: Option<RootRecord> = None;
    for (key, value) in &roots {
        match RootRecord::decode(value) {
            Ok(record) => {
                if key.as_slice() != record.version.to_be_bytes() {
                    problems.push(format!(
                        "root record under key {} says version {}",
                        hex::encode(key),
                        record.version
                    ));
                }
                if let Some(previous) = &latest
                    && record.version != previous.version + 1
                {
                    problems.push(format!(
                        "root log jumps from version {} to {}",
                        previous.version, record.version
                    ));
                }
                latest = Some(record);
            }
            Err(e) => problems.push(format!("root record {}: {e}", hex::encode(key))),
        }
    }
    let latest = latest.ok_or_else(|| StoreError::Corrupt("empty root log".into()))?;

    let mut ops = Vec::new();
    let mut previous_key: Option<Vec<u8>> = None;
    let mut pending: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = None;
    let rows = reader.range(Table::Values, Bound::Unbounded, Bound::Unbounded, usize::MAX)?;
    let finish = |entry: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>, ops: &mut Vec<Op>, problems: &mut Vec<String>| {
        if let Some((key, row, record)) = entry
            && !record.is_empty()
        {
            match codec.decode(Table::Values, &row, &record) {
                Ok(value) => match leaf(config.key_mode, &key, &value) {
                    Ok((k, v)) => ops.push(Op::put(k, v)),
                    Err(e) => problems.push(format!("key {}: {e}", hex::encode(&key))),
                },
                Err(e) => problems.push(format!("key {}: {e}", hex::encode(&key))),
            }
        }
    };
    for (row, record) in rows {
        let Some((key, rest)) = unescape_key(&row) else {
            problems.push(format!("malformed value row {}", hex::encode(&row)));
            continue;
        };
        let Ok(version) = rest.try_into().map(u64::from_be_bytes) else {
            problems.push(format!("value row without version {}", hex::encode(&row)));
            continue;
        };
        if previous_key.as_ref() != Some(&key) {
            finish(pending.take(), &mut ops, &mut problems);
            previous_key = Some(key.clone());
        }
        if version <= latest.version {
            pending = Some((key, row, record));
        } else {
            problems.push(format!(
                "value row at version {version}, after the latest root {}",
                latest.version
            ));
        }
    }
    finish(pending.take(), &mut ops, &mut problems);

    let keys = ops.len() as u64;
    let mut tree = MemoryTree::new(config.max_levels).map_err(|e| StoreError::Config(e.to_string()))?;
    tree.apply(&ops).map_err(|e| StoreError::Tree(e.to_string()))?;
    let report = VerifyReport {
        version: latest.version,
        keys,
        root_versions: roots.len() as u64,
        stored_root: latest.root.hash(),
        recomputed_root: tree.root(),
        problems,
    };
    Ok(report)
}

fn leaf(mode: KeyMode, key: &[u8], value: &[u8]) -> std::result::Result<(Fr, Fr), String> {
    match mode {
        KeyMode::Bytes => Ok((bytes_to_field(key), bytes_to_field(value))),
        KeyMode::Field => Ok((
            fr_from_le_bytes(key).map_err(|e| e.to_string())?,
            fr_from_le_bytes(value).map_err(|e| e.to_string())?,
        )),
    }
}
