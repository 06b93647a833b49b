// Shared test helpers: a real rustorium-node process, a tiny protobuf
// encoder and gRPC-web framing for fake servers, field element bytes.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

export const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The rustorium-node binary: $RUSTORIUM_NODE_BIN, else target/debug or target/release. */
export function nodeBinary() {
  const candidates = [
    process.env.RUSTORIUM_NODE_BIN,
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'debug/rustorium-node'),
    path.join(repo, 'target/debug/rustorium-node'),
    path.join(repo, 'target/release/rustorium-node'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `rustorium-node not built (looked at ${candidates.join(', ')}); run cargo build -p rustorium-node --bin rustorium-node or set RUSTORIUM_NODE_BIN`,
    );
  }
  return found;
}

/** Starts a node on a free port with a fresh store; resolves to { url, stop }. */
export async function startNode(extraArgs = []) {
  const data = mkdtempSync(path.join(tmpdir(), 'rustorium-client-test-'));
  const child = spawn(
    nodeBinary(),
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(data, 'store'), '--sync-mode', 'none', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const lines = readline.createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start in 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${stderr}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`unexpected first line: ${line}`));
    });
  });
  lines.on('line', () => {}); // keep draining stdout
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(data, { recursive: true, force: true });
  };
  return { url, stop };
}

/** A field element as its 32-byte little-endian wire form. */
export function fe(x) {
  const out = new Uint8Array(32);
  let v = BigInt(x);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The integer of 32 little-endian bytes. */
export function fromLe(bytes) {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

function varint(n) {
  let v = BigInt(n);
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

/** Protobuf encoding of fields given as [number, value] pairs: a boolean or
 * number/bigint is a varint, a Uint8Array or an array of bytes is
 * length-delimited, an array of Uint8Array is a repeated field. */
export function pb(fields) {
  const out = [];
  for (const [no, value] of fields) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value) && value.every((v) => v instanceof Uint8Array)) {
      for (const v of value) out.push(...pb([[no, v]]));
    } else if (value instanceof Uint8Array || Array.isArray(value)) {
      out.push((no << 3) | 2, ...varint(value.length), ...value);
    } else {
      out.push((no << 3) | 0, ...varint(typeof value === 'boolean' ? Number(value) : value));
    }
  }
  return new Uint8Array(out);
}

/** A gRPC-web body: message frames, then the trailers frame. */
export function grpcWebBody(messages, status = 0, message = '') {
  const parts = [];
  for (const m of messages) {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(m.length, 1);
    parts.push(head, Buffer.from(m));
  }
  const trailer = Buffer.from(`grpc-status: ${status}\r\ngrpc-message: ${encodeURIComponent(message)}\r\n`);
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(trailer.length, 1);
  parts.push(head, trailer);
  return Buffer.concat(parts);
}

/** Reads a request body and returns the one framed message. */
export async function readFramedRequest(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    throw new Error('bad request frame');
  }
  return body.subarray(5);
}

/** Waits until `predicate()` holds, polling. */
export async function until(predicate, what, ms = 10_000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json' };

/** Serves the files under `dir` (and `/` as a blank page) on a free port. */
export async function serveStatic(dir) {
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const server = createServer(async (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<!doctype html><title>rustorium client test</title>');
    }
    const file = path.join(dir, path.normalize(pathname));
    if (!file.startsWith(dir)) {
      res.writeHead(403);
      return res.end();
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium through playwright-core (no browser download: the system one). */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
