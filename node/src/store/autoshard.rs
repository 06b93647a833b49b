//! Automatic resharding: a shard that grows hot (writes per second) or big
//! (live keys) splits into its halves, and two sibling halves that are both
//! cold and small merge back, while serving and without changing any root
//! (`ShardedStore::split` / `merge`). `rebalance` looks once; `run` looks
//! every interval.

use crate::store::backend::Backend;
use crate::store::error::Result;
use crate::store::sharded::ShardedStore;
use rustorium_core::tree::shard::{MAX_SHARD_BITS, Prefix};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When shards split and merge. A threshold left `None` is not used.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReshardPolicy {
    /// Split a shard taking more writes per second than this.
    pub split_above_writes_per_sec: Option<f64>,
    /// Split a shard holding more live keys than this.
    pub split_above_keys: Option<u64>,
    /// Merge two sibling shards when each takes fewer writes per second
    /// than this and each holds fewer keys than `merge_below_keys`.
    pub merge_below_writes_per_sec: Option<f64>,
    pub merge_below_keys: Option<u64>,
    /// Shards never get deeper than this many prefix bits.
    pub max_depth: u8,
}

impl Default for ReshardPolicy {
    fn default() -> Self {
        Self {
            split_above_writes_per_sec: None,
            split_above_keys: None,
            merge_below_writes_per_sec: None,
            merge_below_keys: None,
            max_depth: 6,
        }
    }
}

/// One change `rebalance` made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reshard {
    Split(Prefix),
    Merged(Prefix),
}

/// What a shard looked like at the last look: its writes counter then.
#[derive(Debug, Default)]
pub struct Observations {
    seen: Mutex<BTreeMap<Prefix, (u64, Instant)>>,
}

impl Observations {
    /// Writes per second since the last look at `prefix`; `None` the first
    /// time (a shard just made by a split or merge has no rate yet).
    pub fn rate(&self, prefix: Prefix, writes: u64) -> Option<f64> {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let rate = match seen.get(&prefix) {
            Some((before, at)) if writes >= *before => {
                Some((writes - before) as f64 / now.duration_since(*at).as_secs_f64().max(1e-3))
            }
            _ => None,
        };
        seen.insert(prefix, (writes, now));
        rate
    }
}

/// One shard as the policy sees it: its prefix, live keys and writes per
/// second (`None` until measured twice).
#[derive(Clone, Copy, Debug)]
pub struct ShardFigures {
    pub prefix: Prefix,
    pub keys: u64,
    pub rate: Option<f64>,
}

impl ReshardPolicy {
    /// Whether any threshold is set.
    pub fn is_active(&self) -> bool {
        self.split_above_writes_per_sec.is_some()
            || self.split_above_keys.is_some()
            || self.merge_below_writes_per_sec.is_some()
            || self.merge_below_keys.is_some()
    }

    /// What to split (hot or big) and merge (both halves cold and small),
    /// among the shards `movable` allows (a cluster node: those it owns).
    /// At most one change per shard.
    pub fn plan(&self, shards: &[ShardFigures], movable: impl Fn(Prefix) -> bool) -> Vec<Reshard> {
        let over = |limit: Option<f64>, value: f64| limit.is_some_and(|l| value > l);
        let under = |limit: Option<f64>, value: f64| limit.is_none_or(|l| value < l);
        // A rate not measured yet is neither hot nor cold (a shard that just
        // split must not merge back on the next look).
        let hot_rate = |rate: Option<f64>| rate.is_some_and(|r| over(self.split_above_writes_per_sec, r));
        let cold_rate = |rate: Option<f64>| match (rate, self.merge_below_writes_per_sec) {
            (_, None) => true,
            (Some(r), limit) => under(limit, r),
            (None, Some(_)) => false,
        };
        let mut changes = Vec::new();
        for shard in shards.iter().filter(|s| movable(s.prefix)) {
            let hot = hot_rate(shard.rate) || over(self.split_above_keys.map(|k| k as f64), shard.keys as f64);
            if hot && shard.prefix.depth < self.max_depth.min(MAX_SHARD_BITS) {
                changes.push(Reshard::Split(shard.prefix));
            }
        }
        if self.merge_below_keys.is_none() && self.merge_below_writes_per_sec.is_none() {
            return changes;
        }
        let cold: BTreeMap<Prefix, bool> = shards
            .iter()
            .map(|s| {
                let cold = cold_rate(s.rate) && under(self.merge_below_keys.map(|k| k as f64), s.keys as f64);
                (s.prefix, cold && movable(s.prefix))
            })
            .collect();
        for shard in shards {
            let Some(parent) = shard.prefix.parent() else { continue };
            let [left, right] = parent.children();
            // Each pair once, from its left half; neither half splitting.
            if shard.prefix != left
                || changes
                    .iter()
                    .any(|c| matches!(c, Reshard::Split(p) if *p == left || *p == right))
            {
                continue;
            }
            if cold.get(&left) == Some(&true) && cold.get(&right) == Some(&true) {
                changes.push(Reshard::Merged(parent));
            }
        }
        changes
    }
}

impl<B: Backend> ShardedStore<B> {
    /// Splits what is hot or big and merges what is cold and small, once.
    /// At most one change per shard per call; returns what changed.
    pub async fn rebalance(&self, policy: &ReshardPolicy, observed: &Observations) -> Result<Vec<Reshard>> {
        let shards: Vec<ShardFigures> = self
            .cut()
            .into_iter()
            .zip(self.stores())
            .map(|(prefix, store)| ShardFigures {
                prefix,
                keys: store.keys(),
                rate: observed.rate(prefix, store.metrics().writes_total.get()),
            })
            .collect();
        let changes = policy.plan(&shards, |_| true);
        for change in &changes {
            match change {
                Reshard::Split(prefix) => self.split(*prefix).await?,
                Reshard::Merged(parent) => self.merge(*parent).await?,
            }
        }
        Ok(changes)
    }

    /// Rebalances every `interval` until the store is dropped.
    pub fn run_resharding(self: &Arc<Self>, policy: ReshardPolicy, interval: Duration) -> tokio::task::JoinHandle<()>
    where
        B: 'static,
    {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let observed = Observations::default();
            loop {
                tokio::time::sleep(interval).await;
                let Some(store) = store.upgrade() else { return };
                match store.rebalance(&policy, &observed).await {
                    Ok(changes) if !changes.is_empty() => tracing::info!(?changes, "resharded"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "resharding stopped (changes before the error stay)"),
                }
            }
        })
    }
}
