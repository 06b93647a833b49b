//! Merkle repair: a store whose pages were damaged (a flipped bit, a lost
//! row) is checked against its own root record and fixed from a healthy
//! copy at the same version, fetching only the pages that fail.
//!
//! The walk starts at the root node (from the root record, which both
//! copies must agree on) and visits every page top-down. A page passes when
//! it decodes, its two top nodes hash to the node above it, and each middle
//! node in it hashes its children. A page that fails is fetched from the
//! source, checked the same way, and written over the damaged row; the walk
//! continues below the repaired page. Only pages reachable from the root
//! are checked: that is what reads and proofs use.

use crate::store::backend::{Backend, Table, WriteBatch};
use crate::store::diff::{PageSource, StorePages};
use crate::store::error::{Result, StoreError};
use crate::store::keys::versioned;
use crate::store::pages::VersionedPages;
use crate::store::{Shared, Store};
use rustorium_core::Fr;
use rustorium_core::tree::page::slot;
use rustorium_core::tree::{KeyPath, Node, PAGE_LEVELS, Page, PageId, middle_hash, with_path_bit};
use std::sync::Arc;

/// What a repair found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub version: u64,
    /// Pages reachable from the root, all checked.
    pub pages_checked: u64,
    /// Pages that failed and were fetched from the source.
    pub pages_fetched: u64,
}

/// Whether `page` (under the node at `depth` on `path`, whose hash is
/// `expected`) is what its parent and its own middle nodes say.
fn consistent(page: &Page, depth: usize, path: &KeyPath, expected: Fr) -> bool {
    let node = |d: usize, p: &KeyPath| page.node(slot(d, p));
    let children = |d: usize, p: &KeyPath| {
        let left = node(d + 1, &with_path_bit(p, d, false));
        let right = node(d + 1, &with_path_bit(p, d, true));
        middle_hash(left.hash(), right.hash())
    };
    if children(depth, path) != expected {
        return false;
    }
    for level in 1..PAGE_LEVELS {
        let d = depth + level;
        for position in 0..1usize << level {
            let p = (0..level).fold(*path, |p, j| with_path_bit(&p, depth + j, position >> j & 1 == 1));
            if let Node::Middle(hash) = node(d, &p)
                && children(d, &p) != hash
            {
                return false;
            }
        }
    }
    true
}

fn load<B: Backend>(shared: &Shared<B>, reader: &B::Reader, version: u64, id: PageId) -> Option<(u64, Page)> {
    let view = VersionedPages::new(reader, version, &shared.cache, &shared.codec);
    match view.load_many(&[id]) {
        Ok(mut found) => match found.pop() {
            Some((written, Some(page))) => Some((written, (*page).clone())),
            _ => None,
        },
        Err(_) => None,
    }
}

/// Checks every page reachable from the head's root, level by level, and
/// replaces each one that fails with `source`'s copy (a tree with the same
/// root: the same pages).
async fn repair_from<B: Backend, P: PageSource>(target: &Arc<Shared<B>>, source: &P) -> Result<RepairReport> {
    let head = target.head();
    let mut report = RepairReport {
        version: head.version,
        ..RepairReport::default()
    };
    let mut repairs: Vec<(PageId, u64, Page)> = Vec::new();
    let mut frontier: Vec<(usize, KeyPath, Fr)> = match head.tree.root_node() {
        Node::Middle(hash) => vec![(0, KeyPath::default(), hash)],
        _ => Vec::new(),
    };
    while !frontier.is_empty() {
        let ids: Vec<PageId> = frontier.iter().map(|(d, p, _)| PageId::containing(d + 1, p)).collect();
        report.pages_checked += ids.len() as u64;
        let shared = target.clone();
        let local_ids = ids.clone();
        let local: Vec<Option<(u64, Page)>> = tokio::task::spawn_blocking(move || {
            let (_, reader) = shared.snapshot()?;
            Ok::<_, StoreError>(
                local_ids
                    .iter()
                    .map(|id| load(&shared, &reader, head.version, *id))
                    .collect(),
            )
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        let damaged: Vec<usize> = frontier
            .iter()
            .zip(&local)
            .enumerate()
            .filter(|(_, ((d, p, expected), page))| {
                !page
                    .as_ref()
                    .is_some_and(|(_, page)| consistent(page, *d, p, *expected))
            })
            .map(|(i, _)| i)
            .collect();
        let fetched = source.pages(damaged.iter().map(|i| ids[*i]).collect()).await?;
        if fetched.len() != damaged.len() {
            return Err(StoreError::Corrupt(format!(
                "the source answered {} pages for {} asked",
                fetched.len(),
                damaged.len()
            )));
        }
        report.pages_fetched += damaged.len() as u64;
        let mut pages: Vec<Option<Page>> = local.into_iter().map(|found| found.map(|(_, page)| page)).collect();
        for (i, page) in damaged.into_iter().zip(fetched) {
            let (depth, path, expected) = frontier[i];
            let page = page
                .filter(|page| consistent(page, depth, &path, expected))
                .ok_or_else(|| StoreError::Corrupt(format!("page {:?} is damaged in the source too", ids[i])))?;
            // Rewritten at the head's version: the row reads see from now on.
            repairs.push((ids[i], head.version, (*page).clone()));
            pages[i] = Some((*page).clone());
        }
        let mut next = Vec::new();
        for ((depth, path, _), page) in frontier.iter().zip(pages) {
            let page = page.ok_or_else(|| StoreError::Corrupt("a checked page vanished".into()))?;
            let bottom = depth + PAGE_LEVELS;
            for position in 0..1usize << PAGE_LEVELS {
                let child = (0..PAGE_LEVELS).fold(*path, |p, j| with_path_bit(&p, depth + j, position >> j & 1 == 1));
                if let Node::Middle(hash) = page.node(slot(bottom, &child)) {
                    next.push((bottom, child, hash));
                }
            }
        }
        frontier = next;
    }
    if !repairs.is_empty() {
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = WriteBatch::default();
            for (id, written, page) in &repairs {
                let row = versioned(&id.to_key(), *written);
                let (record, _) = target.codec.encode(Table::Pages, &row, &page.encode())?;
                batch.put(Table::Pages, row, record);
            }
            target.backend.commit(batch, true)?;
            target.cache.reset(head.version);
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|_| StoreError::Closed)??;
    }
    tracing::info!(
        version = report.version,
        checked = report.pages_checked,
        fetched = report.pages_fetched,
        "merkle repair"
    );
    Ok(report)
}

impl<B: Backend> Store<B> {
    /// Checks every page reachable from the root and replaces each damaged
    /// one with `source`'s copy (which must be at the same version and root).
    pub async fn repair_pages_from<S: Backend>(&self, source: &Store<S>) -> Result<RepairReport> {
        let (version, root) = self.head_root();
        let (source_version, source_root) = source.head_root();
        if version != source_version || root != source_root {
            return Err(StoreError::Config(format!(
                "repair needs the source at this store's version and root (this store: version {version}, source: version {source_version})"
            )));
        }
        repair_from(&self.shared, &StorePages { store: source, version }).await
    }

    /// The same with any page source whose tree has this store's root
    /// (`source_root`), e.g. a primary over the network at the version a
    /// replica mirrors: equal roots mean equal pages.
    pub async fn repair_pages_with<P: PageSource>(&self, source: &P, source_root: Fr) -> Result<RepairReport> {
        let (_, root) = self.head_root();
        if root.hash() != source_root {
            return Err(StoreError::Config(format!(
                "repair needs a source with this store's root {}, not {source_root}",
                root.hash()
            )));
        }
        repair_from(&self.shared, source).await
    }
}
