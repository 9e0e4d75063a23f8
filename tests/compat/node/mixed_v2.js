// One side of the mixed v1/v2 tests: the real Nacos Node.js client (npm
// nacos-naming, v1 HTTP + UDP push) next to a Nacos 2.x gRPC client.
//
// Env:
//   NACOS_ADDR  host:port of the server (required)
//   MODE        "watch": subscribe to SERVICE and print {"step":"hosts",
//               "hosts":"ip:port,..."} each time the listener fires
//               "hold": register SERVICE at 127.0.0.1:PORT (the client beats
//               for it), print {"step":"registered"}
//   SERVICE, PORT
// Either mode runs until stdin closes ("hold" then deregisters), at most
// 120 s; every line is one JSON object.
'use strict';

// Pushes go to the client's `clientIP`; tests only use loopback (see compat.js).
require('address').ip = () => '127.0.0.1';

const { NacosNamingClient } = require('nacos-naming');
const { step, quietLogger } = require('./steps');

function stdinClosed() {
  return new Promise(resolve => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
  });
}

async function main() {
  setTimeout(() => {
    console.error('FAILED: watchdog');
    process.exit(2);
  }, 120000).unref();
  const service = process.env.SERVICE;
  const client = new NacosNamingClient({
    logger: quietLogger, serverList: process.env.NACOS_ADDR, namespace: 'public',
  });
  await client.ready();
  if (process.env.MODE === 'watch') {
    client.subscribe(service, hosts => {
      const list = hosts.map(h => `${h.ip}:${h.port}`).sort().join(',');
      step('hosts', { hosts: list, at: Date.now() });
    });
    step('subscribed');
    await stdinClosed();
  } else {
    const instance = { ip: '127.0.0.1', port: Number(process.env.PORT) };
    await client.registerInstance(service, instance);
    step('registered');
    await stdinClosed();
    await client.deregisterInstance(service, instance);
    step('deregistered');
  }
  await client.close();
  process.exit(0);
}

main().catch(err => {
  console.error('FAILED:', err);
  process.exit(1);
});
