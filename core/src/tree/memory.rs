//! A tree with its pages in memory: for tests, tools and the offline CLI.

use super::store::MemoryStore;
use super::{BatchUpdate, Lookup, Op, SparseMerkleTree, TreeError};
use crate::field::Fr;
use alloc::vec::Vec;
use core::convert::Infallible;

/// A [`SparseMerkleTree`] over a [`MemoryStore`].
#[derive(Clone, Debug)]
pub struct MemoryTree {
    tree: SparseMerkleTree,
    store: MemoryStore,
}

impl MemoryTree {
    pub fn new(max_levels: u16) -> Result<Self, TreeError<Infallible>> {
        Ok(Self {
            tree: SparseMerkleTree::new(max_levels)?,
            store: MemoryStore::new(),
        })
    }

    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    pub fn tree(&self) -> &SparseMerkleTree {
        &self.tree
    }

    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Applies a batch; on error nothing changes.
    pub fn apply(&mut self, ops: &[Op]) -> Result<BatchUpdate, TreeError<Infallible>> {
        let update = self.tree.apply(&self.store, ops)?;
        self.store.apply(update.pages.iter().cloned());
        self.tree = self.tree.advanced(&update);
        Ok(update)
    }

    pub fn insert(&mut self, key: Fr, value: Fr) -> Result<(), TreeError<Infallible>> {
        self.apply(&[Op::put(key, value)]).map(drop)
    }

    pub fn delete(&mut self, key: Fr) -> Result<(), TreeError<Infallible>> {
        self.apply(&[Op::delete(key)]).map(drop)
    }

    pub fn prove(&self, key: &Fr) -> Result<Lookup, TreeError<Infallible>> {
        self.tree.prove(&self.store, key)
    }

    pub fn prove_many(&self, keys: &[Fr]) -> Result<Vec<Lookup>, TreeError<Infallible>> {
        self.tree.prove_many(&self.store, keys)
    }
}
