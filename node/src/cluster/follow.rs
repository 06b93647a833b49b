//! A primary over the network, as a replica's `ReplicationSource`: batches
//! come from the primary's `Replicate` stream (kept open between calls, so
//! each new commit arrives as it happens), the head from the stream and
//! `GetRoot`, resync snapshots from `GetRoot` + `Scan`.

use crate::store::diff::{MAX_ENTRIES_PER_CALL, MAX_PAGES_PER_CALL};
use crate::store::error::{Result, StoreError};
use crate::store::feed::{CommittedBatch, FeedGap};
use crate::store::keys::RootRecord;
use crate::store::replica::{ReplicationSource, Snapshot};
use rustorium_core::Fr;
use rustorium_core::tree::{KeyPath, Node, Page, PageId};
use rustorium_proto::v1;
use rustorium_proto::v1::store_client::StoreClient;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long a call for new batches waits for the first one.
const WAIT_FOR_BATCH: Duration = Duration::from_millis(50);
/// Batches taken from the stream per call at most.
const MAX_BATCHES_PER_CALL: usize = 256;
/// Rows per Scan call during a resync.
const SCAN_PAGE: u32 = 50_000;

/// The open stream and the version its next batch follows.
struct OpenStream {
    after: u64,
    stream: tonic::Streaming<v1::ReplicatedBatch>,
}

pub struct RemotePrimary {
    url: String,
    client: StoreClient<Channel>,
    stream: tokio::sync::Mutex<Option<OpenStream>>,
    head: AtomicU64,
    token: Option<String>,
    /// The name acknowledgements go under; `None` sends none.
    replica_id: Option<String>,
    /// The primary's shard followed ("depth-index"); empty: its whole tree.
    shard: String,
}

impl std::fmt::Debug for RemotePrimary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePrimary").field("url", &self.url).finish()
    }
}

fn unreachable_primary(url: &str, status: &tonic::Status) -> StoreError {
    StoreError::Backend(crate::store::backend::BackendError::retryable(
        "follow the primary",
        format!("{url}: {}: {}", status.code(), status.message()),
    ))
}

fn root_node(bytes: &[u8]) -> Result<Fr> {
    rustorium_proto::fr_from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("primary sent a bad root: {e}")))
}

