#!/usr/bin/env bash
# Runs the Autobahn TestSuite cases (driven by kosoku) against this crate.
#
#   autobahn/run.sh server   kosoku tests examples/echo_server
#   autobahn/run.sh client   examples/autobahn_client runs against kosoku's fuzzing server
#   autobahn/run.sh both     the two roles at once (each kosoku is one busy
#                            Python process, so on two cores this halves the wait)
#
# Reports go to autobahn/reports/ROLE/ (git-ignored); the summary table ends
# with `autobahn ROLE: N cases, F failed, S non-strict` and the exit status is
# non-zero on any FAILED or NON-STRICT case. Bounded in time; stops only the
# processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  server) examples=(--example echo_server) ;;
  client) examples=(--example autobahn_client) ;;
  both) examples=(--example echo_server --example autobahn_client) ;;
  *) echo "usage: autobahn/run.sh server|client|both" >&2; exit 2 ;;
esac

. .ci/lib.sh
VENV=target/autobahn-venv
ensure_venv "$VENV" kosoku 0.1.0
PY="$VENV/bin/python"
cargo build --quiet --release "${examples[@]}"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# run_role ROLE: runs the cases of one role and prints its summary.
run_role() {
  local role=$1 reports="autobahn/reports/$1" port pid
  rm -rf "$reports"
  mkdir -p "$reports"
  port=$(free_port)
  if [ "$role" = server ]; then
    target/release/examples/echo_server "127.0.0.1:$port" 2>/dev/null &
    pid=$!
    pids+=("$pid")
    wait_port "$port"
    # kosoku's own exit status counts UNIMPLEMENTED as failure: judge from the reports.
    timeout 900 "$VENV/bin/kosoku" -m fuzzingclient -p 4 -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 || true
  else
    "$VENV/bin/kosoku" -m fuzzingserver -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_port "$port"
    timeout 900 target/release/examples/autobahn_client "ws://127.0.0.1:$port"
    # /updateReports makes the runner write the reports and finish.
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      [ -f "$reports/index.json" ] && sleep 0.5 && break
      sleep 0.1
    done
  fi
  kill "$pid" 2>/dev/null || true
  [ -f "$reports/index.json" ] || { echo "no reports written; see $reports/kosoku.log" >&2; return 1; }
  "$PY" autobahn/summary.py "$role" "$reports" autobahn/known-runner-issues.md
}

if [ "$mode" = both ]; then
  # The server role runs in the background; its output is shown after the client's.
  log=$(mktemp)
  run_role server > "$log" 2>&1 &
  server=$!
  pids+=("$server")
  status=0
  run_role client || status=1
  wait "$server" || status=1
  cat "$log"
  rm -f "$log"
  exit "$status"
fi
run_role "$mode"
