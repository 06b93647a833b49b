//! One node of a cluster: every node opens every shard's store over the
//! shared TiKV keyspace (so any node reads any key with a proof), but only
//! a shard's lease holder writes to it; the others forward its writes.
//!
//! A keeper task runs every third of the lease TTL: it publishes this
//! node's member record, reads members and leases, computes placement
//! (`placement::place_keyed`, the same answer on every node), renews the leases
//! it keeps, releases the ones placement moves elsewhere (after
//! `min_ownership`), and takes expired or released leases placement gives
//! it. Taking a lease raises its epoch; the new owner commits that epoch
//! into the shard's root log before writing (`Store::claim`), so a former
//! owner still writing is fenced off and every write it made is below the
//! claim: no acknowledged write is lost when an owner dies.
//!
//! An owner also stops writing on its own once its lease may have expired
//! (its local deadline is the renewal time plus the TTL, less a tenth),
//! so a node cut off from TiKV does not keep answering writes.
//!
//! The cut changes while serving (`cluster.reshard`): the owner of a hot
//! or big shard splits it (or of two cold small siblings, merges them). It
//! copies the keys into new shard namespaces while that shard's writers
//! wait, checks that no root changes, then publishes the new cut in one
//! TiKV transaction that also retires the old leases and gives it the new
//! ones, claims the new shards and swaps them in. Every keeper round reads
//! the published cut and adopts it; a node still on the old cut finds the
//! old shards' leases retired (never free), so it forwards nothing there
//! and takes nothing, and answers UNAVAILABLE (retry) until it adopts.

use crate::cluster::ClusterConfig;
use crate::cluster::forward::{Forwarder, Origin, is_forwarded};
use crate::cluster::load::LoadMeter;
use crate::cluster::placement::{NodeInfo, ShardLoad, place_keyed, shard_id};
use crate::cluster::registry::{CutRecord, HeldCut, HeldLease, Member, Registry, RegistryError};
use crate::server::answers;
use crate::store::autoshard::{Reshard, ShardFigures};
use crate::store::backend::any::AnyBackend;
use crate::store::backend::tikv::TikvBackend;
use crate::store::error::StoreError;
use crate::store::sharded::{ShardedProof, ShardedStore, render_shard_metrics, shard_label, shard_namespace};
use crate::store::{BackendKind, BatchOp, StorageConfig, Store};
use prometheus::{IntCounter, IntGauge, Opts, Registry as Metrics};
use rustorium_core::Fr;
use rustorium_core::tree::shard::Prefix;
use rustorium_proto::fr_to_bytes;
use rustorium_proto::v1;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tonic::{Request, Status};

/// Why a cluster node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster config: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Where one shard lives, as this node sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShardPlacement {
    /// `depth-index`, e.g. `2-3`.
    pub shard: String,
    /// The lease holder; empty when nobody holds a live lease.
    pub owner: String,
    pub owner_addr: String,
    pub owner_region: String,
    pub epoch: u64,
    /// Where placement wants the shard.
    pub preferred: String,
    /// The shard's version as this node last saw it.
    pub version: u64,
    pub write_rate: f64,
    pub writes_by_region: BTreeMap<String, u64>,
    /// Live keys in the shard, as this node last saw it.
    pub keys: u64,
}

/// A shard this node writes to.
#[derive(Clone, Copy, Debug)]
struct Owned {
    epoch: u64,
    /// After this, the lease may have expired: stop writing.
    valid_until: Instant,
    since: Instant,
}

#[derive(Clone, Debug, Default)]
struct View {
    members: Vec<Member>,
    leases: BTreeMap<Prefix, HeldLease>,
    preferred: BTreeMap<Prefix, String>,
    now_ms: u64,
}

#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    registry: Metrics,
    owned_shards: IntGauge,
    forwarded_writes_total: IntCounter,
    leases_acquired_total: IntCounter,
    leases_released_total: IntCounter,
    leases_lost_total: IntCounter,
    fenced_writes_total: IntCounter,
    keeper_failures_total: IntCounter,
}

