//! Montgomery arithmetic on BN254 `Fr` with lazy reduction, for the Poseidon
//! permutation.
//!
//! A value is four little-endian 64-bit limbs `v` standing for `v / R mod p`,
//! `R = 2^256`: the representation arkworks uses, so `fr.0.0` converts in and
//! [`to_fr`] converts out. Unlike arkworks, `v` need not be below `p`: each
//! operation states the range it accepts and the range it returns, and the
//! permutation keeps its values in ranges where no result can overflow 256
//! bits. That removes the final conditional subtraction from every
//! multiplication and addition.
//!
//! Bounds are written in units of `p`: `R / p = 5.29..`, so `5p < R`, and
//! `rho = p / R = 0.18903..`.
//!
//! The multiplications are Montgomery's REDC (Koc, Acar, Kaliski 1996): the
//! result is `(X + M p) / R` for the product (or sum of products) `X` and some
//! `M < R` that makes the division exact, so
//!
//! ```text
//! result < X / R + p = (rho * X / p^2 + 1) p                (REDC bound)
//! ```
//!
//! A sum of products is reduced once. Reductions that bring a value back near
//! `p` are branch-free and done only where the permutation's bounds need them
//! ([`reduce`]).

use crate::field::Fr;
use ark_ff::{BigInt, PrimeField};

/// Four little-endian limbs; the value they stand for is `limbs / R mod p`.
pub(crate) type Limbs = [u64; 4];

/// The modulus `p`.
pub(crate) const P: Limbs = <Fr as PrimeField>::MODULUS.0;

/// `-p^-1 mod 2^64`: the Montgomery factor of one REDC step.
const INV: u64 = {
    // Newton's iteration doubles the number of correct low bits each step;
    // `p` is odd, so `x = 1` is right to one bit and six steps give 64.
    let mut x = 1u64;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(P[0].wrapping_mul(x)));
        i += 1;
    }
    x.wrapping_neg()
};

/// `q p` for `q = 0..=5`, the multiples [`reduce`] subtracts.
const MULTIPLES: [Limbs; 6] = {
    let mut table = [[0u64; 4]; 6];
    let mut q = 1;
    while q < 6 {
        let mut carry = 0u128;
        let mut j = 0;
        while j < 4 {
            let t = P[j] as u128 * q as u128 + carry;
            table[q][j] = t as u64;
            carry = t >> 64;
            j += 1;
        }
        q += 1;
    }
    table
};

/// The divisor [`reduce`] uses to estimate how many `p` to subtract: `p` is
/// at least `P[3] 2^192` and below `(P[3] + 1) 2^192`.
const TOP: u64 = P[3] + 1;

/// Converts from arkworks (free: the same limbs); they are below `p`.
#[inline(always)]
pub(crate) const fn from_fr(x: &Fr) -> Limbs {
    x.0.0
}

/// Converts to arkworks. Accepts any 256-bit value.
#[inline(always)]
pub(crate) fn to_fr(x: &Limbs) -> Fr {
    // `reduce` leaves a value below `p + 6 * 2^192 < 2p`; one conditional
    // subtraction of `p` makes it canonical.
    let x = reduce(x);
    let (d, borrow) = sub(&x, &P);
    Fr::new_unchecked(BigInt::new(if borrow { x } else { d }))
}

#[inline(always)]
fn sub(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for j in 0..4 {
        let (d, b1) = a[j].overflowing_sub(b[j]);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        out[j] = d;
        borrow = b1 | b2;
    }
    (out, borrow)
}

/// `a + b` with no reduction. The caller guarantees `a + b < R`.
#[inline(always)]
pub(crate) fn add(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = [0u64; 4];
    let mut carry = false;
    for j in 0..4 {
        let (s, c1) = a[j].overflowing_add(b[j]);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        out[j] = s;
        carry = c1 | c2;
    }
    debug_assert!(!carry, "lazy addition overflowed");
    out
}

