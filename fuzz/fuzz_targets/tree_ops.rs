//! Sequences of puts and deletes on a small pool of keys that share many low
//! (path) bits, applied to `MemoryTree`s one op at a time, in fuzz-chosen
//! batches, and as one batch, against a `BTreeMap` model:
//! - an op or batch fails with `MaxLevelsReached` exactly when the resulting
//!   key set would hold two keys sharing `max_levels - 1` path bits, and a
//!   failure changes neither the root nor the stored pages;
//! - trees holding the same entries have the same root and the same pages,
//!   whatever history led there (also against a tree built in one batch);
//! - every key's proof verifies against the root and round-trips its encodings.
#![no_main]

use arbitrary::Arbitrary;
use ark_ff::{Field, PrimeField};
use libfuzzer_sys::fuzz_target;
use rustorium_core::Fr;
use rustorium_core::tree::{MemoryTree, Op, TreeError};
use rustorium_fuzz::check_encodings;
use std::collections::BTreeMap;

const POOL: usize = 8;
const MAX_OPS: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    /// `1 + max_levels % 64`.
    max_levels: u8,
    /// Keys are `pool[i] * 2^shift + common_low`, sharing `shift` low bits.
    shift: u8,
    common_low: u64,
    pool: [u64; POOL],
    ops: Vec<RawOp>,
}

#[derive(Arbitrary, Debug)]
struct RawOp {
    key: u8,
    /// `None` deletes.
    value: Option<u8>,
    /// Ends the current batch after this op (for the batched tree).
    end_batch: bool,
}

type Model = BTreeMap<Fr, Fr>;

fn apply_to_model(model: &mut Model, op: &Op) {
    match op.value {
        Some(value) => model.insert(op.key, value),
        None => model.remove(&op.key),
    };
}

/// Path bits two distinct keys share, from the root.
fn shared_bits(a: &Fr, b: &Fr) -> u32 {
    let (a, b) = (a.into_bigint(), b.into_bigint());
    let mut shared = 0;
    for (x, y) in a.0.iter().zip(b.0.iter()) {
        let diff = x ^ y;
        if diff != 0 {
            return shared + diff.trailing_zeros();
        }
        shared += 64;
    }
    shared
}

/// Whether a tree with these keys would need a leaf deeper than `max_levels - 1`.
fn too_deep(model: &Model, max_levels: u16) -> bool {
    let keys: Vec<&Fr> = model.keys().collect();
    keys.iter().enumerate().any(|(i, a)| {
        keys[i + 1..]
            .iter()
            .any(|b| shared_bits(a, b) >= u32::from(max_levels) - 1)
    })
}

/// Applies a batch to a tree and its model; checks success or failure.
fn apply_checked(tree: &mut MemoryTree, model: &mut Model, ops: &[Op], max_levels: u16) {
    let mut next = model.clone();
    for op in ops {
        apply_to_model(&mut next, op);
    }
    let root_before = tree.root();
    let pages_before = tree.store().len();
    let result = if let [op] = ops {
        // Cover the single-op conveniences too.
        match op.value {
            Some(value) => tree.insert(op.key, value),
            None => tree.delete(op.key),
        }
    } else {
        tree.apply(ops).map(|update| {
            assert_eq!(update.root.hash(), tree.root());
        })
    };
    match result {
        Ok(()) => {
            assert!(
                !too_deep(&next, max_levels),
                "batch accepted but its keys need more than {max_levels} levels"
            );
            *model = next;
        }
        Err(TreeError::MaxLevelsReached { max_levels: reported }) => {
            assert_eq!(reported, max_levels);
            assert!(
                too_deep(&next, max_levels),
                "MaxLevelsReached for keys that fit {max_levels} levels"
            );
            assert_eq!(tree.root(), root_before, "a failed batch changed the root");
            assert_eq!(tree.store().len(), pages_before);
        }
        Err(e) => panic!("unexpected tree error {e:?}"),
    }
}

