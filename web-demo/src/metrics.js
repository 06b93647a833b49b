// Reads the node's Prometheus text at /metrics and turns counters and
// histograms into per-interval rates, means and percentiles.

/** Parses Prometheus text into { name: [{ labels, value }] }. */
export function parsePrometheus(text) {
  const series = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] ?? '').split(',')) {
      const [k, v] = pair.split('=');
      if (k && v) labels[k.trim()] = v.replace(/^"|"$/g, '');
    }
    (series[match[1]] ??= []).push({ labels, value: Number(match[4]) });
  }
  return series;
}

// A cluster node reports each shard's series (label shard="…"): counters
// and gauges add up, histograms add up bucket by bucket.
function scalar(series, name) {
  return (series[name] ?? []).reduce((sum, s) => sum + s.value, 0);
}

function mean(series, name) {
  const samples = series[name] ?? [];
  return samples.length ? scalar(series, name) / samples.length : 0;
}

function buckets(series, name) {
  const byBound = new Map();
  for (const s of series[`${name}_bucket`] ?? []) {
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + s.value);
  }
  return [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** The q-quantile of the observations between two bucket snapshots. */
export function quantile(before, after, q) {
  const deltas = after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
  const total = deltas.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (const b of deltas) if (b.count >= rank) return b.le === Infinity ? null : b.le;
  return null;
}

const HISTOGRAMS = {
  write: 'rustorium_store_write_latency_seconds',
  read: 'rustorium_store_read_latency_seconds',
  proof: 'rustorium_store_proof_generation_seconds',
  batch: 'rustorium_store_batch_ops',
};

/** Samples /metrics; each call returns the values for the last interval. */
export class MetricsSampler {
  constructor(url = './metrics') {
    this.url = url;
    this.previous = null;
  }

  async sample() {
    const response = await fetch(this.url, { cache: 'no-store' });
    if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
    const series = parsePrometheus(await response.text());
    const now = performance.now() / 1000;
    const snapshot = {
      time: now,
      writes: scalar(series, 'rustorium_store_writes_total'),
      reads: scalar(series, 'rustorium_store_reads_total'),
      histograms: Object.fromEntries(
        Object.entries(HISTOGRAMS).map(([key, name]) => [
          key,
          { buckets: buckets(series, name), sum: scalar(series, `${name}_sum`), count: scalar(series, `${name}_count`) },
        ]),
      ),
      disk: scalar(series, 'rustorium_store_disk_bytes'),
      compression: mean(series, 'rustorium_store_compression_ratio'),
      cacheHit: mean(series, 'rustorium_store_cache_hit_ratio'),
    };
    const before = this.previous;
    this.previous = snapshot;
    if (!before) return null;
    const dt = Math.max(now - before.time, 1e-3);
    const h = (key) => [before.histograms[key], snapshot.histograms[key]];
    const [wb, wa] = h('write');
    const [rb, ra] = h('read');
    const [pb, pa] = h('proof');
    const [bb, ba] = h('batch');
    const ms = (v) => (v == null ? null : v * 1000);
    const batches = ba.count - bb.count;
    const proofs = pa.count - pb.count;
    return {
      writesPerSecond: (snapshot.writes - before.writes) / dt,
      readsPerSecond: (snapshot.reads - before.reads) / dt,
      batchSize: batches > 0 ? (ba.sum - bb.sum) / batches : null,
      writeP50: ms(quantile(wb.buckets, wa.buckets, 0.5)),
      writeP99: ms(quantile(wb.buckets, wa.buckets, 0.99)),
      readP50: ms(quantile(rb.buckets, ra.buckets, 0.5)),
      readP99: ms(quantile(rb.buckets, ra.buckets, 0.99)),
      proofMs: proofs > 0 ? ((pa.sum - pb.sum) / proofs) * 1000 : null,
      diskMiB: snapshot.disk / (1 << 20),
      compressionRatio: snapshot.compression,
      cacheHitRatio: snapshot.cacheHit,
    };
  }
}
