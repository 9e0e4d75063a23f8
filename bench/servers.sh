# Sourced by the comparison scripts: starts and stops one server at a time.
# Needs NACRE, RNACOS and WORK set; NACRE_ENV (optional) adds environment
# variables to Nacre's. Nacre listens on NACRE_PORT (18848; gRPC on + 1000),
# rnacos on RNACOS_PORT (28848; gRPC on + 1000, console on + 1): both gRPC
# ports on the HTTP port + 1000, where Nacos 2.x clients look. Move them when
# another run holds the defaults.
# shellcheck shell=bash

PID=
NACRE_PORT=${NACRE_PORT:-18848}
RNACOS_PORT=${RNACOS_PORT:-28848}

stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
# start NAME: starts a fresh server, sets PID and URL, waits (bounded) until it answers.
start() {
  local data="$WORK/data-$1-$RANDOM"
  case $1 in
    nacre) URL=http://127.0.0.1:$NACRE_PORT
      env ${NACRE_ENV:-} "$NACRE" start --bind 127.0.0.1 --port "$NACRE_PORT" --data-dir "$data" > "$WORK/$1.log" 2>&1 & PID=$! ;;
    rnacos) URL=http://127.0.0.1:$RNACOS_PORT
      RUST_LOG=warn RNACOS_HTTP_PORT=$RNACOS_PORT RNACOS_GRPC_PORT=$((RNACOS_PORT + 1000)) RNACOS_HTTP_CONSOLE_PORT=$((RNACOS_PORT + 1)) \
        RNACOS_CONFIG_DB_DIR="$data" "$RNACOS" > "$WORK/$1.log" 2>&1 & PID=$! ;;
  esac
  for _ in $(seq 100); do
    curl -sf "$URL/nacos/v1/ns/instance/list?serviceName=ready" > /dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2; cat "$WORK/$1.log" >&2; exit 1
}

