//! The `rustorium` client binary against the real `rustorium-node` binary,
//! and against a fake server that lies:
//! - put / get / del / root print what they did and "verified"; a missing key
//!   is proven absent; `--hex` keys and values; `--trusted-root` must match;
//! - `proof` in iden3 JSON, iden3 compact hex and circom inputs (siblings
//!   padded to --levels), each checked with core; `verify` accepts a saved
//!   proof (exit 0) and refuses a tampered one or a wrong claim (exit 3);
//! - `import` of JSONL and CSV (batched, no progress bar when stderr is not a
//!   terminal) then `export` gives back exactly the input; `export --verify`
//!   recomputes the root;
//! - `watch` prints one line per new version as it commits;
//! - errors are one line on stderr with exit 1 (unreachable server, bad hex,
//!   usage, server statuses, auth);
//! - a server whose proofs or version order do not check makes put, get, del
//!   and watch exit 3.

mod common;

use common::{CLI, Node, field};
use rustorium_core::field::{fr_to_decimal, fr_to_le_bytes};
use rustorium_core::proof::Proof;
use rustorium_core::proof::json::{Iden3ProofJson, SmtVerifierInputsJson};
use rustorium_core::tree::MemoryTree;
use rustorium_proto::v1;
use rustorium_proto::v1::store_server::{Store, StoreServer};
use rustorium_proto::{fr_to_bytes, proof_to_proto};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The value of a `name: value` line of stdout.
    fn line(&self, name: &str) -> String {
        let prefix = format!("{name}: ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name:?} line in {self:?}"))
            .to_owned()
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// A failure with exactly one line on stderr, containing `needle`.
    fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one error line: {self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:?}"
        );
        self
    }
}

