//! The JavaScript API (wasm32 only). The package's entry files
//! (`js/web/index.js`, `js/node/index.cjs`) wrap these exports, define the
//! error classes and register them with [`register_error_classes`].

pub mod api;
pub mod client;
mod transport;
mod values;

use crate::check::Rejection;
use crate::framing::{CallError, code_name};
use js_sys::{Function, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

struct ErrorClasses {
    verification: Function,
    rpc: Function,
}

thread_local! {
    static ERROR_CLASSES: RefCell<Option<ErrorClasses>> = const { RefCell::new(None) };
}

/// Called once by the entry file with its `VerificationError` and `RpcError`
/// classes, so that errors thrown here are instances of them.
#[wasm_bindgen(js_name = "__registerErrorClasses")]
pub fn register_error_classes(verification: Function, rpc: Function) {
    ERROR_CLASSES.with(|classes| {
        *classes.borrow_mut() = Some(ErrorClasses { verification, rpc });
    });
}

fn construct(pick: fn(&ErrorClasses) -> &Function, args: &[JsValue]) -> Option<JsValue> {
    ERROR_CLASSES.with(|classes| {
        let classes = classes.borrow();
        let class = pick(classes.as_ref()?);
        Reflect::construct(class, &args.iter().collect()).ok()
    })
}

fn plain_error(name: &str, message: &str, properties: &[(&str, JsValue)]) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    for (key, value) in properties {
        let _ = Reflect::set(&error, &JsValue::from_str(key), value);
    }
    error.into()
}

/// A `VerificationError` with `reason` (core's or the client's wording).
pub(crate) fn verification_error(reason: &str) -> JsValue {
    let reason = JsValue::from_str(reason);
    construct(|c| &c.verification, std::slice::from_ref(&reason)).unwrap_or_else(|| {
        let message = format!("proof verification failed: {}", reason.as_string().unwrap_or_default());
        plain_error("VerificationError", &message, &[("reason", reason)])
    })
}

pub(crate) fn rejection(rejection: Rejection) -> JsValue {
    verification_error(&rejection.to_string())
}

/// An `RpcError` with the gRPC `code`, its name and the server's message.
pub(crate) fn rpc_error(error: &CallError) -> JsValue {
    let args = [
        JsValue::from(error.code),
        JsValue::from_str(code_name(error.code)),
        JsValue::from_str(&error.message),
    ];
    construct(|c| &c.rpc, &args).unwrap_or_else(|| {
        plain_error(
            "RpcError",
            &error.to_string(),
            &[("code", args[0].clone()), ("details", args[2].clone())],
        )
    })
}

/// A `TypeError` for an argument of the wrong type or form.
pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
