//! The Grain LFSR of the Poseidon paper (appendix F), used to derive the round
//! constants and the Cauchy MDS matrix of circomlib's Poseidon over BN254.
//!
//! The reference is `generate_parameters_grain.sage` invoked as
//! `1 0 254 t 8 R_P <r>`: prime field, x^alpha S-box, 254-bit elements.
//! Tests compare the result against light-poseidon's tables, so a mistake here
//! cannot go unnoticed.

use ark_bn254::Fr;
use ark_ff::{BigInt, Field, PrimeField};

const STATE_BITS: usize = 80;
const FIELD_BITS: u16 = 254;

pub struct Grain {
    state: [bool; STATE_BITS],
    head: usize,
}

impl Grain {
    pub fn new(width: u16, full_rounds: u16, partial_rounds: u16) -> Self {
        let mut bits = Vec::with_capacity(STATE_BITS);
        let mut push = |value: u64, count: u32| {
            for i in (0..count).rev() {
                bits.push((value >> i) & 1 == 1);
            }
        };
        push(1, 2); // field: GF(p)
        push(0, 4); // S-box: x^alpha
        push(u64::from(FIELD_BITS), 12);
        push(u64::from(width), 12);
        push(u64::from(full_rounds), 10);
        push(u64::from(partial_rounds), 10);
        push((1 << 30) - 1, 30);
        let mut state = [false; STATE_BITS];
        state.copy_from_slice(&bits);
        let mut grain = Self { state, head: 0 };
        for _ in 0..160 {
            grain.clock();
        }
        grain
    }

    fn tap(&self, offset: usize) -> bool {
        self.state[(self.head + offset) % STATE_BITS]
    }

    fn clock(&mut self) -> bool {
        let bit = self.tap(62) ^ self.tap(51) ^ self.tap(38) ^ self.tap(23) ^ self.tap(13) ^ self.tap(0);
        self.state[self.head] = bit;
        self.head = (self.head + 1) % STATE_BITS;
        bit
    }

    /// Self-shrinking output: a pair (1, b) yields b, a pair (0, _) yields nothing.
    fn next_bit(&mut self) -> bool {
        loop {
            let select = self.clock();
            let bit = self.clock();
            if select {
                return bit;
            }
        }
    }

    fn next_bigint(&mut self) -> BigInt<4> {
        let mut limbs = [0u64; 4];
        for i in (0..usize::from(FIELD_BITS)).rev() {
            if self.next_bit() {
                limbs[i / 64] |= 1 << (i % 64);
            }
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
