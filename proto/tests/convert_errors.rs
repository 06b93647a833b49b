//! Every way `TryFrom<&v1::Proof>` and `fr_from_bytes` refuse input, each
//! naming the bad field.

use rustorium_core::Fr;
use rustorium_core::field::FieldError;
use rustorium_core::proof::Proof;
use rustorium_core::proof::compact::DecodeError;
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_proto::convert::MAX_SIBLINGS;
use rustorium_proto::{ConvertError, fr_from_bytes, fr_to_bytes, v1};

/// The BN254 scalar modulus r, little-endian: the smallest non-canonical value.
const MODULUS_LE: [u8; 32] = [
    1, 0, 0, 240, 147, 245, 225, 67, 145, 112, 185, 121, 72, 232, 51, 40, 93, 88, 129, 129, 182, 69, 80, 184, 41, 160,
    49, 225, 114, 78, 100, 48,
];

/// A tree with membership proofs, aux absence proofs and empty-slot absence
/// proofs of depth > 0.
fn tree() -> MemoryTree {
    let mut tree = MemoryTree::new(64).unwrap();
    let ops: Vec<Op> = (1..=16u64).map(|k| Op::put(Fr::from(k * 4), Fr::from(k))).collect();
    tree.apply(&ops).unwrap();
    tree
}

fn present() -> v1::Proof {
    let proof = tree().prove(&Fr::from(8u64)).unwrap().proof;
    assert!(proof.existence && proof.depth() >= 2);
    v1::Proof::from(&proof)
}

fn absent_with_aux() -> v1::Proof {
    let tree = tree();
    (1..1000u64)
        .map(|k| tree.prove(&Fr::from(k)).unwrap().proof)
        .find(|p| p.node_aux.is_some() && p.depth() >= 1)
        .map(|p| v1::Proof::from(&p))
        .expect("an absence proof ending at another leaf")
}

fn absent_at_empty_slot() -> v1::Proof {
    let tree = tree();
    (1..1000u64)
        .map(|k| tree.prove(&Fr::from(k)).unwrap().proof)
        .find(|p| !p.existence && p.node_aux.is_none() && p.depth() >= 1)
        .map(|p| v1::Proof::from(&p))
        .expect("an absence proof ending at an empty slot")
}

fn without_compact(message: v1::Proof) -> v1::Proof {
    v1::Proof {
        compact: Vec::new(),
        ..message
    }
}

fn err(message: &v1::Proof) -> ConvertError {
    Proof::try_from(message).unwrap_err()
}

#[test]
fn fixtures_are_valid() {
    for message in [present(), absent_with_aux(), absent_at_empty_slot()] {
        assert!(!message.compact.is_empty());
        Proof::try_from(&message).unwrap();
        Proof::try_from(&without_compact(message)).unwrap();
    }
}

#[test]
fn sibling_of_wrong_length_is_named_by_index() {
    for len in [0usize, 1, 31, 33, 64] {
        let mut message = without_compact(present());
        message.siblings[1] = vec![0; len];
        let error = err(&message);
        assert_eq!(
            error,
            ConvertError::Sibling {
                index: 1,
                source: FieldError::WrongLength { got: len }
            }
        );
        assert!(error.to_string().starts_with("siblings[1]: "), "{error}");
    }
}

#[test]
fn non_canonical_sibling_is_named_by_index() {
    for bytes in [MODULUS_LE.to_vec(), vec![0xff; 32]] {
        let mut message = without_compact(present());
        let last = message.siblings.len() - 1;
        message.siblings[last] = bytes;
        assert_eq!(
            err(&message),
            ConvertError::Sibling {
                index: last,
                source: FieldError::NotCanonical
            }
        );
    }
}

#[test]
fn bad_sibling_is_rejected_even_with_a_valid_compact_form() {
    let mut message = present();
    message.siblings[0] = MODULUS_LE.to_vec();
    assert!(matches!(err(&message), ConvertError::Sibling { index: 0, .. }));
}

#[test]
fn too_many_siblings() {
    let ok = v1::Proof {
        siblings: vec![vec![0; 32]; MAX_SIBLINGS],
        ..Default::default()
    };
    assert_eq!(Proof::try_from(&ok).unwrap().depth(), MAX_SIBLINGS);
    let message = v1::Proof {
        siblings: vec![vec![0; 32]; MAX_SIBLINGS + 1],
        ..Default::default()
    };
    assert_eq!(err(&message), ConvertError::TooManySiblings { got: 255, max: 254 });
}

