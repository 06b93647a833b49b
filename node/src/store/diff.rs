//! Merkle diff: what one tree must change to become another, found by
//! walking both from the root and descending only where their hashes
//! differ, so only the other tree's pages on differing paths are fetched.
//!
//! A replica that missed more than its primary's feed resyncs this way
//! (`replica`): the primary's differing leaves become puts (their key bytes
//! and values fetched by leaf key), the replica's leaves the primary lacks
//! become deletes, one local batch applies them, and the root is compared.
//!
//! The walk goes level by level; each level's missing pages are fetched in
//! one call per side. A leaf meeting a subtree is pushed down its own path
//! (an iden3 leaf hashes the same at any depth), so both sides always
//! compare nodes at the same position.

use crate::store::error::{Result, StoreError};
use crate::store::pages::VersionedPages;
use crate::store::{Store, backend::Backend};
use rustorium_core::Fr;
use rustorium_core::tree::page::slot;
use rustorium_core::tree::{KeyPath, Node, Page, PageId, key_path, with_path_bit};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

/// Page ids asked for in one call at most.
pub const MAX_PAGES_PER_CALL: usize = 4096;
/// Leaf keys asked about in one call at most.
pub const MAX_ENTRIES_PER_CALL: usize = 4096;

/// Pages of one tree at one version.
pub trait PageSource {
    fn pages(&self, ids: Vec<PageId>) -> impl Future<Output = Result<Vec<Option<Arc<Page>>>>> + Send;
}

/// What the walk found: the leaves `to` has that `from` lacks or holds
/// with another value (key -> value element), and the keys only `from` has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeDiff {
    pub puts: BTreeMap<[u8; 32], Fr>,
    pub deletes: BTreeSet<[u8; 32]>,
    /// Pages of `to` fetched (each once).
    pub pages_fetched: u64,
    /// Pages of `from` read.
    pub pages_read: u64,
}

fn key_bytes(key: &Fr) -> [u8; 32] {
    rustorium_core::field::fr_to_le_bytes(key)
}

/// One side's view: the pages fetched so far.
struct Side<'a, S: PageSource> {
    source: &'a S,
    pages: HashMap<PageId, Option<Arc<Page>>>,
    fetched: u64,
}

impl<S: PageSource> Side<'_, S> {
    /// Fetches the pages holding the children of every middle node among
    /// `parents`, in calls of at most `MAX_PAGES_PER_CALL`.
    async fn load(&mut self, parents: impl Iterator<Item = (usize, KeyPath)>) -> Result<()> {
        let wanted: BTreeSet<PageId> = parents
            .map(|(depth, path)| PageId::containing(depth + 1, &path))
            .filter(|id| !self.pages.contains_key(id))
            .collect();
        let wanted: Vec<PageId> = wanted.into_iter().collect();
        for chunk in wanted.chunks(MAX_PAGES_PER_CALL) {
            let pages = self.source.pages(chunk.to_vec()).await?;
            if pages.len() != chunk.len() {
                return Err(StoreError::Corrupt(
                    "a page source answered the wrong number of pages".into(),
                ));
            }
            self.fetched += pages.iter().filter(|p| p.is_some()).count() as u64;
            self.pages.extend(chunk.iter().copied().zip(pages));
        }
        Ok(())
    }

    /// The children of `node` at (`depth`, `path`), left then right.
    fn children(&self, node: Node, depth: usize, path: &KeyPath) -> Result<[(KeyPath, Node); 2]> {
        let left = with_path_bit(path, depth, false);
        let right = with_path_bit(path, depth, true);
        Ok(match node {
            Node::Empty => [(left, Node::Empty), (right, Node::Empty)],
            // Pushed down its own path: the same hash one level lower.
            Node::Leaf(leaf) => {
                if rustorium_core::tree::node::path_bit(&key_path(&leaf.key), depth) {
                    [(left, Node::Empty), (right, node)]
                } else {
                    [(left, node), (right, Node::Empty)]
                }
            }
            Node::Middle(hash) => {
                let id = PageId::containing(depth + 1, path);
                let page = self.pages.get(&id).and_then(Option::as_ref).ok_or_else(|| {
                    StoreError::Corrupt(format!("the page under middle node {hash} at depth {depth} is missing"))
                })?;
                let child = |p: KeyPath| (p, page.node(slot(depth + 1, &p)));
                [child(left), child(right)]
            }
        })
    }
}

