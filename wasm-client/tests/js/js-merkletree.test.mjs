// Proofs made by @iden3/js-merkletree verify with the package in every form
// (js-merkletree Proof object, its JSON, JSON text, compact bytes), and any
// single change to a proof or to the statement is refused.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { Merkletree, InMemoryDB, str2Bytes, verifyProof as jsVerify, Hash } from '@iden3/js-merkletree';
import { verifyProof, toCircomInputs, VerificationError } from '@rustorium/client';
import { R } from './helpers.mjs';

const LEVELS = 48;

/** Deterministic pseudo-random field elements. */
function rng(seed) {
  let x = BigInt(seed);
  return (bits = 250) => {
    x = (x * 6364136223846793005n + 1442695040888963407n) % (1n << 256n);
    return (x >> 3n) % (1n << BigInt(bits));
  };
}

/** The cases: membership, non-membership ending at an aux leaf or an empty slot, empty tree. */
async function cases() {
  const next = rng(7);
  const mt = new Merkletree(new InMemoryDB(str2Bytes('oracle')), true, LEVELS);
  const empty = new Merkletree(new InMemoryDB(str2Bytes('empty')), true, LEVELS);
  const present = [];
  for (let i = 0; i < 120; i++) {
    const key = next(40); // short keys make deep shared prefixes likely
    const value = next();
    if (present.some(([k]) => k === key)) continue;
    await mt.add(key, value);
    present.push([key, value]);
  }
  const root = (await mt.root()).bigInt();
  const out = [];
  for (const [key, value] of present.slice(0, 25)) {
    out.push({ name: `member ${key}`, root, key, value, proof: (await mt.generateProof(key)).proof });
  }
  let aux = 0;
  let emptySlot = 0;
  for (let i = 0; (aux < 10 || emptySlot < 10) && i < 2000; i++) {
    const key = next(40);
    if (present.some(([k]) => k === key)) continue;
    const { proof } = await mt.generateProof(key);
    if (proof.nodeAux ? aux++ >= 10 : emptySlot++ >= 10) continue;
    out.push({ name: `absent ${key} (${proof.nodeAux ? 'aux leaf' : 'empty slot'})`, root, key, value: null, proof });
  }
  out.push({
    name: 'empty tree',
    root: 0n,
    key: 5n,
    value: null,
    proof: (await empty.generateProof(5n)).proof,
  });
  return out;
}

describe('@iden3/js-merkletree proofs', () => {
  let all;
  before(async () => {
    all = await cases();
  });

  test('verify in every form, as js-merkletree itself says', async () => {
    assert.ok(all.some((c) => c.proof.nodeAux) && all.some((c) => !c.proof.existence && !c.proof.nodeAux));
    for (const c of all) {
      assert.equal(await jsVerify(Hash.fromBigInt(c.root), c.proof, c.key, c.value ?? 0n), true, c.name);
      const json = c.proof.toJSON();
      for (const form of [c.proof, json, JSON.stringify(json), c.proof.bytes()]) {
        assert.equal(verifyProof(c.root, c.key, c.value, form, { maxLevels: LEVELS }), true, c.name);
      }
      // Decimal strings and bigints are the same statement.
      assert.equal(verifyProof(c.root.toString(), c.key.toString(), c.value?.toString() ?? null, json), true);
      const inputs = toCircomInputs({ root: c.root, key: c.key, value: c.value, proof: json }, LEVELS);
      assert.equal(inputs.fnc, c.value === null ? '1' : '0', c.name);
    }
  });

  test('any single change to the statement or the JSON proof is refused', async () => {
    let refused = 0;
    const refuse = (what, root, key, value, proof) => {
      assert.throws(
        () => verifyProof(root, key, value, proof, { maxLevels: LEVELS }),
        (e) => e instanceof VerificationError || e instanceof TypeError,
        what,
      );
      refused++;
    };
    for (const c of all) {
      const json = c.proof.toJSON();
      const copy = () => JSON.parse(JSON.stringify(json));
      refuse(`${c.name}: root + 1`, (c.root + 1n) % R, c.key, c.value, json);
      // key + 1 flips path bit 0, so it changes every statement but the empty tree's.
      if (json.siblings.length) refuse(`${c.name}: key + 1`, c.root, c.key + 1n, c.value, json);
      if (c.value !== null) {
        refuse(`${c.name}: value + 1`, c.root, c.key, (c.value + 1n) % R, json);
        refuse(`${c.name}: value claimed absent`, c.root, c.key, null, json);
      } else {
        refuse(`${c.name}: a value claimed`, c.root, c.key, 0n, json);
      }
      const flipped = copy();
      flipped.existence = !flipped.existence;
      refuse(`${c.name}: existence flipped`, c.root, c.key, c.value, flipped);
      for (let i = 0; i < json.siblings.length; i++) {
        const changed = copy();
        changed.siblings[i] = ((BigInt(changed.siblings[i]) + 1n) % R).toString();
        refuse(`${c.name}: sibling ${i} + 1`, c.root, c.key, c.value, changed);
      }
      const shorter = copy();
      shorter.siblings.pop();
      if (json.siblings.length) refuse(`${c.name}: last sibling dropped`, c.root, c.key, c.value, shorter);
      const longer = copy();
      longer.siblings.push('0');
      refuse(`${c.name}: zero sibling appended`, c.root, c.key, c.value, longer);
      if (json.node_aux) {
        for (const field of ['key', 'value']) {
          const changed = copy();
          changed.node_aux[field] = ((BigInt(changed.node_aux[field]) + 1n) % R).toString();
          refuse(`${c.name}: aux ${field} + 1`, c.root, c.key, c.value, changed);
        }
        const dropped = copy();
        delete dropped.node_aux;
        refuse(`${c.name}: aux dropped`, c.root, c.key, c.value, dropped);
      } else {
        const added = copy();
        added.node_aux = { key: '1', value: '1' };
        refuse(`${c.name}: aux added`, c.root, c.key, c.value, added);
      }
    }
    assert.ok(refused > 500, `${refused} changes refused`);
  });

  test('any single bit flip of the compact bytes is refused', () => {
    let flips = 0;
    // Every bit of the deepest proof of each kind (each flip costs a verification).
    const deepest = (pick) => all.filter(pick).sort((a, b) => b.proof.bytes().length - a.proof.bytes().length)[0];
    const kinds = [(c) => c.proof.existence, (c) => c.proof.nodeAux, (c) => !c.proof.existence && !c.proof.nodeAux];
    for (const c of kinds.map(deepest)) {
      const bytes = c.proof.bytes();
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const changed = Uint8Array.from(bytes);
        changed[bit >> 3] ^= 1 << (bit & 7);
        assert.throws(
          () => verifyProof(c.root, c.key, c.value, changed, { maxLevels: LEVELS }),
          VerificationError,
          `${c.name}: bit ${bit}`,
        );
        flips++;
      }
    }
    assert.ok(flips > 5_000, `${flips} flips refused`);
  });
});
