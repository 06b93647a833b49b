//! Stored page bytes and page storage keys: decoding never panics, and what
//! decodes encodes back to exactly the input (one encoding per page / id).
#![no_main]

use ark_ff::BigInt;
use libfuzzer_sys::fuzz_target;
use rustorium_core::tree::{PAGE_LEVELS, Page, PageId};

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = Page::decode(data) {
        assert_eq!(page.encode(), data);
        assert!(!page.is_empty());
        assert!(page.occupied() > 0);
    }
    if let Ok(id) = PageId::from_key(data) {
        assert_eq!(id.to_key(), data);
        assert_eq!(id.depth() % PAGE_LEVELS, 0);
    }
    // The id of the page holding an arbitrary node: its key parses back to it.
    if let Some((head, rest)) = data.split_first_chunk::<2>()
        && let Some(path_bytes) = rest.first_chunk::<32>()
    {
        let depth = 1 + usize::from(u16::from_le_bytes(*head) % 255);
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(path_bytes.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        let id = PageId::containing(depth, &BigInt::new(limbs));
        assert!(id.depth() < depth && depth <= id.depth() + PAGE_LEVELS);
        assert_eq!(PageId::from_key(&id.to_key()), Ok(id));
    }
});
