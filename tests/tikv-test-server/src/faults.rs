//! Faults a test arms before it runs a scenario. Each fault matches calls
//! of one method (optionally on one store, or touching one key's region),
//! lets `skip` matching calls through, then fires `times` times.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Moves the region's leader to the next store and answers NotLeader.
    NotLeader,
    /// Answers ServerIsBusy.
    ServerIsBusy,
    /// Splits the region at this key before the call, so the call (built
    /// for the old region) fails with EpochNotMatch.
    SplitAt(Vec<u8>),
    /// Waits before handling: a client that times out cancels the call
    /// and nothing is applied.
    DelayBefore(Duration),
    /// Handles the call, then waits before answering: the change is applied
    /// even if the client gave up (an unknown outcome).
    DelayAfter(Duration),
    /// Cuts every connection of the store before handling the call.
    DropConnection,
    /// Handles the call, then cuts the connections before the answer.
    DropAfterApply,
    /// Answers with gRPC status UNAVAILABLE.
    Unavailable,
    /// Answers a key error that is not retryable (prewrite: abort).
    Abort,
}

#[derive(Clone, Debug)]
pub struct Fault {
    /// The RPC, e.g. "KvPrewrite" or "GetRegion".
    pub method: &'static str,
    pub store: Option<u64>,
    /// Only calls addressed to the region holding this key.
    pub region_of: Option<Vec<u8>>,
    pub skip: u32,
    pub times: u32,
    pub action: FaultAction,
}

impl Fault {
    pub fn new(method: &'static str, action: FaultAction) -> Self {
        Self {
            method,
            store: None,
            region_of: None,
            skip: 0,
            times: 1,
            action,
        }
    }

    pub fn skip(mut self, calls: u32) -> Self {
        self.skip = calls;
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    pub fn on_store(mut self, store: u64) -> Self {
        self.store = Some(store);
        self
    }

    pub fn in_region_of(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.region_of = Some(key.into());
        self
    }
}
