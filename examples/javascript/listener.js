// A listener plugin in JavaScript: watches how many instances of each service
// are healthy, logs the count on every change, and warns when it falls below
// the plugin's `min_healthy` setting (default 1).
//
// The same plugin is in examples/c and examples/python; the host's tests check
// that all three say the same thing about the same events.
//
// Build (scripts/build-plugins.sh does exactly this):
//   npm ci && npm run build       # componentize-js → javascript_listener.wasm
// Try:
//   nacre plugin test listener.toml --event event.json

import { log, configGet } from 'nacre:plugin/host@0.1.0';

// The plugin's `min_healthy` setting from its manifest, or 1.
function minHealthy() {
  const value = configGet('min_healthy');
  const parsed = value === undefined ? NaN : Number.parseInt(value, 10);
  return Number.isInteger(parsed) && parsed >= 0 ? parsed : 1;
}

function logCounts(level, message, service, healthy, total) {
  log(level, message, [
    ['service', service],
    ['healthy', String(healthy)],
    ['total', String(total)],
  ]);
}

// `on-change`: its `result<_, string>` is a return (ok) or a thrown string (error).
export function onChange(event) {
  const name = event.service.name;
  if (event.kinds.removed) {
    logCounts('info', `${name} was removed`, name, 0, 0);
    return;
  }
  const total = event.instances.length;
  const healthy = event.instances.filter((i) => i.healthy && i.enabled).length;
  logCounts('info', `${name}: ${healthy} of ${total} instances healthy`, name, healthy, total);
  const minimum = minHealthy();
  if (healthy < minimum) {
    logCounts('warn', `${name} has fewer than ${minimum} healthy instances`, name, healthy, total);
  }
}
