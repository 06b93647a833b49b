#!/usr/bin/env node
// Check SMTVerifier inputs against circomlib's real circuit.
//
//   node tests/js/circom_check.mjs <in.json> <out.json> [--engine wc|snarkjs]
//
// in:  {"n_levels": N, "cases":[{"id", "input": {enabled, root, siblings[N],
//        oldKey, oldValue, isOld0, key, value, fnc}}]}   ("nLevels" inside
//        input is allowed and ignored if it equals N)
// out: {"n_levels", "compile_s", "cached", "results":[{"id","accepted","error"?,"warning"?}]}
//
// circomlib/circuits/smt/smtverifier.circom SMTVerifier(N) is compiled with
// the circom2 npm package (circom 2 as WASM) into tests/js/.build/ (cached
// per N). Each case's witness is computed with the witness_calculator.js that
// circom generated (engine "wc", default, one instance reused while cases
// pass) or with snarkjs.wtns.calculate (engine "snarkjs", ~3x slower).
// accepted == the witness generator finished without an assert/constraint
// failure (circom compiles every === into a runtime assert).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { R } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const SIGNALS = ['enabled', 'root', 'siblings', 'oldKey', 'oldValue', 'isOld0', 'key', 'value', 'fnc'];

function pkgVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(here, 'node_modules', name, 'package.json'), 'utf8')).version;
}

