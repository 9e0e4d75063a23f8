// What the Node.js client scripts share: their one-JSON-line-per-step output
// and bounded waits.
//
// Env: WAIT_LIMIT_MS  default bound of every poll (10000, 100 ms steps).
'use strict';

const WAIT_LIMIT_MS = Number(process.env.WAIT_LIMIT_MS || '10000');

// Prints {"step":name,"ok":true,...extra} as one line.
function step(name, extra = {}) {
  console.log(JSON.stringify({ step: name, ok: true, ...extra }));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Polls `check` every 100 ms until it returns something truthy, at most
// limitMs (WAIT_LIMIT_MS); describe() says in the error what was last seen.
async function waitFor(what, check, describe = () => '', limitMs = WAIT_LIMIT_MS) {
  const start = Date.now();
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() - start > limitMs) {
      throw new Error(`timed out after ${limitMs} ms waiting for: ${what} ${describe()}`.trim());
    }
    await sleep(100);
  }
}

// A client logger that keeps only errors, on stderr.
const quietLogger = {
  info() {}, debug() {}, warn() {},
  error(...args) { console.error('[client error]', ...args); },
};

module.exports = { WAIT_LIMIT_MS, step, sleep, waitFor, quietLogger };
