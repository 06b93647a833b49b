//! The permutation's arithmetic on arkworks `Fr`, for wasm32.
//!
//! WebAssembly has no 64x64->128-bit multiply, so the unrolled lazy
//! 64-bit-limb code of `montgomery.rs` runs about twice as slow there and
//! weighs ~50 KB per width; arkworks' own multiplication is faster and
//! smaller on that target. Same signatures, same Montgomery limbs; here every
//! value stays canonical, so `reduce` has nothing to do.

use crate::field::Fr;
use ark_ff::{BigInt, Field, Zero};

/// Four little-endian limbs of a canonical Montgomery-form element.
pub(crate) type Limbs = [u64; 4];

#[inline(always)]
fn fr(x: &Limbs) -> Fr {
    Fr::new_unchecked(BigInt::new(*x))
}

#[inline(always)]
pub(crate) const fn from_fr(x: &Fr) -> Limbs {
    x.0.0
}

#[inline(always)]
pub(crate) fn to_fr(x: &Limbs) -> Fr {
    fr(x)
}

#[inline(always)]
pub(crate) fn add(a: &Limbs, b: &Limbs) -> Limbs {
    (fr(a) + fr(b)).0.0
}

#[inline(always)]
pub(crate) fn reduce(v: &Limbs) -> Limbs {
    *v
}

#[inline(always)]
pub(crate) fn mul(a: &Limbs, b: &Limbs) -> Limbs {
    (fr(a) * fr(b)).0.0
}

#[inline(always)]
pub(crate) fn square(a: &Limbs) -> Limbs {
    fr(a).square().0.0
}

#[inline(always)]
pub(crate) fn sum_of_products(a: &[Limbs], b: &[Limbs]) -> Limbs {
    a.iter().zip(b).fold(Fr::zero(), |acc, (x, y)| acc + fr(x) * fr(y)).0.0
}
