#!/usr/bin/env bash
# What auth costs, side by side in one run: register and beat of one `nacre`
# build with auth off, with auth on and a token on every request (Java,
# Python), and with auth on and username+password on every request (npm
# nacos-naming, checked against a remembered hash).
#
#   bench/auth.sh [rounds]
#
# The three nodes run at the same time, and each round measures every one of
# them for DURATION seconds per op, the order rotating between rounds: a
# change in the machine during the run (these machines drift by ±20% from
# minute to minute) then falls on all three alike. What is compared is each
# node's CPU per request (from /proc/<pid>/stat, nacre-bench --server-pid):
# it is what auth adds, whatever else the two cores are doing; throughput is
# printed too. PIN=1 puts the nodes on CPU 0 and the client on CPU 1
# (taskset). Knobs: CONNECTIONS, DURATION (s per op), PIN. Prints JSON lines
# and a table: total node CPU over total requests per configuration, and the
# median throughput, with each one's ratio to auth off.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-10}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-2}
PORT=${PORT:-18848}
PIN=${PIN:-0}
NODE_CPU=(); BENCH_CPU=()
if [ "$PIN" = 1 ]; then NODE_CPU=(taskset -c 0); BENCH_CPU=(taskset -c 1); fi
cargo build --release -q -p nacre -p nacre-bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
TARGET=$(target_dir)
BENCH=$TARGET/release/nacre-bench
NACRE=$TARGET/release/nacre
WORK=$(mktemp -d)
OUT=$TARGET/bench-auth.jsonl
: > "$OUT"
PASSWORD=bench-admin-password
declare -A PID URL

stop() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap 'stop; rm -rf "$WORK"' EXIT

# start_node <config> <port> on|off: a node, auth as asked, ready (admin made).
start_node() {
  local url=http://127.0.0.1:$2
  NACRE_AUTH_ENABLED=$([ "$3" = on ] && echo true || echo false) \
  NACRE_AUTH_ADMIN_PASSWORD=$PASSWORD \
    "${NODE_CPU[@]}" "$NACRE" start --bind 127.0.0.1 --port "$2" --data-dir "$WORK/$1" > "$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  URL[$1]=$url
  for _ in $(seq 200); do
    curl -sf "$url/nacos/v1/console/server/state" | grep -q '"auth_admin_request":"false"' && return 0
    sleep 0.05
  done
  echo "the $1 node did not become ready" >&2; exit 1
}

start_node off "$PORT" off
start_node token $((PORT + 1)) on
start_node password $((PORT + 2)) on
token=$(curl -sf -X POST "${URL[token]}/nacos/v1/auth/login" -d username=nacos -d "password=$PASSWORD" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')

tag() { sed "s/^{/{\"config\":\"$1\",/"; }

for round in $(seq "$ROUNDS"); do
  case $((round % 3)) in
    1) order="off token password" ;;
    2) order="token password off" ;;
    *) order="password off token" ;;
  esac
  for config in $order; do
    case $config in
      off) creds=() ;;
      token) creds=(--access-token "$token") ;;
      password) creds=(--username nacos) ;;
    esac
    BENCH_PASSWORD=$PASSWORD "${BENCH_CPU[@]}" "$BENCH" --url "${URL[$config]}" --json \
      --server-pid "${PID[$config]}" "${creds[@]}" load --connections "$CONNECTIONS" \
      --duration "$DURATION" --ops register,beat --services 200 --instances 2000 \
      | grep '^{' | tag "$config" >> "$OUT"
  done
done

cat "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(config, op):
    return [r for r in rows if r["config"] == config and r.get("op") == op]
def cpu(config, op):  # total node CPU over total requests, µs
    rs = pick(config, op)
    return sum(r["server_cpu_us"] * r["ok"] for r in rs) / sum(r["ok"] for r in rs)
def rate(config, op):
    return statistics.median(r["per_second"] for r in pick(config, op))
print(f"\n{len(rows) // 6} rounds")
print("\n| op | node CPU µs/req, auth off | token | token / off | password | password / off |\n|---|---|---|---|---|---|")
for op in ("register", "beat"):
    off, tok, pw = (cpu(c, op) for c in ("off", "token", "password"))
    print(f"| {op} | {off:.2f} | {tok:.2f} | {tok / off:.3f}x | {pw:.2f} | {pw / off:.3f}x |")
print("\n| op | auth off req/s | token req/s | token / off | password req/s | password / off |\n|---|---|---|---|---|---|")
for op in ("register", "beat"):
    off, tok, pw = (rate(c, op) for c in ("off", "token", "password"))
    print(f"| {op} | {off:,.0f} | {tok:,.0f} | {tok / off:.2f}x | {pw:,.0f} | {pw / off:.2f}x |")
PY
