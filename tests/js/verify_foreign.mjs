#!/usr/bin/env node
// Verify proofs produced by another implementation with @iden3/js-merkletree.
//
//   node tests/js/verify_foreign.mjs <in.json> <out.json>
//
// in:  {"cases":[{"id","root","key","value"|null,"json"?,"bytes_hex"?}]}
// out: {"results":[{"id","json_ok","bytes_ok","bytes_lenient_ok","json_canonical",
//                   "json_root"?,"bytes_root"?,"error"?}]}
// *_ok is null when that form is absent; any parse/verify exception is false
// plus an error text. A bad case never aborts the run.
import fs from 'node:fs';
import { Hash, Proof, verifyProof, rootFromProof } from '@iden3/js-merkletree';
import { parseDec, fromHex, decodeProofBytes } from './lib.mjs';

const errText = (e) => (e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e) ?? String(e));

async function verifyOne(proof, rootHash, k, v) {
  const ok = await verifyProof(rootHash, proof, k, v);
  let computed = null;
  try {
    computed = (await rootFromProof(proof, k, v)).string();
  } catch {
    computed = null;
  }
  return { ok, computed };
}

async function runCase(c) {
  const res = { id: c?.id ?? null, json_ok: null, bytes_ok: null, bytes_lenient_ok: null, json_canonical: null };
  const errors = [];
  const hasJson = c && Object.prototype.hasOwnProperty.call(c, 'json') && c.json !== undefined && c.json !== null;
  const hasBytes = c && typeof c.bytes_hex === 'string';
  if (c && c.bytes_hex !== undefined && c.bytes_hex !== null && typeof c.bytes_hex !== 'string') {
    res.bytes_ok = false;
    errors.push('bytes_hex: not a string');
  }

  let rootHash, k, v;
  try {
    if (!c || typeof c !== 'object') throw new Error('case is not an object');
    rootHash = Hash.fromBigInt(parseDec(c.root, 'root'));
    k = parseDec(c.key, 'key');
    v = c.value === null || c.value === undefined ? 0n : parseDec(c.value, 'value');
  } catch (e) {
    const msg = `bad case inputs: ${errText(e)}`;
    if (hasJson) res.json_ok = false;
    if (hasBytes) {
      res.bytes_ok = false;
      res.bytes_lenient_ok = false;
    }
    res.error = msg;
    return res;
  }

  if (hasJson) {
    try {
      const p = Proof.fromJSON(c.json);
      try {
        res.json_canonical = JSON.stringify(JSON.parse(JSON.stringify(p.toJSON()))) === JSON.stringify(c.json);
      } catch {
        res.json_canonical = false;
      }
      const { ok, computed } = await verifyOne(p, rootHash, k, v);
      res.json_ok = ok;
      if (computed !== null) res.json_root = computed;
    } catch (e) {
      res.json_ok = false;
      errors.push(`json: ${errText(e)}`);
    }
  }

  if (hasBytes) {
    let bs = null;
    try {
      bs = fromHex(c.bytes_hex);
    } catch (e) {
      res.bytes_ok = false;
      res.bytes_lenient_ok = false;
      errors.push(`bytes: ${errText(e)}`);
    }
    if (bs) {
      try {
        const p = decodeProofBytes(bs, 'strict');
        const { ok, computed } = await verifyOne(p, rootHash, k, v);
        res.bytes_ok = ok;
        if (computed !== null) res.bytes_root = computed;
      } catch (e) {
        res.bytes_ok = false;
        errors.push(`bytes: ${errText(e)}`);
      }
      try {
        const p = decodeProofBytes(bs, 'lenient');
        res.bytes_lenient_ok = (await verifyOne(p, rootHash, k, v)).ok;
      } catch (e) {
        res.bytes_lenient_ok = false;
        if (res.bytes_ok !== false) errors.push(`bytes(lenient): ${errText(e)}`);
      }
    }
  }
  if (errors.length) res.error = errors.join('; ');
  return res;
}

async function main() {
  const [inPath, outPath] = process.argv.slice(2);
  if (!inPath || !outPath) {
    console.error('usage: node verify_foreign.mjs <in.json> <out.json>');
    process.exit(2);
  }
  const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
  const cases = Array.isArray(input?.cases) ? input.cases : null;
  if (!cases) {
    console.error('input must be {"cases":[...]}');
    process.exit(2);
  }
  const results = [];
  for (const c of cases) {
    try {
      results.push(await runCase(c));
    } catch (e) {
      results.push({ id: c?.id ?? null, json_ok: null, bytes_ok: null, error: `internal: ${errText(e)}` });
    }
  }
  fs.writeFileSync(outPath, JSON.stringify({ results }, null, 1) + '\n');
  const n = (f) => results.filter(f).length;
  console.error(
    `${results.length} cases: json ok ${n((r) => r.json_ok === true)}/${n((r) => r.json_ok !== null)}, ` +
      `bytes ok ${n((r) => r.bytes_ok === true)}/${n((r) => r.bytes_ok !== null)}`
  );
  process.exit(0);
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exit(2);
});
