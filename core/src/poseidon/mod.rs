//! Poseidon over the BN254 scalar field with circomlib's parameters.
//!
//! `poseidon([x_1, .., x_n])` is the permutation of width `t = n + 1` applied to
//! `[0, x_1, .., x_n]`, returning the first element of the final state; this is
//! circomlib's `Poseidon(n)` and iden3's `poseidon.hash`. S-box `x^5`, 8 full
//! rounds and the per-width partial rounds `[56, 57, 56, 60, 60, 63, 64, 63, 60,
//! 66, 60, 65, 70, 60, 64, 68]` for `t = 2..=17`.
//!
//! The permutation runs in the optimized form (sparse partial-round matrices,
//! constants folded to one per partial round, the partial rounds rewritten in
//! the coordinates they are computed in), on a stack array, with no heap
//! allocation, in its own Montgomery arithmetic with lazy reduction
//! (`montgomery.rs`; arkworks' arithmetic on wasm32, `ark_arith.rs`).
//!
//! The parameters come from the Grain LFSR of the Poseidon paper (`grain.rs`)
//! rewritten in the optimized form (`optimize.rs`). The build script runs that
//! code into static tables: every width natively, only `t = 2..=4` on wasm32
//! (the tree's hashes and byte strings up to 62 bytes), where the other
//! widths' 23,752 random field elements (760 KB) would be most of the module.
//! A width without a static table is derived at run time
//! ([`DerivedParameters`]) by the same two files, and [`PoseidonCache`] keeps
//! what it derived.

#[cfg(target_arch = "wasm32")]
#[path = "ark_arith.rs"]
mod arith;
mod derived;
mod grain;
#[cfg(not(target_arch = "wasm32"))]
mod montgomery;
#[cfg(not(target_arch = "wasm32"))]
use montgomery as arith;
mod optimize;
mod permutation;

use crate::field::Fr;
use core::cell::OnceCell;
pub use derived::DerivedParameters;
use permutation::{Parameters, permute};

#[expect(clippy::unreadable_literal, reason = "generated Montgomery limbs")]
mod constants {
    use super::{Parameters, hash_with};
    use crate::field::Fr;

    include!(concat!(env!("OUT_DIR"), "/poseidon_constants.rs"));
}

/// The number of inputs Poseidon accepts: 1 to 16, as circomlib.
pub const MAX_INPUTS: usize = 16;

/// Why a Poseidon call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoseidonError {
    /// circomlib defines Poseidon for 1 to 16 inputs.
    UnsupportedInputCount { got: usize },
    /// [`DerivedParameters`] hash exactly the input count they were derived for.
    InputCountMismatch { expected: usize, got: usize },
}

impl core::fmt::Display for PoseidonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnsupportedInputCount { got } => {
                write!(f, "poseidon takes 1 to {MAX_INPUTS} inputs, got {got}")
            }
            Self::InputCountMismatch { expected, got } => {
                write!(f, "these poseidon parameters take {expected} inputs, got {got}")
            }
        }
    }
}

impl core::error::Error for PoseidonError {}

/// `inputs.len()` must be `T - 1`.
#[inline]
fn hash_with<const T: usize>(parameters: &Parameters<'_, T>, inputs: &[Fr]) -> Fr {
    let mut state = [Fr::from(0u64); T];
    state[1..].copy_from_slice(inputs);
    permute(parameters, &mut state);
    state[0]
}

/// `Poseidon(a, b)`: the iden3 middle-node hash.
#[inline]
pub fn hash2(a: Fr, b: Fr) -> Fr {
    let mut state = [Fr::from(0u64), a, b];
    permute(&constants::WIDTH_3, &mut state);
    state[0]
}

/// `Poseidon(a, b, c)`: the iden3 leaf hash is `hash3(key, value, 1)`.
#[inline]
pub fn hash3(a: Fr, b: Fr, c: Fr) -> Fr {
    let mut state = [Fr::from(0u64), a, b, c];
    permute(&constants::WIDTH_4, &mut state);
    state[0]
}

/// Poseidon of 1 to 16 field elements.
///
/// Where the build has no static table for the width (wasm32, 4 inputs or
/// more), every call derives the parameters anew, which costs milliseconds
/// (tens in WebAssembly): hash through a [`PoseidonCache`] there.
pub fn poseidon(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    match constants::hash_static(inputs) {
        Some(hash) => Ok(hash),
        None => DerivedParameters::derive(inputs.len())?.hash(inputs),
    }
}

/// [`poseidon`] that keeps the parameters it derives: each width without a
/// static table is derived on its first use and never again.
///
/// Core has no global state, so the caller owns the cache (the WASM client
/// keeps one in a `thread_local!`). It is not `Sync`; natively every width has
/// a static table and it is [`poseidon`] with nothing to keep.
#[derive(Debug, Default)]
pub struct PoseidonCache {
    /// Indexed by the input count minus one.
    derived: [OnceCell<DerivedParameters>; MAX_INPUTS],
}

impl PoseidonCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            derived: [const { OnceCell::new() }; MAX_INPUTS],
        }
    }

    /// Poseidon of 1 to 16 field elements, as [`poseidon`].
    pub fn poseidon(&self, inputs: &[Fr]) -> Result<Fr, PoseidonError> {
        if let Some(hash) = constants::hash_static(inputs) {
            return Ok(hash);
        }
        let got = inputs.len();
        let cell = got
            .checked_sub(1)
            .and_then(|index| self.derived.get(index))
            .ok_or(PoseidonError::UnsupportedInputCount { got })?;
        let parameters = match cell.get() {
            Some(parameters) => parameters,
            None => {
                let derived = DerivedParameters::derive(got)?;
                cell.get_or_init(|| derived)
            }
        };
        parameters.hash(inputs)
    }
}

