//! `RustoriumClient`: the store's calls, each answer verified before it is
//! returned.

use super::transport::Endpoint;
use super::values::{self, get, is_absent, set};
use super::{rejection, type_error};
use crate::check::{self, KeyMode, Rejection, RootOrder, Verifier};
use js_sys::{Array, Function, Object, Promise};
use rustorium_core::Fr;
use rustorium_core::tree::MAX_LEVELS_LIMIT;
use rustorium_proto::v1;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use web_sys::AbortController;

thread_local! {
    static NOOP: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// The root the client trusts, and its version when known.
#[derive(Clone, Copy, Debug)]
struct Trusted {
    root: Fr,
    version: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    verifier: Verifier,
    trusted: Cell<Option<Trusted>>,
}

/// A connection to one Rustorium node. Every answer is verified in the
/// client, with rustorium-core's verifier, before it is returned; a proof
/// that fails throws `VerificationError` and returns nothing.
#[wasm_bindgen(js_name = RustoriumClient)]
#[derive(Debug)]
pub struct RustoriumClient {
    inner: Rc<Inner>,
}

fn trusted_root(value: &JsValue) -> Result<Option<Trusted>, JsValue> {
    if is_absent(value) {
        return Ok(None);
    }
    let root = get(value, "root");
    if value.is_object() && !value.is_instance_of::<js_sys::Uint8Array>() && !root.is_undefined() {
        Ok(Some(Trusted {
            root: values::field(&root, "trustedRoot.root")?,
            version: values::optional_u64(&get(value, "version"), "trustedRoot.version")?,
        }))
    } else {
        Ok(Some(Trusted {
            root: values::field(value, "trustedRoot")?,
            version: None,
        }))
    }
}

fn mode_name(mode: KeyMode) -> JsValue {
    JsValue::from_str(mode.name())
}

/// `version` as a JavaScript number (versions stay far below 2^53).
fn version(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

fn nanos(t: u64) -> JsValue {
    js_sys::BigInt::from(t).into()
}

fn promise(future: impl core::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    future_to_promise(future)
}

#[wasm_bindgen(js_class = RustoriumClient)]
impl RustoriumClient {
    /// `RustoriumClient.connect(url, { token, trustedRoot, maxLevels, keyMode })`:
    /// reads the store's parameters (`GetRoot`) and returns a client. With
    /// `maxLevels` or `keyMode` the server must state exactly those.
    pub fn connect(url: String, options: JsValue) -> Promise {
        promise(async move {
            let token = get(&options, "token");
            let token = if is_absent(&token) {
                None
            } else {
                Some(
                    token
                        .as_string()
                        .ok_or_else(|| type_error("token: expected a string"))?,
                )
            };
            let trusted = trusted_root(&get(&options, "trustedRoot"))?;
            let expected_levels = values::optional_u64(&get(&options, "maxLevels"), "maxLevels")?;
            let expected_mode = values::optional_mode(&get(&options, "keyMode"), "keyMode")?;
            let endpoint = Endpoint {
                base: url.trim_end_matches('/').to_owned(),
                token,
            };
            let info: v1::GetRootResponse = endpoint.unary("GetRoot", &v1::GetRootRequest::default()).await?;
            let mode = KeyMode::from_proto(info.key_mode).ok_or(Rejection::Parameters { what: "key_mode" });
            let mode = mode.map_err(rejection)?;
            if expected_mode.is_some_and(|m| m != mode) {
                return Err(rejection(Rejection::Parameters { what: "key_mode" }));
            }
            let max_levels = u16::try_from(info.max_levels)
                .ok()
                .filter(|n| (1..=MAX_LEVELS_LIMIT).contains(n))
                .ok_or_else(|| rejection(Rejection::Parameters { what: "max_levels" }))?;
            if expected_levels.is_some_and(|n| n != u64::from(max_levels)) {
                return Err(rejection(Rejection::Parameters { what: "max_levels" }));
            }
            let client = RustoriumClient {
                inner: Rc::new(Inner {
                    endpoint,
                    verifier: Verifier { mode, max_levels },
                    trusted: Cell::new(trusted),
                }),
            };
            Ok(client.into())
        })
    }

    /// The store's key mode: `"bytes"` or `"field"`.
    #[wasm_bindgen(getter, js_name = keyMode)]
    pub fn key_mode(&self) -> String {
        self.inner.verifier.mode.name().to_owned()
    }

    /// The store's `max_levels`, which every proof is checked against.
    #[wasm_bindgen(getter, js_name = maxLevels)]
    pub fn max_levels(&self) -> u16 {
        self.inner.verifier.max_levels
    }

    /// The server's base URL.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.endpoint.base.clone()
    }

    /// The trusted root as `{ root, version }` (`version` may be
    /// `undefined`), or `null`.
    #[wasm_bindgen(getter, js_name = trustedRoot)]
    pub fn trusted_root(&self) -> JsValue {
        match self.inner.trusted.get() {
            None => JsValue::NULL,
            Some(trusted) => {
                let object = Object::new();
                set(&object, "root", values::to_decimal(&trusted.root));
                if let Some(v) = trusted.version {
                    set(&object, "version", version(v));
                }
                object.into()
            }
        }
    }

    /// Sets (root, `{ root, version }`) or clears (`null`) the trusted root.
    /// With a version, reads are made at that version.
    #[wasm_bindgen(js_name = setTrustedRoot)]
    pub fn set_trusted_root(&self, root: JsValue) -> Result<(), JsValue> {
        self.inner.trusted.set(trusted_root(&root)?);
        Ok(())
    }

    /// `get(key, { atVersion })`: `{ found, key, value, root, version,
    /// timestamp, keyMode, proof }` once the proof of the value (or of the
    /// absence) has been verified against the root, and against the trusted
    /// root when one is set (a trusted version also sets the version read).
    pub fn get(&self, key: JsValue, options: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let key = values::wire(&key, inner.verifier.mode, "key")?;
            let trusted = inner.trusted.get();
            let at_version =
                values::optional_u64(&get(&options, "atVersion"), "atVersion")?.or(trusted.and_then(|t| t.version));
            let request = v1::GetRequest {
                key: key.clone(),
                at_version,
            };
            let response: v1::GetResponse = inner.endpoint.unary("Get", &request).await?;
            let checked = inner
                .verifier
                .get(&key, &response, trusted.as_ref().map(|t| &t.root), at_version)
                .map_err(rejection)?;
            let result = inner.result(&key, &checked, response.version, response.timestamp_unix_nanos);
            set(&result, "found", response.found.into());
            let value = if response.found {
                values::to_bytes(&response.value)
            } else {
                JsValue::NULL
            };
            set(&result, "value", value);
            Ok(result.into())
        })
    }

    /// `put(key, value)`: `{ key, value, root, version, timestamp, keyMode,
    /// proof }` once the membership proof of (key, value) has been verified
    /// against the new root.
    pub fn put(&self, key: JsValue, value: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let key = values::wire(&key, inner.verifier.mode, "key")?;
            let value = values::wire(&value, inner.verifier.mode, "value")?;
            let request = v1::PutRequest {
                key: key.clone(),
                value: value.clone(),
                want_proof: true,
            };
            let response: v1::PutResponse = inner.endpoint.unary("Put", &request).await?;
            let checked = inner.verifier.put(&key, &value, &response).map_err(rejection)?;
            let result = inner.result(&key, &checked, response.version, response.timestamp_unix_nanos);
            set(&result, "value", values::to_bytes(&value));
            Ok(result.into())
        })
    }

    /// `delete(key)`: `{ key, value: null, existed, root, version,
    /// timestamp, keyMode, proof }` once the non-membership proof of key has
    /// been verified against the new root.
    pub fn delete(&self, key: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let key = values::wire(&key, inner.verifier.mode, "key")?;
            let request = v1::DeleteRequest { key: key.clone() };
            let response: v1::DeleteResponse = inner.endpoint.unary("Delete", &request).await?;
            let checked = inner.verifier.delete(&key, &response).map_err(rejection)?;
            let result = inner.result(&key, &checked, response.version, response.timestamp_unix_nanos);
            set(&result, "value", JsValue::NULL);
            set(&result, "existed", response.existed.into());
            Ok(result.into())
        })
    }

    /// `putBatch([{ key, value } | { key, delete: true }, ...])`: `{ root,
    /// version, timestamp, keyMode, proofs }`, one proof per op, each
    /// verified to show its key's state after the batch.
    #[wasm_bindgen(js_name = putBatch)]
    pub fn put_batch(&self, ops: JsValue) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let list = ops
                .dyn_ref::<Array>()
                .ok_or_else(|| type_error("ops: expected an array of { key, value } or { key, delete: true }"))?;
            let mode = inner.verifier.mode;
            let mut ops = Vec::with_capacity(list.length() as usize);
            for (i, op) in list.iter().enumerate() {
                let key = values::wire(&get(&op, "key"), mode, &format!("ops[{i}].key"))?;
                let delete = get(&op, "delete").as_bool() == Some(true);
                let value = get(&op, "value");
                let kind = match (delete, is_absent(&value)) {
                    (true, true) => v1::op::Kind::Delete(v1::op::Delete {}),
                    (false, false) => v1::op::Kind::Value(values::wire(&value, mode, &format!("ops[{i}].value"))?),
                    _ => {
                        return Err(type_error(&format!("ops[{i}]: give either a value or delete: true")));
                    }
                };
                ops.push(v1::Op { key, kind: Some(kind) });
            }
            let request = v1::PutBatchRequest { ops, want_proofs: true };
            let response: v1::PutBatchResponse = inner.endpoint.unary("PutBatch", &request).await?;
            let (root, proofs) = inner.verifier.batch(&request.ops, &response).map_err(rejection)?;
            let result = Object::new();
            set(&result, "root", values::to_decimal(&root));
            set(&result, "version", version(response.version));
            set(&result, "timestamp", nanos(response.timestamp_unix_nanos));
            set(&result, "keyMode", mode_name(mode));
            let proofs: Array = proofs.iter().map(values::proof_to_js).collect();
            set(&result, "proofs", proofs.into());
            Ok(result.into())
        })
    }

    /// `root()`: `{ root, version, timestamp, maxLevels, keyMode }`, the
    /// server's current root as it states it (a root alone has no proof).
    pub fn root(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let response: v1::GetRootResponse = inner.endpoint.unary("GetRoot", &v1::GetRootRequest::default()).await?;
            let root = check::root(&response.root).map_err(rejection)?;
            let result = Object::new();
            set(&result, "root", values::to_decimal(&root));
            set(&result, "version", version(response.version));
            set(&result, "timestamp", nanos(response.timestamp_unix_nanos));
            set(&result, "maxLevels", response.max_levels.into());
            let mode = KeyMode::from_proto(response.key_mode).map_or(JsValue::NULL, mode_name);
            set(&result, "keyMode", mode);
            Ok(result.into())
        })
    }

    /// `watchRoots(callback, { fromVersion })`: calls `callback({ version,
    /// root, timestamp, opCount })` for each committed version, in order.
    /// Returns a `RootWatch`; its `done` promise rejects with
    /// `VerificationError` (and the stream is dropped) as soon as a version
    /// is not the one after the previous.
    #[wasm_bindgen(js_name = watchRoots)]
    pub fn watch_roots(&self, callback: Function, options: JsValue) -> Result<RootWatch, JsValue> {
        let from_version = values::optional_u64(&get(&options, "fromVersion"), "fromVersion")?;
        let controller = AbortController::new()?;
        let closed = Rc::new(Cell::new(false));
        let settle: Rc<RefCell<Option<(Function, Function)>>> = Rc::new(RefCell::new(None));
        let settle_in = settle.clone();
        let done = Promise::new(&mut |resolve, reject| {
            *settle_in.borrow_mut() = Some((resolve, reject));
        });
        // A failed stream must not be an unhandled rejection (fatal in Node.js)
        // when the caller only uses the callback; `done` still rejects for
        // whoever awaits it.
        NOOP.with(|noop| {
            let _ = done.catch(noop);
        });
        let inner = self.inner.clone();
        let signal = controller.signal();
        let closed_in = closed.clone();
        spawn_local(async move {
            let mut order = RootOrder::new(from_version);
            let request = v1::WatchRootsRequest { from_version };
            let outcome = inner
                .endpoint
                .stream("WatchRoots", &request, &signal, |event: v1::RootEvent| {
                    order.accept(event.version).map_err(rejection)?;
                    let root = check::root(&event.root).map_err(rejection)?;
                    let object = Object::new();
                    set(&object, "version", version(event.version));
                    set(&object, "root", values::to_decimal(&root));
                    set(&object, "timestamp", nanos(event.timestamp_unix_nanos));
                    set(&object, "opCount", event.op_count.into());
                    callback.call1(&JsValue::NULL, &object).map(|_| ())
                })
                .await;
            let Some((resolve, reject)) = settle.borrow_mut().take() else {
                return;
            };
            // Rejecting or resolving a promise cannot throw.
            let _ = match outcome {
                Err(_) if closed_in.get() => resolve.call0(&JsValue::NULL),
                Ok(()) => resolve.call0(&JsValue::NULL),
                Err(error) => reject.call1(&JsValue::NULL, &error),
            };
        });
        Ok(RootWatch {
            controller,
            closed,
            done,
        })
    }
}

impl Inner {
    /// The fields every proven result has.
    fn result(&self, key: &[u8], checked: &check::Checked, v: u64, timestamp: u64) -> Object {
        let result = Object::new();
        set(&result, "key", values::to_bytes(key));
        set(&result, "root", values::to_decimal(&checked.root));
        set(&result, "version", version(v));
        set(&result, "timestamp", nanos(timestamp));
        set(&result, "keyMode", mode_name(self.verifier.mode));
        set(&result, "proof", values::proof_to_js(&checked.proof));
        result
    }
}

/// A running `watchRoots` subscription.
#[wasm_bindgen]
#[derive(Debug)]
pub struct RootWatch {
    controller: AbortController,
    closed: Rc<Cell<bool>>,
    done: Promise,
}

#[wasm_bindgen]
impl RootWatch {
    /// Settles when the stream ends: resolves after `close()` or a clean end
    /// from the server, rejects with `VerificationError` or `RpcError`.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> Promise {
        self.done.clone()
    }

    /// Stops the subscription; `done` then resolves.
    pub fn close(&self) {
        self.closed.set(true);
        self.controller.abort();
    }
}
