//! SIGTERM to the real `rustorium-node` binary is a clean stop:
//! - with writers in flight (sync mode full), the process exits 0, and after
//!   a restart on the same data directory every acknowledged put is there,
//!   with a proof that verifies;
//! - an open WatchRoots stream does not hold the shutdown open: the process
//!   still exits 0, and the watcher sees its stream end.

mod common;

use common::{Node, scan_all, verify_bytes};
use rustorium_proto::v1;
use rustorium_proto::v1::store_client::StoreClient;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_writes_in_flight_keeps_every_acknowledged_put() {
    const WRITERS: usize = 8;
    const MAX_PUTS: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--sync-mode", "full"]);
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let url = node.url.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut client = StoreClient::connect(url).await.unwrap();
            let mut failed = false;
            for i in 0..MAX_PUTS {
                let (key, value) = (format!("t{writer}-{i:04}"), format!("v{writer}-{i}"));
                let request = v1::PutRequest {
                    key: key.clone().into_bytes(),
                    value: value.clone().into_bytes(),
                    want_proof: false,
                };
                match tokio::time::timeout(Duration::from_secs(20), client.put(request)).await {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().insert(key, value);
                    }
                    // Refused or cut off by the shutdown: not acknowledged.
                    Ok(Err(_)) | Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            failed
        }));
    }
    let started = Instant::now();
    while acked.lock().unwrap().len() < 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "writers made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.terminate();
    let status = tokio::task::spawn_blocking(move || node.wait(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(status.success(), "rustorium-node exited with {status}");
    let mut cut_off = 0;
    for writer in writers {
        cut_off += usize::from(writer.await.unwrap());
    }
    assert!(cut_off > 0, "the shutdown came while writes were in flight");
    let acked = acked.lock().unwrap().clone();

    let node = Node::start(dir.path(), &["--sync-mode", "full"]);
    let mut client = node.client().await;
    let stored: BTreeMap<String, String> = scan_all(&mut client)
        .await
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect();
    for (key, value) in &acked {
        assert_eq!(stored.get(key), Some(value), "acknowledged put {key} is lost");
    }
    // Puts in flight at the signal may have landed without an answer; nothing else.
    assert!(stored.len() >= acked.len());
    assert!(stored.len() <= acked.len() + WRITERS);
    let head = client
        .get_root(v1::GetRootRequest::default())
        .await
        .unwrap()
        .into_inner();
    for (key, value) in acked.iter().step_by(25) {
        let read = client
            .get(v1::GetRequest {
                key: key.clone().into_bytes(),
                at_version: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(read.found);
        assert_eq!(read.root, head.root);
        verify_bytes(
            read.proof.as_ref(),
            &read.root,
            key.as_bytes(),
            Some(value.as_bytes()),
            head.max_levels as u16,
        )
        .unwrap();
    }
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_watch_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--sync-mode", "none"]);
    let mut client = node.client().await;
    client
        .put(v1::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            want_proof: false,
        })
        .await
        .unwrap();
    let mut watch = client
        .watch_roots(v1::WatchRootsRequest { from_version: None })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.version, 1);
    node.terminate();
    let status = tokio::task::spawn_blocking(move || node.wait(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(status.success(), "rustorium-node exited with {status}");
    // The stream ended: with the shutdown status, or cut with the connection.
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the watch stream ends");
    match end {
        Ok(None) => {}
        Ok(Some(event)) => panic!("unexpected event {event:?}"),
        Err(status) => assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
            ),
            "{status:?}"
        ),
    }
}
