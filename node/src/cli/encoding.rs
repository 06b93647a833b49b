//! How keys, values and roots are written on the command line and in files,
//! and how keys and values become tree field elements.
//!
//! - Keys and values: UTF-8 text by default; `--hex` for hex bytes; `--field`
//!   for a decimal field element, sent as its 32-byte little-endian form (what
//!   a field-mode store takes).
//! - Roots: printed as the 64 hex digits of the 32-byte little-endian wire
//!   form (iden3's `Hash.hex()`); read as that (optionally `0x`-prefixed) or as
//!   a decimal field element.

use super::error::CliError;
use crate::store::KeyMode;
use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::field::{fr_from_decimal, fr_from_le_bytes, fr_to_decimal, fr_to_le_bytes};
use rustorium_proto::v1;

/// How keys and values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text.
    #[default]
    Text,
    /// Hex digits, optionally `0x`-prefixed.
    Hex,
    /// A canonical decimal field element (32 bytes little-endian on the wire).
    Field,
}

/// The `--hex` / `--field` flags.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct EncodingArgs {
    /// Keys and values are hex bytes (e.g. 68656c6c6f) instead of UTF-8 text.
    #[arg(long, global = true, conflicts_with = "field")]
    pub hex: bool,
    /// Keys and values are decimal field elements, sent as 32 bytes little-endian (for field-mode stores).
    #[arg(long, global = true)]
    pub field: bool,
}

impl EncodingArgs {
    pub fn encoding(&self) -> Encoding {
        if self.hex {
            Encoding::Hex
        } else if self.field {
            Encoding::Field
        } else {
            Encoding::Text
        }
    }
}

impl Encoding {
    /// The wire bytes of a key or value written in this encoding; `what`
    /// names it in errors ("key", "value", "line 3 key").
    pub fn decode(self, what: &str, text: &str) -> Result<Vec<u8>, CliError> {
        match self {
            Self::Text => Ok(text.as_bytes().to_vec()),
            Self::Hex => {
                let digits = text.strip_prefix("0x").unwrap_or(text);
                hex::decode(digits).map_err(|e| CliError::Input(format!("{what} {text:?} is not hex: {e}")))
            }
            Self::Field => fr_from_decimal(text)
                .map(|fr| fr_to_le_bytes(&fr).to_vec())
                .map_err(|e| CliError::Input(format!("{what} {text:?} is not a decimal field element: {e}"))),
        }
    }

    /// Writes wire bytes in this encoding.
    pub fn encode(self, what: &str, bytes: &[u8]) -> Result<String, CliError> {
        match self {
            Self::Text => String::from_utf8(bytes.to_vec()).map_err(|_| {
                CliError::Input(format!(
                    "{what} is not UTF-8 text ({} bytes, hex {}); use --hex",
                    bytes.len(),
                    abbreviated_hex(bytes)
                ))
            }),
            Self::Hex => Ok(hex::encode(bytes)),
            Self::Field => fr_from_le_bytes(bytes).map(|fr| fr_to_decimal(&fr)).map_err(|e| {
                CliError::Input(format!(
                    "{what} is not a field element ({e}; hex {}); use --hex",
                    abbreviated_hex(bytes)
                ))
            }),
        }
    }
}

fn abbreviated_hex(bytes: &[u8]) -> String {
    if bytes.len() <= 32 {
        hex::encode(bytes)
    } else {
        format!("{}...", hex::encode(&bytes[..32]))
    }
}

/// The store's key mode as GetRoot states it.
pub fn key_mode_from_wire(mode: i32) -> Result<KeyMode, CliError> {
    match v1::KeyMode::try_from(mode) {
        Ok(v1::KeyMode::Bytes) => Ok(KeyMode::Bytes),
        Ok(v1::KeyMode::Field) => Ok(KeyMode::Field),
        _ => Err(CliError::Input(format!(
            "the server reports key mode {mode}, which this client does not know"
        ))),
    }
}

pub fn key_mode_name(mode: KeyMode) -> &'static str {
    match mode {
        KeyMode::Bytes => "bytes",
        KeyMode::Field => "field",
    }
}

/// The tree field element of a key or value in a store of `mode`: bytes mode
/// hashes the bytes (`bytes_to_field`), field mode reads them as a 32-byte
/// little-endian field element.
pub fn leaf_field(mode: KeyMode, what: &str, bytes: &[u8]) -> Result<Fr, CliError> {
    match mode {
        KeyMode::Bytes => Ok(bytes_to_field(bytes)),
        KeyMode::Field => fr_from_le_bytes(bytes).map_err(|e| {
            CliError::Input(format!(
                "this store is in field mode: the {what} must be a field element ({e}); pass it with --field (decimal) or --hex (32 bytes little-endian)"
            ))
        }),
    }
}

/// A root in the printed form: 64 hex digits of the 32-byte little-endian encoding.
pub fn root_hex(root: &Fr) -> String {
    hex::encode(fr_to_le_bytes(root))
}

/// Reads a root given as 64 hex digits (the printed form, optionally
/// `0x`-prefixed) or as a decimal field element.
pub fn parse_root(what: &str, text: &str) -> Result<Fr, CliError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bad = |reason: String| CliError::Input(format!("{what} {text:?}: {reason}"));
    if digits.len() == 64 || text.starts_with("0x") {
        let bytes = hex::decode(digits).map_err(|e| bad(format!("not 64 hex digits: {e}")))?;
        fr_from_le_bytes(&bytes).map_err(|e| bad(e.to_string()))
    } else {
        fr_from_decimal(text).map_err(|e| {
            bad(format!(
                "neither 64 hex digits (32 bytes little-endian) nor a decimal field element: {e}"
            ))
        })
    }
}

/// Parses a duration such as `10s`, `500ms`, `2m` or `10` (seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 * 365.0 {
        return Err(format!("{text:?} is not a positive duration of at most a year"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_round_trip_in_hex_and_decimal() {
        let root = Fr::from(123_456_789u64);
        assert_eq!(parse_root("root", &root_hex(&root)).unwrap(), root);
        assert_eq!(parse_root("root", &format!("0x{}", root_hex(&root))).unwrap(), root);
        assert_eq!(parse_root("root", "123456789").unwrap(), root);
        assert!(parse_root("root", "0xzz").is_err());
        assert!(parse_root("root", &"f".repeat(64)).is_err()); // not below r
    }

    #[test]
    fn encodings_round_trip() {
        for (encoding, text) in [
            (Encoding::Text, "héllo"),
            (Encoding::Hex, "00ff10"),
            (Encoding::Field, "42"),
        ] {
            let bytes = encoding.decode("key", text).unwrap();
            assert_eq!(encoding.encode("key", &bytes).unwrap(), text);
        }
        assert!(Encoding::Hex.decode("key", "zz").is_err());
        assert!(Encoding::Text.encode("value", &[0xff]).is_err());
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("soon").is_err());
    }
}
