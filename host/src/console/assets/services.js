// Namespaces, the service list and one service's page.

import { api, h, table, pager, when, ago, cause, go, debounce } from './api.js';

const INSTANCE = '/nacos/v1/ns/instance';

export async function namespacesView(box) {
  const answer = await api('/nacos/v1/console/namespaces');
  box.append(h('h1', {}, 'Namespaces'),
    h('p', { class: 'muted' }, 'A namespace exists while services live in it; the first registration into a namespace creates it.'),
    table(['namespace', 'id', 'services'], answer.data.map((n) => h('tr', {},
      h('td', {}, h('a', { href: `#/services?ns=${encodeURIComponent(n.namespace || 'public')}` }, n.namespaceShowName)),
      h('td', { class: 'mono' }, n.namespace || '(public)'),
      h('td', { class: 'num' }, n.serviceCount)))));
}

/** A bar of healthy / all instances. */
function healthBar(healthy, all) {
  const bar = h('span', { class: 'bar', title: `${healthy} of ${all} healthy` });
  if (all > 0) {
    bar.append(h('span', { class: 'ok', width: `${(100 * healthy) / all}%` }));
  }
  return bar;
}

export async function servicesView(box, params, ns) {
  const q = params.get('q') || '';
  const g = params.get('g') || '';
  const stored = localStorage.getItem('nacre.hideEmpty');
  const hideEmpty = params.has('empty') ? params.get('empty') === 'hide' : stored !== 'show';
  const no = Number(params.get('page') || 1);
  const size = 20;
  const name = h('input', { name: 'q', value: q, placeholder: 'service name contains', type: 'search' });
  const group = h('input', { name: 'g', value: g, placeholder: 'group contains', type: 'search' });
  const empty = h('input', { type: 'checkbox', name: 'empty', checked: hideEmpty });
  const form = h('form', { class: 'filters' }, name, group,
    h('label', {}, empty, ' hide empty services'), h('button', { type: 'submit' }, 'Search'));
  const search = (page = 1) => {
    localStorage.setItem('nacre.hideEmpty', empty.checked ? 'hide' : 'show');
    go('services', { q: name.value.trim(), g: group.value.trim(), empty: empty.checked ? 'hide' : 'show', page });
  };
  form.onsubmit = (event) => { event.preventDefault(); search(); };
  empty.onchange = () => search();
  const results = h('div', { class: 'results' });
  box.append(h('h1', {}, 'Services'), form, results);
  const load = async () => {
    const answer = await api('/nacos/v1/ns/catalog/services', {
      namespaceId: ns, serviceNameParam: q, groupNameParam: g,
      hasIpCount: hideEmpty, pageNo: no, pageSize: size,
    });
    const rows = answer.serviceList.map((s) => h('tr', { class: s.healthyInstanceCount < s.ipCount ? 'degraded' : '' },
      h('td', {}, h('a', { href: `#/service?ns=${encodeURIComponent(ns)}&service=${encodeURIComponent(s.name)}&group=${encodeURIComponent(s.groupName)}` }, s.name)),
      h('td', {}, s.groupName),
      h('td', { class: 'num' }, s.clusterCount),
      h('td', { class: 'num' }, s.ipCount),
      h('td', { class: 'num' }, s.healthyInstanceCount),
      h('td', {}, healthBar(s.healthyInstanceCount, s.ipCount)),
      h('td', {}, s.triggerFlag === 'true' ? h('span', { class: 'warn' }, 'protection on') : '')));
    results.replaceChildren(
      h('p', { class: 'total' }, `${answer.count} services`),
      table(['service', 'group', 'clusters', 'instances', 'healthy', 'health', 'protect threshold'], rows,
        q || g ? 'No service matches.' : 'No services in this namespace yet.'),
      pager(answer.count, no, size, (n) => search(n)));
  };
  await load();
  return { live: debounce(load) };
}

async function patch(service, instance, fields) {
  await api(INSTANCE, {
    namespaceId: service.namespace, serviceName: service.name, groupName: service.group,
    clusterName: instance.clusterName, ip: instance.ip, port: instance.port, ...fields,
  }, 'PATCH');
}

