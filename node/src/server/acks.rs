//! Replica acknowledgements on a primary: the version each replica last
//! verified, and writes waiting until enough replicas verified theirs (the
//! seed's `replication_factor` over the network).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A replica's last report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub replica_id: String,
    pub mirrors: u64,
    pub age: Duration,
}

#[derive(Debug, Default)]
pub struct ReplicaAcks {
    latest: Mutex<HashMap<String, (u64, Instant)>>,
    changed: Notify,
}

/// Reports older than this do not count towards a write's replicas, and
/// are dropped.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Replicas tracked at once; a report from one more is refused.
pub const MAX_REPLICAS: usize = 1024;

impl ReplicaAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that `replica_id` verified `version` (versions only grow).
    /// `Err(tracked)` when `MAX_REPLICAS` others reported within a minute.
    pub fn record(&self, replica_id: &str, version: u64) -> Result<(), usize> {
        let mut latest = self.lock();
        latest.retain(|_, (_, at)| at.elapsed() < FORGET_AFTER);
        if latest.len() >= MAX_REPLICAS && !latest.contains_key(replica_id) {
            return Err(latest.len());
        }
        let entry = latest.entry(replica_id.to_owned()).or_insert((0, Instant::now()));
        entry.0 = entry.0.max(version);
        entry.1 = Instant::now();
        drop(latest);
        self.changed.notify_waiters();
        Ok(())
    }

    /// Replicas that verified `version` or later, and reported recently.
    pub fn verified(&self, version: u64) -> usize {
        self.lock()
            .values()
            .filter(|(mirrors, at)| *mirrors >= version && at.elapsed() < FORGET_AFTER)
            .count()
    }

    /// Waits until `needed` replicas verified `version`; `Err(count)` with
    /// how many had when `timeout` ran out.
    pub async fn wait(&self, version: u64, needed: usize, timeout: Duration) -> Result<(), usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register before checking, so no report slips between the two.
            let changed = self.changed.notified();
            let verified = self.verified(version);
            if verified >= needed {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(self.verified(version));
            }
        }
    }

    pub fn all(&self) -> Vec<Ack> {
        let mut acks: Vec<Ack> = self
            .lock()
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < FORGET_AFTER)
            .map(|(id, (mirrors, at))| Ack {
                replica_id: id.clone(),
                mirrors: *mirrors,
                age: at.elapsed(),
            })
            .collect();
        acks.sort_by(|a, b| a.replica_id.cmp(&b.replica_id));
        acks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_wait_for_enough_verified_replicas() {
        let acks = std::sync::Arc::new(ReplicaAcks::default());
        acks.record("a", 5).unwrap();
        assert_eq!(acks.wait(5, 1, Duration::from_millis(10)).await, Ok(()));
        assert_eq!(acks.wait(6, 1, Duration::from_millis(10)).await, Err(0));
        let waiting = tokio::spawn({
            let acks = acks.clone();
            async move { acks.wait(6, 2, Duration::from_secs(10)).await }
        });
        acks.record("a", 6).unwrap();
        acks.record("b", 7).unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(()));
        acks.record("a", 3).unwrap();
        assert_eq!(acks.all()[0].mirrors, 6, "a report never moves a replica back");
        for i in 0..MAX_REPLICAS - 2 {
            acks.record(&format!("r{i}"), 1).unwrap();
        }
        assert_eq!(acks.record("one-too-many", 1), Err(MAX_REPLICAS));
        acks.record("a", 8).expect("a known replica still reports");
    }
}
