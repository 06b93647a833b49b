#!/usr/bin/env node
// Generate cross-implementation test vectors for the Rust Poseidon/BN254 SMT.
//
//   node tests/js/gen_vectors.mjs --seed <n> --out <file>
//
// Oracles: @iden3/js-merkletree (tree, proofs, JSON/bytes encodings),
// circomlibjs (Poseidon, newMemEmptyTrie), @iden3/js-crypto (second Poseidon).
// Output is a deterministic function of the seed. Exit code 1 if any
// self-check fails.
import fs from 'node:fs';
import path from 'node:path';
import {
  Merkletree,
  InMemoryDB,
  Hash,
  Proof,
  verifyProof,
  str2Bytes,
  ErrReachedMaxLevel
} from '@iden3/js-merkletree';
import { poseidon as jsCryptoPoseidon } from '@iden3/js-crypto';
import { buildPoseidon, newMemEmptyTrie } from 'circomlibjs';
import { R, Rng, toHex, decodeProofBytes } from './lib.mjs';

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------
function parseArgs(argv) {
  const out = { seed: null, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seed') out.seed = argv[++i];
    else if (a.startsWith('--seed=')) out.seed = a.slice(7);
    else if (a === '--out') out.out = argv[++i];
    else if (a.startsWith('--out=')) out.out = a.slice(6);
    else throw new Error(`unknown argument: ${a}`);
  }
  if (out.seed === null || out.seed === undefined || out.out === null || out.out === undefined) {
    throw new Error('usage: node gen_vectors.mjs --seed <n> --out <file>');
  }
  return out;
}

const failures = [];
function check(cond, msg) {
  if (!cond) {
    failures.push(msg);
    if (failures.length <= 20) console.error(`SELF-CHECK FAILED: ${msg}`);
  }
}

const dec = (x) => x.toString(10);
const isMaxLevelError = (e) => e === ErrReachedMaxLevel || e?.message === ErrReachedMaxLevel || String(e).includes(ErrReachedMaxLevel);

// ---------------------------------------------------------------------------
// Poseidon vectors
// ---------------------------------------------------------------------------
async function genPoseidon(rng) {
  const pos = await buildPoseidon();
  const F = pos.F;
  const vectors = [];
  for (let n = 1; n <= 16; n++) {
    const sets = [];
    sets.push(Array(n).fill(0n)); // all zero
    sets.push(Array(n).fill(R - 1n)); // all r-1
    for (let j = 0; j < 4; j++) {
      const v = [];
      for (let i = 0; i < n; i++) {
        const c = rng.int(10);
        if (c === 0) v.push(0n);
        else if (c === 1) v.push(R - 1n);
        else if (c === 2) v.push(BigInt(rng.int(1000)));
        else v.push(rng.field());
      }
      sets.push(v);
    }
    for (const inputs of sets) {
      const out = F.toObject(pos(inputs));
      const out2 = jsCryptoPoseidon.hash(inputs);
      check(out === out2, `poseidon n=${n}: circomlibjs ${out} != js-crypto ${out2}`);
      vectors.push({ inputs: inputs.map(dec), output: dec(out) });
    }
  }
  return vectors;
}

// ---------------------------------------------------------------------------
// Tree construction: js-merkletree + circomlibjs in lock-step.
// ---------------------------------------------------------------------------
class DualTree {
  constructor(name, maxLevels) {
    this.name = name;
    this.maxLevels = maxLevels;
  }

  async init() {
    this.mt = new Merkletree(new InMemoryDB(str2Bytes(this.name)), true, this.maxLevels);
    this.smt = await newMemEmptyTrie();
    this.entries = new Map(); // key(BigInt) -> value(BigInt), insertion order
    this.deleted = new Set();
    this.ops = [];
    this.roots = [];
    this.rejected = [];
    return this;
  }

  async root() {
    return (await this.mt.root()).bigInt();
  }

  cRoot() {
    return this.smt.F.toObject(this.smt.root);
  }

