#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine with the Rust
# toolchain and Node.js: installs what is missing, then lints, builds the
# no_std core for wasm, and runs the Rust and JavaScript test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

log "prerequisites"
rustup component add rustfmt clippy >/dev/null
rustup target add wasm32v1-none wasm32-unknown-unknown >/dev/null
missing=()
command -v node >/dev/null || missing+=(nodejs npm)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if ((${#missing[@]})); then
  apt-get update && apt-get install -y "${missing[@]}"
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

log "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log "core builds without std for wasm32v1-none"
cargo build -p rustorium-core --no-default-features --target wasm32v1-none --locked
cargo build -p rustorium-core --no-default-features --features serde --target wasm32v1-none --locked

log "benches build"
cargo bench --workspace --no-run --locked

log "JS oracle self-test"
(cd tests/js && node selftest.mjs --no-circom)

log "Rust tests"
cargo test --workspace --locked

log "fuzz smoke (every cargo-fuzz target, ${FUZZ_SECONDS:-10} s each)"
FUZZ_NICE=0 scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"

log "WASM client: build, wasm-bindgen-test in Node and Chromium, JS tests"
./wasm-client/test.sh

log "dashboard: Playwright in Debian's Chromium against a real node"
./web-demo/test.sh
