//! The real `rustorium-node` binary seen as a browser and as generic gRPC
//! tooling see it, over plain sockets:
//! - gRPC-web over HTTP/1.1 (hyper 1 client, frames built and parsed by
//!   hand): Put and Get as `application/grpc-web+proto`, a data frame (0x00)
//!   and a trailer frame (0x80) with `grpc-status:0`, and the Get proof
//!   verifies with core; an error travels as a non-zero grpc-status; a CORS
//!   preflight and a cross-origin POST get `access-control-allow-origin`;
//! - server reflection (v1) lists `rustorium.v1.Store` and
//!   `grpc.health.v1.Health` and serves the file that defines the Store;
//! - gRPC health reports SERVING;
//! - GET /metrics answers Prometheus text with `rustorium_store_writes_total`,
//!   and GET /api/info the node's settings as JSON.

mod common;

use bytes::{Buf, Bytes};
use common::{Node, verify_bytes};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;
use rustorium_proto::v1;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// One HTTP/1.1 exchange on a fresh connection: status, headers, whole body.
async fn http1(addr: SocketAddr, request: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    assert_eq!(parts.version, http::Version::HTTP_11);
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// A gRPC-web frame: flag byte, 4-byte big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a gRPC-web response body into its data frames and its trailers.
fn parse_frames(mut body: Bytes) -> (Vec<Bytes>, Vec<(String, String)>) {
    let mut data = Vec::new();
    let mut trailers = Vec::new();
    while body.has_remaining() {
        assert!(body.len() >= 5, "truncated frame header");
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        assert!(body.len() >= len, "truncated frame");
        let payload = body.split_to(len);
        match flag {
            0x00 => data.push(payload),
            0x80 => {
                let text = std::str::from_utf8(&payload).unwrap();
                for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line.split_once(':').unwrap();
                    trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            other => panic!("unexpected frame flag {other:#04x}"),
        }
    }
    (data, trailers)
}

fn grpc_web_request(addr: SocketAddr, method: &str, message: &impl Message) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("/rustorium.v1.Store/{method}"))
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(http::header::ORIGIN, "http://app.example")
        .body(Full::new(Bytes::from(frame(0, &message.encode_to_vec()))))
        .unwrap()
}