function instanceRow(service, i, reload) {
  const weight = h('input', { class: 'weight', type: 'number', min: 0, max: 10000, step: 'any', value: i.weight, 'aria-label': 'weight' });
  const meta = h('input', { class: 'meta', value: Object.entries(i.metadata).map(([k, v]) => `${k}=${v}`).join(','), 'aria-label': 'metadata' });
  const act = (fields) => async () => {
    try { await patch(service, i, fields); } catch (e) { alert(e.message); }
    reload();
  };
  const o = i.override;
  return h('tr', { class: `${i.healthy ? '' : 'unhealthy'} ${i.enabled ? '' : 'disabled'}`, 'data-address': `${i.ip}:${i.port}` },
    h('td', { class: 'mono' }, `${i.ip}:${i.port}`),
    h('td', {}, i.healthy ? 'healthy' : 'unhealthy', i.enabled ? '' : ' · offline'),
    h('td', {}, weight, h('button', { type: 'button', onclick: () => act({ weight: weight.value })() }, 'set')),
    h('td', {}, h('button', { type: 'button', class: 'toggle', onclick: act({ enabled: !i.enabled }) }, i.enabled ? 'take offline' : 'bring online')),
    h('td', {}, i.ephemeral ? 'ephemeral' : 'persistent', i.lease === 'Beat' ? ' · beats' : ' · connection'),
    h('td', {}, i.ephemeral && i.lease === 'Beat' ? ago(i.lastBeat) : '—'),
    h('td', {}, o ? h('span', { class: 'override', title: 'Kept while the client beats; replaced when it registers again.' },
      `override by ${o.by || 'anonymous'}: weight ${o.weight}, ${o.enabled ? 'online' : 'offline'}`) : ''),
    h('td', {}, i.change ? `${i.change.what}: ${cause(i.change.cause)} (${ago(i.change.at)})` : ''),
    h('td', {}, meta, h('button', { type: 'button', onclick: () => act({ metadata: meta.value })() }, 'set')));
}

export function feedTable(changes) {
  return table(['time', 'instance', 'what', 'why', 'decided by'], changes.map((c) => h('tr', {},
    h('td', {}, when(c.at)),
    h('td', { class: 'mono' }, `${c.service.group}@@${c.service.name} ${c.instance.ip}:${c.instance.port}`),
    h('td', {}, c.what),
    h('td', {}, cause(c.cause)),
    h('td', { class: 'mono' }, c.node))), 'No changes recorded on this node yet.');
}

export async function serviceView(box, params, ns) {
  const service = { namespace: ns, name: params.get('service') || '', group: params.get('group') || 'DEFAULT_GROUP' };
  const key = { namespaceId: ns, serviceName: service.name, groupName: service.group };
  const content = h('div');
  box.append(h('h1', {}, `${service.group} / ${service.name}`),
    h('p', {}, h('a', { href: `#/subscribers?ns=${encodeURIComponent(ns)}&service=${encodeURIComponent(service.name)}&group=${encodeURIComponent(service.group)}` }, 'subscribers')),
    content);
  const load = async () => {
    const [detail, all, feed] = await Promise.all([
      api('/nacos/v1/ns/catalog/service', key),
      api('/nacre/v1/console/instances', { ...key, pageSize: 1000 }),
      api('/nacre/v1/console/feed', { ...key, limit: 20 }),
    ]);
    const healthy = all.list.filter((i) => i.healthy).length;
    const threshold = detail.service.protectThreshold;
    const active = all.count > 0 && healthy / all.count <= threshold;
    const cards = detail.clusters.map((c) => {
      const rows = all.list.filter((i) => i.clusterName === c.name).map((i) => instanceRow(service, i, load));
      return h('div', { class: 'card' },
        h('h2', {}, `cluster ${c.name}`),
        h('p', { class: 'muted' }, `health check ${c.healthChecker.type}, check port ${c.useIPPort4Check ? 'the instance\'s' : c.defaultCheckPort}`),
        table(['address', 'health', 'weight', 'online', 'kind', 'last beat', 'override', 'last change', 'metadata'], rows, 'No instances in this cluster.'));
    });
    content.replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, 'instances'), h('dd', {}, `${all.count} (${healthy} healthy)`),
        h('dt', {}, 'protect threshold'), h('dd', {}, String(threshold), ' — ',
          active ? h('span', { class: 'warn' }, 'active now: clients are sent every instance, healthy or not')
            : 'not active'),
        h('dt', {}, 'metadata'), h('dd', { class: 'mono' }, JSON.stringify(detail.service.metadata)),
        h('dt', {}, 'selector'), h('dd', { class: 'mono' }, JSON.stringify(detail.service.selector))),
      h('p', { class: 'muted' }, 'An edit of an ephemeral instance\'s weight or online state is an override: it stays while the client beats and is replaced by the client\'s own values when it registers again.'),
      ...cards,
      h('h2', {}, 'Changes'), feedTable(feed.changes));
  };
  try {
    await load();
  } catch (e) {
    if (e.status !== 404) throw e;
    content.replaceChildren(h('p', { class: 'error' }, `No service ${service.group}@@${service.name} in ${ns}.`));
  }
  const reload = debounce(load);
  return {
    live: (c) => {
      if (c.service.name === service.name && c.service.group === service.group) reload();
    },
  };
}
