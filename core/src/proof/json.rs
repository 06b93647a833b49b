//! JSON forms: the iden3 proof JSON (`existence`, `siblings` as decimal
//! strings, `node_aux`) and circom `SMTVerifier` inputs. Decimal strings must
//! be canonical field elements.

use super::circom::SmtVerifierInputs;
use super::{NodeAux, Proof};
use crate::field::{FieldError, fr_from_decimal, fr_to_decimal};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// `node_aux` in iden3 JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAuxJson {
    pub key: String,
    pub value: String,
}

/// The iden3 proof JSON, as `@iden3/js-merkletree` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iden3ProofJson {
    pub existence: bool,
    pub siblings: Vec<String>,
    #[serde(default, alias = "nodeAux", skip_serializing_if = "Option::is_none")]
    pub node_aux: Option<NodeAuxJson>,
}

/// Which element of a JSON proof is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonProofError {
    Sibling { index: usize, error: FieldError },
    AuxKey(FieldError),
    AuxValue(FieldError),
    AuxInMembershipProof,
}

impl core::fmt::Display for JsonProofError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Sibling { index, error } => write!(f, "siblings[{index}]: {error}"),
            Self::AuxKey(e) => write!(f, "node_aux.key: {e}"),
            Self::AuxValue(e) => write!(f, "node_aux.value: {e}"),
            Self::AuxInMembershipProof => f.write_str("membership proof carries node_aux"),
        }
    }
}

impl core::error::Error for JsonProofError {}

impl From<&Proof> for Iden3ProofJson {
    fn from(proof: &Proof) -> Self {
        Self {
            existence: proof.existence,
            siblings: proof.siblings.iter().map(fr_to_decimal).collect(),
            node_aux: proof.node_aux.map(|aux| NodeAuxJson {
                key: fr_to_decimal(&aux.key),
                value: fr_to_decimal(&aux.value),
            }),
        }
    }
}

impl TryFrom<&Iden3ProofJson> for Proof {
    type Error = JsonProofError;
    fn try_from(json: &Iden3ProofJson) -> Result<Self, JsonProofError> {
        let siblings = json
            .siblings
            .iter()
            .enumerate()
            .map(|(index, s)| fr_from_decimal(s).map_err(|error| JsonProofError::Sibling { index, error }))
            .collect::<Result<Vec<_>, _>>()?;
        let node_aux = match &json.node_aux {
            None => None,
            Some(_) if json.existence => return Err(JsonProofError::AuxInMembershipProof),
            Some(aux) => Some(NodeAux {
                key: fr_from_decimal(&aux.key).map_err(JsonProofError::AuxKey)?,
                value: fr_from_decimal(&aux.value).map_err(JsonProofError::AuxValue)?,
            }),
        };
        Ok(Self {
            existence: json.existence,
            siblings,
            node_aux,
        })
    }
}

/// `SMTVerifier` inputs as circom's input JSON (every signal a decimal string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtVerifierInputsJson {
    pub enabled: String,
    pub fnc: String,
    pub root: String,
    pub siblings: Vec<String>,
    #[serde(rename = "oldKey")]
    pub old_key: String,
    #[serde(rename = "oldValue")]
    pub old_value: String,
    #[serde(rename = "isOld0")]
    pub is_old0: String,
    pub key: String,
    pub value: String,
}

fn flag(b: bool) -> String {
    String::from(if b { "1" } else { "0" })
}

impl From<&SmtVerifierInputs> for SmtVerifierInputsJson {
    fn from(inputs: &SmtVerifierInputs) -> Self {
        Self {
            enabled: flag(inputs.enabled),
            fnc: flag(inputs.fnc == 1),
            root: fr_to_decimal(&inputs.root),
            siblings: inputs.siblings.iter().map(fr_to_decimal).collect(),
            old_key: fr_to_decimal(&inputs.old_key),
            old_value: fr_to_decimal(&inputs.old_value),
            is_old0: flag(inputs.is_old0),
            key: fr_to_decimal(&inputs.key),
            value: fr_to_decimal(&inputs.value),
        }
    }
}
