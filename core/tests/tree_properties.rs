//! Properties of the tree against a BTreeMap model: batches equal one-by-one
//! application, order never matters (same root and same stored pages), deletes
//! restore the tree that never held the key, every proof verifies and any
//! changed sibling fails, and max_levels is an error that changes nothing.

use proptest::prelude::*;
use rustorium_core::Fr;
use rustorium_core::tree::{MemoryTree, Op, PageId, TreeError};
use std::collections::BTreeMap;

const MAX_LEVELS: u16 = 64;

/// Keys from a mix of small integers (shared long low-bit prefixes and deep
/// leaves) and full-range elements.
fn arb_key() -> impl Strategy<Value = Fr> {
    prop_oneof![
        (0u64..64).prop_map(|i| Fr::from(i << 24 | 0b1011)),
        (0u64..32).prop_map(Fr::from),
        any::<[u8; 31]>().prop_map(|b| {
            let mut wide = [0u8; 32];
            wide[..31].copy_from_slice(&b);
            ark_ff::PrimeField::from_le_bytes_mod_order(&wide)
        }),
    ]
}

fn arb_value() -> impl Strategy<Value = Fr> {
    prop_oneof![
        Just(Fr::from(0u64)),
        Just(-Fr::from(1u64)),
        any::<u64>().prop_map(Fr::from)
    ]
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (arb_key(), prop::option::weighted(0.8, arb_value())).prop_map(|(key, value)| Op { key, value }),
        0..80,
    )
}

fn model(ops: &[Op]) -> BTreeMap<[u8; 32], (Fr, Fr)> {
    let mut map = BTreeMap::new();
    for op in ops {
        let id = rustorium_core::field::fr_to_le_bytes(&op.key);
        match op.value {
            Some(v) => map.insert(id, (op.key, v)),
            None => map.remove(&id),
        };
    }
    map
}

