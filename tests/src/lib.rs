//! Helpers shared by the end-to-end tests: locating and running the JS oracle
//! scripts under `tests/js` (npm packages @iden3/js-merkletree, circomlibjs,
//! circom2), and decoding their JSON.

use rustorium_core::Fr;
use rustorium_core::field::fr_from_decimal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/js`, where the oracle scripts and their node_modules live.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Runs `node <script> <args>` in `tests/js`; panics with its stderr on failure.
pub fn run_node(script: &str, args: &[&str]) {
    let dir = js_dir();
    assert!(
        dir.join("node_modules").exists(),
        "the JS oracles are not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node is on PATH");
    assert!(
        output.status.success(),
        "node {script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("js/.build/rust")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("oracle output exists")).expect("oracle output is JSON")
}

pub fn fr(v: &Value) -> Fr {
    fr_from_decimal(v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}")))
        .expect("canonical decimal")
}

pub fn frs(v: &Value) -> Vec<Fr> {
    v.as_array().expect("array").iter().map(fr).collect()
}
