// The dashboard: node info, live root stream, live charts from /metrics, and
// a key explorer whose every proof is verified here, by the WASM client.
import './style.css';
import { Charts } from './charts.js';
import { MetricsSampler } from './metrics.js';
import { drawProof } from './proof-view.js';
import { renderPlacement } from './placement.js';
import { connect, verify, circomInputs, keyBits, keyDecimal } from './client.js';

const $ = (id) => document.getElementById(id);
const state = { client: null, last: null, tampered: null, history: [] };

function show(id, text, kind = '') {
  const el = $(id);
  el.textContent = text;
  el.className = `result ${kind}`;
}

async function loadInfo() {
  const response = await fetch('./api/info', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/api/info answered ${response.status}`);
  const info = await response.json();
  const rows = {
    backend: info.backend,
    'sync mode': info.sync_mode,
    compression: info.compression ? 'on' : 'off',
    encryption: info.encryption ? 'on' : 'off',
    role: info.role,
    shards: info.shards,
    'key mode': info.key_mode,
    'max levels': info.max_levels,
  };
  $('node-info').replaceChildren(
    ...Object.entries(rows).map(([k, v]) => {
      const pair = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = String(v);
      dd.dataset.info = k;
      pair.append(dt, dd);
      return pair;
    }),
  );
  renderPlacement($('placement'), info);
  return info;
}

function onRoot(event) {
  if (state.history.some((e) => e.version >= event.version)) return;
  $('root-version').textContent = String(event.version);
  $('root-hash').textContent = event.root;
  state.history.unshift(event);
  state.history.length = Math.min(state.history.length, 12);
  $('root-history').replaceChildren(
    ...state.history.map((e) => {
      const li = document.createElement('li');
      li.textContent = `v${e.version}  ${e.root.slice(0, 20)}…  (${e.opCount ?? '?'} ops)`;
      return li;
    }),
  );
}

function renderProof(result, key, value) {
  state.last = { ...result, key, value };
  state.tampered = null;
  drawProof($('proof-view'), result.proof, keyBits(key), result.root);
  const badge = $('badge');
  badge.textContent = `verified in your browser in ${result.verifyMs.toFixed(2)} ms`;
  badge.className = 'badge ok';
  badge.dataset.verified = 'true';
  $('tamper').classList.remove('hidden');
  $('export').classList.remove('hidden');
  show('tamper-result', '');
}

async function run(action) {
  const key = $('key').value;
  const value = $('value').value;
  try {
    if (action === 'put') {
      const r = await state.client.put(key, value);
      show('result', `put ${key} = ${value} at version ${r.version}`, 'ok');
      renderProof(r, key, value);
    } else if (action === 'get') {
      const r = await state.client.get(key);
      show('result', r.value == null ? `${key} is absent (proven)` : `${key} = ${r.value} at version ${r.version}`, 'ok');
      renderProof(r, key, r.value);
    } else if (action === 'delete') {
      const r = await state.client.delete(key);
      show('result', `deleted ${key} at version ${r.version}`, 'ok');
      renderProof(r, key, null);
    }
  } catch (error) {
    show('result', `${error.name}: ${error.message}`, 'error');
    $('badge').className = 'badge bad';
    $('badge').textContent = 'not verified';
    $('badge').dataset.verified = 'false';
  }
}

function tamper(kind) {
  const last = state.last;
  if (!last) return;
  const proof = structuredClone(last.proof);
  let value = last.value;
  if (kind === 'sibling') {
    const i = proof.siblings.findIndex((s) => s !== '0');
    if (i < 0) return show('tamper-result', 'this proof has no non-empty sibling to change', 'error');
    proof.siblings[i] = (BigInt(proof.siblings[i]) + 1n).toString();
  } else if (kind === 'value') {
    value = `${value ?? ''}!`;
  }
  state.tampered = { proof, value };
  drawProof($('proof-view'), proof, keyBits(last.key), last.root);
  const outcome = verify(last.root, last.key, kind === 'value' && last.value == null ? value : value, proof);
  if (outcome.ok) show('tamper-result', `verified in ${outcome.ms.toFixed(2)} ms`, 'ok');
  else show('tamper-result', `verification failed: ${outcome.reason}`, 'error');
}

function download(name, text) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

async function burst() {
  const started = performance.now();
  const writes = [];
  for (let i = 0; i < 200; i++) writes.push(state.client.put(`burst-${Date.now()}-${i}`, `value-${i}`));
  await Promise.all(writes);
  show('result', `200 verified writes in ${(performance.now() - started).toFixed(0)} ms`, 'ok');
}

async function main() {
  const info = await loadInfo();
  state.client = await connect(location.origin, info.max_levels);
  $('connection').textContent = `connected to ${location.host}`;
  $('connection').className = 'pill ok';
  const root = await state.client.root();
  onRoot({ version: root.version, root: root.root, opCount: 0 });
  if (info.role === 'cluster' || info.role === 'sharded') {
    // A sharded tree's global root has no gap-free version stream (its
    // version counts every shard's commits): poll the verified root instead.
    setInterval(async () => {
      const next = await state.client.root().catch(() => null);
      if (next) onRoot({ version: next.version, root: next.root, opCount: null });
    }, 1000);
  } else {
    state.client.watchRoots(onRoot);
  }

  const charts = new Charts($('chart-grid'));
  const sampler = new MetricsSampler('./metrics');
  const tick = async () => {
    try {
      const sample = await sampler.sample();
      if (sample) charts.push(sample);
    } catch (error) {
      $('connection').textContent = `metrics: ${error.message}`;
    }
  };
  await tick();
  setInterval(tick, 1000);
  // Placement moves (leases, replica lag): refresh the node panel too.
  setInterval(() => loadInfo().catch(() => {}), 2000);

  $('kv-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run('put');
  });
  $('get').addEventListener('click', () => run('get'));
  $('delete').addEventListener('click', () => run('delete'));
  $('burst').addEventListener('click', () => burst().catch((e) => show('result', e.message, 'error')));
  $('tamper-sibling').addEventListener('click', () => tamper('sibling'));
  $('tamper-value').addEventListener('click', () => tamper('value'));
  $('tamper-reset').addEventListener('click', () => state.last && renderProof(state.last, state.last.key, state.last.value));
  $('export-json').addEventListener('click', () => state.last && download(`proof-${state.last.key}.json`, JSON.stringify(state.last.proof, null, 2)));
  $('export-circom').addEventListener('click', () => {
    const last = state.last;
    if (!last) return;
    download(`smtverifier-${last.key}.json`, JSON.stringify(circomInputs(last, info.max_levels), null, 2));
  });
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  $('connection').textContent = `error: ${error.message}`;
  $('connection').className = 'pill error';
});

export { keyDecimal };
