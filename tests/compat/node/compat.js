// Drives the real Nacos Node.js client (npm nacos-naming 2.6.3, unchanged)
// against a Nacos-compatible server.
//
// Env:
//   NACOS_ADDR     host:port of the server (required)
//   WRITE_ADDR     host:port the subscribe phase makes its changes through
//                  (default NACOS_ADDR; another cluster member tests that a
//                  change made on one node is pushed by another)
//   MODE           "basic" (default) or "subscribe" (the subscribe phase only)
//   SUBSCRIBE=1    run the subscribe phase after the basic one
//   BEAT_PHASE_MS  length of the "beats keep alive" phase; 0 or unset skips it
//   WAIT_LIMIT_MS  bound of every poll (default 10000, 100 ms steps)
//   PUSH_MAX_MS    a listener change slower than this is polling, not push:
//                  fail (default 5000, half the client's 10 s poll; 0 accepts
//                  changes found by polling)
//
// Prints one JSON line per step ({"step":...,"ok":true,...}); on the first
// failure prints {"step":...,"ok":false,"error":...}, a FAILED line on stderr,
// and exits 1. Every wait is bounded, and a watchdog ends the whole run.
'use strict';

// The client reports the machine's first non-loopback IPv4 (address.ip(),
// read once when lib/naming/proxy.js loads) as `clientIP`, the address pushes
// go to. Tests only ever talk over loopback, so pin it before loading it.
require('address').ip = () => '127.0.0.1';

const assert = require('assert');
const { NacosNamingClient } = require('nacos-naming');
const { WAIT_LIMIT_MS, step, sleep, waitFor, quietLogger } = require('./steps');

const addr = process.env.NACOS_ADDR;
const writeAddr = process.env.WRITE_ADDR || addr;
const mode = process.env.MODE || 'basic';
const runBasic = mode !== 'subscribe';
const runSubscribe = mode === 'subscribe' || process.env.SUBSCRIBE === '1';
const beatPhaseMs = Number(process.env.BEAT_PHASE_MS || '0');
const PUSH_MAX_MS = Number(process.env.PUSH_MAX_MS || '5000');
const GROUP = 'DEFAULT_GROUP';
const unique = `${process.pid}-${Date.now().toString(36)}`;

let current = 'start';
const began = Date.now();

const hostsOf = list => (list || []).map(h => `${h.ip}:${h.port}`).sort().join(',');
const find = (list, inst) => (list || []).find(h => h.ip === inst.ip && h.port === inst.port);

// Straight from the server every time (subscribe=false: udpPort=0, no cache).
async function listAll(client, service) {
  return client.getAllInstances(service, GROUP, '', false);
}

async function basic(client) {
  const service = `node-compat-${unique}`;
  const first = { ip: '10.9.0.1', port: 8080, weight: 2, metadata: { zone: 'a', owner: 'nacre' } };
  const second = { ip: '10.9.0.2', port: 8080 };

  current = 'register-and-list';
  let t0 = Date.now();
  await client.registerInstance(service, first);
  let last;
  const listed = await waitFor('first instance listed', async () => {
    last = await listAll(client, service);
    return find(last, first);
  }, () => JSON.stringify(last));
  assert.strictEqual(listed.weight, 2, `weight: ${JSON.stringify(listed)}`);
  assert.deepStrictEqual(listed.metadata, first.metadata, `metadata: ${JSON.stringify(listed)}`);
  assert.strictEqual(listed.healthy, true, `healthy: ${JSON.stringify(listed)}`);
  assert.strictEqual(listed.enabled, true, `enabled: ${JSON.stringify(listed)}`);
  step(current, { service, instance: listed.instanceId, ms: Date.now() - t0 });

  current = 'select-healthy';
  // selectInstances keeps hosts with healthy === wanted && enabled && weight > 0.
  const healthy = await client.selectInstances(service, GROUP, '', true, false);
  assert.strictEqual(hostsOf(healthy), '10.9.0.1:8080', `healthy: ${JSON.stringify(healthy)}`);
  const unhealthy = await client.selectInstances(service, GROUP, '', false, false);
  assert.strictEqual(hostsOf(unhealthy), '', `unhealthy: ${JSON.stringify(unhealthy)}`);
  step(current);

  current = 'register-second';
  await client.registerInstance(service, second);
  await waitFor('both instances listed', async () => {
    last = await listAll(client, service);
    return hostsOf(last) === '10.9.0.1:8080,10.9.0.2:8080';
  }, () => hostsOf(last));
  step(current);

  current = 'deregister';
  t0 = Date.now();
  await client.deregisterInstance(service, first);
  // Not the last instance: the client ignores replies with empty `hosts`
  // (ServiceInfo.isValid) and would keep answering the old list.
  await waitFor('only the second instance listed', async () => {
    last = await listAll(client, service);
    return hostsOf(last) === '10.9.0.2:8080';
  }, () => hostsOf(last));
  step(current, { ms: Date.now() - t0 });

  current = 'server-status';
  // GET /nacos/v1/ns/operator/metrics, reads `status`.
  const status = await client.getServerStatus();
  assert.strictEqual(status, 'UP', `server status ${status}`);
  step(current);

  if (beatPhaseMs > 0) {
    // Only the client's own beat loop keeps the second instance alive now:
    // it must stay listed and healthy at every sample, not just at the end
    // (a beat carrying its body would re-register a deleted instance).
    current = 'beats-keep-alive';
    const end = Date.now() + beatPhaseMs;
    let samples = 0;
    for (;;) {
      const hosts = await listAll(client, service);
      const alive = find(hosts, second);
      samples += 1;
      if (!alive || alive.healthy !== true) {
        throw new Error(`beating instance lost or unhealthy ${beatPhaseMs - (end - Date.now())} ms into the ` +
          `${beatPhaseMs} ms phase: ${JSON.stringify(hosts)}`);
      }
      if (Date.now() >= end) break;
      await sleep(Math.min(250, Math.max(0, end - Date.now())));
    }
    step(current, { ms: beatPhaseMs, samples, service });
  }
}

