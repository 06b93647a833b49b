//! The verification routine: one function, used by the node, the CLI and the
//! WASM client.
//!
//! Besides recomputing the root it refuses every proof that is not the one
//! canonical proof of its statement: too deep for `max_levels`, a zero last
//! sibling (a leaf is always at its shallowest unique depth), an aux leaf in a
//! membership proof, an aux key equal to the key or off the key's path, and a
//! claim (value or absence) the proof does not make.

use super::Proof;
use crate::field::Fr;
use crate::tree::MAX_LEVELS_LIMIT;
use crate::tree::node::{key_path, leaf_hash, middle_hash, path_bit, paths_share_prefix};
use ark_ff::Zero;

/// Why a proof was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// `max_levels` must be between 1 and 255.
    InvalidMaxLevels { max_levels: u16 },
    /// A leaf sits at depth `<= max_levels - 1`, so a proof has at most that many siblings.
    TooManySiblings { got: usize, max: usize },
    /// The last sibling is empty: no canonical tree has a leaf or an empty
    /// slot beside an empty sibling.
    EmptyLastSibling,
    /// A membership proof carries an aux leaf.
    AuxInMembershipProof,
    /// The aux leaf has the searched key itself: the key is present.
    AuxKeyIsKey,
    /// The aux leaf's path leaves the key's path above the proof's depth, so
    /// it cannot sit where the key would.
    AuxOffPath,
    /// A value was claimed, but the proof shows the key absent.
    ProvesAbsence,
    /// Absence was claimed, but the proof shows the key present.
    ProvesPresence,
    /// The recomputed root differs from the trusted root.
    RootMismatch,
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidMaxLevels { max_levels } => write!(
                f,
                "max_levels must be between 1 and {MAX_LEVELS_LIMIT}, got {max_levels}"
            ),
            Self::TooManySiblings { got, max } => write!(
                f,
                "proof has {got} siblings, more than the {max} that max_levels allows"
            ),
            Self::EmptyLastSibling => f.write_str("proof is not canonical: its last sibling is empty"),
            Self::AuxInMembershipProof => f.write_str("membership proof carries an aux leaf"),
            Self::AuxKeyIsKey => f.write_str("aux leaf has the proven key: the key is present, not absent"),
            Self::AuxOffPath => f.write_str("aux leaf's path does not follow the key's path"),
            Self::ProvesAbsence => f.write_str("proof shows the key is absent, but a value was claimed"),
            Self::ProvesPresence => f.write_str("proof shows the key is present, but absence was claimed"),
            Self::RootMismatch => f.write_str("proof does not lead to the trusted root"),
        }
    }
}

impl core::error::Error for VerifyError {}

/// The root a proof leads to for `key` and, in a membership proof, `value`,
/// after the structural checks of [`Proof::verify`].
pub fn compute_root(proof: &Proof, key: &Fr, value: Option<&Fr>, max_levels: u16) -> Result<Fr, VerifyError> {
    if max_levels == 0 || max_levels > MAX_LEVELS_LIMIT {
        return Err(VerifyError::InvalidMaxLevels { max_levels });
    }
    let max = usize::from(max_levels) - 1;
    if proof.depth() > max {
        return Err(VerifyError::TooManySiblings {
            got: proof.depth(),
            max,
        });
    }
    if proof.siblings.last().is_some_and(Zero::is_zero) {
        return Err(VerifyError::EmptyLastSibling);
    }
    let path = key_path(key);
    let bottom = if proof.existence {
        if proof.node_aux.is_some() {
            return Err(VerifyError::AuxInMembershipProof);
        }
        let value = value.ok_or(VerifyError::ProvesPresence)?;
        leaf_hash(*key, *value)
    } else {
        if value.is_some() {
            return Err(VerifyError::ProvesAbsence);
        }
        match &proof.node_aux {
            Some(aux) if aux.key == *key => return Err(VerifyError::AuxKeyIsKey),
            Some(aux) if !paths_share_prefix(&key_path(&aux.key), &path, proof.depth()) => {
                return Err(VerifyError::AuxOffPath);
            }
            Some(aux) => leaf_hash(aux.key, aux.value),
            None => Fr::zero(),
        }
    };
    let mut node = bottom;
    for (depth, sibling) in proof.siblings.iter().enumerate().rev() {
        node = if path_bit(&path, depth) {
            middle_hash(*sibling, node)
        } else {
            middle_hash(node, *sibling)
        };
    }
    Ok(node)
}

impl Proof {
    /// Checks that this proof shows `key` holding `value` (`Some`) or absent
    /// (`None`) in the tree with root `root` and the given `max_levels`.
    pub fn verify(&self, root: &Fr, key: &Fr, value: Option<&Fr>, max_levels: u16) -> Result<(), VerifyError> {
        if compute_root(self, key, value, max_levels)? == *root {
            Ok(())
        } else {
            Err(VerifyError::RootMismatch)
        }
    }
}
