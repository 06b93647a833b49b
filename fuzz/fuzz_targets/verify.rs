//! Structured proofs (any depth up to 300, any siblings, optional aux leaf,
//! any `max_levels`): `compute_root` and `verify` never panic and agree, and
//! a proof's encodings give it back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rustorium_core::Fr;
use rustorium_core::proof::{NodeAux, Proof, compute_root};
use rustorium_fuzz::{check_proof, flip_bit, fr};

const MAX_SIBLINGS: usize = 300;

#[derive(Arbitrary, Debug)]
struct Input {
    existence: bool,
    /// `None` is an empty (zero) sibling.
    siblings: Vec<Option<[u8; 32]>>,
    aux: Option<([u8; 32], [u8; 32])>,
    max_levels: u16,
    /// Use `depth + 1 + max_levels % 4` instead, so the depth checks pass.
    fit_levels: bool,
    key: [u8; 32],
    /// For a non-membership proof with an aux leaf: derive the key from the
    /// aux key so that it follows the aux path down to the proof's depth.
    key_on_aux_path: bool,
    value: Option<[u8; 32]>,
    root: [u8; 32],
    /// Verify against the computed root (which must pass) instead of `root`.
    use_computed_root: bool,
}

fuzz_target!(|input: Input| {
    let siblings: Vec<Fr> = input
        .siblings
        .iter()
        .take(MAX_SIBLINGS)
        .map(|s| s.map_or(Fr::from(0u64), |bytes| fr(&bytes)))
        .collect();
    let node_aux = input.aux.map(|(key, value)| NodeAux {
        key: fr(&key),
        value: fr(&value),
    });
    let proof = Proof {
        existence: input.existence,
        siblings,
        node_aux,
    };
    let max_levels = if input.fit_levels {
        u16::try_from(proof.depth() + 1 + usize::from(input.max_levels % 4)).unwrap_or(u16::MAX)
    } else {
        input.max_levels
    };
    let mut key = fr(&input.key);
    if input.key_on_aux_path
        && let Some(aux) = &proof.node_aux
        && let Some(k) = flip_bit(&aux.key, proof.depth())
    {
        key = k;
    }
    let value = input.value.map(|v| fr(&v));
    let mut root = fr(&input.root);
    if input.use_computed_root
        && let Ok(computed) = compute_root(&proof, &key, value.as_ref(), max_levels)
    {
        root = computed;
        assert_eq!(proof.verify(&root, &key, value.as_ref(), max_levels), Ok(()));
    }
    check_proof(&proof, &root, &key, value.as_ref(), max_levels);
});
