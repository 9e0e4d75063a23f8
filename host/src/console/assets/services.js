// Namespaces, the service list and one service's page.

import { api, h, table, pager, when, ago, cause, go, debounce } from './api.js';

const INSTANCE = '/nacos/v1/ns/instance';
const SERVICE = '/nacos/v1/ns/service';

const NAMESPACES = '/nacos/v1/console/namespaces';

export async function namespacesView(box) {
  const [answer, may] = await Promise.all([api(NAMESPACES), access({})]);
  const reload = () => {
    window.dispatchEvent(new Event('nacre:namespaces'));
    box.replaceChildren();
    namespacesView(box);
  };
  const rows = answer.data.map((n) => {
    const id = n.namespace || 'public';
    const actions = h('td');
    if (may.admin && n.namespace) {
      actions.append(
        h('button', { type: 'button', class: 'edit-namespace', onclick: () => actions.replaceChildren(editNamespaceForm(n, reload)) }, 'edit'),
        ' ',
        h('button', { type: 'button', class: 'delete-namespace', onclick: () => deleteNamespace(n, reload) }, 'delete'));
    }
    return h('tr', { 'data-namespace': id },
      h('td', {}, h('a', { href: `#/services?ns=${encodeURIComponent(id)}` }, n.namespaceShowName)),
      h('td', { class: 'mono' }, n.namespace || '(public)'),
      h('td', { class: 'muted' }, n.namespaceDesc || ''),
      h('td', { class: 'num' }, n.serviceCount),
      actions);
  });
  box.append(h('h1', {}, 'Namespaces'),
    h('p', { class: 'muted' }, 'A namespace exists while services live in it (the first registration into one creates it) or while it has a record made here, which names it and keeps it listed while empty. A namespace that still holds services cannot be deleted.'));
  if (may.admin) box.append(createNamespaceForm(reload));
  box.append(table(['namespace', 'id', 'description', 'services', ''], rows));
}