fn rustorium(server: &str, args: &[&str]) -> Run {
    let out = Command::new(CLI)
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("RUSTORIUM_SERVER")
        .env_remove("RUSTORIUM_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("rustorium runs");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn put_get_del_root_proof_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--sync-mode", "none"]);
    let url = node.url.as_str();

    let put = rustorium(url, &["put", "greeting", "hello"]).ok();
    assert_eq!(put.line("version"), "1");
    assert!(put.line("verified").contains("membership"));
    for i in 0..8 {
        rustorium(url, &["put", &format!("other-{i}"), &format!("value {i}")]).ok();
    }
    let got = rustorium(url, &["get", "greeting"]).ok();
    assert_eq!(got.line("value"), "hello");
    assert_eq!(got.line("version"), "9");
    assert!(got.line("verified").contains("membership proof checked"));
    let root = got.line("root");

    let missing = rustorium(url, &["get", "nobody"]).ok();
    assert!(missing.stdout.starts_with("not found\n"), "{missing:?}");
    assert!(missing.line("verified").contains("absence proven"));

    // Hex keys and values; a non-UTF-8 value needs --hex to print.
    rustorium(url, &["--hex", "put", "00ff", "c3a9ff"]).ok();
    assert_eq!(rustorium(url, &["get", "--hex", "00ff"]).ok().line("value"), "c3a9ff");
    rustorium(url, &["--hex", "get", "00ff"]).ok();
    rustorium(url, &["--hex", "put", "6869", "7468657265"]).ok();
    assert_eq!(rustorium(url, &["get", "hi"]).ok().line("value"), "there");
    rustorium(url, &["--hex", "put", "0101", "ff"]).ok();
    rustorium(url, &["get", "\u{1}\u{1}"]).fails(1, "not UTF-8");

    // root agrees with get.
    let head = rustorium(url, &["root"]).ok();
    assert_eq!(head.line("version"), "12");
    assert_eq!(head.line("max_levels"), "160");
    assert_eq!(head.line("key_mode"), "bytes");
    let root = {
        let now = rustorium(url, &["get", "greeting"]).ok().line("root");
        assert_ne!(now, root, "later puts moved the root");
        assert_eq!(now, head.line("root"));
        now
    };
    let root_decimal = head.line("root_decimal");

    // --trusted-root: hex or decimal, must match.
    rustorium(url, &["get", "greeting", "--trusted-root", &root]).ok();
    rustorium(url, &["get", "greeting", "--trusted-root", &root_decimal]).ok();
    rustorium(url, &["get", "greeting", "--trusted-root", "12345"]).fails(3, "not the trusted root");

    // proof: iden3 JSON.
    let json = rustorium(url, &["proof", "greeting"]).ok();
    assert!(
        json.stderr.contains("verified membership proof at version 12"),
        "{json:?}"
    );
    let parsed: Iden3ProofJson = serde_json::from_str(&json.stdout).unwrap();
    let proof = Proof::try_from(&parsed).unwrap();
    assert!(proof.depth() > 0, "nine keys give a proof with siblings");
    let root_fr = rustorium_core::field::fr_from_decimal(&root_decimal).unwrap();
    proof
        .verify(&root_fr, &field(b"greeting"), Some(&field(b"hello")), 160)
        .unwrap();
    // iden3 compact hex: the same proof.
    let hex_out = rustorium(url, &["proof", "greeting", "--format", "iden3-hex"]).ok();
    let compact = hex::decode(hex_out.stdout.trim()).unwrap();
    assert_eq!(Proof::from_compact(&compact).unwrap(), proof);
    // circom: siblings padded to --levels.
    let circom = rustorium(url, &["proof", "greeting", "--format", "circom", "--levels", "20"]).ok();
    let inputs: SmtVerifierInputsJson = serde_json::from_str(&circom.stdout).unwrap();
    assert_eq!(inputs.siblings.len(), 20);
    assert_eq!(&inputs.siblings[..proof.depth()], &parsed.siblings[..]);
    assert!(inputs.siblings[proof.depth()..].iter().all(|s| s == "0"));
    assert_eq!(inputs.root, root_decimal);
    assert_eq!(inputs.key, fr_to_decimal(&field(b"greeting")));
    assert_eq!(inputs.value, fr_to_decimal(&field(b"hello")));
    assert_eq!((inputs.enabled.as_str(), inputs.fnc.as_str()), ("1", "0"));
    let absent = rustorium(url, &["proof", "nobody", "--format", "circom"]).ok();
    let absent: SmtVerifierInputsJson = serde_json::from_str(&absent.stdout).unwrap();
    assert_eq!(absent.siblings.len(), 160, "default --levels is the store's max_levels");
    assert_eq!((absent.fnc.as_str(), absent.value.as_str()), ("1", "0"));
    rustorium(url, &["proof", "greeting", "--format", "circom", "--levels", "1"]).fails(1, "at least");
    rustorium(url, &["proof", "greeting", "--levels", "20"]).fails(1, "--levels");

    // verify: saved proofs, tampered proofs, wrong claims.
    let json_file = write(dir.path(), "proof.json", &json.stdout);
    let hex_file = write(dir.path(), "proof.hex", &hex_out.stdout);
    for file in [&json_file, &hex_file] {
        let ok = rustorium(
            url,
            &[
                "verify", "--root", &root, "--key", "greeting", "--value", "hello", "--proof", file,
            ],
        )
        .ok();
        assert!(ok.stdout.starts_with("verified: the key holds the value"), "{ok:?}");
        rustorium(
            url,
            &[
                "verify",
                "--root",
                &root_decimal,
                "--key",
                "greeting",
                "--value",
                "hello",
                "--proof",
                file,
            ],
        )
        .ok();
        rustorium(
            url,
            &[
                "verify", "--root", &root, "--key", "greeting", "--value", "hullo", "--proof", file,
            ],
        )
        .fails(3, "verification failed");
        rustorium(
            url,
            &[
                "verify", "--root", &root, "--key", "greeting", "--absent", "--proof", file,
            ],
        )
        .fails(3, "verification failed");
        rustorium(
            url,
            &[
                "verify", "--root", "7", "--key", "greeting", "--value", "hello", "--proof", file,
            ],
        )
        .fails(3, "trusted root");
    }
    let mut tampered = parsed.clone();
    let last = tampered.siblings.len() - 1;
    tampered.siblings[last] = fr_to_decimal(
        &(rustorium_core::field::fr_from_decimal(&tampered.siblings[last]).unwrap() + rustorium_core::Fr::from(1u64)),
    );
    let tampered_json = write(dir.path(), "tampered.json", &serde_json::to_string(&tampered).unwrap());
    rustorium(
        url,
        &[
            "verify",
            "--root",
            &root,
            "--key",
            "greeting",
            "--value",
            "hello",
            "--proof",
            &tampered_json,
        ],
    )
    .fails(3, "does not lead to the trusted root");
    let mut flipped = compact.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x01;
    let tampered_hex = write(dir.path(), "tampered.hex", &hex::encode(&flipped));
    rustorium(
        url,
        &[
            "verify",
            "--root",
            &root,
            "--key",
            "greeting",
            "--value",
            "hello",
            "--proof",
            &tampered_hex,
        ],
    )
    .fails(3, "verification failed");
    let garbage = write(dir.path(), "garbage.txt", "not a proof at all");
    rustorium(
        url,
        &[
            "verify", "--root", &root, "--key", "greeting", "--value", "hello", "--proof", &garbage,
        ],
    )
    .fails(3, "proof file");
    let absent_file = write(
        dir.path(),
        "absent.json",
        &rustorium(url, &["proof", "nobody"]).ok().stdout,
    );
    rustorium(
        url,
        &[
            "verify",
            "--root",
            &root,
            "--key",
            "nobody",
            "--absent",
            "--proof",
            &absent_file,
        ],
    )
    .ok();

    // del proves absence; deleting again says it did not exist.
    let del = rustorium(url, &["del", "greeting"]).ok();
    assert_eq!(del.line("existed"), "true");
    assert!(del.line("verified").contains("absence"));
    assert_eq!(rustorium(url, &["del", "greeting"]).ok().line("existed"), "false");
    assert!(
        rustorium(url, &["get", "greeting"])
            .ok()
            .stdout
            .starts_with("not found")
    );
    // An old version still reads, and proves against its old root.
    let old = rustorium(url, &["get", "greeting", "--at-version", "12", "--trusted-root", &root]).ok();
    assert_eq!(old.line("value"), "hello");
    node.stop();
}

