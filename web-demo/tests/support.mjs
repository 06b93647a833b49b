// What the browser tests share: where the built binaries are, starting a
// process and reading its address off stdout, Debian's Chromium driven by
// playwright-core (no browser download), and the dashboard steps every
// test takes. Not a test file itself (node --test runs *.test.mjs).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const artifacts = path.join(root, 'web-demo/test-artifacts');
export const dashboardDir = path.join(root, 'web-demo/dist');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
export const nodeBin = process.env.RUSTORIUM_NODE_BIN ?? path.join(targetDir, 'debug/rustorium-node');
export const tikvBin = path.join(targetDir, 'debug/tikv-test-server');

/**
 * Spawns `bin` and resolves with the child and the first capture of
 * `pattern` in its stdout (e.g. the address it listens on).
 */
export function startProcess(bin, args, pattern, stdin = 'ignore') {
  const child = spawn(bin, args, { stdio: [stdin, 'pipe', 'inherit'] });
  const found = new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = buffer.match(pattern);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`${path.basename(bin)} exited early with ${code}`)));
    setTimeout(() => reject(new Error(`${path.basename(bin)} did not start in 30 s`)), 30_000).unref();
  });
  return { child, found };
}

/** Headless Chromium with a profile under `profileDir`. */
export function launchBrowser(profileDir) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A new page on the dashboard at `url`, ready; console errors go to `errors`. */
export async function openDashboard(browser, url, viewport, errors) {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url + '/');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return page;
}

/** Puts `key` = `${key}-value` through the key explorer and waits for the answer. */
export async function putThroughUi(page, key) {
  await page.fill('#key', key);
  await page.fill('#value', `${key}-value`);
  await page.click('button[data-action="put"]');
  await page.waitForFunction((k) => document.getElementById('result').textContent.includes(`put ${k} =`), key);
}
