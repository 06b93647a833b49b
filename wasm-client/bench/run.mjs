// Verify time of one proof of a 1M-key tree (21 siblings), with the built
// package (wasm-client/pkg), in Node.js and in headless Chromium:
//
//   node wasm-client/bench/run.mjs            (after build.sh and npm ci in tests/js)
//
// Prints one JSON line per runtime. Chromium is skipped when not installed.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from '../pkg/node/index.mjs';
import { run } from './proof.mjs';
import { serveStatic, launchChromium, CHROMIUM } from '../tests/js/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
console.log(JSON.stringify({ runtime: `node ${process.version}`, ...run(client) }));

if (existsSync(CHROMIUM)) {
  const site = await serveStatic(path.resolve(here, '..'));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(site.url + '/');
    const result = await page.evaluate(async () => {
      const m = await import('/pkg/web/index.js');
      await m.default();
      const { run } = await import('/bench/proof.mjs');
      return run(m);
    });
    console.log(JSON.stringify({ runtime: `chromium ${browser.version()}`, ...result }));
  } finally {
    await browser.close();
    await site.close();
  }
} else {
  console.log(JSON.stringify({ runtime: 'chromium', skipped: `no Chromium at ${CHROMIUM}` }));
}