/// Any 256-bit value to one congruent to it below `p + 6 * 2^192` (call this
/// bound `p'`; `p' / p < 1 + 2^-58`), without a branch.
///
/// With `q = floor(v3 / (P3 + 1))` (`v3`, `P3` the top limbs, so `q <= 5`):
/// `q p <= q (P3 + 1) 2^192 <= v3 2^192 <= v`, so `v - q p >= 0`; and
/// `v < (v3 + 1) 2^192 <= (q + 1)(P3 + 1) 2^192`, `q p >= q P3 2^192`, so
/// `v - q p < (P3 + 1 + q) 2^192 <= p + 6 * 2^192`.
#[inline(always)]
pub(crate) fn reduce(v: &Limbs) -> Limbs {
    let q = (v[3] / TOP) as usize;
    sub(v, &MULTIPLES[q]).0
}

/// `a + b c + carry` as (low, high) words; cannot overflow 128 bits.
#[inline(always)]
const fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let t = a as u128 + b as u128 * c as u128 + carry as u128;
    (t as u64, (t >> 64) as u64)
}

/// `a + b + carry` as (low, high) words.
#[inline(always)]
const fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = a as u128 + b as u128 + carry as u128;
    (t as u64, (t >> 64) as u64)
}

/// `a + b + carry`, with the carry out.
#[inline(always)]
const fn carrying_add(a: u64, b: u64, carry: bool) -> (u64, bool) {
    let (s, c1) = a.overflowing_add(b);
    let (s, c2) = s.overflowing_add(carry as u64);
    (s, c1 | c2)
}

/// `t += a b` for four-word `a` and one-word `b`. The low and the high words of
/// the limb products are added in two separate carry chains, which compile to
/// runs of `adc`. The caller guarantees the sum fits in five words.
#[inline(always)]
fn add_product(t: &mut [u64; 5], a: &Limbs, b: u64) {
    let products = a.map(|a| u128::from(a) * u128::from(b));
    let mut carry = false;
    for j in 0..4 {
        (t[j], carry) = carrying_add(t[j], products[j] as u64, carry);
    }
    // The partial sum is below the full one, so this cannot overflow.
    t[4] += u64::from(carry);
    let mut carry = false;
    for j in 0..4 {
        (t[j + 1], carry) = carrying_add(t[j + 1], (products[j] >> 64) as u64, carry);
    }
    debug_assert!(!carry, "sum of products overflowed five words");
}

/// One step of Montgomery's CIOS algorithm over a sum of products:
/// `t = (t + sum a_k[i] b_k + m p) / 2^64`, `m` chosen to make it exact.
///
/// If `t < B = sum b_k + p <= R` before, then, every `a_k[i]` and `m` being
/// below `2^64`, the sum is below `B + (2^64 - 1) B = 2^64 B <= 2^320` (five
/// words) and the new `t` below `B` (four words; `t[4]` is zero between
/// steps).
///
/// One product goes in as two carry chains ([`add_product`]): the fewest
/// instructions. Several go in as independent multiply-accumulate chains with
/// the carries in registers: a few more instructions, but chained `adc`s would
/// serialize on the one carry flag (measured: 10% slower for width 4).
#[inline(always)]
fn cios_step(t: &mut [u64; 5], a: &[Limbs], b: &[Limbs], i: usize) {
    if let ([a], [b]) = (a, b) {
        add_product(t, b, a[i]);
    } else {
        for (a, b) in a.iter().zip(b) {
            let (t0, c) = mac(t[0], b[0], a[i], 0);
            let (t1, c) = mac(t[1], b[1], a[i], c);
            let (t2, c) = mac(t[2], b[2], a[i], c);
            let (t3, c) = mac(t[3], b[3], a[i], c);
            *t = [t0, t1, t2, t3, t[4] + c];
        }
    }
    let m = t[0].wrapping_mul(INV);
    add_product(t, &P, m);
    debug_assert_eq!(t[0], 0);
    *t = [t[1], t[2], t[3], t[4], 0];
}

