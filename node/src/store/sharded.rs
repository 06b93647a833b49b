//! A tree cut into shards by key-path prefix (`rustorium_core::tree::shard`),
//! each an ordinary `Store` with its own committer, so writes to different
//! shards commit in parallel (on every core, and on different backends or
//! nodes). Core's shard rules put the pieces back together: the global root
//! is exactly the unsharded tree's root, and each shard proof extends to a
//! proof against it.
//!
//! The cut changes while serving: `split` replaces a hot shard by its two
//! halves and `merge` joins two cold halves, copying the keys and checking
//! that the halves' sub-roots join to the old one, so no root changes. Only
//! the moving shard's writers wait for the copy; reads go on.
//!
//! A global root is the root of one cut: every shard at some committed
//! version (`versions`). Batches are atomic within a shard, not across
//! shards. A shard's versions start over when it is split or merged.

use crate::store::backend::Backend;
use crate::store::backend::any::AnyBackend;
use crate::store::error::{Result, StoreError};
use crate::store::{BatchOp, StorageConfig, Store};
use rustorium_core::Fr;
use rustorium_core::proof::Proof;
use rustorium_core::tree::Node;
use rustorium_core::tree::shard::{MAX_SHARD_BITS, Prefix, TopTree, sub_root};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// Keys copied per batch when a shard splits or merges.
const COPY_BATCH: usize = 4096;
/// The cut of a sharded store on disk: one `depth index generation` line
/// per shard. A shard made by a split or merge gets a new generation, so
/// its store never reuses a retired one's files or keys. A `retired N`
/// line keeps the versions retired shards had reached (see `version`).
pub const LAYOUT_FILE: &str = "shards.layout";

/// A proof against a global root, with the cut it belongs to.
#[derive(Clone, Debug)]
pub struct ShardedProof {
    pub value: Option<Vec<u8>>,
    pub proof: Proof,
    pub root: Fr,
    /// Each shard's version in the cut the root is of.
    pub versions: BTreeMap<Prefix, u64>,
    /// The store's version for that cut (see `GlobalRoot::version`).
    pub version: u64,
    pub shard: Prefix,
}

/// The root of one cut: every shard at some committed version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalRoot {
    pub root: Fr,
    /// Each shard's version in the cut.
    pub versions: BTreeMap<Prefix, u64>,
    /// The sum of the shard versions plus every version retired shards
    /// had reached: it grows with each commit to any shard and never goes
    /// back when a split or merge starts new shards at version 0.
    pub version: u64,
}

/// A shard held at the version a proof was made at.
#[derive(Clone, Copy, Debug)]
struct Pinned {
    prefix: Prefix,
    generation: u64,
    version: u64,
    node: Node,
}

/// One shard's part of a batch: the shard, its ops, and their positions in
/// the whole batch.
type BatchPart<B> = (Shard<B>, Vec<BatchOp>, Vec<usize>);

/// A batch written across shards, with proofs against one global root.
#[derive(Clone, Debug)]
pub struct ShardedBatch {
    pub root: Fr,
    pub version: u64,
    pub versions: BTreeMap<Prefix, u64>,
    /// One proof per op, in op order: the key's state after the batch.
    pub proofs: Vec<Proof>,
}

/// What `shards.layout` holds.
#[derive(Debug, Default)]
struct Layout {
    cut: Vec<(Prefix, u64)>,
    retired_versions: u64,
}

/// Opens the store of one shard (prefix, generation).
pub type OpenShard<B> = Box<dyn Fn(Prefix, u64) -> Result<Store<B>> + Send + Sync>;
/// Frees what a retired shard's store held, once nothing reads it.
pub type RetireShard = Box<dyn Fn(Prefix, u64) + Send + Sync>;

struct Shard<B: Backend> {
    store: Store<B>,
    generation: u64,
    /// Writers hold it shared; a split or merge holds it exclusively.
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl<B: Backend> Clone for Shard<B> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            generation: self.generation,
            gate: self.gate.clone(),
        }
    }
}

/// Shards of one tree.
pub struct ShardedStore<B: Backend = AnyBackend> {
    shards: RwLock<BTreeMap<Prefix, Shard<B>>>,
    /// Each shard's sub-root at the version it was last seen at.
    /// Keyed by prefix, tagged with the shard's generation: a shard that
    /// comes back at the same prefix starts its versions over.
    sub_roots: Mutex<BTreeMap<Prefix, (u64, u64, Node)>>,
    /// The next generation a split or merge gives its new shards.
    next_generation: std::sync::atomic::AtomicU64,
    /// Versions reached by shards a split or merge retired; changed only
    /// under the `shards` write lock, so a reader holding it shared sees
    /// the cut and this together.
    retired_versions: std::sync::atomic::AtomicU64,
    open_shard: OpenShard<B>,
    retire_shard: Option<RetireShard>,
    /// Where the cut is kept, if anywhere.
    layout_file: Option<PathBuf>,
    /// Serializes splits and merges.
    reshaping: tokio::sync::Mutex<()>,
    /// Splits and merges done since open.
    splits: std::sync::atomic::AtomicU64,
    merges: std::sync::atomic::AtomicU64,
}

impl<B: Backend> std::fmt::Debug for ShardedStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedStore").field("cut", &self.cut()).finish()
    }
}

