//! Poseidon equals circomlibjs on the shared vectors and light-poseidon on
//! random inputs, for every width light-poseidon supports.
mod common;

use ark_ff::{BigInteger, PrimeField};
use light_poseidon::{Poseidon, PoseidonHasher};
use proptest::prelude::*;
use rustorium_core::poseidon::{PoseidonError, poseidon};
use rustorium_core::{Fr, hash2, hash3};

#[test]
fn circomlibjs_vectors() {
    let vectors = common::vectors("poseidon_vectors.json");
    let list = vectors["vectors"].as_array().expect("vectors");
    assert!(list.len() >= 30);
    for v in list {
        let inputs = common::frs(&v["inputs"]);
        assert_eq!(poseidon(&inputs).unwrap(), common::fr(&v["output"]), "{}", v["name"]);
    }
}

#[test]
fn input_count_outside_one_to_sixteen_is_an_error() {
    assert_eq!(poseidon(&[]), Err(PoseidonError::UnsupportedInputCount { got: 0 }));
    assert_eq!(
        poseidon(&[Fr::from(1u64); 17]),
        Err(PoseidonError::UnsupportedInputCount { got: 17 })
    );
}

fn arb_fr() -> impl Strategy<Value = Fr> {
    prop_oneof![
        Just(Fr::from(0u64)),
        Just(-Fr::from(1u64)),
        any::<[u8; 32]>().prop_map(|b| Fr::from_le_bytes_mod_order(&b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn equals_light_poseidon(inputs in prop::collection::vec(arb_fr(), 1..=12)) {
        let mut reference = Poseidon::<Fr>::new_circom(inputs.len()).unwrap();
        let expected = reference.hash(&inputs).unwrap();
        prop_assert_eq!(poseidon(&inputs).unwrap(), expected);
        if inputs.len() == 2 {
            prop_assert_eq!(hash2(inputs[0], inputs[1]), expected);
        }
        if inputs.len() == 3 {
            prop_assert_eq!(hash3(inputs[0], inputs[1], inputs[2]), expected);
        }
        prop_assert!(expected.into_bigint().to_bytes_le().len() == 32);
    }
}
