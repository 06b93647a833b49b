//! A writer with SyncMode Full is killed with SIGKILL at random moments, again
//! and again on the same store. After each reopen every acknowledged write is
//! there (or, for deletes, gone), every acknowledged batch is there whole, the
//! stored root equals a full recomputation from the stored values, and the
//! root log is intact. Batches queue behind each other, so the writer's
//! commits pipeline (one is written while the next is applied).

use rustorium_node::store::verify_db::verify_redb;
use rustorium_node::store::{StorageConfig, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cycles() -> u64 {
    std::env::var("RUSTORIUM_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let mut puts: BTreeMap<u64, bool> = BTreeMap::new(); // n -> overwrite acknowledged
    let mut deletes: Vec<u64> = Vec::new();
    let mut batches: Vec<u64> = Vec::new();
    let mut next_n = 1u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for cycle in 0..cycles() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(150 + seed % 400);
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(&data)
            .arg(next_n.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((what, n)) = line.split_once(' ')
                    && let Ok(n) = n.parse::<u64>()
                {
                    let _ = tx.send((what.to_owned(), n));
                }
            }
        });
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acks: Vec<(String, u64)> = rx.try_iter().collect();
        for (what, n) in &acks {
            match what.as_str() {
                "put" => {
                    puts.entry(*n).or_insert(false);
                }
                "over" => {
                    puts.insert(*n, true);
                }
                "del" => deletes.push(*n),
                "batch" => batches.push(*n),
                other => panic!("unknown ack {other}"),
            }
        }
        // Ops in flight were never acknowledged; the next run starts past them.
        next_n = acks.iter().map(|(_, n)| *n).max().unwrap_or(next_n) + 1000;

        let config = StorageConfig::at(&data);
        let report = verify_redb(&config).unwrap();
        assert!(report.ok(), "cycle {cycle}: {report:?}");
        assert_eq!(
            report.root_versions,
            report.version + 1,
            "cycle {cycle}: root log has every version"
        );
        runtime.block_on(async {
            let store = Store::open(config).unwrap();
            for (n, overwritten) in &puts {
                let read = store.read(format!("k{n}").as_bytes()).await.unwrap();
                let value = read
                    .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged k{n} is missing"))
                    .value;
                let (first, second) = (format!("v{n}").into_bytes(), format!("w{n}").into_bytes());
                // An unacknowledged overwrite may or may not have landed.
                assert!(
                    value == second || (!overwritten && value == first),
                    "cycle {cycle}: k{n} = {:?}",
                    String::from_utf8_lossy(&value)
                );
            }
            for n in &batches {
                // Batches are atomic: their first and last keys stand for all.
                for i in [0, 15] {
                    let read = store.read(format!("b{n}-{i}").as_bytes()).await.unwrap();
                    assert_eq!(
                        read.map(|r| r.value),
                        Some(format!("v{n}").into_bytes()),
                        "cycle {cycle}: acknowledged batch {n} lost b{n}-{i}"
                    );
                }
            }
            for n in &deletes {
                assert!(
                    store.read(format!("d{n}").as_bytes()).await.unwrap().is_none(),
                    "cycle {cycle}: deleted d{n} is back"
                );
            }
            store.shutdown();
        });
        eprintln!(
            "cycle {cycle}: {} acknowledged, version {}, {} keys",
            acks.len(),
            report.version,
            report.keys
        );
    }
    assert!(!batches.is_empty(), "some batches were acknowledged");
}