// Compile (or reuse) SMTVerifier(N); returns {wasm, compile_s, cached}.
export function ensureCircuit(N) {
  if (!Number.isInteger(N) || N < 2 || N > 254) throw new Error(`n_levels must be an integer in [2, 254], got ${N}`);
  const stamp = `circom2@${pkgVersion('circom2')} circomlib@${pkgVersion('circomlib')} SMTVerifier(${N})\n`;
  const dir = path.join(here, '.build', `smtverifier_${N}`);
  const wasm = path.join(dir, 'main_js', 'main.wasm');
  const stampFile = path.join(dir, 'STAMP');
  if (
    fs.existsSync(wasm) &&
    fs.existsSync(path.join(dir, 'main_js', 'package.json')) &&
    fs.existsSync(stampFile) &&
    fs.readFileSync(stampFile, 'utf8') === stamp
  ) {
    return { wasm, compile_s: 0, cached: true };
  }
  // Build in a private temp dir, then move into place (safe against concurrent runs).
  const tmpRel = path.join('.build', `tmp_${N}_${process.pid}`);
  const tmp = path.join(here, tmpRel);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  fs.writeFileSync(
    path.join(tmp, 'main.circom'),
    `pragma circom 2.0.0;\ninclude "circomlib/circuits/smt/smtverifier.circom";\ncomponent main = SMTVerifier(${N});\n`
  );
  const cli = require.resolve('circom2/cli.js');
  const t0 = process.hrtime.bigint();
  // circom2 (WASI) only sees paths relative to cwd, so run from tests/js.
  const r = spawnSync(process.execPath, [cli, path.join(tmpRel, 'main.circom'), '--wasm', '-l', 'node_modules', '-o', tmpRel], {
    cwd: here,
    encoding: 'utf8',
    maxBuffer: 64 << 20
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const tmpWasm = path.join(tmp, 'main_js', 'main.wasm');
  if (r.status !== 0 || !fs.existsSync(tmpWasm)) {
    throw new Error(`circom2 compile failed (status ${r.status}): ${(r.stderr || '') + (r.stdout || '')}`.slice(0, 4000));
  }
  // The generated witness_calculator.js is CommonJS; our package is ESM.
  fs.writeFileSync(path.join(tmp, 'main_js', 'package.json'), '{"type":"commonjs"}\n');
  fs.writeFileSync(path.join(tmp, 'STAMP'), stamp);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return { wasm, compile_s: Math.round(secs * 100) / 100, cached: false };
}

const errText = (e) => {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n').slice(0, 3).join(' | ').slice(0, 500);
};

function prepareInput(raw, N) {
  if (!raw || typeof raw !== 'object') throw new Error('input is not an object');
  const inp = {};
  const warnings = [];
  for (const k of Object.keys(raw)) {
    if (k === 'nLevels') {
      if (Number(raw.nLevels) !== N) throw new Error(`input.nLevels ${raw.nLevels} != n_levels ${N}`);
      continue;
    }
    if (!SIGNALS.includes(k)) throw new Error(`unknown input signal ${k}`);
  }
  for (const k of SIGNALS) {
    if (!(k in raw)) throw new Error(`missing input signal ${k}`);
    inp[k] = raw[k];
  }
  if (!Array.isArray(inp.siblings) || inp.siblings.length !== N) {
    throw new Error(`siblings must be an array of length ${N}`);
  }
  // The witness generator silently reduces values mod r; flag that.
  const vals = SIGNALS.flatMap((k) => (k === 'siblings' ? inp.siblings : [inp[k]]));
  for (const v of vals) {
    let x;
    try {
      x = BigInt(v);
    } catch {
      throw new Error(`not an integer: ${JSON.stringify(v)}`);
    }
    if (x < 0n || x >= R) warnings.push(`value ${v} is not in [0, r): the witness generator reduces it mod r`);
  }
  return { inp, warnings };
}

// Witness engines: calc(input) resolves on success, throws on failure.
async function makeEngine(kind, wasmPath) {
  if (kind === 'snarkjs') {
    const snarkjs = await import('snarkjs');
    return { calc: (inp) => snarkjs.wtns.calculate(inp, wasmPath, { type: 'mem' }) };
  }
  if (kind !== 'wc') throw new Error(`unknown engine ${kind}`);
  const builder = require(path.join(path.dirname(wasmPath), 'witness_calculator.js'));
  const code = fs.readFileSync(wasmPath);
  let wc = null;
  return {
    async calc(inp) {
      if (!wc) wc = await builder(code);
      try {
        await wc.calculateWitness(inp, true);
      } catch (e) {
        wc = null; // fresh instance after any failure (its error text accumulates)
        throw e;
      }
    }
  };
}

async function main() {
  const argv = process.argv.slice(2);
  let engine = 'wc';
  const ei = argv.indexOf('--engine');
  if (ei >= 0) {
    engine = argv[ei + 1];
    argv.splice(ei, 2);
  }
  const [inPath, outPath] = argv;
  if (!inPath || !outPath) {
    console.error('usage: node circom_check.mjs <in.json> <out.json> [--engine wc|snarkjs]');
    process.exit(2);
  }
  const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
  const N = Number(input?.n_levels);
  if (!Array.isArray(input?.cases)) {
    console.error('input must be {"n_levels": N, "cases": [...]}');
    process.exit(2);
  }
  const t0 = Date.now();
  const { wasm, compile_s, cached } = ensureCircuit(N);
  const eng = await makeEngine(engine, wasm);
  const results = [];
  for (const c of input.cases) {
    const res = { id: c?.id ?? null, accepted: false };
    try {
      const { inp, warnings } = prepareInput(c?.input, N);
      if (warnings.length) res.warning = warnings.join('; ');
      // circom_runtime prints assert failures via console.log/error; keep
      // our stdout/stderr clean (the message is in the thrown error too).
      const { log, error } = console;
      console.log = () => {};
      console.error = () => {};
      try {
        await eng.calc(inp);
        res.accepted = true;
      } catch (e) {
        res.error = errText(e);
      } finally {
        console.log = log;
        console.error = error;
      }
    } catch (e) {
      res.error = `bad input: ${errText(e)}`;
    }
    results.push(res);
  }
  fs.writeFileSync(outPath, JSON.stringify({ n_levels: N, engine, compile_s, cached, results }, null, 1) + '\n');
  console.error(
    `SMTVerifier(${N}) ${cached ? 'cached' : `compiled in ${compile_s}s`}; ` +
      `${results.filter((r) => r.accepted).length}/${results.length} accepted; total ${((Date.now() - t0) / 1000).toFixed(1)}s`
  );
  process.exit(0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e?.stack ?? e);
    process.exit(2);
  });
}