/// `REDC(X) = X / R mod p` for `X = sum a_k b_k`, reduced once for the whole
/// sum (CIOS). Requires `sum b_k + p <= R`: with every `b_k < p`, at most four
/// terms (`5p < R`). Returns `(X + M p) / R` for some `M < R`, so a value
/// below `X / R + p` (the REDC bound) and below `sum b_k + p`.
///
/// The four steps are spelled out so each compiles to straight-line code.
#[inline(always)]
pub(crate) fn sum_of_products(a: &[Limbs], b: &[Limbs]) -> Limbs {
    debug_assert_eq!(a.len(), b.len());
    let mut t = [0u64; 5];
    cios_step(&mut t, a, b, 0);
    cios_step(&mut t, a, b, 1);
    cios_step(&mut t, a, b, 2);
    cios_step(&mut t, a, b, 3);
    [t[0], t[1], t[2], t[3]]
}

/// `a b / R mod p`: [`sum_of_products`] of one pair; requires `b <= R - p`
/// (`b < 4.29 p`), returns a value below `a b / R + p` and below `b + p`.
#[inline(always)]
pub(crate) fn mul(a: &Limbs, b: &Limbs) -> Limbs {
    sum_of_products(core::slice::from_ref(a), core::slice::from_ref(b))
}

/// `a^2 / R mod p`: the full square (10 limb products instead of 16, the
/// cross products doubled by a shift), then Montgomery reduction, as in
/// arkworks. Requires `a^2 < R (R - p)` (`a < 4.76 p`, so any `a <= R - p`);
/// returns `(a^2 + M p) / R < a^2 / R + p` (the REDC bound), which is below
/// `R`, so the reduction's last carry is zero.
#[inline(always)]
pub(crate) fn square(a: &Limbs) -> Limbs {
    let mut r = [0u64; 8];
    // Cross products a_i a_j, i < j.
    for i in 0..3 {
        let mut carry = 0;
        for j in i + 1..4 {
            (r[i + j], carry) = mac(r[i + j], a[i], a[j], carry);
        }
        r[i + 4] = carry;
    }
    // Doubled: their sum is below 2^448 (words 1..=6), twice it fits in 1..=7.
    r[7] = r[6] >> 63;
    for i in (2..7).rev() {
        r[i] = (r[i] << 1) | (r[i - 1] >> 63);
    }
    r[1] <<= 1;
    // Plus the squares a_i^2.
    let mut carry = 0;
    for i in 0..4 {
        let high;
        (r[2 * i], high) = mac(r[2 * i], a[i], a[i], carry);
        (r[2 * i + 1], carry) = adc(r[2 * i + 1], high, 0);
    }
    // Montgomery reduction, one word at a time; `carry` holds the carry into
    // word i + 5.
    let mut carry = 0;
    for i in 0..4 {
        let m = r[i].wrapping_mul(INV);
        let (_, mut c) = mac(r[i], m, P[0], 0);
        for j in 1..4 {
            (r[i + j], c) = mac(r[i + j], m, P[j], c);
        }
        (r[i + 4], carry) = adc(r[i + 4], c, carry);
    }
    debug_assert_eq!(carry, 0, "REDC input out of range");
    [r[4], r[5], r[6], r[7]]
}

#[cfg(test)]
mod tests {
    //! Every operation against arkworks on values across its whole accepted
    //! range, edge values included, with the bound it promises.
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use ark_ff::{Field, MontConfig};
    use core::cmp::Ordering;
    use proptest::prelude::*;

    /// `R - p`: the largest multiplier `mul` takes whole.
    fn r_minus_p() -> Limbs {
        sub(&[0; 4], &P).0
    }

    /// The element that limbs stand for, `v / R mod p`, whatever their range.
    fn value(v: &Limbs) -> Fr {
        let mut bytes = [0u8; 32];
        for (chunk, limb) in bytes.chunks_exact_mut(8).zip(v) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        Fr::new_unchecked(Fr::from_le_bytes_mod_order(&bytes).into_bigint())
    }

