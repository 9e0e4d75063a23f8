// Drives the real Nacos Node.js client (npm nacos-naming) against a node.
//
// Env: NACOS_ADDR (host:port), MODE ("basic" or "subscribe"), BEAT_PHASE_MS.
// Prints one JSON line per step; exits non-zero on the first failure.
'use strict';

// The client reports the machine's first non-loopback address as its push
// address; tests only ever talk over loopback, so pin it before loading it.
require('address').ip = () => '127.0.0.1';

const { NacosNamingClient } = require('nacos-naming');

const addr = process.env.NACOS_ADDR;
const mode = process.env.MODE || 'basic';
const beatPhaseMs = Number(process.env.BEAT_PHASE_MS || '0');
const LIMIT_MS = 15000;

const quietLogger = {
  info() {}, debug() {}, warn() {},
  error(...args) { console.error('[client error]', ...args); },
};

function step(name, extra = {}) {
  console.log(JSON.stringify({ step: name, ok: true, ...extra }));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function waitFor(what, check) {
  const start = Date.now();
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() - start > LIMIT_MS) throw new Error(`timed out waiting for: ${what}`);
    await sleep(100);
  }
}

const hostsOf = list => list.map(h => `${h.ip}:${h.port}`).sort().join(',');

async function basic(client) {
  const service = `node-compat-${process.pid}`;
  const first = { ip: '10.9.0.1', port: 8080, weight: 2, metadata: { zone: 'a' } };
  const second = { ip: '10.9.0.2', port: 8080 };

  await client.registerInstance(service, first);
  const listed = await waitFor('first instance listed', async () => {
    const hosts = await client.getAllInstances(service, 'DEFAULT_GROUP', '', false);
    return hosts.find(h => h.ip === first.ip && h.port === first.port);
  });
  if (listed.weight !== 2 || listed.metadata.zone !== 'a' || listed.healthy !== true) {
    throw new Error(`first instance listed wrongly: ${JSON.stringify(listed)}`);
  }
  step('register-and-list', { instance: listed.instanceId });

  const healthy = await client.selectInstances(service, 'DEFAULT_GROUP', '', true, false);
  if (hostsOf(healthy) !== '10.9.0.1:8080') throw new Error(`selectInstances: ${hostsOf(healthy)}`);
  step('select-healthy');

  await client.registerInstance(service, second);
  await client.deregisterInstance(service, first);
  await waitFor('only the second instance listed', async () => {
    const hosts = await client.getAllInstances(service, 'DEFAULT_GROUP', '', false);
    return hostsOf(hosts) === '10.9.0.2:8080';
  });
  step('deregister');

  if ((await client.getServerStatus()) !== 'UP') throw new Error('server status is not UP');
  step('server-status');

  if (beatPhaseMs > 0) {
    // Only the client's own beat loop keeps the second instance alive now.
    await sleep(beatPhaseMs);
    const hosts = await client.getAllInstances(service, 'DEFAULT_GROUP', '', false);
    const alive = hosts.find(h => h.ip === second.ip && h.port === second.port);
    if (!alive || alive.healthy !== true) {
      throw new Error(`beating instance lost after ${beatPhaseMs} ms: ${JSON.stringify(hosts)}`);
    }
    step('beats-keep-alive', { ms: beatPhaseMs, service });
  }
}

async function subscribe(client) {
  const service = `node-push-${process.pid}`;
  const changes = [];
  client.subscribe(service, hosts => changes.push({ at: Date.now(), hosts }));
  // Let the subscription's first poll (1 s after subscribing) pass: from then
  // on the client polls only every cacheMillis (10 s), so a change seen sooner
  // came by push.
  await sleep(1500);
  const started = Date.now();
  const form = new URLSearchParams({ serviceName: service, ip: '10.9.1.1', port: '9000' });
  const reply = await fetch(`http://${addr}/nacos/v1/ns/instance`, { method: 'POST', body: form });
  if (reply.status !== 200) throw new Error(`register over HTTP: ${reply.status}`);
  const seen = await waitFor('listener fired with the new instance', async () =>
    changes.find(c => c.at >= started && hostsOf(c.hosts) === '10.9.1.1:9000'));
  const elapsed = seen.at - started;
  if (elapsed > 2000) throw new Error(`change took ${elapsed} ms: that is polling, not push`);
  step('push-received', { ms: elapsed });

  const form2 = new URLSearchParams({ serviceName: service, ip: '10.9.1.2', port: '9000' });
  const started2 = Date.now();
  await fetch(`http://${addr}/nacos/v1/ns/instance`, { method: 'POST', body: form2 });
  const seen2 = await waitFor('listener fired with the second instance', async () =>
    changes.find(c => c.at >= started2 && hostsOf(c.hosts) === '10.9.1.1:9000,10.9.1.2:9000'));
  step('push-received-again', { ms: seen2.at - started2 });
}

async function main() {
  if (!addr) throw new Error('NACOS_ADDR is required');
  const client = new NacosNamingClient({ logger: quietLogger, serverList: addr, namespace: 'public' });
  await client.ready();
  try {
    if (mode === 'subscribe') await subscribe(client);
    else await basic(client);
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  err => { console.error(`FAILED: ${err.stack || err}`); process.exit(1); },
);
