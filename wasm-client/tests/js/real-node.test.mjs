// The built package against a real rustorium-node process (gRPC-web over
// HTTP/1.1): every answer comes back verified.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  RustoriumClient,
  VerificationError,
  RpcError,
  verifyProof,
  toCircomInputs,
  keyToField,
} from '@rustorium/client';
import { startNode, fe, fromLe, until } from './helpers.mjs';

const text = (bytes) => new TextDecoder().decode(bytes);

describe('bytes-mode node', () => {
  let node;
  let client;
  before(async () => {
    node = await startNode();
    client = await RustoriumClient.connect(node.url);
  });
  after(() => node?.stop());

  test('connect reads the store parameters', async () => {
    assert.equal(client.keyMode, 'bytes');
    assert.ok(client.maxLevels >= 2 && client.maxLevels <= 255);
    const root = await client.root();
    assert.equal(root.version, 0);
    assert.equal(root.root, '0');
    assert.equal(root.keyMode, 'bytes');
    assert.equal(root.maxLevels, client.maxLevels);
  });

  test('put, get, delete, each proof verified', async () => {
    const put = await client.put('alice', '42');
    assert.equal(put.version, 1);
    assert.equal(put.proof.existence, true);
    assert.equal(text(put.value), '42');
    assert.equal(typeof put.timestamp, 'bigint');

    const got = await client.get('alice');
    assert.equal(got.found, true);
    assert.equal(text(got.value), '42');
    assert.equal(got.root, put.root);
    assert.equal(got.version, 1);
    // The returned proof re-verifies standalone, and the key hashes as keyToField says.
    const opts = { keyMode: 'bytes', maxLevels: client.maxLevels };
    assert.equal(verifyProof(got.root, got.key, got.value, got.proof, opts), true);
    assert.equal(verifyProof(got.root, keyToField('alice'), keyToField('42'), got.proof, { maxLevels: client.maxLevels }), true);
    assert.throws(() => verifyProof(got.root, 'alice', '43', got.proof, opts), VerificationError);

    await client.put(new Uint8Array([0, 1, 2, 255]), new Uint8Array(1000).fill(7));
    const binary = await client.get(new Uint8Array([0, 1, 2, 255]));
    assert.deepEqual(binary.value, new Uint8Array(1000).fill(7));

    const missing = await client.get('bob');
    assert.equal(missing.found, false);
    assert.equal(missing.value, null);
    assert.equal(missing.proof.existence, false);

    const deleted = await client.delete('alice');
    assert.equal(deleted.existed, true);
    assert.equal(deleted.proof.existence, false);
    assert.equal(deleted.version, 3);
    const gone = await client.get('alice');
    assert.equal(gone.found, false);
    assert.equal(gone.root, deleted.root);

    // History: the value at version 1 is still proven.
    const old = await client.get('alice', { atVersion: 1 });
    assert.equal(old.found, true);
    assert.equal(old.root, put.root);
  });

  test('putBatch verifies one proof per op, last op on a key wins', async () => {
    const batch = await client.putBatch([
      { key: 'k1', value: 'a' },
      { key: 'k2', value: 'b' },
      { key: 'k1', value: 'c' },
      { key: 'bob', delete: true },
    ]);
    assert.equal(batch.proofs.length, 4);
    assert.equal(batch.proofs[3].existence, false);
    const k1 = await client.get('k1');
    assert.equal(text(k1.value), 'c');
    assert.equal(k1.root, batch.root);
    await assert.rejects(client.putBatch([{ key: 'x' }]), TypeError);
  });

  test('watchRoots streams each new version in order', async () => {
    const events = [];
    const start = (await client.root()).version;
    const watch = client.watchRoots((e) => events.push(e));
    await until(() => events.length >= 1, 'the current version');
    const roots = [];
    for (let i = 0; i < 3; i++) roots.push((await client.put(`w${i}`, `${i}`)).root);
    await until(() => events.length >= 4, 'three new versions');
    watch.close();
    await watch.done;
    assert.deepEqual(
      events.map((e) => e.version),
      [start, start + 1, start + 2, start + 3],
    );
    assert.deepEqual(events.slice(1).map((e) => e.root), roots);
    assert.equal(events[1].opCount, 1);

    // Replay from an old version.
    const replay = [];
    const again = client.watchRoots((e) => replay.push(e.version), { fromVersion: 1 });
    await until(() => replay.length >= start + 3, 'the replayed history');
    again.close();
    await again.done;
    assert.deepEqual(replay.slice(0, 3), [1, 2, 3]);
  });

  test('a trusted root pins reads; another root is refused', async () => {
    const pinned = await client.get('k1');
    const reader = await RustoriumClient.connect(node.url, {
      trustedRoot: { root: pinned.root, version: pinned.version },
    });
    await client.put('k1', 'newer');
    const read = await reader.get('k1');
    assert.equal(text(read.value), 'c');
    assert.equal(read.version, pinned.version);

    const wrong = await RustoriumClient.connect(node.url, { trustedRoot: 12345n });
    await assert.rejects(wrong.get('k1'), (e) => e instanceof VerificationError && /trusted root/.test(e.reason));
    await assert.rejects(
      RustoriumClient.connect(node.url, { keyMode: 'field' }),
      (e) => e instanceof VerificationError && /key_mode/.test(e.reason),
    );
  });

  test('server errors are RpcError with the gRPC code', async () => {
    await assert.rejects(client.get('k1', { atVersion: 1_000_000 }), (e) => e instanceof RpcError && e.code === 11);
    await assert.rejects(
      RustoriumClient.connect('http://127.0.0.1:1'),
      (e) => e instanceof RpcError && e.code === 14,
    );
  });
});

describe('field-mode node with a token', () => {
  let node;
  before(async () => {
    node = await startNode(['--key-mode', 'field', '--max-levels', '32', '--auth-token', 's3cret']);
  });
  after(() => node?.stop());

  test('writes need the token; values are field elements', async () => {
    const anonymous = await RustoriumClient.connect(node.url);
    assert.equal(anonymous.keyMode, 'field');
    assert.equal(anonymous.maxLevels, 32);
    await assert.rejects(anonymous.put(5n, 10n), (e) => e instanceof RpcError && e.code === 16);

    const client = await RustoriumClient.connect(node.url, { token: 's3cret', maxLevels: 32 });
    await client.put(5n, 10n);
    await client.put('6', 12);
    const got = await client.get(5);
    assert.equal(fromLe(got.value), 10n);
    assert.deepEqual(got.key, fe(5n));
    assert.equal(verifyProof(got.root, 5n, 10n, got.proof, { maxLevels: 32 }), true);
    await assert.rejects(client.get(-1n), TypeError);

    const inputs = toCircomInputs(got, 32);
    assert.equal(inputs.fnc, '0');
    assert.equal(inputs.key, '5');
    assert.equal(inputs.value, '10');
    assert.equal(inputs.siblings.length, 32);
    const absent = await client.get(7n);
    const exclusion = toCircomInputs(absent, 32);
    assert.equal(exclusion.fnc, '1');
  });
});