  async put(k, v) {
    if (k < 0n || k >= R || v < 0n || v >= R) throw new Error('put: out of field');
    if (this.entries.has(k)) {
      await this.mt.update(k, v);
      await this.smt.update(k, v);
    } else {
      const before = await this.root();
      try {
        await this.mt.add(k, v);
      } catch (e) {
        if (isMaxLevelError(e)) {
          const after = await this.root();
          check(after === before, `${this.name}: root changed after rejected put`);
          this.rejected.push({ op: 'put', key: dec(k), value: dec(v), error: 'ErrReachedMaxLevel', root: dec(after) });
          return false;
        }
        throw e;
      }
      await this.smt.insert(k, v);
      this.deleted.delete(k);
    }
    this.entries.set(k, v);
    this.ops.push({ op: 'put', key: dec(k), value: dec(v) });
    await this.record();
    return true;
  }

  async del(k) {
    if (!this.entries.has(k)) throw new Error('del: key not present');
    await this.mt.delete(k);
    await this.smt.delete(k);
    this.entries.delete(k);
    this.deleted.add(k);
    this.ops.push({ op: 'delete', key: dec(k) });
    await this.record();
  }

  async record() {
    const r = await this.root();
    const c = this.cRoot();
    check(r === c, `${this.name}: op #${this.ops.length} js-merkletree root ${r} != circomlibjs root ${c}`);
    this.roots.push(dec(r));
  }

  presentKeys() {
    return [...this.entries.keys()];
  }
}

// ---------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------
let verifiedCount = 0;

async function makeProof(t, k) {
  const rootHash = await t.mt.root();
  const root = rootHash.bigInt();
  const { proof } = await t.mt.generateProof(k, rootHash);
  const existence = proof.existence;
  const value = existence ? t.entries.get(k) : null;
  check(existence === t.entries.has(k), `${t.name}: existence mismatch for key ${k}`);
  const siblings = proof.allSiblings().map((h) => h.bigInt());
  const aux = proof.nodeAux ? { key: proof.nodeAux.key.bigInt(), value: proof.nodeAux.value.bigInt() } : null;
  const json = JSON.parse(JSON.stringify(proof.toJSON()));
  const bytes = proof.bytes();
  const vArg = existence ? value : 0n;

  // 1) the library's own verifier on the generated proof
  const ok = await verifyProof(rootHash, proof, k, vArg);
  check(ok, `${t.name}: verifyProof failed for own proof key=${k}`);
  if (ok) verifiedCount++;
  // 2) JSON round trip
  const pj = Proof.fromJSON(json);
  check(await verifyProof(rootHash, pj, k, vArg), `${t.name}: fromJSON proof does not verify key=${k}`);
  check(JSON.stringify(pj.toJSON()) === JSON.stringify(json), `${t.name}: JSON round trip differs key=${k}`);
  // 3) bytes round trip through our strict decoder
  const pb = decodeProofBytes(bytes, 'strict');
  check(await verifyProof(rootHash, pb, k, vArg), `${t.name}: bytes-decoded proof does not verify key=${k}`);
  check(toHex(pb.bytes()) === toHex(bytes), `${t.name}: bytes round trip differs key=${k}`);
  // 4) negative: wrong value for existence proofs, wrong root for all
  if (existence) {
    check(!(await verifyProof(rootHash, proof, k, (value + 1n) % R)), `${t.name}: wrong value accepted key=${k}`);
  }
  check(!(await verifyProof(Hash.fromBigInt((root + 1n) % R), proof, k, vArg)), `${t.name}: wrong root accepted key=${k}`);
  // 5) library's circom verifier proof agrees with ours (except isOld0)
  const cp = await t.mt.generateCircomVerifierProof(k, rootHash);
  const N = t.maxLevels;
  const padded = siblings.map(dec);
  while (padded.length < N) padded.push('0');
  check(padded.length === N, `${t.name}: proof depth ${siblings.length} exceeds nLevels ${N}`);
  check(padded[N - 1] === '0', `${t.name}: last circom sibling not zero key=${k}`);
  check(JSON.stringify(cp.siblings.map((h) => h.string())) === JSON.stringify(padded), `${t.name}: circom siblings mismatch key=${k}`);
  check(cp.fnc === (existence ? 0 : 1), `${t.name}: circom fnc mismatch key=${k}`);
  check(cp.oldKey.bigInt() === (aux ? aux.key : 0n) && cp.oldValue.bigInt() === (aux ? aux.value : 0n), `${t.name}: circom oldKey/oldValue mismatch key=${k}`);
  // 6) circomlibjs find() agrees (siblings, isOld0, aux)
  const F = t.smt.F;
  const f = await t.smt.find(k);
  check(f.found === existence, `${t.name}: circomlibjs found mismatch key=${k}`);
  check(JSON.stringify(f.siblings.map((s) => dec(F.toObject(s)))) === JSON.stringify(siblings.map(dec)), `${t.name}: circomlibjs siblings mismatch key=${k}`);
  const isOld0 = !existence && aux === null;
  if (!existence) {
    check(f.isOld0 === isOld0, `${t.name}: circomlibjs isOld0 mismatch key=${k}`);
    if (aux) {
      check(F.toObject(f.notFoundKey) === aux.key && F.toObject(f.notFoundValue) === aux.value, `${t.name}: circomlibjs aux mismatch key=${k}`);
    }
  } else {
    check(F.toObject(f.foundValue) === value, `${t.name}: circomlibjs value mismatch key=${k}`);
  }

  return {
    key: dec(k),
    existence,
    value: existence ? dec(value) : null,
    siblings: siblings.map(dec),
    node_aux: aux ? { key: dec(aux.key), value: dec(aux.value) } : null,
    json,
    bytes_hex: toHex(bytes),
    circom: {
      nLevels: N,
      enabled: '1',
      fnc: existence ? '0' : '1',
      root: dec(root),
      siblings: padded,
      oldKey: aux ? dec(aux.key) : '0',
      oldValue: aux ? dec(aux.value) : '0',
      isOld0: isOld0 ? '1' : '0',
      key: dec(k),
      value: existence ? dec(value) : '0'
    }
  };
}

