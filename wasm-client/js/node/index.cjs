'use strict';
// @rustorium/client, Node.js entry (CommonJS; index.mjs re-exports it for
// `import`). The module is loaded synchronously on require, so `init()` is a
// no-op kept for code shared with browsers.
const wasm = require('./rustorium_wasm_client.js');

/** A proof or an answer failed verification; nothing was returned. */
class VerificationError extends Error {
  constructor(reason) {
    super(`proof verification failed: ${reason}`);
    this.name = 'VerificationError';
    /** Why, in the words of rustorium-core's verifier or of the client. */
    this.reason = reason;
  }
}

/** A call failed: a gRPC status other than OK, or no usable answer. */
class RpcError extends Error {
  constructor(code, codeName, details) {
    super(`gRPC ${codeName} (${code}): ${details}`);
    this.name = 'RpcError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}

wasm.__registerErrorClasses(VerificationError, RpcError);

const init = () => Promise.resolve();

module.exports = {
  RustoriumClient: wasm.RustoriumClient,
  RootWatch: wasm.RootWatch,
  verifyProof: wasm.verifyProof,
  poseidon: wasm.poseidon,
  keyToField: wasm.keyToField,
  toCircomInputs: wasm.toCircomInputs,
  VerificationError,
  RpcError,
  init,
  initSync: () => {},
  default: init,
};
