//! Proofs of membership and non-membership, their one verification routine,
//! and their encodings (iden3 compact bytes, iden3 JSON, circom inputs).

pub mod circom;
pub mod compact;
#[cfg(feature = "serde")]
pub mod json;
mod verify;

pub use verify::{VerifyError, compute_root};

use crate::field::Fr;
use alloc::vec::Vec;

/// The leaf met where the searched key would be, in a non-membership proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAux {
    pub key: Fr,
    pub value: Fr,
}

/// An iden3 sparse-Merkle-tree proof.
///
/// `siblings[i]` is the sibling at depth `i + 1` of the path node at depth `i`
/// (zero for an empty sibling); the proof's depth is `siblings.len()`.
/// A non-membership proof ends at an empty slot (`node_aux: None`) or at the
/// leaf of another key whose path shares the first `depth` bits (`node_aux`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proof {
    pub existence: bool,
    pub siblings: Vec<Fr>,
    pub node_aux: Option<NodeAux>,
}

impl Proof {
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }
}
