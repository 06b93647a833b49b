//! The iden3 / circomlib sparse Merkle tree over a [`PageStore`].
//!
//! The tree value itself is small: its root node and `max_levels`. Nodes live
//! in pages in a store. Updates do not write: [`SparseMerkleTree::apply`]
//! returns a [`BatchUpdate`] (the new root and the changed pages) that the
//! caller persists atomically, so a failed batch changes nothing.

mod batch;
mod load;
mod memory;
pub mod node;
pub mod page;
mod prove;
pub mod shard;
pub mod store;

pub use batch::BatchUpdate;
pub use memory::MemoryTree;
pub use node::{KeyPath, Leaf, Node, key_path, leaf_hash, middle_hash, with_path_bit};
pub use page::{PAGE_LEVELS, Page, PageDecodeError, PageId};
pub use prove::Lookup;
pub use store::{MemoryStore, PageStore};

use crate::field::Fr;

/// The largest `max_levels`: a key has 254 significant bits, so two distinct
/// keys always part at a depth below 254 and a leaf never sits deeper than 254.
pub const MAX_LEVELS_LIMIT: u16 = 255;

/// One change in a batch: `value: None` deletes the key (a no-op when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub key: Fr,
    pub value: Option<Fr>,
}

impl Op {
    pub fn put(key: Fr, value: Fr) -> Self {
        Self {
            key,
            value: Some(value),
        }
    }

    pub fn delete(key: Fr) -> Self {
        Self { key, value: None }
    }
}

/// Why a tree operation failed. Nothing was changed when it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeError<E> {
    /// The backing store failed.
    Store(E),
    /// Two keys share the first `max_levels - 1` path bits, so the second
    /// cannot get a leaf at depth `<= max_levels - 1`.
    MaxLevelsReached { max_levels: u16 },
    /// `max_levels` must be between 1 and [`MAX_LEVELS_LIMIT`].
    InvalidMaxLevels { max_levels: u16 },
    /// A middle node's page is missing from the store: the store is corrupt.
    MissingPage { depth: u16 },
    /// A path descends past [`MAX_LEVELS_LIMIT`]: the store is corrupt.
    CorruptPath,
}

impl<E: core::fmt::Display> core::fmt::Display for TreeError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "page store failed: {e}"),
            Self::MaxLevelsReached { max_levels } => {
                write!(
                    f,
                    "keys share the first {} path bits: the tree's max_levels ({max_levels}) is reached",
                    max_levels.saturating_sub(1)
                )
            }
            Self::InvalidMaxLevels { max_levels } => {
                write!(
                    f,
                    "max_levels must be between 1 and {MAX_LEVELS_LIMIT}, got {max_levels}"
                )
            }
            Self::MissingPage { depth } => {
                write!(f, "store is missing the page below depth {depth}")
            }
            Self::CorruptPath => f.write_str("store holds a path deeper than any key"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for TreeError<E> {}

/// A sparse Merkle tree: the root node and the depth bound. Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseMerkleTree {
    root: Node,
    max_levels: u16,
}

impl SparseMerkleTree {
    /// An empty tree whose leaves sit at depth `<= max_levels - 1`.
    pub fn new(max_levels: u16) -> Result<Self, TreeError<core::convert::Infallible>> {
        Self::with_root(Node::Empty, max_levels)
    }

    /// The tree whose root node is `root` (for example read from a root record).
    pub fn with_root<E>(root: Node, max_levels: u16) -> Result<Self, TreeError<E>> {
        if max_levels == 0 || max_levels > MAX_LEVELS_LIMIT {
            return Err(TreeError::InvalidMaxLevels { max_levels });
        }
        Ok(Self { root, max_levels })
    }

    pub fn root(&self) -> Fr {
        self.root.hash()
    }

    pub fn root_node(&self) -> Node {
        self.root
    }

    pub fn max_levels(&self) -> u16 {
        self.max_levels
    }

    /// The tree after `update` has been persisted.
    pub fn advanced(&self, update: &BatchUpdate) -> Self {
        Self {
            root: update.root,
            max_levels: self.max_levels,
        }
    }
}
