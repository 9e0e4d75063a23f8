// The cluster as this node sees it, the plugins, and this node's figures
// over the last minutes. These pages poll (every few seconds) as well as
// following the live stream: member health is not a registry change.

import { api, h, table, when, ago } from './api.js';

const POLL_MS = 3000;

/** Re-runs `load` every `ms` until the view is left. */
function polling(load, ms = POLL_MS) {
  const timer = setInterval(() => load().catch(() => {}), ms);
  return { stop: () => clearInterval(timer) };
}

/** A member's own Raft state, as four cells (or why it is missing). */
function raftCells(m) {
  const r = m.raft;
  if (!r) {
    const why = m.raftError ? h('span', { class: 'warn', title: m.raftError }, 'no answer') : '—';
    return [h('td', { class: 'member-raft' }, why), h('td', {}, ''), h('td', {}, ''), h('td', {}, '')];
  }
  return [
    h('td', { class: 'member-raft' }, r.state),
    h('td', { class: 'num member-term' }, r.term),
    h('td', { class: 'mono' }, r.leader || 'none known'),
    h('td', { class: 'num' }, `${r.commitIndex ?? '—'} / ${r.lastApplied ?? '—'}`),
  ];
}

export async function clusterView(box) {
  const content = h('div');
  box.append(h('h1', {}, 'Cluster'), content);
  const load = async () => {
    const c = await api('/nacre/v1/console/cluster');
    const raft = c.raft;
    content.replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, 'this node'), h('dd', { class: 'mono' }, c.node, c.standalone ? ' (standalone)' : ''),
        h('dt', {}, 'ready'), h('dd', {}, c.ready ? 'yes' : h('span', { class: 'warn' }, 'no: loading, or cut off from a majority')),
        h('dt', {}, 'Distro sync backlog'), h('dd', {}, c.syncBacklog ?? '—'),
        h('dt', {}, 'Raft leader'), h('dd', { class: 'mono' }, raft ? raft.leader || 'none known' : '—'),
        h('dt', {}, 'Raft term'), h('dd', {}, raft ? raft.term : '—'),
        h('dt', {}, 'Raft state here'), h('dd', {}, raft ? raft.state : '—'),
        h('dt', {}, 'commit / applied index'), h('dd', {}, raft ? `${raft.commitIndex ?? '—'} / ${raft.lastApplied ?? '—'}` : '—')),
      table(['member', 'state', 'in view', 'services owned (Distro)', 'Raft state', 'term', 'its leader', 'commit / applied', 'last seen', 'failed probes', 'last error'],
        c.members.map((m) => h('tr', { class: `state-${m.state.toLowerCase()}`, 'data-member': m.address },
          h('td', { class: 'mono' }, m.address, m.self ? ' (this node)' : '',
            raft && raft.leader === m.address ? h('span', { class: 'badge' }, 'leader') : ''),
          h('td', { class: 'member-state' }, m.state),
          h('td', {}, m.inView ? 'yes' : 'no'),
          h('td', { class: 'num' }, m.responsibleServices),
          ...raftCells(m),
          h('td', {}, m.self ? '—' : ago(m.lastSeen)),
          h('td', { class: 'num' }, m.failures),
          h('td', {}, m.lastError || '')))),
      h('p', { class: 'muted' }, 'Each member\'s Raft state is its own, asked of it when this page loads; a member that does not answer within 2 s shows no answer.'));
  };
  await load();
  return polling(load);
}

export async function pluginsView(box) {
  const content = h('div');
  const said = h('span', { class: 'muted', id: 'reload-result' });
  const reload = h('button', {
    type: 'button',
    id: 'reload-plugins',
    onclick: async () => {
      reload.disabled = true;
      said.textContent = ' reloading…';
      try {
        const answer = await api('/nacre/v1/plugins/reload', {}, 'POST');
        said.textContent = answer.changed ? ' reloaded: the folder had changed' : ' nothing had changed';
        show(answer);
      } catch (e) {
        said.textContent = ` ${e.message}`;
      } finally {
        reload.disabled = false;
      }
    },
  }, 'Reload now');
  box.append(h('h1', {}, 'Plugins'),
    h('p', {}, reload, said,
      h('span', { class: 'muted' }, ' — the node also reads the plugin folder again every few seconds by itself.')),
    content);
  const show = (answer) => {
    content.replaceChildren(table(
      ['plugin', 'hook', 'state', 'calls', 'failures', 'deadline', 'memory cap', 'skipped', 'late', 'p50', 'p99', 'last failure'],
      answer.plugins.map((p) => h('tr', { class: p.state === 'active' ? '' : 'degraded' },
        h('td', {}, p.name), h('td', {}, p.world), h('td', {}, p.state, p.error ? ` — ${p.error}` : ''),
        h('td', { class: 'num' }, p.calls), h('td', { class: 'num' }, p.failures),
        h('td', { class: 'num', title: 'calls cut at the deadline' }, p.timeouts),
        h('td', { class: 'num', title: 'calls that hit the memory cap' }, p.memoryCapTrips),
        h('td', { class: 'num' }, p.skipped), h('td', { class: 'num' }, p.late),
        h('td', { class: 'num' }, `${p.p50Us} µs`), h('td', { class: 'num' }, `${p.p99Us} µs`),
        h('td', {}, p.lastFailure || ''))),
      'No plugins loaded (set plugins.folder to load WebAssembly plugins).'));
  };
  const load = async () => show(await api('/nacre/v1/plugins'));
  await load();
  return polling(load);
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small line chart of `values` (oldest first). */
function spark(values) {
  const width = 360;
  const height = 60;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'spark');
  if (values.length < 2) return svg;
  const max = Math.max(...values, 1e-9);
  const points = values.map((v, i) => `${(i * width) / (values.length - 1)},${height - 2 - (v / max) * (height - 4)}`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.append(line);
  return svg;
}

const SERIES = [
  ['services', 'services', (v) => v],
  ['instances', 'instances', (v) => v],
  ['healthy', 'healthy instances', (v) => v],
  ['changes', 'changes per sample', (v) => v],
  ['cpu', 'CPU (share of a core)', (v) => v.toFixed(2)],
  ['rssBytes', 'memory (MiB)', (v) => (v / 1048576).toFixed(1)],
  ['pushes', 'UDP pushes per sample', (v) => v],
  ['retransmits', 'retransmits per sample', (v) => v],
  ['subscribers', 'UDP subscribers', (v) => v],
  ['grpcConnections', 'gRPC connections', (v) => v],
  ['grpcSubscriptions', 'gRPC subscriptions', (v) => v],
  ['grpcPushes', 'gRPC pushes per sample', (v) => v],
  ['grpcResent', 'gRPC resends per sample', (v) => v],
];

export async function metricsView(box) {
  const content = h('div', { class: 'charts' });
  box.append(h('h1', {}, 'Metrics'), content);
  const load = async () => {
    const m = await api('/nacre/v1/console/metrics');
    const s = m.samples;
    const last = s[s.length - 1];
    content.replaceChildren(
      h('p', { class: 'muted' }, `One sample every ${m.everyMs / 1000} s, the last ${s.length}`,
        s.length ? `, from ${when(s[0].at)}` : '', '. Prometheus figures: /nacre/v1/metrics.'),
      ...SERIES.map(([k, label, fmt]) => h('div', { class: 'chart' },
        h('h3', {}, label, ': ', last ? String(fmt(last[k])) : '—'),
        spark(s.map((x) => x[k])))));
  };
  await load();
  return polling(load, 5000);
}