impl ClusterMetrics {
    fn new() -> Self {
        let registry = Metrics::new();
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::with_opts(Opts::new(name, help)).expect("static metric options");
            registry.register(Box::new(metric.clone())).expect("registered once");
            metric
        };
        let owned_shards = IntGauge::with_opts(Opts::new(
            "rustorium_cluster_owned_shards",
            "Shards this node holds the lease of",
        ))
        .expect("static metric options");
        registry
            .register(Box::new(owned_shards.clone()))
            .expect("registered once");
        Self {
            owned_shards,
            forwarded_writes_total: counter(
                "rustorium_cluster_forwarded_writes_total",
                "Write requests this node forwarded to a shard's owner",
            ),
            leases_acquired_total: counter(
                "rustorium_cluster_leases_acquired_total",
                "Shard leases this node took (each raised the shard's epoch)",
            ),
            leases_released_total: counter(
                "rustorium_cluster_leases_released_total",
                "Shard leases this node gave up because placement moved them",
            ),
            leases_lost_total: counter(
                "rustorium_cluster_leases_lost_total",
                "Shard leases this node found taken by another node",
            ),
            fenced_writes_total: counter(
                "rustorium_cluster_fenced_writes_total",
                "Commits refused because a newer owner's epoch was in the root log",
            ),
            keeper_failures_total: counter(
                "rustorium_cluster_keeper_failures_total",
                "Lease/placement rounds that failed (TiKV unreachable)",
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

pub struct ClusterNode {
    config: ClusterConfig,
    /// The settings every shard store is opened with.
    storage: StorageConfig,
    /// The TiKV namespace the shards' namespaces hang under.
    namespace: String,
    /// Prefix bits of the even cut a cluster starts with.
    bits: u8,
    sharded: ShardedStore<AnyBackend>,
    registry: Registry,
    /// Set while this node splits or merges one of its shards.
    reshaping: std::sync::atomic::AtomicBool,
    /// The `seq` of the cut served (never goes back).
    cut_seq: std::sync::atomic::AtomicU64,
    view: RwLock<View>,
    owned: Mutex<BTreeMap<Prefix, Owned>>,
    meters: Mutex<BTreeMap<Prefix, LoadMeter>>,
    forwarder: Forwarder,
    metrics: ClusterMetrics,
    max_levels: u16,
    /// Set by `leave`: the keeper takes nothing more.
    leaving: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node_id", &self.config.node_id)
            .finish()
    }
}

/// This node's member record, expiring one TTL after `now_ms`.
fn member_at(config: &ClusterConfig, now_ms: u64) -> Member {
    Member {
        id: config.node_id.clone(),
        addr: config.advertise.clone(),
        region: config.region.clone(),
        expires_ms: now_ms + config.lease_ttl.as_millis() as u64,
    }
}

/// The epoch a split or merge writes into a retired shard's root log: no
/// writer's epoch is above it, so every later commit there is fenced.
const RETIRED_EPOCH: u64 = u64::MAX;

fn unavailable(prefix: Prefix, why: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("shard {}: {why}; retry", shard_label(prefix)))
}

/// Runs blocking registry work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(RegistryError::Malformed {
            key: String::new(),
            error: "registry task panicked".into(),
        })
    })
}

