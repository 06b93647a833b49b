//! Batched updates: every changed node is hashed exactly once, and disjoint
//! subtrees are hashed in parallel with the `parallel` feature.
//!
//! `update` returns the new node for a position and records every change
//! strictly below it; the caller records the position itself. A collapse (a
//! middle node left with one lone leaf) moves the leaf up and records the
//! emptied positions, which is what makes a delete restore exactly the tree
//! that never held the key.

use super::load::LoadedPages;
use super::node::{KeyPath, Leaf, Node, key_path, leaf_hash, middle_hash, path_bit, with_path_bit};
use super::page::{PAGE_LEVELS, Page, PageId, slot};
use super::store::PageStore;
use super::{Op, SparseMerkleTree, TreeError};
use crate::field::Fr;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The result of applying a batch: persist `pages` and `root` together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchUpdate {
    pub root: Node,
    /// Changed pages; `None` removes the page.
    pub pages: Vec<(PageId, Option<Arc<Page>>)>,
    /// Poseidon calls made.
    pub hashes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Fr,
    path: KeyPath,
    value: Option<Fr>,
}

/// A key that will hold a leaf after the batch.
#[derive(Clone, Copy, Debug)]
struct LiveLeaf {
    path: KeyPath,
    leaf: Option<Leaf>,
    key: Fr,
    value: Fr,
}

/// A changed position: its depth, a path through it, its new node.
type ChangedNode = (usize, KeyPath, Node);

/// Where the recursion records changes. One sink is passed down each
/// thread's share of the work, so a change is written once; parallel halves
/// are joined by moving their vectors, not their contents.
#[derive(Debug, Default)]
struct Changes {
    nodes: Vec<ChangedNode>,
    joined: Vec<Vec<ChangedNode>>,
    hashes: u64,
}

impl Changes {
    #[cfg(feature = "parallel")]
    fn merge(&mut self, other: Self) {
        self.joined.push(other.nodes);
        self.joined.extend(other.joined);
        self.hashes += other.hashes;
    }

    fn iter(&self) -> impl Iterator<Item = &ChangedNode> {
        self.joined.iter().flatten().chain(&self.nodes)
    }
}

/// Subtrees with fewer entries than this are hashed on the current thread.
#[cfg(feature = "parallel")]
const PARALLEL_MIN_ENTRIES: usize = 32;

/// Runs both halves, in parallel when each has enough entries to pay for it,
/// recording their changes in `out`.
fn join<A: Send, B: Send>(
    entries: usize,
    out: &mut Changes,
    a: impl FnOnce(&mut Changes) -> A + Send,
    b: impl FnOnce(&mut Changes) -> B + Send,
) -> (A, B) {
    #[cfg(feature = "parallel")]
    if entries >= PARALLEL_MIN_ENTRIES {
        let mut right = Changes::default();
        let results = rayon::join(|| a(out), || b(&mut right));
        out.merge(right);
        return results;
    }
    let _ = entries;
    (a(out), b(out))
}

/// Moves entries whose bit `depth` is 0 to the front; returns their count.
fn partition<T>(items: &mut [T], depth: usize, path: impl Fn(&T) -> &KeyPath) -> usize {
    let mut split = 0;
    for i in 0..items.len() {
        if !path_bit(path(&items[i]), depth) {
            items.swap(i, split);
            split += 1;
        }
    }
    split
}

struct Context<'a> {
    loaded: &'a LoadedPages,
    /// Deepest depth a leaf may take: `max_levels - 1`.
    leaf_depth_max: usize,
}

/// The new node, or the `max_levels` a leaf would have to pass.
type UpdateResult = Result<Node, u16>;

