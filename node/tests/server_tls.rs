//! With `--tls-cert` and `--tls-key` the node speaks gRPC over TLS (rustls):
//! a client that trusts the certificate gets verified answers, a plaintext
//! client gets nothing, and a missing key file is a clear startup error.

mod common;

use common::Node;
use rustorium_proto::v1::store_client::StoreClient;
use rustorium_proto::v1::{GetRequest, GetRootRequest, PutRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let node = Node::start(
        dir.path(),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );

    let channel = Channel::from_shared(format!("https://localhost:{}", node.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("a client trusting the certificate connects");
    let mut client = StoreClient::new(channel);
    let put = client
        .put(PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            want_proof: true,
        })
        .await
        .unwrap()
        .into_inner();
    let got = client
        .get(GetRequest {
            key: b"k".to_vec(),
            at_version: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.found);
    assert_eq!(got.root, put.root);
    let proof = rustorium_core::proof::Proof::try_from(got.proof.as_ref().unwrap()).unwrap();
    let root = rustorium_proto::fr_from_bytes(&got.root).unwrap();
    proof
        .verify(&root, &common::field(b"k"), Some(&common::field(b"v")), 160)
        .unwrap();

    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", node.addr.port()))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => StoreClient::new(channel)
            .get_root(GetRootRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "plaintext gRPC must not be served on a TLS port");
    node.stop();

    let missing = std::process::Command::new(common::NODE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("db2"))
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/key.pem"), "{stderr}");
}
