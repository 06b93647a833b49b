//! Every class of forged proof the verifier must refuse, each with a proof that
//! a weaker verifier would accept, and exhaustive single-bit flips of encoded
//! proofs: each flip must fail to decode or fail to verify.

use ark_ff::{BigInt, PrimeField, Zero};
use rustorium_core::Fr;
use rustorium_core::field::FieldError;
use rustorium_core::proof::compact::DecodeError;
use rustorium_core::proof::{NodeAux, Proof, VerifyError, compute_root};
use rustorium_core::tree::{MemoryTree, Node, leaf_hash, middle_hash};

const MAX_LEVELS: u16 = 40;

fn fr(n: u64) -> Fr {
    Fr::from(n)
}

/// Keys 1..=12 with values 10 * key: a tree with depth-4 leaves.
fn sample_tree() -> MemoryTree {
    let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
    for k in 1..=12u64 {
        tree.insert(fr(k), fr(10 * k)).unwrap();
    }
    tree
}

/// Hashes a bottom node up the key's path: what a verifier without structural
/// checks would compare against the root.
fn naive_root(key: &Fr, bottom: Fr, siblings: &[Fr]) -> Fr {
    let path = key.into_bigint();
    siblings
        .iter()
        .enumerate()
        .rev()
        .fold(bottom, |node, (depth, sibling)| {
            if rustorium_core::field::bit(&path, depth) {
                middle_hash(*sibling, node)
            } else {
                middle_hash(node, *sibling)
            }
        })
}

#[test]
fn aux_key_equal_to_the_key_is_refused() {
    let tree = sample_tree();
    let member = tree.prove(&fr(5)).unwrap();
    // "5 is absent, the slot holds leaf (5, 50)": hashes to the true root.
    let forged = Proof {
        existence: false,
        siblings: member.proof.siblings.clone(),
        node_aux: Some(NodeAux {
            key: fr(5),
            value: fr(50),
        }),
    };
    assert_eq!(
        naive_root(&fr(5), leaf_hash(fr(5), fr(50)), &forged.siblings),
        tree.root()
    );
    assert_eq!(
        forged.verify(&tree.root(), &fr(5), None, MAX_LEVELS),
        Err(VerifyError::AuxKeyIsKey)
    );
}

#[test]
fn aux_leaf_off_the_key_path_is_refused() {
    // A malicious server builds a root in which leaf (2, 20) hangs on key 1's
    // path, and offers it to prove 1 absent.
    let siblings = vec![fr(777), fr(888)];
    let aux = NodeAux {
        key: fr(2),
        value: fr(20),
    };
    let root = naive_root(&fr(1), leaf_hash(aux.key, aux.value), &siblings);
    let forged = Proof {
        existence: false,
        siblings,
        node_aux: Some(aux),
    };
    assert_eq!(
        forged.verify(&root, &fr(1), None, MAX_LEVELS),
        Err(VerifyError::AuxOffPath)
    );
}

#[test]
fn too_many_siblings_for_max_levels_is_refused() {
    let mut tree = MemoryTree::new(64).unwrap();
    tree.insert(fr(1), fr(1)).unwrap();
    tree.insert(fr(1 | 1 << 30), fr(2)).unwrap();
    let deep = tree.prove(&fr(1)).unwrap();
    assert_eq!(deep.proof.depth(), 31);
    deep.proof.verify(&tree.root(), &fr(1), Some(&fr(1)), 64).unwrap();
    assert_eq!(
        deep.proof.verify(&tree.root(), &fr(1), Some(&fr(1)), 20),
        Err(VerifyError::TooManySiblings { got: 31, max: 19 })
    );
    let huge = Proof {
        existence: true,
        siblings: vec![fr(1); 300],
        node_aux: None,
    };
    assert!(matches!(
        huge.verify(&tree.root(), &fr(1), Some(&fr(1)), 255),
        Err(VerifyError::TooManySiblings { .. })
    ));
    assert_eq!(
        huge.verify(&tree.root(), &fr(1), Some(&fr(1)), 0),
        Err(VerifyError::InvalidMaxLevels { max_levels: 0 })
    );
}

#[test]
fn empty_last_sibling_is_refused() {
    let tree = sample_tree();
    let member = tree.prove(&fr(3)).unwrap();
    let mut padded = member.proof.clone();
    padded.siblings.push(Fr::zero());
    assert_eq!(
        padded.verify(&tree.root(), &fr(3), Some(&fr(30)), MAX_LEVELS),
        Err(VerifyError::EmptyLastSibling)
    );
}

#[test]
fn middle_node_cannot_pass_for_a_leaf() {
    // Take a middle node (left, right) on key 1's path and claim a leaf
    // (left, right) there: leaf = Poseidon3(k, v, 1) never equals the middle
    // hash Poseidon2(l, r), so the forgery fails at the root.
    let tree = sample_tree();
    let member = tree.prove(&fr(1)).unwrap();
    let siblings = &member.proof.siblings;
    let depth = siblings.len();
    // The node at depth-1 on key 1's path is middle(leaf1, sibling) or
    // middle(sibling, leaf1); key 1 has bit (depth-1) = 0 here.
    let leaf1 = leaf_hash(fr(1), fr(10));
    let (left, right) = (leaf1, siblings[depth - 1]);
    let middle = middle_hash(left, right);
    assert_eq!(naive_root(&fr(1), middle, &siblings[..depth - 1]), tree.root());
    assert_ne!(leaf_hash(left, right), middle);
    let forged = Proof {
        existence: true,
        siblings: siblings[..depth - 1].to_vec(),
        node_aux: None,
    };
    assert!(forged.verify(&tree.root(), &left, Some(&right), MAX_LEVELS).is_err());
    assert!(forged.verify(&tree.root(), &fr(1), Some(&fr(10)), MAX_LEVELS).is_err());
}

