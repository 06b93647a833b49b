#!/usr/bin/env node
// End-to-end self-test of the oracle scripts (not of the Rust code).
//
//   node tests/js/selftest.mjs [--seed n] [--no-circom]
//
// Runs gen_vectors, feeds verify_foreign valid + tampered proofs, and (unless
// --no-circom) feeds circom_check every generated SMTVerifier input plus
// known-bad ones. Prints "N passed, N failed"; exit 1 on any failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { R } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const seed = args.includes('--seed') ? args[args.indexOf('--seed') + 1] : '1';
const withCircom = !args.includes('--no-circom');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smt-oracle-'));

let passed = 0;
let failed = 0;
function expect(cond, msg) {
  if (cond) passed++;
  else {
    failed++;
    console.error(`FAIL: ${msg}`);
  }
}

function run(script, argv) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(here, script), ...argv], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.error(`[${script} ${secs}s] ${(r.stderr || '').trim().split('\n').slice(-3).join(' / ')}`);
  return r;
}
const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const writeJson = (p, o) => fs.writeFileSync(p, JSON.stringify(o));

// ---------------------------------------------------------------- gen
const vecPath = path.join(tmp, 'vectors.json');
const g = run('gen_vectors.mjs', ['--seed', seed, '--out', vecPath]);
expect(g.status === 0, `gen_vectors exit ${g.status}`);
const vec = readJson(vecPath);
expect(vec.js_verify_self === vec.proof_count && vec.proof_count > 150, 'js_verify_self == proof_count');
for (let n = 1; n <= 16; n++) expect(vec.poseidon.filter((p) => p.inputs.length === n).length >= 4, `poseidon n=${n} vectors`);
for (const t of vec.trees) {
  expect(t.root === t.circomlibjs_root, `${t.name}: circomlibjs root`);
  expect(t.roots.length === t.ops.length && (t.ops.length === 0 || t.roots.at(-1) === t.root), `${t.name}: roots per op`);
  expect(t.proofs.some((p) => p.key === '0'), `${t.name}: key 0 proof`);
}
expect(vec.trees.find((t) => t.name === 'empty').root === '0', 'empty tree root 0');
expect(vec.trees.find((t) => t.name === 'delete_all').root === '0', 'delete_all root 0');
const allProofs = vec.trees.flatMap((t) => t.proofs.map((p) => ({ t, p })));
expect(allProofs.some(({ p }) => p.node_aux) && allProofs.some(({ p }) => !p.existence && !p.node_aux), 'both exclusion kinds present');
expect(allProofs.some(({ t, p }) => p.siblings.length === t.max_levels - 1), 'a proof at maximum depth');

