//! Fetches the pages that a set of key paths runs through, one batched store
//! call per page level.

use super::node::{KeyPath, Node};
use super::page::{Page, PageId, slot};
use super::store::PageStore;
use super::{MAX_LEVELS_LIMIT, TreeError};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// Pages read for one operation; an absent page is an all-empty page.
///
/// Boxed: a page is about 2 KiB, and a batch loads tens of thousands of
/// them; the map would otherwise move whole pages as it grows.
#[derive(Debug, Default)]
pub(crate) struct LoadedPages {
    pub(crate) pages: BTreeMap<PageId, Box<Page>>,
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

    /// Loads every page on the way from the root to where each path ends (a
    /// leaf or an empty slot).
    pub(crate) fn load<S: PageStore>(store: &S, root: &Node, paths: &[KeyPath]) -> Result<Self, TreeError<S::Error>> {
        let mut loaded = Self::default();
        let mut pending: Vec<(KeyPath, usize)> = paths.iter().map(|p| (*p, 0)).collect();
        while !pending.is_empty() {
            let mut wanted = BTreeSet::new();
            let mut blocked = Vec::new();
            for (path, mut depth) in pending {
                loop {
                    if !matches!(loaded.node(root, depth, &path), Node::Middle(_)) {
                        break;
                    }
                    if depth + 1 >= usize::from(MAX_LEVELS_LIMIT) {
                        return Err(TreeError::CorruptPath);
                    }
                    let child_page = PageId::containing(depth + 1, &path);
                    if loaded.pages.contains_key(&child_page) {
                        depth += 1;
                    } else {
                        wanted.insert(child_page);
                        blocked.push((path, depth));
                        break;
                    }
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
                loaded.pages.insert(id, Box::new(page));
            }
            pending = blocked;
        }
        Ok(loaded)
    }
}
