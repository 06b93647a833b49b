// The dashboard's only door to the node: the WASM client package. Every
// answer it returns was verified in this browser; the dashboard times one
// more local verification to show how long that takes here.
import init, { RustoriumClient, verifyProof, toCircomInputs, keyToField } from '@rustorium/client';

const text = new TextDecoder();

function display(value) {
  return value == null ? null : text.decode(value);
}

/** Verifies locally and times it; never throws. */
export function verify(root, key, value, proof, options = {}) {
  const started = performance.now();
  try {
    verifyProof(root, key, value, proof, { keyMode: 'bytes', ...options });
    return { ok: true, ms: performance.now() - started };
  } catch (error) {
    return { ok: false, ms: performance.now() - started, reason: error.reason ?? error.message };
  }
}

export async function connect(origin, maxLevels) {
  await init();
  const client = await RustoriumClient.connect(origin, { maxLevels });
  const timed = (result, key, value) => {
    const check = verify(result.root, key, value, result.proof, { maxLevels });
    if (!check.ok) throw new Error(`local re-verification failed: ${check.reason}`);
    return { ...result, value: value ?? null, verifyMs: check.ms };
  };
  return {
    async put(key, value) {
      return timed(await client.put(key, value), key, value);
    },
    async get(key) {
      const result = await client.get(key);
      return timed(result, key, display(result.value));
    },
    async delete(key) {
      return timed(await client.delete(key), key, null);
    },
    async root() {
      return client.root();
    },
    watchRoots(callback) {
      return client.watchRoots(callback);
    },
  };
}

/** The key's tree path: bits of its field element, least significant first. */
export function keyBits(key) {
  let field = keyToField(key);
  const bits = [];
  for (let i = 0; i < 256; i++) {
    bits.push(Number(field & 1n));
    field >>= 1n;
  }
  return bits;
}

export function keyDecimal(key) {
  return keyToField(key).toString();
}

export function circomInputs(last, nLevels) {
  return toCircomInputs({ root: last.root, key: last.key, value: last.value, proof: last.proof, keyMode: 'bytes' }, nLevels);
}
