//! Inputs for circomlib's `SMTVerifier(nLevels)`.
//!
//! circomlib expects `siblings` padded with zeros to `nLevels` (the last level
//! must stay zero, so `nLevels >= depth + 1`), `fnc = 0` for inclusion and `1`
//! for exclusion, and for an exclusion that ends at an empty slot
//! `isOld0 = 1` (js-merkletree leaves it 0 there, which the circuit rejects).

use super::Proof;
use crate::field::Fr;
use alloc::vec::Vec;
use ark_ff::Zero;

/// The witness inputs of `SMTVerifier(nLevels)`, as field elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtVerifierInputs {
    pub enabled: bool,
    pub root: Fr,
    pub siblings: Vec<Fr>,
    pub old_key: Fr,
    pub old_value: Fr,
    pub is_old0: bool,
    pub key: Fr,
    pub value: Fr,
    /// 0 proves inclusion, 1 proves exclusion.
    pub fnc: u8,
}

/// Why a proof cannot be turned into circuit inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircomError {
    /// `SMTVerifier(n_levels)` needs `n_levels >= depth + 1`.
    TooFewLevels { depth: usize, n_levels: usize },
    /// A membership proof needs the value it proves.
    MissingValue,
}

impl core::fmt::Display for CircomError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooFewLevels { depth, n_levels } => {
                write!(
                    f,
                    "a proof of depth {depth} needs SMTVerifier with at least {} levels, got {n_levels}",
                    depth + 1
                )
            }
            Self::MissingValue => f.write_str("a membership proof needs its value"),
        }
    }
}

impl core::error::Error for CircomError {}

impl Proof {
    /// `SMTVerifier(n_levels)` inputs proving this proof's statement about
    /// `key` (`value` is required for a membership proof, ignored otherwise).
    pub fn to_circom(
        &self,
        root: &Fr,
        key: &Fr,
        value: Option<&Fr>,
        n_levels: usize,
    ) -> Result<SmtVerifierInputs, CircomError> {
        if n_levels < self.depth() + 1 {
            return Err(CircomError::TooFewLevels {
                depth: self.depth(),
                n_levels,
            });
        }
        let mut siblings = self.siblings.clone();
        siblings.resize(n_levels, Fr::zero());
        let (old_key, old_value, is_old0, value, fnc) = if self.existence {
            (
                Fr::zero(),
                Fr::zero(),
                false,
                *value.ok_or(CircomError::MissingValue)?,
                0,
            )
        } else {
            match &self.node_aux {
                Some(aux) => (aux.key, aux.value, false, Fr::zero(), 1),
                None => (Fr::zero(), Fr::zero(), true, Fr::zero(), 1),
            }
        };
        Ok(SmtVerifierInputs {
            enabled: true,
            root: *root,
            siblings,
            old_key,
            old_value,
            is_old0,
            key: *key,
            value,
            fnc,
        })
    }
}