#[test]
fn bad_aux_key_and_value_are_named() {
    let bad: [(Vec<u8>, FieldError); 3] = [
        (vec![1; 31], FieldError::WrongLength { got: 31 }),
        (Vec::new(), FieldError::WrongLength { got: 0 }),
        (MODULUS_LE.to_vec(), FieldError::NotCanonical),
    ];
    for (bytes, source) in bad {
        let mut message = without_compact(absent_with_aux());
        message.node_aux.as_mut().unwrap().key = bytes.clone();
        let error = err(&message);
        assert_eq!(error, ConvertError::AuxKey { source });
        assert!(error.to_string().starts_with("node_aux.key: "), "{error}");

        let mut message = without_compact(absent_with_aux());
        message.node_aux.as_mut().unwrap().value = bytes;
        let error = err(&message);
        assert_eq!(error, ConvertError::AuxValue { source });
        assert!(error.to_string().starts_with("node_aux.value: "), "{error}");
    }
}

#[test]
fn aux_in_membership_proof() {
    let mut message = without_compact(present());
    message.node_aux = Some(v1::NodeAux {
        key: fr_to_bytes(&Fr::from(3u64)),
        value: fr_to_bytes(&Fr::from(4u64)),
    });
    assert_eq!(err(&message), ConvertError::AuxInMembershipProof);
}

#[test]
fn invalid_compact_bytes() {
    // Alone, and beside valid structured fields.
    for base in [v1::Proof::default(), present()] {
        let cases = [
            (vec![0u8; 5], DecodeError::TooShort { got: 5 }),
            (
                {
                    let mut bytes = present().compact;
                    bytes[0] = 0x80;
                    bytes
                },
                DecodeError::UnknownFlags { flags: 0x80 },
            ),
            (
                {
                    let mut bytes = present().compact;
                    bytes.push(0);
                    bytes
                },
                DecodeError::WrongLength {
                    expected: present().compact.len(),
                    got: present().compact.len() + 1,
                },
            ),
        ];
        for (compact, source) in cases {
            let message = v1::Proof {
                compact,
                ..base.clone()
            };
            let error = err(&message);
            assert_eq!(error, ConvertError::Compact { source });
            assert!(error.to_string().starts_with("compact: "), "{error}");
        }
    }
}

#[test]
fn compact_disagreeing_on_existence() {
    // Structured says absent (empty slot), compact says present.
    let mut message = present();
    message.existence = false;
    assert_eq!(err(&message), ConvertError::CompactMismatch { field: "existence" });
    // And the other way round.
    let mut message = absent_at_empty_slot();
    message.existence = true;
    assert_eq!(err(&message), ConvertError::CompactMismatch { field: "existence" });
}

#[test]
fn compact_disagreeing_on_siblings() {
    let mut changed = present();
    changed.siblings[0] = fr_to_bytes(&Fr::from(12345u64));
    let mut shorter = present();
    shorter.siblings.pop();
    let mut longer = present();
    longer.siblings.push(fr_to_bytes(&Fr::from(1u64)));
    let mut zeroed = absent_with_aux();
    let last = zeroed.siblings.len() - 1;
    zeroed.siblings[last] = vec![0; 32];
    for message in [changed, shorter, longer, zeroed] {
        assert_eq!(err(&message), ConvertError::CompactMismatch { field: "siblings" });
    }
}

#[test]
fn compact_disagreeing_on_node_aux() {
    let mut changed_value = absent_with_aux();
    changed_value.node_aux.as_mut().unwrap().value = fr_to_bytes(&Fr::from(999u64));
    let mut changed_key = absent_with_aux();
    changed_key.node_aux.as_mut().unwrap().key = fr_to_bytes(&Fr::from(998u64));
    let mut dropped = absent_with_aux();
    dropped.node_aux = None;
    let mut added = absent_at_empty_slot();
    added.node_aux = Some(v1::NodeAux {
        key: fr_to_bytes(&Fr::from(3u64)),
        value: fr_to_bytes(&Fr::from(4u64)),
    });
    for message in [changed_value, changed_key, dropped, added] {
        assert_eq!(err(&message), ConvertError::CompactMismatch { field: "node_aux" });
    }
}

#[test]
fn a_different_valid_compact_proof_is_a_mismatch() {
    let mut message = absent_with_aux();
    message.compact = present().compact;
    assert!(matches!(err(&message), ConvertError::CompactMismatch { .. }));
}

#[test]
fn lone_field_elements() {
    for len in [0usize, 31, 33] {
        assert_eq!(
            fr_from_bytes(&vec![0; len]),
            Err(ConvertError::FieldElement {
                source: FieldError::WrongLength { got: len }
            })
        );
    }
    let error = fr_from_bytes(&MODULUS_LE).unwrap_err();
    assert_eq!(
        error,
        ConvertError::FieldElement {
            source: FieldError::NotCanonical
        }
    );
    assert!(error.to_string().starts_with("field element: "), "{error}");
    let mut r_minus_one = MODULUS_LE;
    r_minus_one[0] -= 1;
    assert_eq!(fr_from_bytes(&r_minus_one), Ok(-Fr::from(1u64)));
}

#[test]
fn errors_chain_to_their_source() {
    use std::error::Error;
    let error = fr_from_bytes(&[0; 3]).unwrap_err();
    let source = error.source().expect("the field error");
    assert_eq!(source.to_string(), FieldError::WrongLength { got: 3 }.to_string());
}
