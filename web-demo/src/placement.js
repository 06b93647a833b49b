// Where the data lives: in a cluster, every shard's owner, region, epoch and
// measured writes (from /api/info, refreshed); on a sharded single node, its
// current cut (shards split and merge while it serves); on a replica, its
// primary, the version it mirrors and its lag.

const COLUMNS = {
  cluster: ['shard', 'owner', 'region', 'epoch', 'preferred', 'version', 'writes/s', 'writes from'],
  sharded: ['shard', 'version', 'keys', 'writes'],
};

function header(panel, role) {
  const row = panel.querySelector('thead tr');
  if (row.dataset.role === role) return;
  row.dataset.role = role;
  row.replaceChildren(
    ...(COLUMNS[role] ?? []).map((name) => {
      const th = document.createElement('th');
      th.textContent = name;
      return th;
    }),
  );
}

function cell(row, text, name) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (name) td.dataset.col = name;
  row.append(td);
}

function regions(byRegion) {
  const entries = Object.entries(byRegion ?? {});
  return entries.length ? entries.map(([r, n]) => `${r} ${n}`).join(', ') : '–';
}

export function renderPlacement(panel, info) {
  const body = panel.querySelector('tbody');
  const summary = panel.querySelector('.summary');
  header(panel, info.role);
  if (info.role === 'cluster') {
    panel.classList.remove('hidden');
    panel.dataset.role = 'cluster';
    const owners = new Set(info.placement.map((s) => s.owner).filter(Boolean));
    summary.textContent = `node ${info.node_id}: ${info.placement.length} shards on ${owners.size} owner(s)`;
    body.replaceChildren(
      ...info.placement.map((shard) => {
        const row = document.createElement('tr');
        row.dataset.shard = shard.shard;
        cell(row, shard.shard, 'shard');
        cell(row, shard.owner || 'none (moving)', 'owner');
        cell(row, shard.owner_region || '–', 'region');
        cell(row, shard.epoch, 'epoch');
        cell(row, shard.preferred || '–', 'preferred');
        cell(row, shard.version, 'version');
        cell(row, shard.write_rate.toFixed(1), 'rate');
        cell(row, regions(shard.writes_by_region), 'origins');
        if (shard.owner === info.node_id) row.classList.add('mine');
        return row;
      }),
    );
  } else if (info.role === 'sharded') {
    panel.classList.remove('hidden');
    panel.dataset.role = 'sharded';
    const s = info.sharding;
    summary.textContent = `one node, ${s.shards.length} shard(s) committing in parallel; ${s.splits} split(s), ${
      s.merges
    } merge(s) since start${s.automatic ? ', resharded automatically' : ''}`;
    body.replaceChildren(
      ...s.shards.map((shard) => {
        const row = document.createElement('tr');
        row.dataset.shard = shard.shard;
        cell(row, shard.shard, 'shard');
        cell(row, shard.version, 'version');
        cell(row, shard.keys, 'keys');
        cell(row, shard.writes_total, 'writes');
        return row;
      }),
    );
  } else if (info.role === 'replica') {
    panel.classList.remove('hidden');
    panel.dataset.role = 'replica';
    const r = info.replica;
    const of = r.shard ? `shard ${r.shard} of ${r.primary}` : r.primary;
    summary.textContent = `replica of ${of}: mirrors version ${r.mirrors}, ${r.lag_versions} behind, primary ${
      r.primary_reachable ? 'reachable' : 'unreachable'
    }`;
    body.replaceChildren();
  } else {
    panel.classList.add('hidden');
  }
}
