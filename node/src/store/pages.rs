//! Versioned pages: the page cache and the `PageStore` view of one version.
//!
//! A page written at version `w` is stored under `page key ++ w`; the page as
//! of version `v` is the last entry in `[page key ++ 0, page key ++ v]` (an
//! empty record means "no page since `w`").
//!
//! The cache holds, per page, the latest entry and its version. An entry of
//! version `w <= v` is the page as of `v`, because nothing rewrote it after
//! `w`. Only the committer (after each commit) and readers of the current
//! version fill it, under one lock with the current version, so it never holds
//! anything but latest entries.

use crate::store::backend::{BackendReader, KeyValue, LastIn, Table};
use crate::store::codec::RecordCodec;
use crate::store::error::StoreError;
use crate::store::keys::{split_version, versioned};
use rustorium_core::tree::{Page, PageId, PageStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Pages at this depth or above stay cached: they are on every path.
const PINNED_DEPTH: usize = 8;

#[derive(Debug, Default)]
struct CacheState {
    current_version: u64,
    entries: HashMap<PageId, (u64, Option<Arc<Page>>)>,
}

/// The latest version of recently used pages.
#[derive(Debug)]
pub struct PageCache {
    state: Mutex<CacheState>,
    capacity: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl PageCache {
    pub fn new(capacity: usize, current_version: u64) -> Self {
        Self {
            state: Mutex::new(CacheState {
                current_version,
                entries: HashMap::new(),
            }),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves only cache entries behind,
        // which are each valid on their own.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn lookup(&self, id: &PageId, version: u64) -> Option<Found> {
        let state = self.lock();
        match state.entries.get(id) {
            // Latest as of `current_version`: it is the page as of any
            // version from `written` up to that, not beyond (another
            // writer may have rewritten it since).
            Some((written, page)) if *written <= version && version <= state.current_version => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some((*written, page.clone()))
            }
            _ => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn fill(&self, id: PageId, read_at: u64, written: u64, page: Option<Arc<Page>>) {
        let mut state = self.lock();
        if state.current_version != read_at {
            return;
        }
        if state.entries.len() >= self.capacity {
            self.evict(&mut state);
            if state.entries.len() >= self.capacity {
                return;
            }
        }
        state.entries.insert(id, (written, page));
    }

    /// Drops the deepest cached levels until a tenth of the room is free:
    /// a deep page is on few paths, an upper one on many.
    fn evict(&self, state: &mut CacheState) {
        let target = self.capacity - self.capacity / 10;
        while state.entries.len() > target {
            let Some(deepest) = state
                .entries
                .keys()
                .map(PageId::depth)
                .filter(|d| *d >= PINNED_DEPTH)
                .max()
            else {
                return;
            };
            state.entries.retain(|id, _| id.depth() != deepest);
        }
    }

    /// Forgets every page: another writer's commits made `version` current.
    pub fn reset(&self, version: u64) {
        let mut state = self.lock();
        state.current_version = version;
        state.entries.clear();
    }

    /// Records the pages of the commit that made `version` current.
    pub fn committed(&self, version: u64, pages: &ChangedPages) {
        let mut state = self.lock();
        if version <= state.current_version {
            // Another writer's newer head was adopted meanwhile.
            return;
        }
        state.current_version = version;
        for (id, page) in pages {
            state.entries.insert(*id, (version, page.clone()));
        }
        if state.entries.len() > self.capacity {
            self.evict(&mut state);
        }
    }

    pub fn hit_ratio(&self) -> f64 {
        let hits = self.hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.misses.load(Ordering::Relaxed) as f64;
        if total == 0.0 { 1.0 } else { hits / total }
    }
}

/// A page as of some version: the version it was written at, and the page
/// (`None`: no page there).
pub(crate) type Found = (u64, Option<Arc<Page>>);

/// The pages one commit changed (`None`: removed).
pub(crate) type ChangedPages = HashMap<PageId, Option<Arc<Page>>>;

/// The pages of one version, read through the cache.
pub struct VersionedPages<'a, R: BackendReader> {
    pub reader: &'a R,
    pub version: u64,
    pub cache: &'a PageCache,
    pub codec: &'a RecordCodec,
    /// The version each page was found at, for stale accounting by the committer.
    pub found: Mutex<HashMap<PageId, u64>>,
    /// Pages fetched ahead of the walk (`prefetch`), for versions the
    /// cache does not hold.
    prefetched: Mutex<HashMap<PageId, Found>>,
    /// The pages of a batch written at the version after `version` but
    /// perhaps not committed yet: they shadow the stored ones, so the
    /// committer can apply the next batch while this one is written.
    overlay: Option<(u64, &'a ChangedPages)>,
    /// Nanoseconds spent answering `pages`, for the commit's phase metrics.
    pub load_nanos: AtomicU64,
}

impl<'a, R: BackendReader> VersionedPages<'a, R> {
    pub fn new(reader: &'a R, version: u64, cache: &'a PageCache, codec: &'a RecordCodec) -> Self {
        Self {
            reader,
            version,
            cache,
            codec,
            found: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashMap::new()),
            overlay: None,
            load_nanos: AtomicU64::new(0),
        }
    }

    /// This view with `pages`, written at `written`, over the stored pages.
    pub(crate) fn with_overlay(mut self, written: u64, pages: &'a ChangedPages) -> Self {
        self.overlay = Some((written, pages));
        self
    }

    /// Fetches the pages a walk to `key` would visit down to `depth`, in one
    /// batched backend call instead of one call per page level: for remote
    /// backends, one round trip for the whole path. Pages below the leaf do
    /// not exist and come back empty.
    /// `also` rides along in the same call; its answers are returned.
    pub fn prefetch_path(
        &self,
        key: &rustorium_core::Fr,
        depth: usize,
        also: &[LastIn],
    ) -> Result<Vec<Option<KeyValue>>, StoreError> {
        let path = rustorium_core::tree::key_path(key);
        let ids: Vec<PageId> = (1..=depth.max(1))
            .step_by(rustorium_core::tree::PAGE_LEVELS)
            .map(|d| PageId::containing(d, &path))
            .filter(|id| self.cache.lookup(id, self.version).is_none())
            .collect();
        let (loaded, extra) = self.load_many_and(&ids, also)?;
        let mut prefetched = self
            .prefetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, (written, page)) in ids.into_iter().zip(loaded) {
            self.cache.fill(id, self.version, written, page.clone());
            prefetched.insert(id, (written, page));
        }
        Ok(extra)
    }

    /// Loads pages in one batched backend call.
    pub(crate) fn load_many(&self, ids: &[PageId]) -> Result<Vec<Found>, StoreError> {
        Ok(self.load_many_and(ids, &[])?.0)
    }

    /// Loads pages and answers `also` in the same batched backend call.
    fn load_many_and(
        &self,
        ids: &[PageId],
        also: &[LastIn],
    ) -> Result<(Vec<Found>, Vec<Option<KeyValue>>), StoreError> {
        let mut lookups: Vec<LastIn> = ids
            .iter()
            .map(|id| {
                let prefix = id.to_key();
                (Table::Pages, versioned(&prefix, 0), versioned(&prefix, self.version))
            })
            .collect();
        lookups.extend_from_slice(also);
        let mut found = self.reader.last_in_many(&lookups)?;
        let extra = found.split_off(ids.len());
        Ok((self.decode_found(ids, found)?, extra))
    }

    fn decode_found(&self, ids: &[PageId], found: Vec<Option<KeyValue>>) -> Result<Vec<Found>, StoreError> {
        ids.iter()
            .zip(found)
            .map(|(id, entry)| {
                let Some((key, record)) = entry else {
                    return Ok((0, None));
                };
                let (_, written) =
                    split_version(&key).ok_or_else(|| StoreError::Corrupt("page key without version".into()))?;
                if record.is_empty() {
                    return Ok((written, None));
                }
                let bytes = self.codec.decode(Table::Pages, &key, &record)?;
                let page = Page::decode(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("page {id:?} at version {written}: {e}")))?;
                Ok((written, Some(Arc::new(page))))
            })
            .collect()
    }
}

impl<R: BackendReader> PageStore for VersionedPages<'_, R> {
    type Error = StoreError;

    fn pages(&self, ids: &[PageId]) -> Result<Vec<Option<Arc<Page>>>, StoreError> {
        let started = std::time::Instant::now();
        let mut entries: Vec<Option<Found>> = {
            let prefetched = self
                .prefetched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.iter()
                .map(|id| {
                    let pending = self
                        .overlay
                        .and_then(|(written, pages)| Some((written, pages.get(id)?.clone())));
                    pending
                        .or_else(|| prefetched.get(id).cloned())
                        .or_else(|| self.cache.lookup(id, self.version))
                })
                .collect()
        };
        let missing: Vec<PageId> = ids
            .iter()
            .zip(&entries)
            .filter(|(_, entry)| entry.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let mut loaded = self.load_many(&missing)?.into_iter();
            for (id, entry) in ids.iter().zip(entries.iter_mut()) {
                if entry.is_none() {
                    let (written, page) = loaded
                        .next()
                        .ok_or_else(|| StoreError::Corrupt("short page batch".into()))?;
                    self.cache.fill(*id, self.version, written, page.clone());
                    *entry = Some((written, page));
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut found = HashMap::with_capacity(ids.len());
        for (id, entry) in ids.iter().zip(entries) {
            let (written, page) = entry.ok_or_else(|| StoreError::Corrupt("page not loaded".into()))?;
            if page.is_some() {
                found.insert(*id, written);
            }
            out.push(page);
        }
        self.found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(found);
        self.load_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(out)
    }
}
