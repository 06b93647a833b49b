#!/usr/bin/env bash
# Runs a Rustorium node with sensible defaults: embedded Redb under ./data,
# gRPC, gRPC-web and /metrics on 127.0.0.1:7070, the dashboard at / once built.
# Extra arguments go to `rustorium-node serve` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  apt-get update && apt-get install -y protobuf-compiler
fi
if [ -x web-demo/build.sh ]; then
  web-demo/build.sh
fi
exec cargo run --release --locked -p rustorium-node --bin rustorium-node -- serve "$@"
