//! `Proof::from_compact` on arbitrary bytes: never panics; whatever decodes
//! re-encodes to exactly the same bytes (the decoder is strict), and the
//! decoded proof verifies or is refused without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustorium_core::proof::Proof;
use rustorium_fuzz::check_proof_against;

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = Proof::from_compact(data) else {
        return;
    };
    assert_eq!(proof.to_compact().as_deref(), Ok(data));
    check_proof_against(&proof, data);
});
