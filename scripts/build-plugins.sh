#!/usr/bin/env bash
# Builds every plugin the project ships and every example, into
# target/plugins/<name>/ (the component and its manifest), ready to copy into
# a node's plugin folder. Idempotent: installs what is missing, then builds.
#
# Each language is one function below; `main` runs them in order. To add a
# language, add a `build_<language>_plugins` function and call it from `main`.
set -euo pipefail
cd "$(dirname "$0")/.."

root=$(pwd)
out="$root/target/plugins"

log() { echo "== $*"; }

# Copies a built component and its manifest into target/plugins/<name>/.
install_plugin() {
  local name=$1 wasm=$2 manifest=$3
  mkdir -p "$out/$name"
  cp "$wasm" "$out/$name/"
  cp "$manifest" "$out/$name/"
}

# ---------------------------------------------------------------------------
# Rust: the guest SDK and the plugins under plugins/ (their own cargo
# workspace), built for wasm32-wasip2, which yields components directly.
build_rust_plugins() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "installing the Rust target wasm32-wasip2"
    rustup target add wasm32-wasip2
  fi
  log "building the Rust plugins (plugins/)"
  (cd plugins && cargo build --release --target wasm32-wasip2)
  local built="plugins/target/wasm32-wasip2/release"
  local plugin
  for plugin in zone-affinity metadata-health webhook; do
    install_plugin "$plugin" "$built/${plugin//-/_}.wasm" "plugins/$plugin/$plugin.toml"
    cp "plugins/$plugin/event.json" "$out/$plugin/"   # a sample for `nacre plugin test`
  done
  # Hostile guests for the host's tests only, kept apart from what ships.
  mkdir -p "$out/test-guests"
  cp "$built/blocker.wasm" "$out/test-guests/"
}
# ---------------------------------------------------------------------------

main() {
  build_rust_plugins
  log "plugins are in ${out#"$root"/}/"
}

main "$@"
