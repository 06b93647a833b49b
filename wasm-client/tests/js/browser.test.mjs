// The ES module build in headless Chromium, talking to a real node from
// another origin (CORS), verifying every answer in the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, serveStatic, launchChromium, CHROMIUM } from './helpers.mjs';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../pkg');
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

let node;
let site;
let browser;
before(async () => {
  if (skip) return;
  node = await startNode();
  site = await serveStatic(pkg);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await site?.close();
  await node?.stop();
});

test('put, get, delete, watch and a refused proof in Chromium', { skip }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(site.url + '/');
  const result = await page.evaluate(async (nodeUrl) => {
    const m = await import('/web/index.js');
    const client = await m.RustoriumClient.connect(nodeUrl);
    const events = [];
    const watch = client.watchRoots((e) => events.push(e.version));
    const put = await client.put('greeting', 'hello from the browser');
    const got = await client.get('greeting');
    const deleted = await client.delete('greeting');
    const gone = await client.get('greeting');
    const until = Date.now() + 5000;
    while (events.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    watch.close();
    await watch.done;
    let refused = null;
    try {
      const wrong = structuredClone(got.proof);
      wrong.siblings = wrong.siblings.length ? wrong.siblings.map((s, i) => (i === 0 ? '1' : s)) : ['1'];
      m.verifyProof(got.root, 'greeting', 'hello from the browser', wrong, { keyMode: 'bytes' });
    } catch (e) {
      refused = { isClass: e instanceof m.VerificationError, reason: e.reason };
    }
    return {
      putVersion: put.version,
      value: new TextDecoder().decode(got.value),
      sameRoot: got.root === put.root,
      existed: deleted.existed,
      goneFound: gone.found,
      events,
      refused,
      reverified: m.verifyProof(got.root, 'greeting', got.value, got.proof, { keyMode: 'bytes' }),
    };
  }, node.url);
  assert.deepEqual(errors, []);
  assert.equal(result.putVersion, 1);
  assert.equal(result.value, 'hello from the browser');
  assert.equal(result.sameRoot, true);
  assert.equal(result.existed, true);
  assert.equal(result.goneFound, false);
  assert.deepEqual(result.events, [0, 1, 2]);
  assert.equal(result.reverified, true);
  assert.equal(result.refused?.isClass, true);
  await page.close();
});