fn pages(tree: &MemoryTree) -> Vec<(PageId, Vec<u8>)> {
    tree.store().iter().map(|(id, page)| (*id, page.encode())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_equals_one_by_one_and_fresh_build(ops in arb_ops(), split in 0usize..80) {
        let mut batched = MemoryTree::new(MAX_LEVELS).unwrap();
        let split = split.min(ops.len());
        batched.apply(&ops[..split]).unwrap();
        batched.apply(&ops[split..]).unwrap();

        let mut single = MemoryTree::new(MAX_LEVELS).unwrap();
        for op in &ops {
            single.apply(std::slice::from_ref(op)).unwrap();
        }
        prop_assert_eq!(batched.root(), single.root());
        prop_assert_eq!(pages(&batched), pages(&single));

        // A tree that only ever saw the final entries, inserted in reverse order.
        let final_entries = model(&ops);
        let mut fresh = MemoryTree::new(MAX_LEVELS).unwrap();
        for (key, value) in final_entries.values().rev() {
            fresh.insert(*key, *value).unwrap();
        }
        prop_assert_eq!(fresh.root(), batched.root());
        prop_assert_eq!(pages(&fresh), pages(&batched));
        prop_assert!(batched.store().iter().all(|(_, page)| !page.is_empty()));
    }

    #[test]
    fn proofs_verify_and_tampering_fails(ops in arb_ops(), probes in prop::collection::vec(arb_key(), 1..10)) {
        let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
        tree.apply(&ops).unwrap();
        let entries = model(&ops);
        let root = tree.root();
        let keys: Vec<Fr> = entries.values().map(|(k, _)| *k).chain(probes).collect();
        for lookup in tree.prove_many(&keys).unwrap() {
            let expected = entries.get(&rustorium_core::field::fr_to_le_bytes(&lookup.key)).map(|(_, v)| *v);
            prop_assert_eq!(lookup.value, expected);
            lookup.proof.verify(&root, &lookup.key, expected.as_ref(), MAX_LEVELS).unwrap();
            for i in 0..lookup.proof.siblings.len() {
                let mut forged = lookup.proof.clone();
                forged.siblings[i] += Fr::from(1u64);
                prop_assert!(forged.verify(&root, &lookup.key, expected.as_ref(), MAX_LEVELS).is_err());
            }
            if let Some(value) = expected {
                let other = value + Fr::from(1u64);
                prop_assert!(lookup.proof.verify(&root, &lookup.key, Some(&other), MAX_LEVELS).is_err());
                prop_assert!(lookup.proof.verify(&root, &lookup.key, None, MAX_LEVELS).is_err());
            }
        }
    }

    #[test]
    fn delete_restores_the_tree_without_the_key(ops in arb_ops(), extra in arb_key(), value in arb_value()) {
        let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
        tree.apply(&ops).unwrap();
        tree.delete(extra).unwrap();
        let (root, before) = (tree.root(), pages(&tree));
        tree.insert(extra, value).unwrap();
        tree.delete(extra).unwrap();
        prop_assert_eq!(tree.root(), root);
        prop_assert_eq!(pages(&tree), before);
    }
}

#[test]
fn max_levels_is_an_error_and_changes_nothing() {
    let mut tree = MemoryTree::new(4).unwrap();
    // 0b0001 and 0b1001 share the first 3 bits: they would need depth 4.
    tree.insert(Fr::from(0b0001u64), Fr::from(1u64)).unwrap();
    tree.insert(Fr::from(0b0010u64), Fr::from(2u64)).unwrap();
    let (root, before) = (tree.root(), pages(&tree));
    let err = tree.apply(&[
        Op::put(Fr::from(0b0100u64), Fr::from(3u64)),
        Op::put(Fr::from(0b1001u64), Fr::from(4u64)),
    ]);
    assert_eq!(err.unwrap_err(), TreeError::MaxLevelsReached { max_levels: 4 });
    assert_eq!(tree.root(), root);
    assert_eq!(pages(&tree), before);
    // Depth 3 is allowed: 0b0001 and 0b0101 part at bit 2.
    tree.insert(Fr::from(0b0101u64), Fr::from(5u64)).unwrap();
    let lookup = tree.prove(&Fr::from(0b0101u64)).unwrap();
    assert_eq!(lookup.proof.depth(), 3);
    lookup
        .proof
        .verify(&tree.root(), &Fr::from(0b0101u64), Some(&Fr::from(5u64)), 4)
        .unwrap();
}

#[test]
fn invalid_max_levels_is_refused() {
    assert!(matches!(
        MemoryTree::new(0),
        Err(TreeError::InvalidMaxLevels { max_levels: 0 })
    ));
    assert!(matches!(
        MemoryTree::new(256),
        Err(TreeError::InvalidMaxLevels { max_levels: 256 })
    ));
    assert!(MemoryTree::new(255).is_ok());
}

#[test]
fn keys_sharing_253_bits_reach_depth_253() {
    let mut tree = MemoryTree::new(255).unwrap();
    let low = Fr::from(5u64);
    let high = low + <Fr as ark_ff::PrimeField>::from_bigint(ark_ff::BigInt::new([0, 0, 0, 1 << 61])).unwrap();
    tree.insert(low, Fr::from(1u64)).unwrap();
    tree.insert(high, Fr::from(2u64)).unwrap();
    let lookup = tree.prove(&high).unwrap();
    assert_eq!(lookup.proof.depth(), 254);
    lookup
        .proof
        .verify(&tree.root(), &high, Some(&Fr::from(2u64)), 255)
        .unwrap();
    assert!(
        lookup.proof.to_compact().is_err(),
        "the compact form stops at 240 levels"
    );
}

/// A batch big enough that, with the `parallel` feature, the update splits
/// across threads (both halves of a split need 32 entries) and the pages are
/// written on several threads: it must still equal applying the ops one by
/// one, page for page. Updates, deletes and new keys, over an existing tree.
#[test]
fn a_large_mixed_batch_equals_one_by_one() {
    use ark_ff::UniformRand;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let initial: Vec<Op> = (0..1500)
        .map(|_| Op::put(Fr::rand(&mut rng), Fr::rand(&mut rng)))
        .collect();
    let mut base = MemoryTree::new(MAX_LEVELS).unwrap();
    base.apply(&initial).unwrap();

    let mut batch: Vec<Op> = initial
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match i % 3 {
            0 => Some(Op::put(op.key, Fr::rand(&mut rng))),
            1 => Some(Op::delete(op.key)),
            _ => None,
        })
        .collect();
    batch.extend((0..800).map(|_| Op::put(Fr::rand(&mut rng), Fr::rand(&mut rng))));

    let mut batched = base.clone();
    let update = batched.apply(&batch).unwrap();
    let mut single = base.clone();
    for op in &batch {
        single.apply(std::slice::from_ref(op)).unwrap();
    }
    assert_eq!(batched.root(), single.root());
    assert_eq!(pages(&batched), pages(&single));
    let ids: Vec<PageId> = update.pages.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "changed pages come sorted by id, once each"
    );
    assert_eq!(batched.store().len(), single.store().len());
}
