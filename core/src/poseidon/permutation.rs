//! The Poseidon permutation in its optimized form, generic over the width.

use crate::field::Fr;
use ark_ff::Field;

/// Round constants and matrices of one width, in the optimized form produced
/// by the build script.
#[derive(Debug)]
pub(crate) struct Parameters<const T: usize> {
    pub(crate) first_full_constants: &'static [[Fr; T]; 4],
    /// The MDS matrix of the fourth full round, with the partial rounds' dense
    /// factor folded in.
    pub(crate) pre_sparse: [[Fr; T]; T],
    pub(crate) partial_constants: &'static [Fr],
    pub(crate) sparse_rows: &'static [[Fr; T]],
    pub(crate) sparse_columns: &'static [[Fr; T]],
    pub(crate) last_full_constants: &'static [[Fr; T]; 4],
    pub(crate) mds: [[Fr; T]; T],
}

#[inline(always)]
fn sbox(x: &mut Fr) {
    let x2 = x.square();
    let x4 = x2.square();
    *x *= x4;
}

#[inline(always)]
fn full_round<const T: usize>(state: &mut [Fr; T], constants: &[Fr; T], matrix: &[[Fr; T]; T]) {
    for (s, c) in state.iter_mut().zip(constants) {
        *s += c;
        sbox(s);
    }
    let input = *state;
    for (s, row) in state.iter_mut().zip(matrix) {
        *s = Fr::sum_of_products(row, &input);
    }
}

pub(crate) fn permute<const T: usize>(parameters: &Parameters<T>, state: &mut [Fr; T]) {
    let (first_three, fourth) = parameters.first_full_constants.split_at(3);
    for constants in first_three {
        full_round(state, constants, &parameters.mds);
    }
    full_round(state, &fourth[0], &parameters.pre_sparse);

    let partial = parameters
        .partial_constants
        .iter()
        .zip(parameters.sparse_rows)
        .zip(parameters.sparse_columns);
    for ((constant, row), column) in partial {
        state[0] += constant;
        sbox(&mut state[0]);
        let first = state[0];
        state[0] = Fr::sum_of_products(row, state);
        for (s, v) in state.iter_mut().zip(column).skip(1) {
            *s += *v * first;
        }
    }

    for constants in parameters.last_full_constants {
        full_round(state, constants, &parameters.mds);
    }
}
