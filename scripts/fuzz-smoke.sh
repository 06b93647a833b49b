#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for N seconds each (default 20):
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
# Works on a fresh machine with the stable Rust toolchain: installs cargo-fuzz
# if missing and sets RUSTC_BOOTSTRAP=1 for the nightly-only sanitizer flags.
# Exits non-zero on the first target that finds a crash; the crashing input is
# left in fuzz/artifacts/<target>/. Set FUZZ_NICE=0 to run at normal priority.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-20}"
shift || true
targets=("$@")
nice_level="${FUZZ_NICE:-10}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} targets"
nice -n "$nice_level" cargo fuzz build

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  echo "== $target for ${seconds}s"
  mkdir -p "corpus/$target"
  dirs=("corpus/$target")
  [ -d "seeds/$target" ] && dirs+=("seeds/$target")
  if ! nice -n "$nice_level" cargo fuzz run "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "!! $target failed (log tail above); a crashing input is left in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done |stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
done
echo "== all targets ran ${seconds}s without a finding"
