//! The `rustorium.v1.Store` gRPC service over an embedded store, a
//! read-only replica of another node, or one node of a cluster.

use super::acks::ReplicaAcks;
use super::answers;
use super::auth::{Access, Auth};
use super::engine::Engine;
use crate::store::diff::{MAX_ENTRIES_PER_CALL, MAX_PAGES_PER_CALL};
use crate::store::sharded::shard_label;
use crate::store::{BatchOp, KeyMode, RootRecord, Store, unix_nanos};
use rustorium_core::tree::PageId;
use rustorium_proto::v1;
use rustorium_proto::v1::store_server::Store as StoreRpc;
use rustorium_proto::{fr_to_bytes, proof_to_proto};
use std::pin::Pin;
use std::time::{Instant, SystemTime};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Rows a single Scan may return.
pub const MAX_SCAN_LIMIT: u32 = 100_000;

#[derive(Debug)]
pub struct StoreService {
    engine: Engine,
    auth: Auth,
    /// What replicas reported, and how many verified copies writes wait for.
    acks: std::sync::Arc<ReplicaAcks>,
    replication_factor: u32,
    ack_timeout: std::time::Duration,
    /// The server's message limit (GetEntries answers stay under it).
    max_message_bytes: usize,
    started: Instant,
    /// Turns true when the server shuts down; ends WatchRoots streams, which
    /// would otherwise hold graceful shutdown open forever.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl StoreService {
    pub fn new(engine: impl Into<Engine>, auth: Auth) -> Self {
        Self {
            engine: engine.into(),
            auth,
            acks: std::sync::Arc::default(),
            replication_factor: 1,
            ack_timeout: std::time::Duration::from_secs(10),
            max_message_bytes: 4 << 20,
            started: Instant::now(),
            stopping: tokio::sync::watch::channel(false).1,
        }
    }

    /// Answers stay under `bytes` (the server's message limit).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Writes wait until `factor - 1` replicas verified their version.
    pub fn with_replication(mut self, factor: u32, ack_timeout: std::time::Duration) -> Self {
        self.replication_factor = factor.max(1);
        self.ack_timeout = ack_timeout;
        self
    }

    /// Waits for the replicas a committed `version` needs.
    async fn replicated(&self, version: u64) -> Result<(), Status> {
        let needed = self.replication_factor as usize - 1;
        if needed == 0 {
            return Ok(());
        }
        self.acks.wait(version, needed, self.ack_timeout).await.map_err(|verified| {
            Status::deadline_exceeded(format!(
                "committed at version {version} on this node, but verified by {verified} of the {needed} replica(s) \
                 the replication factor {} needs within {:?}",
                self.replication_factor, self.ack_timeout
            ))
        })
    }

    /// Ends every WatchRoots stream (UNAVAILABLE) once `stopping` turns true.
    pub fn with_shutdown(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stopping = stopping;
        self
    }

    fn proof(&self, proof: &rustorium_core::proof::Proof) -> v1::Proof {
        proof_to_proto(proof, self.engine.max_levels())
    }

    /// The store reads are served from, when the tree is not sharded.
    fn store(&self) -> Result<&Store, Status> {
        self.engine.local().ok_or_else(|| {
            Status::failed_precondition(
                "not served by a sharded store or cluster node: history, per-version reads and replication are \
                 per shard",
            )
        })
    }

    /// The store a request names: `shard` empty, the one store; else that
    /// shard of a sharded single node (what a replica following it asks).
    fn store_for(&self, shard: &str) -> Result<Store, Status> {
        if shard.is_empty() {
            return self.store().cloned();
        }
        let well_formed = shard.split_once('-').is_some_and(|(depth, index)| {
            depth
                .parse::<u8>()
                .is_ok_and(|d| d <= rustorium_core::tree::shard::MAX_SHARD_BITS)
                && index.parse::<usize>().is_ok()
        });
        if !well_formed {
            return Err(Status::invalid_argument(format!(
                "shard {shard:?} is not a shard label (\"depth-index\", as in Stats.sharding)"
            )));
        }
        let Engine::Sharded(node) = &self.engine else {
            return Err(Status::failed_precondition(match &self.engine {
                Engine::Cluster(_) => format!(
                    "shard {shard:?}: a cluster node serves no single shard's history (each owner keeps its own)"
                ),
                _ => format!("shard {shard:?}: this node's store is not cut into shards"),
            }));
        };
        let shards = node.store.shards();
        let found = shards.iter().find(|(prefix, _)| shard_label(*prefix) == shard);
        found.map(|(_, store)| store.clone()).ok_or_else(|| {
            let cut: Vec<String> = shards.iter().map(|(p, _)| shard_label(*p)).collect();
            Status::not_found(format!(
                "no shard {shard:?} in this node's cut ({}): it was split or merged, or never existed",
                cut.join(", ")
            ))
        })
    }
}

