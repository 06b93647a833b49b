//! Answers for writes to a sharded tree (a sharded single node or a
//! cluster node): the proof is against the global root of the cut the
//! write was proven in, and the version is the store's (see
//! `GlobalRoot::version`).

use crate::store::sharded::ShardedProof;
use crate::store::unix_nanos;
use rustorium_proto::v1;
use rustorium_proto::{fr_to_bytes, proof_to_proto};
use std::time::SystemTime;

pub fn put(written: &ShardedProof, want_proof: bool, max_levels: u16) -> v1::PutResponse {
    v1::PutResponse {
        root: fr_to_bytes(&written.root),
        version: written.version,
        timestamp_unix_nanos: unix_nanos(SystemTime::now()),
        proof: want_proof.then(|| proof_to_proto(&written.proof, max_levels)),
    }
}

/// `existed`: whether the key held a value before.
pub fn delete(deleted: &ShardedProof, existed: bool, max_levels: u16) -> v1::DeleteResponse {
    v1::DeleteResponse {
        root: fr_to_bytes(&deleted.root),
        version: deleted.version,
        proof: Some(proof_to_proto(&deleted.proof, max_levels)),
        timestamp_unix_nanos: unix_nanos(SystemTime::now()),
        existed,
    }
}
