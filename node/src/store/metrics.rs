//! The seed's `StorageMetrics` and the engine's own, in a Prometheus registry
//! that the server exposes. Names follow `rustorium_{subsystem}_{noun}_{unit}`.

use prometheus::{Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Opts, Registry};

/// Every metric of one store.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    pub registry: Registry,
    pub writes_total: IntCounter,
    pub reads_total: IntCounter,
    pub errors_total: IntCounter,
    pub write_latency: Histogram,
    pub read_latency: Histogram,
    pub proof_generation_time: Histogram,
    pub commit_latency: Histogram,
    /// Where a commit's time goes, by `phase`: `pages` (loading the tree
    /// pages a batch touches), `hash` (the tree update's hashing), `rows`
    /// (value lookups, encoding values and pages, stale records), `prune`,
    /// `backend` (the backend transaction), `publish` (head, cache, proofs).
    pub commit_phase_seconds: HistogramVec,
    pub batch_ops: Histogram,
    pub disk_usage: IntGauge,
    pub memory_usage: IntGauge,
    pub cache_hit_ratio: Gauge,
    pub pruned_rows_total: IntCounter,
    pub tree_hashes_total: IntCounter,
    pub stored_rows_total: IntCounter,
    pub stored_bytes_total: IntCounter,
    pub compression_ratio: Gauge,
    pub version: IntGauge,
    /// Commits re-applied because another writer won or a transient failure.
    pub commit_retries_total: IntCounter,
    /// Commits whose batch was applied while the previous one was written.
    pub pipelined_commits_total: IntCounter,
    /// Primary versions a replica has not applied yet.
    pub replication_lag_versions: IntGauge,
    /// Versions committed by other nodes that this node adopted.
    pub adopted_versions_total: IntCounter,
    /// Hit ratio of the backend's own cache (the hybrid backend's Redb).
    pub backend_cache_hit_ratio: Gauge,
    pub backend_cache_hits: IntGauge,
    pub backend_cache_misses: IntGauge,
    value_bytes_in: IntCounter,
    value_bytes_stored: IntCounter,
}

fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.000_01, 2.0, 22).unwrap_or_default()
}

macro_rules! register {
    ($registry:expr, $metric:expr) => {{
        let metric = $metric.expect("metric options are static and valid");
        $registry
            .register(Box::new(metric.clone()))
            .expect("each metric is registered once");
        metric
    }};
}