/** A form that creates a namespace record (`POST console/namespaces`). */
function createNamespaceForm(reload) {
  const id = h('input', { name: 'newNamespaceId', placeholder: 'id (a UUID when empty)', pattern: '[A-Za-z0-9_-]*', maxlength: 128 });
  const name = h('input', { name: 'newNamespaceName', required: true, placeholder: 'name', maxlength: 128 });
  const desc = h('textarea', { name: 'newNamespaceDesc', class: 'meta', rows: 2, placeholder: 'description', maxlength: 256 });
  const error = h('span', { class: 'error' });
  const form = h('form', { class: 'filters create-namespace' }, id, name, desc, h('button', { type: 'submit' }, 'Create'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api(NAMESPACES, { customNamespaceId: id.value.trim(), namespaceName: name.value.trim(), namespaceDesc: desc.value.trim() }, 'POST');
      reload();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  return h('details', { class: 'create' }, h('summary', {}, 'New namespace'), form);
}

/** Renames a namespace and sets its description (`PUT console/namespaces`). */
function editNamespaceForm(n, reload) {
  const name = h('input', { name: 'editNamespaceName', required: true, value: n.namespaceShowName, maxlength: 128, 'aria-label': 'name' });
  const desc = h('textarea', { name: 'editNamespaceDesc', class: 'meta', rows: 2, maxlength: 256, 'aria-label': 'description' });
  desc.value = n.namespaceDesc || '';
  const error = h('span', { class: 'error' });
  const form = h('form', { class: 'filters edit-namespace' }, name, desc, h('button', { type: 'submit' }, 'Save'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api(NAMESPACES, { namespace: n.namespace, namespaceShowName: name.value.trim(), namespaceDesc: desc.value.trim() }, 'PUT');
      reload();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  return form;
}

/** Deletes a namespace's record, after asking; the node refuses while services live there. */
async function deleteNamespace(n, reload) {
  if (!confirm(`Delete the namespace ${n.namespaceShowName} (${n.namespace})?`)) return;
  try {
    await api(NAMESPACES, { namespaceId: n.namespace }, 'DELETE');
  } catch (e) { alert(e.message); }
  reload();
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
  const creating = h('div');
  box.append(h('h1', {}, 'Services'), form, creating, results);
  // Asked alongside the first load, not before it.
  access({ namespaceId: ns }).then((may) => { if (may.write) creating.append(createServiceForm(ns)); });
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

/** A form that creates a service (`POST service`) and opens its page. */
function createServiceForm(ns) {
  const name = h('input', { name: 'newName', required: true, placeholder: 'name' });
  const group = h('input', { name: 'newGroup', placeholder: 'group (DEFAULT_GROUP)' });
  const threshold = h('input', { name: 'newThreshold', type: 'number', min: 0, max: 1, step: 'any', value: 0, 'aria-label': 'protect threshold' });
  const meta = h('input', { name: 'newMetadata', class: 'meta', placeholder: 'metadata k=v,k2=v2' });
  const error = h('span', { class: 'error' });
  const form = h('form', { class: 'filters create-service' },
    name, group, h('label', {}, 'protect threshold ', threshold), meta,
    h('button', { type: 'submit' }, 'Create'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const created = { service: name.value.trim(), group: group.value.trim() || 'DEFAULT_GROUP' };
    try {
      await api(SERVICE, {
        namespaceId: ns, serviceName: created.service, groupName: created.group,
        protectThreshold: threshold.value, metadata: meta.value.trim(),
      }, 'POST');
      go('service', created);
    } catch (e) {
      error.textContent = e.message;
    }
  };
  return h('details', { class: 'create' }, h('summary', {}, 'New service'), form);
}

/** A form that changes a service's protect threshold and metadata (`PUT service`). */
function editServiceForm(service, current, reload) {
  const threshold = h('input', { name: 'editThreshold', type: 'number', min: 0, max: 1, step: 'any', value: current.protectThreshold, 'aria-label': 'protect threshold' });
  const meta = h('input', { name: 'editMetadata', class: 'meta', value: Object.entries(current.metadata || {}).map(([k, v]) => `${k}=${v}`).join(','), 'aria-label': 'metadata' });
  // Nacos's selectors: none, or a label expression such as
  // INSTANCE.metadata.zone = 'a' (kept by the service, shown to tools).
  const chosen = current.selector || { type: 'none' };
  const kind = h('select', { name: 'editSelectorType', 'aria-label': 'selector type' },
    ['none', 'label'].map((t) => h('option', { value: t, selected: chosen.type === t }, t)));
  const expression = h('input', { name: 'editSelectorExpression', class: 'meta', value: chosen.expression || '', 'aria-label': 'selector expression', placeholder: "INSTANCE.metadata.zone = 'a'" });
  const error = h('span', { class: 'error' });
  const form = h('form', { class: 'filters edit-service' },
    h('label', {}, 'protect threshold ', threshold), h('label', {}, 'metadata ', meta),
    h('label', {}, 'selector ', kind), h('label', {}, 'expression ', expression),
    h('button', { type: 'submit' }, 'Save'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const selector = kind.value === 'label'
      ? { type: 'label', expression: expression.value.trim() } : { type: 'none' };
    try {
      await api(SERVICE, {
        namespaceId: service.namespace, serviceName: service.name, groupName: service.group,
        // Emptied: no metadata (an empty parameter would mean "unchanged").
        protectThreshold: threshold.value, metadata: meta.value.trim() || '{}',
        selector: JSON.stringify(selector),
      }, 'PUT');
      reload();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  return h('details', { class: 'create' }, h('summary', {}, 'Edit service'), form);
}

/** A form that adds a persistent instance to `service` (`POST instance`, `ephemeral=false`). */
function addInstanceForm(service, reload) {
  const ip = h('input', { name: 'newIp', required: true, placeholder: 'ip' });
  const port = h('input', { name: 'newPort', required: true, type: 'number', min: 1, max: 65535, placeholder: 'port' });
  const cluster = h('input', { name: 'newCluster', placeholder: 'cluster (DEFAULT)' });
  const weight = h('input', { name: 'newWeight', class: 'weight', type: 'number', min: 0, max: 10000, step: 'any', value: 1, 'aria-label': 'weight' });
  const error = h('span', { class: 'error' });
  const form = h('form', { class: 'filters add-instance' },
    ip, port, cluster, h('label', {}, 'weight ', weight),
    h('button', { type: 'submit' }, 'Add persistent instance'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api(INSTANCE, {
        namespaceId: service.namespace, serviceName: service.name, groupName: service.group,
        ip: ip.value.trim(), port: port.value, clusterName: cluster.value.trim(), weight: weight.value,
        ephemeral: 'false',
      }, 'POST');
      error.textContent = '';
      ip.value = '';
      port.value = '';
      reload();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  return form;
}

async function patch(service, instance, fields) {
  await api(INSTANCE, {
    namespaceId: service.namespace, serviceName: service.name, groupName: service.group,
    clusterName: instance.clusterName, ip: instance.ip, port: instance.port, ...fields,
  }, 'PATCH');
}

/**
 * The writer's batch actions on the instances picked in the rows (their
 * addresses in `picked`, kept across live redraws): offline, online, or one
 * weight for all, each a `PATCH instance` per instance.
 */
function batchBar(service, picked, instances, reload) {
  const count = h('span', { class: 'picked-count' }, '0 picked');
  const weight = h('input', { class: 'weight', name: 'batchWeight', type: 'number', min: 0, max: 10000, step: 'any', 'aria-label': 'weight for the picked instances' });
  const said = h('span', { class: 'error' });
  const apply = (fields) => async () => {
    const chosen = instances().filter((i) => picked.has(`${i.ip}:${i.port}`));
    if (!chosen.length) return;
    const failed = [];
    for (const i of chosen) {
      try { await patch(service, i, typeof fields === 'function' ? fields() : fields); } catch (e) { failed.push(`${i.ip}:${i.port}: ${e.message}`); }
    }
    said.textContent = failed.join('; ');
    picked.clear();
    count.textContent = '0 picked';
    reload();
  };
  const bar = h('p', { class: 'batch filters' }, count, ' ',
    h('button', { type: 'button', class: 'batch-offline', onclick: apply({ enabled: false }) }, 'take offline'),
    h('button', { type: 'button', class: 'batch-online', onclick: apply({ enabled: true }) }, 'bring online'),
    weight, h('button', { type: 'button', class: 'batch-weight', onclick: apply(() => ({ weight: weight.value })) }, 'set weight'),
    said);
  bar.update = () => { count.textContent = `${picked.size} picked`; };
  return bar;
}

function instanceRow(service, i, reload, canWrite, picked, bar) {
  const metaText = Object.entries(i.metadata).map(([k, v]) => `${k}=${v}`).join(',');
  const weight = h('input', { class: 'weight', type: 'number', min: 0, max: 10000, step: 'any', value: i.weight, 'aria-label': 'weight' });
  const meta = h('input', { class: 'meta', value: metaText, 'aria-label': 'metadata' });
  const act = (fields) => async () => {
    try { await patch(service, i, fields); } catch (e) { alert(e.message); }
    reload();
  };
  const o = i.override;
  // A user who may not write the service sees values, not controls.
  const edit = (control, text) => (canWrite ? control : h('span', { class: 'readonly' }, text));
  return h('tr', { class: `${i.healthy ? '' : 'unhealthy'} ${i.enabled ? '' : 'disabled'}`, 'data-address': `${i.ip}:${i.port}` },
    h('td', { class: 'mono' }, canWrite ? h('input', {
      type: 'checkbox', class: 'pick', 'aria-label': `pick ${i.ip}:${i.port}`, checked: picked.has(`${i.ip}:${i.port}`),
      onchange: (event) => {
        if (event.target.checked) picked.add(`${i.ip}:${i.port}`); else picked.delete(`${i.ip}:${i.port}`);
        bar.update();
      },
    }) : '', ' ', `${i.ip}:${i.port}`),
    h('td', {}, i.healthy ? 'healthy' : 'unhealthy', i.enabled ? '' : ' · offline'),
    h('td', {}, edit([weight, h('button', { type: 'button', onclick: () => act({ weight: weight.value })() }, 'set')], String(i.weight))),
    h('td', {}, edit(h('button', { type: 'button', class: 'toggle', onclick: act({ enabled: !i.enabled }) }, i.enabled ? 'take offline' : 'bring online'),
      i.enabled ? 'online' : 'offline')),
    h('td', {}, i.ephemeral ? 'ephemeral' : 'persistent', i.lease === 'Beat' ? ' · beats' : ' · connection'),
    h('td', {}, i.ephemeral && i.lease === 'Beat' ? ago(i.lastBeat) : '—'),
    h('td', {}, o ? h('span', { class: 'override', title: 'Kept while the client beats; replaced when it registers again.' },
      `override by ${o.by || 'anonymous'}: weight ${o.weight}, ${o.enabled ? 'online' : 'offline'}`) : ''),
    h('td', {}, i.change ? `${i.change.what}: ${cause(i.change.cause)} (${ago(i.change.at)})` : ''),
    h('td', {}, edit([meta, h('button', { type: 'button', onclick: () => act({ metadata: meta.value })() }, 'set')], metaText)),
    // A persistent instance stays until deleted; an ephemeral one goes with its client.
    h('td', {}, canWrite && !i.ephemeral
      ? h('button', { type: 'button', class: 'delete', onclick: () => remove(service, i, reload) }, 'delete') : ''));
}

/** Deletes a persistent instance, after asking. */
async function remove(service, i, reload) {
  if (!confirm(`Delete the persistent instance ${i.ip}:${i.port}?`)) return;
  try {
    await api(INSTANCE, {
      namespaceId: service.namespace, serviceName: service.name, groupName: service.group,
      clusterName: i.clusterName, ip: i.ip, port: i.port, ephemeral: 'false',
    }, 'DELETE');
  } catch (e) { alert(e.message); }
  reload();
}

/**
 * What the signed-in user may do with `key` (namespaceId, groupName,
 * serviceName), as the node decides it; a node that cannot say is taken at
 * its word on each request (its refusal is shown).
 */
export async function access(key) {
  try {
    return await api('/nacre/v1/console/access', key);
  } catch (_) {
    return { read: true, write: true };
  }
}

export function feedTable(changes) {
  return table(['time', 'instance', 'what', 'why', 'decided by'], changes.map((c) => h('tr', {},
    h('td', {}, when(c.at)),
    h('td', { class: 'mono' }, `${c.service.group}@@${c.service.name} ${c.instance.ip}:${c.instance.port}`),
    h('td', {}, c.what),
    h('td', {}, cause(c.cause)),
    h('td', { class: 'mono' }, c.node))), 'No changes recorded on this node yet.');
}

/** Deletes a service, after asking, and goes back to the list. */
async function deleteService(service) {
  if (!confirm(`Delete the service ${service.group}@@${service.name}?`)) return;
  try {
    await api(SERVICE, { namespaceId: service.namespace, serviceName: service.name, groupName: service.group }, 'DELETE');
    go('services');
  } catch (e) { alert(e.message); }
}

export async function serviceView(box, params, ns) {
  const service = { namespace: ns, name: params.get('service') || '', group: params.get('group') || 'DEFAULT_GROUP' };
  const key = { namespaceId: ns, serviceName: service.name, groupName: service.group };
  const content = h('div');
  // The writer's forms are built once, not re-rendered by live updates, so
  // what is being typed into them stays.
  const tools = h('div');
  const changes = h('div');
  const paused = h('p', { class: 'warn', id: 'live-paused', hidden: true },
    'This service changed while you were editing: its instances are shown again when you leave the field.');
  box.append(h('h1', {}, `${service.group} / ${service.name}`),
    h('p', {}, h('a', { href: `#/subscribers?ns=${encodeURIComponent(ns)}&service=${encodeURIComponent(service.name)}&group=${encodeURIComponent(service.group)}` }, 'subscribers')),
    paused, content, tools, changes);
  const asked = access(key);
  // Picked rows (by address) survive redraws; the bar is built once.
  const picked = new Set();
  let latest = [];
  const bar = batchBar(service, picked, () => latest, () => load());
  const load = async () => {
    const [may, detail, all, feed] = await Promise.all([
      asked,
      api('/nacos/v1/ns/catalog/service', key),
      api('/nacre/v1/console/instances', { ...key, pageSize: 1000 }),
      api('/nacre/v1/console/feed', { ...key, limit: 20 }),
    ]);
    latest = all.list;
    for (const address of [...picked]) {
      if (!latest.some((i) => `${i.ip}:${i.port}` === address)) picked.delete(address);
    }
    bar.update();
    const healthy = all.list.filter((i) => i.healthy).length;
    const threshold = detail.service.protectThreshold;
    const active = all.count > 0 && healthy / all.count <= threshold;
    const cards = detail.clusters.map((c) => {
      const rows = all.list.filter((i) => i.clusterName === c.name).map((i) => instanceRow(service, i, load, may.write, picked, bar));
      return h('div', { class: 'card' },
        h('h2', {}, `cluster ${c.name}`),
        h('p', { class: 'muted' }, `health check ${c.healthChecker.type}, check port ${c.useIPPort4Check ? 'the instance\'s' : c.defaultCheckPort}`),
        table(['address', 'health', 'weight', 'online', 'kind', 'last beat', 'override', 'last change', 'metadata', ''], rows, 'No instances in this cluster.'));
    });
    content.replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, 'instances'), h('dd', {}, `${all.count} (${healthy} healthy)`),
        h('dt', {}, 'protect threshold'), h('dd', {}, String(threshold), ' — ',
          active ? h('span', { class: 'warn' }, 'active now: clients are sent every instance, healthy or not')
            : 'not active'),
        h('dt', {}, 'metadata'), h('dd', { class: 'mono' }, JSON.stringify(detail.service.metadata)),
        h('dt', {}, 'selector'), h('dd', { class: 'mono' }, JSON.stringify(detail.service.selector))),
      may.write
        ? h('p', { class: 'muted' }, 'An edit of an ephemeral instance\'s weight or online state is an override: it stays while the client beats and is replaced by the client\'s own values when it registers again.')
        : h('p', { class: 'readonly-note muted' }, `Read-only: ${may.user || 'you'} may read this service but not change it.`),
      may.write ? bar : '',
      ...cards);
    if (may.write && !tools.hasChildNodes()) {
      tools.append(editServiceForm(service, detail.service, load),
        h('h2', {}, 'Add a persistent instance'), addInstanceForm(service, load),
        h('p', {}, h('button', { type: 'button', class: 'delete-service', onclick: () => deleteService(service) }, 'Delete this service'),
          h('span', { class: 'muted' }, ' (only an empty service can be deleted)')));
    }
    changes.replaceChildren(h('h2', {}, 'Changes'), feedTable(feed.changes));
  };
  try {
    await load();
  } catch (e) {
    if (e.status !== 404) throw e;
    content.replaceChildren(h('p', { class: 'error' }, `No service ${service.group}@@${service.name} in ${ns}.`));
  }
  const reload = debounce(load);
  // A live update redraws the instance rows: while a value is being typed
  // into one of them, the redraw waits until the field is left.
  const editing = () => content.contains(document.activeElement)
    && document.activeElement.tagName === 'INPUT' && document.activeElement.type !== 'checkbox';
  content.addEventListener('focusout', () => setTimeout(() => {
    if (!paused.hidden && !editing()) {
      paused.hidden = true;
      reload();
    }
  }, 0));
  return {
    live: (c) => {
      if (c.service.name !== service.name || c.service.group !== service.group) return;
      if (editing()) paused.hidden = false;
      else reload();
    },
  };
}
