#!/usr/bin/env node
// Times N random inserts into @iden3/js-merkletree (in-memory DB, 64 levels)
// and prints inserts per second: the comparison point for the store benchmark.
import { InMemoryDB, Merkletree, str2Bytes } from '@iden3/js-merkletree';

const n = Number(process.argv[2] ?? 20000);
const tree = new Merkletree(new InMemoryDB(str2Bytes('')), true, 64);
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
let x = 0x9e3779b97f4a7c15n;
const next = () => {
  x = (x * 6364136223846793005n + 1442695040888963407n) % (1n << 253n);
  return x % R;
};
const started = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  await tree.add(next(), next());
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log((n / seconds).toFixed(0));
