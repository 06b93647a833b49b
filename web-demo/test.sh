#!/usr/bin/env bash
# Builds the node and the dashboard and runs the browser test (Debian's
# Chromium driven by playwright-core; no browser download).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
if ! command -v chromium >/dev/null; then
  apt-get update && apt-get install -y chromium chromium-driver
fi
cargo build --locked -p rustorium-node --bin rustorium-node
cargo build --locked -p rustorium-tikv-test-server --bin tikv-test-server
"$here/build.sh"
cd "$here"
node --test tests/