    /// Compares little-endian numbers of the same length.
    fn cmp(a: &[u64], b: &[u64]) -> Ordering {
        assert_eq!(a.len(), b.len());
        a.iter().rev().cmp(b.iter().rev())
    }

    /// `floor(sum a_k b_k / R) + p` as five words: the REDC bound, rounded to
    /// the integers (a result below `X / R + p` is at most this).
    fn redc_bound(pairs: &[(Limbs, Limbs)]) -> [u64; 5] {
        let mut x = [0u64; 10];
        for (a, b) in pairs {
            for i in 0..4 {
                let mut carry = 0u128;
                for j in 0..4 {
                    let t = u128::from(x[i + j]) + u128::from(a[i]) * u128::from(b[j]) + carry;
                    x[i + j] = t as u64;
                    carry = t >> 64;
                }
                let mut k = i + 4;
                while carry != 0 {
                    let t = u128::from(x[k]) + carry;
                    x[k] = t as u64;
                    carry = t >> 64;
                    k += 1;
                }
            }
        }
        let mut out = [0u64; 5];
        let mut carry = 0u128;
        for j in 0..5 {
            let t = u128::from(x[j + 4]) + u128::from(P.get(j).copied().unwrap_or(0)) + carry;
            out[j] = t as u64;
            carry = t >> 64;
        }
        assert_eq!(x[9], 0);
        out
    }

    fn widen(v: &Limbs) -> [u64; 5] {
        [v[0], v[1], v[2], v[3], 0]
    }

    /// `v + p` as five words.
    fn plus_p(v: &Limbs) -> [u64; 5] {
        let (sum, carry) = (0..4).fold(([0u64; 5], 0u128), |(mut sum, carry), j| {
            let t = u128::from(v[j]) + u128::from(P[j]) + carry;
            sum[j] = t as u64;
            (sum, t >> 64)
        });
        [sum[0], sum[1], sum[2], sum[3], carry as u64]
    }

    fn multiple(q: usize) -> Limbs {
        MULTIPLES[q]
    }

    /// 0, 1, p - 1, p, p + 1, 2p - 1, 2p, 3p, 4p, R - p, all ones.
    fn edges() -> Vec<Limbs> {
        let one = [1, 0, 0, 0];
        vec![
            [0; 4],
            one,
            sub(&P, &one).0,
            P,
            add(&P, &one),
            sub(&multiple(2), &one).0,
            multiple(2),
            multiple(3),
            multiple(4),
            r_minus_p(),
            [u64::MAX; 4],
        ]
    }

    /// Any 256-bit value, edge values often.
    fn any_value() -> impl Strategy<Value = Limbs> {
        prop_oneof![prop::sample::select(edges()), any::<[u64; 4]>()]
    }

    /// A value `mul` and `square` accept whole: at most `R - p`.
    fn whole() -> impl Strategy<Value = Limbs> {
        any_value().prop_map(|v| {
            if cmp(&v, &r_minus_p()) == Ordering::Greater {
                sub(&v, &P).0
            } else {
                v
            }
        })
    }

    /// A canonical constant, as the permutation's tables hold.
    fn constant() -> impl Strategy<Value = Limbs> {
        prop_oneof![
            Just([0; 4]),
            Just([1, 0, 0, 0]),
            Just(sub(&P, &[1, 0, 0, 0]).0),
            any::<[u8; 32]>().prop_map(|b| Fr::from_le_bytes_mod_order(&b).0.0),
        ]
    }

    fn check_mul(a: &Limbs, b: &Limbs) {
        let r = mul(a, b);
        assert_eq!(value(&r), value(a) * value(b), "{a:x?} * {b:x?}");
        assert_ne!(cmp(&widen(&r), &redc_bound(&[(*a, *b)])), Ordering::Greater);
        assert_eq!(cmp(&widen(&r), &plus_p(b)), Ordering::Less);
    }

