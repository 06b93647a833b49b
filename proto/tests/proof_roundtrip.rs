//! Proofs from a real tree survive core -> wire -> prost bytes -> wire -> core
//! unchanged, in both wire forms, and still verify.

use prost::Message;
use rustorium_core::Fr;
use rustorium_core::field::fr_from_le_bytes;
use rustorium_core::proof::Proof;
use rustorium_core::proof::compact::MAX_COMPACT_DEPTH;
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_proto::{fr_from_bytes, fr_to_bytes, proof_to_proto, v1};

const MAX_LEVELS: u16 = 64;

/// Round-trips through the wire message and its protobuf encoding, checking
/// every form on the way.
fn round_trip(proof: &Proof, max_levels: u16) -> Proof {
    let message = proof_to_proto(proof, max_levels);
    assert_eq!(message.max_levels, u32::from(max_levels));
    assert_eq!(message.existence, proof.existence);
    assert_eq!(message.siblings.len(), proof.depth());
    assert!(message.siblings.iter().all(|s| s.len() == 32));
    assert_eq!(message.node_aux.is_some(), proof.node_aux.is_some());
    if proof.depth() <= MAX_COMPACT_DEPTH {
        assert_eq!(message.compact, proof.to_compact().unwrap());
    } else {
        assert!(message.compact.is_empty());
    }

    let encoded = message.encode_to_vec();
    let decoded = v1::Proof::decode(encoded.as_slice()).unwrap();
    assert_eq!(decoded, message);
    let back = Proof::try_from(&decoded).unwrap();
    assert_eq!(&back, proof);

    // Each form alone gives the same proof.
    let structured_only = v1::Proof {
        compact: Vec::new(),
        ..decoded.clone()
    };
    assert_eq!(&Proof::try_from(&structured_only).unwrap(), proof);
    if !decoded.compact.is_empty() {
        let compact_only = v1::Proof {
            compact: decoded.compact.clone(),
            ..Default::default()
        };
        assert_eq!(&Proof::try_from(&compact_only).unwrap(), proof);
    }
    back
}

fn fr(n: u64) -> Fr {
    Fr::from(n)
}

/// `2^bit` as a field element (bit < 254).
fn power_of_two(bit: usize) -> Fr {
    let mut bytes = [0u8; 32];
    bytes[bit / 8] = 1 << (bit % 8);
    fr_from_le_bytes(&bytes).unwrap()
}

#[test]
fn proofs_of_present_and_absent_keys_round_trip_and_verify() {
    // Keys 4, 8, .., 160: odd candidates end at the empty right child of
    // the root, larger multiples of 4 at another key's leaf.
    let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
    let ops: Vec<Op> = (1..=40u64).map(|k| Op::put(fr(k * 4), fr(k * 1000 + 3))).collect();
    tree.apply(&ops).unwrap();
    let root = tree.root();

    for k in 1..=40u64 {
        let key = fr(k * 4);
        let lookup = tree.prove(&key).unwrap();
        assert!(lookup.proof.existence);
        let back = round_trip(&lookup.proof, MAX_LEVELS);
        back.verify(&root, &key, Some(&fr(k * 1000 + 3)), MAX_LEVELS).unwrap();
    }

    let (mut at_empty_slot, mut at_other_leaf) = (0, 0);
    for candidate in 1..=300u64 {
        if candidate % 4 == 0 && candidate <= 160 {
            continue;
        }
        let key = fr(candidate);
        let lookup = tree.prove(&key).unwrap();
        assert!(!lookup.proof.existence);
        match lookup.proof.node_aux {
            Some(_) => at_other_leaf += 1,
            None => at_empty_slot += 1,
        }
        let back = round_trip(&lookup.proof, MAX_LEVELS);
        back.verify(&root, &key, None, MAX_LEVELS).unwrap();
    }
    assert!(at_empty_slot > 0, "no absence proof ended at an empty slot");
    assert!(at_other_leaf > 0, "no absence proof ended at another leaf");
}