#[test]
fn import_then_export_gives_back_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--sync-mode", "none"]);
    let url = node.url.as_str();
    // Sorted by key bytes, as export writes them.
    let jsonl = concat!(
        "{\"key\":\"j/a\",\"value\":\"1\"}\n",
        "{\"key\":\"j/b\",\"value\":\"comma, \\\"quoted\\\"\"}\n",
        "{\"key\":\"j/c\",\"value\":\"\"}\n",
        "{\"key\":\"j/d\",\"value\":\"line\\nbreak\"}\n",
        "{\"key\":\"j/é\",\"value\":\"ünïcode\"}\n",
    );
    let csv = "key,value\nk/1,one\nk/2,\"two, with comma\"\nk/3,\"say \"\"hi\"\"\"\n";
    let jsonl_file = write(dir.path(), "in.jsonl", jsonl);
    let csv_file = write(dir.path(), "in.csv", csv);

    let imported = rustorium(url, &["import", &jsonl_file, "--batch", "2"]).ok();
    assert!(
        imported.stdout.starts_with("imported 5 entries in 3 batches"),
        "{imported:?}"
    );
    assert!(imported.line("verified").contains("every entry"));
    assert_eq!(imported.stderr, "", "no progress bar when stderr is not a terminal");
    let imported = rustorium(url, &["import", &csv_file, "--format", "csv"]).ok();
    assert!(
        imported.stdout.starts_with("imported 3 entries in 1 batch\n"),
        "{imported:?}"
    );

    let exported = rustorium(url, &["export", "--start", "j/", "--end", "j0"]).ok();
    assert_eq!(exported.stdout, jsonl);
    let exported = rustorium(url, &["export", "--format", "csv", "--start", "k/", "--page", "2"]).ok();
    assert_eq!(exported.stdout, csv);
    let whole = rustorium(url, &["export", "--verify", "--page", "3"]).ok();
    assert_eq!(whole.stdout.lines().count(), 8);
    assert!(
        whole
            .stderr
            .contains("verified: the 8 exported entries are the whole store"),
        "{whole:?}"
    );

    // A bad record stops the import at its line, after the batches before it.
    let bad = write(
        dir.path(),
        "bad.jsonl",
        "{\"key\":\"m/1\",\"value\":\"1\"}\n{\"key\":\"m/2\"}\n",
    );
    rustorium(url, &["import", &bad]).fails(1, "bad.jsonl:2");
    let bad_csv = write(dir.path(), "bad.csv", "k,v\na,b\n");
    rustorium(url, &["import", &bad_csv]).fails(1, "header must be `key,value`");
    rustorium(url, &["import", &write(dir.path(), "data.txt", "")]).fails(1, "--format");
    node.stop();
}

