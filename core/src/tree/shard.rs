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
use alloc::collections::BTreeMap;
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
    /// The shard prefixes leave keys uncovered or overlap.
    NotACut,
}

impl core::fmt::Display for ShardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyBits { bits } => write!(f, "{bits} shard bits; at most {MAX_SHARD_BITS}"),
            Self::WrongShardCount { expected, got } => write!(f, "{got} sub-roots for {expected} shards"),
            Self::NotAShardProof => f.write_str("the proof does not come from the key's shard tree"),
            Self::NotACut => f.write_str("the shard prefixes do not cover every key exactly once"),
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

/// Where a shard sits: the keys whose first `depth` path bits spell `index`
/// (bit `d` of `index` is path bit `d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub depth: u8,
    pub index: usize,
}

impl Prefix {
    /// The whole key space.
    pub const ROOT: Self = Self { depth: 0, index: 0 };

    /// The prefix of `depth` bits that `key` has.
    pub fn of(key: &Fr, depth: u8) -> Self {
        Self {
            depth,
            index: shard_of(key, depth),
        }
    }

    pub fn contains(&self, key: &Fr) -> bool {
        Self::of(key, self.depth) == *self
    }

    /// The two halves one bit deeper (left: next bit 0).
    pub fn children(&self) -> [Self; 2] {
        let depth = self.depth + 1;
        [
            Self {
                depth,
                index: self.index,
            },
            Self {
                depth,
                index: self.index | (1 << self.depth),
            },
        ]
    }

    /// The prefix one bit shorter; `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        let depth = self.depth.checked_sub(1)?;
        Some(Self {
            depth,
            index: self.index & ((1 << depth) - 1),
        })
    }

    /// The `2^bits` prefixes of one depth.
    pub fn uniform(bits: u8) -> Vec<Self> {
        (0..1usize << bits).map(|index| Self { depth: bits, index }).collect()
    }

    /// A key inside the prefix (the prefix, then zeros): a probe whose proof
    /// in the shard's tree yields the shard's sub-root.
    pub fn probe(&self) -> Fr {
        shard_probe(self.index, self.depth)
    }
}

/// The levels of the global tree above a cut of shards: every node on a
/// prefix shorter than (or equal to) some shard's, built from the shards'
/// sub-roots by the iden3 rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopTree {
    /// Sub-roots of the shards.
    cut: BTreeMap<Prefix, Node>,
    /// Nodes above the cut.
    above: BTreeMap<Prefix, Node>,
}

impl TopTree {
    /// Combines one sub-root per shard of a uniform cut (index = `shard_of`).
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
        Self::from_cut(Prefix::uniform(bits).into_iter().zip(sub_roots.iter().copied()))
    }

    /// Combines the sub-roots of any cut: prefixes (of at most
    /// `MAX_SHARD_BITS` bits) that cover the key space without overlapping.
    pub fn from_cut(shards: impl IntoIterator<Item = (Prefix, Node)>) -> Result<Self, ShardError> {
        let cut: BTreeMap<Prefix, Node> = shards.into_iter().collect();
        if let Some(deep) = cut.keys().find(|p| p.depth > MAX_SHARD_BITS) {
            return Err(ShardError::TooManyBits { bits: deep.depth });
        }
        let mut top = Self {
            cut,
            above: BTreeMap::new(),
        };
        let mut used = 0;
        top.build(Prefix::ROOT, &mut used)?;
        if used != top.cut.len() {
            return Err(ShardError::NotACut);
        }
        Ok(top)
    }

    fn build(&mut self, prefix: Prefix, used: &mut usize) -> Result<Node, ShardError> {
        if let Some(node) = self.cut.get(&prefix) {
            *used += 1;
            return Ok(*node);
        }
        if prefix.depth >= MAX_SHARD_BITS {
            return Err(ShardError::NotACut);
        }
        let [left, right] = prefix.children();
        let node = join(&self.build(left, used)?, &self.build(right, used)?);
        self.above.insert(prefix, node);
        Ok(node)
    }

    fn node(&self, prefix: &Prefix) -> Node {
        self.cut
            .get(prefix)
            .or_else(|| self.above.get(prefix))
            .copied()
            .unwrap_or_default()
    }

    /// The global root node.
    pub fn root(&self) -> Node {
        self.node(&Prefix::ROOT)
    }

    /// The shard prefix that holds `key`.
    pub fn shard_for(&self, key: &Fr) -> Option<Prefix> {
        (0..=MAX_SHARD_BITS)
            .map(|depth| Prefix::of(key, depth))
            .find(|p| self.cut.contains_key(p))
    }

    /// The global proof for `key`, given its shard's proof (from the shard
    /// tree whose sub-root this top tree was built with).
    pub fn extend(&self, shard_proof: &Proof, key: &Fr) -> Result<Proof, ShardError> {
        let path = key_path(key);
        let mut siblings = Vec::new();
        for depth in 0..=MAX_SHARD_BITS {
            let prefix = Prefix::of(key, depth);
            let at = usize::from(depth);
            if let Some(node) = self.cut.get(&prefix) {
                return match node {
                    Node::Middle(_) => {
                        if shard_proof.depth() <= at {
                            return Err(ShardError::NotAShardProof);
                        }
                        siblings.extend_from_slice(&shard_proof.siblings[at..]);
                        Ok(Proof {
                            existence: shard_proof.existence,
                            siblings,
                            node_aux: shard_proof.node_aux,
                        })
                    }
                    node => Ok(self.ended_at(*node, key, siblings)),
                };
            }
            match self.node(&prefix) {
                Node::Middle(_) => {
                    let sibling = Prefix {
                        depth: depth + 1,
                        index: prefix.index | (usize::from(!path_bit(&path, at)) << at),
                    };
                    siblings.push(self.node(&sibling).hash());
                }
                node => return Ok(self.ended_at(node, key, siblings)),
            }
        }
        Err(ShardError::NotACut)
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
