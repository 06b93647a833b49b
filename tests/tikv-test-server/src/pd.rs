//! PD: membership, the timestamp oracle, region and store lookups, keyspaces.

use crate::faults::FaultAction;
use crate::grpc::{self, Answer, Route};
use crate::proto::{keyspacepb, metapb, pdpb};
use crate::regions::decode_bytes;
use crate::{CLUSTER_ID, PD_STORE, State, lock};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use tonic::Status;
use tonic::body::BoxBody;
use tonic::transport::Body;

fn header() -> Option<pdpb::ResponseHeader> {
    Some(pdpb::ResponseHeader {
        cluster_id: CLUSTER_ID,
        error: None,
    })
}

fn error_header(kind: pdpb::ErrorType, message: String) -> Option<pdpb::ResponseHeader> {
    Some(pdpb::ResponseHeader {
        cluster_id: CLUSTER_ID,
        error: Some(pdpb::Error {
            r#type: kind as i32,
            message,
        }),
    })
}

/// Applies a PD fault that fires before the call; `Some` ends the call.
async fn pre_fault<T>(state: &State, method: &str) -> Option<Result<T, Status>> {
    match state.take_fault(method, PD_STORE, None)? {
        FaultAction::DelayBefore(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        FaultAction::DropConnection => {
            state.kill_switches[&PD_STORE].kill();
            Some(Err(Status::unavailable("connection cut")))
        }
        _ => Some(Err(Status::unavailable("injected PD failure"))),
    }
}

fn answer<Req, Resp>(
    state: &Arc<State>,
    method: &'static str,
    request: http::Request<Body>,
    handle: fn(&State, Req) -> Resp,
) -> BoxFuture<'static, http::Response<BoxBody>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let state = state.clone();
    Box::pin(grpc::unary(request, move |req: Req| -> Answer<Resp> {
        grpc::later(async move {
            state.delay().await;
            if let Some(early) = pre_fault(&state, method).await {
                return early;
            }
            Ok(handle(&state, req))
        })
    }))
}

#[derive(Clone, Debug)]
pub struct Pd(pub Arc<State>);

impl Route for Pd {
    const NAME: &'static str = "pdpb.PD";

    fn state(&self) -> &Arc<State> {
        &self.0
    }

    fn route(&self, method: &str, request: http::Request<Body>) -> Option<BoxFuture<'static, http::Response<BoxBody>>> {
        let state = &self.0;
        Some(match method {
            "GetMembers" => answer(state, "GetMembers", request, get_members),
            "GetRegion" => answer(state, "GetRegion", request, get_region),
            "GetRegionByID" => answer(state, "GetRegionByID", request, get_region_by_id),
            "GetStore" => answer(state, "GetStore", request, get_store),
            "GetAllStores" => answer(state, "GetAllStores", request, get_all_stores),
            "Tso" => {
                let state = state.clone();
                Box::pin(grpc::streaming(request, move |requests| tso(state, requests)))
            }
            _ => return None,
        })
    }
}

fn get_members(state: &State, _: pdpb::GetMembersRequest) -> pdpb::GetMembersResponse {
    let url = lock(&state.pd_url).clone();
    let member = pdpb::Member {
        name: "pd-test".into(),
        member_id: 1,
        client_urls: vec![url.clone()],
        peer_urls: vec![url],
        ..pdpb::Member::default()
    };
    pdpb::GetMembersResponse {
        header: header(),
        members: vec![member.clone()],
        leader: Some(member.clone()),
        etcd_leader: Some(member),
        ..pdpb::GetMembersResponse::default()
    }
}

fn region_response(state: &State, region: Option<&crate::regions::Region>) -> pdpb::GetRegionResponse {
    match region {
        Some(region) => pdpb::GetRegionResponse {
            header: header(),
            region: Some(region.to_meta(&state.store_ids)),
            leader: Some(region.peer(region.leader_store)),
            ..pdpb::GetRegionResponse::default()
        },
        None => pdpb::GetRegionResponse {
            header: error_header(pdpb::ErrorType::RegionNotFound, "region not found".into()),
            ..pdpb::GetRegionResponse::default()
        },
    }
}

