// @rustorium/client, browser and bundler entry (ES module).
//
// Call `await init()` once before the synchronous functions (verifyProof,
// poseidon, keyToField, toCircomInputs); RustoriumClient.connect does it by
// itself. The wasm file is fetched from next to this file unless `init` is
// given a URL, a Response, bytes or a compiled WebAssembly.Module.
import wasmInit, * as wasm from './rustorium_wasm_client.js';

/** A proof or an answer failed verification; nothing was returned. */
export class VerificationError extends Error {
  constructor(reason) {
    super(`proof verification failed: ${reason}`);
    this.name = 'VerificationError';
    /** Why, in the words of rustorium-core's verifier or of the client. */
    this.reason = reason;
  }
}

/** A call failed: a gRPC status other than OK, or no usable answer. */
export class RpcError extends Error {
  constructor(code, codeName, details) {
    super(`gRPC ${codeName} (${code}): ${details}`);
    this.name = 'RpcError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}

let ready = null;
let initialized = false;

function registered() {
  wasm.__registerErrorClasses(VerificationError, RpcError);
  initialized = true;
}

/** Loads the WebAssembly module once; later calls return the same promise. */
export default function init(input) {
  if (ready === null) {
    ready = wasmInit(input === undefined ? undefined : { module_or_path: input }).then(registered);
  }
  return ready;
}

/** Loads the module synchronously from bytes or a WebAssembly.Module. */
export function initSync(module) {
  if (!initialized) {
    wasm.initSync({ module });
    registered();
    ready = Promise.resolve();
  }
}

function checked(name) {
  return (...args) => {
    if (!initialized) {
      throw new Error(`@rustorium/client: call \`await init()\` before ${name}()`);
    }
    return wasm[name](...args);
  };
}

export const verifyProof = checked('verifyProof');
export const poseidon = checked('poseidon');
export const keyToField = checked('keyToField');
export const toCircomInputs = checked('toCircomInputs');
export const { RustoriumClient, RootWatch } = wasm;

const connect = wasm.RustoriumClient.connect;
RustoriumClient.connect = async function (url, options) {
  await init();
  return connect.call(this, url, options);
};
