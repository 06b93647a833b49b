//! The cluster's shared state in TiKV: who is alive (member records with
//! an expiry) and who owns each shard (lease records). Every change is a
//! compare-and-swap transaction, and every expiry is judged on PD's clock,
//! so nodes agree without a consensus of their own.
//!
//! A lease carries an epoch that grows by one each time the shard changes
//! hands; the new owner writes it into the shard's root log
//! (`Store::claim`), which fences the old owner off (see `store::committer`).

use crate::cluster::placement::ShardLoad;
use crate::store::backend::BackendError;
use crate::store::backend::tikv::TikvBackend;
use rustorium_core::tree::shard::Prefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const MEMBER_PREFIX: &[u8] = b"cluster/member/";
const LEASE_PREFIX: &[u8] = b"cluster/lease/";
/// The cut every node serves; absent until the first split or merge (the
/// even cut of `shard_count` at generation 0 until then).
const CUT_KEY: &[u8] = b"cluster/cut";

/// The cluster's cut: which shards exist (each at a generation, which
/// names its TiKV namespace) and the versions retired shards had reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutRecord {
    /// `(depth, index, generation)` of every shard, in prefix order.
    pub shards: Vec<(u8, usize, u64)>,
    pub retired_versions: u64,
    /// Grows by one with each published change: a node never goes back to
    /// a cut older than one it served.
    #[serde(default)]
    pub seq: u64,
}

impl CutRecord {
    pub fn even(bits: u8) -> Self {
        Self {
            shards: Prefix::uniform(bits)
                .into_iter()
                .map(|p| (p.depth, p.index, 0))
                .collect(),
            retired_versions: 0,
            seq: 0,
        }
    }

    pub fn prefixes(&self) -> Vec<(Prefix, u64)> {
        self.shards
            .iter()
            .map(|(depth, index, generation)| {
                (
                    Prefix {
                        depth: *depth,
                        index: *index,
                    },
                    *generation,
                )
            })
            .collect()
    }
}

/// The cut as read, with its stored bytes (`None`: no record yet).
#[derive(Clone, Debug)]
pub struct HeldCut {
    pub cut: CutRecord,
    stored: Option<Vec<u8>>,
}

/// A node as the others see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    /// Where the others reach its gRPC service (forwarded writes).
    pub addr: String,
    pub region: String,
    /// PD clock milliseconds after which the node counts as gone.
    pub expires_ms: u64,
}

/// One shard's owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The owner's node id; empty once released.
    pub owner: String,
    pub addr: String,
    /// Grows by one whenever the shard changes hands.
    pub epoch: u64,
    /// PD clock milliseconds after which another node may take the shard.
    pub expires_ms: u64,
    /// The owner's measure of the shard's writes (for placement).
    #[serde(default)]
    pub load: ShardLoad,
    /// The shard was split or merged away: nobody may take it again
    /// (a node that still has the old cut finds this, not a free lease).
    #[serde(default)]
    pub retired: bool,
}

impl Lease {
    pub fn live(&self, now_ms: u64) -> bool {
        !self.retired && !self.owner.is_empty() && self.expires_ms > now_ms
    }

    /// A lease `me` holds under `epoch` for one `ttl` from `now_ms`.
    fn held(me: &Member, epoch: u64, now_ms: u64, ttl: Duration, load: ShardLoad) -> Self {
        Self {
            owner: me.id.clone(),
            addr: me.addr.clone(),
            epoch,
            expires_ms: now_ms + ttl.as_millis() as u64,
            load,
            retired: false,
        }
    }