impl StorageMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str| HistogramOpts::new(name, help).buckets(latency_buckets());
        Self {
            writes_total: register!(
                registry,
                IntCounter::new("rustorium_store_writes_total", "Keys written or deleted")
            ),
            reads_total: register!(registry, IntCounter::new("rustorium_store_reads_total", "Keys read")),
            errors_total: register!(
                registry,
                IntCounter::new("rustorium_store_errors_total", "Failed store operations")
            ),
            write_latency: register!(
                registry,
                Histogram::with_opts(histogram(
                    "rustorium_store_write_latency_seconds",
                    "Write latency, queue to answer"
                ))
            ),
            read_latency: register!(
                registry,
                Histogram::with_opts(histogram(
                    "rustorium_store_read_latency_seconds",
                    "Read-with-proof latency"
                ))
            ),
            proof_generation_time: register!(
                registry,
                Histogram::with_opts(histogram(
                    "rustorium_store_proof_generation_seconds",
                    "Time to build proofs"
                ))
            ),
            commit_latency: register!(
                registry,
                Histogram::with_opts(histogram(
                    "rustorium_store_commit_latency_seconds",
                    "Time of one group commit"
                ))
            ),
            commit_phase_seconds: register!(
                registry,
                HistogramVec::new(
                    histogram(
                        "rustorium_store_commit_phase_seconds",
                        "Time of one phase of a group commit"
                    ),
                    &["phase"]
                )
            ),
            batch_ops: register!(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new("rustorium_store_batch_ops", "Ops per group commit")
                        .buckets(prometheus::exponential_buckets(1.0, 2.0, 16).unwrap_or_default())
                )
            ),
            disk_usage: register!(registry, IntGauge::new("rustorium_store_disk_bytes", "Bytes on disk")),
            memory_usage: register!(
                registry,
                IntGauge::new("rustorium_store_memory_bytes", "Resident memory of the process")
            ),
            cache_hit_ratio: register!(
                registry,
                Gauge::new("rustorium_store_cache_hit_ratio", "Page cache hits / lookups")
            ),
            pruned_rows_total: register!(
                registry,
                IntCounter::new("rustorium_store_pruned_rows_total", "Stale rows removed")
            ),
            tree_hashes_total: register!(
                registry,
                IntCounter::new(
                    "rustorium_store_tree_hashes_total",
                    "Poseidon calls made by tree updates"
                )
            ),
            stored_rows_total: register!(
                registry,
                IntCounter::new("rustorium_store_stored_rows_total", "Rows written by commits")
            ),
            stored_bytes_total: register!(
                registry,
                IntCounter::new("rustorium_store_stored_bytes_total", "Bytes written by commits")
            ),
            compression_ratio: register!(
                registry,
                Gauge::new(
                    "rustorium_store_compression_ratio",
                    "Value bytes in / value bytes stored"
                )
            ),
            version: register!(registry, IntGauge::new("rustorium_store_version", "Current version")),
            commit_retries_total: register!(
                registry,
                IntCounter::new(
                    "rustorium_store_commit_retries_total",
                    "Commits re-applied after a conflict with another writer or a transient backend failure"
                )
            ),
            pipelined_commits_total: register!(
                registry,
                IntCounter::new(
                    "rustorium_store_pipelined_commits_total",
                    "Commits whose batch was applied to the tree while the previous batch was being written"
                )
            ),
            replication_lag_versions: register!(
                registry,
                IntGauge::new(
                    "rustorium_store_replication_lag_versions",
                    "Primary versions this replica has not applied yet"
                )
            ),
            adopted_versions_total: register!(
                registry,
                IntCounter::new(
                    "rustorium_store_adopted_versions_total",
                    "Times this node adopted a newer head committed by another node"
                )
            ),
            backend_cache_hit_ratio: register!(
                registry,
                Gauge::new(
                    "rustorium_backend_cache_hit_ratio",
                    "Hit ratio of the hybrid backend's local Redb cache (1 without one)"
                )
            ),
            backend_cache_hits: register!(
                registry,
                IntGauge::new(
                    "rustorium_backend_cache_hits",
                    "Lookups the hybrid backend's local cache answered"
                )
            ),
            backend_cache_misses: register!(
                registry,
                IntGauge::new(
                    "rustorium_backend_cache_misses",
                    "Lookups the hybrid backend sent to TiKV"
                )
            ),
            value_bytes_in: IntCounter::with_opts(Opts::new("value_bytes_in", "internal")).expect("valid"),
            value_bytes_stored: IntCounter::with_opts(Opts::new("value_bytes_stored", "internal")).expect("valid"),
            registry,
        }
    }

    /// Records the time of one commit phase (see `commit_phase_seconds`).
    pub fn phase(&self, phase: &str, time: std::time::Duration) {
        self.commit_phase_seconds
            .with_label_values(&[phase])
            .observe(time.as_secs_f64());
    }

    /// Seconds spent in `phase` so far, over all commits.
    pub fn phase_total_seconds(&self, phase: &str) -> f64 {
        self.commit_phase_seconds.with_label_values(&[phase]).get_sample_sum()
    }

    pub fn record_value(&self, plain: usize, stored: usize) {
        self.value_bytes_in.inc_by(plain as u64);
        self.value_bytes_stored.inc_by(stored as u64);
        let stored = self.value_bytes_stored.get().max(1) as f64;
        self.compression_ratio.set(self.value_bytes_in.get() as f64 / stored);
    }

    /// Refreshes the gauges that are sampled rather than counted.
    /// Samples the backend cache's counters (`None`: the backend has none).
    pub fn sample_backend_cache(&self, counts: Option<(u64, u64)>) {
        let (hits, misses) = counts.unwrap_or((0, 0));
        self.backend_cache_hits.set(hits as i64);
        self.backend_cache_misses.set(misses as i64);
        let total = hits + misses;
        self.backend_cache_hit_ratio
            .set(if total == 0 { 1.0 } else { hits as f64 / total as f64 });
    }

    pub fn sample(&self, disk_bytes: u64, cache_hit_ratio: f64) {
        self.disk_usage.set(disk_bytes as i64);
        self.cache_hit_ratio.set(cache_hit_ratio);
        self.memory_usage.set(resident_bytes() as i64);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn resident_bytes() -> u64 {
    // /proc/self/statm: size resident ... in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}
