//! Tree nodes and their iden3 hashes.

use crate::field::Fr;
use crate::poseidon::{hash2, hash3};
use ark_ff::{BigInt, PrimeField};

/// A key's position in the tree: the canonical integer of the key, read bit by
/// bit from the least significant bit at the root.
pub type KeyPath = BigInt<4>;

/// The path of a key.
#[inline]
pub fn key_path(key: &Fr) -> KeyPath {
    key.into_bigint()
}

/// Bit `depth` of a path: `true` goes right.
#[inline]
pub fn path_bit(path: &KeyPath, depth: usize) -> bool {
    crate::field::bit(path, depth)
}

/// `path` with bit `depth` set to `bit` (the path of a child: `true` right).
#[inline]
pub fn with_path_bit(path: &KeyPath, depth: usize, bit: bool) -> KeyPath {
    let mut out = *path;
    let mask = 1u64 << (depth % 64);
    if bit {
        out.0[depth / 64] |= mask;
    } else {
        out.0[depth / 64] &= !mask;
    }
    out
}

/// Whether two paths agree on their first `depth` bits.
pub fn paths_share_prefix(a: &KeyPath, b: &KeyPath, depth: usize) -> bool {
    (0..depth).all(|d| path_bit(a, d) == path_bit(b, d))
}

/// `Poseidon(key, value, 1)`.
#[inline]
pub fn leaf_hash(key: Fr, value: Fr) -> Fr {
    hash3(key, value, Fr::from(1u64))
}

/// `Poseidon(left, right)`.
#[inline]
pub fn middle_hash(left: Fr, right: Fr) -> Fr {
    hash2(left, right)
}

/// A leaf with its hash, which is cached because recomputing it costs a
/// Poseidon call on every read of the page that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub key: Fr,
    pub value: Fr,
    pub hash: Fr,
}

impl Leaf {
    pub fn new(key: Fr, value: Fr) -> Self {
        Self {
            key,
            value,
            hash: leaf_hash(key, value),
        }
    }
}

/// One position of the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Node {
    #[default]
    Empty,
    Leaf(Leaf),
    /// A node with two subtrees, at least one of which is not a lone leaf;
    /// holds its hash.
    Middle(Fr),
}

impl Node {
    /// The iden3 hash of the node: 0 for empty.
    #[inline]
    pub fn hash(&self) -> Fr {
        match self {
            Self::Empty => Fr::from(0u64),
            Self::Leaf(leaf) => leaf.hash,
            Self::Middle(hash) => *hash,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
}