fn assert_same_tree(a: &MemoryTree, b: &MemoryTree, what: &str) {
    assert_eq!(a.root(), b.root(), "{what}: roots differ");
    assert!(a.store().iter().eq(b.store().iter()), "{what}: pages differ");
}

fuzz_target!(|input: Input| {
    let max_levels = 1 + u16::from(input.max_levels % 64);
    let shift = u64::from(input.shift % 72);
    let low_mask = if shift >= 64 { u64::MAX } else { (1u64 << shift) - 1 };
    let scale = Fr::from(2u64).pow([shift]);
    let low = Fr::from(input.common_low & low_mask);
    // At most 2^64 * 2^71 + 2^64 < r: the path bits are the integer's bits.
    let keys: Vec<Fr> = input.pool.iter().map(|&high| Fr::from(high) * scale + low).collect();
    let ops: Vec<(Op, bool)> = input
        .ops
        .iter()
        .take(MAX_OPS)
        .map(|raw| {
            let key = keys[usize::from(raw.key) % POOL];
            let op = match raw.value {
                Some(v) => Op::put(key, Fr::from(u64::from(v))),
                None => Op::delete(key),
            };
            (op, raw.end_batch)
        })
        .collect();

    // One op at a time.
    let mut single = MemoryTree::new(max_levels).expect("1..=64 is valid");
    let mut single_model = Model::new();
    for (op, _) in &ops {
        apply_checked(&mut single, &mut single_model, core::slice::from_ref(op), max_levels);
    }

    // Fuzz-chosen batches.
    let mut batched = MemoryTree::new(max_levels).expect("1..=64 is valid");
    let mut batched_model = Model::new();
    let mut start = 0;
    for (i, (_, end_batch)) in ops.iter().enumerate() {
        if *end_batch || i + 1 == ops.len() {
            let batch: Vec<Op> = ops[start..=i].iter().map(|(op, _)| *op).collect();
            apply_checked(&mut batched, &mut batched_model, &batch, max_levels);
            start = i + 1;
        }
    }

    // All ops as one batch.
    let all: Vec<Op> = ops.iter().map(|(op, _)| *op).collect();
    let mut whole = MemoryTree::new(max_levels).expect("1..=64 is valid");
    let mut whole_model = Model::new();
    apply_checked(&mut whole, &mut whole_model, &all, max_levels);

    if single_model == batched_model {
        assert_same_tree(&single, &batched, "one by one vs batches");
    }
    if single_model == whole_model {
        assert_same_tree(&single, &whole, "one by one vs one batch");
    }

    // History independence: the same entries inserted in one batch.
    let fresh_ops: Vec<Op> = batched_model.iter().map(|(k, v)| Op::put(*k, *v)).collect();
    let mut fresh = MemoryTree::new(max_levels).expect("1..=64 is valid");
    fresh.apply(&fresh_ops).expect("a model the tree accepted fits");
    assert_same_tree(&batched, &fresh, "batches vs fresh tree");

    // Deleting everything empties the tree and its store.
    let deletes: Vec<Op> = batched_model.keys().map(|k| Op::delete(*k)).collect();
    fresh.apply(&deletes).expect("deletes never fail");
    assert_eq!(fresh.root(), Fr::from(0u64));
    assert!(fresh.store().is_empty(), "pages left after deleting every key");

    // Proofs for every pool key.
    let root = batched.root();
    let lookups = batched.prove_many(&keys).expect("memory store holds every page");
    for (key, lookup) in keys.iter().zip(&lookups) {
        assert_eq!(lookup.key, *key);
        assert_eq!(lookup.value, batched_model.get(key).copied());
        assert!(lookup.proof.depth() < usize::from(max_levels));
        assert_eq!(
            lookup.proof.verify(&root, key, lookup.value.as_ref(), max_levels),
            Ok(())
        );
        check_encodings(&lookup.proof);
    }
});
