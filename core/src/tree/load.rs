//! Fetches the pages that a set of key paths runs through, one batched store
//! call per page level.

use super::node::{KeyPath, Node, with_path_bit};
use super::page::{PAGE_LEVELS, Page, PageId, slot};
use super::store::PageStore;
use super::{MAX_LEVELS_LIMIT, TreeError};
use alloc::collections::BTreeMap;
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
    /// leaf or an empty slot), one store call per page level.
    ///
    /// Paths are walked in tree order, so the paths that wait for one page
    /// are neighbours: a round's wanted pages are deduplicated by comparing
    /// with the previous one, and each path then walks the page fetched for
    /// it without a map lookup.
    pub(crate) fn load<S: PageStore>(store: &S, root: &Node, paths: &[KeyPath]) -> Result<Self, TreeError<S::Error>> {
        let mut loaded = Self::default();
        if !matches!(root, Node::Middle(_)) {
            return Ok(loaded);
        }
        let mut waiting: Vec<(KeyPath, usize)> = paths.iter().map(|p| (*p, 0)).collect();
        waiting.sort_unstable_by_key(|(path, _)| tree_order(path));
        // Each waiting path ends at a middle node at `depth` whose children's
        // page is not loaded yet.
        while !waiting.is_empty() {
            let mut ids: Vec<PageId> = Vec::new();
            let mut page_of = Vec::with_capacity(waiting.len());
            // `walk_page` checked that each middle node it stopped at can
            // have children, and the root at depth 0 always can.
            for (path, depth) in &waiting {
                let id = PageId::containing(depth + 1, path);
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
                page_of.push(ids.len() - 1);
            }
            let pages = store.pages(&ids).map_err(TreeError::Store)?;
            if pages.len() != ids.len() {
                return Err(TreeError::MissingPage {
                    depth: ids[pages.len().min(ids.len() - 1)].depth() as u16,
                });
            }
            let pages = ids
                .iter()
                .zip(pages)
                // A middle node above this page needs a non-empty child in it.
                .map(|(id, page)| {
                    page.ok_or(TreeError::MissingPage {
                        depth: id.depth() as u16,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut still_waiting = Vec::new();
            for ((path, depth), index) in waiting.into_iter().zip(page_of) {
                if let Some(depth) = walk_page(&pages[index], ids[index], &path, depth)? {
                    still_waiting.push((path, depth));
                }
            }
            loaded.pages.extend(ids.into_iter().zip(pages));
            waiting = still_waiting;
        }
        Ok(loaded)
    }
}

/// Follows `path` from the middle node at `depth` through `page` (its
/// children's page, `id`): the depth of the middle node at the page's bottom
/// whose children need the next page, or `None` where the path ends.
fn walk_page<E>(page: &Page, id: PageId, path: &KeyPath, mut depth: usize) -> Result<Option<usize>, TreeError<E>> {
    let bottom = id.depth() + PAGE_LEVELS;
    loop {
        depth += 1;
        if !matches!(page.node(slot(depth, path)), Node::Middle(_)) {
            return Ok(None);
        }
        if depth + 1 >= usize::from(MAX_LEVELS_LIMIT) {
            return Err(TreeError::CorruptPath);
        }
        if depth == bottom {
            return Ok(Some(depth));
        }
    }
}

/// Sorts paths as the tree lays them out (bit 0 first): paths sharing a
/// prefix are adjacent.
fn tree_order(path: &KeyPath) -> [u64; 4] {
    path.0.map(u64::reverse_bits)
}