// Flip bit `b` of k, staying inside the field.
function flip(k, b) {
  const x = k ^ (1n << BigInt(b));
  return x < R ? x : null;
}

async function genProofs(t, rng, extra = [], nPresent = 20, nAbsentEach = 10) {
  const chosen = new Map(); // key -> kind
  // Scenario-specific keys (deepest leaves, near misses) always get a proof.
  for (const k of extra) if (k >= 0n && k < R) chosen.set(k, 'extra');
  const present = rng.shuffled(t.presentKeys());
  for (const k of present.slice(0, nPresent)) chosen.set(k, 'present');

  // Absent candidates: deleted keys, near misses of present keys (single bit
  // flips at several depths), random field elements, small numbers.
  const cands = [];
  for (const k of rng.shuffled([...t.deleted]).slice(0, 6)) cands.push(k);
  for (const k of rng.shuffled(t.presentKeys()).slice(0, 30)) {
    for (const b of [0, 1, 2, 3, 5, 8, 13, 21, 25, 40, 61, 62, 63, 100, 139, 141, 150, 158, 159, 200, 252]) {
      if (rng.chance(0.3)) {
        const x = flip(k, b);
        if (x !== null) cands.push(x);
      }
    }
  }
  for (let i = 0; i < 40; i++) cands.push(rng.field());
  for (let i = 1; i < 8; i++) cands.push(BigInt(i));
  cands.push(R - 1n);

  let nAux = 0;
  let nEmpty = 0;
  for (const k of cands) {
    if (chosen.has(k) || t.entries.has(k)) continue;
    if (nAux >= nAbsentEach && nEmpty >= nAbsentEach) break;
    const { proof } = await t.mt.generateProof(k);
    if (proof.nodeAux) {
      if (nAux < nAbsentEach) { chosen.set(k, 'absent_aux'); nAux++; }
    } else if (nEmpty < nAbsentEach) {
      chosen.set(k, 'absent_empty'); nEmpty++;
    }
  }
  if (!chosen.has(0n)) chosen.set(0n, t.entries.has(0n) ? 'present' : 'absent');

  const proofs = [];
  for (const k of chosen.keys()) proofs.push(await makeProof(t, k));
  return proofs;
}

