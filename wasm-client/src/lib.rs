//! # rustorium-wasm-client
//!
//! Rustorium's client for browsers and Node.js, published as the npm package
//! `@rustorium/client` (see `README.md` for the JavaScript API and
//! `build.sh` for the build). It talks gRPC-web to a Rustorium node over
//! `fetch` and hands out nothing it has not verified: every proof is checked
//! in the client by `rustorium-core`'s one verification routine against the
//! root of the same response (and the trusted root, when there is one).
//!
//! - [`framing`]: gRPC-web frames and trailers, by hand.
//! - [`check`]: the checks made on each response around core's verifier.
//! - [`hash`]: Poseidon and bytes mode through a per-thread cache of the
//!   Poseidon parameters core derives at run time on wasm32.
//! - `js` (wasm32 only): the `wasm-bindgen` API (`RustoriumClient`,
//!   `verifyProof`, `poseidon`, `keyToField`, `toCircomInputs`) and the
//!   `fetch` transport.
//!
//! The first two are target independent and tested natively; the bindings are
//! tested with `wasm-bindgen-test` in Node.js and headless Chromium.
extern crate alloc;

pub mod check;
pub mod framing;
pub mod hash;

/// The JavaScript bindings; public for the `wasm-bindgen-test` suite, not an
/// interface of the Rust crate.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod js;
