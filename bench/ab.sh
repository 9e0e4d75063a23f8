#!/usr/bin/env bash
# Two builds of Nacre side by side, in one run: did a change move the needle?
#
#   bench/ab.sh OLD_NACRE NEW_NACRE [rounds]
#
# OLD_NACRE and NEW_NACRE are `nacre` binaries (build the old one from a
# worktree of the old commit: `git worktree add ../old <rev>` then
# `cargo build --release -p nacre` there). Each round starts each binary
# fresh, alternating which goes first, as a standalone node (register, beat
# and list load) and as a three-member cluster on loopback (register load
# spread over the members). Knobs: CONNECTIONS, DURATION (s per op),
# NEW_ENV / OLD_ENV (extra NACRE_* settings, e.g. to compare a knob within one
# binary). Prints JSON lines and a table of new/old ratios of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: bench/ab.sh OLD_NACRE NEW_NACRE [rounds]}
NEW=${2:?usage: bench/ab.sh OLD_NACRE NEW_NACRE [rounds]}
ROUNDS=${3:-3}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-8}
cargo build --release -q -p nacre-bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
TARGET=$(target_dir)
BENCH=$TARGET/release/nacre-bench
WORK=$(mktemp -d)
OUT=$TARGET/bench-ab.jsonl
: > "$OUT"
PIDS=()

stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop; rm -rf "$WORK"' EXIT

# wait_ready URL: bounded wait until the node answers as ready.
wait_ready() {
  for _ in $(seq 200); do
    curl -sf "$1/nacos/v1/console/health/readiness" > /dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not become ready" >&2; exit 1
}

# run_node WHICH: a standalone node of binary WHICH (old|new) on 18848.
run_node() {
  local bin env
  if [ "$1" = old ]; then bin=$OLD; env=${OLD_ENV:-}; else bin=$NEW; env=${NEW_ENV:-}; fi
  env $env "$bin" start --bind 127.0.0.1 --port 18848 --data-dir "$WORK/$1-$RANDOM" > "$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  wait_ready http://127.0.0.1:18848
}

# run_cluster WHICH: three members of binary WHICH on 18848, 18858, 18868.
run_cluster() {
  local bin env members=127.0.0.1:18848,127.0.0.1:18858,127.0.0.1:18868
  if [ "$1" = old ]; then bin=$OLD; env=${OLD_ENV:-}; else bin=$NEW; env=${NEW_ENV:-}; fi
  for port in 18848 18858 18868; do
    env $env NACRE_CLUSTER_SECRET=ab-bench NACRE_PERSISTENT_SYNC_WRITES=false \
      "$bin" start --bind 127.0.0.1 --port "$port" --data-dir "$WORK/$1-$port-$RANDOM" \
      --members "$members" > "$WORK/$1-$port.log" 2>&1 &
    PIDS+=($!)
  done
  for port in 18848 18858 18868; do wait_ready "http://127.0.0.1:$port"; done
  sleep 2 # let the members' views settle (readiness is per member)
}

tag() { sed "s/^{/{\"build\":\"$1\",\"kind\":\"$2\",/"; }

for round in $(seq "$ROUNDS"); do
  order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
  for build in $order; do
    run_node "$build"
    "$BENCH" --url http://127.0.0.1:18848 --json load --connections "$CONNECTIONS" --duration "$DURATION" \
      | grep '^{' | tag "$build" node >> "$OUT"
    stop
    run_cluster "$build"
    "$BENCH" --url http://127.0.0.1:18848,http://127.0.0.1:18858,http://127.0.0.1:18868 --json load \
      --connections "$CONNECTIONS" --duration "$DURATION" --ops register \
      | grep '^{' | tag "$build" cluster >> "$OUT"
    stop
  done
done

cat "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(build, kind, op, key):
    vals = [r[key] for r in rows if r["build"] == build and r["kind"] == kind and r.get("op") == op]
    return statistics.median(vals) if vals else float("nan")
print("\n| measure | old | new | new / old |\n|---|---|---|---|")
for kind, ops in (("node", ("register", "beat", "list")), ("cluster", ("register",))):
    for op in ops:
        o, n = med("old", kind, op, "per_second"), med("new", kind, op, "per_second")
        print(f"| {kind} {op} req/s | {o:,.0f} | {n:,.0f} | {n / o:.2f}x |")
        o, n = med("old", kind, op, "p99_us"), med("new", kind, op, "p99_us")
        print(f"| {kind} {op} p99 µs | {o:,.0f} | {n:,.0f} | {n / o:.2f} |")
PY