// ---------------------------------------------------------------- verify_foreign
const cases = [];
const want = {}; // id -> {json_ok, bytes_ok, ...}
function add(id, c, expectation) {
  cases.push({ id, ...c });
  want[id] = expectation;
}
const flipHexByte = (hex, byteIdx, mask = 1) => {
  const b = Buffer.from(hex, 'hex');
  b[byteIdx] ^= mask;
  return b.toString('hex');
};
allProofs.forEach(({ t, p }, i) => {
  add(`ok:${t.name}:${i}`, { root: t.root, key: p.key, value: p.value, json: p.json, bytes_hex: p.bytes_hex }, {
    json_ok: true, bytes_ok: true, bytes_lenient_ok: true, json_canonical: true
  });
});
const inc = allProofs.find(({ p }) => p.existence && p.siblings.filter((s) => s !== '0').length >= 3);
const aux = allProofs.find(({ p }) => p.node_aux && p.siblings.length >= 2);
const emp = allProofs.find(({ p }) => !p.existence && !p.node_aux && p.siblings.length >= 2);
const base = ({ t, p }) => ({ root: t.root, key: p.key, value: p.value, json: p.json, bytes_hex: p.bytes_hex });
const F = { json_ok: false, bytes_ok: false };
{
  const c = base(inc);
  add('bad:wrong_value', { ...c, value: ((BigInt(c.value) + 1n) % R).toString() }, F);
  add('bad:wrong_root', { ...c, root: ((BigInt(c.root) + 1n) % R).toString() }, F);
  add('bad:wrong_key', { ...c, key: (BigInt(c.key) ^ 1n).toString() }, F);
  const si = inc.p.siblings.findIndex((s) => s !== '0');
  const js = structuredClone(c.json);
  js.siblings[si] = ((BigInt(js.siblings[si]) + 1n) % R).toString();
  add('bad:json_sibling', { ...c, json: js, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
  add('bad:bytes_sibling', { ...c, json: undefined, bytes_hex: flipHexByte(c.bytes_hex, 32) }, { json_ok: null, bytes_ok: false });
  add('bad:existence_flag', { ...c, json: { ...c.json, existence: false }, bytes_hex: flipHexByte(c.bytes_hex, 0, 1) }, F);
  add('bad:truncated', { ...c, json: undefined, bytes_hex: c.bytes_hex.slice(0, -2) }, { json_ok: null, bytes_ok: false, bytes_lenient_ok: false });
  add('bad:trailing_bytes', { ...c, json: undefined, bytes_hex: c.bytes_hex + '00' }, { json_ok: null, bytes_ok: false, bytes_lenient_ok: true });
  add('bad:hex', { ...c, json: undefined, bytes_hex: 'zz' }, { json_ok: null, bytes_ok: false });
  add('bad:short', { ...c, json: undefined, bytes_hex: '00' }, { json_ok: null, bytes_ok: false });
  add('bad:no_siblings_field', { ...c, json: { existence: true }, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
  add('bad:root_text', { ...c, root: 'xyz' }, F);
  add('bad:key_ge_r', { ...c, key: R.toString() }, F);
  add('bad:claim_absent', { ...c, json: { existence: false, siblings: c.json.siblings }, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
  // js-merkletree quirk pinned: trailing "0" siblings are dropped by fromJSON.
  add('quirk:json_trailing_zero', { ...c, json: { ...c.json, siblings: [...c.json.siblings, '0'] }, bytes_hex: undefined }, {
    json_ok: true, json_canonical: false, bytes_ok: null
  });
  add('only_json', { ...c, bytes_hex: undefined }, { json_ok: true, bytes_ok: null });
  add('only_bytes', { ...c, json: undefined }, { json_ok: null, bytes_ok: true });
  add('neither', { ...c, json: undefined, bytes_hex: undefined }, { json_ok: null, bytes_ok: null });
}
{
  const c = base(aux);
  const js = structuredClone(c.json);
  js.node_aux.value = ((BigInt(js.node_aux.value) + 1n) % R).toString();
  add('bad:aux_value', { ...c, json: js, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
  const js2 = structuredClone(c.json);
  js2.node_aux.key = c.key;
  add('bad:aux_key_eq_key', { ...c, json: js2, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
  const js3 = structuredClone(c.json);
  delete js3.node_aux;
  add('bad:aux_dropped', { ...c, json: js3, bytes_hex: flipHexByte(c.bytes_hex, 0, 2) }, { json_ok: false, bytes_ok: false });
  add('ok:aux_with_value', { ...c, value: '12345' }, { json_ok: true, bytes_ok: true }); // value ignored for exclusion
}
{
  const c = base(emp);
  const si = emp.p.siblings.findIndex((s) => s !== '0');
  const js = structuredClone(c.json);
  js.siblings[si] = '1';
  add('bad:empty_sibling', { ...c, json: js, bytes_hex: undefined }, { json_ok: false, bytes_ok: null });
}
cases.push(null); // must not crash
want['null-case'] = null;
const vfIn = path.join(tmp, 'vf_in.json');
const vfOut = path.join(tmp, 'vf_out.json');
writeJson(vfIn, { cases });
const v = run('verify_foreign.mjs', [vfIn, vfOut]);
expect(v.status === 0, `verify_foreign exit ${v.status}`);
const results = readJson(vfOut).results;
expect(results.length === cases.length, 'verify_foreign result count');
for (const r of results) {
  if (r.id === null) {
    expect(r.json_ok !== true && r.bytes_ok !== true, 'null case not accepted');
    continue;
  }
  const w = want[r.id];
  for (const [k, val] of Object.entries(w)) {
    expect(r[k] === val, `verify_foreign ${r.id}: ${k}=${r[k]} want ${val} ${r.error ?? ''}`);
  }
  if (w.json_ok === false || w.bytes_ok === false) void 0;
}

// ---------------------------------------------------------------- circom
if (withCircom) {
  const byN = new Map();
  for (const { t, p } of allProofs) {
    if (!byN.has(t.max_levels)) byN.set(t.max_levels, []);
    byN.get(t.max_levels).push({ id: `ok:${t.name}:${p.key}`, input: p.circom, expect: true });
  }
  const N = inc.t.max_levels;
  const list = byN.get(N);
  const bad = (id, input) => list.push({ id, input, expect: false });
  const ci = inc.p.circom;
  const si = ci.siblings.findIndex((s) => s !== '0');
  const sib = [...ci.siblings];
  sib[si] = ((BigInt(sib[si]) + 1n) % R).toString();
  bad('bad:tampered_sibling', { ...ci, siblings: sib });
  bad('bad:wrong_value', { ...ci, value: ((BigInt(ci.value) + 1n) % R).toString() });
  bad('bad:wrong_root', { ...ci, root: ((BigInt(ci.root) + 1n) % R).toString() });
  bad('bad:present_key_as_excluded', { ...ci, fnc: '1', oldKey: ci.key, oldValue: ci.value, value: '0' });
  const lastSib = [...ci.siblings];
  lastSib[lastSib.length - 1] = '5';
  bad('bad:last_sibling_nonzero', { ...ci, siblings: lastSib });
  list.push({ id: 'ok:disabled_garbage', input: { ...ci, enabled: '0', root: '7' }, expect: true });
  for (const { t, p } of allProofs.filter(({ p }) => !p.existence && !p.node_aux)) {
    // The js-merkletree convention (isOld0 = 0 at an empty slot) must be rejected.
    byN.get(t.max_levels).push({ id: `bad:isOld0_0:${t.name}:${p.key}`, input: { ...p.circom, isOld0: '0' }, expect: false });
  }
  for (const { t, p } of allProofs.filter(({ p }) => p.node_aux).slice(0, 5)) {
    byN.get(t.max_levels).push({ id: `bad:aux_isOld0_1:${t.name}:${p.key}`, input: { ...p.circom, isOld0: '1', oldKey: '0', oldValue: '0' }, expect: false });
  }
  // Every N with the default engine; the smallest N also through snarkjs.
  const runs = [...byN.keys()].map((n) => [n, 'wc']);
  runs.push([Math.min(...byN.keys()), 'snarkjs']);
  for (const [n, engine] of runs) {
    const cs = byN.get(n);
    const inP = path.join(tmp, `cc_${n}.json`);
    const outP = path.join(tmp, `cc_${n}_${engine}_out.json`);
    writeJson(inP, { n_levels: n, cases: cs.map(({ id, input }) => ({ id, input })) });
    const r = run('circom_check.mjs', [inP, outP, '--engine', engine]);
    expect(r.status === 0, `circom_check N=${n} ${engine} exit ${r.status}`);
    const out = readJson(outP);
    expect(out.results.length === cs.length, `circom N=${n} ${engine} result count`);
    const exp = new Map(cs.map((c) => [c.id, c.expect]));
    for (const res of out.results) {
      expect(res.accepted === exp.get(res.id), `circom N=${n} ${engine} ${res.id}: accepted=${res.accepted} ${res.error ?? ''}`);
    }
  }
}

fs.rmSync(tmp, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
