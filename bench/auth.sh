#!/usr/bin/env bash
# What auth costs, side by side in one run: register and beat throughput of
# one `nacre` build with auth off, with auth on and a token on every request
# (Java, Python), and with auth on and username+password on every request
# (npm nacos-naming, checked against a remembered hash).
#
#   bench/auth.sh [rounds]
#
# Each round starts a fresh standalone node per configuration, rotating which
# goes first. Besides throughput, the node's CPU per request (from
# /proc/<pid>/stat, nacre-bench --server-pid) is recorded: it is what auth
# adds, whatever else the two cores are doing. PIN=1 puts the node on CPU 0
# and the client on CPU 1 (taskset), so throughput is the node's alone.
# Knobs: CONNECTIONS, DURATION (s per op), PIN. Prints JSON lines and a
# table of the medians with each configuration's ratio to auth off.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-8}
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
PIDS=()
URL=http://127.0.0.1:$PORT
PASSWORD=bench-admin-password

stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop; rm -rf "$WORK"' EXIT

# start_node on|off: a fresh node, auth as asked, ready (and its admin made).
start_node() {
  NACRE_AUTH_ENABLED=$([ "$1" = on ] && echo true || echo false) \
  NACRE_AUTH_ADMIN_PASSWORD=$PASSWORD \
    "${NODE_CPU[@]}" "$NACRE" start --bind 127.0.0.1 --port "$PORT" --data-dir "$WORK/$1-$RANDOM" > "$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do
    curl -sf "$URL/nacos/v1/console/server/state" | grep -q '"auth_admin_request":"false"' && return 0
    sleep 0.05
  done
  echo "the node did not become ready" >&2; exit 1
}

tag() { sed "s/^{/{\"config\":\"$1\",/"; }

for round in $(seq "$ROUNDS"); do
  case $((round % 3)) in
    1) order="off token password" ;;
    2) order="token password off" ;;
    *) order="password off token" ;;
  esac
  for config in $order; do
    case $config in
      off) start_node off; creds=() ;;
      token)
        start_node on
        token=$(curl -sf -X POST "$URL/nacos/v1/auth/login" -d username=nacos -d "password=$PASSWORD" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
        creds=(--access-token "$token") ;;
      password) start_node on; creds=(--username nacos) ;;
    esac
    BENCH_PASSWORD=$PASSWORD "${BENCH_CPU[@]}" "$BENCH" --url "$URL" --json --server-pid "${PIDS[-1]}" "${creds[@]}" load --connections "$CONNECTIONS" \
      --duration "$DURATION" --ops register,beat --services 200 --instances 2000 \
      | grep '^{' | tag "$config" >> "$OUT"
    stop
  done
done

cat "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(config, op, key):
    vals = [r[key] for r in rows if r["config"] == config and r.get("op") == op]
    return statistics.median(vals) if vals else float("nan")
print("\n| op | auth off req/s | token req/s | token / off | password req/s | password / off |\n|---|---|---|---|---|---|")
for op in ("register", "beat"):
    off, tok, pw = (med(c, op, "per_second") for c in ("off", "token", "password"))
    print(f"| {op} | {off:,.0f} | {tok:,.0f} | {tok / off:.2f}x | {pw:,.0f} | {pw / off:.2f}x |")
print("\n| op | node CPU µs/req, auth off | token | token / off | password | password / off |\n|---|---|---|---|---|---|")
for op in ("register", "beat"):
    off, tok, pw = (med(c, op, "server_cpu_us") for c in ("off", "token", "password"))
    print(f"| {op} | {off:.1f} | {tok:.1f} | {tok / off:.2f}x | {pw:.1f} | {pw / off:.2f}x |")
PY
