// The dashboard of a cluster node: two real nodes sharing the TiKV test
// server (tests/tikv-test-server) show every shard's owner, region and epoch
// in the placement panel; a key written through the UI of one node (and
// forwarded to its shard's owner when that is the other node) comes back
// with the "verified in your browser" badge against the global root.
// Screenshot: web-demo/test-artifacts/cluster.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  artifacts,
  dashboardDir,
  launchBrowser,
  nodeBin,
  openDashboard,
  putThroughUi,
  startProcess,
  tikvBin,
} from './support.mjs';

const children = [];
let browser;
const scratch = mkdtempSync(path.join(tmpdir(), 'rustorium-cluster-dashboard-'));

/** Spawns `bin` (stopped after the tests) and resolves with the first stdout match of `pattern`. */
function start(bin, args, pattern, stdin = 'ignore') {
  const { child, found } = startProcess(bin, args, pattern, stdin);
  children.push(child);
  return found;
}

function clusterNode(pd, id, region) {
  return start(
    nodeBin,
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(scratch, id), '--backend', 'tikv', '--pd-endpoints', pd,
      '--cluster-node-id', id, '--cluster-region', region, '--shard-count', '4', '--lease-ttl-ms', '1500', '--min-ownership-ms', '1000',
      '--dashboard-dir', dashboardDir],
    /listening on (http:\/\/[0-9.:]+)/,
  );
}

let urls;

before(async () => {
  for (const bin of [nodeBin, tikvBin]) assert.ok(existsSync(bin), `build it first: ${bin} is missing`);
  mkdirSync(artifacts, { recursive: true });
  // Its stdin is a pipe we hold: the test server serves until it closes.
  const pd = await start(tikvBin, [], /pd (\S+)/, 'pipe');
  urls = [await clusterNode(pd, 'node-a', 'eu'), await clusterNode(pd, 'node-b', 'us')];
  browser = await launchBrowser(path.join(scratch, 'profile'));
});

after(async () => {
  await browser?.close();
  for (const child of children.reverse()) child.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

test('placement panel and verified writes on a cluster node', async () => {
  const errors = [];
  const page = await openDashboard(browser, urls[0], { width: 1280, height: 900 }, errors);
  assert.equal(await page.textContent('[data-info="role"]'), 'cluster');

  // Both nodes joined and every shard has an owner (the panel refreshes;
  // node-b's share moves to it once node-a has held it for a second).
  await page.waitForFunction(
    () => {
      const owners = [...document.querySelectorAll('#placement td[data-col="owner"]')].map((td) => td.textContent);
      return owners.length === 4 && owners.every((o) => o === 'node-a' || o === 'node-b') && new Set(owners).size === 2;
    },
    null,
    { timeout: 30_000 },
  );
  const regions = await page.$$eval('#placement td[data-col="region"]', (tds) => tds.map((td) => td.textContent));
  assert.ok(regions.every((r) => r === 'eu' || r === 'us'), regions.join());
  const epochs = await page.$$eval('#placement td[data-col="epoch"]', (tds) => tds.map((td) => Number(td.textContent)));
  assert.ok(epochs.every((e) => e >= 1), epochs.join());
  assert.match(await page.textContent('#placement .summary'), /node node-a: 4 shards on 2 owner\(s\)/);

  // Writes through this node: some keys belong to node-b's shards and are
  // forwarded; every answer is verified here against the global root.
  for (const key of ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']) {
    await putThroughUi(page, key);
    assert.equal(await page.getAttribute('#badge', 'data-verified'), 'true');
  }
  await page.fill('#key', 'charlie');
  await page.click('#get');
  await page.waitForFunction(() => document.getElementById('result').textContent.includes('charlie = charlie-value'));
  assert.equal(await page.getAttribute('#badge', 'data-verified'), 'true');
  await page.waitForFunction(() => Number(document.getElementById('root-version').textContent) >= 6);
  await page.screenshot({ path: path.join(artifacts, 'cluster.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no console errors');
});
