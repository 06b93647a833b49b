//! TiKV: the transactional KV RPCs, each checked against the region map
//! (leader, epoch, key range) before it touches the MVCC state.

use crate::faults::FaultAction;
use crate::grpc::{self, Answer, Route};
use crate::mvcc::{TxnStatus, abort_error};
use crate::proto::errorpb;
use crate::proto::kvrpcpb::{self, KeyError};
use crate::regions::{Region, not_leader, server_is_busy};
use crate::{State, lock};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;
use tonic::body::BoxBody;
use tonic::transport::Body;

/// A transactional request: its context and the keys it touches.
pub trait KvRequest: prost::Message + Default + Send + 'static {
    fn context(&self) -> Option<&kvrpcpb::Context>;
    fn keys(&self) -> Vec<&[u8]>;
}

/// A response that can carry a region error or a key error.
pub trait KvResponse: prost::Message + Default + Send + 'static {
    fn region_error(error: errorpb::Error) -> Self;
    fn key_error(error: KeyError) -> Self;
}

macro_rules! request {
    ($type:ty, |$r:ident| $keys:expr) => {
        impl KvRequest for $type {
            fn context(&self) -> Option<&kvrpcpb::Context> {
                self.context.as_ref()
            }
            fn keys(&self) -> Vec<&[u8]> {
                let $r = self;
                $keys
            }
        }
    };
}

request!(kvrpcpb::GetRequest, |r| vec![&r.key]);
request!(kvrpcpb::BatchGetRequest, |r| r.keys.iter().map(Vec::as_slice).collect());
request!(kvrpcpb::ScanRequest, |r| {
    // Reverse scans name their upper bound first; only the inclusive lower
    // bound must lie in the region.
    let lower = if r.reverse { &r.end_key } else { &r.start_key };
    vec![lower.as_slice()]
});
request!(kvrpcpb::PrewriteRequest, |r| r
    .mutations
    .iter()
    .map(|m| m.key.as_slice())
    .collect());
request!(kvrpcpb::CommitRequest, |r| r.keys.iter().map(Vec::as_slice).collect());
request!(kvrpcpb::BatchRollbackRequest, |r| r
    .keys
    .iter()
    .map(Vec::as_slice)
    .collect());
request!(kvrpcpb::CleanupRequest, |r| vec![&r.key]);
request!(kvrpcpb::CheckTxnStatusRequest, |r| vec![&r.primary_key]);
request!(kvrpcpb::ResolveLockRequest, |r| r
    .keys
    .iter()
    .map(Vec::as_slice)
    .collect());
request!(kvrpcpb::TxnHeartBeatRequest, |r| vec![&r.primary_lock]);

macro_rules! response {
    ($type:ty, single) => {
        impl KvResponse for $type {
            fn region_error(error: errorpb::Error) -> Self {
                Self {
                    region_error: Some(error),
                    ..Self::default()
                }
            }
            fn key_error(error: KeyError) -> Self {
                Self {
                    error: Some(error),
                    ..Self::default()
                }
            }
        }
    };
    ($type:ty, many) => {
        impl KvResponse for $type {
            fn region_error(error: errorpb::Error) -> Self {
                Self {
                    region_error: Some(error),
                    ..Self::default()
                }
            }
            fn key_error(error: KeyError) -> Self {
                Self {
                    errors: vec![error],
                    ..Self::default()
                }
            }
        }
    };
}

response!(kvrpcpb::GetResponse, single);
response!(kvrpcpb::BatchGetResponse, single);
response!(kvrpcpb::ScanResponse, single);
response!(kvrpcpb::PrewriteResponse, many);
response!(kvrpcpb::CommitResponse, single);
response!(kvrpcpb::BatchRollbackResponse, single);
response!(kvrpcpb::CleanupResponse, single);
response!(kvrpcpb::CheckTxnStatusResponse, single);
response!(kvrpcpb::ResolveLockResponse, single);
response!(kvrpcpb::TxnHeartBeatResponse, single);

#[derive(Clone, Debug)]
pub struct Tikv {
    pub state: Arc<State>,
    pub store: u64,
}

/// How long a cut connection's call lingers, so the cut reaches the client first.
const AFTER_CUT: Duration = Duration::from_millis(50);

