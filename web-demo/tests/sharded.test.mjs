// The dashboard of a single node whose store is cut into shards that split
// while it serves (--shards 2, --split-above-keys 3): the placement panel
// shows the cut growing as keys are written through the UI, and every
// answer is verified in the browser against the global root.
// Screenshot: web-demo/test-artifacts/sharded.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { artifacts, dashboardDir, launchBrowser, nodeBin, openDashboard, putThroughUi, startProcess } from './support.mjs';

let node;
let browser;
let url;
const scratch = mkdtempSync(path.join(tmpdir(), 'rustorium-sharded-dashboard-'));

before(async () => {
  assert.ok(existsSync(nodeBin), `build it first: ${nodeBin} is missing`);
  mkdirSync(artifacts, { recursive: true });
  const started = startProcess(
    nodeBin,
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(scratch, 'db'), '--shards', '2', '--split-above-keys', '3',
      '--reshard-interval-ms', '200', '--dashboard-dir', dashboardDir],
    /listening on (http:\/\/[0-9.:]+)/,
  );
  node = started.child;
  url = await started.found;
  browser = await launchBrowser(path.join(scratch, 'profile'));
});

after(async () => {
  await browser?.close();
  node?.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

test('the cut grows in the placement panel while writes verify', async () => {
  const errors = [];
  const page = await openDashboard(browser, url, { width: 1280, height: 900 }, errors);
  assert.equal(await page.textContent('[data-info="role"]'), 'sharded');
  assert.equal(await page.$$eval('#placement td[data-col="shard"]', (tds) => tds.length), 2);
  const headers = await page.$$eval('#placement th', (ths) => ths.map((th) => th.textContent));
  assert.deepEqual(headers, ['shard', 'version', 'keys', 'writes']);

  const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
  for (const key of keys) {
    await putThroughUi(page, key);
    assert.equal(await page.getAttribute('#badge', 'data-verified'), 'true');
  }
  // 10 keys over shards that split above 3 keys: the cut grows.
  await page.waitForFunction(
    () => document.querySelectorAll('#placement td[data-col="shard"]').length > 2,
    null,
    { timeout: 30_000 },
  );
  assert.match(await page.textContent('#placement .summary'), /[1-9]\d* split\(s\)/);
  await page.fill('#key', 'charlie');
  await page.click('#get');
  await page.waitForFunction(() => document.getElementById('result').textContent.includes('charlie = charlie-value'));
  assert.equal(await page.getAttribute('#badge', 'data-verified'), 'true');
  await page.waitForFunction(() => Number(document.getElementById('root-version').textContent) >= 10);
  // The placement panel polls on its own timer, so it can lag the root.
  await page.waitForFunction(
    (expected) =>
      [...document.querySelectorAll('#placement td[data-col="keys"]')].reduce((n, td) => n + Number(td.textContent), 0) === expected,
    keys.length,
    { timeout: 30_000 },
  );
  const total = await page.$$eval('#placement td[data-col="keys"]', (tds) => tds.reduce((n, td) => n + Number(td.textContent), 0));
  assert.equal(total, keys.length);
  await page.screenshot({ path: path.join(artifacts, 'sharded.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no console errors');
});
