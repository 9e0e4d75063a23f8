// Drives the real Nacos Node.js client (npm nacos-naming 2.6.3, unchanged)
// configured with a username and password against a server with auth on.
//
// The client never logs in: it adds username and password to the query
// string of every request, beats and lists included (lib/naming/proxy.js
// _callServer). A refused request reaches the caller only as "failed to req
// API: <api> after all servers(...) tried"; the server's status and body go
// to the logger's warn() as an error with `status` (proxy.js _reqAPI), and a
// refused beat to error() as "[CLIENT-BEAT] failed to send beat" (sendBeat).
//
// Env:
//   NACOS_ADDR     host:port of the server (required)
//   MODE           "grants": WRITER and READER ("name:password"; the writer
//                  may write the public namespace, the reader only read it):
//                  what each may do, wrong and missing credentials
//                  "hold": as USERNAME / PASSWORD register SERVICE at
//                  127.0.0.1:PORT (the client beats for it), print
//                  {"step":"ready"}; for each line "call" on stdin list
//                  SERVICE, printing {"step":"call","allowed":bool,
//                  "status":..,"message":..}; print {"step":"beat-refused",
//                  "status":..,"message":..} for each refused beat; ends
//                  when stdin closes
//   WAIT_LIMIT_MS  bound of every poll (default 10000, 100 ms steps)
//
// Prints one JSON line per step ({"step":...,"ok":true,...}); on the first
// failure prints {"step":...,"ok":false,"error":...} and exits 1.
'use strict';

// Pushes go to the client's `clientIP`; tests only use loopback (see compat.js).
require('address').ip = () => '127.0.0.1';

const assert = require('assert');
const readline = require('readline');
const { NacosNamingClient } = require('nacos-naming');
const { WAIT_LIMIT_MS, step, waitFor } = require('./steps');

const addr = process.env.NACOS_ADDR;
const GROUP = 'DEFAULT_GROUP';
const LIST_API = '/nacos/v1/ns/instance/list';

let current = 'start';

// A logger that keeps the last refusal the client warned about (the only
// place the server's status and body appear) and reports refused beats.
function recordingLogger(onBeatRefused = () => {}) {
  const logger = {
    lastRefusal: null,
    info() {}, debug() {},
    warn(err) {
      if (err && err.status) {
        const body = String(err.message).split(' msg: ')[1] || '';
        let message = body;
        try { message = JSON.parse(body).message; } catch (_) { /* not JSON */ }
        logger.lastRefusal = { status: err.status, message };
      }
    },
    error(err) {
      if (err && String(err.message).includes('[CLIENT-BEAT] failed to send beat')) {
        onBeatRefused(logger.lastRefusal);
      } else {
        console.error('[client error]', err);
      }
    },
  };
  return logger;
}

async function clientAs(pair, onBeatRefused) {
  const options = { logger: recordingLogger(onBeatRefused), serverList: addr, namespace: 'public' };
  if (pair) {
    const at = pair.indexOf(':');
    options.username = pair.slice(0, at);
    options.password = pair.slice(at + 1);
  }
  const client = new NacosNamingClient(options);
  await client.ready();
  return client;
}

const hostsOf = list => (list || []).map(h => `${h.ip}:${h.port}`).sort().join(',');
const listAll = (client, service) => client.getAllInstances(service, GROUP, '', false);

// `call` must be refused with `status` and Nacos's `message`; the client
// itself only says that no server answered.
async function refused(what, client, api, status, message, call) {
  client.logger.lastRefusal = null;
  await assert.rejects(call, err => {
    assert.ok(err.message.startsWith(`failed to req API: ${api} after all servers`), `${what}: ${err.message}`);
    return true;
  }, `${what} was allowed`);
  assert.deepStrictEqual(client.logger.lastRefusal, { status, message }, what);
}

async function grants() {
  const service = `node-auth-${process.pid}`;

  current = 'writer-registers';
  const writer = await clientAs(process.env.WRITER);
  await writer.registerInstance(service, { ip: '10.9.0.1', port: 8080 });
  let last;
  await waitFor('the writer lists its instance', async () => {
    last = await listAll(writer, service);
    return hostsOf(last) === '10.9.0.1:8080';
  }, () => hostsOf(last));
  step(current, { service });

  current = 'reader-reads';
  const reader = await clientAs(process.env.READER);
  const changes = [];
  reader.subscribe(service, hosts => changes.push(hostsOf(hosts)));
  await writer.registerInstance(service, { ip: '10.9.0.2', port: 8080 });
  await waitFor('the reader\'s listener sees both',
    () => changes.includes('10.9.0.1:8080,10.9.0.2:8080'), () => JSON.stringify(changes));
  assert.strictEqual(hostsOf(await listAll(reader, service)), '10.9.0.1:8080,10.9.0.2:8080');
  step(current, { changes: changes.length });

  current = 'reader-writes-refused';
  const failed = 'authorization failed!';
  await refused('the reader\'s registration', reader, '/nacos/v1/ns/instance', 403, failed,
    () => reader.registerInstance(service, { ip: '10.9.0.3', port: 8080 }));
  await refused('the reader\'s deregistration', reader, '/nacos/v1/ns/instance', 403, failed,
    () => reader.deregisterInstance(service, { ip: '10.9.0.1', port: 8080 }));
  assert.strictEqual(hostsOf(await listAll(writer, service)), '10.9.0.1:8080,10.9.0.2:8080',
    'a refused write changed the registry');
  step(current, { status: 403, message: failed });

  current = 'wrong-password-refused';
  const name = process.env.READER.split(':')[0];
  const wrong = await clientAs(`${name}:not-the-password`);
  await refused('a list with a wrong password', wrong, LIST_API, 403, 'unknown user!',
    () => listAll(wrong, service));
  step(current);

  current = 'no-credentials-refused';
  const anonymous = await clientAs(null);
  await refused('a list without credentials', anonymous, LIST_API, 403, 'unknown user!',
    () => listAll(anonymous, service));
  step(current);

  for (const client of [writer, reader, wrong, anonymous]) await client.close();
}

async function hold() {
  const service = process.env.SERVICE;
  current = 'ready';
  const client = await clientAs(`${process.env.USERNAME}:${process.env.PASSWORD}`,
    refusal => step('beat-refused', refusal || {}));
  await client.registerInstance(service, { ip: '127.0.0.1', port: Number(process.env.PORT) });
  step(current);
  current = 'call';
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() !== 'call') continue;
    client.logger.lastRefusal = null;
    try {
      const hosts = hostsOf(await listAll(client, service));
      step(current, { allowed: true, hosts });
    } catch (err) {
      step(current, { allowed: false, ...client.logger.lastRefusal, error: err.message });
    }
  }
  await client.close();
}

async function main() {
  if (!addr) throw new Error('NACOS_ADDR (host:port) is required');
  setTimeout(() => {
    console.log(JSON.stringify({ step: current, ok: false, error: 'watchdog: run took too long' }));
    process.exit(2);
  }, 10 * WAIT_LIMIT_MS + 60000).unref();
  await (process.env.MODE === 'hold' ? hold() : grants());
}

main().then(
  () => process.exit(0),
  err => {
    console.log(JSON.stringify({ step: current, ok: false, error: String(err && err.message || err) }));
    console.error(`FAILED in step ${current}: ${err && err.stack || err}`);
    process.exit(1);
  },
);
