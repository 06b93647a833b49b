//! The standalone functions: `verifyProof`, `poseidon`, `keyToField`,
//! `toCircomInputs`.

use super::values::{self, get, is_absent};
use super::{rejection, type_error};
use crate::check::{KeyMode, Rejection};
use js_sys::{Array, Object};
use rustorium_core::Fr;
use rustorium_core::proof::Proof;
use rustorium_core::tree::MAX_LEVELS_LIMIT;
use wasm_bindgen::prelude::*;

/// What a proof is claimed to show, from the JavaScript arguments.
struct Statement {
    root: Fr,
    key: Fr,
    value: Option<Fr>,
    proof: Proof,
    stated_levels: Option<u16>,
}

fn statement(
    root: &JsValue,
    key: &JsValue,
    value: &JsValue,
    proof: &JsValue,
    mode: KeyMode,
) -> Result<Statement, JsValue> {
    let root = values::field(root, "root")?;
    let key = values::element(key, mode, "key")?;
    let value = if is_absent(value) {
        None
    } else {
        Some(values::element(value, mode, "value")?)
    };
    let (proof, stated_levels) = values::proof(proof)?;
    Ok(Statement {
        root,
        key,
        value,
        proof,
        stated_levels,
    })
}

fn levels(value: &JsValue, what: &str) -> Result<Option<u16>, JsValue> {
    match values::optional_u64(value, what)? {
        None => Ok(None),
        Some(n) if (1..=u64::from(MAX_LEVELS_LIMIT)).contains(&n) => Ok(Some(n as u16)),
        Some(_) => Err(type_error(&format!("{what}: must be between 1 and {MAX_LEVELS_LIMIT}"))),
    }
}

/// `verifyProof(root, key, value | null, proof, { keyMode = "field", maxLevels })`:
/// `true`, or throws `VerificationError` with core's reason.
///
/// `maxLevels` defaults to the one a protobuf proof states, else 255 (any
/// depth the tree format allows).
#[wasm_bindgen(js_name = verifyProof)]
pub fn verify_proof(
    root: JsValue,
    key: JsValue,
    value: JsValue,
    proof: JsValue,
    options: JsValue,
) -> Result<bool, JsValue> {
    let mode = values::optional_mode(&get(&options, "keyMode"), "keyMode")?.unwrap_or(KeyMode::Field);
    let max_levels = levels(&get(&options, "maxLevels"), "maxLevels")?;
    let s = statement(&root, &key, &value, &proof, mode)?;
    let max_levels = max_levels.or(s.stated_levels).unwrap_or(MAX_LEVELS_LIMIT);
    s.proof
        .verify(&s.root, &s.key, s.value.as_ref(), max_levels)
        .map_err(|e| rejection(Rejection::Proof(e)))?;
    Ok(true)
}

/// `poseidon(inputs)`: circomlib's Poseidon of 1 to 16 field elements, as a
/// bigint.
#[wasm_bindgen]
pub fn poseidon(inputs: JsValue) -> Result<JsValue, JsValue> {
    let inputs = inputs
        .dyn_into::<Array>()
        .map_err(|_| type_error("poseidon: expected an array of field elements"))?;
    let elements = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| values::field(&x, &format!("inputs[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let hash = crate::hash::poseidon(&elements).map_err(|e| type_error(&e.to_string()))?;
    Ok(values::to_bigint(&hash).into())
}

/// `keyToField(bytes)`: the bytes-mode tree element of a key or value
/// (`Uint8Array`, or a string as UTF-8), as a bigint.
#[wasm_bindgen(js_name = keyToField)]
pub fn key_to_field(bytes: JsValue) -> Result<JsValue, JsValue> {
    values::element(&bytes, KeyMode::Bytes, "keyToField").map(|x| values::to_bigint(&x).into())
}

/// `toCircomInputs({ root, key, value, proof, keyMode = "field" }, nLevels)`:
/// the inputs of circomlib's `SMTVerifier(nLevels)` (decimal strings), after
/// verifying the proof with `maxLevels = nLevels`. A result of the client's
/// `get`, `put` or `delete` is such an object.
#[wasm_bindgen(js_name = toCircomInputs)]
pub fn to_circom_inputs(proven: JsValue, n_levels: JsValue) -> Result<JsValue, JsValue> {
    let n_levels = values::optional_u64(&n_levels, "nLevels")?
        .filter(|n| (1..=u64::from(MAX_LEVELS_LIMIT)).contains(n))
        .ok_or_else(|| type_error(&format!("nLevels: must be between 1 and {MAX_LEVELS_LIMIT}")))?;
    let mode = values::optional_mode(&get(&proven, "keyMode"), "keyMode")?.unwrap_or(KeyMode::Field);
    let s = statement(
        &get(&proven, "root"),
        &get(&proven, "key"),
        &get(&proven, "value"),
        &get(&proven, "proof"),
        mode,
    )?;
    s.proof
        .verify(&s.root, &s.key, s.value.as_ref(), n_levels as u16)
        .map_err(|e| rejection(Rejection::Proof(e)))?;
    let inputs = s
        .proof
        .to_circom(&s.root, &s.key, s.value.as_ref(), n_levels as usize)
        .map_err(|e| type_error(&e.to_string()))?;
    let flag = |b: bool| JsValue::from_str(if b { "1" } else { "0" });
    let object = Object::new();
    values::set(&object, "enabled", flag(inputs.enabled));
    values::set(&object, "fnc", flag(inputs.fnc == 1));
    values::set(&object, "root", values::to_decimal(&inputs.root));
    let siblings: Array = inputs.siblings.iter().map(values::to_decimal).collect();
    values::set(&object, "siblings", siblings.into());
    values::set(&object, "oldKey", values::to_decimal(&inputs.old_key));
    values::set(&object, "oldValue", values::to_decimal(&inputs.old_value));
    values::set(&object, "isOld0", flag(inputs.is_old0));
    values::set(&object, "key", values::to_decimal(&inputs.key));
    values::set(&object, "value", values::to_decimal(&inputs.value));
    Ok(object.into())
}
