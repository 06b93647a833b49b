//! Value and page records at rest: optional zstd compression (values only),
//! optional XChaCha20-Poly1305 encryption bound to the record's storage key.
//!
//! ```text
//! record = [flags: u8] payload
//! flags  = bit 0: zstd-compressed, bit 1: encrypted
//! payload (encrypted) = nonce (24 bytes, random) ++ AEAD(plain, aad = table tag ++ storage key)
//! ```
//! The empty record is a tombstone. Binding the key as associated data means
//! a record copied under another key or version fails to decrypt.

use crate::store::backend::Table;
use crate::store::config::{KeySource, StorageConfig};
use crate::store::error::{Result, StoreError};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const COMPRESSED: u8 = 1;
const ENCRYPTED: u8 = 2;
const NONCE_BYTES: usize = 24;
const KEY_CHECK: &[u8] = b"rustorium key check v1";

/// Encodes and decodes records according to the store's settings.
pub struct RecordCodec {
    compression_threshold: Option<usize>,
    compression_level: i32,
    cipher: Option<XChaCha20Poly1305>,
}

impl std::fmt::Debug for RecordCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCodec")
            .field("compression_threshold", &self.compression_threshold)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

/// Reads a 32-byte key given as 64 hex characters.
pub fn load_key(source: &KeySource) -> Result<[u8; 32]> {
    let (text, from) = match source {
        KeySource::File(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| StoreError::EncryptionKey(format!("reading key file {}: {e}", path.display())))?,
            format!("key file {}", path.display()),
        ),
        KeySource::Env(var) => (
            std::env::var(var)
                .map_err(|_| StoreError::EncryptionKey(format!("environment variable {var} is not set")))?,
            format!("environment variable {var}"),
        ),
    };
    let bytes = hex::decode(text.trim()).map_err(|e| StoreError::EncryptionKey(format!("{from}: not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        StoreError::EncryptionKey(format!(
            "{from}: a key is 32 bytes (64 hex characters), got {}",
            b.len()
        ))
    })
}

impl RecordCodec {
    pub fn new(config: &StorageConfig) -> Result<Self> {
        let cipher = if config.encryption_enabled {
            let source = config.encryption_key.as_ref().ok_or_else(|| {
                StoreError::Config(
                    "encryption_enabled needs encryption_key (a key file or an environment variable)".into(),
                )
            })?;
            Some(XChaCha20Poly1305::new(&load_key(source)?.into()))
        } else {
            None
        };
        Ok(Self {
            compression_threshold: config.compression_enabled.then_some(config.compression_threshold),
            compression_level: config.compression_level,
            cipher,
        })
    }

    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Encodes `plain` stored under `(table, key)`; returns the record and
    /// whether compression was applied.
    pub fn encode(&self, table: Table, key: &[u8], plain: &[u8]) -> Result<(Vec<u8>, bool)> {
        let mut flags = 0u8;
        let mut body = None;
        // Pages are field elements (hashes, hashed keys and values), which do
        // not compress: trying costs a zstd context per page for nothing.
        if let Some(threshold) = self.compression_threshold
            && plain.len() >= threshold
            && table != Table::Pages
        {
            let compressed = zstd::bulk::compress(plain, self.compression_level)
                .map_err(|e| StoreError::Corrupt(format!("zstd compression failed: {e}")))?;
            if compressed.len() < plain.len() {
                flags |= COMPRESSED;
                body = Some(compressed);
            }
        }
        let body = body.as_deref().unwrap_or(plain);
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + body.len() + 16);
        match &self.cipher {
            None => {
                out.push(flags);
                out.extend_from_slice(body);
            }
            Some(cipher) => {
                out.push(flags | ENCRYPTED);
                let mut nonce = [0u8; NONCE_BYTES];
                getrandom::fill(&mut nonce)
                    .map_err(|e| StoreError::Corrupt(format!("no randomness for a nonce: {e}")))?;
                let aad = associated_data(table, key);
                let sealed = cipher
                    .encrypt(XNonce::from_slice(&nonce), Payload { msg: body, aad: &aad })
                    .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
        }
        Ok((out, flags & COMPRESSED != 0))
    }

    pub fn decode(&self, table: Table, key: &[u8], record: &[u8]) -> Result<Vec<u8>> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("{} record: {what}", table.name()));
        let (&flags, rest) = record.split_first().ok_or_else(|| corrupt("empty"))?;
        if flags & !(COMPRESSED | ENCRYPTED) != 0 {
            return Err(corrupt("unknown flags"));
        }
        let opened;
        let body = if flags & ENCRYPTED != 0 {
            let cipher = self
                .cipher
                .as_ref()
                .ok_or_else(|| corrupt("encrypted, but the store is opened without a key"))?;
            let (nonce, sealed) = rest.split_at_checked(NONCE_BYTES).ok_or_else(|| corrupt("truncated"))?;
            let aad = associated_data(table, key);
            opened = cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
                .map_err(|_| corrupt("authentication failed"))?;
            opened.as_slice()
        } else {
            if self.cipher.is_some() {
                return Err(corrupt("stored unencrypted in an encrypted store"));
            }
            rest
        };
        if flags & COMPRESSED != 0 {
            zstd::stream::decode_all(body).map_err(|e| corrupt(&format!("zstd: {e}")))
        } else {
            Ok(body.to_vec())
        }
    }

    /// A record that proves the key on a later open.
    pub fn key_check(&self) -> Result<Option<Vec<u8>>> {
        if self.cipher.is_none() {
            return Ok(None);
        }
        self.encode(Table::Meta, b"key_check", KEY_CHECK).map(|(r, _)| Some(r))
    }

    pub fn matches_key_check(&self, record: &[u8]) -> bool {
        self.decode(Table::Meta, b"key_check", record)
            .is_ok_and(|plain| plain == KEY_CHECK)
    }
}

fn associated_data(table: Table, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + key.len());
    aad.push(table.tag());
    aad.extend_from_slice(key);
    aad
}
