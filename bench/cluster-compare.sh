#!/usr/bin/env bash
# Three-node clusters side by side on loopback: Nacre (Distro) against rnacos.
# For each: register throughput with the connections spread over all three
# members, and convergence (a write on one member until another lists it).
#
#   bench/cluster-compare.sh [rounds]
#
# Each round starts both clusters fresh, measures one then the other (the
# order alternates between rounds), and stops them. Knobs: CONNECTIONS,
# DURATION (s), SAMPLES (convergence writes), RNACOS (the rnacos binary).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

ROUNDS=${1:-3}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
SAMPLES=${SAMPLES:-1000}
RNACOS=${RNACOS:-$(command -v rnacos || echo "$HOME/.cargo/bin/rnacos")}
[ -x "$RNACOS" ] || { echo "rnacos not found: cargo install rnacos --version 0.8.8 --locked" >&2; exit 1; }
cargo build --release -q -p nacre -p nacre-bench
NACRE="$target/release/nacre"
BENCH="$target/release/nacre-bench"
WORK=$(mktemp -d)
PIDS=()
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop; rm -rf "$WORK"' EXIT

urls() { printf 'http://127.0.0.1:%s,' "$@" | sed 's/,$//'; }
NACRE_PORTS=(18871 18872 18873)
RNACOS_PORTS=(18881 18882 18883)

start_nacre() { # DIR
  local members; members=$(printf '127.0.0.1:%s,' "${NACRE_PORTS[@]}"); members=${members%,}
  for port in "${NACRE_PORTS[@]}"; do
    NACRE_CLUSTER_SECRET=bench RUST_LOG=warn "$NACRE" start --bind 127.0.0.1 --port "$port" \
      --data-dir "$1/nacre-$port" --members "$members" > "$1/nacre-$port.log" 2>&1 &
    PIDS+=($!)
  done
  for port in "${NACRE_PORTS[@]}"; do # ready: snapshot loaded, members seen
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/nacos/v1/console/health/readiness" > /dev/null && break; sleep 0.1; done
  done
}

start_rnacos() { # DIR: node 1 initializes the cluster, 2 and 3 join it (Raft on the gRPC port)
  local i=0 port
  for port in "${RNACOS_PORTS[@]}"; do
    i=$((i + 1))
    local grpc=$((port + 1000)) join=()
    if [ $i = 1 ]; then join=(RNACOS_RAFT_AUTO_INIT=true); else join=(RNACOS_RAFT_JOIN_ADDR=127.0.0.1:$((RNACOS_PORTS[0] + 1000))); fi
    env RUST_LOG=warn RNACOS_HTTP_PORT="$port" RNACOS_GRPC_PORT="$grpc" RNACOS_HTTP_CONSOLE_PORT=$((port + 10)) \
      RNACOS_DATA_DIR="$1/rnacos-$port" RNACOS_CONFIG_DB_DIR="$1/rnacos-$port" \
      RNACOS_RAFT_NODE_ID=$i RNACOS_RAFT_NODE_ADDR="127.0.0.1:$grpc" "${join[@]}" \
      "$RNACOS" > "$1/rnacos-$port.log" 2>&1 &
    PIDS+=($!)
    # Bounded wait for this node's HTTP API before the next one joins.
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/nacos/v1/ns/service/list?pageNo=1&pageSize=1" > /dev/null && break; sleep 0.1; done
  done
  # Joined when a write on node 1 is listed on node 3 (bounded). Some starts
  # never get there: each node then runs alone, fast and not replicating, and
  # the round's figures say so ("replicating":false).
  curl -sf -X POST "http://127.0.0.1:${RNACOS_PORTS[0]}/nacos/v1/ns/instance?serviceName=probe&ip=10.255.0.1&port=1" > /dev/null
  REPLICATING=false
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:${RNACOS_PORTS[2]}/nacos/v1/ns/instance/list?serviceName=probe" | grep -q 10.255.0.1; then
      REPLICATING=true; break
    fi
    sleep 0.1
  done
}

measure() { # LABEL URLS [EXTRA JSON FIELDS]
  local fields="\"server\":\"$1\",${3:-}"
  "$BENCH" --url "$2" --json load --connections "$CONNECTIONS" --duration "$DURATION" --ops register \
    --instances 3000 --services 300 | grep '^{' | sed "s/^{/{$fields/"
  "$BENCH" --url "$2" --json convergence --samples "$SAMPLES" | grep '^{' | sed "s/^{/{$fields/"
}

OUT=$WORK/out.jsonl
for round in $(seq "$ROUNDS"); do
  for server in $( [ $((round % 2)) = 1 ] && echo "nacre rnacos" || echo "rnacos nacre"); do
    dir=$WORK/r$round; mkdir -p "$dir"
    if [ "$server" = nacre ]; then
      start_nacre "$dir"; sleep 2 # let the members' views settle
      measure nacre "$(urls "${NACRE_PORTS[@]}")" | tee -a "$OUT"
    else
      start_rnacos "$dir"; measure rnacos "$(urls "${RNACOS_PORTS[@]}")" "\"replicating\":$REPLICATING," | tee -a "$OUT"
    fi
    stop
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(server, op, key, only=lambda r: True):
    picked = [r[key] for r in rows if r["server"] == server and r["op"] == op and only(r)]
    return statistics.median(picked) if picked else float("nan")
n, r = med("nacre", "register", "per_second"), med("rnacos", "register", "per_second")
print(f"register req/s over 3 members (median): nacre {n:,.0f}, rnacos {r:,.0f}, ratio {n / r:.2f}x")
joined = lambda row: row.get("replicating", True)
rj = med("rnacos", "register", "per_second", joined)
print(f"  rnacos rounds whose members replicated: median {rj:,.0f}, ratio {n / rj:.2f}x")
for s in ("nacre", "rnacos"):
    print(f"convergence {s} (median of rounds): p50 {med(s, 'convergence', 'p50_us') / 1000:.2f} ms, "
          f"p99 {med(s, 'convergence', 'p99_us') / 1000:.2f} ms, max {med(s, 'convergence', 'max_us') / 1000:.2f} ms")
PY
