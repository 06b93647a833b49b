//! Shared by the end-to-end tests: runs the real `rustorium-node` binary on an
//! ephemeral port with a data directory the test owns, finds the port from
//! the first stdout line, and stops it with SIGTERM (or SIGKILL on drop).
#![allow(dead_code)]

use rustorium_core::Fr;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::proof::{Proof, VerifyError};
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_proto::fr_from_bytes;
use rustorium_proto::v1;
use rustorium_proto::v1::store_client::StoreClient;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const NODE: &str = env!("CARGO_BIN_EXE_rustorium-node");
pub const CLI: &str = env!("CARGO_BIN_EXE_rustorium");

/// A running `rustorium-node serve`.
#[derive(Debug)]
pub struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub url: String,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Node {
    /// Starts a node storing under `dir/db` (logs to `dir/node.log`), with
    /// extra `serve` flags.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let data = dir.join("db");
        let log = dir.join("node.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("node log file");
        let mut child = Command::new(NODE)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(args)
            .env_remove("RUSTORIUM_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("rustorium-node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the node never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rustorium-node printed no first line ({other:?}); log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let addr: SocketAddr = first
            .strip_prefix("rustorium-node listening on ")
            .and_then(|rest| rest.strip_prefix("http://").or_else(|| rest.strip_prefix("https://")))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Self {
            child: Some(child),
            addr,
            url: format!("http://{addr}"),
            data,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rustorium-node did not exit within {limit:?}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then requires a clean exit (status 0) within 20 s.
    pub fn stop(mut self) {
        self.terminate();
        let status = self.wait(Duration::from_secs(20));
        assert!(
            status.success(),
            "rustorium-node exited with {status}; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub async fn client(&self) -> StoreClient<Channel> {
        StoreClient::connect(self.url.clone())
            .await
            .expect("connects to the node")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Bytes-mode tree element of a key or value.
pub fn field(bytes: &[u8]) -> Fr {
    bytes_to_field(bytes)
}

/// Converts a wire proof and verifies it with core against a wire root, in a
/// bytes-mode store.
pub fn verify_bytes(
    proof: Option<&v1::Proof>,
    root: &[u8],
    key: &[u8],
    value: Option<&[u8]>,
    max_levels: u16,
) -> Result<(), VerifyError> {
    let proof = Proof::try_from(proof.expect("a proof")).expect("the proof converts");
    let root = fr_from_bytes(root).expect("the root is a field element");
    proof.verify(&root, &field(key), value.map(field).as_ref(), max_levels)
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    request
}

/// A Put without a proof, and how the call went.
pub async fn try_put(
    client: &mut StoreClient<Channel>,
    key: &[u8],
    value: &[u8],
) -> Result<v1::PutResponse, tonic::Status> {
    let request = v1::PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        want_proof: false,
    };
    Ok(client.put(request).await?.into_inner())
}

/// A Get at the current version, which must succeed.
pub async fn get_latest(client: &mut StoreClient<Channel>, key: &[u8]) -> v1::GetResponse {
    let request = v1::GetRequest {
        key: key.to_vec(),
        at_version: None,
    };
    client.get(request).await.expect("get").into_inner()
}

/// Every entry, via Scan.
pub async fn scan_all(client: &mut StoreClient<Channel>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut stream = client
        .scan(v1::ScanRequest::default())
        .await
        .expect("scan")
        .into_inner();
    let mut rows = Vec::new();
    while let Some(row) = stream.message().await.expect("scan row") {
        rows.push((row.key, row.value));
    }
    rows
}

/// The body of an HTTP GET on the node.
pub async fn http_get(node: &Node, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The root of the unsharded bytes-mode tree (160 levels) holding exactly
/// `entries`: what a sharded store or cluster must report.
pub fn unsharded_root(entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> rustorium_core::Fr {
    let mut tree = MemoryTree::new(160).unwrap();
    let ops: Vec<Op> = entries
        .iter()
        .map(|(k, v)| Op {
            key: bytes_to_field(k),
            value: Some(bytes_to_field(v)),
        })
        .collect();
    if !ops.is_empty() {
        tree.apply(&ops).unwrap();
    }
    tree.root()
}