    /// This lease given up at `now_ms` (same epoch and load): nobody owns it.
    fn released(self, now_ms: u64) -> Self {
        Self {
            owner: String::new(),
            addr: String::new(),
            expires_ms: now_ms,
            ..self
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("cluster record {key} is malformed: {error}")]
    Malformed { key: String, error: String },
}

fn lease_key(prefix: Prefix) -> Vec<u8> {
    let mut key = LEASE_PREFIX.to_vec();
    key.extend_from_slice(format!("{}-{}", prefix.depth, prefix.index).as_bytes());
    key
}

fn member_key(id: &str) -> Vec<u8> {
    let mut key = MEMBER_PREFIX.to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Malformed {
        key: String::from_utf8_lossy(key).into_owned(),
        error: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("cluster records serialize")
}

/// The cluster records under one TiKV namespace. Calls block (run them off
/// the async runtime).
#[derive(Clone, Debug)]
pub struct Registry {
    backend: TikvBackend,
}

/// A lease as read, with its stored bytes (what a swap compares against).
#[derive(Clone, Debug)]
pub struct HeldLease {
    pub lease: Lease,
    stored: Vec<u8>,
}

impl Registry {
    pub fn new(backend: TikvBackend) -> Self {
        Self { backend }
    }

    /// PD's clock in milliseconds.
    pub fn now_ms(&self) -> Result<u64, RegistryError> {
        Ok(self.backend.clock_millis()?)
    }

    /// The record at exactly `key`, if any.
    fn record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self
            .backend
            .records(key)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// Replaces `prefix`'s lease record, if it still is `current` (as read).
    fn swap_lease(&self, prefix: Prefix, current: Option<&HeldLease>, lease: &Lease) -> Result<bool, RegistryError> {
        Ok(self.backend.swap_record(
            &lease_key(prefix),
            current.map(|c| c.stored.as_slice()),
            Some(&encode(lease)),
        )?)
    }

    /// Publishes `member` (its expiry included), replacing its last record.
    pub fn heartbeat(&self, member: &Member) -> Result<(), RegistryError> {
        let key = member_key(&member.id);
        for _ in 0..8 {
            let current = self.record(&key)?;
            if self
                .backend
                .swap_record(&key, current.as_deref(), Some(&encode(member)))?
            {
                return Ok(());
            }
        }
        Err(RegistryError::Backend(BackendError::retryable(
            "publish a member record",
            "it kept changing underneath",
        )))
    }

    /// Members whose records have not expired at `now_ms`, by id.
    pub fn members(&self, now_ms: u64) -> Result<Vec<Member>, RegistryError> {
        let mut members = Vec::new();
        for (key, bytes) in self.backend.records(MEMBER_PREFIX)? {
            // One bad record must not stall every node's keeper.
            match decode::<Member>(&key, &bytes) {
                Ok(member) if member.expires_ms > now_ms => members.push(member),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "skipping a malformed member record"),
            }
        }
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }

    /// Every shard's lease record (live or not).
    pub fn leases(&self) -> Result<BTreeMap<Prefix, HeldLease>, RegistryError> {
        let mut leases = BTreeMap::new();
        for (key, bytes) in self.backend.records(LEASE_PREFIX)? {
            match Self::lease_record(&key, &bytes) {
                Ok((prefix, lease)) => {
                    leases.insert(prefix, HeldLease { lease, stored: bytes });
                }
                // Skipped, so one bad record does not stall every keeper;
                // a swap against it fails until someone rewrites it.
                Err(error) => tracing::warn!(%error, "skipping a malformed lease record"),
            }
        }
        Ok(leases)
    }

    fn lease_record(key: &[u8], bytes: &[u8]) -> Result<(Prefix, Lease), RegistryError> {
        let name = String::from_utf8_lossy(&key[LEASE_PREFIX.len()..]).into_owned();
        let malformed = || RegistryError::Malformed {
            key: String::from_utf8_lossy(key).into_owned(),
            error: "not a shard prefix".into(),
        };
        let (depth, index) = name.split_once('-').ok_or_else(malformed)?;
        let prefix = Prefix {
            depth: depth.parse().map_err(|_| malformed())?,
            index: index.parse().map_err(|_| malformed())?,
        };
        Ok((prefix, decode(key, bytes)?))
    }

    /// The cut as the cluster last published it, or the even cut of `bits`.
    /// A malformed record is `Malformed` (callers keep the cut they have).
    pub fn cut(&self, bits: u8) -> Result<HeldCut, RegistryError> {
        Ok(match self.record(CUT_KEY)? {
            Some(bytes) => HeldCut {
                cut: decode(CUT_KEY, &bytes)?,
                stored: Some(bytes),
            },
            None => HeldCut {
                cut: CutRecord::even(bits),
                stored: None,
            },
        })
    }

    /// Publishes a split or merge `me` made of shards it owns, in one
    /// transaction: the cut becomes `next` (its `seq` one above `current`'s)
    /// if it still is `current`; the
    /// leases of `retiring` (prefix and `me`'s epoch there, still live)
    /// become retired; `me` takes a lease on each of `made`, its epoch above
    /// any earlier record at that prefix. Returns those epochs, or `None`
    /// when anything changed first.
    #[allow(clippy::too_many_arguments)]
    pub fn publish_reshape(
        &self,
        current: &HeldCut,
        next: &CutRecord,
        retiring: &[(Prefix, u64)],
        made: &[Prefix],
        me: &Member,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<BTreeMap<Prefix, u64>>, RegistryError> {
        let mut keys = vec![CUT_KEY.to_vec()];
        keys.extend(retiring.iter().map(|(p, _)| lease_key(*p)));
        keys.extend(made.iter().map(|p| lease_key(*p)));
        let epochs = std::sync::Mutex::new(BTreeMap::new());
        let published = self.backend.transact_records(&keys, |records| {
            if records[0] != current.stored || next.seq != current.cut.seq + 1 {
                return None;
            }
            let mut writes = vec![(CUT_KEY.to_vec(), Some(encode(next)))];
            for ((prefix, epoch), record) in retiring.iter().zip(&records[1..]) {
                let lease: Lease = serde_json::from_slice(record.as_deref()?).ok()?;
                if lease.owner != me.id || lease.epoch != *epoch || !lease.live(now_ms) {
                    return None;
                }
                let tombstone = Lease {
                    retired: true,
                    ..lease.released(now_ms)
                };
                writes.push((lease_key(*prefix), Some(encode(&tombstone))));
            }
            let mut taken = BTreeMap::new();
            for (prefix, record) in made.iter().zip(&records[1 + retiring.len()..]) {
                let before = record
                    .as_deref()
                    .and_then(|bytes| serde_json::from_slice::<Lease>(bytes).ok())
                    .map_or(0, |l| l.epoch);
                let lease = Lease::held(me, before.saturating_add(1), now_ms, ttl, ShardLoad::default());
                taken.insert(*prefix, lease.epoch);
                writes.push((lease_key(*prefix), Some(encode(&lease))));
            }
            *epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = taken;
            Some(writes)
        })?;
        Ok(published.then(|| epochs.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }

    /// The epochs of the leases `me` holds on `prefixes`, if every one is
    /// live and `me`'s (how a publisher whose commit outcome was unknown
    /// learns it landed, together with the cut).
    pub fn held_by(
        &self,
        prefixes: &[Prefix],
        me: &str,
        now_ms: u64,
    ) -> Result<Option<BTreeMap<Prefix, u64>>, RegistryError> {
        let leases = self.leases()?;
        Ok(prefixes
            .iter()
            .map(|p| {
                leases
                    .get(p)
                    .filter(|h| h.lease.owner == me && h.lease.live(now_ms))
                    .map(|h| (*p, h.lease.epoch))
            })
            .collect())
    }

    /// Removes `id`'s member record (a node leaving on purpose).
    pub fn forget(&self, id: &str) -> Result<bool, RegistryError> {
        let key = member_key(id);
        match self.record(&key)? {
            Some(bytes) => Ok(self.backend.swap_record(&key, Some(&bytes), None)?),
            None => Ok(false),
        }
    }

    /// Takes `prefix` for `me` if its lease (`current`, as read) is absent,
    /// expired or released at `now_ms`: the epoch grows by one. `None` when
    /// another node changed the lease first. `epoch_floor` is the highest
    /// epoch in the shard's root log.
    pub fn acquire(
        &self,
        prefix: Prefix,
        current: Option<&HeldLease>,
        me: &Member,
        now_ms: u64,
        ttl: Duration,
        epoch_floor: u64,
    ) -> Result<Option<Lease>, RegistryError> {
        if current.is_some_and(|c| c.lease.retired) {
            return Ok(None);
        }
        // Above the lease's epoch and the shard's root log's, so a new
        // owner always fences the old one, even if the records were lost.
        let epoch = current.map_or(0, |c| c.lease.epoch).max(epoch_floor).saturating_add(1);
        let load = current.map(|c| c.lease.load.clone()).unwrap_or_default();
        let lease = Lease::held(me, epoch, now_ms, ttl, load);
        Ok(self.swap_lease(prefix, current, &lease)?.then_some(lease))
    }

    /// Extends a lease `me` holds (same epoch) and records the shard's load.
    pub fn renew(
        &self,
        prefix: Prefix,
        current: &HeldLease,
        now_ms: u64,
        ttl: Duration,
        load: ShardLoad,
    ) -> Result<Option<Lease>, RegistryError> {
        let lease = Lease {
            expires_ms: now_ms + ttl.as_millis() as u64,
            load,
            ..current.lease.clone()
        };
        Ok(self.swap_lease(prefix, Some(current), &lease)?.then_some(lease))
    }

    /// Gives a held lease up at once (keeping its epoch), so the node
    /// placement prefers can take the shard without waiting for expiry.
    /// Its expiry becomes the release time: only placement's choice takes it
    /// for the next two TTLs (after that, anyone).
    pub fn release(&self, prefix: Prefix, current: &HeldLease, now_ms: u64) -> Result<bool, RegistryError> {
        self.swap_lease(prefix, Some(current), &current.lease.clone().released(now_ms))
    }
}
