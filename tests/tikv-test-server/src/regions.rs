//! Regions: contiguous key ranges, each led by one store, with the epoch a
//! split bumps. PD hands them out with keys in TiKV's memcomparable form.

use crate::proto::{errorpb, metapb};

/// One region in raw (decoded) keys; an empty `end` is unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub id: u64,
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub version: u64,
    pub conf_ver: u64,
    pub leader_store: u64,
}

impl Region {
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }

    pub fn peer(&self, store: u64) -> metapb::Peer {
        metapb::Peer {
            id: self.id * 1000 + store,
            store_id: store,
            ..metapb::Peer::default()
        }
    }

    /// The region as PD reports it: memcomparable keys, a peer on every store.
    pub fn to_meta(&self, stores: &[u64]) -> metapb::Region {
        metapb::Region {
            id: self.id,
            start_key: if self.start.is_empty() {
                Vec::new()
            } else {
                encode_bytes(&self.start)
            },
            end_key: if self.end.is_empty() {
                Vec::new()
            } else {
                encode_bytes(&self.end)
            },
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: self.conf_ver,
                version: self.version,
            }),
            peers: stores.iter().map(|s| self.peer(*s)).collect(),
            ..metapb::Region::default()
        }
    }
}

/// The region map.
#[derive(Debug)]
pub struct Regions {
    pub regions: Vec<Region>,
    next_id: u64,
}

impl Regions {
    pub fn new(leader_store: u64) -> Self {
        Self {
            regions: vec![Region {
                id: 2,
                start: Vec::new(),
                end: Vec::new(),
                version: 1,
                conf_ver: 1,
                leader_store,
            }],
            next_id: 3,
        }
    }

    pub fn for_key(&self, key: &[u8]) -> &Region {
        self.regions
            .iter()
            .find(|r| r.contains(key))
            .expect("the regions cover the whole key space")
    }

    pub fn by_id(&self, id: u64) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    pub fn by_id_mut(&mut self, id: u64) -> Option<&mut Region> {
        self.regions.iter_mut().find(|r| r.id == id)
    }

    /// Splits the region holding `key` at `key`; both halves get a newer
    /// epoch, so requests built for the old region fail with EpochNotMatch.
    /// Returns false when `key` already starts a region.
    pub fn split(&mut self, key: &[u8]) -> bool {
        let index = self
            .regions
            .iter()
            .position(|r| r.contains(key))
            .expect("the regions cover the whole key space");
        if self.regions[index].start == key {
            return false;
        }
        let left = &mut self.regions[index];
        left.version += 1;
        let right = Region {
            id: self.next_id,
            start: key.to_vec(),
            end: std::mem::replace(&mut left.end, key.to_vec()),
            version: left.version,
            conf_ver: left.conf_ver,
            leader_store: left.leader_store,
        };
        self.next_id += 1;
        self.regions.insert(index + 1, right);
        true
    }

    /// Why a request addressed to `region_id` at `epoch` on `store` cannot
    /// touch `keys`, if it cannot.
    pub fn check(
        &self,
        region_id: u64,
        epoch: Option<&metapb::RegionEpoch>,
        store: u64,
        keys: &[&[u8]],
        stores: &[u64],
    ) -> Result<&Region, errorpb::Error> {
        let Some(region) = self.by_id(region_id) else {
            return Err(errorpb::Error {
                message: format!("region {region_id} not found"),
                region_not_found: Some(errorpb::RegionNotFound { region_id }),
                ..errorpb::Error::default()
            });
        };
        if region.leader_store != store {
            return Err(not_leader(region));
        }
        let current = epoch.is_some_and(|e| e.version == region.version && e.conf_ver == region.conf_ver);
        let out_of_range = keys.iter().any(|k| !region.contains(k));
        if !current || out_of_range {
            return Err(errorpb::Error {
                message: format!("epoch of region {region_id} does not match"),
                epoch_not_match: Some(errorpb::EpochNotMatch {
                    current_regions: self.regions.iter().map(|r| r.to_meta(stores)).collect(),
                }),
                ..errorpb::Error::default()
            });
        }
        Ok(region)
    }
}

pub fn not_leader(region: &Region) -> errorpb::Error {
    errorpb::Error {
        message: format!("not leader of region {}", region.id),
        not_leader: Some(errorpb::NotLeader {
            region_id: region.id,
            leader: Some(region.peer(region.leader_store)),
        }),
        ..errorpb::Error::default()
    }
}

pub fn server_is_busy() -> errorpb::Error {
    errorpb::Error {
        message: "server is busy".into(),
        server_is_busy: Some(errorpb::ServerIsBusy {
            reason: "injected".into(),
            backoff_ms: 5,
            ..errorpb::ServerIsBusy::default()
        }),
        ..errorpb::Error::default()
    }
}

const GROUP: usize = 8;
const MARKER: u8 = 0xff;

/// TiKV's memcomparable byte encoding: 8-byte groups padded with zeros,
/// each followed by `0xff - padding`.
pub fn encode_bytes(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((key.len() / GROUP + 1) * (GROUP + 1));
    for chunk in key
        .chunks(GROUP)
        .chain(key.len().is_multiple_of(GROUP).then_some(&[][..]))
    {
        let pad = GROUP - chunk.len();
        out.extend_from_slice(chunk);
        out.extend(std::iter::repeat_n(0, pad));
        out.push(MARKER - pad as u8);
    }
    out
}

/// The inverse of `encode_bytes`; `None` for malformed input.
pub fn decode_bytes(encoded: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for group in encoded.chunks(GROUP + 1) {
        let (data, marker) = group.split_at_checked(GROUP)?;
        let pad = usize::from(MARKER.checked_sub(*marker.first()?)?);
        if pad > GROUP {
            return None;
        }
        out.extend_from_slice(&data[..GROUP - pad]);
        if pad > 0 {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_and_orders() {
        let keys: [&[u8]; 6] = [b"", b"a", b"abcdefgh", b"abcdefghi", b"\0", b"zz"];
        for key in keys {
            assert_eq!(decode_bytes(&encode_bytes(key)).as_deref(), Some(key));
        }
        let mut sorted = keys.to_vec();
        sorted.sort();
        let mut encoded: Vec<_> = sorted.iter().map(|k| encode_bytes(k)).collect();
        let before = encoded.clone();
        encoded.sort();
        assert_eq!(before, encoded);
        assert_eq!(encode_bytes(b""), [0, 0, 0, 0, 0, 0, 0, 0, 0xf7]);
    }
}
