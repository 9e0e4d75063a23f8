#!/usr/bin/env bash
# Runs a three-member Nacre cluster on this machine, for trying clusters out:
# starts the members, waits until every one is ready (it has loaded its data
# and sees a majority), prints where they are, and stops all three cleanly
# (SIGTERM, then waits) on Ctrl-C or when this script is told to stop.
#
#   ./scripts/cluster.sh                # members on 127.0.0.1:8848, :8858, :8868
#
# Environment:
#   NACRE                  the nacre binary (default: built with `cargo build --release`)
#   PORTS                  the members' HTTP ports (default: "8848 8858 8868")
#   DATA                   where the members keep their files and logs (default: data/cluster)
#   NACRE_CLUSTER_SECRET   the cluster's shared secret (default: a random one)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

read -r -a ports <<<"${PORTS:-8848 8858 8868}"
data=${DATA:-data/cluster}
nacre=${NACRE:-}
if [ -z "$nacre" ]; then
  cargo build --release --bin nacre
  nacre="$(target_dir)/release/nacre"
fi
if [ -z "${NACRE_CLUSTER_SECRET:-}" ]; then
  NACRE_CLUSTER_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
fi
export NACRE_CLUSTER_SECRET

members=""
for port in "${ports[@]}"; do
  members="${members:+$members,}127.0.0.1:$port"
done

pids=()
stop() {
  trap - EXIT INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "== stopping the members"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$data"
for port in "${ports[@]}"; do
  "$nacre" start --bind 127.0.0.1 --port "$port" --data-dir "$data/$port" \
    --members "$members" >"$data/$port.log" 2>&1 &
  pids+=($!)
done

# Ready: /nacos/v1/console/health/readiness answers 200 (500 while starting).
for port in "${ports[@]}"; do
  ready=""
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/nacos/v1/console/health/readiness" >/dev/null; then
      ready=yes
      break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "member 127.0.0.1:$port is not ready after 30 s; its log:" >&2
    tail -n 20 "$data/$port.log" >&2
    exit 1
  fi
done

echo "== ready: $members (logs in $data/<port>.log); Ctrl-C stops them"
wait "${pids[@]}"
