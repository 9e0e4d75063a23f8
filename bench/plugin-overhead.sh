#!/usr/bin/env bash
# Register throughput of a node with a listener plugin on every service,
# against the same node without plugins, side by side in one run.
#
#   bench/plugin-overhead.sh [rounds]
#
# The listener is examples/wat/listener.wat (it accepts every event); the
# node compiles WAT text itself, so no toolchain is needed. Knobs:
# CONNECTIONS, DURATION (s).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

ROUNDS=${1:-3}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
cargo build --release -q -p nacre -p nacre-bench
NACRE="$target/release/nacre"
BENCH="$target/release/nacre-bench"
WORK=$(mktemp -d)
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
trap 'stop; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/plugins"
cp examples/wat/listener.wat "$WORK/plugins/listener.wat"
sed 's/listener.wasm/listener.wat/' examples/wat/listener.toml > "$WORK/plugins/listener.toml"

run() { # run LABEL [start flags...]
  local label=$1; shift
  "$NACRE" start --bind 127.0.0.1 --port 18848 --data-dir "$WORK/data-$RANDOM" "$@" > "$WORK/node.log" 2>&1 & PID=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18848/nacos/v1/ns/operator/metrics > /dev/null && break; sleep 0.1; done
  "$BENCH" --url http://127.0.0.1:18848 --json load --connections "$CONNECTIONS" --duration "$DURATION" --ops register \
    | grep '^{' | sed "s/^{/{\"label\":\"$label\",/"
  [ "$label" = listener ] && curl -s http://127.0.0.1:18848/nacre/v1/plugins >&2 && echo >&2
  stop
}

OUT=$WORK/out.jsonl
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    run none >> "$OUT"; run listener --plugins-dir "$WORK/plugins" >> "$OUT"
  else
    run listener --plugins-dir "$WORK/plugins" >> "$OUT"; run none >> "$OUT"
  fi
done
cat "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda label: statistics.median(r["per_second"] for r in rows if r["label"] == label)
none, listener = med("none"), med("listener")
print(f"register req/s: no plugins {none:,.0f}, listener on every service {listener:,.0f}, ratio {listener / none:.3f} ({(1 - listener / none) * 100:.1f}% lower)")
PY