/// Walks `from` (rooted at `from_root`) and `to` (rooted at `to_root`) and
/// returns what `from` must change to equal `to`.
pub async fn diff_trees<F: PageSource, T: PageSource>(
    from: &F,
    from_root: Node,
    to: &T,
    to_root: Node,
    max_levels: u16,
) -> Result<TreeDiff> {
    let mut from_side = Side {
        source: from,
        pages: HashMap::new(),
        fetched: 0,
    };
    let mut to_side = Side {
        source: to,
        pages: HashMap::new(),
        fetched: 0,
    };
    let mut diff = TreeDiff::default();
    let mut frontier = vec![(0usize, KeyPath::default(), from_root, to_root)];
    while !frontier.is_empty() {
        frontier.retain(|(_, _, a, b)| a.hash() != b.hash());
        let middles = |pick: fn(&(usize, KeyPath, Node, Node)) -> Node| {
            frontier
                .iter()
                .filter(move |e| matches!(pick(e), Node::Middle(_)))
                .map(|(d, p, _, _)| (*d, *p))
                .collect::<Vec<_>>()
        };
        from_side.load(middles(|e| e.2).into_iter()).await?;
        to_side.load(middles(|e| e.3).into_iter()).await?;
        let mut next = Vec::new();
        for (depth, path, mine, theirs) in frontier {
            let both_leaves = !matches!(mine, Node::Middle(_)) && !matches!(theirs, Node::Middle(_));
            if both_leaves {
                if let Node::Leaf(leaf) = theirs {
                    diff.puts.insert(key_bytes(&leaf.key), leaf.value);
                }
                if let Node::Leaf(leaf) = mine {
                    diff.deletes.insert(key_bytes(&leaf.key));
                }
                continue;
            }
            if depth + 1 >= usize::from(max_levels) {
                return Err(StoreError::Corrupt(format!(
                    "trees differ below max_levels at depth {depth}"
                )));
            }
            let [mine_left, mine_right] = from_side.children(mine, depth, &path)?;
            let [theirs_left, theirs_right] = to_side.children(theirs, depth, &path)?;
            next.push((depth + 1, mine_left.0, mine_left.1, theirs_left.1));
            next.push((depth + 1, mine_right.0, mine_right.1, theirs_right.1));
        }
        frontier = next;
    }
    // A key whose value changed is a put, not a delete.
    diff.deletes.retain(|key| !diff.puts.contains_key(key));
    diff.pages_fetched = to_side.fetched;
    diff.pages_read = from_side.fetched;
    Ok(diff)
}

/// A store's pages at one retained version.
#[derive(Debug)]
pub struct StorePages<'a, B: Backend> {
    pub store: &'a Store<B>,
    pub version: u64,
}

impl<B: Backend> PageSource for StorePages<'_, B> {
    async fn pages(&self, ids: Vec<PageId>) -> Result<Vec<Option<Arc<Page>>>> {
        self.store.pages_at(self.version, ids).await
    }
}

impl<B: Backend> Store<B> {
    fn check_retained(&self, version: u64) -> Result<()> {
        let latest = self.root().1;
        let oldest = self.oldest_version();
        if version < oldest || version > latest {
            return Err(StoreError::VersionNotRetained {
                requested: version,
                oldest,
                latest,
            });
        }
        Ok(())
    }

    /// The pages `ids` of the tree at a retained `version` (`None`: no such
    /// page), read in one batched backend call.
    pub async fn pages_at(&self, version: u64, ids: Vec<PageId>) -> Result<Vec<Option<Arc<Page>>>> {
        self.check_retained(version)?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let (_, reader) = shared.snapshot()?;
            let view = VersionedPages::new(&reader, version, &shared.cache, &shared.codec);
            Ok(view.load_many(&ids)?.into_iter().map(|(_, page)| page).collect())
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// The tree node at the root of a retained `version`.
    pub async fn root_node_at(&self, version: u64) -> Result<Node> {
        self.check_retained(version)?;
        let record = self
            .roots(version..=version, 1)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt(format!("no root record for version {version}")))?;
        Ok(record.root)
    }

    /// The entries (key bytes, value) at a retained `version` whose leaf
    /// keys are among `leaf_keys` (32-byte little-endian field elements),
    /// in key order, until they hold about `max_bytes` (at least one).
    /// Finding them hashes keys (bytes mode) in a streamed pass over the
    /// store that stops once every leaf key is found.
    pub async fn entries_at(
        &self,
        version: u64,
        leaf_keys: BTreeSet<[u8; 32]>,
        max_bytes: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        /// Rows read and hashed per step.
        const STEP: usize = 4096;
        self.check_retained(version)?;
        let mut wanted = leaf_keys;
        let mut found = Vec::new();
        let mut bytes = 0;
        let mut start = Vec::new();
        while !wanted.is_empty() && (found.is_empty() || bytes < max_bytes) {
            let (shared, from) = (self.shared.clone(), start.clone());
            let rows = tokio::task::spawn_blocking(move || {
                super::scan_blocking(&shared, super::keys::escape_key(&from), None, STEP, Some(version))
            })
            .await
            .map_err(|_| StoreError::Closed)??;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            let full_step = rows.len() == STEP;
            let store = self.clone();
            let keyed = tokio::task::spawn_blocking(move || {
                use rayon::prelude::*;
                rows.into_par_iter()
                    .map(|(key, value)| Ok((key_bytes(&store.key_field(&key)?), key, value)))
                    .collect::<Result<Vec<_>>>()
            })
            .await
            .map_err(|_| StoreError::Closed)??;
            for (leaf, key, value) in keyed {
                if wanted.remove(&leaf) {
                    bytes += key.len() + value.len();
                    found.push((key, value));
                    if bytes >= max_bytes {
                        break;
                    }
                }
            }
            if !full_step {
                break;
            }
        }
        Ok(found)
    }

    /// The head's version and root node, read together.
    pub fn head_root(&self) -> (u64, Node) {
        let head = self.shared.head();
        (head.version, head.tree.root_node())
    }
}
