//! Decimal and byte encodings of field elements: parsing arbitrary text never
//! panics, and whatever parses prints back to exactly the same text (the
//! decimal form is canonical); likewise for the 32-byte little-endian form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustorium_core::field::{fr_from_decimal, fr_from_le_bytes, fr_to_decimal, fr_to_le_bytes};
use rustorium_fuzz::fr;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(value) = fr_from_decimal(text)
    {
        assert_eq!(fr_to_decimal(&value), text);
    }
    if let Ok(value) = fr_from_le_bytes(data) {
        assert_eq!(&fr_to_le_bytes(&value)[..], data);
    }
    // Every field element prints to text that parses back to it.
    let value = fr(data);
    assert_eq!(fr_from_decimal(&fr_to_decimal(&value)), Ok(value));
    assert_eq!(fr_from_le_bytes(&fr_to_le_bytes(&value)), Ok(value));
});
