//! Forwarding writes to a shard's owner over gRPC. A forwarded request
//! carries `x-rustorium-forwarded`, so an owner that lost the shard
//! meanwhile answers UNAVAILABLE instead of forwarding again (no loops),
//! the client's `authorization` (the owner checks it too), and the region
//! the write came from (for geographic placement).

use rustorium_proto::v1;
use rustorium_proto::v1::store_client::StoreClient;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub const FORWARDED_HEADER: &str = "x-rustorium-forwarded";
pub const ORIGIN_REGION_HEADER: &str = "x-rustorium-origin-region";

/// Whether `request` was forwarded by another node.
pub fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_HEADER)
}

/// The region a request's write came from: a forwarding node says so; a
/// client's request comes from this node's region.
pub fn origin_region<T>(request: &Request<T>, here: &str) -> String {
    request
        .metadata()
        .get(ORIGIN_REGION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(here)
        .to_owned()
}

/// What a forwarded request carries over from the client's.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    pub region: String,
}

impl Origin {
    pub fn of<T>(request: &Request<T>, here: &str) -> Self {
        Self {
            authorization: request.metadata().get("authorization").cloned(),
            region: origin_region(request, here),
        }
    }
}

/// One lazily connected channel per owner address.
#[derive(Debug)]
pub struct Forwarder {
    channels: Mutex<HashMap<String, Channel>>,
    timeout: Duration,
    max_message_bytes: usize,
}

impl Forwarder {
    pub fn new(timeout: Duration, max_message_bytes: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            timeout,
            max_message_bytes,
        }
    }

    fn client(&self, addr: &str) -> Result<StoreClient<Channel>, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let channel = match channels.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let channel = Endpoint::from_shared(addr.to_owned())
                    .map_err(|e| Status::internal(format!("owner address {addr:?}: {e}")))?
                    .connect_timeout(self.timeout)
                    .timeout(self.timeout)
                    .connect_lazy();
                channels.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(StoreClient::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes))
    }

    fn request<T>(message: T, origin: &Origin) -> Request<T> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert(FORWARDED_HEADER, tonic::metadata::MetadataValue::from_static("1"));
        if let Ok(region) = origin.region.parse() {
            metadata.insert(ORIGIN_REGION_HEADER, region);
        }
        if let Some(token) = &origin.authorization {
            metadata.insert("authorization", token.clone());
        }
        request
    }

    pub async fn put(&self, addr: &str, message: v1::PutRequest, origin: &Origin) -> Result<v1::PutResponse, Status> {
        let mut client = self.client(addr)?;
        Ok(client.put(Self::request(message, origin)).await?.into_inner())
    }

    pub async fn delete(
        &self,
        addr: &str,
        message: v1::DeleteRequest,
        origin: &Origin,
    ) -> Result<v1::DeleteResponse, Status> {
        let mut client = self.client(addr)?;
        Ok(client.delete(Self::request(message, origin)).await?.into_inner())
    }

    pub async fn put_batch(
        &self,
        addr: &str,
        message: v1::PutBatchRequest,
        origin: &Origin,
    ) -> Result<v1::PutBatchResponse, Status> {
        let mut client = self.client(addr)?;
        Ok(client.put_batch(Self::request(message, origin)).await?.into_inner())
    }

    /// Drops the channel to `addr` (its node is gone or moved).
    pub fn forget(&self, addr: &str) {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
    }
}
