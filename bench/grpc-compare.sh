#!/usr/bin/env bash
# Side-by-side benchmark of Nacre's gRPC door (Nacos 2.x clients) against
# rnacos on this machine, in one run.
#
#   bench/grpc-compare.sh [rounds]
#
# Needs rnacos 0.8.8 (`cargo install rnacos --version 0.8.8 --locked`, ~15 min),
# found as $RNACOS or ~/.cargo/bin/rnacos. Each measurement starts the server
# fresh on a loopback port (gRPC on HTTP + 1000, where clients look), drives it
# with nacre-bench's gRPC mode, and stops it; the two servers alternate so
# machine noise hits both. Prints JSON lines (also in <target>/grpc-bench.jsonl)
# and a table of each server's CPU per request (from /proc/<pid>/stat) and
# throughput: the CPU figure is what the server itself spends, whatever the
# bench sharing the cores takes.
# Knobs: CONNECTIONS, DURATION (s per op), SUBSCRIBERS, CHANGES, INTERVAL_MS,
# IDLE (connections held for the memory figure). Not run by the tests or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

ROUNDS=${1:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
CHANGES=${CHANGES:-40}
INTERVAL_MS=${INTERVAL_MS:-700}
IDLE=${IDLE:-10000}
RNACOS=${RNACOS:-$HOME/.cargo/bin/rnacos}
[ -x "$RNACOS" ] || { echo "rnacos not found at $RNACOS: cargo install rnacos --version 0.8.8 --locked" >&2; exit 1; }

cargo build --release -q -p nacre -p nacre-bench
NACRE=${NACRE:-$target/release/nacre}
BENCH=${BENCH:-$target/release/nacre-bench}
WORK=$(mktemp -d)
OUT="$target/grpc-bench.jsonl"
: > "$OUT"
# stop, start NAME (sets PID and URL): shared with the other comparisons.
source bench/servers.sh
trap 'stop; rm -rf "$WORK"' EXIT

tag() { sed "s/^{/{\"server\":\"$1\",/"; }

for round in $(seq "$ROUNDS"); do
  order="nacre rnacos"; [ $((round % 2)) -eq 0 ] && order="rnacos nacre"
  for server in $order; do
    start "$server"
    "$BENCH" --url "$URL" --json --server-pid "$PID" grpc --connections "$CONNECTIONS" \
      --duration "$DURATION" --ops register,query | grep '^{' | tag "$server" >> "$OUT"
    stop
    start "$server"
    "$BENCH" --url "$URL" --json grpc-push --subscribers "$SUBSCRIBERS" --changes "$CHANGES" \
      --interval-ms "$INTERVAL_MS" | grep '^{' | tag "$server" >> "$OUT"
    stop
  done
done
for server in nacre rnacos; do
  start "$server"
  "$BENCH" --url "$URL" --json grpc-connections --pid "$PID" --count "$IDLE" \
    | grep '^{' | tag "$server" >> "$OUT"
  stop
done
cat "$OUT"
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(server, op):
    return [r for r in rows if r["server"] == server and r.get("op") == op and "server_cpu_us" in r]
print("\n| op | Nacre CPU µs/req | rnacos CPU µs/req | Nacre / rnacos | Nacre req/s | rnacos req/s | ratio |\n|---|---|---|---|---|---|---|")
for op in ("grpc-register", "grpc-query"):
    n, r = pick("nacre", op), pick("rnacos", op)
    if not n or not r:
        continue
    cpu = lambda rs: sum(x["server_cpu_us"] * x["ok"] for x in rs) / sum(x["ok"] for x in rs)
    rate = lambda rs: sum(x["per_second"] for x in rs) / len(rs)
    print(f"| {op} | {cpu(n):.1f} | {cpu(r):.1f} | {cpu(n) / cpu(r):.2f}x | {rate(n):,.0f} | {rate(r):,.0f} | {rate(n) / rate(r):.2f}x |")
PY
