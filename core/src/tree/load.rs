//! Fetches the pages that a set of key paths runs through, one batched store
//! call per page level.

use super::node::{KeyPath, Node, with_path_bit};
use super::page::{PAGE_LEVELS, Page, PageId, slot};
use super::store::PageStore;
use super::{MAX_LEVELS_LIMIT, TreeError};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Pages read for one operation; an absent page is an all-empty page.
///
/// Shared with the store that handed them out (a page is about 3 KiB, and a
/// batch reads tens of thousands): a batch copies only the pages it changes.
#[derive(Debug, Default)]
pub(crate) struct LoadedPages {
    pub(crate) pages: BTreeMap<PageId, Arc<Page>>,
}

impl LoadedPages {
    /// The node at `depth` on `path`, given the root node.
    pub(crate) fn node(&self, root: &Node, depth: usize, path: &KeyPath) -> Node {
        if depth == 0 {
            return *root;
        }
        self.pages
            .get(&PageId::containing(depth, path))
            .map_or(Node::Empty, |page| page.node(slot(depth, path)))
    }

    /// The two children of the middle node at `depth` on `path`: they share
    /// one page, so this is one lookup.
    pub(crate) fn children(&self, depth: usize, path: &KeyPath) -> [Node; 2] {
        let left = with_path_bit(path, depth, false);
        let right = with_path_bit(path, depth, true);
        match self.pages.get(&PageId::containing(depth + 1, path)) {
            Some(page) => [page.node(slot(depth + 1, &left)), page.node(slot(depth + 1, &right))],
            None => [Node::Empty; 2],
        }
    }

    /// Loads every page on the way from the root to where each path ends (a
    /// leaf or an empty slot).
    ///
    /// Each path is walked slot by slot inside a page it already has, so a
    /// path costs one map lookup per page, not one per level.
    pub(crate) fn load<S: PageStore>(store: &S, root: &Node, paths: &[KeyPath]) -> Result<Self, TreeError<S::Error>> {
        let mut loaded = Self::default();
        if !matches!(root, Node::Middle(_)) {
            return Ok(loaded);
        }
        // Paths whose node at this depth is a middle node whose children's
        // page is not loaded yet.
        let mut pending: Vec<(KeyPath, usize)> = paths.iter().map(|p| (*p, 0)).collect();
        while !pending.is_empty() {
            let mut wanted = BTreeSet::new();
            let mut blocked = Vec::new();
            for (path, depth) in pending {
                if let Some((depth, page)) = loaded.descend(&path, depth)? {
                    wanted.insert(page);
                    blocked.push((path, depth));
                }
            }
            if wanted.is_empty() {
                break;
            }
            let ids: Vec<PageId> = wanted.into_iter().collect();
            let pages = store.pages(&ids).map_err(TreeError::Store)?;
            if pages.len() != ids.len() {
                return Err(TreeError::MissingPage {
                    depth: ids[pages.len().min(ids.len() - 1)].depth() as u16,
                });
            }
            for (id, page) in ids.into_iter().zip(pages) {
                // A middle node above this page needs a non-empty child in it.
                let page = page.ok_or(TreeError::MissingPage {
                    depth: id.depth() as u16,
                })?;
                loaded.pages.insert(id, page);
            }
            pending = blocked;
        }
        Ok(loaded)
    }

    /// Follows `path` down from the middle node at `depth` through the pages
    /// already loaded. Returns the depth of the last middle node reached and
    /// the page its children need, or `None` where the path ends.
    fn descend<E>(&self, path: &KeyPath, mut depth: usize) -> Result<Option<(usize, PageId)>, TreeError<E>> {
        loop {
            if depth + 1 >= usize::from(MAX_LEVELS_LIMIT) {
                return Err(TreeError::CorruptPath);
            }
            let id = PageId::containing(depth + 1, path);
            let Some(page) = self.pages.get(&id) else {
                return Ok(Some((depth, id)));
            };
            let bottom = id.depth() + PAGE_LEVELS;
            loop {
                depth += 1;
                if !matches!(page.node(slot(depth, path)), Node::Middle(_)) {
                    return Ok(None);
                }
                if depth == bottom {
                    break;
                }
                if depth + 1 >= usize::from(MAX_LEVELS_LIMIT) {
                    return Err(TreeError::CorruptPath);
                }
            }
        }
    }
}
