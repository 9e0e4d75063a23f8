#!/usr/bin/env bash
# Runs the whole test suite. First builds the plugins the tests load
# (scripts/build-plugins.sh, into target/plugins/) and installs, idempotently,
# what the end-to-end tests drive: the Nacos Node.js client (npm nacos-naming)
# and the Nacos Python SDKs (nacos-sdk-python 1.0 and 3.x, in venvs under
# target/). Then
# runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f tests/compat/node/package-lock.json ] && [ ! -d tests/compat/node/node_modules/nacos-naming ]; then
  echo "== installing the Nacos Node.js client"
  (cd tests/compat/node && npm ci --no-audit --no-fund --loglevel=error)
fi

venv=target/compat-venv
if [ -f tests/compat/python/requirements.txt ]; then
  if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/compat/python/requirements.txt "$venv/requirements.txt"; then
    echo "== installing the Nacos Python SDK"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/python/requirements.txt
    cp tests/compat/python/requirements.txt "$venv/requirements.txt"
  fi
fi

# nacos-sdk-python 3.x (the gRPC client) conflicts with the 1.0 package the
# v1 tests use: a venv of its own.
venv2=target/compat-venv-v2
if [ -f tests/compat/python-v2/requirements.txt ]; then
  if [ ! -x "$venv2/bin/python" ] || ! cmp -s tests/compat/python-v2/requirements.txt "$venv2/requirements.txt"; then
    echo "== installing the Nacos Python SDK 3.x"
    python3 -m venv "$venv2"
    "$venv2/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/python-v2/requirements.txt
    cp tests/compat/python-v2/requirements.txt "$venv2/requirements.txt"
  fi
fi

./scripts/build-plugins.sh

echo "== unit tests of the guest SDK and the shipped plugins (natively)"
(cd plugins && cargo test --target "$(rustc -vV | sed -n 's/^host: //p')" --quiet)

echo "== cargo test --workspace"
cargo test --workspace "$@"