async function finish(t, rng, extra = []) {
  const root = await t.root();
  // Independent rebuild: circomlibjs from scratch with just the final entries.
  const fresh = await newMemEmptyTrie();
  for (const [k, v] of t.entries) await fresh.insert(k, v);
  const freshRoot = fresh.F.toObject(fresh.root);
  check(freshRoot === root, `${t.name}: fresh circomlibjs root ${freshRoot} != ${root}`);
  check(t.cRoot() === root, `${t.name}: replayed circomlibjs root != js-merkletree root`);
  // And a fresh js-merkletree with the final entries (history independence).
  const mt2 = new Merkletree(new InMemoryDB(str2Bytes(t.name + '-fresh')), true, t.maxLevels);
  for (const [k, v] of t.entries) await mt2.add(k, v);
  check((await mt2.root()).bigInt() === root, `${t.name}: fresh js-merkletree root differs (history dependence)`);
  const out = {
    name: t.name,
    max_levels: t.maxLevels,
    ops: t.ops,
    roots: t.roots,
    root: dec(root),
    circomlibjs_root: dec(freshRoot),
    final_entries: [...t.entries].map(([k, v]) => ({ key: dec(k), value: dec(v) })),
    proofs: await genProofs(t, rng, extra)
  };
  if (t.rejected.length) out.rejected_ops = t.rejected;
  return out;
}

function randValue(rng) {
  const c = rng.int(12);
  if (c === 0) return 0n;
  if (c === 1) return R - 1n;
  if (c === 2) return BigInt(rng.int(100));
  return rng.field();
}

// ---------------------------------------------------------------------------
// Tree scenarios
// ---------------------------------------------------------------------------
async function treeRandom(rng) {
  const t = await new DualTree('random_64', 64).init();
  await t.put(0n, rng.field()); // key 0 present in this tree
  await t.put(R - 1n, 0n);
  await t.put(1n, R - 1n);
  let nPuts = 3;
  while (nPuts < 200) {
    const keys = t.presentKeys();
    const c = rng.int(100);
    if (c < 12 && keys.length > 5) {
      await t.put(rng.pick(keys), randValue(rng)); // update
    } else if (c < 27 && keys.length > 5) {
      await t.del(rng.pick(keys));
    } else {
      const k = rng.field();
      if (!t.entries.has(k) && (await t.put(k, randValue(rng)))) nPuts++;
    }
  }
  // Re-insert a couple of deleted keys, update key 0.
  for (const k of rng.shuffled([...t.deleted]).slice(0, 3)) await t.put(k, randValue(rng));
  await t.put(0n, R - 1n);
  return finish(t, rng);
}

async function treeDeep(rng) {
  const N = 160;
  const t = await new DualTree('deep_prefix_160', N).init();
  const low = (bits) => rng.bits(bits);
  // group A: equal in the low 20 bits -> key = baseA + (i << 20)
  const baseA = low(20);
  const A = [];
  for (let i = 1; i <= 30; i++) A.push(baseA + (BigInt(i) << 20n));
  // group B: equal in low 60 bits, random high part
  const baseB = low(60);
  const B = [];
  for (let i = 0; i < 10; i++) B.push(baseB + (rng.bits(190) << 60n));
  // group C: equal in low 140 bits -> leaves around depth 140..143
  const baseC = low(140);
  const C = [];
  for (let i = 1; i <= 6; i++) C.push(baseC + (BigInt(i) << 140n));
  // group D: a pair differing first at bit 158 -> leaves at depth 159 (= N-1, the max)
  const baseD = low(158);
  const D = [baseD, baseD + (1n << 158n)];
  // E: shares low 159 bits with baseD -> must be rejected with ErrReachedMaxLevel
  const E = baseD + (1n << 159n);

  const all = rng.shuffled([...A, ...B, ...C, ...D]);
  for (const k of all) check(k < R, 'deep key out of field');
  for (const k of all) await t.put(k, randValue(rng));
  await t.put(E, 42n); // rejected (recorded in rejected_ops)
  // some random keys around them
  for (let i = 0; i < 20; i++) await t.put(rng.field(), randValue(rng));
  // updates
  for (const k of [...C.slice(0, 2), D[0], A[3]]) await t.put(k, randValue(rng));
  // deletes that force collapses: most of C (pair at depth ~142 collapses up
  // to the C-subtree root), one of D (partner climbs from depth 159), much of A.
  for (const k of rng.shuffled(C).slice(0, 4)) await t.del(k);
  await t.del(D[1]);
  for (const k of rng.shuffled(A).slice(0, 12)) await t.del(k);
  for (const k of rng.shuffled(B).slice(0, 3)) await t.del(k);
  // re-add a deep one and delete again, then re-add the max-depth partner
  await t.put(D[1], R - 1n);
  await t.del(D[0]);
  await t.put(D[0], 0n);
  // final state keeps: a depth-159 pair (D), two C keys, 18 A keys, 7 B keys
  const extra = [
    ...D, E, baseD ^ (1n << 157n), baseD ^ (1n << 100n), // depth 159 and near misses
    ...C, baseC + (7n << 140n), baseC + (9n << 140n), baseC ^ (1n << 139n), // deep C subtree
    A[0], A[1], baseA + (31n << 20n), B[0], baseB ^ (1n << 59n)
  ];
  return finish(t, rng, extra);
}

