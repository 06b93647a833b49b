//! Rustorium and the JS reference implementations agree on random trees:
//! @iden3/js-merkletree and circomlibjs build trees from random ops (random
//! keys, keys sharing long low-bit prefixes, values 0 and r-1, deletes); we
//! reproduce every root after every op, every proof's siblings, JSON, compact
//! bytes and circom inputs, and Poseidon for 1..16 inputs. Then the JS side
//! verifies our proofs (and rejects tampered ones), and circomlib's
//! SMTVerifier accepts our circom inputs.

use rustorium_core::Fr;
use rustorium_core::field::fr_to_decimal;
use rustorium_core::poseidon::poseidon;
use rustorium_core::proof::json::{Iden3ProofJson, SmtVerifierInputsJson};
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_tests::{fr, frs, read_json, run_node, scratch};
use serde_json::{Value, json};

fn seeds() -> Vec<String> {
    std::env::var("RUSTORIUM_ORACLE_SEEDS")
        .unwrap_or_else(|_| "1".into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

fn ops_of(tree: &Value) -> Vec<Op> {
    tree["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| match op["op"].as_str().unwrap() {
            "put" => Op::put(fr(&op["key"]), fr(&op["value"])),
            "delete" => Op::delete(fr(&op["key"])),
            other => panic!("unknown op {other}"),
        })
        .collect()
}

#[test]
fn rust_and_js_agree_both_ways() {
    for seed in seeds() {
        let dir = scratch(&format!("seed{seed}"));
        let vectors_path = dir.join("vectors.json");
        run_node(
            "gen_vectors.mjs",
            &["--seed", &seed, "--out", vectors_path.to_str().unwrap()],
        );
        let vectors = read_json(&vectors_path);

        let poseidon_vectors = vectors["poseidon"].as_array().unwrap();
        for width in 1..=16 {
            assert!(
                poseidon_vectors
                    .iter()
                    .any(|v| v["inputs"].as_array().unwrap().len() == width),
                "no vector with {width} inputs"
            );
        }
        for v in poseidon_vectors {
            assert_eq!(
                poseidon(&frs(&v["inputs"])).unwrap(),
                fr(&v["output"]),
                "poseidon{}",
                v["inputs"]
            );
        }

        let mut foreign_cases = Vec::new();
        let mut circom_cases: Vec<(usize, Value)> = Vec::new();
        for tree_vectors in vectors["trees"].as_array().unwrap() {
            let name = tree_vectors["name"].as_str().unwrap();
            let max_levels = tree_vectors["max_levels"].as_u64().unwrap() as u16;
            let ops = ops_of(tree_vectors);
            let mut tree = MemoryTree::new(max_levels).unwrap();
            for (i, (op, root)) in ops.iter().zip(tree_vectors["roots"].as_array().unwrap()).enumerate() {
                tree.apply(std::slice::from_ref(op)).unwrap();
                assert_eq!(tree.root(), fr(root), "{name}: root after op {i}");
            }
            assert_eq!(
                fr_to_decimal(&tree.root()),
                tree_vectors["root"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(tree_vectors["circomlibjs_root"], tree_vectors["root"]);
            let mut batched = MemoryTree::new(max_levels).unwrap();
            batched.apply(&ops).unwrap();
            assert_eq!(batched.root(), tree.root(), "{name}: one batch");

            for (index, p) in tree_vectors["proofs"].as_array().unwrap().iter().enumerate() {
                let key = fr(&p["key"]);
                let lookup = tree.prove(&key).unwrap();
                let label = format!("{name} proof of {}", p["key"]);
                assert_eq!(lookup.proof.existence, p["existence"].as_bool().unwrap(), "{label}");
                assert_eq!(
                    lookup
                        .value
                        .map(|v| Value::from(fr_to_decimal(&v)))
                        .unwrap_or(Value::Null),
                    p["value"],
                    "{label}"
                );
                assert_eq!(lookup.proof.siblings, frs(&p["siblings"]), "{label}");
                assert_eq!(
                    serde_json::to_value(Iden3ProofJson::from(&lookup.proof)).unwrap(),
                    p["json"],
                    "{label}"
                );
                let bytes = hex::encode(lookup.proof.to_compact().unwrap());
                assert_eq!(bytes, p["bytes_hex"].as_str().unwrap(), "{label}");
                let n_levels = p["circom"]["nLevels"].as_u64().unwrap() as usize;
                let circom = lookup
                    .proof
                    .to_circom(&tree.root(), &key, lookup.value.as_ref(), n_levels)
                    .unwrap();
                let circom = serde_json::to_value(SmtVerifierInputsJson::from(&circom)).unwrap();
                let mut expected = p["circom"].clone();
                expected.as_object_mut().unwrap().remove("nLevels");
                assert_eq!(circom, expected, "{label}");
                lookup
                    .proof
                    .verify(&tree.root(), &key, lookup.value.as_ref(), max_levels)
                    .unwrap();

                // Our proof, and two forgeries, for the JS verifier.
                let id = format!("{name}/{index}");
                let root = fr_to_decimal(&tree.root());
                let value = lookup.value.map(|v| fr_to_decimal(&v));
                let json_form = serde_json::to_value(Iden3ProofJson::from(&lookup.proof)).unwrap();
                foreign_cases.push(json!({"id": format!("{id}/valid"), "root": root, "key": p["key"], "value": value, "json": json_form, "bytes_hex": bytes}));
                if let Some(position) = lookup.proof.siblings.iter().position(|s| *s != Fr::from(0u64)) {
                    let mut forged = lookup.proof.clone();
                    forged.siblings[position] += Fr::from(1u64);
                    foreign_cases.push(json!({"id": format!("{id}/sibling"), "root": root, "key": p["key"], "value": value,
                        "json": serde_json::to_value(Iden3ProofJson::from(&forged)).unwrap(), "bytes_hex": hex::encode(forged.to_compact().unwrap())}));
                }
                if let Some(v) = lookup.value {
                    let wrong = fr_to_decimal(&(v + Fr::from(1u64)));
                    foreign_cases.push(json!({"id": format!("{id}/value"), "root": root, "key": p["key"], "value": wrong, "json": json_form, "bytes_hex": bytes}));
                }
                if max_levels == 16 {
                    circom_cases.push((16, json!({"id": format!("{id}/valid"), "input": circom})));
                    let mut tampered = circom.clone();
                    tampered["root"] = Value::from(fr_to_decimal(&(tree.root() + Fr::from(1u64))));
                    circom_cases.push((16, json!({"id": format!("{id}/root"), "input": tampered})));
                }
            }
        }

        let foreign_in = dir.join("foreign_in.json");
        let foreign_out = dir.join("foreign_out.json");
        std::fs::write(&foreign_in, json!({"cases": foreign_cases}).to_string()).unwrap();
        run_node(
            "verify_foreign.mjs",
            &[foreign_in.to_str().unwrap(), foreign_out.to_str().unwrap()],
        );
        let results = read_json(&foreign_out);
        let results = results["results"].as_array().unwrap();
        assert_eq!(results.len(), foreign_cases.len());
        let mut valid = 0;
        for r in results {
            let id = r["id"].as_str().unwrap();
            let expect = id.ends_with("/valid");
            valid += usize::from(expect);
            assert_eq!(
                r["json_ok"],
                Value::Bool(expect),
                "js-merkletree on our JSON proof {id}: {r}"
            );
            assert_eq!(
                r["bytes_ok"],
                Value::Bool(expect),
                "js-merkletree on our compact proof {id}: {r}"
            );
        }
        assert!(valid >= 150, "only {valid} valid proofs crossed over");

        assert!(!circom_cases.is_empty());
        let circom_in = dir.join("circom_in.json");
        let circom_out = dir.join("circom_out.json");
        let cases: Vec<Value> = circom_cases.iter().map(|(_, c)| c.clone()).collect();
        std::fs::write(&circom_in, json!({"n_levels": 16, "cases": cases}).to_string()).unwrap();
        run_node(
            "circom_check.mjs",
            &[circom_in.to_str().unwrap(), circom_out.to_str().unwrap()],
        );
        for r in read_json(&circom_out)["results"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            assert_eq!(
                r["accepted"],
                Value::Bool(id.ends_with("/valid")),
                "circomlib SMTVerifier(16) on {id}: {r}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
