// @rustorium/client, Node.js ES module entry: the CommonJS entry's exports,
// so `import` and `require` share one module instance and one set of classes.
import client from './index.cjs';

export const {
  RustoriumClient,
  RootWatch,
  verifyProof,
  poseidon,
  keyToField,
  toCircomInputs,
  VerificationError,
  RpcError,
  initSync,
} = client;
export default client.init;