fn shard_name(prefix: Prefix, generation: u64) -> String {
    format!("shard-{}-{:03}-g{generation}", prefix.depth, prefix.index)
}

/// How answers, stats and metrics name a shard: `depth-index`.
pub fn shard_label(prefix: Prefix) -> String {
    format!("{}-{}", prefix.depth, prefix.index)
}

/// Prometheus text for shard stores: every shard's metrics labelled
/// `shard="depth-index"` (one family per name), then `extra`.
pub fn render_shard_metrics(
    shards: &[(Prefix, Store<AnyBackend>)],
    extra: Vec<prometheus::proto::MetricFamily>,
) -> String {
    use prometheus::proto::{LabelPair, MetricFamily};
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for (prefix, store) in shards {
        store.refresh_metrics();
        for mut family in store.metrics().registry.gather() {
            for metric in family.mut_metric() {
                let mut labels = metric.take_label();
                let mut shard = LabelPair::default();
                shard.set_name("shard".into());
                shard.set_value(shard_label(*prefix));
                labels.push(shard);
                metric.set_label(labels);
            }
            match families.entry(family.name().to_owned()) {
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(family);
                }
                std::collections::btree_map::Entry::Occupied(mut entry) => {
                    let metrics = family.take_metric();
                    entry.get_mut().mut_metric().extend(metrics);
                }
            }
        }
    }
    let mut all: Vec<MetricFamily> = families.into_values().collect();
    all.extend(extra);
    prometheus::TextEncoder::new()
        .encode_to_string(&all)
        .unwrap_or_default()
}

/// The TiKV namespace of one shard of a store whose namespace is `namespace`.
pub fn shard_namespace(namespace: &str, prefix: Prefix, generation: u64) -> String {
    format!("{namespace}/{}", shard_name(prefix, generation))
}

fn read_layout(file: &std::path::Path) -> Result<Option<Layout>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Config(format!("{}: {e}", file.display()))),
    };
    let corrupt = |line: &str| StoreError::Corrupt(format!("{}: bad line {line:?}", file.display()));
    let mut layout = Layout::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["retired", versions] => layout.retired_versions = versions.parse().map_err(|_| corrupt(line))?,
            [depth, index, generation] => {
                let prefix = Prefix {
                    depth: depth.parse().map_err(|_| corrupt(line))?,
                    index: index.parse().map_err(|_| corrupt(line))?,
                };
                layout
                    .cut
                    .push((prefix, generation.parse().map_err(|_| corrupt(line))?));
            }
            _ => return Err(corrupt(line)),
        }
    }
    Ok(Some(layout))
}

/// Why `write_layout` failed: before the new file replaced the old one
/// (nothing changed) or after (the new layout is in place, perhaps not yet
/// durable).
#[derive(Debug)]
enum LayoutWrite {
    NotReplaced(StoreError),
    NotSynced(StoreError),
}

fn write_layout(file: &std::path::Path, layout: &Layout) -> Result<(), LayoutWrite> {
    let mut text: String = layout
        .cut
        .iter()
        .map(|(p, g)| format!("{} {} {g}\n", p.depth, p.index))
        .collect();
    text.push_str(&format!("retired {}\n", layout.retired_versions));
    let temp = file.with_extension("tmp");
    let error = |e: std::io::Error| StoreError::Config(format!("writing {}: {e}", file.display()));
    let replace = || -> std::io::Result<()> {
        let mut out = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut out, text.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&temp, file)
    };
    replace().map_err(|e| LayoutWrite::NotReplaced(error(e)))?;
    // The rename itself survives a crash once the directory is synced.
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LayoutWrite::NotSynced(error(e)))?;
    }
    Ok(())
}

/// The shards of the sharded store under `path` and each one's directory,
/// in prefix order; `None` when `path` holds no sharded store.
pub fn shard_dirs(path: &std::path::Path) -> Result<Option<Vec<(Prefix, PathBuf)>>> {
    Ok(read_layout(&path.join(LAYOUT_FILE))?.map(|layout| {
        layout
            .cut
            .into_iter()
            .map(|(prefix, generation)| (prefix, path.join(shard_name(prefix, generation))))
            .collect()
    }))
}

impl ShardedStore<AnyBackend> {
    /// Opens the shards under `config`: Redb files under `path/shard-D-III`
    /// (TiKV: namespaces `namespace/shard-D-III`), in the cut kept in
    /// `path/shards.layout`, or `2^bits` even shards for a new store.
    pub fn open(config: &StorageConfig, bits: u8) -> Result<Self> {
        let base = config.clone();
        let open_shard: OpenShard<AnyBackend> = Box::new(move |prefix, generation| {
            let mut shard = base.clone();
            shard.path = base.path.join(shard_name(prefix, generation));
            shard.tikv.namespace = shard_namespace(&base.tikv.namespace, prefix, generation);
            Store::open(shard)
        });
        // Local files of retired shards go; rows of retired TiKV shards
        // stay under their namespace until removed by hand (README).
        let root = config.path.clone();
        let retire_shard: RetireShard = Box::new(move |prefix, generation| {
            let dir = root.join(shard_name(prefix, generation));
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(%error, dir = %dir.display(), "could not remove a retired shard");
            }
        });
        std::fs::create_dir_all(&config.path)
            .map_err(|e| StoreError::Config(format!("{}: {e}", config.path.display())))?;
        Self::open_cut(
            open_shard,
            Some(retire_shard),
            Some(config.path.join(LAYOUT_FILE)),
            bits,
        )
    }
}

