#!/usr/bin/env bash
# Persistent (Raft) writes on a three-node Nacre cluster on loopback:
# latency one write at a time, throughput with many writers, and the time from
# kill -9 of the leader to the next committed write.
#
#   bench/raft.sh [rounds]
#
# Each round starts a fresh cluster (release build), measures, and stops it.
# Knobs: SAMPLES, CONNECTIONS, DURATION (s). (rnacos keeps persistent
# instances through its own Raft, but its v1 HTTP API for them is not the
# same; no side-by-side run here.)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

ROUNDS=${1:-3}
SAMPLES=${SAMPLES:-500}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10}
cargo build --release -q -p nacre -p nacre-bench
NACRE="$target/release/nacre"
BENCH="$target/release/nacre-bench"
WORK=$(mktemp -d)
PIDS=()
stop() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop; rm -rf "$WORK"' EXIT

PORTS=(18861 18862 18863)
MEMBERS=$(printf '127.0.0.1:%s,' "${PORTS[@]}"); MEMBERS=${MEMBERS%,}
URLS=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]}"); URLS=${URLS%,}

for round in $(seq "$ROUNDS"); do
  for port in "${PORTS[@]}"; do
    NACRE_CLUSTER_SECRET=bench RUST_LOG=warn "$NACRE" start --bind 127.0.0.1 --port "$port" \
      --data-dir "$WORK/r$round-$port" --members "$MEMBERS" > "$WORK/$port.log" 2>&1 &
    PIDS+=($!)
  done
  # Bounded wait until a leader is known.
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:${PORTS[0]}/nacos/v1/ns/operator/servers" | grep -q '"leader":"' && break
    sleep 0.1
  done
  PIDLIST=$(IFS=,; echo "${PIDS[*]}")
  "$BENCH" --json persistent --members "$URLS" --samples "$SAMPLES" --connections "$CONNECTIONS" \
    --duration "$DURATION" --pids "$PIDLIST" | sed "s/^{/{\"round\":$round,/"
  stop
done
