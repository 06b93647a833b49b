//! The node server: gRPC and gRPC-web (with CORS) for `rustorium.v1.Store`,
//! gRPC health checking, server reflection, Prometheus text at `/metrics` and
//! the dashboard's static files at `/`, all on one port.

pub mod acks;
pub mod answers;
pub mod auth;
pub mod config;
pub mod engine;
mod info;
pub mod service;
mod status;

use auth::Auth;
use axum::routing::get;
use config::NodeConfig;
use engine::Engine;
use rustorium_proto::v1::store_server::StoreServer;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(String),
}

/// A bound, not yet serving, server.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    pub addr: SocketAddr,
}

pub async fn bind(config: &NodeConfig) -> Result<BoundServer, ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    Ok(BoundServer { listener, addr })
}

fn cors() -> tower_http::cors::CorsLayer {
    use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
        ])
        .max_age(Duration::from_secs(3600))
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in
/// flight finish, and returns. The caller shuts the store down afterwards.
pub async fn serve(
    bound: BoundServer,
    engine: impl Into<Engine>,
    config: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine: Engine = engine.into();
    let limits = &config.limits;
    // Graceful shutdown waits for every open stream; WatchRoots streams never
    // end by themselves, so they are told to stop when shutdown starts.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let service = StoreServer::new(
        service::StoreService::new(
            engine.clone(),
            Auth::new(config.auth.token.clone(), config.auth.protect_reads),
        )
        .with_shutdown(stopping)
        .with_max_message_bytes(limits.max_message_bytes)
        .with_replication(
            config.replication.factor,
            Duration::from_millis(config.replication.ack_timeout_ms),
        ),
    )
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<StoreServer<service::StoreService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rustorium_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let mut routes = Routes::builder();
    // gRPC-web wraps the gRPC services only: as a server-wide layer it
    // answers every other HTTP/1.1 request (GET /metrics, the dashboard) 400.
    use tower::Layer as _;
    let grpc_web = tonic_web::GrpcWebLayer::new();
    routes
        .add_service(grpc_web.layer(service))
        .add_service(grpc_web.layer(health))
        .add_service(grpc_web.layer(reflection));
    let metrics_engine = engine.clone();
    let mut router = routes.routes().into_axum_router().route(
        "/metrics",
        get(move || {
            let engine = metrics_engine.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    engine.render_metrics(),
                )
            }
        }),
    );
    if let Engine::Cluster(cluster) = &engine {
        // The PD rules that pin each shard's leaders to its owner's region.
        let cluster = cluster.clone();
        router = router.route(
            "/api/placement-rules",
            get(move || {
                let cluster = cluster.clone();
                async move { axum::Json(cluster.placement_rules()) }
            }),
        );
    }
    router = router.route(
        "/api/info",
        get(move || {
            let engine = engine.clone();
            async move { axum::Json(info::NodeInfo::of(&engine)) }
        }),
    );
    if config.dashboard_dir.is_dir() {
        router = router.fallback_service(tower_http::services::ServeDir::new(&config.dashboard_dir));
    }

    let mut builder = Server::builder()
        .accept_http1(true)
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .concurrency_limit_per_connection(limits.max_concurrent_requests);
    if let Some(tls) = &config.tls {
        let cert = std::fs::read(&tls.cert).map_err(|e| ServeError::Tls(format!("{}: {e}", tls.cert.display())))?;
        let key = std::fs::read(&tls.key).map_err(|e| ServeError::Tls(format!("{}: {e}", tls.key.display())))?;
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?;
    }
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(bound.listener);
    builder
        .layer(cors())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
