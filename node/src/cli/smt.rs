//! `rustorium smt`: builds a field-mode tree from a JSON file of entries and
//! prints its root and proofs, with no server. For circuit builders who need
//! test inputs for `SMTVerifier`.

use rustorium_core::Fr;
use rustorium_core::field::{fr_from_decimal, fr_to_decimal};
use rustorium_core::proof::json::{Iden3ProofJson, NodeAuxJson, SmtVerifierInputsJson};
use rustorium_core::tree::{MemoryTree, Op};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One input entry: decimal field elements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryJson {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ProofOutput {
    pub key: String,
    pub existence: bool,
    pub value: Option<String>,
    pub siblings: Vec<String>,
    pub node_aux: Option<NodeAuxJson>,
    pub bytes_hex: String,
    pub circom: SmtVerifierInputsJson,
}

#[derive(Debug, Serialize)]
pub struct SmtOutput {
    pub root: String,
    pub proofs: Vec<ProofOutput>,
}

/// Why `rustorium smt` refused its input.
#[derive(Debug, thiserror::Error)]
pub enum SmtError {
    #[error("entries file is not a JSON array of {{\"key\", \"value\"}} objects: {0}")]
    Json(#[from] serde_json::Error),
    #[error("entry {index}: {field} {text:?}: {source}")]
    Field {
        index: usize,
        field: &'static str,
        text: String,
        source: rustorium_core::FieldError,
    },
    #[error("entry {index}: key {key} appears twice")]
    DuplicateKey { index: usize, key: String },
    #[error("--prove {text:?}: {source}")]
    ProveKey {
        text: String,
        source: rustorium_core::FieldError,
    },
    #[error("{0}")]
    Tree(String),
    #[error("proof of key {key}: {reason}")]
    Encode { key: String, reason: String },
}

fn parse(index: usize, field: &'static str, text: &str) -> Result<Fr, SmtError> {
    fr_from_decimal(text).map_err(|source| SmtError::Field {
        index,
        field,
        text: text.to_owned(),
        source,
    })
}

/// Builds the tree from `entries_json` and proves `prove` keys.
pub fn run(max_levels: u16, entries_json: &str, prove: &[String]) -> Result<SmtOutput, SmtError> {
    let entries: Vec<EntryJson> = serde_json::from_str(entries_json)?;
    let mut seen = BTreeSet::new();
    let mut ops = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let key = parse(index, "key", &entry.key)?;
        let value = parse(index, "value", &entry.value)?;
        if !seen.insert(rustorium_core::field::fr_to_le_bytes(&key)) {
            return Err(SmtError::DuplicateKey {
                index,
                key: entry.key.clone(),
            });
        }
        ops.push(Op::put(key, value));
    }
    let mut tree = MemoryTree::new(max_levels).map_err(|e| SmtError::Tree(e.to_string()))?;
    tree.apply(&ops).map_err(|e| SmtError::Tree(e.to_string()))?;
    let root = tree.root();
    let keys = prove
        .iter()
        .map(|text| {
            fr_from_decimal(text).map_err(|source| SmtError::ProveKey {
                text: text.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let lookups = tree.prove_many(&keys).map_err(|e| SmtError::Tree(e.to_string()))?;
    let proofs = lookups
        .into_iter()
        .map(|lookup| {
            let key = fr_to_decimal(&lookup.key);
            let encode = |reason: String| SmtError::Encode {
                key: key.clone(),
                reason,
            };
            let bytes = lookup.proof.to_compact().map_err(|e| encode(e.to_string()))?;
            let circom = lookup
                .proof
                .to_circom(&root, &lookup.key, lookup.value.as_ref(), usize::from(max_levels))
                .map_err(|e| encode(e.to_string()))?;
            let json = Iden3ProofJson::from(&lookup.proof);
            Ok(ProofOutput {
                key: key.clone(),
                existence: json.existence,
                value: lookup.value.as_ref().map(fr_to_decimal),
                siblings: json.siblings,
                node_aux: json.node_aux,
                bytes_hex: hex::encode(bytes),
                circom: SmtVerifierInputsJson::from(&circom),
            })
        })
        .collect::<Result<Vec<_>, SmtError>>()?;
    Ok(SmtOutput {
        root: fr_to_decimal(&root),
        proofs,
    })
}
