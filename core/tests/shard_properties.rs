//! Sharding against the unsharded tree: for any entries and any shard cut
//! (1 to 16 shards), the shards' sub-roots combine to exactly the unsharded
//! root, and every shard proof (membership and non-membership) extends to
//! exactly the unsharded tree's proof, which verifies against that root.

use proptest::prelude::*;
use rustorium_core::Fr;
use rustorium_core::tree::shard::{Prefix, ShardError, TopTree, shard_of, shard_probe, sub_root};
use rustorium_core::tree::{MemoryTree, Node, Op};
use std::collections::BTreeMap;

const MAX_LEVELS: u16 = 64;

/// Small keys share long low-bit prefixes (deep leaves, lone leaves in a
/// shard, empty shards); wide keys spread over every shard.
fn arb_key() -> impl Strategy<Value = Fr> {
    prop_oneof![
        (0u64..64).prop_map(|i| Fr::from(i << 20 | 0b0110)),
        (0u64..40).prop_map(Fr::from),
        any::<u64>().prop_map(Fr::from),
    ]
}

fn sharded(entries: &BTreeMap<Fr, Fr>, bits: u8) -> (Vec<MemoryTree>, TopTree) {
    let mut shards: Vec<MemoryTree> = (0..1usize << bits)
        .map(|_| MemoryTree::new(MAX_LEVELS).unwrap())
        .collect();
    for (key, value) in entries {
        shards[shard_of(key, bits)].apply(&[Op::put(*key, *value)]).unwrap();
    }
    let sub_roots: Vec<Node> = shards
        .iter()
        .enumerate()
        .map(|(index, shard)| {
            let probe = shard_probe(index, bits);
            let lookup = shard.prove(&probe).unwrap();
            sub_root(&lookup.proof, &probe, lookup.value.as_ref(), bits).unwrap()
        })
        .collect();
    (shards, TopTree::combine(bits, &sub_roots).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn shards_combine_to_the_unsharded_tree(
        entries in prop::collection::btree_map(arb_key(), any::<u64>().prop_map(Fr::from), 0..40),
        absent in prop::collection::vec(arb_key(), 0..6),
        bits in 0u8..=4,
    ) {
        let mut whole = MemoryTree::new(MAX_LEVELS).unwrap();
        let ops: Vec<Op> = entries.iter().map(|(k, v)| Op::put(*k, *v)).collect();
        whole.apply(&ops).unwrap();
        let (shards, top) = sharded(&entries, bits);
        prop_assert_eq!(top.root().hash(), whole.root());

        for key in entries.keys().chain(&absent) {
            let shard = &shards[shard_of(key, bits)];
            let local = shard.prove(key).unwrap();
            let global = top.extend(&local.proof, key).unwrap();
            let expected = whole.prove(key).unwrap();
            prop_assert_eq!(&global, &expected.proof, "proof of {:?}", key);
            prop_assert_eq!(local.value, expected.value);
            global.verify(&whole.root(), key, expected.value.as_ref(), MAX_LEVELS).unwrap();
        }
    }
}

/// A cut made by splitting shards at random, as a hot shard would be.
fn arb_cut() -> impl Strategy<Value = Vec<Prefix>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..8).prop_map(|picks| {
        let mut cut = vec![Prefix::ROOT];
        for pick in picks {
            let splittable: Vec<usize> = (0..cut.len()).filter(|i| cut[*i].depth < 5).collect();
            if splittable.is_empty() {
                break;
            }
            let prefix = cut.remove(splittable[pick.index(splittable.len())]);
            cut.extend(prefix.children());
        }
        cut
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_cut_combines_to_the_unsharded_tree(
        entries in prop::collection::btree_map(arb_key(), any::<u64>().prop_map(Fr::from), 0..40),
        absent in prop::collection::vec(arb_key(), 0..4),
        cut in arb_cut(),
    ) {
        let mut whole = MemoryTree::new(MAX_LEVELS).unwrap();
        let ops: Vec<Op> = entries.iter().map(|(k, v)| Op::put(*k, *v)).collect();
        whole.apply(&ops).unwrap();
        let mut shards: Vec<MemoryTree> = cut.iter().map(|_| MemoryTree::new(MAX_LEVELS).unwrap()).collect();
        for (key, value) in &entries {
            let at = cut.iter().position(|p| p.contains(key)).unwrap();
            shards[at].apply(&[Op::put(*key, *value)]).unwrap();
        }
        let sub_roots = cut.iter().zip(&shards).map(|(prefix, shard)| {
            let probe = prefix.probe();
            let lookup = shard.prove(&probe).unwrap();
            (*prefix, sub_root(&lookup.proof, &probe, lookup.value.as_ref(), prefix.depth).unwrap())
        });
        let top = TopTree::from_cut(sub_roots).unwrap();
        prop_assert_eq!(top.root().hash(), whole.root());
        for key in entries.keys().chain(&absent) {
            let at = cut.iter().position(|p| p.contains(key)).unwrap();
            prop_assert_eq!(top.shard_for(key), Some(cut[at]));
            let local = shards[at].prove(key).unwrap();
            let global = top.extend(&local.proof, key).unwrap();
            prop_assert_eq!(&global, &whole.prove(key).unwrap().proof);
        }
    }
}

#[test]
fn cuts_with_gaps_or_overlaps_are_refused() {
    let [left, right] = Prefix::ROOT.children();
    let [left_left, _] = left.children();
    let gap = [(left_left, Node::Empty), (right, Node::Empty)];
    assert_eq!(TopTree::from_cut(gap), Err(ShardError::NotACut));
    let overlap = [(left, Node::Empty), (left_left, Node::Empty), (right, Node::Empty)];
    assert_eq!(TopTree::from_cut(overlap), Err(ShardError::NotACut));
    assert_eq!(left_left.parent(), Some(left));
    assert_eq!(Prefix::ROOT.parent(), None);
}

#[test]
fn a_proof_from_the_wrong_shard_is_refused() {
    let entries: BTreeMap<Fr, Fr> = (0..20u64).map(|i| (Fr::from(i * 3), Fr::from(i))).collect();
    let (shards, top) = sharded(&entries, 2);
    // Key 0 lives in shard 0; a proof from shard 1's tree is not its proof.
    let key = Fr::from(0u64);
    let wrong = shards[1].prove(&key).unwrap();
    let extended = top.extend(&wrong.proof, &key);
    match extended {
        Err(ShardError::NotAShardProof) => {}
        Ok(proof) => assert!(
            proof
                .verify(&top.root().hash(), &key, Some(&Fr::from(0u64)), MAX_LEVELS)
                .is_err(),
            "a foreign proof never verifies for the key"
        ),
        Err(other) => panic!("{other}"),
    }
    assert_eq!(
        TopTree::combine(2, &[Node::Empty; 3]),
        Err(ShardError::WrongShardCount { expected: 4, got: 3 })
    );
    assert_eq!(TopTree::combine(9, &[]), Err(ShardError::TooManyBits { bits: 9 }));
}
