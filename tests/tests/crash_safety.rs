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
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cycles() -> u64 {
    std::env::var("RUSTORIUM_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// What one run of the writer acknowledged, each ack with when it was read.
struct Run {
    acks: Vec<(String, u64, Instant)>,
    killed_at: Instant,
}

/// Runs `crash_writer` on `data` from `first_n` for `run_for`, then SIGKILLs it.
fn run_killed(data: &Path, first_n: u64, extra: &[&str], run_for: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(data)
        .arg(first_n.to_string())
        .args(extra)
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
                let _ = tx.send((what.to_owned(), n, Instant::now()));
            }
        }
    });
    let started = Instant::now();
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed_at = Instant::now();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    Run {
        acks: rx.try_iter().collect(),
        killed_at,
    }
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
        let acks = run_killed(&data, next_n, &[], run_for).acks;
        for (what, n, _) in &acks {
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
        next_n = acks.iter().map(|(_, n, _)| *n).max().unwrap_or(next_n) + 1000;

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

/// SyncMode Async: a write may be lost in a crash only while it is younger
/// than the flush interval plus the commit that carries the flush. Writes
/// acknowledged well before the kill must be there, although the writer never
/// stops for a separate flush while batches keep coming.
#[test]
fn async_writes_older_than_the_flush_window_survive_sigkill() {
    /// Far above the 100 ms interval plus one small commit, so that a loaded
    /// machine does not make the check flaky.
    const MARGIN: Duration = Duration::from_millis(1500);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut next_n = 1u64;
    let mut checked = 0;
    for cycle in 0..3u64 {
        let run = run_killed(
            &data,
            next_n,
            &["async", "100"],
            Duration::from_millis(2500 + 300 * cycle),
        );
        let settled: Vec<u64> = run
            .acks
            .iter()
            .filter(|(what, _, at)| what == "put" && *at + MARGIN < run.killed_at)
            .map(|(_, n, _)| *n)
            .collect();
        next_n = run.acks.iter().map(|(_, n, _)| *n).max().unwrap_or(next_n) + 1000;
        let config = StorageConfig::at(&data);
        let report = verify_redb(&config).unwrap();
        assert!(report.ok(), "cycle {cycle}: {report:?}");
        runtime.block_on(async {
            let store = Store::open(config).unwrap();
            for n in &settled {
                assert!(
                    store.read(format!("k{n}").as_bytes()).await.unwrap().is_some(),
                    "cycle {cycle}: k{n}, acknowledged over {MARGIN:?} before the kill, is missing"
                );
            }
            store.shutdown();
        });
        checked += settled.len();
    }
    assert!(checked > 0, "some writes were acknowledged early enough to check");
}
