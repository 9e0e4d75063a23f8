// Every instance across services, subscribers with push figures, and the
// global change feed.

import { api, h, table, pager, ago, cause, go, debounce } from './api.js';
import { feedTable } from './services.js';

export async function instancesView(box, params, ns) {
  const ip = params.get('ip') || '';
  const q = params.get('q') || '';
  const unhealthy = params.get('unhealthy') === 'true';
  const metadata = params.get('metadata') || '';
  const no = Number(params.get('page') || 1);
  const size = 50;
  const address = h('input', { name: 'ip', value: ip, placeholder: 'ip or ip:port contains', type: 'search' });
  const service = h('input', { name: 'q', value: q, placeholder: 'service name contains', type: 'search' });
  const meta = h('input', { name: 'metadata', value: metadata, placeholder: 'metadata key=value', type: 'search' });
  const bad = h('input', { type: 'checkbox', name: 'unhealthy', checked: unhealthy });
  const form = h('form', { class: 'filters' }, address, service, meta,
    h('label', {}, bad, ' only unhealthy'), h('button', { type: 'submit' }, 'Find'));
  const search = (page = 1) => go('instances', {
    ip: address.value.trim(), q: service.value.trim(), metadata: meta.value.trim(), unhealthy: bad.checked ? 'true' : '', page,
  });
  form.onsubmit = (event) => { event.preventDefault(); search(); };
  bad.onchange = () => search();
  const results = h('div');
  box.append(h('h1', {}, 'Instances'), form, results);
  const load = async () => {
    const answer = await api('/nacre/v1/console/instances', {
      namespaceId: ns, ip, serviceNameParam: q, metadata, unhealthy: unhealthy ? 'true' : '', pageNo: no, pageSize: size,
    });
    results.replaceChildren(
      h('p', { class: 'total' }, `${answer.count} instances`),
      table(['address', 'service', 'cluster', 'health', 'weight', 'kind', 'last change', 'responsible node'],
        answer.list.map((i) => h('tr', { class: `${i.healthy ? '' : 'unhealthy'} ${i.enabled ? '' : 'disabled'}` },
          h('td', { class: 'mono' }, `${i.ip}:${i.port}`),
          h('td', {}, h('a', { href: `#/service?ns=${encodeURIComponent(ns)}&service=${encodeURIComponent(i.service.name)}&group=${encodeURIComponent(i.service.group)}` }, `${i.service.group} / ${i.service.name}`)),
          h('td', {}, i.clusterName),
          h('td', {}, i.healthy ? 'healthy' : 'unhealthy', i.enabled ? '' : ' · offline'),
          h('td', { class: 'num' }, i.weight, i.override ? ' (override)' : ''),
          h('td', {}, i.ephemeral ? 'ephemeral' : 'persistent'),
          h('td', {}, i.change ? `${i.change.what}: ${cause(i.change.cause)} (${ago(i.change.at)})` : ''),
          h('td', { class: 'mono' }, i.responsible || '—'))),
        'No instance matches.'),
      pager(answer.count, no, size, search));
  };
  await load();
  return { live: debounce(load) };
}

export async function subscribersView(box, params, ns) {
  const name = h('input', { name: 'service', value: params.get('service') || '', placeholder: 'service name contains', type: 'search' });
  const group = h('input', { name: 'group', value: params.get('group') || '', placeholder: 'group contains', type: 'search' });
  const form = h('form', { class: 'filters' }, name, group, h('button', { type: 'submit' }, 'Find'));
  form.onsubmit = (event) => { event.preventDefault(); go('subscribers', { service: name.value.trim(), group: group.value.trim() }); };
  const results = h('div');
  box.append(h('h1', {}, 'Subscribers'), form, results);
  const load = async () => {
    const push = await api('/nacos/v1/ns/operator/push/state');
    const figures = h('dl', { class: 'facts' },
      h('dt', {}, 'UDP pushes'), h('dd', {}, `${push.total} sent, ${push.succeed} acknowledged, ${push.failed} failed`),
      h('dt', {}, 'retransmits'), h('dd', {}, push.retransmits),
      h('dt', {}, 'average ack time'), h('dd', {}, `${push.avgPushCost ?? 0} ms`),
      h('dt', {}, 'expired subscribers'), h('dd', {}, push.zombiesDropped ?? 0),
      h('dt', {}, 'waiting for an ack'), h('dd', {}, push.pendingAcks ?? 0));
    if (!params.get('service')) {
      results.replaceChildren(h('h2', {}, 'Push on this node'), figures,
        h('p', { class: 'muted' }, 'Search by service name (part of it) to list subscribers across the cluster.'));
      return;
    }
    const answer = await api('/nacos/v1/ns/service/subscribers', {
      namespaceId: ns, serviceName: params.get('service'), groupName: params.get('group') || '', pageSize: 1000,
    });
    results.replaceChildren(
      h('p', { class: 'total' }, `${answer.count} subscribers`),
      table(['service', 'address', 'client', 'app', 'clusters', 'last push', 'last ack', 'pushes', 'acks', 'retransmits', 'failures'],
        answer.subscribers.map((s) => {
          const p = s.push || {};
          return h('tr', { class: p.failures ? 'degraded' : '', 'data-address': s.addrStr },
            h('td', {}, s.serviceName), h('td', { class: 'mono' }, s.addrStr), h('td', {}, s.agent),
            h('td', {}, s.app), h('td', {}, s.cluster),
            h('td', {}, ago(p.lastPushAt)), h('td', {}, ago(p.lastAckAt)),
            h('td', { class: 'num pushes' }, p.pushes ?? '—'), h('td', { class: 'num acks' }, p.acks ?? '—'),
            h('td', { class: 'num' }, p.retransmits ?? '—'), h('td', { class: 'num' }, p.failures ?? '—'));
        }), 'No subscribers.'),
      h('p', { class: 'muted' }, 'Each subscriber\'s own figures since it subscribed, from the member that holds it: pushes are first sends, retransmits the resends of a push not acknowledged in time.'),
      h('h2', {}, 'Push on this node'), figures);
  };
  await load();
  // A change is pushed within milliseconds and acked soon after: reload a
  // moment later so the figures have moved.
  const reload = debounce(load, 1000);
  return { live: () => reload() };
}

export async function feedView(box, params, ns) {
  const ip = h('input', { name: 'ip', value: params.get('ip') || '', placeholder: 'ip or ip:port contains', type: 'search' });
  const form = h('form', { class: 'filters' }, ip, h('button', { type: 'submit' }, 'Filter'));
  form.onsubmit = (event) => { event.preventDefault(); go('feed', { ip: ip.value.trim() }); };
  const results = h('div');
  box.append(h('h1', {}, 'Changes'),
    h('p', { class: 'muted' }, 'What this node decided, newest first: registrations, health verdicts and why, edits and by whom.'),
    form, results);
  const load = async () => {
    const answer = await api('/nacre/v1/console/feed', { namespaceId: ns, ip: params.get('ip') || '', limit: 200 });
    results.replaceChildren(feedTable(answer.changes));
  };
  await load();
  return { live: debounce(load) };
}
