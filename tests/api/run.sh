#!/usr/bin/env bash
# The public API, checked: the committed snapshot (tests/api/public-api.txt)
# must match what rustdoc sees, so every change to the surface shows in
# review, and the surface keeps its rules (tests/api/public_api.py --check:
# the ways to a live WebSocket, the error types; no doc(hidden) item; no
# file in src/ over 600 lines that holds more than one job).
#
#   bash tests/api/run.sh          check
#   bash tests/api/run.sh bless    rewrite the snapshot after a deliberate change
set -euo pipefail
cd "$(dirname "$0")/../.."

# rustdoc's JSON output: the nightly toolchain when there is one, else the
# stable one allowed its unstable flag.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
fi
RUSTC_BOOTSTRAP=1 cargo "${toolchain[@]}" rustdoc --lib --all-features -q \
  --target-dir target/public-api -- -Z unstable-options --output-format json
json=target/public-api/doc/rfc6455.json
current=target/public-api/public-api.txt
python3 tests/api/public_api.py "$json" > "$current"

if [ "${1:-}" = bless ]; then
  cp "$current" tests/api/public-api.txt
  echo "public API snapshot rewritten: $(wc -l < tests/api/public-api.txt) lines"
elif ! diff -u tests/api/public-api.txt "$current"; then
  echo "the public API changed: review the diff above, then run bash tests/api/run.sh bless" >&2
  exit 1
fi

python3 tests/api/public_api.py "$json" --check

if grep -rn 'doc(hidden)' src; then
  echo "doc(hidden) items in src/: a public item is documented, or not public" >&2
  exit 1
fi

# Files over 600 lines, each with the one job it holds.
declare -A one_job=(
  [src/conn/mod.rs]="the Connection: its public methods over the parts in conn/"
  [src/conn/outgoing.rs]="the outgoing byte queue: frames copied or queued by reference, written as one vectored write"
  [src/rt/hub.rs]="topics: subscriptions and how a delivery reaches each member (written at once or queued, under the slow-consumer policy)"
  [src/rt/drain.rs]="the watched connection tasks and how they end: closed by a drain or asked for by a handoff"
)
status=0
while read -r lines file; do
  [ "$file" = total ] && continue
  if [ "$lines" -gt 600 ]; then
    if [ -n "${one_job[$file]:-}" ]; then
      echo "$file: $lines lines, one job: ${one_job[$file]}"
    else
      echo "$file: $lines lines and no single job named for it in tests/api/run.sh" >&2
      status=1
    fi
  fi
done < <(find src -name '*.rs' -print0 | xargs -0 wc -l)
exit $status