impl ClusterNode {
    /// Opens every shard of the tree over TiKV (or hybrid) and the cluster
    /// records beside them. Serving starts with `start`.
    pub fn open(
        config: ClusterConfig,
        storage: &StorageConfig,
        forward_timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<Arc<Self>, ClusterError> {
        let bits = config.shard_bits().map_err(ClusterError::Config)?;
        if storage.backend == BackendKind::Redb {
            return Err(ClusterError::Config(
                "a cluster shares one TiKV keyspace: set storage.backend to tikv or hybrid".into(),
            ));
        }
        // One TiKV client for the cluster records and every shard.
        let connection = TikvBackend::connect(storage.tikv.clone()).map_err(StoreError::from)?;
        let registry = Registry::new(connection.in_namespace(&format!("{}/cluster", storage.tikv.namespace)));
        let base = storage.clone();
        let node_id = config.node_id.clone();
        // Local files (the hybrid cache) are per node and per generation;
        // rows are shared.
        let local_dir = {
            let (base, node_id) = (storage.path.clone(), node_id.clone());
            move |prefix: Prefix, generation: u64| {
                base.join(format!("{node_id}-shard-{}-g{generation}", shard_label(prefix)))
            }
        };
        let open_dir = local_dir.clone();
        let open_shard: crate::store::sharded::OpenShard<AnyBackend> = Box::new(move |prefix, generation| {
            let mut shard = base.clone();
            shard.path = open_dir(prefix, generation);
            shard.tikv.namespace = shard_namespace(&base.tikv.namespace, prefix, generation);
            Store::open_with(AnyBackend::open_on(&shard, &connection)?, shard)
        });
        // A retired shard's rows stay in TiKV (README); its local cache goes.
        let retire_shard: crate::store::sharded::RetireShard =
            Box::new(
                move |prefix, generation| match std::fs::remove_dir_all(local_dir(prefix, generation)) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        tracing::warn!(%error, shard = shard_label(prefix), "could not remove a retired shard's cache");
                    }
                    _ => {}
                },
            );
        let sharded = ShardedStore::open_cut(open_shard, Some(retire_shard), None, bits)?;
        Ok(Arc::new(Self {
            max_levels: sharded.max_levels(),
            namespace: storage.tikv.namespace.clone(),
            storage: storage.clone(),
            bits,
            reshaping: std::sync::atomic::AtomicBool::new(false),
            cut_seq: std::sync::atomic::AtomicU64::new(0),
            config,
            sharded,
            registry,
            view: RwLock::default(),
            owned: Mutex::default(),
            meters: Mutex::default(),
            forwarder: Forwarder::new(forward_timeout, max_message_bytes),
            metrics: ClusterMetrics::new(),
            leaving: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Adopts the cut the cluster published (call before serving, so the
    /// first answers already use it; the keeper does it every round).
    pub async fn join(&self) -> Result<(), ClusterError> {
        let (registry, bits) = (self.registry.clone(), self.bits);
        let held = blocking(move || registry.cut(bits)).await?;
        self.adopt(&held.cut).await?;
        Ok(())
    }

    /// Serves `cut` unless it is older than the one served (a round that
    /// read the registry before this node published a change of its own).
    async fn adopt(&self, cut: &CutRecord) -> Result<(), StoreError> {
        if cut.seq < self.cut_seq.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        if self.sharded.adopt(&cut.prefixes(), cut.retired_versions).await? {
            tracing::info!(
                shards = cut.shards.len(),
                seq = cut.seq,
                "serving the cluster's new cut"
            );
        }
        self.cut_seq.fetch_max(cut.seq, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Starts the keeper; it runs until the node is dropped or `leave`s.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = Arc::downgrade(self);
        let period = self.config.lease_ttl / 3;
        tokio::spawn(async move {
            loop {
                let Some(this) = node.upgrade() else { return };
                match this.tick().await {
                    Ok(Some(change)) => {
                        // Off the keeper, which goes on renewing meanwhile.
                        let reshaper = this.clone();
                        tokio::spawn(async move { reshaper.reshape_owned(change).await });
                    }
                    Ok(None) => {}
                    Err(error) => {
                        this.metrics.keeper_failures_total.inc();
                        tracing::warn!(%error, "cluster keeper round failed");
                    }
                }
                drop(this);
                tokio::time::sleep(period).await;
            }
        })
    }

    /// Splits or merges shards this node owns (see the module docs).
    async fn reshape_owned(&self, change: Reshard) {
        let started = Instant::now();
        if let Err(error) = self.try_reshape(change, started).await {
            tracing::warn!(?change, %error, "could not reshape (the old cut stays)");
        }
        self.reshaping.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    async fn try_reshape(&self, change: Reshard, started: Instant) -> Result<(), ClusterError> {
        let (old, new, joined) = match change {
            Reshard::Split(prefix) => (vec![prefix], prefix.children().to_vec(), prefix),
            Reshard::Merged(parent) => (parent.children().to_vec(), vec![parent], parent),
        };
        let held: Vec<(Prefix, u64)> = old
            .iter()
            .map(|p| self.owns(*p).map(|epoch| (*p, epoch)))
            .collect::<Option<_>>()
            .ok_or_else(|| ClusterError::Config("no longer the owner".into()))?;
        let (registry, bits) = (self.registry.clone(), self.bits);
        let published: HeldCut = blocking(move || registry.cut(bits)).await?;
        if published.cut.prefixes() != self.sharded.cut_with_generations() {
            return Err(ClusterError::Config("the cut changed meanwhile".into()));
        }
        let prepared = self.sharded.prepare_reshape(&old, &new, joined).await?;
        let next = CutRecord {
            shards: prepared
                .cut_after()
                .into_iter()
                .map(|(p, g)| (p.depth, p.index, g))
                .collect(),
            retired_versions: prepared.retired_versions_after(),
            seq: published.cut.seq + 1,
        };
        let (registry, config, ttl, made) = (
            self.registry.clone(),
            self.config.clone(),
            self.config.lease_ttl,
            new.clone(),
        );
        let (attempt, bits, me) = (next.clone(), self.bits, self.config.node_id.clone());
        let outcome = blocking(move || {
            let now_ms = registry.now_ms()?;
            let me_now = member_at(&config, now_ms);
            match registry.publish_reshape(&published, &attempt, &held, &made, &me_now, now_ms, ttl) {
                Ok(Some(epochs)) => Ok(Some(epochs)),
                // A commit whose outcome was unknown may have landed (its
                // retry then finds the new cut and declines): look.
                _ => {
                    if registry.cut(bits)?.cut != attempt {
                        return Ok(None);
                    }
                    registry.held_by(&made, &me, registry.now_ms()?)
                }
            }
        })
        .await;
        let epochs = match outcome {
            Ok(Some(epochs)) => epochs,
            Ok(None) => return Err(ClusterError::Config("the cut or a lease changed first".into())),
            Err(error) => {
                // Unknown: the old shards may be retired already. Write
                // none of them until a keeper round settles it (it re-takes
                // a lease that is still ours).
                for prefix in &old {
                    self.disown(*prefix);
                }
                return Err(error.into());
            }
        };
        // Published. The old shards' root logs get the retired epoch, which
        // fences any writer for good (a node on a stale cut included), and
        // no lease is ever taken on such a store.
        for prefix in &old {
            if let Some(store) = self.store_of(*prefix)
                && let Err(error) = store.claim(RETIRED_EPOCH).await
            {
                tracing::warn!(shard = shard_label(*prefix), %error, "could not fence a retired shard (its lease is retired)");
            }
        }
        // The new shards are this node's. Claim them before any write
        // reaches them (their writers wait at the old gates).
        for (prefix, store) in prepared.fresh() {
            match store.claim(epochs[prefix]).await {
                Ok(_) => self.own(*prefix, epochs[prefix], started, ttl),
                // The keeper claims a lease of ours it finds unclaimed.
                Err(error) => tracing::warn!(shard = shard_label(*prefix), %error, "could not claim a new shard yet"),
            }
        }
        let committed = prepared.commit();
        for prefix in &old {
            self.disown(*prefix);
        }
        committed?;
        self.cut_seq.fetch_max(next.seq, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(?old, ?new, "resharded: published, claimed and serving");
        Ok(())
    }

    /// Records that this node writes `prefix` under `epoch`, for a lease
    /// `left` long as of `started`.
    fn own(&self, prefix: Prefix, epoch: u64, started: Instant, left: Duration) {
        let ttl = self.config.lease_ttl;
        let previous = self.owned().insert(
            prefix,
            Owned {
                epoch,
                valid_until: (started + left).checked_sub(ttl / 10).unwrap_or(started),
                since: Instant::now(),
            },
        );
        if previous.is_none() {
            self.metrics.owned_shards.inc();
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn metrics(&self) -> &ClusterMetrics {
        &self.metrics
    }

    pub fn max_levels(&self) -> u16 {
        self.max_levels
    }

    /// `/metrics`: every shard store's metrics labelled `shard="depth-index"`,
    /// then the cluster's own.
    pub fn render_metrics(&self) -> String {
        render_shard_metrics(&self.sharded.shards(), self.metrics.registry.gather())
    }

    /// Every shard's store, in prefix order.
    pub fn stores(&self) -> Vec<Store> {
        self.sharded.stores()
    }

    /// The settings every shard store is opened with.
    pub fn storage(&self) -> &StorageConfig {
        &self.storage
    }

    fn me(&self, now_ms: u64) -> Member {
        member_at(&self.config, now_ms)
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, BTreeMap<Prefix, Owned>> {
        self.owned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn view(&self) -> View {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The epoch this node writes `prefix` under, if it owns it now.
    fn owns(&self, prefix: Prefix) -> Option<u64> {
        self.owned()
            .get(&prefix)
            .filter(|o| o.valid_until > Instant::now())
            .map(|o| o.epoch)
    }

    fn disown(&self, prefix: Prefix) {
        if self.owned().remove(&prefix).is_some() {
            self.metrics.owned_shards.dec();
        }
    }

    /// One keeper round: heartbeat, the published cut, placement, leases.
    /// Returns a split or merge of this node's shards the reshard policy
    /// asks for (the caller runs it off the keeper).
    pub async fn tick(&self) -> Result<Option<Reshard>, RegistryError> {
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        let started = Instant::now();
        let ttl = self.config.lease_ttl;
        let registry = self.registry.clone();
        let config = self.config.clone();
        let bits = self.bits;
        // The cut first: leases read after it are at least as new, so a
        // shard retired after this read shows a retired lease, never a free one.
        let (now_ms, members, cut, leases) = blocking(move || {
            let now_ms = registry.now_ms()?;
            registry.heartbeat(&member_at(&config, now_ms))?;
            let members = registry.members(now_ms)?;
            // A malformed cut record must not stall every keeper: each node
            // keeps the cut it serves (and reshapes fail until it is fixed).
            let cut = match registry.cut(bits) {
                Ok(cut) => Some(cut),
                Err(error @ RegistryError::Malformed { .. }) => {
                    tracing::error!(%error, "keeping the cut this node serves");
                    None
                }
                Err(error) => return Err(error),
            };
            Ok((now_ms, members, cut, registry.leases()?))
        })
        .await?;
        if let Some(cut) = &cut
            && !self.reshaping.load(std::sync::atomic::Ordering::SeqCst)
            && let Err(error) = self.adopt(&cut.cut).await
        {
            // This node alone serves an older cut: it must not take or
            // keep leases by it. Its leases run out; others take them.
            return Err(RegistryError::Backend(crate::store::backend::BackendError::retryable(
                "adopt the cluster's cut (skipping this round's leases)",
                error.to_string(),
            )));
        }
        let prefixes: Vec<Prefix> = self.sharded.cut();
        let mut figures: Vec<ShardFigures> = Vec::with_capacity(prefixes.len());
        let live_owner = |p: &Prefix| -> String {
            leases
                .get(p)
                .filter(|h| h.lease.live(now_ms))
                .map(|h| h.lease.owner.clone())
                .unwrap_or_default()
        };
        let loads: Vec<ShardLoad> = prefixes
            .iter()
            .map(|p| leases.get(p).map(|h| h.lease.load.clone()).unwrap_or_default())
            .collect();
        let current: Vec<String> = prefixes.iter().map(live_owner).collect();
        let nodes: Vec<NodeInfo> = members
            .iter()
            .map(|m| NodeInfo {
                id: m.id.clone(),
                region: m.region.clone(),
            })
            .collect();
        let preferred: BTreeMap<Prefix, String> = prefixes
            .iter()
            .copied()
            .zip(place_keyed(
                self.config.placement_strategy,
                &nodes,
                &prefixes.iter().map(|p| shard_id(*p)).collect::<Vec<_>>(),
                &loads,
                Some(&current),
            ))
            .collect();
        let mut leases = leases;
        let me = self.config.node_id.as_str();
        let mut released_one = false;
        for prefix in &prefixes {
            let held = leases.get(prefix).cloned();
            let live = held.as_ref().is_some_and(|h| h.lease.live(now_ms));
            let wanted = preferred.get(prefix).map(String::as_str);
            let wanted_alive = wanted.is_some_and(|w| members.iter().any(|m| m.id == w));
            match held {
                Some(held) if live && held.lease.owner == me => {
                    let local = self.owned().get(prefix).copied();
                    let Some(local) = local else {
                        // A lease of ours this process never claimed (a
                        // restart within the TTL): claim it before writing.
                        let left = Duration::from_millis(held.lease.expires_ms.saturating_sub(now_ms));
                        self.take(*prefix, held.lease.epoch, started, left).await;
                        continue;
                    };
                    let move_away = wanted.is_some_and(|w| w != me)
                        && wanted_alive
                        && !released_one
                        && local.since.elapsed() >= self.config.min_ownership;
                    if move_away {
                        self.disown(*prefix);
                        let (registry, p, h) = (self.registry.clone(), *prefix, held.clone());
                        if blocking(move || registry.release(p, &h, now_ms)).await? {
                            released_one = true;
                            self.metrics.leases_released_total.inc();
                            tracing::info!(shard = shard_label(*prefix), to = ?wanted, "released a shard to placement");
                        }
                        continue;
                    }
                    let load = self
                        .meters
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(*prefix)
                        .or_default()
                        .sample();
                    figures.push(ShardFigures {
                        prefix: *prefix,
                        keys: self.store_of(*prefix).map_or(0, |s| s.keys()),
                        rate: Some(load.write_rate),
                    });
                    let (registry, p, h) = (self.registry.clone(), *prefix, held.clone());
                    match blocking(move || registry.renew(p, &h, now_ms, ttl, load)).await? {
                        Some(_) => {
                            if let Some(owned) = self.owned().get_mut(prefix) {
                                owned.valid_until = started + ttl - ttl / 10;
                            }
                        }
                        None => {
                            self.disown(*prefix);
                            self.metrics.leases_lost_total.inc();
                            tracing::warn!(shard = shard_label(*prefix), "lost a shard lease");
                        }
                    }
                }
                // Split or merged away by its owner; this round's cut is
                // older than the lease read. The next round adopts.
                Some(held) if held.lease.retired => {}
                held => {
                    if self.owned().contains_key(prefix) {
                        self.disown(*prefix);
                        self.metrics.leases_lost_total.inc();
                        tracing::warn!(shard = shard_label(*prefix), "shard lease is no longer ours");
                    }
                    // Placement's choice takes a free shard; anyone takes one
                    // left free for two TTLs (its preferred node may be stuck).
                    let abandoned = held
                        .as_ref()
                        .is_none_or(|h| now_ms > h.lease.expires_ms + 2 * ttl.as_millis() as u64);
                    if live || !(wanted == Some(me) || abandoned) {
                        continue;
                    }
                    // The shard's latest root record says which epoch wrote last.
                    let Some(store) = self.store_of(*prefix) else { continue };
                    if let Err(error) = store.refresh_head().await {
                        tracing::warn!(shard = shard_label(*prefix), %error, "cannot read the shard's head; not taking it");
                        continue;
                    }
                    let floor = store.head_epoch();
                    if floor == RETIRED_EPOCH {
                        continue; // split or merged away; the next round adopts
                    }
                    let (registry, p, me_now) = (self.registry.clone(), *prefix, self.me(now_ms));
                    let current = held.clone();
                    let acquired =
                        blocking(move || registry.acquire(p, current.as_ref(), &me_now, now_ms, ttl, floor)).await?;
                    if let Some(lease) = acquired {
                        self.metrics.leases_acquired_total.inc();
                        self.take(*prefix, lease.epoch, started, ttl).await;
                        // The keeper's picture of the lease is stale now.
                        leases.remove(prefix);
                    }
                }
            }
        }
        // Read leases again so the view shows this round's changes.
        let registry = self.registry.clone();
        let leases = blocking(move || registry.leases()).await?;
        *self.view.write().unwrap_or_else(std::sync::PoisonError::into_inner) = View {
            members,
            leases,
            preferred,
            now_ms,
        };
        let policy = &self.config.reshard;
        if !policy.is_active() || self.reshaping.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        // Only shards this node owns, with most of a lease left.
        let change = policy.plan(&figures, |p| self.owns(p).is_some()).into_iter().next();
        if change.is_some() {
            self.reshaping.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(change)
    }

    /// The store serving `prefix` in the current cut.
    fn store_of(&self, prefix: Prefix) -> Option<Store> {
        self.sharded
            .shards()
            .into_iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, s)| s)
    }

    /// Fences the shard under `epoch` and starts writing it.
    /// Fences the shard under `epoch` and starts writing it, until the
    /// lease (`left` of it as of `started`) may run out.
    async fn take(&self, prefix: Prefix, epoch: u64, started: Instant, left: Duration) {
        let Some(store) = self.store_of(prefix) else { return };
        match store.claim(epoch).await {
            Ok(version) => {
                self.own(prefix, epoch, started, left);
                tracing::info!(shard = shard_label(prefix), epoch, version, "took a shard");
            }
            Err(error) => tracing::warn!(shard = shard_label(prefix), %error, "could not claim a shard"),
        }
    }

    /// The live owner of `prefix` other than this node, as last seen.
    fn remote_owner(&self, prefix: Prefix) -> Option<(String, String)> {
        let view = self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        view.leases
            .get(&prefix)
            .filter(|h| h.lease.live(view.now_ms) && h.lease.owner != self.config.node_id)
            .map(|h| (h.lease.owner.clone(), h.lease.addr.clone()))
    }

    fn record_write(&self, prefix: Prefix, ops: u64, region: &str) {
        self.meters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(prefix)
            .or_default()
            .record(ops, region);
    }

    fn shard_of(&self, key: &[u8]) -> Result<Prefix, Status> {
        Ok(self.sharded.shard_of(key)?)
    }

    /// Runs `local` if this node owns `prefix`, else `forward` to the owner.
    /// A commit fenced by a newer owner counts as not owning.
    async fn route<T, L, LF, F, FF>(&self, prefix: Prefix, forwarded: bool, local: L, forward: F) -> Result<T, Status>
    where
        L: FnOnce() -> LF,
        LF: std::future::Future<Output = Result<T, StoreError>>,
        F: FnOnce(String) -> FF,
        FF: std::future::Future<Output = Result<T, Status>>,
    {
        if self.owns(prefix).is_some() {
            match local().await {
                Err(StoreError::Fenced { mine, current, .. }) => {
                    self.metrics.fenced_writes_total.inc();
                    self.disown(prefix);
                    tracing::warn!(shard = shard_label(prefix), mine, current, "fenced by a newer owner");
                }
                outcome => return outcome.map_err(Status::from),
            }
        }
        if forwarded {
            return Err(unavailable(
                prefix,
                format!("node {} does not own it", self.config.node_id),
            ));
        }
        let Some((owner, addr)) = self.remote_owner(prefix) else {
            return Err(unavailable(prefix, "no live owner right now (the lease is moving)"));
        };
        self.metrics.forwarded_writes_total.inc();
        forward(addr.clone()).await.map_err(|status| {
            if status.code() == tonic::Code::Unavailable {
                self.forwarder.forget(&addr);
            }
            Status::new(
                status.code(),
                format!("forwarded to {owner} ({addr}): {}", status.message()),
            )
        })
    }

    /// Where a request's writes come from: a forwarding node's word for a
    /// region of a live member, else this node's region (a client cannot
    /// make up regions for placement to count).
    fn origin<T>(&self, request: &Request<T>) -> Origin {
        let mut origin = Origin::of(request, &self.config.region);
        let known = is_forwarded(request)
            && self
                .view
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .members
                .iter()
                .any(|m| m.region == origin.region);
        if !known {
            origin.region = self.config.region.clone();
        }
        origin
    }

    pub async fn put(&self, request: Request<v1::PutRequest>) -> Result<v1::PutResponse, Status> {
        let forwarded = is_forwarded(&request);
        let origin = self.origin(&request);
        let message = request.into_inner();
        let prefix = self.shard_of(&message.key)?;
        let response = self
            .route(
                prefix,
                forwarded,
                || async {
                    let written = self.sharded.write_with_proof(&message.key, &message.value).await?;
                    self.record_write(prefix, 1, &origin.region);
                    Ok(answers::put(&written, message.want_proof, self.max_levels))
                },
                |addr| {
                    let (message, origin) = (&message, &origin);
                    async move { self.forwarder.put(&addr, message.clone(), origin).await }
                },
            )
            .await?;
        Ok(response)
    }

    pub async fn delete(&self, request: Request<v1::DeleteRequest>) -> Result<v1::DeleteResponse, Status> {
        let forwarded = is_forwarded(&request);
        let origin = self.origin(&request);
        let message = request.into_inner();
        let prefix = self.shard_of(&message.key)?;
        self.route(
            prefix,
            forwarded,
            || async {
                let (deleted, existed) = self.sharded.delete(&message.key).await?;
                self.record_write(prefix, 1, &origin.region);
                Ok(answers::delete(&deleted, existed, self.max_levels))
            },
            |addr| {
                let (message, origin) = (&message, &origin);
                async move { self.forwarder.delete(&addr, message.clone(), origin).await }
            },
        )
        .await
    }

    /// Each shard's part of the batch goes to that shard's owner: atomic
    /// within a shard, not across shards (as `ShardedStore::write_batch`).
    pub async fn put_batch(&self, request: Request<v1::PutBatchRequest>) -> Result<v1::PutBatchResponse, Status> {
        let forwarded = is_forwarded(&request);
        let origin = self.origin(&request);
        let message = request.into_inner();
        if message.want_proofs {
            return Err(Status::failed_precondition(
                "PutBatch proofs are not served in cluster mode (a batch may span shards); read the keys with Get",
            ));
        }
        let mut parts: BTreeMap<Prefix, (Vec<v1::Op>, Vec<BatchOp>)> = BTreeMap::new();
        for (i, op) in message.ops.into_iter().enumerate() {
            let batch_op = match &op.kind {
                Some(v1::op::Kind::Value(value)) => BatchOp::Put {
                    key: op.key.clone(),
                    value: value.clone(),
                },
                Some(v1::op::Kind::Delete(_)) => BatchOp::Delete { key: op.key.clone() },
                None => {
                    return Err(Status::invalid_argument(format!(
                        "ops[{i}] has neither a value nor delete"
                    )));
                }
            };
            let part = parts.entry(self.shard_of(&op.key)?).or_default();
            part.0.push(op);
            part.1.push(batch_op);
        }
        if parts.is_empty() {
            return Err(StoreError::EmptyBatch.into());
        }
        let writes = parts.into_iter().map(|(prefix, (ops, batch))| {
            let origin = origin.clone();
            async move {
                let count = batch.len() as u64;
                self.route(
                    prefix,
                    forwarded,
                    || async {
                        self.sharded.write_batch(&batch).await?;
                        self.record_write(prefix, count, &origin.region);
                        Ok(())
                    },
                    |addr| {
                        let origin = &origin;
                        async move {
                            let part = v1::PutBatchRequest {
                                ops,
                                want_proofs: false,
                            };
                            self.forwarder.put_batch(&addr, part, origin).await.map(drop)
                        }
                    },
                )
                .await
            }
        });
        futures::future::try_join_all(writes).await?;
        let (root, version) = self.root().await?;
        Ok(v1::PutBatchResponse {
            root: fr_to_bytes(&root),
            version,
            timestamp_unix_nanos: crate::store::unix_nanos(SystemTime::now()),
            proofs: Vec::new(),
        })
    }

    /// Makes the shards this node does not write see their owners' latest
    /// commits (a TiKV read each, all at once).
    async fn refresh(&self, only: Option<Prefix>) -> Result<(), StoreError> {
        let shards = self.sharded.shards();
        let refreshes = shards
            .iter()
            .filter(|(p, _)| only.is_none_or(|o| o == *p) && self.owns(*p).is_none())
            .map(|(_, store)| store.refresh_head());
        futures::future::try_join_all(refreshes).await.map(drop)
    }

    /// The key's value with a proof against the global root; the key's
    /// shard is first brought up to its owner's latest commit.
    pub async fn read(&self, key: &[u8]) -> Result<ShardedProof, StoreError> {
        let prefix = self.sharded.shard_of(key)?;
        self.refresh(Some(prefix)).await?;
        self.sharded.read(key).await
    }

    /// The global root over every shard's latest commit, and the cluster
    /// version (the sum of the shard versions).
    pub async fn root(&self) -> Result<(Fr, u64), StoreError> {
        self.refresh(None).await?;
        let global = self.sharded.global_root().await?;
        Ok((global.root, global.version))
    }

    /// Rows of every shard in `[start, end)` in key order, up to `limit`.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.refresh(None).await?;
        self.sharded.scan(start, end, limit).await
    }

    /// The cluster version as of each shard's head here (no TiKV read).
    pub fn head_version(&self) -> u64 {
        self.sharded.head_version()
    }

    /// Live keys over all shards, as of each shard's head here.
    pub fn keys(&self) -> u64 {
        self.sharded.stores().iter().map(Store::keys).sum()
    }

    /// Where every shard lives, as of the keeper's last round.
    pub fn placement(&self) -> Vec<ShardPlacement> {
        let view = self.view();
        self.sharded
            .shards()
            .iter()
            .map(|(prefix, store)| {
                let lease = view
                    .leases
                    .get(prefix)
                    .map(|h| &h.lease)
                    .filter(|l| l.live(view.now_ms));
                let owner = lease.map(|l| l.owner.clone()).unwrap_or_default();
                ShardPlacement {
                    shard: shard_label(*prefix),
                    owner_region: view
                        .members
                        .iter()
                        .find(|m| m.id == owner)
                        .map(|m| m.region.clone())
                        .unwrap_or_default(),
                    owner_addr: lease.map(|l| l.addr.clone()).unwrap_or_default(),
                    owner,
                    epoch: view.leases.get(prefix).map_or(0, |h| h.lease.epoch),
                    preferred: view.preferred.get(prefix).cloned().unwrap_or_default(),
                    version: store.root().1,
                    write_rate: lease.map_or(0.0, |l| l.load.write_rate),
                    writes_by_region: lease.map(|l| l.load.writes_by_region.clone()).unwrap_or_default(),
                    keys: store.keys(),
                }
            })
            .collect()
    }

    /// The PD placement rules that keep each owned shard's TiKV leaders in
    /// its owner's region (`pd-ctl config placement-rules rule-bundle save`).
    pub fn placement_rules(&self) -> serde_json::Value {
        let shards: Vec<(String, String)> = self
            .sharded
            .cut_with_generations()
            .into_iter()
            .zip(self.placement())
            .filter(|(_, p)| !p.owner_region.is_empty())
            .map(|((prefix, generation), p)| (shard_namespace(&self.namespace, prefix, generation), p.owner_region))
            .collect();
        crate::cluster::placement::placement_rules(&shards)
    }

    /// Live members, as of the keeper's last round.
    pub fn members(&self) -> Vec<Member> {
        self.view().members
    }

    /// Gives up every lease this node holds (a graceful stop), so other
    /// nodes take the shards at once instead of after the TTL.
    pub async fn leave(&self) {
        // The keeper first, so it takes nothing back meanwhile.
        self.leaving.store(true, std::sync::atomic::Ordering::SeqCst);
        let prefixes: Vec<Prefix> = self.owned().keys().copied().collect();
        for prefix in prefixes {
            self.disown(prefix);
            let (registry, me) = (self.registry.clone(), self.config.node_id.clone());
            let released = blocking(move || {
                let leases = registry.leases()?;
                match leases.get(&prefix) {
                    Some(held) if held.lease.owner == me => registry.release(prefix, held, registry.now_ms()?),
                    _ => Ok(false),
                }
            })
            .await;
            if let Err(error) = released {
                tracing::warn!(shard = shard_label(prefix), %error, "could not release a lease on the way out");
            }
        }
        let (registry, me) = (self.registry.clone(), self.config.node_id.clone());
        if let Err(error) = blocking(move || registry.forget(&me)).await {
            tracing::warn!(%error, "could not remove this node's member record");
        }
    }
}