impl RemotePrimary {
    /// Connects lazily to the primary at `url` (`http://host:port`);
    /// `token` is sent as a bearer token when the primary protects reads.
    pub fn new(url: &str, token: Option<String>, max_message_bytes: usize) -> Result<Self> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| StoreError::Config(format!("primary URL {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            url: url.to_owned(),
            client: StoreClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            stream: tokio::sync::Mutex::new(None),
            head: AtomicU64::new(0),
            token,
            replica_id: None,
            shard: String::new(),
        })
    }

    /// Reports each verified version to the primary under `id`, so writes
    /// there can wait for this replica (`[replication] factor`).
    pub fn acknowledging_as(mut self, id: impl Into<String>) -> Self {
        self.replica_id = Some(id.into());
        self
    }

    /// Follows one shard of a sharded primary (its label, "depth-index")
    /// instead of the whole tree.
    pub fn following_shard(mut self, label: impl Into<String>) -> Self {
        self.shard = label.into();
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token
            && let Ok(value) = format!("Bearer {token}").parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn batch(&self, message: v1::ReplicatedBatch) -> Result<Arc<CommittedBatch>> {
        self.head.fetch_max(message.primary_version, Ordering::SeqCst);
        let ops = message
            .ops
            .into_iter()
            .map(|op| match op.kind {
                Some(v1::op::Kind::Value(value)) => Ok((op.key, Some(value))),
                Some(v1::op::Kind::Delete(_)) => Ok((op.key, None)),
                None => Err(StoreError::Corrupt(
                    "primary sent an op with neither value nor delete".into(),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(CommittedBatch {
            record: RootRecord {
                version: message.version,
                // Only the root's hash is compared; a middle node carries it.
                root: Node::Middle(root_node(&message.root)?),
                timestamp_nanos: message.timestamp_unix_nanos,
                op_count: ops.len() as u32,
                keys: 0,
                epoch: 0,
            },
            ops,
        }))
    }

    /// The root of a retained version (read off a proof at that version).
    pub async fn root_at(&self, version: u64) -> Result<Fr> {
        let mut client = self.client.clone();
        let proof = client
            .get_proof(self.request(v1::GetProofRequest {
                shard: self.shard.clone(),
                key: Vec::new(),
                version,
            }))
            .await
            .map_err(|s| unreachable_primary(&self.url, &s))?
            .into_inner();
        root_node(&proof.root)
    }

    /// The primary's current root and version.
    pub async fn root(&self) -> Result<(Fr, u64)> {
        let mut client = self.client.clone();
        let root = client
            .get_root(self.request(v1::GetRootRequest {
                shard: self.shard.clone(),
            }))
            .await
            .map_err(|s| unreachable_primary(&self.url, &s))?
            .into_inner();
        self.head.fetch_max(root.version, Ordering::SeqCst);
        Ok((root_node(&root.root)?, root.version))
    }
}

impl ReplicationSource for RemotePrimary {
    async fn acknowledge(&self, version: u64, root: Fr) -> bool {
        let Some(id) = &self.replica_id else { return true };
        let mut client = self.client.clone();
        let ack = v1::AckReplicaRequest {
            shard: self.shard.clone(),
            replica_id: id.clone(),
            mirrors: version,
            root: rustorium_proto::fr_to_bytes(&root),
        };
        match client.ack_replica(self.request(ack)).await {
            Ok(answer) => {
                self.head
                    .fetch_max(answer.into_inner().primary_version, Ordering::SeqCst);
                true
            }
            Err(status) => {
                tracing::debug!(%status, version, "the primary did not take an acknowledgement");
                false
            }
        }
    }

    async fn head(&self) -> Result<u64> {
        Ok(self.head.load(Ordering::SeqCst))
    }

    async fn batches_since(&self, version: u64) -> Result<std::result::Result<Vec<Arc<CommittedBatch>>, FeedGap>> {
        let mut open = self.stream.lock().await;
        if open.as_ref().is_none_or(|o| o.after != version) {
            *open = None;
            let mut client = self.client.clone();
            let stream = match client
                .replicate(self.request(v1::ReplicateRequest {
                    after_version: version,
                    shard: self.shard.clone(),
                }))
                .await
            {
                Ok(stream) => stream.into_inner(),
                // Past the feed, or past the primary's head (a primary that
                // lost its last versions): either way, resync.
                Err(status) if status.code() == tonic::Code::OutOfRange => {
                    return Ok(Err(FeedGap {
                        asked: version,
                        oldest: 0,
                    }));
                }
                Err(status) => return Err(unreachable_primary(&self.url, &status)),
            };
            *open = Some(OpenStream { after: version, stream });
        }
        let Some(current) = open.as_mut() else {
            return Ok(Ok(Vec::new()));
        };
        let mut batches = Vec::new();
        let mut wait = WAIT_FOR_BATCH;
        while batches.len() < MAX_BATCHES_PER_CALL {
            let next = match tokio::time::timeout(wait, current.stream.message()).await {
                Err(_) => break,
                Ok(next) => next,
            };
            match next {
                Ok(Some(message)) => {
                    let batch = self.batch(message)?;
                    current.after = batch.record.version;
                    batches.push(batch);
                    // Take what is already there, without waiting more.
                    wait = Duration::ZERO;
                }
                Ok(None) => {
                    *open = None;
                    break;
                }
                Err(status) if status.code() == tonic::Code::OutOfRange => {
                    *open = None;
                    return Ok(Err(FeedGap {
                        asked: version,
                        oldest: 0,
                    }));
                }
                Err(status) => {
                    *open = None;
                    if batches.is_empty() {
                        return Err(unreachable_primary(&self.url, &status));
                    }
                    break;
                }
            }
        }
        if batches.is_empty() {
            // A quiet stream: learn the head anyway (cheap) so lag is true.
            drop(open);
            self.root().await?;
        }
        Ok(Ok(batches))
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        // Every page at one version, however long the copy takes (while it
        // stays retained), so a busy primary cannot keep it from finishing.
        let (root, version) = self.root().await?;
        let mut entries = Vec::new();
        let mut start = Vec::new();
        loop {
            let mut client = self.client.clone();
            let mut stream = client
                .scan(self.request(v1::ScanRequest {
                    shard: self.shard.clone(),
                    start: start.clone(),
                    end: Vec::new(),
                    limit: SCAN_PAGE,
                    at_version: Some(version),
                }))
                .await
                .map_err(|s| unreachable_primary(&self.url, &s))?
                .into_inner();
            let mut rows = 0;
            while let Some(row) = stream.message().await.map_err(|s| unreachable_primary(&self.url, &s))? {
                rows += 1;
                start = row.key.clone();
                start.push(0);
                entries.push((row.key, row.value));
            }
            if rows < SCAN_PAGE {
                return Ok((entries, version, root));
            }
        }
    }

    async fn root_node(&self) -> Result<(u64, Node)> {
        let (root, version) = self.root().await?;
        if root == Fr::from(0u64) {
            return Ok((version, Node::Empty));
        }
        // A middle root has the page of its children; a lone leaf has none
        // (and its key and value cannot be read off its hash).
        let top = PageId::containing(1, &KeyPath::default());
        match self.pages(version, vec![top]).await?.pop().flatten() {
            Some(_) => Ok((version, Node::Middle(root))),
            None => Err(StoreError::Tree(
                "the primary's tree is a single leaf: nothing to diff against".into(),
            )),
        }
    }

    async fn pages(&self, version: u64, ids: Vec<PageId>) -> Result<Vec<Option<Arc<Page>>>> {
        let mut pages = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_PAGES_PER_CALL) {
            let mut client = self.client.clone();
            let answer = client
                .get_pages(self.request(v1::GetPagesRequest {
                    shard: self.shard.clone(),
                    version,
                    ids: chunk.iter().map(PageId::to_key).collect(),
                }))
                .await
                .map_err(|s| unreachable_primary(&self.url, &s))?
                .into_inner();
            if answer.pages.len() != chunk.len() {
                return Err(StoreError::Corrupt(
                    "the primary answered the wrong number of pages".into(),
                ));
            }
            for bytes in answer.pages {
                pages.push(if bytes.is_empty() {
                    None
                } else {
                    let page = Page::decode(&bytes)
                        .map_err(|e| StoreError::Corrupt(format!("the primary sent a bad page: {e}")))?;
                    Some(Arc::new(page))
                });
            }
        }
        Ok(pages)
    }

    async fn entries(&self, version: u64, leaf_keys: BTreeSet<[u8; 32]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut missing = leaf_keys;
        let mut entries = Vec::new();
        while !missing.is_empty() {
            let ask: Vec<[u8; 32]> = missing.iter().take(MAX_ENTRIES_PER_CALL).copied().collect();
            let mut client = self.client.clone();
            let answer = client
                .get_entries(self.request(v1::GetEntriesRequest {
                    shard: self.shard.clone(),
                    version,
                    leaf_keys: ask.iter().map(|k| k.to_vec()).collect(),
                }))
                .await
                .map_err(|s| unreachable_primary(&self.url, &s))?
                .into_inner();
            if answer.leaf_keys.len() != answer.entries.len() {
                return Err(StoreError::Corrupt(
                    "the primary's entries and leaf keys differ in number".into(),
                ));
            }
            // An answer may stop at the message limit: ask again for the
            // rest. One with nothing new means the primary lacks them (the
            // caller finds them missing and says so).
            let before = missing.len();
            for (leaf, entry) in answer.leaf_keys.iter().zip(answer.entries) {
                if let Ok(leaf) = <[u8; 32]>::try_from(leaf.as_slice()) {
                    missing.remove(&leaf);
                }
                entries.push((entry.key, entry.value));
            }
            if missing.len() == before {
                break;
            }
        }
        Ok(entries)
    }
}
