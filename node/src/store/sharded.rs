//! A tree cut into `2^bits` shards by key-path prefix, each an ordinary
//! `Store` with its own committer, so writes to different shards commit in
//! parallel (on every core, and on different backends or nodes). Core's
//! shard rules (`rustorium_core::tree::shard`) put the pieces back
//! together: the global root is exactly the unsharded tree's root, and each
//! shard proof extends to a proof against it.
//!
//! A global root is the root of one cut: every shard at some committed
//! version (`versions`). Batches are atomic within a shard, not across
//! shards; each shard's part of a batch is one version of that shard.

use crate::store::backend::Backend;
use crate::store::backend::any::AnyBackend;
use crate::store::error::{Result, StoreError};
use crate::store::{BatchOp, StorageConfig, Store};
use rustorium_core::Fr;
use rustorium_core::proof::Proof;
use rustorium_core::tree::Node;
use rustorium_core::tree::shard::{MAX_SHARD_BITS, TopTree, shard_of, shard_probe, sub_root};
use std::sync::Mutex;

/// A proof against a global root, with the cut it belongs to.
#[derive(Clone, Debug)]
pub struct ShardedProof {
    pub value: Option<Vec<u8>>,
    pub proof: Proof,
    pub root: Fr,
    /// Each shard's version in the cut the root is of.
    pub versions: Vec<u64>,
    pub shard: usize,
}

/// Shards of one tree.
#[derive(Debug)]
pub struct ShardedStore<B: Backend = AnyBackend> {
    bits: u8,
    shards: Vec<Store<B>>,
    /// Each shard's sub-root at the version it was last seen at.
    sub_roots: Mutex<Vec<(u64, Node)>>,
}

