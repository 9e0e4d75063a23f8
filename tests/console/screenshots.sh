#!/usr/bin/env bash
# Screenshots of every console page into docs/console/, from a three-node
# cluster on loopback with a little sample data (two plugins loaded on the
# first node). Needs what scripts/test.sh installs (chromium, the selenium
# venv) and the built plugins. Usage: tests/console/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)
cargo build -q -p nacre --bin nacre
work=$(mktemp -d)
cp "$target/debug/nacre" "$work/nacre"
mkdir "$work/plugins"
for p in zone-affinity metadata-health; do cp "$target/plugins/$p/"*.toml "$target/plugins/$p/"*.wasm "$work/plugins/"; done
ports=(28848 28858 28868)
members=$(printf '127.0.0.1:%s,' "${ports[@]}"); members=${members%,}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
for port in "${ports[@]}"; do
  extra=()
  [ "$port" = "${ports[0]}" ] && extra=(--plugins-dir "$work/plugins")
  NACRE_HEALTH_BEAT_TIMEOUT_MS=600000 NACRE_HEALTH_DELETE_TIMEOUT_MS=1200000 \
    "$work/nacre" start --bind 127.0.0.1 --port "$port" --data-dir "$work/d$port" \
    --members "$members" --insecure-cluster "${extra[@]}" >"$work/log$port" 2>&1 &
  pids+=($!)
done
base=http://127.0.0.1:${ports[0]}
until curl -sf "$base/nacos/v1/console/health/readiness" >/dev/null; do sleep 0.2; done
reg() { curl -sf -X POST "$base/nacos/v1/ns/instance?$1" >/dev/null; }
for i in 1 2 3; do reg "serviceName=payments&ip=10.0.1.$i&port=808$i&metadata=zone%3Deu-1"; done
for i in 1 2; do reg "serviceName=orders&groupName=shop&ip=10.0.2.$i&port=900$i"; done
reg "serviceName=users&ip=10.0.3.1&port=7000"
reg "serviceName=users&ip=10.0.3.2&port=7000&clusterName=BACKUP"
reg "serviceName=inventory&groupName=shop&ip=127.0.0.1&port=1&ephemeral=false"
reg "serviceName=audit&ip=10.0.4.1&port=6000&namespaceId=dev"
# Namespace records: one named with its services, one empty.
ns() { curl -sf -X "$1" "$base/nacos/v1/console/namespaces" --data "$2" >/dev/null; }
ns PUT "namespace=dev&namespaceShowName=Development&namespaceDesc=the+dev+team%27s+services"
ns POST "customNamespaceId=staging&namespaceName=Staging&namespaceDesc=pre-release+checks"
curl -sf -X PATCH "$base/nacos/v1/ns/instance?serviceName=payments&ip=10.0.1.2&port=8082&enabled=false" >/dev/null
curl -sf -X PATCH "$base/nacos/v1/ns/instance?serviceName=payments&ip=10.0.1.3&port=8083&weight=3" >/dev/null
# Let the prober find the persistent instance down, and the metrics sample a few times.
sleep 20
# Two UDP subscribers (listed now: a subscriber that does not list again
# within 10 s expires) that never ack, and a change pushed to them: their
# figures show the push, its retransmits and, after the retries, a failure.
for port in 55001 55002; do
  curl -sf -A "Nacos-Java-Client:v1.4.2" "$base/nacos/v1/ns/instance/list?serviceName=payments&udpPort=$port&clientIP=127.0.0.1&app=checkout" >/dev/null
done
curl -sf -X PATCH "$base/nacos/v1/ns/instance?serviceName=payments&ip=10.0.1.1&port=8081&weight=2" >/dev/null
sleep 3
"$target/console-venv/bin/python" tests/console/browser.py shots "$base" docs/console
