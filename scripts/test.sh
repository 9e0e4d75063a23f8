#!/usr/bin/env bash
# Runs the whole test suite. First builds the plugins the tests load
# (scripts/build-plugins.sh, into <target>/plugins/) and installs, idempotently,
# what the end-to-end tests drive: the Nacos Node.js client (npm nacos-naming)
# and the Nacos Python SDK (nacos-sdk-python, in a venv under <target>/). Then
# runs every test of the workspace. <target> is cargo's target directory:
# `target/`, or $CARGO_TARGET_DIR when set (the tests find it the same way).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
target=$(target_dir)

if [ -f tests/compat/node/package-lock.json ] && [ ! -d tests/compat/node/node_modules/nacos-naming ]; then
  echo "== installing the Nacos Node.js client"
  (cd tests/compat/node && npm ci --no-audit --no-fund --loglevel=error)
fi

venv="$target/compat-venv"
if [ -f tests/compat/python/requirements.txt ]; then
  if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/compat/python/requirements.txt "$venv/requirements.txt"; then
    echo "== installing the Nacos Python SDK"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/python/requirements.txt
    cp tests/compat/python/requirements.txt "$venv/requirements.txt"
  fi
fi

./scripts/build-plugins.sh

echo "== unit tests of the guest SDK and the shipped plugins (natively)"
(cd plugins && cargo test --target "$(rustc -vV | sed -n 's/^host: //p')" --quiet)

echo "== cargo test --workspace"
cargo test --workspace "$@"
