// The package against a fake gRPC-web server (node:http) that lies: proofs
// made by @iden3/js-merkletree, then tampered. Every lie must end in
// VerificationError (or RpcError for a broken transport) and no result.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Merkletree, InMemoryDB, str2Bytes } from '@iden3/js-merkletree';
import { RustoriumClient, VerificationError, RpcError } from '@rustorium/client';
import { R, fe, pb, grpcWebBody, readFramedRequest, until } from './helpers.mjs';

const LEVELS = 40;
const KEY_MODE_FIELD = 2;

/** The iden3 JSON proof as the protobuf `Proof` fields (without compact). */
function proofFields(json) {
  return [
    [1, json.existence],
    [2, json.siblings.map((s) => fe(BigInt(s)))],
    [3, json.node_aux ? pb([[1, fe(BigInt(json.node_aux.key))], [2, fe(BigInt(json.node_aux.value))]]) : undefined],
    [5, LEVELS],
  ];
}

describe('a lying server', () => {
  let server;
  let url;
  let mt;
  let root;
  /** How the server answers the next Get, Put or WatchRoots: set per test. */
  let lie = {};

  const entries = new Map();
  before(async () => {
    mt = new Merkletree(new InMemoryDB(str2Bytes('fake')), true, LEVELS);
    for (let i = 1n; i <= 64n; i++) {
      const key = (i * 0x9e3779b97f4a7c15n) % (1n << 64n);
      entries.set(key, i * 1000n);
      await mt.add(key, i * 1000n);
    }
    root = (await mt.root()).bigInt();

    server = http.createServer(async (req, res) => {
      try {
        const message = await readFramedRequest(req);
        const method = req.url.split('/').pop();
        const send = (body, headers = {}) => {
          res.writeHead(lie.httpStatus ?? 200, { 'content-type': 'application/grpc-web+proto', ...headers });
          res.end(body);
        };
        if (lie.trailersOnly) {
          return send(Buffer.alloc(0), { 'grpc-status': '16', 'grpc-message': 'no%20token' });
        }
        if (method === 'GetRoot') {
          return send(grpcWebBody([pb([[1, fe(root)], [2, 5], [4, LEVELS], [5, KEY_MODE_FIELD]])]));
        }
        if (method === 'Get') {
          // GetRequest: field 1 is the 32-byte key (tag 0x0a, length 0x20).
          const key = BigInt('0x' + Buffer.from(message.subarray(2, 34)).reverse().toString('hex'));
          const { proof } = await mt.generateProof(key);
          const json = proof.toJSON();
          let value = entries.has(key) ? entries.get(key) : null;
          let found = value !== null;
          let answerRoot = root;
          (lie.get ?? (() => {}))(json, { set: (v) => (value = v), setFound: (f) => (found = f), setRoot: (r) => (answerRoot = r) });
          const response = pb([
            [1, found],
            [2, found && value !== null ? fe(value) : undefined],
            [3, pb(proofFields(json))],
            [4, fe(answerRoot)],
            [5, 5],
          ]);
          if (lie.noTrailers) return send(Buffer.from(grpcWebBody([response])).subarray(0, 5 + response.length));
          return send(grpcWebBody([response], lie.status ?? 0, lie.status ? 'version not held' : ''));
        }
        if (method === 'WatchRoots') {
          const events = lie.versions.map((v) => pb([[1, v], [2, fe(BigInt(v) + 7n)], [3, 1], [4, 1]]));
          return send(grpcWebBody(events));
        }
        return send(grpcWebBody([], 12, 'unimplemented'));
      } catch (e) {
        res.writeHead(500);
        res.end(String(e));
      }
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const someKey = () => [...entries.keys()][17];
  const absentKey = 123456789n;

  test('honest answers verify', async () => {
    lie = {};
    const client = await RustoriumClient.connect(url, { maxLevels: LEVELS, keyMode: 'field' });
    const got = await client.get(someKey());
    assert.equal(got.found, true);
    assert.equal(got.root, root.toString());
    const absent = await client.get(absentKey);
    assert.equal(absent.found, false);
  });

  test('a tampered sibling at any depth is refused', async () => {
    const client = await RustoriumClient.connect(url);
    const { proof } = await mt.generateProof(someKey());
    const depth = proof.toJSON().siblings.length;
    assert.ok(depth >= 4);
    for (let i = 0; i < depth; i++) {
      lie = { get: (json) => (json.siblings[i] = ((BigInt(json.siblings[i]) + 1n) % R).toString()) };
      await assert.rejects(client.get(someKey()), (e) => {
        assert.ok(e instanceof VerificationError, `sibling ${i}: ${e}`);
        assert.ok(e instanceof Error);
        assert.equal(e.name, 'VerificationError');
        assert.match(e.reason, /root|empty/);
        return true;
      });
    }
  });

  test('every other lie is refused', async () => {
    const client = await RustoriumClient.connect(url);
    const lies = {
      'wrong value': { get: (_json, r) => r.set(1n) },
      'present key claimed absent': { get: (_json, r) => (r.setFound(false), r.set(null)) },
      'another tree root': { get: (_json, r) => r.setRoot(root + 1n) },
      'absence proof for a present key': {
        get: (json) => {
          json.existence = false;
        },
      },
      'sibling not below r': { get: (json) => (json.siblings[0] = R.toString()) },
      'sibling dropped': { get: (json) => json.siblings.pop() },
      'extra zero sibling': { get: (json) => json.siblings.push('0') },
      'aux leaf in a membership proof': { get: (json) => (json.node_aux = { key: '1', value: '2' }) },
    };
    for (const [name, how] of Object.entries(lies)) {
      lie = how;
      await assert.rejects(client.get(someKey()), VerificationError, name);
    }
    lie = { get: (json) => (json.node_aux = { key: absentKey.toString(), value: '5' }) };
    await assert.rejects(client.get(absentKey), VerificationError, 'aux leaf with the key itself');
  });

  test('transport failures are RpcError', async () => {
    const client = await RustoriumClient.connect(url);
    lie = { status: 11 };
    await assert.rejects(client.get(someKey()), (e) => e instanceof RpcError && e.code === 11 && e.details === 'version not held');
    lie = { trailersOnly: true };
    await assert.rejects(client.get(someKey()), (e) => e instanceof RpcError && e.code === 16 && e.details === 'no token');
    lie = { httpStatus: 503 };
    await assert.rejects(client.get(someKey()), (e) => e instanceof RpcError && e.code === 14);
    lie = { noTrailers: true };
    await assert.rejects(client.get(someKey()), (e) => e instanceof RpcError && e.code === 14);
    lie = {};
  });

  test('a root stream going backwards is refused', async () => {
    const client = await RustoriumClient.connect(url);
    const watch = async (versions) => {
      lie = { versions };
      const seen = [];
      const w = client.watchRoots((e) => seen.push(e.version));
      let error = null;
      await w.done.catch((e) => (error = e));
      return { seen, error };
    };
    const ok = await watch([5, 6, 7]);
    assert.deepEqual(ok.seen, [5, 6, 7]);
    assert.equal(ok.error, null);
    const back = await watch([5, 6, 4, 7]);
    assert.deepEqual(back.seen, [5, 6]);
    assert.ok(back.error instanceof VerificationError);
    assert.match(back.error.reason, /backwards: version 4 after version 6/);
    const repeat = await watch([5, 5]);
    assert.ok(repeat.error instanceof VerificationError);
    const gap = await watch([5, 9]);
    assert.match(gap.error.reason, /skipped/);
    // Only the callback, no one awaiting `done`: no unhandled rejection.
    lie = { versions: [3, 2] };
    const seen = [];
    client.watchRoots((e) => seen.push(e.version));
    await until(() => seen.length === 1, 'the first event');
    await new Promise((r) => setTimeout(r, 50));
    lie = {};
  });
});