/// Calls a unary method over gRPC-web; returns the one response message (or
/// the grpc-status and message of an error).
async fn grpc_web_call<R: Message + Default>(
    addr: SocketAddr,
    method: &str,
    message: &impl Message,
) -> Result<R, (String, String)> {
    let (status, headers, body) = http1(addr, grpc_web_request(addr, method, message)).await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers[http::header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("application/grpc-web"), "{content_type}");
    assert_eq!(
        headers
            .get(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap()),
        Some("*"),
        "a cross-origin POST gets access-control-allow-origin"
    );
    let (data, mut trailers) = parse_frames(body);
    // A trailers-only error may come in the HTTP headers instead of a frame.
    for name in ["grpc-status", "grpc-message"] {
        if let Some(value) = headers.get(name) {
            trailers.push((name.to_owned(), value.to_str().unwrap().to_owned()));
        }
    }
    let find = |name: &str| {
        trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let grpc_status = find("grpc-status");
    if grpc_status != "0" {
        assert!(!grpc_status.is_empty(), "no grpc-status in {trailers:?}");
        return Err((grpc_status, find("grpc-message")));
    }
    assert_eq!(data.len(), 1, "one data frame for a unary call");
    Ok(R::decode(data[0].clone()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_reflection_health_and_metrics_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--sync-mode", "none", "--max-levels", "40"]);
    let addr = node.addr;

    // gRPC-web Put, then Get, verified with core.
    let put: v1::PutResponse = grpc_web_call(
        addr,
        "Put",
        &v1::PutRequest {
            key: b"browser".to_vec(),
            value: b"hello from http/1.1".to_vec(),
            want_proof: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(put.version, 1);
    verify_bytes(
        put.proof.as_ref(),
        &put.root,
        b"browser",
        Some(b"hello from http/1.1"),
        40,
    )
    .unwrap();
    let get: v1::GetResponse = grpc_web_call(
        addr,
        "Get",
        &v1::GetRequest {
            key: b"browser".to_vec(),
            at_version: None,
        },
    )
    .await
    .unwrap();
    assert!(get.found);
    assert_eq!(get.value, b"hello from http/1.1");
    assert_eq!((get.version, &get.root), (1, &put.root));
    verify_bytes(
        get.proof.as_ref(),
        &get.root,
        b"browser",
        Some(b"hello from http/1.1"),
        40,
    )
    .unwrap();
    assert!(verify_bytes(get.proof.as_ref(), &get.root, b"browser", Some(b"tampered"), 40).is_err());
    let absent: v1::GetResponse = grpc_web_call(
        addr,
        "Get",
        &v1::GetRequest {
            key: b"nobody".to_vec(),
            at_version: None,
        },
    )
    .await
    .unwrap();
    assert!(!absent.found);
    verify_bytes(absent.proof.as_ref(), &absent.root, b"nobody", None, 40).unwrap();

    // An error status over gRPC-web.
    let error = grpc_web_call::<v1::GetProofResponse>(
        addr,
        "GetProof",
        &v1::GetProofRequest {
            shard: String::new(),
            key: b"browser".to_vec(),
            version: 77,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.0, (tonic::Code::OutOfRange as i32).to_string());
    assert!(error.1.contains("77"), "{error:?}");

    // CORS preflight.
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/rustorium.v1.Store/Get")
        .header(http::header::HOST, addr.to_string())
        .header(http::header::ORIGIN, "http://app.example")
        .header(http::header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            http::header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,x-grpc-web,authorization",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, _) = http1(addr, preflight).await;
    assert!(status.is_success(), "preflight answered {status}");
    assert_eq!(headers[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let methods = headers[http::header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers[http::header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["content-type", "x-grpc-web", "authorization"] {
        assert!(allowed.contains(header), "{allowed} should allow {header}");
    }

    // Reflection: list the services, then fetch the file defining the Store.
    let channel = tonic::transport::Endpoint::from_shared(node.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("rustorium.v1.Store".into()),
    ]
    .map(|request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    });
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answers: Vec<ServerReflectionResponse> = Vec::new();
    while let Some(answer) = responses.message().await.unwrap() {
        answers.push(answer);
    }
    assert_eq!(answers.len(), 2);
    let Some(MessageResponse::ListServicesResponse(list)) = &answers[0].message_response else {
        panic!("expected a service list, got {:?}", answers[0].message_response);
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["rustorium.v1.Store", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{names:?} lacks {expected}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) = &answers[1].message_response else {
        panic!("expected a file descriptor, got {:?}", answers[1].message_response);
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .collect();
    let store_file = files
        .iter()
        .find(|f| f.package() == "rustorium.v1" && f.service.iter().any(|s| s.name() == "Store"))
        .unwrap_or_else(|| {
            panic!(
                "no file defines rustorium.v1.Store: {:?}",
                files.iter().map(|f| f.name()).collect::<Vec<_>>()
            )
        });
    assert_eq!(store_file.name(), "rustorium/v1/store.proto");
    let service = store_file.service.iter().find(|s| s.name() == "Store").unwrap();
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    for method in [
        "Put",
        "PutBatch",
        "Get",
        "Delete",
        "GetRoot",
        "GetProof",
        "Scan",
        "WatchRoots",
        "Stats",
    ] {
        assert!(methods.contains(&method), "{methods:?} lacks {method}");
    }

    // Health.
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut health = HealthClient::new(channel);
    for service in ["", "rustorium.v1.Store"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "service {service:?}");
    }

    // Metrics over HTTP/1.1.
    let metrics = Request::builder()
        .method(Method::GET)
        .uri("/metrics")
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, body) = http1(addr, metrics).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = std::str::from_utf8(&body).unwrap();
    let writes = text
        .lines()
        .find(|line| line.starts_with("rustorium_store_writes_total"))
        .unwrap_or_else(|| panic!("no rustorium_store_writes_total in:\n{text}"));
    let count: f64 = writes.split_whitespace().last().unwrap().parse().unwrap();
    assert_eq!(count, 1.0, "one put so far: {writes}");
    assert!(
        text.contains("rustorium_store_disk_bytes "),
        "disk gauge is sampled: {text}"
    );

    // Node info for the dashboard.
    let info = Request::builder()
        .method(Method::GET)
        .uri("/api/info")
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = http1(addr, info).await;
    assert_eq!(status, StatusCode::OK);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["backend"], "redb");
    assert_eq!(info["shards"], 1);
    assert_eq!(info["version"], 1);
    assert_eq!(info["keys"], 1);
    node.stop();
}
