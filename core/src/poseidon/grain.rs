//! The Grain LFSR of the Poseidon paper (appendix F), used to derive the round
//! constants and the Cauchy MDS matrix of circomlib's Poseidon over BN254.
//!
//! The reference is `generate_parameters_grain.sage` invoked as
//! `1 0 254 t 8 R_P <r>`: prime field, x^alpha S-box, 254-bit elements.
//! Tests compare the result against light-poseidon's tables, so a mistake here
//! cannot go unnoticed.
//!
//! Shared by the crate (widths derived at run time) and the build script
//! (static tables, `#[path]`-included), so it names `ark_bn254` and `alloc`
//! directly and uses nothing else of the crate.

use alloc::vec::Vec;
use ark_bn254::Fr;
use ark_ff::{BigInt, Field, PrimeField};

/// circomlib's number of full rounds, for every width.
pub const FULL_ROUNDS: usize = 8;

/// circomlib's partial-round counts for widths `t = 2..=17`.
pub const PARTIAL_ROUNDS: [usize; 16] = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

const STATE_BITS: u32 = 80;
const FIELD_BITS: u16 = 254;

/// Register bits computed per step: a new bit's nearest tap is 62 bits after
/// the oldest, so the next 18 bits depend on the register alone. 16 keeps the
/// output pairs whole.
const STEP_BITS: u32 = 16;

pub struct Grain {
    /// The 80-bit shift register; bit `i` is the `i`-th oldest bit.
    state: u128,
    /// Register output not consumed yet, first in bit 0; `pending` bits.
    ahead: u32,
    pending: u32,
}

impl Grain {
    pub fn new(width: u16, full_rounds: u16, partial_rounds: u16) -> Self {
        let mut state = 0u128;
        let mut filled = 0;
        let mut push = |value: u64, count: u32| {
            for i in (0..count).rev() {
                state |= u128::from((value >> i) & 1) << filled;
                filled += 1;
            }
        };
        push(1, 2); // field: GF(p)
        push(0, 4); // S-box: x^alpha
        push(u64::from(FIELD_BITS), 12);
        push(u64::from(width), 12);
        push(u64::from(full_rounds), 10);
        push(u64::from(partial_rounds), 10);
        push((1 << 30) - 1, 30);
        debug_assert_eq!(filled, STATE_BITS);
        let mut grain = Self {
            state,
            ahead: 0,
            pending: 0,
        };
        // The first 160 output bits are discarded.
        for _ in 0..160 / STEP_BITS {
            grain.step();
        }
        grain.pending = 0;
        grain
    }

    /// Clocks the register `STEP_BITS` times:
    /// `b_{i+80} = b_{i+62} + b_{i+51} + b_{i+38} + b_{i+23} + b_{i+13} + b_i`.
    fn step(&mut self) {
        let s = self.state;
        let new = ((s >> 62) ^ (s >> 51) ^ (s >> 38) ^ (s >> 23) ^ (s >> 13) ^ s) & ((1 << STEP_BITS) - 1);
        self.state = (s >> STEP_BITS) | (new << (STATE_BITS - STEP_BITS));
        self.ahead = new as u32;
        self.pending = STEP_BITS;
    }

    /// The next two output bits, the first in bit 0.
    fn next_pair(&mut self) -> u32 {
        if self.pending == 0 {
            self.step();
        }
        let pair = self.ahead & 0b11;
        self.ahead >>= 2;
        self.pending -= 2;
        pair
    }

    /// 254 bits of the self-shrinking output, most significant first: a pair
    /// `(1, b)` yields `b`, a pair `(0, _)` yields nothing. Branch-free but for
    /// the loop, since the selector bits are random.
    fn next_bigint(&mut self) -> BigInt<4> {
        let mut limbs = [0u64; 4];
        let mut remaining = usize::from(FIELD_BITS);
        while remaining > 0 {
            let pair = self.next_pair();
            let (select, bit) = (pair & 1, pair >> 1);
            let at = remaining - 1;
            limbs[at / 64] |= u64::from(select & bit) << (at % 64);
            remaining -= select as usize;
        }
        BigInt::new(limbs)
    }

    /// Round constants are rejection-sampled below the modulus.
    pub fn next_field_element_rejecting(&mut self) -> Fr {
        loop {
            if let Some(value) = Fr::from_bigint(self.next_bigint()) {
                return value;
            }
        }
    }

    /// The MDS sampling reduces modulo r instead of rejecting.
    pub fn next_field_element_reducing(&mut self) -> Fr {
        let bytes: Vec<u8> = self
            .next_bigint()
            .0
            .iter()
            .flat_map(|limb| limb.to_le_bytes())
            .collect();
        Fr::from_le_bytes_mod_order(&bytes)
    }
}

/// Round constants (flattened, round-major) and the MDS matrix for width `t`.
pub fn parameters(width: usize, full_rounds: usize, partial_rounds: usize) -> (Vec<Fr>, Vec<Vec<Fr>>) {
    let mut grain = Grain::new(width as u16, full_rounds as u16, partial_rounds as u16);
    let constants = (0..(full_rounds + partial_rounds) * width)
        .map(|_| grain.next_field_element_rejecting())
        .collect();
    let (xs, ys) = loop {
        let sample: Vec<Fr> = (0..2 * width).map(|_| grain.next_field_element_reducing()).collect();
        let mut sorted = sample.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() == sample.len() {
            break (sample[..width].to_vec(), sample[width..].to_vec());
        }
    };
    let mds = xs
        .iter()
        .map(|x| {
            ys.iter()
                .map(|y| (*x + y).inverse().expect("x_i + y_j != 0 for a Cauchy matrix"))
                .collect()
        })
        .collect();
    (constants, mds)
}
