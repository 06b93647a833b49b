//! The Poseidon permutation in its optimized form, generic over the width.
//!
//! It computes on Montgomery limbs with lazy reduction (`montgomery.rs`).
//! The comments give each value's bound in units of `p`: `p' = p + 6 * 2^192
//! < 1.0001 p` is the bound [`reduce`] leaves, `rho = p / R < 0.18904`, and a
//! product's bound is the REDC bound `rho X + 1` for `X` the bound of the
//! summed products in units of `p^2`. Constants are canonical (`< p`) and
//! between rounds every state value is below `p'`. What the arithmetic needs,
//! and the bounds below give with room to spare: every lazy sum below
//! `R = 5.29 p`; every squared value, and every multiplier [`mul`] takes
//! whole (its second argument), at most `R - p = 4.29 p`; and at most four
//! constant multipliers per [`sum_of_products`] (`5p < R`).

use super::arith::{Limbs, add, from_fr, mul, reduce, square, sum_of_products, to_fr};
use crate::field::Fr;

/// Round constants and matrices of one width in the optimized form, as
/// Montgomery limbs: the build script's static tables (`'static`) or a view
/// of [`DerivedParameters`](super::DerivedParameters).
#[derive(Debug)]
pub(crate) struct Parameters<'a, const T: usize> {
    pub(crate) first_full_constants: &'a [[Limbs; T]; 4],
    /// The MDS matrix of the fourth full round, with the partial rounds' dense
    /// factor folded in; it leaves the state in the tracked coordinates.
    pub(crate) pre_sparse: &'a [[Limbs; T]; T],
    /// The partial rounds run on tracked coordinates `[y, u_1, .., u_{t-1}]`
    /// (see `optimize.rs`): `z = (y + c)^5`, `y' = z + u_1`,
    /// `u_1' = row . [z, u_1, .., u_{t-1}]`, `u_j' = u_j + column_j z`.
    pub(crate) partial_constants: &'a [Limbs],
    pub(crate) partial_rows: &'a [[Limbs; T]],
    /// Per partial round, `[0, 0, delta_2 .. delta_{t-1}]`.
    pub(crate) partial_columns: &'a [[Limbs; T]],
    /// The first coordinate after the partial rounds is `partial_scale * y`.
    pub(crate) partial_scale: Limbs,
    pub(crate) last_full_constants: &'a [[Limbs; T]; 4],
    pub(crate) mds: &'a [[Limbs; T]; T],
}

/// `x^5` for `x < p' + p < 2.0001` (a state value plus a constant): below 1.6.
#[inline(always)]
fn sbox(x: &Limbs) -> Limbs {
    let x2 = square(x); // X < 2.0001^2 = 4.0004: < 1.757
    let x4 = square(&x2); // X < 1.757^2 = 3.088: < 1.584
    mul(&x4, x) // X < 1.584 * 2.0001 = 3.169: < 1.600 (x taken whole)
}

/// `row . x` for constants `row_i < p` and `x_i < 1.6`: below 3.22.
///
/// The constants are the multipliers taken whole, at most four per
/// [`sum_of_products`] (`5p < R`). A chunk of four: `X < 4 * 1.6 = 6.4`, so
/// below 2.21; chunks beyond the first are added to the reduced sum so far:
/// below `p' + 2.21 < 3.22`.
#[inline(always)]
fn dot<const T: usize>(row: &[Limbs; T], x: &[Limbs; T]) -> Limbs {
    let mut chunks = x.chunks(4).zip(row.chunks(4));
    let (x0, row0) = chunks.next().expect("the width is at least 2");
    let mut sum = sum_of_products(x0, row0);
    for (x, row) in chunks {
        sum = add(&reduce(&sum), &sum_of_products(x, row));
    }
    sum
}

#[inline(always)]
fn full_round<const T: usize>(state: &mut [Limbs; T], constants: &[Limbs; T], matrix: &[[Limbs; T]; T]) {
    let mut powers = *state;
    for (x, c) in powers.iter_mut().zip(constants) {
        // x + c < p' + p, so x^5 < 1.6.
        *x = sbox(&add(x, c));
    }
    for (s, row) in state.iter_mut().zip(matrix) {
        // < 3.22, reduced to < p'.
        *s = reduce(&dot(row, &powers));
    }
}

pub(crate) fn permute<const T: usize>(parameters: &Parameters<'_, T>, fr_state: &mut [Fr; T]) {
    let mut state = fr_state.map(|x| from_fr(&x));

    let (first_three, fourth) = parameters.first_full_constants.split_at(3);
    for constants in first_three {
        full_round(&mut state, constants, parameters.mds);
    }
    full_round(&mut state, &fourth[0], parameters.pre_sparse);

    let partial = parameters
        .partial_constants
        .iter()
        .zip(parameters.partial_rows)
        .zip(parameters.partial_columns);
    for ((constant, row), column) in partial {
        // y + c < p' + p, so z < 1.6.
        let z = sbox(&add(&state[0], constant));
        let mut terms = state;
        terms[0] = z;
        // y' = z + u_1 < 1.6 + p' < 2.61.
        state[0] = reduce(&add(&z, &state[1]));
        // The old u's and z (all < 1.6) against constants: < 3.22.
        state[1] = reduce(&dot(row, &terms));
        for (u, delta) in state[2..].iter_mut().zip(&column[2..]) {
            // delta z: X < 1.6, < 1.31; plus u < p': < 2.32.
            *u = reduce(&add(u, &mul(&z, delta)));
        }
    }
    // y l_R: X < 1.0001, < 1.19; reduced so the next round's sums stay below
    // p' + p.
    state[0] = reduce(&mul(&state[0], &parameters.partial_scale));

    for constants in parameters.last_full_constants {
        full_round(&mut state, constants, parameters.mds);
    }

    for (out, s) in fr_state.iter_mut().zip(&state) {
        *out = to_fr(s);
    }
}