    fn check_square(a: &Limbs) {
        let r = square(a);
        assert_eq!(value(&r), value(a).square(), "{a:x?}^2");
        assert_ne!(cmp(&widen(&r), &redc_bound(&[(*a, *a)])), Ordering::Greater);
    }

    fn check_reduce(v: &Limbs) {
        let r = reduce(v);
        assert_eq!(value(&r), value(v));
        let bound = [P[0], P[1], P[2], P[3] + 6];
        assert_eq!(cmp(&r, &bound), Ordering::Less, "{v:x?}");
        assert_eq!(to_fr(v), value(v));
        assert_eq!(cmp(&to_fr(v).0.0, &P), Ordering::Less);
    }

    #[test]
    fn constants_match_arkworks() {
        assert_eq!(INV, <ark_bn254::FrConfig as MontConfig<4>>::INV);
        assert_eq!(TOP, P[3] + 1);
        for (q, m) in MULTIPLES.iter().enumerate() {
            assert_eq!(value(m), Fr::from(0u64), "{q} p");
        }
        // 5p < R, so MULTIPLES did not wrap, and q = v3 / TOP is at most 5.
        for q in 1..6 {
            assert_eq!(cmp(&MULTIPLES[q - 1], &MULTIPLES[q]), Ordering::Less);
        }
        assert_eq!(u64::MAX / TOP, 5);
    }

    #[test]
    fn every_pair_of_edge_values() {
        for a in edges() {
            check_reduce(&a);
            if cmp(&a, &r_minus_p()) != Ordering::Greater {
                check_square(&a);
            }
            for b in edges() {
                if cmp(&b, &r_minus_p()) != Ordering::Greater {
                    check_mul(&a, &b);
                }
            }
        }
    }

    #[test]
    fn largest_sums_of_products() {
        // All-ones multipliers against the largest constants, and against
        // whole operands summing to exactly R - p (the most CIOS takes).
        let top = sub(&P, &[1, 0, 0, 0]).0;
        for n in 1..=4 {
            let mut rest = r_minus_p();
            for _ in 1..n {
                rest = sub(&rest, &top).0;
            }
            let mut largest = vec![top; n];
            largest[0] = rest;
            for b in [vec![top; n], largest] {
                let a = vec![[u64::MAX; 4]; n];
                let r = sum_of_products(&a, &b);
                let pairs: Vec<_> = a.iter().copied().zip(b.iter().copied()).collect();
                let expected: Fr = pairs.iter().map(|(a, b)| value(a) * value(b)).sum();
                assert_eq!(value(&r), expected);
                assert_ne!(cmp(&widen(&r), &redc_bound(&pairs)), Ordering::Greater);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn mul_matches_arkworks(a in any_value(), b in whole()) {
            check_mul(&a, &b);
        }

        #[test]
        fn square_matches_arkworks(a in whole()) {
            check_square(&a);
        }

        #[test]
        fn reduce_is_congruent_and_below_p_prime(v in any_value()) {
            check_reduce(&v);
        }

        #[test]
        fn sum_of_products_matches_arkworks(pairs in prop::collection::vec((any_value(), constant()), 1..=4)) {
            let (a, b): (Vec<Limbs>, Vec<Limbs>) = pairs.iter().copied().unzip();
            let r = sum_of_products(&a, &b);
            let expected: Fr = pairs.iter().map(|(a, b)| value(a) * value(b)).sum();
            prop_assert_eq!(value(&r), expected);
            prop_assert_ne!(cmp(&widen(&r), &redc_bound(&pairs)), Ordering::Greater);
        }

        #[test]
        fn lazy_add_is_exact(a in any_value(), b in any_value()) {
            // `add` requires a + b < R; halve both to stay inside.
            let a = [a[0], a[1], a[2], a[3] >> 1];
            let b = [b[0], b[1], b[2], b[3] >> 1];
            prop_assert_eq!(value(&add(&a, &b)), value(&a) + value(&b));
        }
    }
}
