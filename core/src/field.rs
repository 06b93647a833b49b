//! The BN254 scalar field and its encodings.
//!
//! Two encodings cross trust boundaries: 32-byte little-endian (iden3's byte
//! form) and decimal strings (iden3 JSON, circom inputs). Both reject
//! non-canonical input (a value `>= r`, a wrong length, a stray character)
//! instead of reducing it, so one field element has exactly one encoding.

pub use ark_bn254::Fr;
use ark_ff::{BigInt, PrimeField};

/// The number of bytes in an encoded field element.
pub const FIELD_BYTES: usize = 32;

/// Why bytes or text are not a canonical field element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The byte form is exactly 32 bytes.
    WrongLength { got: usize },
    /// The value is not below the BN254 scalar modulus r.
    NotCanonical,
    /// Decimal text that is empty, has a character other than 0-9, or has a
    /// leading zero.
    InvalidDecimal,
}

impl core::fmt::Display for FieldError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongLength { got } => write!(f, "a field element is 32 bytes, got {got}"),
            Self::NotCanonical => f.write_str("value is not below the BN254 scalar field modulus"),
            Self::InvalidDecimal => f.write_str("not a canonical decimal number"),
        }
    }
}

impl core::error::Error for FieldError {}

/// Decodes the iden3 byte form: 32 bytes, little-endian, `< r`.
pub fn fr_from_le_bytes(bytes: &[u8]) -> Result<Fr, FieldError> {
    let array: &[u8; FIELD_BYTES] = bytes
        .try_into()
        .map_err(|_| FieldError::WrongLength { got: bytes.len() })?;
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(array.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    Fr::from_bigint(BigInt::new(limbs)).ok_or(FieldError::NotCanonical)
}

/// Encodes in the iden3 byte form: 32 bytes, little-endian.
pub fn fr_to_le_bytes(value: &Fr) -> [u8; FIELD_BYTES] {
    let mut out = [0u8; FIELD_BYTES];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(value.into_bigint().0) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// Parses canonical decimal text (`0`, or digits without a leading zero) `< r`.
pub fn fr_from_decimal(text: &str) -> Result<Fr, FieldError> {
    let digits = text.as_bytes();
    if digits.is_empty() || digits.len() > 78 || (digits.len() > 1 && digits[0] == b'0') {
        return Err(FieldError::InvalidDecimal);
    }
    let mut limbs = [0u64; 4];
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(FieldError::InvalidDecimal);
        }
        let mut carry = u128::from(digit - b'0');
        for limb in &mut limbs {
            let product = u128::from(*limb) * 10 + carry;
            *limb = product as u64;
            carry = product >> 64;
        }
        if carry != 0 {
            return Err(FieldError::NotCanonical);
        }
    }
    Fr::from_bigint(BigInt::new(limbs)).ok_or(FieldError::NotCanonical)
}

/// Formats as decimal text, the iden3 JSON form.
pub fn fr_to_decimal(value: &Fr) -> alloc::string::String {
    alloc::string::ToString::to_string(value)
}

/// Reads bit `index` of the canonical integer (bit 0 is the least significant):
/// the tree path of a key.
#[inline]
pub fn bit(value: &BigInt<4>, index: usize) -> bool {
    index < 256 && (value.0[index / 64] >> (index % 64)) & 1 == 1
}