#[cfg(test)]
mod tests {
    //! The Grain tables must equal light-poseidon's (themselves from the
    //! reference sage script); the optimized permutation on derived parameters
    //! must equal the plain one for every width; and the static tables must
    //! hash as the derived ones, so the two can be used interchangeably.
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use ark_ff::{Field, UniformRand};
    use light_poseidon::parameters::bn254_x5::get_poseidon_parameters;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn plain_permutation<const T: usize>(
        constants: &[Fr],
        mds: &[Vec<Fr>],
        partial_rounds: usize,
        state: &mut [Fr; T],
    ) {
        let rounds = 8 + partial_rounds;
        for r in 0..rounds {
            for (s, c) in state.iter_mut().zip(&constants[r * T..(r + 1) * T]) {
                *s += c;
            }
            let full = r < 4 || r >= 4 + partial_rounds;
            for s in state.iter_mut().take(if full { T } else { 1 }) {
                *s = s.pow([5u64]);
            }
            let old = *state;
            for (i, s) in state.iter_mut().enumerate() {
                *s = (0..T).map(|j| mds[i][j] * old[j]).sum();
            }
        }
    }

    fn check_width<const T: usize>() {
        let partial = grain::PARTIAL_ROUNDS[T - 2];
        let (constants, mds) = grain::parameters(T, grain::FULL_ROUNDS, partial);
        let reference = get_poseidon_parameters::<Fr>(T as u8);
        assert_eq!(
            reference.is_ok(),
            T <= light_poseidon::MAX_X5_LEN,
            "light-poseidon covers widths up to 13"
        );
        if let Ok(reference) = reference {
            assert_eq!(reference.ark, constants, "round constants, width {T}");
            assert_eq!(reference.mds, mds, "mds, width {T}");
        }

        let derived = DerivedParameters::derive(T - 1).unwrap();
        assert_eq!(derived.inputs(), T - 1);
        let view = derived.view::<T>().unwrap();
        assert_eq!(view.partial_constants.len(), partial);
        // A small state, the largest one, and random ones: the lazy
        // reduction's bounds are width-dependent.
        let mut rng = StdRng::seed_from_u64(T as u64);
        let mut states = vec![
            core::array::from_fn(|i| Fr::from(i as u64 * 7 + 3)),
            [-Fr::from(1u64); T],
        ];
        states.extend((0..8).map(|_| core::array::from_fn(|_| Fr::rand(&mut rng))));
        for mut plain in states {
            let mut fast = plain;
            plain_permutation(&constants, &mds, partial, &mut plain);
            permute(&view, &mut fast);
            assert_eq!(plain, fast, "optimized permutation, width {T}");

            let inputs = &fast[1..];
            let mut hashed = fast;
            hashed[0] = Fr::from(0u64);
            plain_permutation(&constants, &mds, partial, &mut hashed);
            assert_eq!(derived.hash(inputs), Ok(hashed[0]), "derived hash, width {T}");
            assert_eq!(poseidon(inputs), Ok(hashed[0]), "poseidon, width {T}");
            assert_eq!(PoseidonCache::new().poseidon(inputs), Ok(hashed[0]), "cache, width {T}");
            if let Some(hash) = constants::hash_static(inputs) {
                assert_eq!(hash, hashed[0], "static table, width {T}");
            }
        }
        if T != 2 {
            assert!(derived.view::<2>().is_none(), "a view of another width");
        }
    }

    #[test]
    fn grain_tables_match_light_poseidon_and_optimized_form_matches_plain() {
        check_width::<2>();
        check_width::<3>();
        check_width::<4>();
        check_width::<5>();
        check_width::<6>();
        check_width::<7>();
        check_width::<8>();
        check_width::<9>();
        check_width::<10>();
        check_width::<11>();
        check_width::<12>();
        check_width::<13>();
        check_width::<14>();
        check_width::<15>();
        check_width::<16>();
        check_width::<17>();
    }

    #[test]
    fn tree_widths_are_static_everywhere() {
        for count in 1..=3 {
            assert!(constants::hash_static(&vec![Fr::from(1u64); count]).is_some());
        }
        let native_has_all = constants::hash_static(&[Fr::from(1u64); MAX_INPUTS]).is_some();
        assert_eq!(native_has_all, !cfg!(target_arch = "wasm32"));
    }

    #[test]
    fn input_counts_are_checked() {
        assert_eq!(
            DerivedParameters::derive(0).unwrap_err(),
            PoseidonError::UnsupportedInputCount { got: 0 }
        );
        assert_eq!(
            DerivedParameters::derive(17).unwrap_err(),
            PoseidonError::UnsupportedInputCount { got: 17 }
        );
        let derived = DerivedParameters::derive(4).unwrap();
        assert_eq!(
            derived.hash(&[Fr::from(1u64); 3]),
            Err(PoseidonError::InputCountMismatch { expected: 4, got: 3 })
        );
        let cache = PoseidonCache::new();
        assert_eq!(
            cache.poseidon(&[]),
            Err(PoseidonError::UnsupportedInputCount { got: 0 })
        );
        assert_eq!(
            cache.poseidon(&[Fr::from(1u64); 17]),
            Err(PoseidonError::UnsupportedInputCount { got: 17 })
        );
    }
}