impl<B: Backend> ShardedStore<B> {
    /// Opens the cut kept in `layout_file` (or `2^bits` even shards when
    /// there is none) with `open_shard`.
    pub fn open_cut(
        open_shard: OpenShard<B>,
        retire_shard: Option<RetireShard>,
        layout_file: Option<PathBuf>,
        bits: u8,
    ) -> Result<Self> {
        if bits > MAX_SHARD_BITS {
            return Err(StoreError::Config(format!(
                "{bits} shard bits: at most {MAX_SHARD_BITS} (256 shards)"
            )));
        }
        let layout = match layout_file.as_deref().map(read_layout).transpose()?.flatten() {
            Some(layout) => layout,
            None => {
                let layout = Layout {
                    cut: Prefix::uniform(bits).into_iter().map(|p| (p, 0)).collect(),
                    retired_versions: 0,
                };
                if let Some(file) = &layout_file {
                    write_layout(file, &layout).map_err(|e| match e {
                        LayoutWrite::NotReplaced(e) | LayoutWrite::NotSynced(e) => e,
                    })?;
                }
                layout
            }
        };
        let cut = layout.cut;
        // A cut that does not cover every key once is refused here.
        TopTree::from_cut(cut.iter().map(|(p, _)| (*p, Node::Empty))).map_err(|e| StoreError::Config(e.to_string()))?;
        let mut shards = BTreeMap::new();
        for (prefix, generation) in &cut {
            let store = open_shard(*prefix, *generation)?;
            shards.insert(
                *prefix,
                Shard {
                    store,
                    generation: *generation,
                    gate: Arc::default(),
                },
            );
        }
        let this = Self {
            shards: RwLock::new(shards),
            sub_roots: Mutex::new(BTreeMap::new()),
            next_generation: std::sync::atomic::AtomicU64::new(cut.iter().map(|(_, g)| g + 1).max().unwrap_or(1)),
            retired_versions: std::sync::atomic::AtomicU64::new(layout.retired_versions),
            open_shard,
            retire_shard,
            layout_file,
            reshaping: tokio::sync::Mutex::new(()),
            splits: std::sync::atomic::AtomicU64::new(0),
            merges: std::sync::atomic::AtomicU64::new(0),
        };
        let first = this.any_store();
        if this
            .stores()
            .iter()
            .any(|s| s.config().key_mode != first.config().key_mode || s.max_levels() != first.max_levels())
        {
            return Err(StoreError::Config(
                "every shard needs the same key_mode and max_levels".into(),
            ));
        }
        Ok(this)
    }

