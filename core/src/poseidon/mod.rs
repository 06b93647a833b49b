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
//! (`montgomery.rs`). The constants are produced by the build script from the
//! Grain LFSR of the Poseidon paper.

#[cfg(target_arch = "wasm32")]
#[path = "ark_arith.rs"]
mod arith;
#[cfg(not(target_arch = "wasm32"))]
mod montgomery;
#[cfg(not(target_arch = "wasm32"))]
use montgomery as arith;
mod permutation;

use crate::field::Fr;
use permutation::{Parameters, permute};

#[expect(clippy::unreadable_literal, reason = "generated Montgomery limbs")]
mod constants {
    use super::Parameters;
    #[cfg(test)]
    use crate::field::Fr;
    #[cfg(test)]
    use ark_ff::BigInt;

    /// The test tables are arkworks elements; the permutation's are limbs.
    #[cfg(test)]
    const fn fr(limbs: [u64; 4]) -> Fr {
        Fr::new_unchecked(BigInt::new(limbs))
    }

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
}

impl core::fmt::Display for PoseidonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnsupportedInputCount { got } => {
                write!(f, "poseidon takes 1 to {MAX_INPUTS} inputs, got {got}")
            }
        }
    }
}

impl core::error::Error for PoseidonError {}

fn hash_with<const T: usize>(parameters: &Parameters<T>, inputs: &[Fr]) -> Fr {
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
pub fn poseidon(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    use constants::*;
    Ok(match inputs.len() {
        1 => hash_with(&WIDTH_2, inputs),
        2 => hash_with(&WIDTH_3, inputs),
        3 => hash_with(&WIDTH_4, inputs),
        4 => hash_with(&WIDTH_5, inputs),
        5 => hash_with(&WIDTH_6, inputs),
        6 => hash_with(&WIDTH_7, inputs),
        7 => hash_with(&WIDTH_8, inputs),
        8 => hash_with(&WIDTH_9, inputs),
        9 => hash_with(&WIDTH_10, inputs),
        10 => hash_with(&WIDTH_11, inputs),
        11 => hash_with(&WIDTH_12, inputs),
        12 => hash_with(&WIDTH_13, inputs),
        13 => hash_with(&WIDTH_14, inputs),
        14 => hash_with(&WIDTH_15, inputs),
        15 => hash_with(&WIDTH_16, inputs),
        16 => hash_with(&WIDTH_17, inputs),
        got => return Err(PoseidonError::UnsupportedInputCount { got }),
    })
}

#[cfg(test)]
mod tests {
    //! The Grain-derived tables must equal light-poseidon's (themselves from the
    //! reference sage script), and the optimized permutation must equal the
    //! plain one round by round for every width.
    use super::*;
    use alloc::vec;
    use ark_ff::{Field, UniformRand};
    use light_poseidon::parameters::bn254_x5::get_poseidon_parameters;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn plain_permutation<const T: usize>(
        constants: &[Fr],
        mds: &[[Fr; T]; T],
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

    macro_rules! check_width {
        ($t:literal, $params:ident, $mds:ident, $consts:ident) => {{
            let partial = constants::$params.partial_constants.len();
            let reference = get_poseidon_parameters::<Fr>($t);
            assert_eq!(
                reference.is_ok(),
                $t <= light_poseidon::MAX_X5_LEN,
                "light-poseidon covers widths up to 13"
            );
            if let Ok(reference) = reference {
                assert_eq!(
                    reference.ark.as_slice(),
                    &constants::$consts[..],
                    "round constants, width {}",
                    $t
                );
                for (i, row) in reference.mds.iter().enumerate() {
                    assert_eq!(row.as_slice(), &constants::$mds[i][..], "mds row {i}, width {}", $t);
                }
            }
            // A small state, the largest one, and random ones: the lazy
            // reduction's bounds are width-dependent.
            let mut rng = StdRng::seed_from_u64($t);
            let mut states = vec![
                core::array::from_fn(|i| Fr::from(i as u64 * 7 + 3)),
                [-Fr::from(1u64); $t],
            ];
            states.extend((0..8).map(|_| core::array::from_fn(|_| Fr::rand(&mut rng))));
            for mut plain in states {
                let mut fast = plain;
                plain_permutation(&constants::$consts, &constants::$mds, partial, &mut plain);
                permute(&constants::$params, &mut fast);
                assert_eq!(plain, fast, "optimized permutation, width {}", $t);
            }
        }};
    }

    #[test]
    fn grain_tables_match_light_poseidon_and_optimized_form_matches_plain() {
        // A macro keeps the const-generic width and the table names in step.
        check_width!(2, WIDTH_2, PLAIN_MDS_2, PLAIN_CONSTANTS_2);
        check_width!(3, WIDTH_3, PLAIN_MDS_3, PLAIN_CONSTANTS_3);
        check_width!(4, WIDTH_4, PLAIN_MDS_4, PLAIN_CONSTANTS_4);
        check_width!(5, WIDTH_5, PLAIN_MDS_5, PLAIN_CONSTANTS_5);
        check_width!(6, WIDTH_6, PLAIN_MDS_6, PLAIN_CONSTANTS_6);
        check_width!(7, WIDTH_7, PLAIN_MDS_7, PLAIN_CONSTANTS_7);
        check_width!(8, WIDTH_8, PLAIN_MDS_8, PLAIN_CONSTANTS_8);
        check_width!(9, WIDTH_9, PLAIN_MDS_9, PLAIN_CONSTANTS_9);
        check_width!(10, WIDTH_10, PLAIN_MDS_10, PLAIN_CONSTANTS_10);
        check_width!(11, WIDTH_11, PLAIN_MDS_11, PLAIN_CONSTANTS_11);
        check_width!(12, WIDTH_12, PLAIN_MDS_12, PLAIN_CONSTANTS_12);
        check_width!(13, WIDTH_13, PLAIN_MDS_13, PLAIN_CONSTANTS_13);
        check_width!(14, WIDTH_14, PLAIN_MDS_14, PLAIN_CONSTANTS_14);
        check_width!(15, WIDTH_15, PLAIN_MDS_15, PLAIN_CONSTANTS_15);
        check_width!(16, WIDTH_16, PLAIN_MDS_16, PLAIN_CONSTANTS_16);
        check_width!(17, WIDTH_17, PLAIN_MDS_17, PLAIN_CONSTANTS_17);
    }
}