#[test]
fn depth_zero_proofs_round_trip() {
    // The empty tree: an absence proof with no siblings and no aux, which is
    // also what an all-default message decodes to.
    let empty = MemoryTree::new(MAX_LEVELS).unwrap();
    let lookup = empty.prove(&fr(5)).unwrap();
    assert_eq!(lookup.proof, Proof::default());
    round_trip(&lookup.proof, MAX_LEVELS);
    assert_eq!(Proof::try_from(&v1::Proof::default()).unwrap(), Proof::default());

    // A single leaf at the root: membership and an aux absence at depth 0.
    let mut single = MemoryTree::new(MAX_LEVELS).unwrap();
    single.insert(fr(5), fr(50)).unwrap();
    let present = single.prove(&fr(5)).unwrap().proof;
    assert!(present.existence && present.siblings.is_empty());
    round_trip(&present, MAX_LEVELS);
    let absent = single.prove(&fr(6)).unwrap().proof;
    assert!(absent.node_aux.is_some() && absent.siblings.is_empty());
    round_trip(&absent, MAX_LEVELS);
}

#[test]
fn compact_form_is_filled_up_to_240_levels_and_empty_beyond() {
    for (bit, expect_compact) in [(239, true), (240, false), (241, false)] {
        // Keys 0 and 2^bit share their first `bit` path bits, so their leaves
        // sit at depth bit + 1.
        let mut tree = MemoryTree::new(255).unwrap();
        let (a, b) = (fr(0), power_of_two(bit));
        tree.apply(&[Op::put(a, fr(1)), Op::put(b, fr(2))]).unwrap();
        let root = tree.root();
        let proof = tree.prove(&b).unwrap().proof;
        assert_eq!(proof.depth(), bit + 1);

        let message = v1::Proof::from(&proof);
        assert_eq!(message.max_levels, 0, "From leaves max_levels unstated");
        assert_eq!(!message.compact.is_empty(), expect_compact, "bit {bit}");
        let back = round_trip(&proof, 255);
        back.verify(&root, &b, Some(&fr(2)), 255).unwrap();
    }
}

#[test]
fn proofs_inside_responses_round_trip() {
    let mut tree = MemoryTree::new(MAX_LEVELS).unwrap();
    tree.insert(fr(1), fr(10)).unwrap();
    tree.insert(fr(2), fr(20)).unwrap();
    let lookup = tree.prove(&fr(2)).unwrap();
    let response = v1::GetResponse {
        found: true,
        value: fr_to_bytes(&fr(20)),
        proof: Some(proof_to_proto(&lookup.proof, MAX_LEVELS)),
        root: fr_to_bytes(&tree.root()),
        version: 2,
        timestamp_unix_nanos: 1_700_000_000_000_000_000,
    };
    let decoded = v1::GetResponse::decode(response.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, response);
    let root = fr_from_bytes(&decoded.root).unwrap();
    assert_eq!(root, tree.root());
    let proof = Proof::try_from(decoded.proof.as_ref().unwrap()).unwrap();
    let value = fr_from_bytes(&decoded.value).unwrap();
    proof.verify(&root, &fr(2), Some(&value), MAX_LEVELS).unwrap();

    // The batch op's oneof keeps an empty value apart from a delete.
    let request = v1::PutBatchRequest {
        ops: vec![
            v1::Op {
                key: b"a".to_vec(),
                kind: Some(v1::op::Kind::Value(Vec::new())),
            },
            v1::Op {
                key: b"b".to_vec(),
                kind: Some(v1::op::Kind::Delete(v1::op::Delete {})),
            },
        ],
        want_proofs: true,
    };
    let decoded = v1::PutBatchRequest::decode(request.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, request);
}

#[test]
fn field_element_helpers_round_trip() {
    let r_minus_one = -Fr::from(1u64);
    for value in [fr(0), fr(1), fr(u64::MAX), power_of_two(253), r_minus_one] {
        let bytes = fr_to_bytes(&value);
        assert_eq!(bytes.len(), 32);
        assert_eq!(fr_from_bytes(&bytes).unwrap(), value);
    }
    assert_eq!(fr_to_bytes(&fr(1))[0], 1, "little-endian");
    assert_eq!(fr_to_bytes(&r_minus_one)[31], 0x30);
}
