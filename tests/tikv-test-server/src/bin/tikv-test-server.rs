//! Runs the in-process PD + TiKV test server on its own, for tests outside
//! Rust (the dashboard's cluster view): prints `pd 127.0.0.1:PORT` and
//! serves until stdin closes or the process is killed.

use rustorium_tikv_test_server::{ClusterOptions, TestCluster};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    println!("pd {}", cluster.pd_endpoint());
    // Serve until whoever started us closes our stdin (or kills us).
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    drop(cluster);
    Ok(())
}
