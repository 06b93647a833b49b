//! Arbitrary bytes as iden3 proof JSON: parsing, conversion to a `Proof` and
//! verification never panic; an accepted proof converts back to the same JSON
//! (decimal strings are canonical), and its other encodings round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustorium_core::proof::Proof;
use rustorium_core::proof::json::Iden3ProofJson;
use rustorium_fuzz::check_proof_against;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Iden3ProofJson>(data) else {
        return;
    };
    let Ok(proof) = Proof::try_from(&json) else {
        return;
    };
    assert_eq!(Iden3ProofJson::from(&proof), json);
    check_proof_against(&proof, data);
});
