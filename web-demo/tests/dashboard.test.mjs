// The dashboard in a real browser against a real node: a key written through
// the UI reads back with the "verified in your browser" badge, the tamper
// demo fails verification with a reason, the charts move after a burst of
// writes, the page fits a phone-width screen, and the console stays clean.
// Screenshots go to web-demo/test-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { artifacts, dashboardDir, launchBrowser, nodeBin, openDashboard as open, startProcess } from './support.mjs';

let node;
let browser;
let baseUrl;
const consoleErrors = [];
const scratch = mkdtempSync(path.join(tmpdir(), 'rustorium-dashboard-'));

before(async () => {
  assert.ok(existsSync(nodeBin), `build the node first: ${nodeBin} is missing`);
  assert.ok(existsSync(path.join(dashboardDir, 'index.html')), 'build the dashboard first (web-demo/build.sh)');
  mkdirSync(artifacts, { recursive: true });
  const started = startProcess(
    nodeBin,
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(scratch, 'data'), '--sync-mode', 'none', '--dashboard-dir', dashboardDir],
    /listening on (http:\/\/[0-9.:]+)/,
  );
  node = started.child;
  baseUrl = await started.found;
  browser = await launchBrowser(path.join(scratch, 'profile'));
});

after(async () => {
  await browser?.close();
  node?.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

function openDashboard(viewport) {
  return open(browser, baseUrl, viewport, consoleErrors);
}

// Resolves with the first nonzero writes/s the throughput chart shows. The
// readout is the latest sample only, so it must be watched while writes run:
// on a loaded machine it is back to 0 before the steps after the burst end.
function throughputMoves(page) {
  return page
    .waitForFunction(
      () => {
        const text = document.querySelector('[data-chart="throughput"] .readout').textContent;
        const match = text.match(/writes\/s: ([0-9.]+)/);
        return match && Number(match[1]) > 0 ? Number(match[1]) : false;
      },
      null,
      { timeout: 90_000 },
    )
    .then((handle) => handle.jsonValue());
}

test('write, read, tamper, charts, phone width', async () => {
  const page = await openDashboard({ width: 1280, height: 900 });
  assert.equal(await page.textContent('[data-info="backend"]'), 'redb');

  await page.fill('#key', 'alice');
  await page.fill('#value', 'one hundred');
  await page.click('button[data-action="put"]');
  await page.waitForSelector('#badge[data-verified="true"]');
  assert.match(await page.textContent('#badge'), /verified in your browser in [0-9.]+ ms/);

  await page.fill('#value', '');
  await page.click('#get');
  await page.waitForFunction(() => document.getElementById('result').textContent.includes('alice = one hundred'));
  assert.match(await page.textContent('#badge'), /verified in your browser/);
  assert.ok((await page.$$('.proof-svg .sibling, .proof-svg .empty')).length >= 0);
  await page.waitForFunction(() => Number(document.getElementById('root-version').textContent) >= 1);
  await page.screenshot({ path: path.join(artifacts, 'verified.png'), fullPage: true });

  await page.click('#tamper-value');
  await page.waitForFunction(() => document.getElementById('tamper-result').textContent.includes('verification failed'));
  assert.match(await page.textContent('#tamper-result'), /verification failed: .+/);
  await page.screenshot({ path: path.join(artifacts, 'tampered.png'), fullPage: true });

  // More keys so the proof has non-empty siblings, then tamper one.
  const moved = throughputMoves(page);
  await page.click('#burst');
  await page.waitForFunction(() => document.getElementById('result').textContent.includes('200 verified writes'), null, { timeout: 60_000 });
  await page.click('#get');
  await page.waitForSelector('#badge[data-verified="true"]');
  await page.click('#tamper-sibling');
  await page.waitForFunction(() => document.getElementById('tamper-result').textContent.includes('verification failed'));

  assert.ok((await moved) > 0, 'the writes/s chart moved during the burst');
  await page.screenshot({ path: path.join(artifacts, 'charts.png'), fullPage: true });

  const phone = await openDashboard({ width: 390, height: 844 });
  const overflow = await phone.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
  await phone.screenshot({ path: path.join(artifacts, 'phone.png'), fullPage: true });

  assert.deepEqual(consoleErrors, [], 'no console errors');
});
