//! Byte layouts of the keys and records the engine stores.
//!
//! User keys are escaped (`0x00 -> 0x00 0xFF`, then `0x00 0x00`) before the
//! 8-byte big-endian version is appended: the escaping keeps byte order and
//! makes every escaped key prefix-free, so "the last entry in
//! `[key ++ 0, key ++ v]`" is always an entry of `key`.

use crate::store::error::{Result, StoreError};
use rustorium_core::field::{fr_from_le_bytes, fr_to_le_bytes};
use rustorium_core::tree::{Leaf, Node};

pub const VERSION_BYTES: usize = 8;

pub fn escape_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// Reverses `escape_key` on the escaped prefix of a stored key; returns the
/// user key and the rest (the version).
pub fn unescape_key(stored: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::with_capacity(stored.len());
    let mut i = 0;
    while i < stored.len() {
        let b = stored[i];
        if b == 0 {
            match stored.get(i + 1)? {
                0xFF => out.push(0),
                0 => return Some((out, &stored[i + 2..])),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    None
}

pub fn versioned(prefix: &[u8], version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + VERSION_BYTES);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub fn split_version(key: &[u8]) -> Option<(&[u8], u64)> {
    let (prefix, version) = key.split_at_checked(key.len().checked_sub(VERSION_BYTES)?)?;
    Some((prefix, u64::from_be_bytes(version.try_into().ok()?)))
}

/// One entry of the root log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootRecord {
    pub version: u64,
    pub root: Node,
    pub timestamp_nanos: u64,
    pub op_count: u32,
    /// Live keys after this version.
    pub keys: u64,
    /// The writer epoch this version was committed under (0 outside a
    /// cluster). A shard's new owner commits a record with a higher epoch
    /// before it writes; an old owner that meets it is fenced off.
    pub epoch: u64,
}

impl RootRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.timestamp_nanos.to_be_bytes());
        out.extend_from_slice(&self.op_count.to_be_bytes());
        out.extend_from_slice(&self.keys.to_be_bytes());
        match self.root {
            Node::Empty => out.push(0),
            Node::Leaf(leaf) => {
                out.push(1);
                out.extend_from_slice(&fr_to_le_bytes(&leaf.key));
                out.extend_from_slice(&fr_to_le_bytes(&leaf.value));
            }
            Node::Middle(hash) => {
                out.push(2);
                out.extend_from_slice(&fr_to_le_bytes(&hash));
            }
        }
        // Records written before epochs existed end here and read as 0.
        if self.epoch != 0 {
            out.extend_from_slice(&self.epoch.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || StoreError::Corrupt("malformed root record".into());
        let fr = |b: &[u8]| fr_from_le_bytes(b).map_err(|_| corrupt());
        if bytes.len() < 29 {
            return Err(corrupt());
        }
        let version = u64::from_be_bytes(bytes[0..8].try_into().map_err(|_| corrupt())?);
        let timestamp_nanos = u64::from_be_bytes(bytes[8..16].try_into().map_err(|_| corrupt())?);
        let op_count = u32::from_be_bytes(bytes[16..20].try_into().map_err(|_| corrupt())?);
        let keys = u64::from_be_bytes(bytes[20..28].try_into().map_err(|_| corrupt())?);
        let (tag, mut body) = (bytes[28], &bytes[29..]);
        let root_len = match tag {
            1 => 64,
            2 => 32,
            _ => 0,
        };
        let mut epoch = 0;
        if body.len() == root_len + 8 {
            epoch = u64::from_be_bytes(body[root_len..].try_into().map_err(|_| corrupt())?);
            body = &body[..root_len];
        }
        let root = match (tag, body.len()) {
            (0, 0) => Node::Empty,
            (1, 64) => Node::Leaf(Leaf::new(fr(&body[..32])?, fr(&body[32..])?)),
            (2, 32) => Node::Middle(fr(body)?),
            _ => return Err(corrupt()),
        };
        Ok(Self {
            version,
            root,
            timestamp_nanos,
            op_count,
            keys,
            epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_order_and_is_prefix_free() {
        let keys: Vec<&[u8]> = vec![
            b"", b"\0", b"\0\0", b"\0\x01", b"a", b"a\0", b"a\0\0", b"a\x01", b"ab", b"\xff", b"\xff\0",
        ];
        let escaped: Vec<Vec<u8>> = keys.iter().map(|k| escape_key(k)).collect();
        for (i, a) in escaped.iter().enumerate() {
            for (j, b) in escaped.iter().enumerate() {
                assert_eq!(a.cmp(b), keys[i].cmp(keys[j]), "{:?} vs {:?}", keys[i], keys[j]);
                if i != j {
                    assert!(!b.starts_with(a), "{:?} is a prefix of {:?}", keys[i], keys[j]);
                }
            }
            let stored = versioned(a, 7);
            let (key, rest) = unescape_key(&stored).unwrap();
            assert_eq!(key, keys[i]);
            assert_eq!(rest, 7u64.to_be_bytes());
        }
    }

    #[test]
    fn root_records_round_trip() {
        use rustorium_core::Fr;
        for root in [
            Node::Empty,
            Node::Leaf(Leaf::new(Fr::from(3u64), Fr::from(4u64))),
            Node::Middle(Fr::from(9u64)),
        ] {
            for epoch in [0, 1, u64::MAX] {
                let record = RootRecord {
                    version: 5,
                    root,
                    timestamp_nanos: 77,
                    op_count: 3,
                    keys: 2,
                    epoch,
                };
                assert_eq!(RootRecord::decode(&record.encode()).unwrap(), record);
            }
        }
        assert!(RootRecord::decode(&[1, 2, 3]).is_err());
    }
}
