//! Reading keys with proofs.

use super::load::LoadedPages;
use super::node::{Node, key_path, path_bit};
use super::store::PageStore;
use super::{SparseMerkleTree, TreeError};
use crate::field::Fr;
use crate::proof::{NodeAux, Proof};
use alloc::vec::Vec;

/// A key's value in the tree (if any) with the proof of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub key: Fr,
    pub value: Option<Fr>,
    pub proof: Proof,
}

impl SparseMerkleTree {
    /// The value of `key` and a proof of membership or non-membership.
    pub fn prove<S: PageStore>(&self, store: &S, key: &Fr) -> Result<Lookup, TreeError<S::Error>> {
        let mut lookups = self.prove_many(store, core::slice::from_ref(key))?;
        // prove_many returns one lookup per key.
        lookups.pop().ok_or(TreeError::CorruptPath)
    }

    /// Proofs for several keys, fetching each page level once for all of them.
    pub fn prove_many<S: PageStore>(&self, store: &S, keys: &[Fr]) -> Result<Vec<Lookup>, TreeError<S::Error>> {
        let paths: Vec<_> = keys.iter().map(key_path).collect();
        let loaded = LoadedPages::load(store, &self.root_node(), &paths)?;
        Ok(keys
            .iter()
            .zip(&paths)
            .map(|(key, path)| self.walk(&loaded, key, path))
            .collect())
    }

    fn walk(&self, loaded: &LoadedPages, key: &Fr, path: &super::KeyPath) -> Lookup {
        let root = self.root_node();
        let mut siblings = Vec::new();
        let mut depth = 0;
        loop {
            match loaded.node(&root, depth, path) {
                Node::Middle(_) => {
                    let mut sibling_path = *path;
                    let limb = &mut sibling_path.0[depth / 64];
                    *limb ^= 1 << (depth % 64);
                    debug_assert_ne!(path_bit(path, depth), path_bit(&sibling_path, depth));
                    siblings.push(loaded.node(&root, depth + 1, &sibling_path).hash());
                    depth += 1;
                }
                Node::Leaf(leaf) if leaf.key == *key => {
                    return Lookup {
                        key: *key,
                        value: Some(leaf.value),
                        proof: Proof {
                            existence: true,
                            siblings,
                            node_aux: None,
                        },
                    };
                }
                Node::Leaf(leaf) => {
                    let aux = NodeAux {
                        key: leaf.key,
                        value: leaf.value,
                    };
                    return Lookup {
                        key: *key,
                        value: None,
                        proof: Proof {
                            existence: false,
                            siblings,
                            node_aux: Some(aux),
                        },
                    };
                }
                Node::Empty => {
                    return Lookup {
                        key: *key,
                        value: None,
                        proof: Proof {
                            existence: false,
                            siblings,
                            node_aux: None,
                        },
                    };
                }
            }
        }
    }
}