impl Context<'_> {
    fn update(
        &self,
        depth: usize,
        path: &KeyPath,
        node: Node,
        entries: &mut [Entry],
        out: &mut Changes,
    ) -> UpdateResult {
        match node {
            Node::Middle(_) => self.update_middle(depth, path, entries, out),
            Node::Empty => self.rebuild(depth, None, entries, out),
            Node::Leaf(leaf) => self.rebuild(depth, Some(leaf), entries, out),
        }
    }

    fn update_middle(&self, depth: usize, path: &KeyPath, entries: &mut [Entry], out: &mut Changes) -> UpdateResult {
        let split = partition(entries, depth, |e| &e.path);
        let (left_entries, right_entries) = entries.split_at_mut(split);
        let left_path = with_path_bit(path, depth, false);
        let right_path = with_path_bit(path, depth, true);
        let [old_left, old_right] = self.loaded.children(depth, path);
        let (left, right) = join(
            left_entries.len().min(right_entries.len()),
            out,
            |out| self.update_side(depth + 1, &left_path, old_left, left_entries, out),
            |out| self.update_side(depth + 1, &right_path, old_right, right_entries, out),
        );
        let (new_left, new_right) = (left?, right?);

        let node = match (new_left, new_right) {
            (Node::Empty, Node::Empty) => Node::Empty,
            (Node::Leaf(leaf), Node::Empty) | (Node::Empty, Node::Leaf(leaf)) => Node::Leaf(leaf),
            (l, r) => {
                out.hashes += 1;
                Node::Middle(middle_hash(l.hash(), r.hash()))
            }
        };
        let sides = [
            (left_path, old_left, new_left, !left_entries.is_empty()),
            (right_path, old_right, new_right, !right_entries.is_empty()),
        ];
        for (side_path, old, new, touched) in sides {
            if matches!(node, Node::Middle(_)) {
                if touched && old != new {
                    out.nodes.push((depth + 1, side_path, new));
                }
            } else if !old.is_empty() {
                out.nodes.push((depth + 1, side_path, Node::Empty));
            }
        }
        Ok(node)
    }

    fn update_side(
        &self,
        depth: usize,
        path: &KeyPath,
        old: Node,
        entries: &mut [Entry],
        out: &mut Changes,
    ) -> UpdateResult {
        if entries.is_empty() {
            Ok(old)
        } else {
            self.update(depth, path, old, entries, out)
        }
    }

    /// Rebuilds a subtree that holds at most one leaf today.
    fn rebuild(&self, depth: usize, existing: Option<Leaf>, entries: &[Entry], out: &mut Changes) -> UpdateResult {
        let mut live: Vec<LiveLeaf> = Vec::with_capacity(entries.len() + 1);
        if let Some(leaf) = existing
            && !entries.iter().any(|e| e.key == leaf.key)
        {
            live.push(LiveLeaf {
                path: key_path(&leaf.key),
                leaf: Some(leaf),
                key: leaf.key,
                value: leaf.value,
            });
        }
        for entry in entries {
            if let Some(value) = entry.value {
                let unchanged = existing.filter(|leaf| leaf.key == entry.key && leaf.value == value);
                live.push(LiveLeaf {
                    path: entry.path,
                    leaf: unchanged,
                    key: entry.key,
                    value,
                });
            }
        }
        self.build(depth, &mut live, out)
    }

    fn build(&self, depth: usize, live: &mut [LiveLeaf], out: &mut Changes) -> UpdateResult {
        match live {
            [] => Ok(Node::Empty),
            [one] => {
                let leaf = one.leaf.unwrap_or_else(|| {
                    out.hashes += 1;
                    Leaf {
                        key: one.key,
                        value: one.value,
                        hash: leaf_hash(one.key, one.value),
                    }
                });
                Ok(Node::Leaf(leaf))
            }
            _ => {
                if depth + 1 > self.leaf_depth_max {
                    return Err((self.leaf_depth_max + 1) as u16);
                }
                let split = partition(live, depth, |l| &l.path);
                let (left_live, right_live) = live.split_at_mut(split);
                let (left, right) = join(
                    left_live.len().min(right_live.len()),
                    out,
                    |out| self.build(depth + 1, left_live, out),
                    |out| self.build(depth + 1, right_live, out),
                );
                let (left, right) = (left?, right?);
                let path = live[0].path;
                for (bit, child) in [(false, left), (true, right)] {
                    if !child.is_empty() {
                        out.nodes.push((depth + 1, with_path_bit(&path, depth, bit), child));
                    }
                }
                out.hashes += 1;
                Ok(Node::Middle(middle_hash(left.hash(), right.hash())))
            }
        }
    }
}