fn get_region(state: &State, request: pdpb::GetRegionRequest) -> pdpb::GetRegionResponse {
    let key = if request.region_key.is_empty() {
        Some(Vec::new())
    } else {
        decode_bytes(&request.region_key)
    };
    let regions = lock(&state.regions);
    region_response(state, key.as_deref().map(|k| regions.for_key(k)))
}

fn get_region_by_id(state: &State, request: pdpb::GetRegionByIdRequest) -> pdpb::GetRegionResponse {
    let regions = lock(&state.regions);
    region_response(state, regions.by_id(request.region_id))
}

fn store_meta(state: &State, id: u64) -> Option<metapb::Store> {
    let address = lock(&state.store_addrs).get(&id)?.clone();
    Some(metapb::Store {
        id,
        address,
        version: "8.5.0".into(),
        ..metapb::Store::default()
    })
}

fn get_store(state: &State, request: pdpb::GetStoreRequest) -> pdpb::GetStoreResponse {
    match store_meta(state, request.store_id) {
        Some(store) => pdpb::GetStoreResponse {
            header: header(),
            store: Some(store),
            stats: None,
        },
        None => pdpb::GetStoreResponse {
            header: error_header(
                pdpb::ErrorType::Unknown,
                format!("store {} not found", request.store_id),
            ),
            ..pdpb::GetStoreResponse::default()
        },
    }
}

fn get_all_stores(state: &State, _: pdpb::GetAllStoresRequest) -> pdpb::GetAllStoresResponse {
    pdpb::GetAllStoresResponse {
        header: header(),
        stores: state.store_ids.iter().filter_map(|id| store_meta(state, *id)).collect(),
    }
}

/// The timestamp oracle: each request for `count` stamps gets the last one.
fn tso(
    state: Arc<State>,
    requests: tonic::Streaming<pdpb::TsoRequest>,
) -> impl futures::Stream<Item = Result<pdpb::TsoResponse, Status>> {
    requests.then(move |request| {
        let state = state.clone();
        async move {
            state.delay().await;
            let request = request?;
            let count = request.count.max(1);
            let (physical, logical) = state.allocate_ts(u64::from(count));
            Ok(pdpb::TsoResponse {
                header: header(),
                count,
                timestamp: Some(pdpb::Timestamp {
                    physical: physical as i64,
                    logical: logical as i64,
                    suffix_bits: 0,
                }),
            })
        }
    })
}

#[derive(Clone, Debug)]
pub struct Keyspace(pub Arc<State>);

impl Route for Keyspace {
    const NAME: &'static str = "keyspacepb.Keyspace";

    fn state(&self) -> &Arc<State> {
        &self.0
    }

    fn route(&self, method: &str, request: http::Request<Body>) -> Option<BoxFuture<'static, http::Response<BoxBody>>> {
        match method {
            "LoadKeyspace" => Some(answer(&self.0, "LoadKeyspace", request, load_keyspace)),
            _ => None,
        }
    }
}

fn load_keyspace(state: &State, request: keyspacepb::LoadKeyspaceRequest) -> keyspacepb::LoadKeyspaceResponse {
    match state.keyspaces.get(&request.name) {
        Some(id) => keyspacepb::LoadKeyspaceResponse {
            header: header(),
            keyspace: Some(keyspacepb::KeyspaceMeta {
                id: *id,
                name: request.name,
                state: keyspacepb::KeyspaceState::Enabled as i32,
                ..keyspacepb::KeyspaceMeta::default()
            }),
        },
        None => keyspacepb::LoadKeyspaceResponse {
            header: error_header(
                pdpb::ErrorType::EntryNotFound,
                format!("keyspace {:?} not found", request.name),
            ),
            keyspace: None,
        },
    }
}