impl ShardedStore<AnyBackend> {
    /// Opens `2^bits` shards: Redb files under `path/shard-NNN`, or TiKV
    /// namespaces `namespace/shard-NNN` (hybrid: both).
    pub fn open(config: &StorageConfig, bits: u8) -> Result<Self> {
        Self::check_bits(bits)?;
        let shards = (0..1usize << bits)
            .map(|i| {
                let mut shard = config.clone();
                shard.path = config.path.join(format!("shard-{i:03}"));
                shard.tikv.namespace = format!("{}/shard-{i:03}", config.tikv.namespace);
                Store::open(shard)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_shards(shards, bits)
    }
}

impl<B: Backend> ShardedStore<B> {
    fn check_bits(bits: u8) -> Result<()> {
        if bits > MAX_SHARD_BITS {
            return Err(StoreError::Config(format!(
                "{bits} shard bits: at most {MAX_SHARD_BITS} (256 shards)"
            )));
        }
        Ok(())
    }

    /// Puts opened shard stores together; shard `i` must hold only keys of
    /// prefix `i` (which holds when it is only ever written through here).
    pub fn from_shards(shards: Vec<Store<B>>, bits: u8) -> Result<Self> {
        Self::check_bits(bits)?;
        if shards.len() != 1 << bits {
            return Err(StoreError::Config(format!(
                "{} shard stores for {bits} shard bits ({} expected)",
                shards.len(),
                1usize << bits
            )));
        }
        let first = shards[0].config();
        if shards
            .iter()
            .any(|s| s.config().key_mode != first.key_mode || s.max_levels() != first.max_levels)
        {
            return Err(StoreError::Config(
                "every shard needs the same key_mode and max_levels".into(),
            ));
        }
        let count = shards.len();
        Ok(Self {
            bits,
            shards,
            sub_roots: Mutex::new(vec![(u64::MAX, Node::Empty); count]),
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shards(&self) -> &[Store<B>] {
        &self.shards
    }

    pub fn max_levels(&self) -> u16 {
        self.shards[0].max_levels()
    }

    /// The shard a user key belongs to.
    pub fn shard_of(&self, key: &[u8]) -> Result<usize> {
        Ok(shard_of(&self.shards[0].key_field(key)?, self.bits))
    }

    /// Notes a shard's sub-root, read off a proof of `key` at `version`.
    fn note(&self, shard: usize, version: u64, proof: &Proof, key: &Fr, value: Option<&Fr>) -> Result<()> {
        let node = sub_root(proof, key, value, self.bits).map_err(|e| StoreError::Tree(e.to_string()))?;
        let mut sub_roots = self.sub_roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = &mut sub_roots[shard];
        if entry.0 == u64::MAX || version > entry.0 {
            *entry = (version, node);
        }
        Ok(())
    }

    /// The top tree over every shard's sub-root at (at least) the version
    /// its head had when this was called; `pinned` keeps one shard at the
    /// version a proof was made at.
    async fn top(&self, pinned: Option<(usize, u64, Node)>) -> Result<(TopTree, Vec<u64>)> {
        for (i, shard) in self.shards.iter().enumerate() {
            if pinned.is_some_and(|(p, _, _)| p == i) {
                continue;
            }
            let head = shard.root().1;
            let seen = self.sub_roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i].0;
            if seen == u64::MAX || seen < head {
                let probe = shard_probe(i, self.bits);
                let found = shard.prove_element(probe).await?;
                self.note(
                    i,
                    found.version,
                    &found.lookup.proof,
                    &probe,
                    found.lookup.value.as_ref(),
                )?;
            }
        }
        let mut cut = self
            .sub_roots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((p, version, node)) = pinned {
            cut[p] = (version, node);
        }
        let nodes: Vec<Node> = cut.iter().map(|(_, n)| *n).collect();
        let top = TopTree::combine(self.bits, &nodes).map_err(|e| StoreError::Tree(e.to_string()))?;
        Ok((top, cut.into_iter().map(|(v, _)| v).collect()))
    }

    /// The global root now, and the cut it is of.
    pub async fn root(&self) -> Result<(Fr, Vec<u64>)> {
        let (top, versions) = self.top(None).await?;
        Ok((top.root().hash(), versions))
    }

    /// A shard's proof extended to the global root of a cut that holds the
    /// shard at the proof's version.
    async fn globalize(
        &self,
        shard: usize,
        version: u64,
        key: Fr,
        value: Option<(Vec<u8>, Fr)>,
        proof: &Proof,
    ) -> Result<ShardedProof> {
        let element = value.as_ref().map(|(_, v)| *v);
        let node = sub_root(proof, &key, element.as_ref(), self.bits).map_err(|e| StoreError::Tree(e.to_string()))?;
        self.note(shard, version, proof, &key, element.as_ref())?;
        let (top, versions) = self.top(Some((shard, version, node))).await?;
        let global = top.extend(proof, &key).map_err(|e| StoreError::Tree(e.to_string()))?;
        Ok(ShardedProof {
            value: value.map(|(bytes, _)| bytes),
            proof: global,
            root: top.root().hash(),
            versions,
            shard,
        })
    }

    /// Writes `key = value` in its shard; the proof is against the global root.
    pub async fn write_with_proof(&self, key: &[u8], value: &[u8]) -> Result<ShardedProof> {
        let shard = self.shard_of(key)?;
        let store = &self.shards[shard];
        let written = store.write_with_proof(key, value).await?;
        let key_field = store.key_field(key)?;
        let value_field = store.value_field(value)?;
        self.globalize(
            shard,
            written.version,
            key_field,
            Some((value.to_vec(), value_field)),
            &written.proof,
        )
        .await
    }

    /// Writes without building a proof; returns the shard's new version.
    pub async fn write(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.shards[self.shard_of(key)?].write(key, value).await
    }

    /// Each shard's part of `ops` as one version of that shard, all shards
    /// at once. Not atomic across shards: a shard that fails leaves the
    /// others committed (the error names it).
    pub async fn write_batch(&self, ops: &[BatchOp]) -> Result<Vec<u64>> {
        let mut parts: Vec<Vec<BatchOp>> = vec![Vec::new(); self.shards.len()];
        for op in ops {
            let key = match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
            };
            parts[self.shard_of(key)?].push(op.clone());
        }
        let commits = parts.iter().zip(&self.shards).map(|(part, store)| async move {
            if part.is_empty() {
                Ok(store.root().1)
            } else {
                store.write_batch(part, false).await.map(|r| r.version)
            }
        });
        futures::future::join_all(commits).await.into_iter().collect()
    }

    /// The key's value (if any) with a proof against the global root.
    pub async fn read(&self, key: &[u8]) -> Result<ShardedProof> {
        let shard = self.shard_of(key)?;
        let store = &self.shards[shard];
        let read = store.read_proven(key, None).await?;
        let key_field = store.key_field(key)?;
        let value = match read.value {
            Some(bytes) => {
                let element = store.value_field(&bytes)?;
                Some((bytes, element))
            }
            None => None,
        };
        self.globalize(shard, read.version, key_field, value, &read.proof).await
    }

    pub fn shutdown(self) {
        for shard in self.shards {
            shard.shutdown();
        }
    }
}