#[test]
fn watch_prints_each_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--sync-mode", "none"]);
    let url = node.url.as_str();
    rustorium(url, &["put", "a", "1"]).ok();
    let mut child = Command::new(CLI)
        .args(["--server", url, "watch"])
        .env_remove("RUSTORIUM_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a watch line");
    let first = next();
    assert!(first.starts_with("version=1 root="), "{first}");
    for i in 2..=4 {
        let put = rustorium(url, &["put", &format!("k{i}"), "v"]).ok();
        let line = next();
        assert_eq!(
            line.split(' ').take(3).collect::<Vec<_>>(),
            [
                format!("version={i}"),
                format!("root={}", put.line("root")),
                "ops=1".to_owned()
            ],
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();

    // --from replays history; --count stops.
    let replay = rustorium(url, &["watch", "--from", "0", "--count", "3"]).ok();
    let versions: Vec<&str> = replay.stdout.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(versions, ["version=0", "version=1", "version=2"]);
    node.stop();
}

#[test]
fn errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--sync-mode", "none", "--auth-token", "s3cret"]);
    let url = node.url.as_str();
    rustorium("http://127.0.0.1:1", &["get", "k"]).fails(1, "cannot connect to http://127.0.0.1:1");
    rustorium("http://127.0.0.1:1", &["--timeout", "2s", "root"]).fails(1, "cannot connect");
    rustorium("localhost:7070", &["root"]).fails(1, "http:// or https://");
    rustorium(url, &["--hex", "get", "zz"]).fails(1, "not hex");
    rustorium("http://127.0.0.1:1", &["--hex", "put", "zz", "00"]).fails(1, "not hex");
    rustorium(url, &["get"]).fails(1, "<KEY>");
    rustorium(url, &["put", "k", "v", "extra"]).fails(1, "unexpected argument");
    rustorium(url, &["--timeout", "soon", "root"]).fails(1, "duration");
    rustorium(url, &["get", "k", "--at-version", "99"]).fails(1, "OUT_OF_RANGE");
    rustorium(
        url,
        &[
            "verify",
            "--root",
            "xyz",
            "--key",
            "k",
            "--absent",
            "--proof",
            "/nonexistent",
        ],
    )
    .fails(1, "--root");
    rustorium(
        url,
        &[
            "verify",
            "--root",
            "1",
            "--key",
            "k",
            "--absent",
            "--proof",
            "/nonexistent",
        ],
    )
    .fails(1, "/nonexistent");
    rustorium(url, &["put", "k", "v"]).fails(1, "UNAUTHENTICATED");
    rustorium(url, &["--token", "nope", "put", "k", "v"]).fails(1, "PERMISSION_DENIED");
    rustorium(url, &["--token", "s3cret", "put", "k", "v"]).ok();
    let via_env = Command::new(CLI)
        .args(["--server", url, "del", "k"])
        .env("RUSTORIUM_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(via_env.status.success(), "RUSTORIUM_TOKEN is read");
    // --help works on every command.
    for command in [
        "put", "get", "del", "root", "proof", "verify", "watch", "import", "export", "smt",
    ] {
        let help = rustorium(url, &[command, "--help"]).ok();
        assert!(help.stdout.contains("Usage: rustorium"), "{command}: {help:?}");
    }
    node.stop();
}

/// A server that answers with proofs that do not check, except for the key
/// "honest", and streams versions out of order.
#[derive(Debug)]
struct Liar {
    tree: MemoryTree,
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

impl Liar {
    fn new() -> Self {
        let mut tree = MemoryTree::new(160).unwrap();
        for (k, v) in [("honest", "yes"), ("k", "real"), ("z", "zz")] {
            tree.insert(field(k.as_bytes()), field(v.as_bytes())).unwrap();
        }
        Self { tree }
    }

    fn proof(&self, key: &[u8]) -> v1::Proof {
        proof_to_proto(&self.tree.prove(&field(key)).unwrap().proof, 160)
    }

    fn root(&self) -> Vec<u8> {
        fr_to_bytes(&self.tree.root())
    }
}

#[tonic::async_trait]
impl Store for Liar {
    async fn put(&self, request: Request<v1::PutRequest>) -> Result<Response<v1::PutResponse>, Status> {
        // Claims the write, but proves the old value.
        let key = request.into_inner().key;
        Ok(Response::new(v1::PutResponse {
            root: self.root(),
            version: 2,
            timestamp_unix_nanos: 1,
            proof: Some(self.proof(&key)),
        }))
    }

    async fn put_batch(&self, _: Request<v1::PutBatchRequest>) -> Result<Response<v1::PutBatchResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }

    async fn get(&self, request: Request<v1::GetRequest>) -> Result<Response<v1::GetResponse>, Status> {
        let key = request.into_inner().key;
        let (found, value, proof) = match key.as_slice() {
            b"honest" => (true, b"yes".to_vec(), Some(self.proof(&key))),
            // A value the tree does not hold.
            b"k" => (true, b"forged".to_vec(), Some(self.proof(&key))),
            // Claims absence with a membership proof.
            b"z" => (false, Vec::new(), Some(self.proof(&key))),
            // No proof at all.
            _ => (true, b"trust me".to_vec(), None),
        };
        Ok(Response::new(v1::GetResponse {
            found,
            value,
            proof,
            root: self.root(),
            version: 2,
            timestamp_unix_nanos: 1,
        }))
    }

    async fn delete(&self, request: Request<v1::DeleteRequest>) -> Result<Response<v1::DeleteResponse>, Status> {
        // Claims the delete, but proves the key still present.
        let key = request.into_inner().key;
        Ok(Response::new(v1::DeleteResponse {
            root: self.root(),
            version: 3,
            proof: Some(self.proof(&key)),
            timestamp_unix_nanos: 1,
            existed: true,
        }))
    }

    async fn get_root(&self, _: Request<v1::GetRootRequest>) -> Result<Response<v1::GetRootResponse>, Status> {
        Ok(Response::new(v1::GetRootResponse {
            root: self.root(),
            version: 2,
            timestamp_unix_nanos: 1,
            max_levels: 160,
            key_mode: v1::KeyMode::Bytes as i32,
        }))
    }

    async fn get_proof(&self, _: Request<v1::GetProofRequest>) -> Result<Response<v1::GetProofResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }

    type ScanStream = Stream<v1::ScanResponse>;

    async fn scan(&self, _: Request<v1::ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        Err(Status::unimplemented("liar"))
    }

    type WatchRootsStream = Stream<v1::RootEvent>;

    async fn watch_roots(&self, _: Request<v1::WatchRootsRequest>) -> Result<Response<Self::WatchRootsStream>, Status> {
        let events = [5u64, 6, 4].map(|version| {
            Ok(v1::RootEvent {
                version,
                root: fr_to_le_bytes(&rustorium_core::Fr::from(version)).to_vec(),
                timestamp_unix_nanos: 1,
                op_count: 1,
            })
        });
        let stream: Self::WatchRootsStream = Box::pin(tokio_stream::iter(events).chain(tokio_stream::pending()));
        Ok(Response::new(stream))
    }

    async fn stats(&self, _: Request<v1::StatsRequest>) -> Result<Response<v1::StatsResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }

    type ReplicateStream = Stream<v1::ReplicatedBatch>;

    async fn replicate(&self, _: Request<v1::ReplicateRequest>) -> Result<Response<Self::ReplicateStream>, Status> {
        Err(Status::unimplemented("liar"))
    }

    async fn get_pages(&self, _: Request<v1::GetPagesRequest>) -> Result<Response<v1::GetPagesResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }

    async fn get_entries(&self, _: Request<v1::GetEntriesRequest>) -> Result<Response<v1::GetEntriesResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }

    async fn ack_replica(&self, _: Request<v1::AckReplicaRequest>) -> Result<Response<v1::AckReplicaResponse>, Status> {
        Err(Status::unimplemented("liar"))
    }
}

#[test]
fn a_lying_server_makes_the_client_exit_3() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(StoreServer::new(Liar::new()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    // The fake answers honestly for one key, so the failures below are the lies.
    let honest = rustorium(&url, &["get", "honest"]).ok();
    assert_eq!(honest.line("value"), "yes");
    rustorium(&url, &["get", "k"]).fails(3, "verification failed");
    rustorium(&url, &["get", "z"]).fails(3, "verification failed");
    rustorium(&url, &["get", "other"]).fails(3, "no proof");
    rustorium(&url, &["put", "k", "new"]).fails(3, "verification failed");
    rustorium(&url, &["del", "honest"]).fails(3, "verification failed");
    let watch = rustorium(&url, &["watch"]).fails(3, "went backwards");
    assert_eq!(
        watch.stdout.lines().count(),
        2,
        "versions 5 and 6 printed before the lie: {watch:?}"
    );
    rustorium(&url, &["watch", "--from", "4"]).fails(3, "asked to start at version 4");
}
