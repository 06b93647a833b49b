//! Helpers shared by the fuzz targets: turning fuzz bytes into field elements
//! and the properties every proof must keep, whatever its origin.

use ark_ff::{BigInt, PrimeField};
use rustorium_core::Fr;
use rustorium_core::proof::compact::{DecodeError, EncodeError, MAX_COMPACT_DEPTH};
use rustorium_core::proof::json::{Iden3ProofJson, JsonProofError, SmtVerifierInputsJson};
use rustorium_core::proof::{Proof, VerifyError, compute_root};

/// Any bytes as a field element (little-endian, reduced mod r).
pub fn fr(bytes: &[u8]) -> Fr {
    Fr::from_le_bytes_mod_order(bytes)
}

/// The 32 bytes of `data` starting at `offset`, wrapping around (zeros if empty).
pub fn window(data: &[u8], offset: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    if !data.is_empty() {
        for (i, b) in out.iter_mut().enumerate() {
            *b = data[(offset + i) % data.len()];
        }
    }
    out
}

/// `key` with path bit `depth` flipped, if that is still a field element: a
/// key whose path follows `key`'s for `depth` bits and then leaves it.
pub fn flip_bit(key: &Fr, depth: usize) -> Option<Fr> {
    if depth >= 256 {
        return None;
    }
    let mut limbs = key.into_bigint();
    limbs.0[depth / 64] ^= 1 << (depth % 64);
    Fr::from_bigint(BigInt::new(limbs.0))
}

/// Checks a proof against a statement and its encodings: nothing panics,
/// `verify` agrees with `compute_root`, a computed root verifies, and every
/// encoding that accepts the proof decodes back to it.
pub fn check_proof(proof: &Proof, root: &Fr, key: &Fr, value: Option<&Fr>, max_levels: u16) {
    let computed = compute_root(proof, key, value, max_levels);
    let verified = proof.verify(root, key, value, max_levels);
    match computed {
        Ok(computed) if computed == *root => assert_eq!(verified, Ok(())),
        Ok(_) => assert_eq!(verified, Err(VerifyError::RootMismatch)),
        Err(e) => assert_eq!(verified, Err(e)),
    }
    if computed.is_ok() {
        // The structural checks passed, so the proof is at most 254 deep.
        assert!(proof.depth() < 255);
    }
    check_encodings(proof);
    // circom inputs: a few levels past the minimum, never panicking.
    let n_levels = proof.depth() + usize::from(max_levels % 4);
    if let Ok(inputs) = proof.to_circom(root, key, value, n_levels) {
        assert_eq!(inputs.siblings.len(), n_levels);
        assert_eq!(&inputs.siblings[..proof.depth()], &proof.siblings[..]);
        let json = SmtVerifierInputsJson::from(&inputs);
        assert_eq!(json.siblings.len(), n_levels);
    }
}

/// The compact and JSON forms give the proof back exactly, where they accept it.
pub fn check_encodings(proof: &Proof) {
    let contradictory = proof.existence && proof.node_aux.is_some();
    match proof.to_compact() {
        Ok(bytes) => {
            assert!(proof.depth() <= MAX_COMPACT_DEPTH);
            let decoded = Proof::from_compact(&bytes);
            if contradictory {
                assert_eq!(decoded, Err(DecodeError::AuxInMembershipProof));
            } else {
                assert_eq!(decoded.as_ref(), Ok(proof));
            }
        }
        Err(EncodeError::TooDeep { depth }) => {
            assert_eq!(depth, proof.depth());
            assert!(depth > MAX_COMPACT_DEPTH);
        }
        Err(e) => panic!("unexpected encode error {e:?}"),
    }
    let json = Iden3ProofJson::from(proof);
    let back = Proof::try_from(&json);
    if contradictory {
        assert_eq!(back, Err(JsonProofError::AuxInMembershipProof));
    } else {
        assert_eq!(back.as_ref(), Ok(proof));
    }
    let text = serde_json::to_string(&json).expect("serializing strings and bools cannot fail");
    let reparsed: Iden3ProofJson = serde_json::from_str(&text).expect("our own JSON parses");
    assert_eq!(reparsed, json);
}

/// Runs [`check_proof`] on statements derived from `data`: an arbitrary one,
/// and ones built to pass the structural checks (so the hash chain runs and a
/// computed root must verify).
pub fn check_proof_against(proof: &Proof, data: &[u8]) {
    let root = fr(&window(data, 0));
    let key = fr(&window(data, 7));
    let value = fr(&window(data, 13));
    let levels_byte = data.first().copied().unwrap_or(0);
    let arbitrary_levels = u16::from_le_bytes([data.get(1).copied().unwrap_or(0), data.last().copied().unwrap_or(0)]);
    // Just enough levels for this depth, plus a little.
    let fitting_levels = u16::try_from(proof.depth() + 1 + usize::from(levels_byte % 3)).unwrap_or(u16::MAX);
    let claimed = proof.existence.then_some(&value);

    check_proof(proof, &root, &key, claimed, arbitrary_levels);
    check_proof(proof, &root, &key, claimed, fitting_levels);

    // A statement that can pass: the aux key's path followed, then left at the
    // proof's depth, for a non-membership proof ending at a leaf.
    let on_path_key = match &proof.node_aux {
        Some(aux) if !proof.existence => flip_bit(&aux.key, proof.depth()),
        _ => None,
    };
    let key = on_path_key.unwrap_or(key);
    if let Ok(computed) = compute_root(proof, &key, claimed, fitting_levels) {
        assert_eq!(proof.verify(&computed, &key, claimed, fitting_levels), Ok(()));
        // The opposite claim is refused before any hashing.
        let opposite = if proof.existence { None } else { Some(&value) };
        assert!(proof.verify(&computed, &key, opposite, fitting_levels).is_err());
    }
}
