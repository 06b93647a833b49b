//! `rustorium smt` builds the tree offline and prints root and proofs that
//! match the js-merkletree vectors; every bad input is one line on stderr and a
//! non-zero exit.

use serde_json::Value;
use std::process::Command;

fn vectors() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/iden3_vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn smt(max_levels: &str, entries: &str, prove: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entries.json");
    std::fs::write(&file, entries).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustorium"));
    cmd.args(["smt", "--max-levels", max_levels, "--entries"]).arg(&file);
    for key in prove {
        cmd.args(["--prove", key]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn reproduces_the_js_merkletree_vectors() {
    let vectors = vectors();
    let tree = &vectors["trees"][0];
    let entries: Vec<Value> = tree["insertion_order_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!({"key": e["key"], "value": e["value"]}))
        .collect();
    let keys: Vec<&str> = tree["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    let (ok, stdout, stderr) = smt("40", &Value::from(entries).to_string(), &keys);
    assert!(ok, "{stderr}");
    let output: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(output["root"], tree["root_dec"]);
    let proofs = output["proofs"].as_array().unwrap();
    assert_eq!(proofs.len(), keys.len());
    for (ours, theirs) in proofs.iter().zip(tree["proofs"].as_array().unwrap()) {
        assert_eq!(ours["key"], theirs["key"]);
        assert_eq!(ours["existence"], theirs["existence"]);
        assert_eq!(ours["siblings"], theirs["all_siblings_dec"]);
        assert_eq!(ours["bytes_hex"], theirs["proof_bytes_hex"]);
        if theirs["existence"].as_bool().unwrap() {
            assert_eq!(ours["value"], theirs["value_used_in_verify"]);
            assert!(ours["node_aux"].is_null());
        } else {
            assert!(ours["value"].is_null());
            match &theirs["node_aux"] {
                Value::Null => assert!(ours["node_aux"].is_null()),
                aux => assert_eq!(
                    (&ours["node_aux"]["key"], &ours["node_aux"]["value"]),
                    (&aux["key"], &aux["value"])
                ),
            }
        }
        let circom = &ours["circom"];
        assert_eq!(circom["siblings"].as_array().unwrap().len(), 40);
        assert_eq!(circom["root"], tree["root_dec"]);
    }
}

#[test]
fn bad_input_is_one_clear_error() {
    let r = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
    let cases: Vec<(String, &[&str], &str)> = vec![
        ("not json".into(), &[], "not a JSON array"),
        (r#"{"key": "1", "value": "2"}"#.into(), &[], "not a JSON array"),
        (format!(r#"[{{"key": "1", "value": "{r}"}}]"#), &[], "entry 0: value"),
        (r#"[{"key": "0x1", "value": "2"}]"#.into(), &[], "entry 0: key"),
        (
            r#"[{"key": "1", "value": "2"}, {"key": "1", "value": "3"}]"#.into(),
            &[],
            "appears twice",
        ),
        (
            r#"[{"key": "1", "value": "2", "extra": 1}]"#.into(),
            &[],
            "unknown field",
        ),
        (
            r#"[{"key": "1", "value": "2"}, {"key": "17", "value": "3"}]"#.into(),
            &[],
            "max_levels",
        ),
        (r#"[{"key": "1", "value": "2"}]"#.into(), &["12x"], "--prove \"12x\""),
    ];
    for (entries, prove, expected) in cases {
        let (ok, stdout, stderr) = smt("4", &entries, prove);
        assert!(!ok, "{entries} should fail");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains(expected),
            "{entries}: stderr {stderr:?} lacks {expected:?}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    let (ok, _, stderr) = smt("0", "[]", &[]);
    assert!(!ok && stderr.contains("max-levels"), "{stderr}");
}

#[test]
fn empty_tree_proves_absence() {
    let (ok, stdout, stderr) = smt("10", "[]", &["5"]);
    assert!(ok, "{stderr}");
    let output: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(output["root"], "0");
    let proof = &output["proofs"][0];
    assert_eq!(proof["existence"], false);
    assert_eq!(proof["circom"]["isOld0"], "1");
    assert_eq!(proof["bytes_hex"], format!("01{}", "00".repeat(31)));
}
