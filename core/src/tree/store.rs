//! Where pages live: the trait a backend implements, and the in-memory store.

use super::page::{Page, PageId};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::convert::Infallible;

/// Read access to the pages of one consistent tree version.
///
/// Calls are batched: the tree asks for every page it needs at one level of
/// pages at once, so a remote backend pays one round trip per
/// [`PAGE_LEVELS`](super::page::PAGE_LEVELS) levels, not one per node.
///
/// Pages are shared, not copied: a store can hand out the pages it caches,
/// and the tree copies only a page it changes.
pub trait PageStore {
    type Error;

    /// The pages with these ids, in order; `None` where no page is stored.
    fn pages(&self, ids: &[PageId]) -> Result<Vec<Option<Arc<Page>>>, Self::Error>;
}

impl<S: PageStore + ?Sized> PageStore for &S {
    type Error = S::Error;
    fn pages(&self, ids: &[PageId]) -> Result<Vec<Option<Arc<Page>>>, Self::Error> {
        (**self).pages(ids)
    }
}

/// Pages in a `BTreeMap`: for tests, tools and the offline CLI.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    pages: BTreeMap<PageId, Arc<Page>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the pages of a batch update (`None` removes a page).
    pub fn apply(&mut self, pages: impl IntoIterator<Item = (PageId, Option<Arc<Page>>)>) {
        for (id, page) in pages {
            match page {
                Some(page) => {
                    self.pages.insert(id, page);
                }
                None => {
                    self.pages.remove(&id);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PageId, &Page)> {
        self.pages.iter().map(|(id, page)| (id, &**page))
    }
}

impl PageStore for MemoryStore {
    type Error = Infallible;
    fn pages(&self, ids: &[PageId]) -> Result<Vec<Option<Arc<Page>>>, Infallible> {
        Ok(ids.iter().map(|id| self.pages.get(id).cloned()).collect())
    }
}
