// The dashboard of a single node whose store is cut into shards that split
// while it serves (--shards 2, --split-above-keys 3): the placement panel
// shows the cut growing as keys are written through the UI, and every
// answer is verified in the browser against the global root.
// Screenshot: web-demo/test-artifacts/sharded.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = path.join(root, 'web-demo/test-artifacts');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
const nodeBin = process.env.RUSTORIUM_NODE_BIN ?? path.join(targetDir, 'debug/rustorium-node');

let node;
let browser;
let url;
const scratch = mkdtempSync(path.join(tmpdir(), 'rustorium-sharded-dashboard-'));

before(async () => {
  assert.ok(existsSync(nodeBin), `build it first: ${nodeBin} is missing`);
  mkdirSync(artifacts, { recursive: true });
  node = spawn(
    nodeBin,
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(scratch, 'db'), '--shards', '2', '--split-above-keys', '3',
      '--reshard-interval-ms', '200', '--dashboard-dir', path.join(root, 'web-demo/dist')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  url = await new Promise((resolve, reject) => {
    let buffer = '';
    node.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = buffer.match(/listening on (http:\/\/[0-9.:]+)/);
      if (match) resolve(match[1]);
    });
    node.on('exit', (code) => reject(new Error(`rustorium-node exited early with ${code}`)));
    setTimeout(() => reject(new Error('rustorium-node did not start in 30 s')), 30_000).unref();
  });
  browser = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  node?.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

test('the cut grows in the placement panel while writes verify', async () => {
  const errors = [];
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url + '/');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  assert.equal(await page.textContent('[data-info="role"]'), 'sharded');
  assert.equal(await page.$$eval('#placement td[data-col="shard"]', (tds) => tds.length), 2);
  const headers = await page.$$eval('#placement th', (ths) => ths.map((th) => th.textContent));
  assert.deepEqual(headers, ['shard', 'version', 'keys', 'writes']);

  const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
  for (const key of keys) {
    await page.fill('#key', key);
    await page.fill('#value', `${key}-value`);
    await page.click('button[data-action="put"]');
    await page.waitForFunction((k) => document.getElementById('result').textContent.includes(`put ${k} =`), key);
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
  const total = await page.$$eval('#placement td[data-col="keys"]', (tds) => tds.reduce((n, td) => n + Number(td.textContent), 0));
  assert.equal(total, keys.length);
  await page.screenshot({ path: path.join(artifacts, 'sharded.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no console errors');
});
