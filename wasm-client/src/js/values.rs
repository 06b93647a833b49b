//! JavaScript values to wire bytes, field elements and proofs, and back.

use super::{type_error, verification_error};
use crate::check::KeyMode;
use js_sys::{Array, BigInt, Object, Reflect, Uint8Array};
use prost::Message;
use rustorium_core::Fr;
use rustorium_core::field::{fr_from_decimal, fr_from_le_bytes, fr_to_le_bytes};
use rustorium_core::proof::Proof;
use rustorium_core::proof::json::{Iden3ProofJson, NodeAuxJson};
use rustorium_proto::v1;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A field element from a bigint, a decimal string, a non-negative safe
/// integer or 32 little-endian bytes; `what` names the argument in errors.
pub(crate) fn field(value: &JsValue, what: &str) -> Result<Fr, JsValue> {
    let bad = |detail: &dyn core::fmt::Display| type_error(&format!("{what}: {detail}"));
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return fr_from_le_bytes(&bytes.to_vec()).map_err(|e| bad(&e));
    }
    let text = if value.is_bigint() {
        BigInt::unchecked_from_js_ref(value)
            .to_string(10)
            .map_err(|_| bad(&"unprintable bigint"))?
            .into()
    } else if let Some(number) = value.as_f64() {
        if !((0.0..=MAX_SAFE_INTEGER).contains(&number) && number.fract() == 0.0) {
            return Err(bad(
                &"a number must be a non-negative safe integer (use a bigint or a string)",
            ));
        }
        format!("{}", number as u64)
    } else if let Some(text) = value.as_string() {
        text
    } else {
        return Err(bad(
            &"expected a field element: bigint, decimal string, number or 32-byte Uint8Array",
        ));
    };
    fr_from_decimal(&text).map_err(|e| bad(&e))
}

/// A key or value in the wire form of a store in `mode`: bytes mode takes a
/// `Uint8Array` or a string (UTF-8); field mode takes what [`field`] takes
/// and sends 32 little-endian bytes.
pub(crate) fn wire(value: &JsValue, mode: KeyMode, what: &str) -> Result<Vec<u8>, JsValue> {
    match mode {
        KeyMode::Bytes => bytes(value, what),
        KeyMode::Field => Ok(fr_to_le_bytes(&field(value, what)?).to_vec()),
    }
}

/// Bytes from a `Uint8Array` or a string (UTF-8).
pub(crate) fn bytes(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        Ok(bytes.to_vec())
    } else if let Some(text) = value.as_string() {
        Ok(text.into_bytes())
    } else {
        Err(type_error(&format!("{what}: expected a Uint8Array or a string")))
    }
}

/// The tree element of a key or value given as in [`wire`].
pub(crate) fn element(value: &JsValue, mode: KeyMode, what: &str) -> Result<Fr, JsValue> {
    match mode {
        KeyMode::Bytes => Ok(crate::hash::bytes_to_field(&bytes(value, what)?)),
        KeyMode::Field => field(value, what),
    }
}

pub(crate) fn is_absent(value: &JsValue) -> bool {
    value.is_null() || value.is_undefined()
}

/// `object[name]`, `undefined` when `object` is not an object.
pub(crate) fn get(object: &JsValue, name: &str) -> JsValue {
    if object.is_object() {
        Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// An optional non-negative integer option (number or bigint).
pub(crate) fn optional_u64(value: &JsValue, what: &str) -> Result<Option<u64>, JsValue> {
    if is_absent(value) {
        return Ok(None);
    }
    if value.is_bigint() {
        return u64::try_from(BigInt::unchecked_from_js_ref(value).clone())
            .map(Some)
            .map_err(|_| type_error(&format!("{what}: out of range")));
    }
    match value.as_f64() {
        Some(n) if (0.0..=MAX_SAFE_INTEGER).contains(&n) && n.fract() == 0.0 => Ok(Some(n as u64)),
        _ => Err(type_error(&format!("{what}: expected a non-negative integer"))),
    }
}

/// The key mode option: `"bytes"` or `"field"`.
pub(crate) fn optional_mode(value: &JsValue, what: &str) -> Result<Option<KeyMode>, JsValue> {
    if is_absent(value) {
        return Ok(None);
    }
    value
        .as_string()
        .and_then(|name| KeyMode::from_name(&name))
        .map(Some)
        .ok_or_else(|| type_error(&format!("{what}: expected \"bytes\" or \"field\"")))
}

/// A field element as a JavaScript bigint. The engine's BigInt does the
/// decimal conversion, which keeps arbitrary-precision code out of the
/// module.
pub(crate) fn to_bigint(value: &Fr) -> BigInt {
    let mut hex = String::with_capacity(66);
    hex.push_str("0x");
    for byte in fr_to_le_bytes(value).iter().rev() {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 15), 16).unwrap_or('0'));
    }
    // A hexadecimal literal always converts.
    BigInt::new(&JsValue::from_str(&hex)).unwrap_or_else(|_| BigInt::from(0u64))
}