#[test]
fn claims_must_match_the_proof_kind() {
    let tree = sample_tree();
    let member = tree.prove(&fr(4)).unwrap();
    assert_eq!(
        member.proof.verify(&tree.root(), &fr(4), None, MAX_LEVELS),
        Err(VerifyError::ProvesPresence)
    );
    let absent = tree.prove(&fr(99)).unwrap();
    assert!(!absent.proof.existence);
    absent.proof.verify(&tree.root(), &fr(99), None, MAX_LEVELS).unwrap();
    assert_eq!(
        absent.proof.verify(&tree.root(), &fr(99), Some(&fr(0)), MAX_LEVELS),
        Err(VerifyError::ProvesAbsence)
    );
    let with_aux = Proof {
        node_aux: Some(NodeAux {
            key: fr(1),
            value: fr(1),
        }),
        ..member.proof.clone()
    };
    assert_eq!(
        with_aux.verify(&tree.root(), &fr(4), Some(&fr(40)), MAX_LEVELS),
        Err(VerifyError::AuxInMembershipProof)
    );
}

#[test]
fn non_canonical_field_elements_are_refused_by_decoders() {
    let tree = sample_tree();
    let member = tree.prove(&fr(7)).unwrap();
    let mut bytes = member.proof.to_compact().unwrap();
    // Overwrite the first sibling with r itself.
    let modulus: BigInt<4> = Fr::MODULUS;
    let r_bytes: Vec<u8> = modulus.0.iter().flat_map(|l| l.to_le_bytes()).collect();
    bytes[32..64].copy_from_slice(&r_bytes);
    assert_eq!(
        Proof::from_compact(&bytes),
        Err(DecodeError::Field(FieldError::NotCanonical))
    );

    use rustorium_core::field::fr_from_decimal;
    let r = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
    assert_eq!(fr_from_decimal(r), Err(FieldError::NotCanonical));
    for bad in ["", "-1", "0x1", "01", " 1", "1 ", "1e3", "+1", &"9".repeat(79)] {
        assert!(fr_from_decimal(bad).is_err(), "{bad:?}");
    }
    assert_eq!(fr_from_decimal("0"), Ok(Fr::zero()));
    assert_eq!(fr_from_decimal(&(-Fr::from(1u64)).to_string()), Ok(-Fr::from(1u64)));
}

#[test]
fn every_single_bit_flip_of_an_encoded_proof_fails() {
    // Keys 1 and 9 share three low bits, so key 3 ends at an empty slot beside
    // their subtree and key 6 ends at leaf 2.
    let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
    for k in [1u64, 9, 2, 4] {
        tree.insert(fr(k), fr(10 * k)).unwrap();
    }
    let root = tree.root();
    // A membership proof, an absence at an empty slot, an absence at another leaf.
    let absent: Vec<_> = [3u64, 6].into_iter().map(|k| tree.prove(&fr(k)).unwrap()).collect();
    let at_empty = absent
        .iter()
        .find(|l| l.proof.node_aux.is_none())
        .expect("some key ends at an empty slot")
        .clone();
    let at_leaf = absent
        .iter()
        .find(|l| l.proof.node_aux.is_some())
        .expect("some key ends at another leaf")
        .clone();
    let mut cases = vec![tree.prove(&fr(9)).unwrap(), at_empty, at_leaf];
    let mut singleton = MemoryTree::new(MAX_LEVELS).unwrap();
    singleton.insert(fr(6), fr(60)).unwrap();
    assert!(cases.iter().any(|c| !c.proof.existence && c.proof.node_aux.is_none()));
    assert!(cases.iter().any(|c| c.proof.node_aux.is_some()));
    let mut flips = 0;
    for lookup in cases.drain(..) {
        let bytes = lookup.proof.to_compact().unwrap();
        lookup
            .proof
            .verify(&root, &lookup.key, lookup.value.as_ref(), MAX_LEVELS)
            .unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                if let Ok(decoded) = Proof::from_compact(&flipped) {
                    let value = if decoded.existence {
                        lookup.value.or(Some(Fr::zero()))
                    } else {
                        None
                    };
                    assert!(
                        decoded.verify(&root, &lookup.key, value.as_ref(), MAX_LEVELS).is_err(),
                        "byte {i} bit {bit} still verifies"
                    );
                }
                flips += 1;
            }
        }
    }
    assert!(flips >= 3 * 8 * 64, "{flips} flips");
    // Root-level nodes: a lone leaf at the root, and the empty tree.
    let lone = singleton.prove(&fr(6)).unwrap();
    assert!(lone.proof.siblings.is_empty());
    assert!(matches!(singleton.tree().root_node(), Node::Leaf(_)));
    lone.proof
        .verify(&singleton.root(), &fr(6), Some(&fr(60)), MAX_LEVELS)
        .unwrap();
    let empty = MemoryTree::new(MAX_LEVELS).unwrap().prove(&fr(6)).unwrap();
    assert_eq!(
        hex::encode(empty.proof.to_compact().unwrap()),
        format!("01{}", "00".repeat(31))
    );
    assert_eq!(compute_root(&empty.proof, &fr(6), None, MAX_LEVELS), Ok(Fr::zero()));
}
