//! The iden3 compact byte form of a proof.
//!
//! ```text
//! [flags: u8]      bit 0: not existence; bit 1: aux leaf present; others 0
//! [depth: u8]      number of siblings
//! [bitmap: 30 B]   sibling i non-empty <=> byte[29 - i / 8] bit (i % 8)
//! [siblings]       each non-empty sibling, 32 bytes little-endian, by depth
//! [aux]            aux key, aux value, 32 bytes little-endian each
//! ```
//! Decoding accepts only what encoding produces: no unknown flag, no bitmap
//! bit at or past the depth, no zero sibling marked non-empty, no trailing or
//! missing bytes, every field element canonical.

use super::{NodeAux, Proof};
use crate::field::{FIELD_BYTES, FieldError, Fr, fr_from_le_bytes, fr_to_le_bytes};
use alloc::vec::Vec;
use ark_ff::Zero;

const BITMAP_BYTES: usize = 30;
const HEADER_BYTES: usize = 2 + BITMAP_BYTES;
/// The deepest proof the bitmap can describe.
pub const MAX_COMPACT_DEPTH: usize = BITMAP_BYTES * 8;
const FLAG_ABSENT: u8 = 1;
const FLAG_AUX: u8 = 2;

/// Why bytes are not a compact proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    TooShort { got: usize },
    UnknownFlags { flags: u8 },
    AuxInMembershipProof,
    DepthTooLarge { depth: usize },
    BitmapBeyondDepth,
    WrongLength { expected: usize, got: usize },
    ZeroSiblingMarkedNonEmpty { depth: usize },
    Field(FieldError),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { got } => write!(f, "compact proof needs at least {HEADER_BYTES} bytes, got {got}"),
            Self::UnknownFlags { flags } => write!(f, "unknown proof flags 0x{flags:02x}"),
            Self::AuxInMembershipProof => f.write_str("membership proof carries an aux leaf"),
            Self::DepthTooLarge { depth } => write!(
                f,
                "depth {depth} exceeds the {MAX_COMPACT_DEPTH} levels of the compact form"
            ),
            Self::BitmapBeyondDepth => f.write_str("sibling bitmap marks a level at or past the depth"),
            Self::WrongLength { expected, got } => {
                write!(f, "compact proof should be {expected} bytes, got {got}")
            }
            Self::ZeroSiblingMarkedNonEmpty { depth } => {
                write!(f, "sibling at level {depth} is marked non-empty but is zero")
            }
            Self::Field(e) => write!(f, "bad field element: {e}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a proof has no compact form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    TooDeep { depth: usize },
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooDeep { depth } => write!(
                f,
                "a proof of depth {depth} exceeds the {MAX_COMPACT_DEPTH} levels of the compact form"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

fn bitmap_position(level: usize) -> (usize, u8) {
    (2 + BITMAP_BYTES - 1 - level / 8, 1 << (level % 8))
}

impl Proof {
    /// Encodes in the iden3 compact byte form.
    pub fn to_compact(&self) -> Result<Vec<u8>, EncodeError> {
        let depth = self.depth();
        if depth > MAX_COMPACT_DEPTH {
            return Err(EncodeError::TooDeep { depth });
        }
        let mut out = alloc::vec![0u8; HEADER_BYTES];
        if !self.existence {
            out[0] |= FLAG_ABSENT;
        }
        if self.node_aux.is_some() {
            out[0] |= FLAG_AUX;
        }
        out[1] = depth as u8;
        for (level, sibling) in self.siblings.iter().enumerate() {
            if !sibling.is_zero() {
                let (byte, mask) = bitmap_position(level);
                out[byte] |= mask;
                out.extend_from_slice(&fr_to_le_bytes(sibling));
            }
        }
        if let Some(aux) = &self.node_aux {
            out.extend_from_slice(&fr_to_le_bytes(&aux.key));
            out.extend_from_slice(&fr_to_le_bytes(&aux.value));
        }
        Ok(out)
    }

    /// Decodes the iden3 compact byte form, strictly.
    pub fn from_compact(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < HEADER_BYTES {
            return Err(DecodeError::TooShort { got: bytes.len() });
        }
        let flags = bytes[0];
        if flags & !(FLAG_ABSENT | FLAG_AUX) != 0 {
            return Err(DecodeError::UnknownFlags { flags });
        }
        let existence = flags & FLAG_ABSENT == 0;
        let has_aux = flags & FLAG_AUX != 0;
        if existence && has_aux {
            return Err(DecodeError::AuxInMembershipProof);
        }
        let depth = usize::from(bytes[1]);
        if depth > MAX_COMPACT_DEPTH {
            return Err(DecodeError::DepthTooLarge { depth });
        }
        let non_empty: Vec<bool> = (0..MAX_COMPACT_DEPTH)
            .map(|level| {
                let (byte, mask) = bitmap_position(level);
                bytes[byte] & mask != 0
            })
            .collect();
        if non_empty[depth..].iter().any(|&b| b) {
            return Err(DecodeError::BitmapBeyondDepth);
        }
        let count = non_empty.iter().filter(|&&b| b).count();
        let expected = HEADER_BYTES + FIELD_BYTES * (count + if has_aux { 2 } else { 0 });
        if bytes.len() != expected {
            return Err(DecodeError::WrongLength {
                expected,
                got: bytes.len(),
            });
        }
        let mut elements = bytes[HEADER_BYTES..].chunks_exact(FIELD_BYTES).map(fr_from_le_bytes);
        let mut siblings = Vec::with_capacity(depth);
        for (level, &marked) in non_empty[..depth].iter().enumerate() {
            if marked {
                // The length check above guarantees one element per marked level.
                let sibling = elements.next().unwrap_or(Ok(Fr::zero())).map_err(DecodeError::Field)?;
                if sibling.is_zero() {
                    return Err(DecodeError::ZeroSiblingMarkedNonEmpty { depth: level });
                }
                siblings.push(sibling);
            } else {
                siblings.push(Fr::zero());
            }
        }
        let node_aux = if has_aux {
            let key = elements.next().unwrap_or(Ok(Fr::zero())).map_err(DecodeError::Field)?;
            let value = elements.next().unwrap_or(Ok(Fr::zero())).map_err(DecodeError::Field)?;
            Some(NodeAux { key, value })
        } else {
            None
        };
        Ok(Self {
            existence,
            siblings,
            node_aux,
        })
    }
}