fn key_mode(mode: KeyMode) -> i32 {
    match mode {
        KeyMode::Bytes => v1::KeyMode::Bytes as i32,
        KeyMode::Field => v1::KeyMode::Field as i32,
    }
}

fn root_event(record: &RootRecord) -> v1::RootEvent {
    v1::RootEvent {
        version: record.version,
        root: fr_to_bytes(&record.root.hash()),
        timestamp_unix_nanos: record.timestamp_nanos,
        op_count: record.op_count,
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl StoreRpc for StoreService {
    async fn put(&self, request: Request<v1::PutRequest>) -> Result<Response<v1::PutResponse>, Status> {
        self.auth.check(&request, Access::Write)?;
        if let Engine::Cluster(cluster) = &self.engine {
            return cluster.put(request).await.map(Response::new);
        }
        let request = request.into_inner();
        if let Engine::Sharded(node) = &self.engine {
            let written = node.store.write_with_proof(&request.key, &request.value).await?;
            return Ok(Response::new(answers::put(
                &written,
                request.want_proof,
                self.engine.max_levels(),
            )));
        }
        let written = self
            .engine
            .writable()?
            .write_with_proof(&request.key, &request.value)
            .await?;
        self.replicated(written.version).await?;
        Ok(Response::new(v1::PutResponse {
            root: fr_to_bytes(&written.root),
            version: written.version,
            timestamp_unix_nanos: unix_nanos(written.timestamp),
            proof: request.want_proof.then(|| self.proof(&written.proof)),
        }))
    }

    async fn put_batch(&self, request: Request<v1::PutBatchRequest>) -> Result<Response<v1::PutBatchResponse>, Status> {
        self.auth.check(&request, Access::Write)?;
        if let Engine::Cluster(cluster) = &self.engine {
            return cluster.put_batch(request).await.map(Response::new);
        }
        let request = request.into_inner();
        let ops = request
            .ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| match op.kind {
                Some(v1::op::Kind::Value(value)) => Ok(BatchOp::Put { key: op.key, value }),
                Some(v1::op::Kind::Delete(_)) => Ok(BatchOp::Delete { key: op.key }),
                None => Err(Status::invalid_argument(format!(
                    "ops[{i}] has neither a value nor delete"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Engine::Sharded(node) = &self.engine {
            // Proofs against one root need every part's version pinned; a
            // batch without them is just the parts' commits.
            let (root, version, proofs) = if request.want_proofs {
                let written = node.store.write_batch_proven(&ops).await?;
                (written.root, written.version, written.proofs)
            } else {
                node.store.write_batch(&ops).await?;
                let (root, version) = self.engine.global_root().await?;
                (root, version, Vec::new())
            };
            return Ok(Response::new(v1::PutBatchResponse {
                root: fr_to_bytes(&root),
                version,
                timestamp_unix_nanos: unix_nanos(SystemTime::now()),
                proofs: proofs.iter().map(|p| self.proof(p)).collect(),
            }));
        }
        let result = self.engine.writable()?.write_batch(&ops, request.want_proofs).await?;
        self.replicated(result.version).await?;
        Ok(Response::new(v1::PutBatchResponse {
            root: fr_to_bytes(&result.root),
            version: result.version,
            timestamp_unix_nanos: unix_nanos(result.timestamp),
            proofs: result.proofs.iter().map(|p| self.proof(p)).collect(),
        }))
    }

    async fn get(&self, request: Request<v1::GetRequest>) -> Result<Response<v1::GetResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let request = request.into_inner();
        let sharded_read = match (&self.engine, request.at_version) {
            (Engine::Cluster(cluster), None) => Some(cluster.read(&request.key).await?),
            (Engine::Sharded(node), None) => Some(node.store.read(&request.key).await?),
            _ => None,
        };
        if let Some(read) = sharded_read {
            return Ok(Response::new(v1::GetResponse {
                found: read.value.is_some(),
                value: read.value.unwrap_or_default(),
                proof: Some(self.proof(&read.proof)),
                root: fr_to_bytes(&read.root),
                version: read.version,
                timestamp_unix_nanos: unix_nanos(SystemTime::now()),
            }));
        }
        let read = self.store()?.read_proven(&request.key, request.at_version).await?;
        Ok(Response::new(v1::GetResponse {
            found: read.value.is_some(),
            value: read.value.unwrap_or_default(),
            proof: Some(self.proof(&read.proof)),
            root: fr_to_bytes(&read.root),
            version: read.version,
            timestamp_unix_nanos: unix_nanos(read.timestamp),
        }))
    }

    async fn delete(&self, request: Request<v1::DeleteRequest>) -> Result<Response<v1::DeleteResponse>, Status> {
        self.auth.check(&request, Access::Write)?;
        if let Engine::Cluster(cluster) = &self.engine {
            return cluster.delete(request).await.map(Response::new);
        }
        if let Engine::Sharded(node) = &self.engine {
            let (deleted, existed) = node.store.delete(&request.into_inner().key).await?;
            return Ok(Response::new(answers::delete(
                &deleted,
                existed,
                self.engine.max_levels(),
            )));
        }
        let deleted = self.engine.writable()?.delete(&request.into_inner().key).await?;
        self.replicated(deleted.version).await?;
        Ok(Response::new(v1::DeleteResponse {
            root: fr_to_bytes(&deleted.root),
            version: deleted.version,
            proof: Some(self.proof(&deleted.proof)),
            timestamp_unix_nanos: unix_nanos(deleted.timestamp),
            existed: deleted.existed,
        }))
    }

    async fn get_root(&self, request: Request<v1::GetRootRequest>) -> Result<Response<v1::GetRootResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let shard = &request.get_ref().shard;
        let (root, version, timestamp) = match &self.engine {
            _ if !shard.is_empty() => self.store_for(shard)?.root(),
            Engine::Cluster(_) | Engine::Sharded(_) => {
                let (root, version) = self.engine.global_root().await?;
                (root, version, SystemTime::now())
            }
            _ => self.store()?.root(),
        };
        Ok(Response::new(v1::GetRootResponse {
            root: fr_to_bytes(&root),
            version,
            timestamp_unix_nanos: unix_nanos(timestamp),
            max_levels: u32::from(self.engine.max_levels()),
            key_mode: key_mode(self.engine.config().key_mode),
        }))
    }

    async fn get_proof(&self, request: Request<v1::GetProofRequest>) -> Result<Response<v1::GetProofResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let request = request.into_inner();
        let read = self
            .store_for(&request.shard)?
            .read_at(&request.key, request.version)
            .await?;
        Ok(Response::new(v1::GetProofResponse {
            proof: Some(self.proof(&read.proof)),
            found: read.value.is_some(),
            value: read.value.unwrap_or_default(),
            root: fr_to_bytes(&read.root),
            version: read.version,
            timestamp_unix_nanos: unix_nanos(read.timestamp),
        }))
    }

    type ScanStream = BoxStream<v1::ScanResponse>;

    async fn scan(&self, request: Request<v1::ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        self.auth.check(&request, Access::Read)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => MAX_SCAN_LIMIT,
            n if n > MAX_SCAN_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "limit {n} is over the maximum of {MAX_SCAN_LIMIT}"
                )));
            }
            n => n,
        };
        let end = (!request.end.is_empty()).then_some(request.end.as_slice());
        if let Some(end) = end
            && end < request.start.as_slice()
        {
            return Err(Status::invalid_argument("scan end is before start"));
        }
        let rows = match &self.engine {
            _ if !request.shard.is_empty() => {
                let store = self.store_for(&request.shard)?;
                match request.at_version {
                    Some(version) => store.scan_at(&request.start, end, limit as usize, version).await?,
                    None => store.scan(&request.start, end, limit as usize).await?,
                }
            }
            Engine::Cluster(_) | Engine::Sharded(_) if request.at_version.is_some() => {
                return Err(Status::failed_precondition(
                    "a sharded store's scans read the latest version: history is kept per shard",
                ));
            }
            Engine::Cluster(cluster) => cluster.scan(&request.start, end, limit as usize).await?,
            Engine::Sharded(node) => node.store.scan(&request.start, end, limit as usize).await?,
            _ => match request.at_version {
                Some(version) => {
                    self.store()?
                        .scan_at(&request.start, end, limit as usize, version)
                        .await?
                }
                None => self.store()?.scan(&request.start, end, limit as usize).await?,
            },
        };
        let stream = tokio_stream::iter(rows.into_iter().map(|(key, value)| Ok(v1::ScanResponse { key, value })));
        Ok(Response::new(Box::pin(stream)))
    }

    type WatchRootsStream = BoxStream<v1::RootEvent>;

    async fn watch_roots(
        &self,
        request: Request<v1::WatchRootsRequest>,
    ) -> Result<Response<Self::WatchRootsStream>, Status> {
        self.auth.check(&request, Access::Read)?;
        if let Engine::Cluster(_) | Engine::Sharded(_) = &self.engine {
            if request.get_ref().from_version.is_some() {
                return Err(Status::failed_precondition(
                    "a sharded store's roots stream from now on: history is kept per shard",
                ));
            }
            return Ok(Response::new(watch_global_roots(
                self.engine.clone(),
                self.stopping.clone(),
            )));
        }
        let store = self.store()?;
        // Subscribe before reading the log, so no version falls between the two.
        let mut live = store.subscribe_roots();
        let (_, current, _) = store.root();
        let from = request.into_inner().from_version.unwrap_or(current);
        if from > current + 1 {
            return Err(Status::out_of_range(format!(
                "from_version {from} is after the current version {current}"
            )));
        }
        let backlog = if from <= current {
            store.roots(from..=current, 10_000).await?
        } else {
            Vec::new()
        };
        let mut last_sent = from.checked_sub(1);
        let stopping = self.stopping.clone();
        let stream = async_stream(move |tx| async move {
            for record in backlog {
                last_sent = Some(record.version);
                if tx.send(Ok(root_event(&record))).await.is_err() {
                    return;
                }
            }
            let stop = shutdown_signal(stopping);
            tokio::pin!(stop);
            loop {
                let received = tokio::select! {
                    received = live.recv() => received,
                    () = &mut stop => {
                        let _ = tx
                            .send(Err(Status::unavailable(
                                "server is shutting down; reconnect with from_version",
                            )))
                            .await;
                        return;
                    }
                };
                match received {
                    Ok(record) => {
                        if last_sent.is_some_and(|v| record.version <= v) {
                            continue;
                        }
                        last_sent = Some(record.version);
                        if tx.send(Ok(root_event(&record))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "watcher fell {n} versions behind; reconnect with from_version"
                            ))))
                            .await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn stats(&self, request: Request<v1::StatsRequest>) -> Result<Response<v1::StatsResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let stores = self.engine.stores();
        let first = stores.first().ok_or_else(|| Status::internal("no store"))?;
        let config = first.config();
        let sum = |f: &dyn Fn(&Store) -> u64| stores.iter().map(f).sum::<u64>();
        let (version, oldest) = match &self.engine {
            // Per shard there is no one history: report the sum of the
            // shard versions and leave the retention window unset.
            Engine::Cluster(cluster) => (cluster.head_version(), 0),
            Engine::Sharded(node) => (node.store.head_version(), 0),
            _ => (first.root().1, first.oldest_version()),
        };
        let metrics = first.metrics();
        Ok(Response::new(v1::StatsResponse {
            version,
            keys_count: sum(&|s| s.keys()),
            writes_total: sum(&|s| s.metrics().writes_total.get()),
            write_batches_total: sum(&|s| s.metrics().batch_ops.get_sample_count()),
            reads_total: sum(&|s| s.metrics().reads_total.get()),
            versions_retained: if oldest > 0 || version > 0 {
                version - oldest + 1
            } else {
                1
            },
            oldest_retained_version: oldest,
            disk_bytes: sum(&|s| s.metrics().disk_usage.get().max(0) as u64),
            backend: first.backend_name().into(),
            sync_mode: config.sync_mode.name().into(),
            compression: config.compression_enabled,
            encryption: config.encryption_enabled,
            max_levels: u32::from(self.engine.max_levels()),
            key_mode: key_mode(config.key_mode),
            uptime_seconds: self.started.elapsed().as_secs(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            extra: [
                (
                    "cache_hit_ratio".to_owned(),
                    format!("{:.4}", metrics.cache_hit_ratio.get()),
                ),
                (
                    "compression_ratio".to_owned(),
                    format!("{:.3}", metrics.compression_ratio.get()),
                ),
                (
                    "pruned_rows_total".to_owned(),
                    sum(&|s| s.metrics().pruned_rows_total.get()).to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            cluster: self.engine.cluster_status(),
            replica: self.engine.replica_status(),
            replicas: self
                .acks
                .all()
                .into_iter()
                .map(|ack| v1::ReplicaAck {
                    replica_id: ack.replica_id,
                    mirrors: ack.mirrors,
                    age_ms: ack.age.as_millis() as u64,
                })
                .collect(),
            replication_factor: self.replication_factor,
            sharding: self.engine.sharding_status(),
        }))
    }

    type ReplicateStream = BoxStream<v1::ReplicatedBatch>;

    async fn replicate(
        &self,
        request: Request<v1::ReplicateRequest>,
    ) -> Result<Response<Self::ReplicateStream>, Status> {
        // Batches carry every value: they are reads.
        self.auth.check(&request, Access::Read)?;
        let shard = request.get_ref().shard.clone();
        let store = self.store_for(&shard)?;
        if store.config().replication_feed_ops == 0 {
            return Err(Status::failed_precondition(
                "this node keeps no replication feed (set storage.replication_feed_ops)",
            ));
        }
        let mut after = request.into_inner().after_version;
        let head = store.root().1;
        if after > head {
            return Err(Status::out_of_range(format!(
                "after_version {after} is past this node's version {head}"
            )));
        }
        // Subscribe first, so no commit falls between the backlog and the
        // live part.
        let mut live = store.subscribe_roots();
        let stop = shutdown_signal(self.stopping.clone());
        let engine = self.engine.clone();
        let stream = async_stream(move |tx| async move {
            tokio::pin!(stop);
            loop {
                let head = store.root().1;
                match store.batches_since(after) {
                    Ok(batches) => {
                        for batch in batches {
                            after = batch.record.version;
                            if tx.send(Ok(replicated(&batch, head))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(gap) => {
                        let _ = tx.send(Err(Status::out_of_range(gap.to_string()))).await;
                        return;
                    }
                }
                tokio::select! {
                    received = live.recv() => match received {
                        // A lagged subscriber just reads the feed again.
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    // A followed shard that split or merged away commits no
                    // more: end the stream rather than hold the old store.
                    () = tokio::time::sleep(SHARD_CHECK), if !shard.is_empty() => {
                        if !shard_is_current(&engine, &shard, &store) {
                            let _ = tx
                                .send(Err(Status::not_found(format!(
                                    "shard {shard} was split or merged away; follow the shards that replaced it"
                                ))))
                                .await;
                            return;
                        }
                    }
                    () = &mut stop => {
                        let _ = tx
                            .send(Err(Status::unavailable("server is shutting down; reconnect with after_version")))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn get_pages(&self, request: Request<v1::GetPagesRequest>) -> Result<Response<v1::GetPagesResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let request = request.into_inner();
        let ids = parse_each(&request.ids, MAX_PAGES_PER_CALL, "page id", |b| {
            PageId::from_key(b).ok()
        })?;
        let pages = self.store_for(&request.shard)?.pages_at(request.version, ids).await?;
        Ok(Response::new(v1::GetPagesResponse {
            pages: pages
                .iter()
                .map(|p| p.as_ref().map(|p| p.encode()).unwrap_or_default())
                .collect(),
        }))
    }

    async fn ack_replica(
        &self,
        request: Request<v1::AckReplicaRequest>,
    ) -> Result<Response<v1::AckReplicaResponse>, Status> {
        // An acknowledgement lets writes through: it takes what writes take.
        self.auth.check(&request, Access::Write)?;
        let request = request.into_inner();
        if request.replica_id.is_empty() || request.replica_id.len() > 256 {
            return Err(Status::invalid_argument("replica_id must be 1 to 256 bytes"));
        }
        let root = rustorium_proto::fr_from_bytes(&request.root)
            .map_err(|e| Status::invalid_argument(format!("root: {e}")))?;
        let store = self.store_for(&request.shard)?;
        let record = store
            .roots(request.mirrors..=request.mirrors, 1)
            .await?
            .pop()
            .ok_or_else(|| Status::out_of_range(format!("version {} is not retained here", request.mirrors)))?;
        if record.root.hash() != root {
            tracing::error!(
                replica = request.replica_id,
                version = request.mirrors,
                "a replica reports a root this node never had"
            );
            return Err(Status::failed_precondition(format!(
                "replica {} reports root {root} at version {}, but this node's root there is {}",
                request.replica_id,
                request.mirrors,
                record.root.hash()
            )));
        }
        // Per-shard replicas report per-shard versions: keep them apart.
        let replica = match request.shard.as_str() {
            "" => request.replica_id.clone(),
            shard => format!("{}@{shard}", request.replica_id),
        };
        self.acks
            .record(&replica, request.mirrors)
            .map_err(|known| Status::resource_exhausted(format!("this node already tracks {known} replicas")))?;
        Ok(Response::new(v1::AckReplicaResponse {
            primary_version: store.root().1,
        }))
    }

    async fn get_entries(
        &self,
        request: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        self.auth.check(&request, Access::Read)?;
        let request = request.into_inner();
        let keys = parse_each(&request.leaf_keys, MAX_ENTRIES_PER_CALL, "leaf key", |b| {
            let key: [u8; 32] = b.try_into().ok()?;
            rustorium_core::field::fr_from_le_bytes(&key).ok().map(|_| key)
        })?;
        // Half the message limit leaves room for framing; the caller asks
        // again for the keys a full answer left out.
        let store = self.store_for(&request.shard)?;
        let entries = store
            .entries_at(request.version, keys.into_iter().collect(), self.max_message_bytes / 2)
            .await?;
        let leaf_keys = entries
            .iter()
            .map(|(key, _)| Ok(fr_to_bytes(&store.key_field(key)?)))
            .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
        Ok(Response::new(v1::GetEntriesResponse {
            leaf_keys,
            entries: entries
                .into_iter()
                .map(|(key, value)| v1::ScanResponse { key, value })
                .collect(),
        }))
    }
}

/// Parses a request's repeated 32-byte keys or page ids, naming a bad one.
fn parse_each<T>(
    items: &[Vec<u8>],
    max: usize,
    what: &str,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<Vec<T>, Status> {
    if items.len() > max {
        return Err(Status::invalid_argument(format!(
            "{} {what}s: at most {max} per call",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, bytes)| parse(bytes).ok_or_else(|| Status::invalid_argument(format!("{what} {i} is malformed"))))
        .collect()
}

fn replicated(batch: &crate::store::feed::CommittedBatch, head: u64) -> v1::ReplicatedBatch {
    v1::ReplicatedBatch {
        version: batch.record.version,
        root: fr_to_bytes(&batch.record.root.hash()),
        timestamp_unix_nanos: batch.record.timestamp_nanos,
        ops: batch
            .ops
            .iter()
            .map(|(key, value)| v1::Op {
                key: key.clone(),
                kind: Some(match value {
                    Some(value) => v1::op::Kind::Value(value.clone()),
                    None => v1::op::Kind::Delete(v1::op::Delete {}),
                }),
            })
            .collect(),
        primary_version: head.max(batch.record.version),
    }
}

/// How often a stream following one shard checks the shard still exists.
const SHARD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `store` still serves shard `label` of the engine's cut.
fn shard_is_current(engine: &Engine, label: &str, store: &Store) -> bool {
    let Engine::Sharded(node) = engine else { return false };
    node.store
        .shards()
        .iter()
        .any(|(prefix, current)| shard_label(*prefix) == label && current.is_same(store))
}

/// How often a sharded store or cluster node looks for a new global root.
const GLOBAL_ROOT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The global root of a sharded store or cluster each time it changes
/// (versions may skip; `op_count` is not tracked across shards).
fn watch_global_roots(engine: Engine, stopping: tokio::sync::watch::Receiver<bool>) -> BoxStream<v1::RootEvent> {
    async_stream(move |tx| async move {
        let stop = shutdown_signal(stopping);
        tokio::pin!(stop);
        let mut last = None;
        loop {
            match engine.global_root().await {
                Ok((root, version)) if last != Some(version) => {
                    last = Some(version);
                    let event = v1::RootEvent {
                        version,
                        root: fr_to_bytes(&root),
                        timestamp_unix_nanos: unix_nanos(SystemTime::now()),
                        op_count: 0,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = tx.send(Err(Status::from(error))).await;
                    return;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(GLOBAL_ROOT_POLL) => {}
                () = &mut stop => {
                    let _ = tx.send(Err(Status::unavailable("server is shutting down; reconnect"))).await;
                    return;
                }
            }
        }
    })
}

/// Resolves once the server starts shutting down; a service without a
/// shutdown signal (sender dropped) never does.
async fn shutdown_signal(mut stopping: tokio::sync::watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A stream fed by a spawned task through a bounded channel.
fn async_stream<T, F, Fut>(body: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