async function registerOverHttp(service, ip, port) {
  const form = new URLSearchParams({ serviceName: service, ip, port: String(port) });
  const reply = await fetch(`http://${writeAddr}/nacos/v1/ns/instance`, {
    method: 'POST', body: form, signal: AbortSignal.timeout(5000),
  });
  const text = await reply.text();
  if (reply.status !== 200) throw new Error(`register ${ip}:${port} over HTTP: ${reply.status} ${text}`);
}

async function deregisterOverHttp(service, ip, port) {
  const query = new URLSearchParams({ serviceName: service, ip, port: String(port) });
  const reply = await fetch(`http://${writeAddr}/nacos/v1/ns/instance?${query}`, {
    method: 'DELETE', signal: AbortSignal.timeout(5000),
  });
  const text = await reply.text();
  if (reply.status !== 200) throw new Error(`deregister ${ip}:${port} over HTTP: ${reply.status} ${text}`);
}

async function subscribe(client) {
  const service = `node-push-${unique}`;
  const changes = [];
  const listener = hosts => changes.push({ at: Date.now(), hosts });

  current = 'subscribe';
  client.subscribe(service, listener);
  // subscribe() queries instance/list at once with udpPort/clientIP (making
  // this client a push subscriber), again 1 s later, then, while the service
  // has no instances, every 5 s (the client's placeholder has no cacheMillis),
  // afterwards every cacheMillis of the last list. Let the 1 s query pass: a
  // change seen within PUSH_MAX_MS after that came by push.
  await sleep(1500);
  step(current, { service });

  // Without push the client finds a change by polling, every cacheMillis
  // (10 s from Nacos for a push-capable agent): allow one poll cycle then.
  const changeLimitMs = PUSH_MAX_MS > 0 ? WAIT_LIMIT_MS : Math.max(WAIT_LIMIT_MS, 15000);
  async function expectChange(stepName, what, expected, action) {
    current = stepName;
    const started = Date.now();
    await action();
    const seen = await waitFor(`listener fired with ${what}`, async () =>
      changes.find(c => c.at >= started && hostsOf(c.hosts) === expected),
    () => `(seen: ${JSON.stringify(changes.filter(c => c.at >= started).map(c => hostsOf(c.hosts)))})`,
    changeLimitMs);
    const elapsed = seen.at - started;
    if (PUSH_MAX_MS > 0 && elapsed > PUSH_MAX_MS) {
      throw new Error(`change took ${elapsed} ms (> ${PUSH_MAX_MS}): that is polling, not push`);
    }
    step(stepName, { ms: elapsed });
  }

  await expectChange('push-received', 'the new instance', '10.9.1.1:9000',
    () => registerOverHttp(service, '10.9.1.1', 9000));
  await expectChange('push-received-again', 'the second instance', '10.9.1.1:9000,10.9.1.2:9000',
    () => registerOverHttp(service, '10.9.1.2', 9000));
  // The client drops lists with no hosts, so remove one of two.
  await expectChange('push-removed', 'one instance removed', '10.9.1.2:9000',
    () => deregisterOverHttp(service, '10.9.1.1', 9000));

  current = 'unsubscribe';
  client.unSubscribe(service, listener);
  step(current);
}

async function main() {
  if (!addr) throw new Error('NACOS_ADDR (host:port) is required');
  // Whatever happens, the run ends: every phase plus a minute of slack.
  setTimeout(() => {
    console.log(JSON.stringify({ step: current, ok: false, error: 'watchdog: run took too long' }));
    console.error(`FAILED: watchdog fired after ${Date.now() - began} ms in step ${current}`);
    process.exit(2);
  }, beatPhaseMs + 8 * Math.max(WAIT_LIMIT_MS, 15000) + 60000).unref();

  current = 'ready';
  const client = new NacosNamingClient({ logger: quietLogger, serverList: addr, namespace: 'public' });
  // No HTTP at start-up with serverList: ready() only waits for the UDP
  // push receiver to bind.
  await client.ready();
  let failure = null;
  try {
    if (runBasic) await basic(client);
    if (runSubscribe) await subscribe(client);
  } catch (err) {
    failure = err;
  }
  const failedStep = current;
  current = 'close';
  await client.close();
  if (failure) {
    current = failedStep;
    throw failure;
  }
  step('close', { totalMs: Date.now() - began });
}

main().then(
  () => process.exit(0),
  err => {
    console.log(JSON.stringify({ step: current, ok: false, error: String(err && err.message || err) }));
    console.error(`FAILED in step ${current}: ${err && err.stack || err}`);
    process.exit(1);
  },
);
