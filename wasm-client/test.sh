#!/usr/bin/env bash
# Builds @rustorium/client and runs all of its tests, installing what is
# missing (Debian: chromium, chromium-driver, protobuf-compiler; the rustup
# target and wasm-bindgen-cli via build.sh; npm packages with `npm ci`).
#
#   1. native unit tests and clippy (host and wasm32)
#   2. wasm-bindgen-test in Node.js, then in headless Chromium
#   3. node:test suites against the built package: a real rustorium-node,
#      a lying fake server, @iden3/js-merkletree proofs, Chromium end to end
#   4. with BENCH=1: the verify benchmark (Node.js and Chromium)
#
# Works on a fresh Debian machine with rustup, Node.js 20 and npm, as root or
# with the packages already installed. Honours CARGO_TARGET_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

log() { printf '\n== %s\n' "$*"; }
started=$SECONDS

log "prerequisites"
missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
rustup component add clippy >/dev/null 2>&1 || true

log "build the package (wasm-client/build.sh)"
"$here/build.sh"

target_dir="${CARGO_TARGET_DIR:-$root/target}"

log "native unit tests and clippy"
cargo test -p rustorium-wasm-client --locked
cargo clippy -p rustorium-wasm-client --all-targets --locked -- -D warnings
cargo clippy -p rustorium-wasm-client --all-targets --target wasm32-unknown-unknown --locked -- -D warnings

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=120
log "wasm-bindgen-test in Node.js"
cargo test -p rustorium-wasm-client --target wasm32-unknown-unknown --locked -- --nocapture

log "wasm-bindgen-test in headless Chromium"
WASM_BINDGEN_USE_BROWSER=1 \
  CHROMEDRIVER="$(command -v chromedriver)" \
  WASM_BINDGEN_TEST_WEBDRIVER_JSON="$here/webdriver.json" \
  cargo test -p rustorium-wasm-client --target wasm32-unknown-unknown --test wasm --locked -- --nocapture

log "rustorium-node for the JavaScript tests"
cargo build -p rustorium-node --bin rustorium-node --locked
export RUSTORIUM_NODE_BIN="$target_dir/debug/rustorium-node"

log "JavaScript tests (node --test) against the built package"
(cd "$here/tests/js" && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1)

if [[ -n "${BENCH:-}" ]]; then
  log "benchmark: verify one proof of a 1M-key tree"
  node "$here/bench/run.mjs"
fi

log "wasm-client: all tests passed in $((SECONDS - started)) s"
