#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/fuzz_targets.
#
#   fuzz/run.sh TARGET SECONDS   one target for SECONDS
#   fuzz/run.sh all SECONDS      every target, SECONDS each
#   fuzz/run.sh campaign [SECONDS] [LANES]
#                                every target, SECONDS each (default 1800),
#                                LANES at a time (default 2); a summary
#                                line per target for fuzz/README.md
#   fuzz/run.sh build            build every target
#
# The corpus grows in fuzz/corpus/TARGET (ignored by git), seeded from the
# committed fuzz/seeds/TARGET. A crash leaves its input in fuzz/artifacts/TARGET
# and fails the script; reproduce with `fuzz/run.sh repro TARGET FILE`.
# cargo-fuzz needs nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 allows them.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets() { cargo fuzz list; }

run_one() {
  local target=$1 seconds=$2 log
  mkdir -p "corpus/$target"
  log=$(mktemp)
  # -rss_limit_mb: a target that needs more than 2 GiB is a finding too.
  if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target FAILED; input saved under fuzz/artifacts/$target" >&2
    rm -f "$log"
    return 1
  fi
  local runs rate cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-20s %5ss  %12s runs  %8s exec/s  cov %s  corpus %s\n' \
    "$target" "$seconds" "$runs" "$rate" "${cov:-?}" "$(find "corpus/$target" -type f | wc -l)"
  rm -f "$log"
}

case "${1:-}" in
  build)
    cargo fuzz build
    ;;
  repro)
    cargo fuzz run "$2" "$3"
    ;;
  campaign)
    cargo fuzz build
    targets | xargs -P "${3:-2}" -I{} nice -n 10 bash ./run.sh {} "${2:-1800}"
    ;;
  all)
    cargo fuzz build
    for target in $(targets); do
      run_one "$target" "${2:?seconds}"
    done
    ;;
  "")
    sed -n '2,15p' "$0"
    exit 2
    ;;
  *)
    run_one "$1" "${2:?seconds}"
    ;;
esac