async function treeSmall16(rng) {
  const t = await new DualTree('small_16', 16).init();
  for (let i = 0; i < 24; i++) await t.put(rng.field(), randValue(rng));
  // pair sharing the low 14 bits -> leaves at depth 15 (= N-1, the max)
  const base = rng.field() & ~((1n << 15n) - 1n); // bits 0..14 zero
  const p = base | rng.bits(14);
  const q = p ^ (1n << 14n);
  await t.put(p, 7n);
  await t.put(q, 8n);
  // shares low 15 bits with p -> rejected (ErrReachedMaxLevel)
  const bad = p ^ (1n << 15n);
  if (bad < R) await t.put(bad, 9n);
  const keys = t.presentKeys();
  for (const k of rng.shuffled(keys).slice(0, 4)) await t.put(k, randValue(rng));
  for (const k of rng.shuffled(keys.filter((k) => k !== p && k !== q)).slice(0, 6)) await t.del(k);
  if (t.entries.has(q)) {
    await t.del(q);
    await t.put(q, R - 1n);
  }
  return finish(t, rng, [p, q, bad, p ^ (1n << 13n)]);
}

async function treeOneKey(rng) {
  const t = await new DualTree('one_key', 64).init();
  await t.put(rng.field(), R - 1n);
  return finish(t, rng);
}

async function treeSmall3(rng) {
  const t = await new DualTree('small_3', 64).init();
  const a = rng.field();
  const b = rng.field();
  const c = rng.field();
  await t.put(a, 1n);
  await t.put(b, 0n);
  await t.put(c, rng.field());
  await t.put(b, 2n);
  return finish(t, rng);
}

async function treeDeleteAll(rng) {
  const t = await new DualTree('delete_all', 64).init();
  const ks = [];
  for (let i = 0; i < 10; i++) ks.push(rng.field());
  ks.push(rng.bits(20)); // a couple of small keys sharing high zero bits
  ks.push(rng.bits(20));
  for (const k of ks) if (!t.entries.has(k)) await t.put(k, randValue(rng));
  for (const k of rng.shuffled(t.presentKeys())) await t.del(k);
  check((await t.root()) === 0n, 'delete_all: root not 0 after deleting everything');
  return finish(t, rng);
}

async function treeEmpty(rng) {
  const t = await new DualTree('empty', 64).init();
  return finish(t, rng);
}

// ---------------------------------------------------------------------------
async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const rng = new Rng(args.seed);
  const poseidon = await genPoseidon(new Rng(args.seed, 'poseidon'));
  const trees = [];
  const scenarios = [treeRandom, treeDeep, treeSmall16, treeOneKey, treeSmall3, treeDeleteAll, treeEmpty];
  for (const s of scenarios) {
    // Each scenario gets its own stream so adding one doesn't shift the others.
    trees.push(await s(new Rng(args.seed, `tree:${s.name}`)));
  }
  void rng;
  const nProofs = trees.reduce((a, t) => a + t.proofs.length, 0);
  check(verifiedCount === nProofs, `js_verify_self ${verifiedCount} != proofs ${nProofs}`);
  const out = {
    generator: 'tests/js/gen_vectors.mjs',
    seed: String(args.seed),
    field_modulus: dec(R),
    js_verify_self: verifiedCount,
    proof_count: nProofs,
    poseidon,
    trees
  };
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(out, null, 1) + '\n');
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.error(
    `wrote ${args.out}: ${poseidon.length} poseidon vectors, ${trees.length} trees, ` +
      `${trees.reduce((a, t) => a + t.ops.length, 0)} ops, ${nProofs} proofs ` +
      `(${verifiedCount} self-verified) in ${secs}s`
  );
  if (failures.length) {
    console.error(`${failures.length} self-check(s) failed`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exit(1);
});