impl Tikv {
    fn handle<Req: KvRequest, Resp: KvResponse>(
        &self,
        method: &'static str,
        request: http::Request<Body>,
        apply: fn(&State, &Region, Req) -> Resp,
    ) -> BoxFuture<'static, http::Response<BoxBody>> {
        let state = self.state.clone();
        let store = self.store;
        Box::pin(grpc::unary(request, move |req: Req| -> Answer<Resp> {
            grpc::later(async move {
                state.delay().await;
                let region_id = req.context().map(|c| c.region_id);
                let fault = state.take_fault(method, store, region_id);
                match &fault {
                    Some(FaultAction::DelayBefore(delay)) => tokio::time::sleep(*delay).await,
                    Some(FaultAction::DropConnection) => {
                        state.kill_switches[&store].kill();
                        tokio::time::sleep(AFTER_CUT).await;
                        return Err(Status::unavailable("connection cut"));
                    }
                    Some(FaultAction::Unavailable) => return Err(Status::unavailable("injected failure")),
                    Some(FaultAction::ServerIsBusy) => return Ok(Resp::region_error(server_is_busy())),
                    Some(FaultAction::Abort) => return Ok(Resp::key_error(abort_error("injected abort"))),
                    Some(FaultAction::NotLeader) => {
                        let mut regions = lock(&state.regions);
                        if let Some(region) = region_id.and_then(|id| regions.by_id_mut(id)) {
                            let next = state
                                .store_ids
                                .iter()
                                .position(|s| *s == region.leader_store)
                                .map_or(state.store_ids[0], |i| state.store_ids[(i + 1) % state.store_ids.len()]);
                            region.leader_store = next;
                            return Ok(Resp::region_error(not_leader(region)));
                        }
                    }
                    Some(FaultAction::SplitAt(key)) => {
                        lock(&state.regions).split(key);
                    }
                    _ => {}
                }
                let response = {
                    let regions = lock(&state.regions);
                    let context = req.context();
                    match regions.check(
                        context.map_or(0, |c| c.region_id),
                        context.and_then(|c| c.region_epoch.as_ref()),
                        store,
                        &req.keys(),
                        &state.store_ids,
                    ) {
                        Err(error) => return Ok(Resp::region_error(error)),
                        Ok(region) => {
                            let region = region.clone();
                            drop(regions);
                            apply(&state, &region, req)
                        }
                    }
                };
                match fault {
                    Some(FaultAction::DelayAfter(delay)) => tokio::time::sleep(delay).await,
                    Some(FaultAction::DropAfterApply) => {
                        state.kill_switches[&store].kill();
                        tokio::time::sleep(AFTER_CUT).await;
                        return Err(Status::unavailable("connection cut"));
                    }
                    _ => {}
                }
                Ok(response)
            })
        }))
    }
}

impl Route for Tikv {
    const NAME: &'static str = "tikvpb.Tikv";

    fn state(&self) -> &Arc<State> {
        &self.state
    }

    fn route(&self, method: &str, request: http::Request<Body>) -> Option<BoxFuture<'static, http::Response<BoxBody>>> {
        Some(match method {
            "KvGet" => self.handle("KvGet", request, get),
            "KvBatchGet" => self.handle("KvBatchGet", request, batch_get),
            "KvScan" => self.handle("KvScan", request, scan),
            "KvPrewrite" => self.handle("KvPrewrite", request, prewrite),
            "KvCommit" => self.handle("KvCommit", request, commit),
            "KvBatchRollback" => self.handle("KvBatchRollback", request, batch_rollback),
            "KvCleanup" => self.handle("KvCleanup", request, cleanup),
            "KvCheckTxnStatus" => self.handle("KvCheckTxnStatus", request, check_txn_status),
            "KvResolveLock" => self.handle("KvResolveLock", request, resolve_lock),
            "KvTxnHeartBeat" => self.handle("KvTxnHeartBeat", request, heartbeat),
            _ => return None,
        })
    }
}

fn get(state: &State, _: &Region, request: kvrpcpb::GetRequest) -> kvrpcpb::GetResponse {
    match lock(&state.mvcc).get(&request.key, request.version) {
        Ok(Some(value)) => kvrpcpb::GetResponse {
            value,
            ..kvrpcpb::GetResponse::default()
        },
        Ok(None) => kvrpcpb::GetResponse {
            not_found: true,
            ..kvrpcpb::GetResponse::default()
        },
        Err(error) => kvrpcpb::GetResponse::key_error(error),
    }
}

fn batch_get(state: &State, _: &Region, request: kvrpcpb::BatchGetRequest) -> kvrpcpb::BatchGetResponse {
    let mvcc = lock(&state.mvcc);
    let mut pairs = Vec::new();
    for key in request.keys {
        match mvcc.get(&key, request.version) {
            Ok(Some(value)) => pairs.push(kvrpcpb::KvPair {
                key,
                value,
                error: None,
            }),
            Ok(None) => {}
            Err(error) => pairs.push(kvrpcpb::KvPair {
                key,
                value: Vec::new(),
                error: Some(error),
            }),
        }
    }
    kvrpcpb::BatchGetResponse {
        pairs,
        ..kvrpcpb::BatchGetResponse::default()
    }
}

/// The intersection of `[lower, upper)` (empty upper = unbounded) with the region.
fn clip(region: &Region, lower: &[u8], upper: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let lower = lower.max(region.start.as_slice()).to_vec();
    let upper = match (upper.is_empty(), region.end.is_empty()) {
        (true, true) => None,
        (true, false) => Some(region.end.clone()),
        (false, true) => Some(upper.to_vec()),
        (false, false) => Some(upper.min(region.end.as_slice()).to_vec()),
    };
    (lower, upper)
}

