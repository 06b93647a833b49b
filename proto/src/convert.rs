//! Conversions between the wire form ([`v1::Proof`], 32-byte field elements)
//! and [`rustorium_core`]'s types.
//!
//! Decoding is strict, like core's: a field element is exactly 32 bytes,
//! little-endian, below the modulus; nothing is reduced or padded. A proof
//! whose structured fields and compact bytes are both present must say the
//! same thing in both.
//!
//! ```
//! use rustorium_core::Fr;
//! use rustorium_core::proof::Proof;
//! use rustorium_core::tree::MemoryTree;
//! use rustorium_proto::{proof_to_proto, v1};
//!
//! let mut tree = MemoryTree::new(64).unwrap();
//! tree.insert(Fr::from(1u64), Fr::from(10u64)).unwrap();
//! let lookup = tree.prove(&Fr::from(1u64)).unwrap();
//! let wire: v1::Proof = proof_to_proto(&lookup.proof, 64);
//! let back = Proof::try_from(&wire).unwrap();
//! assert_eq!(back, lookup.proof);
//! ```

use crate::v1;
use rustorium_core::field::{FieldError, Fr, fr_from_le_bytes, fr_to_le_bytes};
use rustorium_core::proof::compact::DecodeError;
use rustorium_core::proof::{NodeAux, Proof};
use rustorium_core::tree::MAX_LEVELS_LIMIT;

/// The most siblings a proof can have: leaves sit at depth at most
/// `max_levels - 1 <= 254`.
pub const MAX_SIBLINGS: usize = MAX_LEVELS_LIMIT as usize - 1;

/// Why a wire message is not a valid core value. Each variant names the bad
/// field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A lone field element (see [`fr_from_bytes`]) has the wrong length or is
    /// not below the modulus.
    #[error("field element: {source}")]
    FieldElement { source: FieldError },
    /// `siblings[index]` has the wrong length or is not below the modulus.
    #[error("siblings[{index}]: {source}")]
    Sibling { index: usize, source: FieldError },
    /// `siblings` has more entries than any tree allows.
    #[error("siblings: {got} entries, more than the {max} of the deepest tree")]
    TooManySiblings { got: usize, max: usize },
    /// `node_aux.key` has the wrong length or is not below the modulus.
    #[error("node_aux.key: {source}")]
    AuxKey { source: FieldError },
    /// `node_aux.value` has the wrong length or is not below the modulus.
    #[error("node_aux.value: {source}")]
    AuxValue { source: FieldError },
    /// `node_aux` is set while `existence` is true.
    #[error("node_aux is set in a membership proof (existence = true)")]
    AuxInMembershipProof,
    /// `compact` is not a valid iden3 compact proof.
    #[error("compact: {source}")]
    Compact { source: DecodeError },
    /// `compact` and the structured fields are both present and disagree;
    /// `field` is the first that differs: `existence`, `siblings` or
    /// `node_aux`.
    #[error("compact and the structured fields disagree on {field}")]
    CompactMismatch { field: &'static str },
}

/// Encodes a field element in the wire form: 32 bytes, little-endian.
pub fn fr_to_bytes(value: &Fr) -> Vec<u8> {
    fr_to_le_bytes(value).to_vec()
}

/// Decodes the wire form of a field element: exactly 32 bytes, little-endian,
/// below the modulus.
pub fn fr_from_bytes(bytes: &[u8]) -> Result<Fr, ConvertError> {
    fr_from_le_bytes(bytes).map_err(|source| ConvertError::FieldElement { source })
}

/// Converts a proof and states the `max_levels` of its tree
/// (`From<&Proof>` leaves it 0, "not stated").
pub fn proof_to_proto(proof: &Proof, max_levels: u16) -> v1::Proof {
    v1::Proof {
        max_levels: u32::from(max_levels),
        ..v1::Proof::from(proof)
    }
}

impl From<&NodeAux> for v1::NodeAux {
    fn from(aux: &NodeAux) -> Self {
        Self {
            key: fr_to_bytes(&aux.key),
            value: fr_to_bytes(&aux.value),
        }
    }
}

impl From<&Proof> for v1::Proof {
    /// Fills both forms: the structured fields always, `compact` when the
    /// depth is at most 240 (empty beyond). `max_levels` is 0; see
    /// [`proof_to_proto`].
    fn from(proof: &Proof) -> Self {
        Self {
            existence: proof.existence,
            siblings: proof.siblings.iter().map(fr_to_bytes).collect(),
            node_aux: proof.node_aux.as_ref().map(v1::NodeAux::from),
            // The only encoding error is a depth past the compact form's 240 levels.
            compact: proof.to_compact().unwrap_or_default(),
            max_levels: 0,
        }
    }
}

impl TryFrom<&v1::NodeAux> for NodeAux {
    type Error = ConvertError;

    fn try_from(aux: &v1::NodeAux) -> Result<Self, ConvertError> {
        Ok(Self {
            key: fr_from_le_bytes(&aux.key).map_err(|source| ConvertError::AuxKey { source })?,
            value: fr_from_le_bytes(&aux.value).map_err(|source| ConvertError::AuxValue { source })?,
        })
    }
}

impl TryFrom<&v1::Proof> for Proof {
    type Error = ConvertError;

    /// Decodes a wire proof strictly.
    ///
    /// The structured form counts as present when `existence` is true,
    /// `siblings` is non-empty or `node_aux` is set. With only one form
    /// present, that form is the proof; with both, they must decode to the
    /// same proof; with neither, the proof is the empty non-membership proof
    /// (of the empty tree). `max_levels` is not part of a core proof and is not
    /// checked here: [`Proof::verify`] takes the trusted one.
    fn try_from(message: &v1::Proof) -> Result<Self, ConvertError> {
        let structured = structured_proof(message)?;
        if message.compact.is_empty() {
            return Ok(structured);
        }
        let compact = Proof::from_compact(&message.compact).map_err(|source| ConvertError::Compact { source })?;
        let structured_present = message.existence || !message.siblings.is_empty() || message.node_aux.is_some();
        if !structured_present {
            return Ok(compact);
        }
        let mismatch = if structured.existence != compact.existence {
            Some("existence")
        } else if structured.siblings != compact.siblings {
            Some("siblings")
        } else if structured.node_aux != compact.node_aux {
            Some("node_aux")
        } else {
            None
        };
        match mismatch {
            Some(field) => Err(ConvertError::CompactMismatch { field }),
            None => Ok(structured),
        }
    }
}

fn structured_proof(message: &v1::Proof) -> Result<Proof, ConvertError> {
    if message.siblings.len() > MAX_SIBLINGS {
        return Err(ConvertError::TooManySiblings {
            got: message.siblings.len(),
            max: MAX_SIBLINGS,
        });
    }
    let siblings = message
        .siblings
        .iter()
        .enumerate()
        .map(|(index, bytes)| fr_from_le_bytes(bytes).map_err(|source| ConvertError::Sibling { index, source }))
        .collect::<Result<Vec<_>, _>>()?;
    let node_aux = message.node_aux.as_ref().map(NodeAux::try_from).transpose()?;
    if message.existence && node_aux.is_some() {
        return Err(ConvertError::AuxInMembershipProof);
    }
    Ok(Proof {
        existence: message.existence,
        siblings,
        node_aux,
    })
}
