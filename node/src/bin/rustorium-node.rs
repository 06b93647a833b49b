//! `rustorium-node`: the Rustorium server and its admin commands.
//!
//! Configuration precedence: built-in defaults < `--config` TOML file <
//! `RUSTORIUM_*` environment variables < command-line flags.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rustorium_node::cluster::follow::RemotePrimary;
use rustorium_node::cluster::placement::PlacementStrategy;
use rustorium_node::cluster::{ClusterConfig, ClusterNode};
use rustorium_node::server::config::{LogFormat, NodeConfig, ReplicaConfig, TlsConfig};
use rustorium_node::server::engine::{Engine, ReplicaNode, ShardedNode};
use rustorium_node::store::backend::any::AnyBackend;
use rustorium_node::store::replica::{Replica, SourcePages};
use rustorium_node::store::sharded::{LAYOUT_FILE, ShardedStore, shard_dirs, shard_label};
use rustorium_node::store::verify_db::{verify, verify_redb};
use rustorium_node::store::{BackendKind, KeyMode, StorageConfig, Store, SyncMode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "rustorium-node",
    version,
    about = "Rustorium verifiable key-value store node"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC, gRPC-web, /metrics and the dashboard (the default).
    Serve(Box<ServeArgs>),
    /// Recompute the root from the stored values and check the root log.
    VerifyDb {
        /// Store directory.
        #[arg(long, env = "RUSTORIUM_DATA", default_value = "./data")]
        data: PathBuf,
        /// A TOML config whose [storage] section describes the store (key mode, max levels, encryption).
        #[arg(long, env = "RUSTORIUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check every page of a store against its root and replace damaged ones
    /// from a healthy copy with the same root: a store directory (same
    /// settings) or a running node's URL (e.g. the primary a replica follows).
    Repair {
        /// The damaged store's directory.
        #[arg(long, env = "RUSTORIUM_DATA", default_value = "./data")]
        data: PathBuf,
        /// A healthy copy: a directory, or http(s)://host:port of a node.
        #[arg(long)]
        source: String,
        /// With a node URL: the node's version whose root this store has
        /// (default: its current version).
        #[arg(long)]
        source_version: Option<u64>,
        /// With a node URL: bearer token, if the node protects reads.
        #[arg(long, env = "RUSTORIUM_SOURCE_TOKEN", hide_env_values = true)]
        source_token: Option<String>,
        /// A TOML config whose [storage] section describes both stores.
        #[arg(long, env = "RUSTORIUM_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Args, Default)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "RUSTORIUM_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address (use port 0 for any free port).
    #[arg(long, env = "RUSTORIUM_LISTEN")]
    listen: Option<SocketAddr>,
    /// Store directory.
    #[arg(long, env = "RUSTORIUM_DATA")]
    data: Option<PathBuf>,
    /// redb | tikv | hybrid
    #[arg(long, env = "RUSTORIUM_BACKEND", value_parser = parse_backend)]
    backend: Option<BackendKind>,
    /// PD endpoints for the tikv and hybrid backends, comma-separated host:port.
    #[arg(long, env = "RUSTORIUM_PD_ENDPOINTS", value_delimiter = ',')]
    pd_endpoints: Vec<String>,
    /// TiKV API v2 keyspace (the cluster needs storage.api-version = 2).
    #[arg(long, env = "RUSTORIUM_TIKV_KEYSPACE")]
    tikv_keyspace: Option<String>,
    /// none | async | full
    #[arg(long, env = "RUSTORIUM_SYNC_MODE", value_parser = str::parse::<SyncMode>)]
    sync_mode: Option<SyncMode>,
    /// bytes | field (fixed when the store is created)
    #[arg(long, env = "RUSTORIUM_KEY_MODE", value_parser = parse_key_mode)]
    key_mode: Option<KeyMode>,
    /// Tree depth bound (fixed when the store is created).
    #[arg(long, env = "RUSTORIUM_MAX_LEVELS")]
    max_levels: Option<u16>,
    /// Refuse writes that would grow the store past this many bytes.
    #[arg(long, env = "RUSTORIUM_MAX_SIZE")]
    max_size: Option<u64>,
    /// Bearer token required for writes.
    #[arg(long, env = "RUSTORIUM_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Require the token for reads too.
    #[arg(long, env = "RUSTORIUM_PROTECT_READS")]
    protect_reads: bool,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, env = "RUSTORIUM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "RUSTORIUM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Dashboard files to serve at /.
    #[arg(long, env = "RUSTORIUM_DASHBOARD_DIR")]
    dashboard_dir: Option<PathBuf>,
    /// text | json
    #[arg(long, env = "RUSTORIUM_LOG_FORMAT", value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
    /// Join a cluster sharing the TiKV keyspace under this node id.
    #[arg(long, env = "RUSTORIUM_CLUSTER_NODE_ID")]
    cluster_node_id: Option<String>,
    /// URL other cluster nodes forward writes to (default: http://<listen address>).
    #[arg(long, env = "RUSTORIUM_CLUSTER_ADVERTISE")]
    cluster_advertise: Option<String>,
    /// This node's region label (geographic placement).
    #[arg(long, env = "RUSTORIUM_CLUSTER_REGION")]
    cluster_region: Option<String>,
    /// Shards of the tree in a cluster (a power of two, at most 256).
    #[arg(long, env = "RUSTORIUM_SHARD_COUNT")]
    shard_count: Option<u32>,
    /// Shard lease TTL in milliseconds.
    #[arg(long, env = "RUSTORIUM_LEASE_TTL_MS")]
    lease_ttl_ms: Option<u64>,
    /// Minimum time an owner keeps a shard before placement moves it, in milliseconds.
    #[arg(long, env = "RUSTORIUM_MIN_OWNERSHIP_MS")]
    min_ownership_ms: Option<u64>,
    /// random | geographic | loadbased | hybrid
    #[arg(long, env = "RUSTORIUM_PLACEMENT", value_parser = parse_placement)]
    placement: Option<PlacementStrategy>,
    /// Run as a read-only replica of the node at this URL.
    #[arg(long, env = "RUSTORIUM_FOLLOW")]
    follow: Option<String>,
    /// Bearer token for a primary that protects reads.
    #[arg(long, env = "RUSTORIUM_FOLLOW_TOKEN", hide_env_values = true)]
    follow_token: Option<String>,
    /// Keep the ops of this many recent writes for replicas to stream.
    #[arg(long, env = "RUSTORIUM_REPLICATION_FEED_OPS")]
    replication_feed_ops: Option<usize>,
    /// Copies a write waits for, this node included (replicas must report them verified).
    #[arg(long, env = "RUSTORIUM_REPLICATION_FACTOR")]
    replication_factor: Option<u32>,
    /// How long a write waits for its replicas, in milliseconds.
    #[arg(long, env = "RUSTORIUM_REPLICATION_ACK_TIMEOUT_MS")]
    replication_ack_timeout_ms: Option<u64>,
    /// The name a replica reports its progress under (default: its listen address).
    #[arg(long, env = "RUSTORIUM_REPLICA_ID")]
    replica_id: Option<String>,
    /// Follow only this shard ("depth-index", see Stats.sharding) of a sharded primary.
    #[arg(long, env = "RUSTORIUM_FOLLOW_SHARD", requires = "follow")]
    follow_shard: Option<String>,
    /// Cut a new single-node Redb store into this many shards (a power of two).
    #[arg(long, env = "RUSTORIUM_SHARDS")]
    shards: Option<u32>,
    /// Split a shard taking more writes per second than this (a sharded node, or a cluster owner's shards).
    #[arg(long, env = "RUSTORIUM_SPLIT_ABOVE_WRITES_PER_SEC")]
    split_above_writes_per_sec: Option<f64>,
    /// Split a shard holding more live keys than this.
    #[arg(long, env = "RUSTORIUM_SPLIT_ABOVE_KEYS")]
    split_above_keys: Option<u64>,
    /// Merge two sibling shards each taking fewer writes per second than this.
    #[arg(long, env = "RUSTORIUM_MERGE_BELOW_WRITES_PER_SEC")]
    merge_below_writes_per_sec: Option<f64>,
    /// Merge two sibling shards each holding fewer live keys than this.
    #[arg(long, env = "RUSTORIUM_MERGE_BELOW_KEYS")]
    merge_below_keys: Option<u64>,
    /// How often shards are checked for splitting and merging, in milliseconds.
    #[arg(long, env = "RUSTORIUM_RESHARD_INTERVAL_MS")]
    reshard_interval_ms: Option<u64>,
}

fn parse_placement(s: &str) -> Result<PlacementStrategy, String> {
    match s {
        "random" => Ok(PlacementStrategy::Random),
        "geographic" => Ok(PlacementStrategy::Geographic),
        "loadbased" => Ok(PlacementStrategy::LoadBased),
        "hybrid" => Ok(PlacementStrategy::Hybrid),
        _ => Err(format!(
            "placement is random, geographic, loadbased or hybrid, not {s:?}"
        )),
    }
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    match s {
        "redb" => Ok(BackendKind::Redb),
        "tikv" => Ok(BackendKind::Tikv),
        "hybrid" => Ok(BackendKind::Hybrid),
        _ => Err(format!("backend is redb, tikv or hybrid, not {s:?}")),
    }
}

fn parse_key_mode(s: &str) -> Result<KeyMode, String> {
    match s {
        "bytes" => Ok(KeyMode::Bytes),
        "field" => Ok(KeyMode::Field),
        _ => Err(format!("key mode is bytes or field, not {s:?}")),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("log format is text or json, not {s:?}")),
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<NodeConfig> {
    match path {
        None => Ok(NodeConfig::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
            NodeConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
        }
    }
}

fn node_config(args: &ServeArgs) -> anyhow::Result<NodeConfig> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(v) = args.listen {
        config.listen = v;
    }
    let storage: &mut StorageConfig = &mut config.storage;
    if let Some(v) = &args.data {
        storage.path = v.clone();
    }
    if let Some(v) = args.backend {
        storage.backend = v;
    }
    if !args.pd_endpoints.is_empty() {
        storage.tikv.pd_endpoints = args.pd_endpoints.clone();
    }
    if let Some(v) = &args.tikv_keyspace {
        storage.tikv.keyspace = Some(v.clone());
    }
    if let Some(v) = args.sync_mode {
        storage.sync_mode = v;
    }
    if let Some(v) = args.key_mode {
        storage.key_mode = v;
    }
    if let Some(v) = args.max_levels {
        storage.max_levels = v;
    }
    if let Some(v) = args.max_size {
        storage.max_size = v;
    }
    if let Some(v) = &args.auth_token {
        config.auth.token = Some(v.clone());
    }
    if args.protect_reads {
        config.auth.protect_reads = true;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(v) = &args.dashboard_dir {
        config.dashboard_dir = v.clone();
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    if let Some(v) = args.replication_feed_ops {
        config.storage.replication_feed_ops = v;
    }
    if let Some(v) = args.replication_factor {
        config.replication.factor = v;
    }
    if let Some(v) = args.replication_ack_timeout_ms {
        config.replication.ack_timeout_ms = v;
    }
    let clustered = args.cluster_node_id.is_some()
        || args.cluster_advertise.is_some()
        || args.cluster_region.is_some()
        || args.shard_count.is_some()
        || args.lease_ttl_ms.is_some()
        || args.min_ownership_ms.is_some()
        || args.placement.is_some();
    if clustered {
        let cluster = config.cluster.get_or_insert_with(ClusterConfig::default);
        if let Some(v) = &args.cluster_node_id {
            cluster.node_id = v.clone();
        }
        if let Some(v) = &args.cluster_advertise {
            cluster.advertise = v.clone();
        }
        if let Some(v) = &args.cluster_region {
            cluster.region = v.clone();
        }
        if let Some(v) = args.shard_count {
            cluster.shard_count = v;
        }
        if let Some(v) = args.lease_ttl_ms {
            cluster.lease_ttl = std::time::Duration::from_millis(v);
        }
        if let Some(v) = args.min_ownership_ms {
            cluster.min_ownership = std::time::Duration::from_millis(v);
        }
        if let Some(v) = args.placement {
            cluster.placement_strategy = v;
        }
    }
    if let Some(v) = args.shards {
        config.sharding.shards = v;
    }
    if let Some(v) = args.reshard_interval_ms {
        config.sharding.check_interval_ms = v;
    }
    // A cluster node's owners split and merge their shards in its keeper
    // rounds; a single node's store by [sharding.auto].
    let auto = match config.cluster.as_mut() {
        Some(cluster) => &mut cluster.reshard,
        None => &mut config.sharding.auto,
    };
    auto.split_above_writes_per_sec = args.split_above_writes_per_sec.or(auto.split_above_writes_per_sec);
    auto.split_above_keys = args.split_above_keys.or(auto.split_above_keys);
    auto.merge_below_writes_per_sec = args.merge_below_writes_per_sec.or(auto.merge_below_writes_per_sec);
    auto.merge_below_keys = args.merge_below_keys.or(auto.merge_below_keys);
    if let Some(url) = &args.follow {
        config.replica = Some(ReplicaConfig {
            follow: url.clone(),
            token: args.follow_token.clone(),
            id: args.replica_id.clone(),
            shard: args.follow_shard.clone(),
        });
    }
    config.check().map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed here, before
/// the node announces itself: a signal that arrives before serving starts
/// still shuts it down cleanly instead of killing it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight and flushing queued writes");
    })
}

fn open_store(storage: &StorageConfig) -> anyhow::Result<Store> {
    Store::open(storage.clone()).with_context(|| match storage.backend {
        BackendKind::Redb => format!("opening store at {}", storage.path.display()),
        kind => format!(
            "opening the {kind:?} store on PD {:?} (namespace {:?})",
            storage.tikv.pd_endpoints, storage.tikv.namespace
        ),
    })
}

/// Opens the single node's store cut into shards, and starts resharding it
/// when a policy is set.
fn open_sharded(config: &NodeConfig) -> anyhow::Result<ShardedNode> {
    let storage = &config.storage;
    let had_layout = storage.path.join(LAYOUT_FILE).exists();
    config
        .check_sharded()
        .map_err(|e| anyhow::anyhow!("{} holds a sharded store: {e}", storage.path.display()))?;
    if !had_layout
        && storage
            .path
            .join(rustorium_node::store::backend::redb::FILE_NAME)
            .exists()
    {
        anyhow::bail!(
            "{} holds an unsharded store, which is not cut in place: serve it without --shards / [sharding], or \
             export it and import it into a new sharded node",
            storage.path.display()
        );
    }
    let bits = config.sharding.bits().map_err(anyhow::Error::msg)?;
    let store = ShardedStore::open(storage, bits)
        .with_context(|| format!("opening the sharded store at {}", storage.path.display()))?;
    if had_layout && store.shard_count() != config.sharding.shards as usize {
        tracing::info!(
            shards = store.shard_count(),
            "the cut kept in {LAYOUT_FILE} wins over sharding.shards"
        );
    }
    let store = Arc::new(store);
    let automatic = config.sharding.automatic();
    if automatic {
        store.run_resharding(
            config.sharding.auto.clone(),
            std::time::Duration::from_millis(config.sharding.check_interval_ms),
        );
    }
    Ok(ShardedNode {
        store,
        config: storage.clone(),
        automatic,
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = node_config(&args)?;
    init_logging(config.log_format);
    let stop = shutdown_signal()?;
    let bound = rustorium_node::server::bind(&config).await?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let storage = &config.storage;
    let (engine, role) = if let Some(cluster) = &config.cluster {
        let mut cluster = cluster.clone();
        if cluster.advertise.is_empty() {
            cluster.advertise = format!("{scheme}://{}", bound.addr);
        }
        let role = format!(
            "cluster node {:?} in region {:?} ({} shards, {:?} placement, advertised at {})",
            cluster.node_id, cluster.region, cluster.shard_count, cluster.placement_strategy, cluster.advertise
        );
        let node = ClusterNode::open(
            cluster,
            storage,
            std::time::Duration::from_millis(config.limits.request_timeout_ms),
            config.limits.max_message_bytes,
        )
        .with_context(|| format!("joining the cluster on PD {:?}", storage.tikv.pd_endpoints))?;
        node.join()
            .await
            .with_context(|| format!("reading the cluster's cut on PD {:?}", storage.tikv.pd_endpoints))?;
        node.start();
        (Engine::Cluster(node), role)
    } else if let Some(replica) = &config.replica {
        if storage.path.join(LAYOUT_FILE).exists() {
            anyhow::bail!(
                "{} holds a sharded store; a replica keeps its own unsharded one (use another --data)",
                storage.path.display()
            );
        }
        let store = open_store(storage)?;
        let id = replica
            .id
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", bound.addr));
        let shard = replica.shard.clone().unwrap_or_default();
        let primary = RemotePrimary::new(&replica.follow, replica.token.clone(), config.limits.max_message_bytes)?
            .acknowledging_as(id)
            .following_shard(shard.clone());
        let role = match shard.as_str() {
            "" => format!("read-only replica of {}", replica.follow),
            shard => format!("read-only replica of shard {shard} of {}", replica.follow),
        };
        let node = ReplicaNode {
            replica: Replica::follow(primary, store),
            primary: replica.follow.clone(),
            shard,
        };
        (Engine::Replica(Arc::new(node)), role)
    } else if storage.backend == BackendKind::Redb
        && (config.sharding.enabled() || storage.path.join(LAYOUT_FILE).exists())
    {
        let node = open_sharded(&config)?;
        let role = format!(
            "single node, {} shards{}",
            node.store.shard_count(),
            if node.automatic {
                " (split and merged automatically)"
            } else {
                ""
            }
        );
        (Engine::Sharded(Arc::new(node)), role)
    } else {
        (Engine::Single(open_store(storage)?), "single node".to_owned())
    };
    let dashboard = if config.dashboard_dir.is_dir() {
        format!(", dashboard at {scheme}://{}/", bound.addr)
    } else {
        String::new()
    };
    // Tests and scripts read this line to find the port.
    println!(
        "rustorium-node listening on {scheme}://{} (gRPC, gRPC-web, metrics at /metrics{dashboard})",
        bound.addr
    );
    println!(
        "store: {} on {} ({:?} sync, {:?} keys), {role}",
        storage.path.display(),
        engine.stores().first().map_or("none", |s| s.backend_name()),
        storage.sync_mode,
        storage.key_mode
    );
    rustorium_node::server::serve(bound, engine.clone(), &config, stop).await?;
    if let Engine::Cluster(node) = &engine {
        // Others take this node's shards now rather than after the TTL.
        node.leave().await;
    }
    for store in engine.stores() {
        store.sync().await.context("final flush")?;
    }
    match engine {
        Engine::Single(store) => store.shutdown(),
        // The server's handles are gone; the resharding task holds none.
        Engine::Sharded(node) => {
            if let Some(node) = Arc::into_inner(node)
                && let Some(store) = Arc::into_inner(node.store)
            {
                store.shutdown();
            }
        }
        _ => {}
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

fn verify_db(data: PathBuf, config: Option<PathBuf>) -> anyhow::Result<bool> {
    let mut storage = load_config(config.as_ref())?.storage;
    if storage.backend == BackendKind::Redb
        && let Some(shards) = shard_dirs(&data)?
    {
        // Each shard is a whole store; the global root is a function of
        // theirs, so every shard passing is the store passing.
        let mut ok = true;
        for (prefix, dir) in shards {
            println!("shard {} ({}):", shard_label(prefix), dir.display());
            storage.path = dir;
            ok &= print_verified(&verify_redb(&storage)?);
        }
        println!("{}", if ok { "OK: every shard" } else { "MISMATCH" });
        return Ok(ok);
    }
    storage.path = data;
    // Redb is checked in place (and must exist); TiKV and hybrid stores are
    // checked against the cluster's rows, the source of truth.
    let report = match storage.backend {
        BackendKind::Redb => verify_redb(&storage)?,
        _ => verify(&AnyBackend::open(&storage)?, &storage)?,
    };
    Ok(print_verified(&report))
}

fn print_verified(report: &rustorium_node::store::verify_db::VerifyReport) -> bool {
    println!(
        "version {}: {} keys, {} root-log entries",
        report.version, report.keys, report.root_versions
    );
    println!("stored root     {}", report.stored_root);
    println!("recomputed root {}", report.recomputed_root);
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    println!("{}", if report.ok() { "OK" } else { "MISMATCH" });
    report.ok()
}

struct RepairSource {
    source: String,
    version: Option<u64>,
    token: Option<String>,
}

async fn repair(data: PathBuf, from: RepairSource, config: Option<PathBuf>) -> anyhow::Result<bool> {
    let storage = load_config(config.as_ref())?.storage;
    let remote = from.source.starts_with("http://") || from.source.starts_with("https://");
    let mut dirs = vec![data.clone()];
    if !remote {
        dirs.push(PathBuf::from(&from.source));
    }
    for dir in &dirs {
        if dir.join(LAYOUT_FILE).exists() {
            anyhow::bail!(
                "{} holds a sharded store: repair each shard's directory (listed in {LAYOUT_FILE}) from the same \
                 shard of a healthy copy",
                dir.display()
            );
        }
        if !dir.join(rustorium_node::store::backend::redb::FILE_NAME).exists() {
            anyhow::bail!("no store at {}", dir.display());
        }
    }
    let open = |path: &PathBuf| {
        let mut config = storage.clone();
        config.path = path.clone();
        config.backend = BackendKind::Redb;
        Store::open(config).with_context(|| format!("opening store at {}", path.display()))
    };
    let damaged = open(&data)?;
    let report = if remote {
        let primary = RemotePrimary::new(&from.source, from.token.clone(), 64 << 20)?;
        let (root, version) = match from.version {
            Some(version) => (primary.root_at(version).await?, version),
            None => primary.root().await?,
        };
        damaged
            .repair_pages_with(
                &SourcePages {
                    source: &primary,
                    version,
                },
                root,
            )
            .await
            .with_context(|| format!("{} at version {version}", from.source))?
    } else {
        let healthy = open(&PathBuf::from(&from.source))?;
        let report = damaged.repair_pages_from(&healthy).await?;
        healthy.shutdown();
        report
    };
    println!(
        "version {}: {} pages checked, {} fetched from {}",
        report.version, report.pages_checked, report.pages_fetched, from.source
    );
    damaged.shutdown();
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or_else(|| Command::Serve(Box::default())) {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve(*args)))
            .map(|()| true),
        Command::VerifyDb { data, config } => verify_db(data, config),
        Command::Repair {
            data,
            source,
            source_version,
            source_token,
            config,
        } => {
            let from = RepairSource {
                source,
                version: source_version,
                token: source_token,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(repair(data, from, config)))
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
