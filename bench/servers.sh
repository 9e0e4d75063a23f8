# Sourced by the comparison scripts: starts and stops one server at a time.
# Needs NACRE, RNACOS and WORK set; NACRE_ENV (optional) adds environment
# variables to Nacre's. Nacre listens on 18848 (gRPC 19848), rnacos on 28848
# (gRPC 29848): both on the HTTP port + 1000, where Nacos 2.x clients look.
# shellcheck shell=bash

PID=

stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
# start NAME: starts a fresh server, sets PID and URL, waits (bounded) until it answers.
start() {
  local data="$WORK/data-$1-$RANDOM"
  case $1 in
    nacre) URL=http://127.0.0.1:18848
      env ${NACRE_ENV:-} "$NACRE" start --bind 127.0.0.1 --port 18848 --data-dir "$data" > "$WORK/$1.log" 2>&1 & PID=$! ;;
    rnacos) URL=http://127.0.0.1:28848
      RUST_LOG=warn RNACOS_HTTP_PORT=28848 RNACOS_GRPC_PORT=29848 RNACOS_HTTP_CONSOLE_PORT=28849 \
        RNACOS_CONFIG_DB_DIR="$data" "$RNACOS" > "$WORK/$1.log" 2>&1 & PID=$! ;;
  esac
  for _ in $(seq 100); do
    curl -sf "$URL/nacos/v1/ns/instance/list?serviceName=ready" > /dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2; cat "$WORK/$1.log" >&2; exit 1
}

