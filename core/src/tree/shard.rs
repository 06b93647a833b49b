//! Shards: the tree cut at depth `bits` into the `2^bits` subtrees under
//! each key-path prefix. Each shard is an ordinary tree holding only its
//! keys, so it can live and commit on its own; this module puts the pieces
//! back together by the iden3 rules, so the global root is exactly the root
//! the unsharded tree would have and a shard's proof extends to a proof
//! against it.
//!
//! In a shard's own tree every key shares the prefix, so a walk passes
//! through `bits` single-child middles before anything else happens (two or
//! more keys), or stops at the root (one key: a leaf; none: empty). The
//! node the shard contributes at depth `bits` — its *sub-root* — can
//! therefore be read off any proof of any key in the shard.

use super::node::{Leaf, Node, key_path, middle_hash, path_bit};
use crate::field::Fr;
use crate::proof::{NodeAux, Proof};
use alloc::vec;
use alloc::vec::Vec;
use ark_ff::Zero;

/// The most shard bits: 256 shards.
pub const MAX_SHARD_BITS: u8 = 8;

/// Why pieces of a sharded tree do not fit together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardError {
    TooManyBits {
        bits: u8,
    },
    /// `combine` needs one sub-root per shard.
    WrongShardCount {
        expected: usize,
        got: usize,
    },
    /// The proof is not one a shard's own tree produces for this key.
    NotAShardProof,
}

impl core::fmt::Display for ShardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyBits { bits } => write!(f, "{bits} shard bits; at most {MAX_SHARD_BITS}"),
            Self::WrongShardCount { expected, got } => write!(f, "{got} sub-roots for {expected} shards"),
            Self::NotAShardProof => f.write_str("the proof does not come from the key's shard tree"),
        }
    }
}

impl core::error::Error for ShardError {}

/// Which shard a key belongs to: bit `d` of the index is bit `d` of the
/// key's path, for `d < bits`.
pub fn shard_of(key: &Fr, bits: u8) -> usize {
    let path = key_path(key);
    (0..usize::from(bits)).fold(0, |index, d| index | (usize::from(path_bit(&path, d)) << d))
}

/// A key in shard `index` (its path is the shard prefix, then zeros): a
/// probe whose proof in the shard tree yields the shard's sub-root.
pub fn shard_probe(index: usize, bits: u8) -> Fr {
    let low = (index as u64) & ((1u64 << bits) - 1);
    Fr::from(low)
}

/// The node a shard's tree has at depth `bits`, read off `proof` (from that
/// tree) for `key` holding `value` (or absent).
pub fn sub_root(proof: &Proof, key: &Fr, value: Option<&Fr>, bits: u8) -> Result<Node, ShardError> {
    let bits = usize::from(bits);
    let bottom = terminal(proof, key, value);
    if proof.depth() == 0 {
        return Ok(bottom);
    }
    if proof.depth() <= bits || proof.siblings[..bits].iter().any(|s| !s.is_zero()) {
        return Err(ShardError::NotAShardProof);
    }
    let path = key_path(key);
    let mut hash = bottom.hash();
    for depth in (bits..proof.depth()).rev() {
        hash = join_hashes(&path, depth, hash, proof.siblings[depth]);
    }
    Ok(Node::Middle(hash))
}

/// What a proof ends at: the key's leaf, another key's leaf, or nothing.
fn terminal(proof: &Proof, key: &Fr, value: Option<&Fr>) -> Node {
    match (proof.existence, value, &proof.node_aux) {
        (true, Some(value), _) => Node::Leaf(Leaf::new(*key, *value)),
        (_, _, Some(NodeAux { key, value })) => Node::Leaf(Leaf::new(*key, *value)),
        _ => Node::Empty,
    }
}

fn join_hashes(path: &super::KeyPath, depth: usize, node: Fr, sibling: Fr) -> Fr {
    if path_bit(path, depth) {
        middle_hash(sibling, node)
    } else {
        middle_hash(node, sibling)
    }
}

/// The parent of two nodes by the iden3 rules: a leaf whose sibling is
/// empty moves up; two empties are empty.
fn join(left: &Node, right: &Node) -> Node {
    match (left, right) {
        (Node::Empty, Node::Empty) => Node::Empty,
        (Node::Leaf(leaf), Node::Empty) | (Node::Empty, Node::Leaf(leaf)) => Node::Leaf(*leaf),
        _ => Node::Middle(middle_hash(left.hash(), right.hash())),
    }
}

/// The top `bits` levels of the global tree, built from the shards'
/// sub-roots: `levels[d][i]` is the node at depth `d` on the prefix whose
/// bits spell `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopTree {
    bits: u8,
    levels: Vec<Vec<Node>>,
}

impl TopTree {
    /// Combines one sub-root per shard (index = `shard_of`).
    pub fn combine(bits: u8, sub_roots: &[Node]) -> Result<Self, ShardError> {
        if bits > MAX_SHARD_BITS {
            return Err(ShardError::TooManyBits { bits });
        }
        let count = 1usize << bits;
        if sub_roots.len() != count {
            return Err(ShardError::WrongShardCount {
                expected: count,
                got: sub_roots.len(),
            });
        }
        let mut levels = vec![sub_roots.to_vec()];
        for depth in (0..usize::from(bits)).rev() {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let level = (0..1usize << depth)
                .map(|i| join(&below[i], &below[i | (1 << depth)]))
                .collect();
            levels.push(level);
        }
        levels.reverse();
        Ok(Self { bits, levels })
    }

    /// The global root node.
    pub fn root(&self) -> Node {
        self.levels[0][0]
    }

    /// The global proof for `key`, given its shard's proof (from the shard
    /// tree whose sub-root this top tree was built with).
    pub fn extend(&self, shard_proof: &Proof, key: &Fr) -> Result<Proof, ShardError> {
        let bits = usize::from(self.bits);
        let path = key_path(key);
        let index = shard_of(key, self.bits);
        let mut siblings = Vec::new();
        for depth in 0..bits {
            let mask = (1usize << depth) - 1;
            match self.levels[depth][index & mask] {
                Node::Middle(_) => {
                    let sibling = (index & mask) | (usize::from(!path_bit(&path, depth)) << depth);
                    siblings.push(self.levels[depth + 1][sibling].hash());
                }
                node => return Ok(self.ended_at(node, key, siblings)),
            }
        }
        match self.levels[bits][index] {
            Node::Middle(_) => {
                if shard_proof.depth() <= bits {
                    return Err(ShardError::NotAShardProof);
                }
                siblings.extend_from_slice(&shard_proof.siblings[bits..]);
                Ok(Proof {
                    existence: shard_proof.existence,
                    siblings,
                    node_aux: shard_proof.node_aux,
                })
            }
            node => Ok(self.ended_at(node, key, siblings)),
        }
    }

    /// A proof whose walk stops at `node` above or at the shard boundary.
    fn ended_at(&self, node: Node, key: &Fr, siblings: Vec<Fr>) -> Proof {
        match node {
            Node::Leaf(leaf) if leaf.key == *key => Proof {
                existence: true,
                siblings,
                node_aux: None,
            },
            Node::Leaf(leaf) => Proof {
                existence: false,
                siblings,
                node_aux: Some(NodeAux {
                    key: leaf.key,
                    value: leaf.value,
                }),
            },
            _ => Proof {
                existence: false,
                siblings,
                node_aux: None,
            },
        }
    }
}
