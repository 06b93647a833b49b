#!/usr/bin/env bash
# Builds the npm package @rustorium/client into wasm-client/pkg/:
#
#   pkg/package.json, pkg/index.d.ts, pkg/README.md
#   pkg/web/   ES module for browsers and bundlers (wasm-bindgen --target web)
#   pkg/node/  Node.js, CommonJS + an ES module wrapper (--target nodejs)
#
# Steps: cargo build for wasm32-unknown-unknown (profile release-wasm:
# opt-level "s", LTO, one codegen unit, panic=abort), wasm-bindgen, wasm-opt
# when available, then the hand-written entry files from wasm-client/js/.
# Installs what is missing: the rustup target, wasm-bindgen-cli at exactly the
# wasm-bindgen version of Cargo.lock (cargo install), and Debian's binaryen
# (wasm-opt) when apt-get can run and offers binaryen >= 116; nothing is
# downloaded at run time.
#
# Environment: CARGO_TARGET_DIR (default: the workspace's target/),
# WASM_OPT_FLAGS (default "-Os"), SKIP_WASM_OPT=1 to skip wasm-opt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

log() { printf '== %s\n' "$*" >&2; }

bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
if [[ -z "$bindgen_version" ]]; then
  echo "wasm-bindgen is not in Cargo.lock" >&2
  exit 1
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $bindgen_version" ]]; then
  log "installing wasm-bindgen-cli $bindgen_version (cargo install)"
  # --locked first; if a crate its lock file pins was since yanked, resolve anew.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked ||
    cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

# wasm-opt older than binaryen 116 rewrites wasm-bindgen's externref table as
# anyref, which no engine accepts (Debian 12 ships 108): such a version is
# skipped. It gains little here anyway (see README.md, "Size").
min_wasm_opt=116
wasm_opt_version() { wasm-opt --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p'; }
if [[ -z "${SKIP_WASM_OPT:-}" ]] && ! command -v wasm-opt >/dev/null &&
  command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  candidate="$(apt-cache policy binaryen 2>/dev/null | sed -n 's/^ *Candidate: \([0-9]*\).*/\1/p')"
  if [[ -n "$candidate" && "$candidate" -ge "$min_wasm_opt" ]]; then
    log "installing binaryen $candidate (wasm-opt) with apt-get"
    apt-get install -y -qq binaryen >/dev/null || log "binaryen not installable; continuing without wasm-opt"
  fi
fi
use_wasm_opt=""
if [[ -z "${SKIP_WASM_OPT:-}" ]] && command -v wasm-opt >/dev/null; then
  if [[ "$(wasm_opt_version)" -ge "$min_wasm_opt" ]]; then
    use_wasm_opt=1
  else
    log "wasm-opt $(wasm_opt_version) is older than $min_wasm_opt (breaks externref); skipping it"
  fi
fi

target_dir="${CARGO_TARGET_DIR:-$root/target}"
log "cargo build (wasm32-unknown-unknown, profile release-wasm)"
cargo build -p rustorium-wasm-client --target wasm32-unknown-unknown --profile release-wasm --locked
wasm="$target_dir/wasm32-unknown-unknown/release-wasm/rustorium_wasm_client.wasm"

pkg="$here/pkg"
rm -rf "$pkg"
mkdir -p "$pkg"
log "wasm-bindgen $bindgen_version"
for target in web nodejs; do
  wasm-bindgen --target "$target" --remove-name-section --remove-producers-section \
    --out-dir "$pkg/${target%js}" "$wasm"
done

if [[ -n "$use_wasm_opt" ]]; then
  # The features rustc enables by default for wasm32-unknown-unknown; all are
  # in every browser and Node.js version the package supports.
  features=(--enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
    --enable-bulk-memory --enable-reference-types --enable-multivalue)
  read -r -a opt_flags <<<"${WASM_OPT_FLAGS:--Os}"
  for dir in web node; do
    file="$pkg/$dir/rustorium_wasm_client_bg.wasm"
    log "wasm-opt ${opt_flags[*]} $dir"
    wasm-opt "${opt_flags[@]}" "${features[@]}" --strip-debug --strip-producers "$file" -o "$file.opt"
    mv "$file.opt" "$file"
  done
fi

cp "$here/js/package.json" "$here/js/index.d.ts" "$here/README.md" "$pkg/"
cp "$here/js/web/index.js" "$pkg/web/"
cp "$here/js/node/index.cjs" "$here/js/node/index.mjs" "$pkg/node/"
# The nearest package.json decides how Node.js reads a .js file.
echo '{ "type": "module" }' >"$pkg/web/package.json"
echo '{ "type": "commonjs" }' >"$pkg/node/package.json"
# wasm-bindgen's own .gitignore would hide the package from `npm pack`.
rm -f "$pkg/web/.gitignore" "$pkg/node/.gitignore"

raw=$(wc -c <"$pkg/web/rustorium_wasm_client_bg.wasm")
gz=$(gzip -9 -c "$pkg/web/rustorium_wasm_client_bg.wasm" | wc -c)
js=$(cat "$pkg/web/rustorium_wasm_client.js" "$pkg/web/index.js" | gzip -9 | wc -c)
awk -v pkg="$pkg" -v raw="$raw" -v gz="$gz" -v js="$js" 'BEGIN {
  printf "built %s: wasm %d bytes, %d bytes gzipped (%.1f KiB); web JS glue %d bytes gzipped\n", pkg, raw, gz, gz / 1024, js
}'
