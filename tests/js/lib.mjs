// Shared helpers for the JS oracle scripts (PRNG, field, proof bytes codec).
// Everything here is our own code; the iden3 / circomlib packages are only
// used as oracles by the scripts that import this module.
import { createHash } from 'node:crypto';
import { Hash, Proof } from '@iden3/js-merkletree';

// BN254 scalar field modulus r.
export const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

// ---------------------------------------------------------------------------
// Deterministic PRNG: SHA-256(domain || seed || counter) blocks.
// ---------------------------------------------------------------------------
export class Rng {
  constructor(seed, domain = 'smt-oracle') {
    this.prefix = `${domain}:${String(seed)}:`;
    this.counter = 0n;
  }

  // 256 uniformly random bits as a BigInt.
  u256() {
    const h = createHash('sha256').update(this.prefix + this.counter.toString()).digest('hex');
    this.counter += 1n;
    return BigInt('0x' + h);
  }

  // Uniform integer in [0, n) for a JS number n (n <= 2^32 is plenty here).
  int(n) {
    if (!(n > 0)) throw new Error('Rng.int: n must be > 0');
    return Number(this.u256() % BigInt(n));
  }

  // Uniform field element in [0, r) by rejection sampling over 254 bits.
  field() {
    const mask = (1n << 254n) - 1n;
    for (;;) {
      const x = this.u256() & mask;
      if (x < R) return x;
    }
  }

  // Uniform integer with `bits` bits (0 <= x < 2^bits).
  bits(bits) {
    let x = 0n;
    let have = 0;
    while (have < bits) {
      x = (x << 256n) | this.u256();
      have += 256;
    }
    return x & ((1n << BigInt(bits)) - 1n);
  }

  chance(p) {
    return this.int(1_000_000) < Math.floor(p * 1_000_000);
  }

  pick(arr) {
    return arr[this.int(arr.length)];
  }

  // Fisher-Yates on a copy.
  shuffled(arr) {
    const a = arr.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

// ---------------------------------------------------------------------------
// Hex / bytes helpers.
// ---------------------------------------------------------------------------
export function toHex(bytes) {
  return Buffer.from(bytes).toString('hex');
}

export function fromHex(hex) {
  if (typeof hex !== 'string') throw new Error('bytes_hex must be a string');
  let h = hex.trim();
  if (h.startsWith('0x') || h.startsWith('0X')) h = h.slice(2);
  if (h.length % 2 !== 0) throw new Error('bytes_hex has odd length');
  if (!/^[0-9a-fA-F]*$/.test(h)) throw new Error('bytes_hex has non-hex characters');
  return new Uint8Array(Buffer.from(h, 'hex'));
}

// Little-endian 32 bytes -> BigInt.
function leBytesToBigInt(b) {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
  return x;
}

// Strict decimal string -> BigInt in [0, r).
export function parseDec(s, what = 'value') {
  if (typeof s !== 'string' || !/^(0|[1-9][0-9]*)$/.test(s)) {
    throw new Error(`${what}: not a canonical decimal string: ${JSON.stringify(s)}`);
  }
  const x = BigInt(s);
  if (x >= R) throw new Error(`${what}: not < r`);
  return x;
}

// ---------------------------------------------------------------------------
// Proof bytes decoder.
//
// @iden3/js-merkletree 1.x has Proof.bytes() but no decoder, so we implement
// the documented iden3 wire format here:
//   byte 0       flags: bit0 = non-existence, bit1 = node_aux present
//   byte 1       depth (number of levels of the proof)
//   bytes 2..31  30-byte "notEmpties" bitmap, big-endian bit order:
//                bit i lives in byte (29 - floor(i/8)), mask 1 << (i % 8)
//   then         one 32-byte little-endian hash per set bit i < depth
//   then         if bit1: aux key (32 B LE), aux value (32 B LE)
//
// mode 'strict' rejects everything that Proof.bytes() could never produce
// (trailing bytes, bitmap bits >= depth, zero siblings marked not-empty,
// depth not equal to last-non-empty+1, aux on an existence proof, unknown
// flag bits, elements >= r). mode 'lenient' mirrors the permissive reference
// decoder (go-merkletree NewProofFromBytes): only truncation is an error,
// trailing bytes and bits beyond depth are ignored, aux ignored on existence.
// ---------------------------------------------------------------------------
const ELEM = 32;
const FLAGS = 2;

function testBitBE(bitmap, i) {
  return (bitmap[bitmap.length - 1 - Math.floor(i / 8)] & (1 << i % 8)) !== 0;
}

function hashFromLE(bytes, what, strict) {
  const v = leBytesToBigInt(bytes);
  if (v >= R) {
    if (strict) throw new Error(`${what}: element >= r`);
  }
  return new Hash(Uint8Array.from(bytes));
}

export function decodeProofBytes(bs, mode = 'strict') {
  const strict = mode === 'strict';
  if (bs.length < ELEM) throw new Error(`proof bytes too short (${bs.length} < 32)`);
  const flags = bs[0];
  const existence = (flags & 1) === 0;
  const hasAux = (flags & 2) !== 0;
  const depth = bs[1];
  const notEmpties = bs.slice(FLAGS, ELEM);
  if (strict) {
    if ((flags & ~3) !== 0) throw new Error(`unknown flag bits 0x${flags.toString(16)}`);
    if (depth > (ELEM - FLAGS) * 8) throw new Error(`depth ${depth} exceeds bitmap capacity`);
    for (let i = depth; i < (ELEM - FLAGS) * 8; i++) {
      if (testBitBE(notEmpties, i)) throw new Error(`notEmpties bit ${i} set at/after depth ${depth}`);
    }
    if (existence && hasAux) throw new Error('node_aux flag set on an existence proof');
  }
  const body = bs.slice(ELEM);
  const all = [];
  let idx = 0;
  let lastNonEmpty = -1;
  for (let i = 0; i < depth; i++) {
    if (testBitBE(notEmpties, i)) {
      if (body.length < (idx + 1) * ELEM) throw new Error('proof bytes truncated in siblings');
      const sb = body.slice(idx * ELEM, (idx + 1) * ELEM);
      if (strict && sb.every((b) => b === 0)) throw new Error(`sibling ${i} marked non-empty but is zero`);
      all.push(hashFromLE(sb, `sibling ${i}`, strict));
      lastNonEmpty = i;
      idx++;
    } else {
      all.push(new Hash());
    }
  }
  if (strict && depth !== lastNonEmpty + 1) {
    throw new Error(`depth ${depth} != last non-empty sibling index + 1 (${lastNonEmpty + 1})`);
  }
  let nodeAux;
  const rest = body.slice(idx * ELEM);
  if (!existence && hasAux) {
    if (rest.length !== 2 * ELEM) throw new Error(`node_aux needs 64 trailing bytes, found ${rest.length}`);
    nodeAux = {
      key: hashFromLE(rest.slice(0, ELEM), 'node_aux.key', strict),
      value: hashFromLE(rest.slice(ELEM), 'node_aux.value', strict)
    };
  } else if (strict && rest.length !== 0) {
    throw new Error(`${rest.length} trailing bytes after siblings`);
  }
  // NOTE: the Proof constructor recomputes depth as lastNonEmpty+1, i.e. it
  // drops trailing empty siblings (only possible in lenient mode).
  return new Proof({ existence, nodeAux, siblings: all });
}

export function readJson(path, fs) {
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}
