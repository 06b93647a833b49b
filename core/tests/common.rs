// Shared by the integration tests: vector loading and small helpers.
#![allow(dead_code)]

use rustorium_core::Fr;
use rustorium_core::field::fr_from_decimal;
use serde_json::Value;

pub fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

pub fn fr(v: &Value) -> Fr {
    fr_from_decimal(v.as_str().expect("decimal string")).expect("canonical decimal")
}

pub fn frs(v: &Value) -> Vec<Fr> {
    v.as_array().expect("array").iter().map(fr).collect()
}