    fn read_shards(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Prefix, Shard<B>>> {
        self.shards.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn any_store(&self) -> Store<B> {
        self.read_shards()
            .values()
            .next()
            .map(|s| s.store.clone())
            .expect("a cut has at least one shard")
    }

    /// The shard prefixes, in order.
    pub fn cut(&self) -> Vec<Prefix> {
        self.read_shards().keys().copied().collect()
    }

    /// The shard stores, in prefix order.
    pub fn stores(&self) -> Vec<Store<B>> {
        self.read_shards().values().map(|s| s.store.clone()).collect()
    }

    pub fn shard_count(&self) -> usize {
        self.read_shards().len()
    }

    pub fn max_levels(&self) -> u16 {
        self.any_store().max_levels()
    }

    fn key_field(&self, key: &[u8]) -> Result<Fr> {
        self.any_store().key_field(key)
    }

    /// The shard that holds `key` now.
    fn shard_for(&self, key: &Fr) -> (Prefix, Shard<B>) {
        let shards = self.read_shards();
        (0..=MAX_SHARD_BITS)
            .map(|depth| Prefix::of(key, depth))
            .find_map(|p| shards.get(&p).map(|s| (p, s.clone())))
            .expect("the cut covers every key")
    }

    /// The shard for `key` with its gate held shared: the cut cannot move
    /// it until the guard drops.
    async fn writable(&self, key: &Fr) -> (Prefix, Shard<B>, tokio::sync::OwnedRwLockReadGuard<()>) {
        loop {
            let (prefix, shard) = self.shard_for(key);
            let guard = shard.gate.clone().read_owned().await;
            // A split or merge may have replaced the shard while we waited
            // (possibly by a new shard with the same prefix).
            if self.is_current(prefix, &shard) {
                return (prefix, shard, guard);
            }
        }
    }

    /// Whether `shard` is still the one at `prefix`.
    fn is_current(&self, prefix: Prefix, shard: &Shard<B>) -> bool {
        self.read_shards()
            .get(&prefix)
            .is_some_and(|s| Arc::ptr_eq(&s.gate, &shard.gate))
    }

    /// The shard a user key belongs to now.
    pub fn shard_of(&self, key: &[u8]) -> Result<Prefix> {
        Ok(self.shard_for(&self.key_field(key)?).0)
    }

    /// Notes a shard's sub-root, read off a proof of `key` at `version`.
    fn note(&self, prefix: Prefix, generation: u64, version: u64, node: Node) {
        let shards = self.read_shards();
        if shards.get(&prefix).map(|s| s.generation) != Some(generation) {
            return; // from a shard a split or merge retired meanwhile
        }
        let mut sub_roots = self.sub_roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match sub_roots.get(&prefix) {
            Some((g, v, _)) if *g == generation && *v >= version => {}
            _ => {
                sub_roots.insert(prefix, (generation, version, node));
            }
        }
    }

    fn sub_root_of(proof: &Proof, key: &Fr, value: Option<&Fr>, prefix: Prefix) -> Result<Node> {
        sub_root(proof, key, value, prefix.depth).map_err(|e| StoreError::Tree(e.to_string()))
    }

    /// A shard's sub-root at its head, from a probe proof.
    async fn probe(store: &Store<B>, prefix: Prefix) -> Result<(u64, Node)> {
        let probe = prefix.probe();
        let found = store.prove_element(probe).await?;
        let node = Self::sub_root_of(&found.lookup.proof, &probe, found.lookup.value.as_ref(), prefix)?;
        Ok((found.version, node))
    }

    /// The top tree over every shard's sub-root at (at least) the version
    /// its head had when this was called; `pinned` keeps shards at the
    /// versions proofs were made at. `None`: a pinned shard was retired by
    /// a split or merge (its proof belongs to no current cut).
    async fn top(&self, pinned: &[Pinned]) -> Result<Option<(TopTree, GlobalRoot)>> {
        loop {
            let (shards, retired) = {
                let current = self.read_shards();
                let shards: Vec<(Prefix, u64, Store<B>)> = current
                    .iter()
                    .map(|(p, s)| (*p, s.generation, s.store.clone()))
                    .collect();
                (shards, self.retired_versions.load(std::sync::atomic::Ordering::SeqCst))
            };
            if !pinned
                .iter()
                .all(|pin| shards.iter().any(|(p, g, _)| *p == pin.prefix && *g == pin.generation))
            {
                return Ok(None);
            }
            let seen = |prefix: &Prefix, generation: u64| -> Option<(u64, Node)> {
                self.sub_roots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(prefix)
                    .filter(|(g, _, _)| *g == generation)
                    .map(|(_, v, n)| (*v, *n))
            };
            for (prefix, generation, store) in &shards {
                if pinned.iter().any(|pin| pin.prefix == *prefix) {
                    continue;
                }
                let head = store.root().1;
                if seen(prefix, *generation).is_none_or(|(v, _)| v < head) {
                    let (version, node) = Self::probe(store, *prefix).await?;
                    self.note(*prefix, *generation, version, node);
                }
            }
            let mut cut: BTreeMap<Prefix, (u64, Node)> = shards
                .iter()
                .filter_map(|(p, g, _)| seen(p, *g).map(|e| (*p, e)))
                .collect();
            for pin in pinned {
                cut.insert(pin.prefix, (pin.version, pin.node));
            }
            if cut.len() != shards.len() {
                continue; // the cut changed while we looked
            }
            let top = TopTree::from_cut(cut.iter().map(|(p, (_, n))| (*p, *n)))
                .map_err(|e| StoreError::Tree(e.to_string()))?;
            let versions: BTreeMap<Prefix, u64> = cut.into_iter().map(|(p, (v, _))| (p, v)).collect();
            let global = GlobalRoot {
                root: top.root().hash(),
                version: retired + versions.values().sum::<u64>(),
                versions,
            };
            return Ok(Some((top, global)));
        }
    }

    /// The global root now, the cut it is of and the store's version.
    pub async fn global_root(&self) -> Result<GlobalRoot> {
        let (_, global) = self
            .top(&[])
            .await?
            .ok_or_else(|| StoreError::Tree("no pinned shard, no retirement".into()))?;
        Ok(global)
    }

    /// The global root now, and the cut it is of.
    pub async fn root(&self) -> Result<(Fr, BTreeMap<Prefix, u64>)> {
        let global = self.global_root().await?;
        Ok((global.root, global.versions))
    }

    /// Rows of every shard in `[start, end)` in key order, up to `limit`,
    /// each shard at its head.
    pub async fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let scans = self
            .stores()
            .into_iter()
            .map(|store| async move { store.scan(start, end, limit).await });
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = futures::future::try_join_all(scans)
            .await?
            .into_iter()
            .flatten()
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.truncate(limit);
        Ok(rows)
    }

    /// A shard's proof extended to the global root of a cut that holds the
    /// shard at the proof's version.
    async fn globalize(
        &self,
        prefix: Prefix,
        generation: u64,
        version: u64,
        key: Fr,
        value: Option<(Vec<u8>, Fr)>,
        proof: &Proof,
    ) -> Result<Option<ShardedProof>> {
        let element = value.as_ref().map(|(_, v)| *v);
        let node = Self::sub_root_of(proof, &key, element.as_ref(), prefix)?;
        self.note(prefix, generation, version, node);
        let pin = Pinned {
            prefix,
            generation,
            version,
            node,
        };
        let Some((top, global)) = self.top(&[pin]).await? else {
            return Ok(None);
        };
        let extended = top.extend(proof, &key).map_err(|e| StoreError::Tree(e.to_string()))?;
        Ok(Some(ShardedProof {
            value: value.map(|(bytes, _)| bytes),
            proof: extended,
            root: global.root,
            versions: global.versions,
            version: global.version,
            shard: prefix,
        }))
    }

    /// Writes `key = value` in its shard; the proof is against the global root.
    pub async fn write_with_proof(&self, key: &[u8], value: &[u8]) -> Result<ShardedProof> {
        let key_field = self.key_field(key)?;
        let (prefix, shard, guard) = self.writable(&key_field).await;
        let written = shard.store.write_with_proof(key, value).await?;
        drop(guard);
        let value_field = shard.store.value_field(value)?;
        let global = self
            .globalize(
                prefix,
                shard.generation,
                written.version,
                key_field,
                Some((value.to_vec(), value_field)),
                &written.proof,
            )
            .await?;
        match global {
            Some(global) => Ok(global),
            // The shard split or merged right after the write (which was
            // copied along): prove it in the new cut.
            None => self.read(key).await,
        }
    }

    /// Deletes `key` in its shard; the absence proof is against the global
    /// root. Also says whether the key held a value.
    pub async fn delete(&self, key: &[u8]) -> Result<(ShardedProof, bool)> {
        let key_field = self.key_field(key)?;
        let (prefix, shard, guard) = self.writable(&key_field).await;
        let deleted = shard.store.delete(key).await?;
        drop(guard);
        let global = self
            .globalize(
                prefix,
                shard.generation,
                deleted.version,
                key_field,
                None,
                &deleted.proof,
            )
            .await?;
        match global {
            Some(global) => Ok((global, deleted.existed)),
            None => Ok((self.read(key).await?, deleted.existed)),
        }
    }

    /// Writes without building a proof; returns the shard's new version.
    pub async fn write(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        let (_, shard, _guard) = self.writable(&self.key_field(key)?).await;
        shard.store.write(key, value).await
    }

    /// Each shard's part of `ops` as one version of that shard, all shards
    /// at once. Not atomic across shards: a shard that fails leaves the
    /// others committed (the error names it).
    pub async fn write_batch(&self, ops: &[BatchOp]) -> Result<()> {
        self.write_batch_inner(ops, false).await.map(drop)
    }

    /// `write_batch` with one proof per op against one global root: the cut
    /// with each touched shard at the version its part committed as.
    pub async fn write_batch_proven(&self, ops: &[BatchOp]) -> Result<ShardedBatch> {
        self.write_batch_inner(ops, true)
            .await?
            .ok_or_else(|| StoreError::Internal("a proven batch gave no proofs".into()))
    }

    async fn write_batch_inner(&self, ops: &[BatchOp], want_proofs: bool) -> Result<Option<ShardedBatch>> {
        if ops.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        let fields: Vec<Fr> = ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => self.key_field(key),
            })
            .collect::<Result<_>>()?;
        loop {
            // Each shard's ops, with where they sit in `ops`.
            let mut parts: BTreeMap<Prefix, BatchPart<B>> = BTreeMap::new();
            for (i, (op, field)) in ops.iter().zip(&fields).enumerate() {
                let (prefix, shard) = self.shard_for(field);
                let part = parts.entry(prefix).or_insert((shard, Vec::new(), Vec::new()));
                part.1.push(op.clone());
                part.2.push(i);
            }
            // Each gate once, in prefix order, as split and merge take them:
            // no two tasks wait on each other.
            let mut guards = Vec::with_capacity(parts.len());
            for (shard, _, _) in parts.values() {
                guards.push(shard.gate.clone().read_owned().await);
            }
            if !parts
                .iter()
                .all(|(prefix, (shard, _, _))| self.is_current(*prefix, shard))
            {
                continue; // the cut moved while we waited: route again
            }
            let commits = parts
                .values()
                .map(|(shard, part, _)| async move { shard.store.write_batch(part, want_proofs).await });
            let written: Vec<crate::store::BatchResult> = futures::future::join_all(commits)
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            if !want_proofs {
                return Ok(None);
            }
            // The gates are still held: no touched shard can be retired
            // before its proofs are extended.
            let mut pins = Vec::with_capacity(parts.len());
            for ((prefix, (shard, part, _)), result) in parts.iter().zip(&written) {
                // The last op's proof shows that op's own outcome.
                let (op, proof) = part.last().zip(result.proofs.last()).ok_or_else(|| {
                    StoreError::Internal("a shard's part of the batch came back without proofs".into())
                })?;
                let (key, value) = match op {
                    BatchOp::Put { key, value } => (key, Some(shard.store.value_field(value)?)),
                    BatchOp::Delete { key } => (key, None),
                };
                let node = Self::sub_root_of(proof, &self.key_field(key)?, value.as_ref(), *prefix)
                    .map_err(|e| StoreError::Internal(format!("a committed part's sub-root: {e}")))?;
                self.note(*prefix, shard.generation, result.version, node);
                pins.push(Pinned {
                    prefix: *prefix,
                    generation: shard.generation,
                    version: result.version,
                    node,
                });
            }
            let (top, global) = self
                .top(&pins)
                .await?
                .ok_or_else(|| StoreError::Internal("a shard held by this batch was retired".into()))?;
            drop(guards);
            let mut proofs: Vec<Option<Proof>> = vec![None; ops.len()];
            for ((_, (_, _, positions)), result) in parts.iter().zip(&written) {
                for (at, proof) in positions.iter().zip(&result.proofs) {
                    let extended = top
                        .extend(proof, &fields[*at])
                        .map_err(|e| StoreError::Internal(format!("extending a committed op's proof: {e}")))?;
                    proofs[*at] = Some(extended);
                }
            }
            return Ok(Some(ShardedBatch {
                root: global.root,
                version: global.version,
                versions: global.versions,
                proofs: proofs
                    .into_iter()
                    .map(|p| p.expect("every op is in one part"))
                    .collect(),
            }));
        }
    }

    /// The key's value (if any) with a proof against the global root.
    pub async fn read(&self, key: &[u8]) -> Result<ShardedProof> {
        let key_field = self.key_field(key)?;
        loop {
            let (prefix, shard) = self.shard_for(&key_field);
            let read = shard.store.read_proven(key, None).await?;
            let value = match read.value {
                Some(bytes) => {
                    let element = shard.store.value_field(&bytes)?;
                    Some((bytes, element))
                }
                None => None,
            };
            // `None`: the shard was retired by a split or merge meanwhile.
            if let Some(global) = self
                .globalize(prefix, shard.generation, read.version, key_field, value, &read.proof)
                .await?
            {
                return Ok(global);
            }
        }
    }

    /// Copies every live key of `from` into the new stores of `to`.
    async fn copy(&self, from: &[Store<B>], to: &[(Prefix, Store<B>)]) -> Result<()> {
        for store in from {
            let mut start = Vec::new();
            loop {
                let page = store.scan(&start, None, COPY_BATCH).await?;
                let Some((last, _)) = page.last() else { break };
                let mut next = last.clone();
                next.push(0);
                let mut parts: Vec<Vec<BatchOp>> = vec![Vec::new(); to.len()];
                for (key, value) in page.iter() {
                    let field = self.key_field(key)?;
                    let at = to
                        .iter()
                        .position(|(p, _)| p.contains(&field))
                        .ok_or_else(|| StoreError::Corrupt("a key outside the shard being moved".into()))?;
                    parts[at].push(BatchOp::Put {
                        key: key.clone(),
                        value: value.clone(),
                    });
                }
                for ((_, target), part) in to.iter().zip(parts) {
                    if !part.is_empty() {
                        target.write_batch(&part, false).await?;
                    }
                }
                if page.len() < COPY_BATCH {
                    break;
                }
                start = next;
            }
        }
        Ok(())
    }

    /// Replaces the shards `old` by `new` (their keys copied, their
    /// sub-roots checked to join to the same node) while serving.
    async fn reshape(&self, old: &[Prefix], new: &[Prefix], joined_at: Prefix) -> Result<()> {
        self.prepare_reshape(old, new, joined_at).await?.commit()
    }

    /// The first half of a split or merge: holds the writers of `old`,
    /// copies their keys into new stores for `new` and checks that no root
    /// changes. Nothing is swapped until `commit`; dropping it instead
    /// abandons the copy (a cluster publishes the new cut in between).
    pub async fn prepare_reshape(
        &self,
        old: &[Prefix],
        new: &[Prefix],
        joined_at: Prefix,
    ) -> Result<PreparedReshape<'_, B>> {
        let one_at_a_time = self.reshaping.lock().await;
        let retiring: Vec<Shard<B>> = {
            let shards = self.read_shards();
            old.iter()
                .map(|p| {
                    shards
                        .get(p)
                        .cloned()
                        .ok_or_else(|| StoreError::Config(format!("no shard at {p:?}")))
                })
                .collect::<Result<_>>()?
        };
        // Writers of these shards wait from here until the new cut is in.
        let mut guards = Vec::new();
        for shard in &retiring {
            guards.push(shard.gate.clone().write_owned().await);
        }
        let from: Vec<Store<B>> = retiring.iter().map(|s| s.store.clone()).collect();
        // A new generation each attempt: stores left by a failed or
        // interrupted attempt are never reused.
        let (generation, fresh) = loop {
            let generation = self.next_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let fresh: Vec<(Prefix, Store<B>)> = new
                .iter()
                .map(|p| Ok((*p, (self.open_shard)(*p, generation)?)))
                .collect::<Result<_>>()?;
            if fresh.iter().all(|(_, s)| s.root().1 == 0) {
                break (generation, fresh);
            }
            tracing::warn!(
                generation,
                "skipping a shard generation left over from an interrupted reshape"
            );
            for (_, store) in fresh {
                store.shutdown();
            }
        };
        let mut prepared = PreparedReshape {
            sharded: self,
            _one_at_a_time: one_at_a_time,
            old: old.to_vec(),
            retiring,
            guards,
            generation,
            fresh,
            after: Vec::new(),
            retiring_versions: from.iter().map(|s| s.root().1).sum(),
            committed: false,
        };
        self.copy(&from, &prepared.fresh).await?;
        // Durable before the old shards go, whatever the sync mode.
        for (_, store) in &prepared.fresh {
            store.sync().await?;
        }
        // The root must not move: the old shards and the new ones give the
        // same node where they meet.
        let mut before = Vec::new();
        for (store, prefix) in from.iter().zip(old) {
            before.push((*prefix, Self::probe(store, *prefix).await?.1));
        }
        for (prefix, store) in &prepared.fresh {
            prepared.after.push(Self::probe(store, *prefix).await?);
        }
        let old_node = joined_at_subtree(joined_at, before)?;
        let after: Vec<(Prefix, Node)> = new.iter().zip(&prepared.after).map(|(p, (_, n))| (*p, *n)).collect();
        if old_node != joined_at_subtree(joined_at, after)? {
            return Err(StoreError::Corrupt(format!(
                "reshaping {old:?} into {new:?} would change the root"
            )));
        }
        Ok(prepared)
    }

    /// Adopts a cut another node made (a cluster member that split or
    /// merged shards it owns): opens the shards this node lacks, drops the
    /// retired ones. Nothing is copied; the rows are shared. `false` when
    /// the cut is the one already served.
    pub async fn adopt(&self, cut: &[(Prefix, u64)], retired_versions: u64) -> Result<bool> {
        let _one_at_a_time = self.reshaping.lock().await;
        let current: BTreeMap<Prefix, Shard<B>> = self.read_shards().clone();
        let same = cut.len() == current.len()
            && cut
                .iter()
                .all(|(p, g)| current.get(p).is_some_and(|s| s.generation == *g));
        if same {
            self.retired_versions
                .fetch_max(retired_versions, std::sync::atomic::Ordering::SeqCst);
            return Ok(false);
        }
        TopTree::from_cut(cut.iter().map(|(p, _)| (*p, Node::Empty))).map_err(|e| StoreError::Config(e.to_string()))?;
        let mut next = BTreeMap::new();
        for (prefix, generation) in cut {
            let shard = match current.get(prefix) {
                Some(shard) if shard.generation == *generation => shard.clone(),
                _ => Shard {
                    store: (self.open_shard)(*prefix, *generation)?,
                    generation: *generation,
                    gate: Arc::default(),
                },
            };
            next.insert(*prefix, shard);
        }
        let retiring: Vec<(Prefix, Shard<B>)> = current
            .into_iter()
            .filter(|(p, s)| next.get(p).is_none_or(|n| !Arc::ptr_eq(&n.gate, &s.gate)))
            .collect();
        // Writes in flight on the retiring shards finish first.
        let mut guards = Vec::new();
        for (_, shard) in &retiring {
            guards.push(shard.gate.clone().write_owned().await);
        }
        {
            let mut shards = self.shards.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut sub_roots = self.sub_roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (prefix, _) in &retiring {
                sub_roots.remove(prefix);
            }
            *shards = next;
            // Retired versions only grow: a cut is never older than one
            // adopted before (the cluster checks its sequence).
            self.retired_versions
                .fetch_max(retired_versions, std::sync::atomic::Ordering::SeqCst);
            let above = cut.iter().map(|(_, g)| g + 1).max().unwrap_or(1);
            self.next_generation
                .fetch_max(above, std::sync::atomic::Ordering::SeqCst);
        }
        drop(guards);
        self.retire(retiring);
        tracing::info!(?cut, "adopted a new cut");
        Ok(true)
    }

    /// Shuts down shards no longer in the cut and frees what they held.
    fn retire(&self, shards: impl IntoIterator<Item = (Prefix, Shard<B>)>) {
        for (prefix, shard) in shards {
            let generation = shard.generation;
            shard.store.shutdown();
            if let Some(retire) = &self.retire_shard {
                retire(prefix, generation);
            }
        }
    }

    /// The shard prefixes with their generations, in order.
    pub fn cut_with_generations(&self) -> Vec<(Prefix, u64)> {
        self.read_shards().iter().map(|(p, s)| (*p, s.generation)).collect()
    }

    /// Splits the shard at `prefix` into its two halves, without changing
    /// any root. The old shard's store is shut down (its files stay).
    pub async fn split(&self, prefix: Prefix) -> Result<()> {
        if prefix.depth >= MAX_SHARD_BITS {
            return Err(StoreError::Config(format!(
                "shard {prefix:?} is at the deepest cut ({MAX_SHARD_BITS} bits)"
            )));
        }
        self.reshape(&[prefix], &prefix.children(), prefix).await?;
        self.splits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Merges the two halves of `parent` into one shard, without changing
    /// any root.
    pub async fn merge(&self, parent: Prefix) -> Result<()> {
        self.reshape(&parent.children(), &[parent], parent).await?;
        self.merges.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The store's version as of every shard's head (`GlobalRoot::version`
    /// without computing the root).
    pub fn head_version(&self) -> u64 {
        let shards = self.read_shards();
        self.retired_versions.load(std::sync::atomic::Ordering::SeqCst)
            + shards.values().map(|s| s.store.root().1).sum::<u64>()
    }

    /// Splits and merges done since the store was opened.
    pub fn reshapes(&self) -> (u64, u64) {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        (load(&self.splits), load(&self.merges))
    }

    /// Each shard with its store, in prefix order.
    pub fn shards(&self) -> Vec<(Prefix, Store<B>)> {
        self.read_shards().iter().map(|(p, s)| (*p, s.store.clone())).collect()
    }

    /// Shuts every shard down (each flushes and joins its committer when
    /// this holds its last handle).
    pub fn shutdown(self) {
        let shards = self
            .shards
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for shard in shards.into_values() {
            drop(shard.gate);
            shard.store.shutdown();
        }
    }
}

/// A split or merge ready to swap in (`ShardedStore::prepare_reshape`).
/// The writers of the shards it replaces wait until it is committed or
/// dropped.
pub struct PreparedReshape<'a, B: Backend> {
    sharded: &'a ShardedStore<B>,
    _one_at_a_time: tokio::sync::MutexGuard<'a, ()>,
    old: Vec<Prefix>,
    retiring: Vec<Shard<B>>,
    guards: Vec<tokio::sync::OwnedRwLockWriteGuard<()>>,
    generation: u64,
    fresh: Vec<(Prefix, Store<B>)>,
    /// Each fresh shard's version and sub-root.
    after: Vec<(u64, Node)>,
    /// What the retiring shards' versions add to the retired count.
    retiring_versions: u64,
    committed: bool,
}

impl<B: Backend> PreparedReshape<'_, B> {
    /// The new shards, with their keys, not yet served.
    pub fn fresh(&self) -> &[(Prefix, Store<B>)] {
        &self.fresh
    }

    /// The cut once this is committed, with generations.
    pub fn cut_after(&self) -> Vec<(Prefix, u64)> {
        let mut cut: BTreeMap<Prefix, u64> = self.sharded.cut_with_generations().into_iter().collect();
        for prefix in &self.old {
            cut.remove(prefix);
        }
        cut.extend(self.fresh.iter().map(|(p, _)| (*p, self.generation)));
        cut.into_iter().collect()
    }

    /// The retired versions once this is committed.
    pub fn retired_versions_after(&self) -> u64 {
        self.sharded.retired_versions.load(std::sync::atomic::Ordering::SeqCst) + self.retiring_versions
    }

    /// Swaps the new shards in: the cut is written to the layout (if the
    /// store keeps one) first, then served; the retired stores shut down.
    pub fn commit(mut self) -> Result<()> {
        let sharded = self.sharded;
        // Read before the write lock (the cut's reader takes it shared).
        // No other reshape runs meanwhile: this holds `reshaping`.
        let cut_after = self.cut_after();
        let retired = self.retired_versions_after();
        let new: Vec<Prefix> = self.fresh.iter().map(|(p, _)| *p).collect();
        {
            let mut shards = sharded
                .shards
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The new cut is on disk before anyone writes to it. Once the
            // new layout replaced the old one, a restart opens the new
            // shards: from then on only the new cut may take writes.
            if let Some(file) = &sharded.layout_file {
                let layout = Layout {
                    cut: cut_after,
                    retired_versions: retired,
                };
                match write_layout(file, &layout) {
                    Ok(()) => {}
                    Err(LayoutWrite::NotReplaced(error)) => return Err(error),
                    Err(LayoutWrite::NotSynced(error)) => {
                        tracing::error!(%error, "the new shard layout is in place but may not be durable yet");
                    }
                }
            }
            sharded
                .retired_versions
                .store(retired, std::sync::atomic::Ordering::SeqCst);
            let mut sub_roots = sharded
                .sub_roots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for prefix in &self.old {
                shards.remove(prefix);
                sub_roots.remove(prefix);
            }
            for ((prefix, store), (version, node)) in std::mem::take(&mut self.fresh).into_iter().zip(&self.after) {
                shards.insert(
                    prefix,
                    Shard {
                        store,
                        generation: self.generation,
                        gate: Arc::default(),
                    },
                );
                sub_roots.insert(prefix, (self.generation, *version, *node));
            }
        }
        self.committed = true;
        self.guards.clear();
        sharded.retire(self.old.iter().copied().zip(std::mem::take(&mut self.retiring)));
        tracing::info!(old = ?self.old, ?new, "shards reshaped");
        Ok(())
    }
}

impl<B: Backend> std::fmt::Debug for PreparedReshape<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedReshape")
            .field("old", &self.old)
            .field("generation", &self.generation)
            .finish()
    }
}

impl<B: Backend> Drop for PreparedReshape<'_, B> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Abandoned: the new stores go; the old shards serve on.
        for (prefix, store) in std::mem::take(&mut self.fresh) {
            store.shutdown();
            if let Some(retire) = &self.sharded.retire_shard {
                retire(prefix, self.generation);
            }
        }
    }
}

/// What sub-roots of prefixes at or under `at` amount to: the root of a
/// cut that is empty everywhere else. Two sets of shards give the same
/// value exactly when they give the same node at `at`.
fn joined_at_subtree(at: Prefix, nodes: Vec<(Prefix, Node)>) -> Result<Node> {
    let mut cut: BTreeMap<Prefix, Node> = nodes.into_iter().collect();
    let mut prefix = at;
    while let Some(parent) = prefix.parent() {
        let [left, right] = parent.children();
        let sibling = if left == prefix { right } else { left };
        cut.insert(sibling, Node::Empty);
        prefix = parent;
    }
    let top = TopTree::from_cut(cut).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok(top.root())
}
