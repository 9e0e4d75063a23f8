#!/usr/bin/env bash
# Side-by-side benchmark of Nacre against rnacos on this machine, in one run.
#
#   bench/compare.sh [rounds]
#
# Needs rnacos 0.8.8 (`cargo install rnacos --version 0.8.8 --locked`, ~15 min),
# found as $RNACOS or ~/.cargo/bin/rnacos. Each measurement starts the server
# fresh on a loopback port, drives it with nacre-bench, and stops it; the two
# servers alternate so machine noise hits both. Prints JSON lines and a table
# of ratios. Knobs: CONNECTIONS, DURATION (s per op), ONE_TOTAL, MEM_INSTANCES,
# MEM_BIG (Nacre only; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

ROUNDS=${1:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
ONE_TOTAL=${ONE_TOTAL:-50000}
MEM_INSTANCES=${MEM_INSTANCES:-100000}
MEM_BIG=${MEM_BIG:-1000000}
RNACOS=${RNACOS:-$HOME/.cargo/bin/rnacos}
[ -x "$RNACOS" ] || { echo "rnacos not found at $RNACOS: cargo install rnacos --version 0.8.8 --locked" >&2; exit 1; }

cargo build --release -q -p nacre -p nacre-bench
NACRE="$target/release/nacre"
BENCH="$target/release/nacre-bench"
WORK=$(mktemp -d)
OUT="$target/bench-results.jsonl"
: > "$OUT"
PID=

# stop, start NAME (sets PID and URL): shared with the other comparisons.
source bench/servers.sh
trap 'stop; rm -rf "$WORK"' EXIT

tag() { sed "s/^{/{\"server\":\"$1\",\"kind\":\"$2\",/"; }

for round in $(seq "$ROUNDS"); do
  order="nacre rnacos"; [ $((round % 2)) -eq 0 ] && order="rnacos nacre"
  for server in $order; do
    start "$server"
    "$BENCH" --url "$URL" --json load --connections "$CONNECTIONS" --duration "$DURATION" | grep '^{' | tag "$server" load >> "$OUT"
    stop
    start "$server"
    "$BENCH" --url "$URL" --json one-service --total "$ONE_TOTAL" | grep '^{' | tag "$server" one-service >> "$OUT"
    stop
  done
done
# Registering a million instances takes longer than the 30 s delete timeout and
# the memory runs send no beats: Nacre's beat checker is switched off for them
# (rnacos registers its 100,000 well within the timeout).
export NACRE_ENV=NACRE_HEALTH_ENABLED=false
for server in nacre rnacos; do
  start "$server"
  "$BENCH" --url "$URL" --json memory --pid "$PID" --instances "$MEM_INSTANCES" | grep '^{' | tag "$server" memory >> "$OUT"
  stop
done
if [ "$MEM_BIG" -gt 0 ]; then
  start nacre
  "$BENCH" --url "$URL" --json memory --pid "$PID" --instances "$MEM_BIG" --services 10000 | grep '^{' | tag nacre memory >> "$OUT"
  stop
fi

cat "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(server, kind, key, **match):
    vals = [r[key] for r in rows if r["server"] == server and r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]
    return statistics.median(vals) if vals else float("nan")
print("\n| measure | nacre | rnacos | nacre / rnacos |\n|---|---|---|---|")
for op in ("register", "beat", "list"):
    n, r = med("nacre", "load", "per_second", op=op), med("rnacos", "load", "per_second", op=op)
    print(f"| {op} req/s | {n:,.0f} | {r:,.0f} | {n / r:.2f}x |")
    n, r = med("nacre", "load", "p99_us", op=op), med("rnacos", "load", "p99_us", op=op)
    print(f"| {op} p99 µs | {n:,.0f} | {r:,.0f} | {n / r:.2f} |")
n, r = med("nacre", "one-service", "ratio"), med("rnacos", "one-service", "ratio")
print(f"| one service: last/first registration cost | {n:.2f} | {r:.2f} | |")
n, r = med("nacre", "one-service", "per_second"), med("rnacos", "one-service", "per_second")
print(f"| one service: req/s | {n:,.0f} | {r:,.0f} | {n / r:.2f}x |")
mem = {(x["server"], x["instances"]): x["bytes_per_instance"] for x in rows if x["kind"] == "memory"}
for (server, count), b in sorted(mem.items()):
    print(f"| bytes per instance, {server} at {count:,} | {b:,.0f} | | |")
PY
