// Small live line charts (uPlot), one per metric group.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const POINTS = 120;

const GROUPS = [
  { id: 'throughput', title: 'Writes / reads per second', series: [['writesPerSecond', 'writes/s', '#3b82f6'], ['readsPerSecond', 'reads/s', '#10b981']] },
  { id: 'batch', title: 'Commit batch size (ops)', series: [['batchSize', 'ops/commit', '#8b5cf6']] },
  { id: 'write-latency', title: 'Write latency (ms)', series: [['writeP50', 'p50', '#3b82f6'], ['writeP99', 'p99', '#ef4444']] },
  { id: 'read-latency', title: 'Read latency (ms)', series: [['readP50', 'p50', '#10b981'], ['readP99', 'p99', '#f59e0b']] },
  { id: 'proof', title: 'Proof generation (ms)', series: [['proofMs', 'mean', '#ec4899']] },
  { id: 'disk', title: 'Disk use (MiB)', series: [['diskMiB', 'MiB', '#64748b']] },
  { id: 'ratios', title: 'Compression and cache hit ratios', series: [['compressionRatio', 'compression x', '#0ea5e9'], ['cacheHitRatio', 'cache hit', '#22c55e']] },
];

export class Charts {
  constructor(container) {
    this.data = new Map();
    this.plots = [];
    this.latest = {};
    for (const group of GROUPS) {
      const box = document.createElement('figure');
      box.className = 'chart';
      box.dataset.chart = group.id;
      const caption = document.createElement('figcaption');
      caption.textContent = group.title;
      const readout = document.createElement('div');
      readout.className = 'readout mono small';
      box.append(caption, readout);
      container.append(box);
      const columns = [[], ...group.series.map(() => [])];
      const width = Math.max(240, Math.min(420, container.clientWidth - 24));
      const plot = new uPlot(
        {
          width,
          height: 150,
          legend: { show: false },
          scales: { x: { time: true } },
          series: [{}, ...group.series.map(([, label, stroke]) => ({ label, stroke, width: 2, spanGaps: true }))],
          axes: [{ size: 30 }, { size: 50 }],
        },
        columns,
        box,
      );
      this.plots.push({ group, plot, columns, readout });
    }
  }

  push(sample) {
    const t = Date.now() / 1000;
    this.latest = sample;
    for (const { group, plot, columns, readout } of this.plots) {
      columns[0].push(t);
      group.series.forEach(([key], i) => columns[i + 1].push(sample[key]));
      if (columns[0].length > POINTS) columns.forEach((c) => c.shift());
      plot.setData(columns);
      readout.textContent = group.series
        .map(([key, label]) => `${label}: ${sample[key] == null ? '–' : Number(sample[key]).toFixed(2)}`)
        .join('  ');
    }
  }
}
