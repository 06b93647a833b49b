// A proof of the shape a 1M-key tree gives (21 siblings, the expected depth
// of a random key among 2^20), built with the package's own poseidon: the
// leaf hash(key, value, 1), then one middle hash per level up to the root.
export function syntheticProof(poseidon, depth = 21, seed = 1n) {
  let x = seed;
  const next = () => {
    // A linear congruential step, kept below 2^250 (well below the field modulus).
    x = (x * 6364136223846793005n + 1442695040888963407n) % (1n << 250n);
    return x + 1n;
  };
  const key = next();
  const value = next();
  const siblings = Array.from({ length: depth }, next);
  let node = poseidon([key, value, 1n]);
  for (let i = depth - 1; i >= 0; i--) {
    node = (key >> BigInt(i)) & 1n ? poseidon([siblings[i], node]) : poseidon([node, siblings[i]]);
  }
  return {
    root: node.toString(),
    key: key.toString(),
    value: value.toString(),
    proof: { existence: true, siblings: siblings.map(String) },
  };
}

/** Median and minimum microseconds per call of `fn` over `rounds` rounds. */
export function time(fn, { rounds = 15, perRound = 40 } = {}) {
  const now = globalThis.performance.now.bind(globalThis.performance);
  for (let i = 0; i < perRound; i++) fn(); // warm-up
  const samples = [];
  for (let r = 0; r < rounds; r++) {
    const start = now();
    for (let i = 0; i < perRound; i++) fn();
    samples.push(((now() - start) * 1000) / perRound);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], min: samples[0] };
}

/** Runs the benchmark with the package's exports; returns the numbers. */
export function run({ verifyProof, poseidon }) {
  const p = syntheticProof(poseidon);
  const verify = () => verifyProof(p.root, p.key, p.value, p.proof, { maxLevels: 64 });
  if (verify() !== true) throw new Error('synthetic proof does not verify');
  const hash2 = time(() => poseidon([p.key, p.value]), { perRound: 200 });
  const verifyTime = time(verify);
  return { depth: p.proof.siblings.length, verifyMicros: verifyTime, poseidon2Micros: hash2 };
}
