//! The replication feed: the ops of recent commits, kept in memory (bounded
//! by op count) so replicas can pull what they missed.

use crate::store::keys::RootRecord;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One committed version: its root record and its ops (key, value or
/// `None` for a delete), each key once.
#[derive(Clone, Debug)]
pub struct CommittedBatch {
    pub record: RootRecord,
    pub ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Some versions after the asked one are no longer in the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the replication feed starts at version {oldest}; version {asked} is too old")]
pub struct FeedGap {
    pub asked: u64,
    pub oldest: u64,
}

#[derive(Debug, Default)]
struct Batches {
    batches: VecDeque<Arc<CommittedBatch>>,
    ops: usize,
}

/// Recent batches, newest last.
#[derive(Debug, Default)]
pub struct Feed {
    state: Mutex<Batches>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Batches> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a batch, dropping the oldest ones beyond `max_ops` ops (the
    /// newest batch always stays).
    pub fn push(&self, batch: Arc<CommittedBatch>, max_ops: usize) {
        let mut state = self.lock();
        state.ops += batch.ops.len();
        state.batches.push_back(batch);
        while state.ops > max_ops && state.batches.len() > 1 {
            if let Some(old) = state.batches.pop_front() {
                state.ops -= old.ops.len();
            }
        }
    }

    /// The batches after `version` up to `head`, every version in between:
    /// a version the feed lacks (dropped, or committed by another node of a
    /// shared backend) is a gap.
    pub fn since(&self, version: u64, head: u64) -> Result<Vec<Arc<CommittedBatch>>, FeedGap> {
        if version >= head {
            return Ok(Vec::new());
        }
        let state = self.lock();
        let batches: Vec<Arc<CommittedBatch>> = state
            .batches
            .iter()
            .filter(|b| b.record.version > version && b.record.version <= head)
            .cloned()
            .collect();
        let contiguous = batches.len() as u64 == head - version
            && batches
                .iter()
                .zip(version + 1..)
                .all(|(b, expected)| b.record.version == expected);
        if !contiguous {
            let oldest = state.batches.front().map_or(head + 1, |b| b.record.version);
            return Err(FeedGap { asked: version, oldest });
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustorium_core::tree::Node;

    fn batch(version: u64, ops: usize) -> Arc<CommittedBatch> {
        Arc::new(CommittedBatch {
            record: RootRecord {
                version,
                root: Node::Empty,
                timestamp_nanos: 0,
                op_count: ops as u32,
                keys: 0,
                epoch: 0,
            },
            ops: (0..ops).map(|i| (vec![i as u8], None)).collect(),
        })
    }

    #[test]
    fn gaps_and_drops_are_reported() {
        let feed = Feed::default();
        for version in [1, 2, 4] {
            feed.push(batch(version, 1), 100);
        }
        assert_eq!(feed.since(0, 2).unwrap().len(), 2);
        assert!(feed.since(4, 4).unwrap().is_empty());
        // Version 3 came from elsewhere (or was never seen): a gap.
        assert_eq!(feed.since(2, 4).unwrap_err(), FeedGap { asked: 2, oldest: 1 });
        // Bounded by ops: the oldest go first, the newest always stays.
        feed.push(batch(5, 3), 3);
        assert_eq!(feed.since(0, 5).unwrap_err().oldest, 5);
        assert_eq!(feed.since(4, 5).unwrap().len(), 1);
    }
}
