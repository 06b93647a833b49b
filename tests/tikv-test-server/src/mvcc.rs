//! Percolator MVCC over an in-memory ordered map: the transaction semantics
//! TiKV gives the client (locks, write records, rollbacks, lock resolution),
//! kept small enough to read in one sitting.

use crate::proto::kvrpcpb::{self, KeyError, LockInfo, Op, WriteConflict};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A prewritten, uncommitted change.
#[derive(Clone, Debug)]
pub struct Lock {
    pub primary: Vec<u8>,
    pub start_ts: u64,
    pub ttl: u64,
    pub op: Op,
    pub value: Vec<u8>,
    pub txn_size: u64,
}

/// What a transaction did to a key, recorded at its commit timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        start_ts: u64,
        value: Vec<u8>,
    },
    Delete {
        start_ts: u64,
    },
    /// Written when a transaction is rolled back, so a late prewrite or
    /// commit of it fails (at `commit_ts == start_ts`).
    Rollback {
        start_ts: u64,
    },
}

impl Write {
    fn start_ts(&self) -> u64 {
        match self {
            Write::Put { start_ts, .. } | Write::Delete { start_ts } | Write::Rollback { start_ts } => *start_ts,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct KeyState {
    lock: Option<Lock>,
    /// By commit timestamp.
    writes: BTreeMap<u64, Write>,
}

/// A transaction's state as its primary key shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    Committed(u64),
    RolledBack,
    Locked { ttl: u64 },
}

/// The MVCC key space.
#[derive(Debug, Default)]
pub struct Mvcc {
    keys: BTreeMap<Vec<u8>, KeyState>,
}

/// A scanned key with its value, or the lock that hides it.
pub type Scanned = (Vec<u8>, Result<Vec<u8>, KeyError>);

/// Milliseconds of a TSO timestamp.
pub fn physical(ts: u64) -> u64 {
    ts >> 18
}

fn lock_info(key: &[u8], lock: &Lock) -> LockInfo {
    LockInfo {
        primary_lock: lock.primary.clone(),
        lock_version: lock.start_ts,
        key: key.to_vec(),
        lock_ttl: lock.ttl,
        txn_size: lock.txn_size,
        lock_type: lock.op as i32,
        ..LockInfo::default()
    }
}

pub fn locked_error(key: &[u8], lock: &Lock) -> KeyError {
    KeyError {
        locked: Some(lock_info(key, lock)),
        ..KeyError::default()
    }
}

pub fn abort_error(message: impl Into<String>) -> KeyError {
    KeyError {
        abort: message.into(),
        ..KeyError::default()
    }
}

impl Mvcc {
    /// The value of `key` as of `ts`, or the lock that hides it.
    pub fn get(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>, KeyError> {
        let Some(state) = self.keys.get(key) else {
            return Ok(None);
        };
        if let Some(lock) = &state.lock
            && lock.start_ts <= ts
            && lock.op != Op::Lock
        {
            return Err(locked_error(key, lock));
        }
        Ok(visible(state, ts))
    }

    /// Up to `limit` visible pairs in `[lower, upper)` as of `ts`, ascending
    /// or (reverse) descending; a locked key yields its lock error in place.
    pub fn scan(&self, lower: &[u8], upper: Option<&[u8]>, limit: usize, ts: u64, reverse: bool) -> Vec<Scanned> {
        let range = (
            Bound::Included(lower.to_vec()),
            upper.map_or(Bound::Unbounded, |u| Bound::Excluded(u.to_vec())),
        );
        let entries = self.keys.range(range);
        let iter: Box<dyn Iterator<Item = (&Vec<u8>, &KeyState)>> = if reverse {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        };
        let mut out = Vec::new();
        for (key, state) in iter {
            if out.len() >= limit {
                break;
            }
            match &state.lock {
                Some(lock) if lock.start_ts <= ts && lock.op != Op::Lock => {
                    out.push((key.clone(), Err(locked_error(key, lock))));
                }
                _ => {
                    if let Some(value) = visible(state, ts) {
                        out.push((key.clone(), Ok(value)));
                    }
                }
            }
        }
        out
    }

    /// Checks every mutation first and writes locks only when all pass, as
    /// TiKV applies one prewrite command atomically.
    pub fn prewrite(&mut self, request: &kvrpcpb::PrewriteRequest) -> Vec<KeyError> {
        let start_ts = request.start_version;
        let mut errors = Vec::new();
        for mutation in &request.mutations {
            let Some(state) = self.keys.get(&mutation.key) else {
                continue;
            };
            if let Some(lock) = &state.lock
                && lock.start_ts != start_ts
            {
                errors.push(locked_error(&mutation.key, lock));
                continue;
            }
            if state
                .writes
                .values()
                .any(|w| matches!(w, Write::Rollback { start_ts: s } if *s == start_ts))
            {
                errors.push(abort_error(format!("transaction {start_ts} was rolled back")));
                continue;
            }
            if let Some((&commit_ts, write)) = state
                .writes
                .range(start_ts..)
                .find(|(_, w)| !matches!(w, Write::Rollback { .. }))
            {
                errors.push(KeyError {
                    conflict: Some(WriteConflict {
                        start_ts,
                        conflict_ts: write.start_ts(),
                        conflict_commit_ts: commit_ts,
                        key: mutation.key.clone(),
                        primary: request.primary_lock.clone(),
                        reason: 0,
                    }),
                    ..KeyError::default()
                });
            }
        }
        if !errors.is_empty() {
            return errors;
        }
        for mutation in &request.mutations {
            let op = Op::try_from(mutation.op).unwrap_or(Op::Put);
            let state = self.keys.entry(mutation.key.clone()).or_default();
            state.lock = Some(Lock {
                primary: request.primary_lock.clone(),
                start_ts,
                ttl: request.lock_ttl,
                op,
                value: mutation.value.clone(),
                txn_size: request.txn_size,
            });
        }
        Vec::new()
    }

    /// Commits `keys` of the transaction started at `start_ts`.
    pub fn commit(&mut self, keys: &[Vec<u8>], start_ts: u64, commit_ts: u64) -> Result<(), KeyError> {
        for key in keys {
            let state = self.keys.entry(key.clone()).or_default();
            match &state.lock {
                Some(lock) if lock.start_ts == start_ts => {}
                _ => {
                    let committed = state
                        .writes
                        .values()
                        .any(|w| w.start_ts() == start_ts && !matches!(w, Write::Rollback { .. }));
                    if committed {
                        continue;
                    }
                    return Err(abort_error(format!(
                        "txn lock not found: transaction {start_ts} has no lock on a key it commits"
                    )));
                }
            }
        }
        for key in keys {
            let state = self.keys.entry(key.clone()).or_default();
            if let Some(lock) = state.lock.take_if(|lock| lock.start_ts == start_ts) {
                state.writes.insert(commit_ts, committed_write(lock));
            }
        }
        Ok(())
    }

    /// Rolls back the transaction on `keys`; fails if it committed there.
    pub fn rollback(&mut self, keys: &[Vec<u8>], start_ts: u64) -> Result<(), KeyError> {
        for key in keys {
            let state = self.keys.entry(key.clone()).or_default();
            if state
                .writes
                .values()
                .any(|w| w.start_ts() == start_ts && !matches!(w, Write::Rollback { .. }))
            {
                return Err(abort_error(format!("transaction {start_ts} already committed")));
            }
        }
        for key in keys {
            let state = self.keys.entry(key.clone()).or_default();
            state.lock.take_if(|lock| lock.start_ts == start_ts);
            state.writes.insert(start_ts, Write::Rollback { start_ts });
        }
        Ok(())
    }

    /// The status of the transaction whose primary is `primary`, rolling it
    /// back when its lock outlived its TTL at `current_ts`.
    pub fn check_txn_status(
        &mut self,
        primary: &[u8],
        lock_ts: u64,
        current_ts: u64,
        rollback_if_not_exist: bool,
    ) -> Result<(TxnStatus, kvrpcpb::Action, Option<LockInfo>), KeyError> {
        let state = self.keys.entry(primary.to_vec()).or_default();
        if let Some(lock) = &state.lock
            && lock.start_ts == lock_ts
        {
            let expired = physical(current_ts) >= physical(lock_ts) + lock.ttl;
            if expired {
                state.lock = None;
                state.writes.insert(lock_ts, Write::Rollback { start_ts: lock_ts });
                return Ok((TxnStatus::RolledBack, kvrpcpb::Action::TtlExpireRollback, None));
            }
            let info = lock_info(primary, lock);
            return Ok((
                TxnStatus::Locked { ttl: lock.ttl },
                kvrpcpb::Action::NoAction,
                Some(info),
            ));
        }
        for (&commit_ts, write) in &state.writes {
            if write.start_ts() == lock_ts {
                return Ok(match write {
                    Write::Rollback { .. } => (TxnStatus::RolledBack, kvrpcpb::Action::NoAction, None),
                    _ => (TxnStatus::Committed(commit_ts), kvrpcpb::Action::NoAction, None),
                });
            }
        }
        if rollback_if_not_exist {
            state.writes.insert(lock_ts, Write::Rollback { start_ts: lock_ts });
            return Ok((TxnStatus::RolledBack, kvrpcpb::Action::LockNotExistRollback, None));
        }
        Err(KeyError {
            txn_not_found: Some(kvrpcpb::TxnNotFound {
                start_ts: lock_ts,
                primary_key: primary.to_vec(),
            }),
            ..KeyError::default()
        })
    }

    /// Commits (`commit_ts > 0`) or rolls back every lock of the transaction
    /// within `[lower, upper)`, or on `keys` when given.
    pub fn resolve(&mut self, lower: &[u8], upper: Option<&[u8]>, keys: &[Vec<u8>], start_ts: u64, commit_ts: u64) {
        let targets: Vec<Vec<u8>> = if keys.is_empty() {
            let range = (
                Bound::Included(lower.to_vec()),
                upper.map_or(Bound::Unbounded, |u| Bound::Excluded(u.to_vec())),
            );
            self.keys
                .range(range)
                .filter(|(_, s)| s.lock.as_ref().is_some_and(|l| l.start_ts == start_ts))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            keys.to_vec()
        };
        for key in targets {
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            let Some(lock) = state.lock.take_if(|lock| lock.start_ts == start_ts) else {
                continue;
            };
            if commit_ts > 0 {
                state.writes.insert(commit_ts, committed_write(lock));
            } else {
                state.writes.insert(start_ts, Write::Rollback { start_ts });
            }
        }
    }

    /// Extends the primary lock's TTL.
    pub fn heartbeat(&mut self, primary: &[u8], start_ts: u64, ttl: u64) -> Result<u64, KeyError> {
        match self.keys.get_mut(primary).and_then(|s| s.lock.as_mut()) {
            Some(lock) if lock.start_ts == start_ts => {
                lock.ttl = lock.ttl.max(ttl);
                Ok(lock.ttl)
            }
            _ => Err(abort_error(format!("transaction {start_ts} has no primary lock"))),
        }
    }

    /// Committed, visible pairs at `ts` (for test assertions).
    pub fn snapshot(&self, ts: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.keys
            .iter()
            .filter_map(|(k, s)| visible(s, ts).map(|v| (k.clone(), v)))
            .collect()
    }

    /// Keys that hold a lock (for test assertions).
    pub fn locked_keys(&self) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .filter(|(_, s)| s.lock.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn committed_write(lock: Lock) -> Write {
    match lock.op {
        Op::Del => Write::Delete {
            start_ts: lock.start_ts,
        },
        _ => Write::Put {
            start_ts: lock.start_ts,
            value: lock.value,
        },
    }
}

fn visible(state: &KeyState, ts: u64) -> Option<Vec<u8>> {
    state
        .writes
        .range(..=ts)
        .rev()
        .find(|(_, w)| !matches!(w, Write::Rollback { .. }))
        .and_then(|(_, w)| match w {
            Write::Put { value, .. } => Some(value.clone()),
            _ => None,
        })
}