impl SparseMerkleTree {
    /// Applies puts and deletes as one batch (a later op on the same key wins;
    /// deleting an absent key does nothing). The result equals applying the
    /// ops one by one, in any order of distinct keys.
    pub fn apply<S: PageStore>(&self, store: &S, ops: &[Op]) -> Result<BatchUpdate, TreeError<S::Error>> {
        let mut entries: Vec<Entry> = ops
            .iter()
            .map(|op| Entry {
                key: op.key,
                path: key_path(&op.key),
                value: op.value,
            })
            .collect();
        // Stable sort, then keep the last op of each key.
        entries.sort_by_key(|e| e.path);
        let mut deduped: Vec<Entry> = Vec::with_capacity(entries.len());
        for entry in entries {
            match deduped.last_mut() {
                Some(last) if last.path == entry.path => *last = entry,
                _ => deduped.push(entry),
            }
        }
        if deduped.is_empty() {
            return Ok(BatchUpdate {
                root: self.root_node(),
                pages: Vec::new(),
                hashes: 0,
            });
        }
        let paths: Vec<KeyPath> = deduped.iter().map(|e| e.path).collect();
        let loaded = LoadedPages::load(store, &self.root_node(), &paths)?;
        let context = Context {
            loaded: &loaded,
            leaf_depth_max: usize::from(self.max_levels()) - 1,
        };
        let first = deduped[0].path;
        let mut changes = Changes::default();
        let root = context
            .update(0, &first, self.root_node(), &mut deduped, &mut changes)
            .map_err(|max_levels| TreeError::MaxLevelsReached { max_levels })?;
        let hashes = changes.hashes;
        Ok(BatchUpdate {
            root,
            pages: collect_pages(&loaded, &changes),
            hashes,
        })
    }
}

/// A page being rewritten: the loaded page (or a fresh one) and what the
/// batch did to it.
struct DirtyPage {
    id: PageId,
    page: Arc<Page>,
    stored: bool,
    changed: bool,
}

/// Writes the changed nodes into their pages, sorted by page id.
///
/// With the `parallel` feature the nodes are split by the first
/// [`PAGE_LEVELS`] bits of their path: every page below the top one belongs
/// to exactly one such group, so the groups are written on all cores.
fn collect_pages(loaded: &LoadedPages, changes: &Changes) -> Vec<(PageId, Option<Arc<Page>>)> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        let mut groups: Vec<Vec<&ChangedNode>> = (0..=1 << PAGE_LEVELS).map(|_| Vec::new()).collect();
        for change in changes.iter() {
            let (depth, path, _) = change;
            let group = if *depth <= PAGE_LEVELS {
                0
            } else {
                1 + (path.0[0] as usize & ((1 << PAGE_LEVELS) - 1))
            };
            groups[group].push(change);
        }
        let mut pages: Vec<_> = groups
            .into_par_iter()
            .flat_map_iter(|group| write_pages(loaded, group.into_iter()))
            .collect();
        pages.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        pages
    }
    #[cfg(not(feature = "parallel"))]
    write_pages(loaded, changes.iter())
}

/// Writes the changed nodes into their pages, sorted by page id. A loaded
/// page is copied only when one of its slots gets a different node; a page
/// counts as changed exactly then, because the update records each position
/// at most once.
///
/// The update records nodes depth first, so consecutive nodes of one page
/// level almost always fall in the same page: each level keeps the page it
/// is writing at hand, and the map is touched only when that page changes.
fn write_pages<'a>(
    loaded: &LoadedPages,
    nodes: impl Iterator<Item = &'a ChangedNode>,
) -> Vec<(PageId, Option<Arc<Page>>)> {
    let mut set_aside: BTreeMap<PageId, DirtyPage> = BTreeMap::new();
    let mut at_hand: Vec<Option<DirtyPage>> = Vec::new();
    for &(depth, ref path, node) in nodes {
        let id = PageId::containing(depth, path);
        let level = id.depth() / PAGE_LEVELS;
        if at_hand.len() <= level {
            at_hand.resize_with(level + 1, || None);
        }
        let hand = &mut at_hand[level];
        let dirty = match hand.take() {
            Some(dirty) if dirty.id == id => hand.insert(dirty),
            previous => {
                if let Some(previous) = previous {
                    set_aside.insert(previous.id, previous);
                }
                hand.insert(set_aside.remove(&id).unwrap_or_else(|| {
                    let stored = loaded.pages.get(&id).cloned();
                    DirtyPage {
                        id,
                        stored: stored.is_some(),
                        page: stored.unwrap_or_default(),
                        changed: false,
                    }
                }))
            }
        };
        let slot = slot(depth, path);
        if dirty.page.node(slot) != node {
            Arc::make_mut(&mut dirty.page).set(slot, node);
            dirty.changed = true;
        }
    }
    set_aside.extend(at_hand.into_iter().flatten().map(|dirty| (dirty.id, dirty)));
    let mut pages = Vec::with_capacity(set_aside.len());
    for (id, dirty) in set_aside {
        if !dirty.changed {
            continue;
        }
        if !dirty.page.is_empty() {
            pages.push((id, Some(dirty.page)));
        } else if dirty.stored {
            pages.push((id, None));
        }
    }
    pages
}