fn scan(state: &State, region: &Region, request: kvrpcpb::ScanRequest) -> kvrpcpb::ScanResponse {
    let (lower, upper) = if request.reverse {
        clip(region, &request.end_key, &request.start_key)
    } else {
        clip(region, &request.start_key, &request.end_key)
    };
    let pairs = lock(&state.mvcc)
        .scan(
            &lower,
            upper.as_deref(),
            request.limit as usize,
            request.version,
            request.reverse,
        )
        .into_iter()
        .map(|(key, value)| match value {
            Ok(value) => kvrpcpb::KvPair {
                key,
                value: if request.key_only { Vec::new() } else { value },
                error: None,
            },
            Err(error) => kvrpcpb::KvPair {
                key,
                value: Vec::new(),
                error: Some(error),
            },
        })
        .collect();
    kvrpcpb::ScanResponse {
        pairs,
        ..kvrpcpb::ScanResponse::default()
    }
}

fn prewrite(state: &State, _: &Region, request: kvrpcpb::PrewriteRequest) -> kvrpcpb::PrewriteResponse {
    if request.try_one_pc || request.use_async_commit {
        return kvrpcpb::PrewriteResponse::key_error(abort_error("the test server implements two-phase commit only"));
    }
    kvrpcpb::PrewriteResponse {
        errors: lock(&state.mvcc).prewrite(&request),
        ..kvrpcpb::PrewriteResponse::default()
    }
}

fn commit(state: &State, _: &Region, request: kvrpcpb::CommitRequest) -> kvrpcpb::CommitResponse {
    match lock(&state.mvcc).commit(&request.keys, request.start_version, request.commit_version) {
        Ok(()) => kvrpcpb::CommitResponse {
            commit_version: request.commit_version,
            ..kvrpcpb::CommitResponse::default()
        },
        Err(error) => kvrpcpb::CommitResponse::key_error(error),
    }
}

fn batch_rollback(state: &State, _: &Region, request: kvrpcpb::BatchRollbackRequest) -> kvrpcpb::BatchRollbackResponse {
    match lock(&state.mvcc).rollback(&request.keys, request.start_version) {
        Ok(()) => kvrpcpb::BatchRollbackResponse::default(),
        Err(error) => kvrpcpb::BatchRollbackResponse::key_error(error),
    }
}

fn cleanup(state: &State, _: &Region, request: kvrpcpb::CleanupRequest) -> kvrpcpb::CleanupResponse {
    let mut mvcc = lock(&state.mvcc);
    match mvcc.check_txn_status(&request.key, request.start_version, request.current_ts, true) {
        Ok((TxnStatus::Committed(commit_version), _, _)) => kvrpcpb::CleanupResponse {
            commit_version,
            ..kvrpcpb::CleanupResponse::default()
        },
        Ok((TxnStatus::RolledBack, _, _)) => kvrpcpb::CleanupResponse::default(),
        Ok((TxnStatus::Locked { .. }, _, info)) => kvrpcpb::CleanupResponse::key_error(KeyError {
            locked: info,
            ..KeyError::default()
        }),
        Err(error) => kvrpcpb::CleanupResponse::key_error(error),
    }
}

fn check_txn_status(
    state: &State,
    _: &Region,
    request: kvrpcpb::CheckTxnStatusRequest,
) -> kvrpcpb::CheckTxnStatusResponse {
    let mut mvcc = lock(&state.mvcc);
    match mvcc.check_txn_status(
        &request.primary_key,
        request.lock_ts,
        request.current_ts,
        request.rollback_if_not_exist,
    ) {
        Ok((status, action, lock_info)) => {
            let (lock_ttl, commit_version) = match status {
                TxnStatus::Committed(commit_ts) => (0, commit_ts),
                TxnStatus::RolledBack => (0, 0),
                TxnStatus::Locked { ttl } => (ttl, 0),
            };
            kvrpcpb::CheckTxnStatusResponse {
                lock_ttl,
                commit_version,
                action: action as i32,
                lock_info,
                ..kvrpcpb::CheckTxnStatusResponse::default()
            }
        }
        Err(error) => kvrpcpb::CheckTxnStatusResponse::key_error(error),
    }
}

fn resolve_lock(state: &State, region: &Region, request: kvrpcpb::ResolveLockRequest) -> kvrpcpb::ResolveLockResponse {
    let mut mvcc = lock(&state.mvcc);
    let upper = (!region.end.is_empty()).then_some(region.end.as_slice());
    if request.txn_infos.is_empty() {
        mvcc.resolve(
            &region.start,
            upper,
            &request.keys,
            request.start_version,
            request.commit_version,
        );
    } else {
        for txn in &request.txn_infos {
            mvcc.resolve(&region.start, upper, &[], txn.txn, txn.status);
        }
    }
    kvrpcpb::ResolveLockResponse::default()
}

fn heartbeat(state: &State, _: &Region, request: kvrpcpb::TxnHeartBeatRequest) -> kvrpcpb::TxnHeartBeatResponse {
    match lock(&state.mvcc).heartbeat(&request.primary_lock, request.start_version, request.advise_lock_ttl) {
        Ok(lock_ttl) => kvrpcpb::TxnHeartBeatResponse {
            lock_ttl,
            ..kvrpcpb::TxnHeartBeatResponse::default()
        },
        Err(error) => kvrpcpb::TxnHeartBeatResponse::key_error(error),
    }
}
