#!/usr/bin/env bash
# Builds the dashboard into web-demo/dist (served by the node at /): first the
# WASM client package it imports, then the Vite build. dist/ is not committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/../wasm-client/build.sh"
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
npx vite build --logLevel warn
echo "dashboard built into $here/dist"