/// A field element as a decimal string (the iden3 JSON form).
pub(crate) fn to_decimal(value: &Fr) -> JsValue {
    to_bigint(value).to_string(10).map_or(JsValue::UNDEFINED, Into::into)
}

pub(crate) fn to_bytes(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// A proof in the iden3 JSON form, as a plain object.
pub(crate) fn proof_to_js(proof: &Proof) -> JsValue {
    let object = Object::new();
    let siblings: Array = proof.siblings.iter().map(to_decimal).collect();
    set(&object, "existence", proof.existence.into());
    set(&object, "siblings", siblings.into());
    if let Some(aux) = &proof.node_aux {
        let node_aux = Object::new();
        set(&node_aux, "key", to_decimal(&aux.key));
        set(&node_aux, "value", to_decimal(&aux.value));
        set(&object, "node_aux", node_aux.into());
    }
    object.into()
}

pub(crate) fn set(object: &Object, key: &str, value: JsValue) {
    // Setting a data property on a plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value);
}

/// A proof given in any of its forms, and the `max_levels` it states (the
/// protobuf form may): an iden3 JSON object (or an object with `toJSON`,
/// such as a js-merkletree `Proof`), its JSON text, the iden3 compact bytes
/// (a `Uint8Array` whose first byte, the flags, is at most 3) or an encoded
/// `rustorium.v1.Proof` (a `Uint8Array` starting with a protobuf tag, which is
/// always above 3, or empty). A proof that does not decode is a
/// `VerificationError`: it came from outside.
pub(crate) fn proof(value: &JsValue) -> Result<(Proof, Option<u16>), JsValue> {
    let malformed = |detail: &dyn core::fmt::Display| verification_error(&format!("malformed proof: {detail}"));
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        let bytes = bytes.to_vec();
        if bytes.first().is_some_and(|flags| *flags <= 3) {
            return Proof::from_compact(&bytes)
                .map(|p| (p, None))
                .map_err(|e| malformed(&e));
        }
        let message = v1::Proof::decode(bytes.as_slice()).map_err(|e| malformed(&e))?;
        let proof = Proof::try_from(&message).map_err(|e| malformed(&e))?;
        let max_levels = u16::try_from(message.max_levels).map_err(|_| malformed(&"max_levels out of range"))?;
        return Ok((proof, (max_levels != 0).then_some(max_levels)));
    }
    let object = if let Some(text) = value.as_string() {
        js_sys::JSON::parse(&text).map_err(|_| malformed(&"not JSON"))?
    } else if value.is_object() {
        let to_json = get(value, "toJSON");
        match to_json.dyn_ref::<js_sys::Function>() {
            Some(to_json) => to_json.call0(value)?,
            None => value.clone(),
        }
    } else {
        return Err(type_error(
            "proof: expected an iden3 JSON object or text, compact bytes or an encoded rustorium.v1.Proof",
        ));
    };
    let json = iden3_json(&object).map_err(|detail| malformed(&detail))?;
    Proof::try_from(&json).map(|p| (p, None)).map_err(|e| malformed(&e))
}

/// Reads an iden3 JSON object into core's [`Iden3ProofJson`] (whose
/// conversion then checks every element): `existence` a boolean, `siblings`
/// an array of decimal strings, `node_aux` (or `nodeAux`) absent or
/// `{ key, value }` decimal strings, and no other field.
fn iden3_json(object: &JsValue) -> Result<Iden3ProofJson, String> {
    if !object.is_object() || Array::is_array(object) {
        return Err(String::from("expected an object with existence and siblings"));
    }
    for name in Object::keys(object.unchecked_ref::<Object>()).iter() {
        let name = name.as_string().unwrap_or_default();
        if !matches!(name.as_str(), "existence" | "siblings" | "node_aux" | "nodeAux") {
            return Err(format!("unknown field `{name}`"));
        }
    }
    let text = |value: JsValue, what: &str| {
        value
            .as_string()
            .ok_or_else(|| format!("{what}: expected a decimal string"))
    };
    let existence = get(object, "existence")
        .as_bool()
        .ok_or_else(|| String::from("existence: expected a boolean"))?;
    let siblings = get(object, "siblings");
    if !Array::is_array(&siblings) {
        return Err(String::from("siblings: expected an array"));
    }
    let siblings = Array::from(&siblings)
        .iter()
        .enumerate()
        .map(|(i, s)| text(s, &format!("siblings[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut node_aux = get(object, "node_aux");
    if is_absent(&node_aux) {
        node_aux = get(object, "nodeAux");
    }
    let node_aux = if is_absent(&node_aux) {
        None
    } else {
        Some(NodeAuxJson {
            key: text(get(&node_aux, "key"), "node_aux.key")?,
            value: text(get(&node_aux, "value"), "node_aux.value")?,
        })
    };
    Ok(Iden3ProofJson {
        existence,
        siblings,
        node_aux,
    })
}
