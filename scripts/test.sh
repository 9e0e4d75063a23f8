#!/usr/bin/env bash
# Runs the whole test suite. First builds the plugins the tests load
# (scripts/build-plugins.sh, into <target>/plugins/) and installs, idempotently,
# what the end-to-end tests drive: the Nacos Node.js client (npm nacos-naming),
# the Nacos Python SDKs (nacos-sdk-python 1.0 and 3.x, in venvs under
# <target>/), and for the console's browser tests Debian's chromium and
# chromium-driver (apt, when missing) with selenium (a venv). Then runs
# every test of the workspace. <target> is cargo's target directory:
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

# A venv per requirements file, rebuilt when the file changes:
# nacos-sdk-python 3.x (the gRPC client) conflicts with the 1.0 package the
# v1 tests use.
python_venv() { # <requirements dir> <venv name> <what>
  local reqs="$1/requirements.txt" venv="$target/$2"
  [ -f "$reqs" ] || return 0
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs" "$venv/requirements.txt"; then
    echo "== installing $3"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
    cp "$reqs" "$venv/requirements.txt"
  fi
}
python_venv tests/compat/python compat-venv "the Nacos Python SDK 1.0"
python_venv tests/compat/python-v2 compat-venv-v2 "the Nacos Python SDK 3.x"
python_venv tests/console console-venv "selenium, for the console's browser tests"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver (the console's browser tests)"
  sudo_if_needed=""
  [ "$(id -u)" = 0 ] || sudo_if_needed="sudo"
  $sudo_if_needed apt-get update -qq
  $sudo_if_needed apt-get install -y -qq chromium chromium-driver >/dev/null
fi

./scripts/build-plugins.sh

echo "== unit tests of the guest SDK and the shipped plugins (natively)"
(cd plugins && cargo test --target "$(rustc -vV | sed -n 's/^host: //p')" --quiet)

echo "== cargo test --workspace"
cargo test --workspace "$@"
