#!/usr/bin/env bash
# Runs the Autobahn TestSuite cases (driven by kosoku) against this crate.
#
#   autobahn/run.sh server   kosoku tests examples/echo_server
#   autobahn/run.sh client   examples/autobahn_client runs against kosoku's fuzzing server
#   autobahn/run.sh both     the two roles at once (each kosoku is one busy
#                            Python process, so on two cores this halves the wait)
#   autobahn/run.sh h2       both roles with every WebSocket on an HTTP/2
#                            stream (RFC 8441): kosoku tests examples/h2_echo_server
#                            through autobahn/h2bridge (HTTP/1.1 upgrades become
#                            extended CONNECTs on one h2c connection), and
#                            examples/autobahn_client --h2 runs against kosoku's
#                            server through the mirror bridge
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
  h2) examples=(--features h2,hyper --example h2_echo_server --example autobahn_client) ;;
  *) echo "usage: autobahn/run.sh server|client|both|h2" >&2; exit 2 ;;
esac

. .ci/lib.sh
VENV=target/autobahn-venv
ensure_venv "$VENV" kosoku 0.1.0
PY="$VENV/bin/python"
cargo build --quiet --release "${examples[@]}"
[ "$mode" = h2 ] && cargo build --quiet --release -p h2bridge

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# started PID: a process run_role started, stopped when the role ends (its
# own list) or when the script exits (the trap's).
started() {
  mine+=("$1")
  pids+=("$1")
}

# run_role ROLE: runs the cases of one role and prints its summary. ROLE is
# server or client, or h2-server or h2-client for the same over HTTP/2.
run_role() {
  local role=$1 reports="autobahn/reports/$1" port pid mine=()
  rm -rf "$reports"
  mkdir -p "$reports"
  port=$(free_port)
  case "$role" in
  server | h2-server)
    if [ "$role" = server ]; then
      target/release/examples/echo_server "127.0.0.1:$port" 2>/dev/null &
      started $!
    else
      local echo_port
      echo_port=$(free_port)
      target/release/examples/h2_echo_server "127.0.0.1:$echo_port" 2>/dev/null &
      started $!
      wait_port "$echo_port"
      target/release/h2bridge to-h2 "127.0.0.1:$port" "127.0.0.1:$echo_port" 2>/dev/null &
      started $!
    fi
    wait_port "$port"
    # kosoku's own exit status counts UNIMPLEMENTED as failure: judge from the reports.
    timeout 900 "$VENV/bin/kosoku" -m fuzzingclient -p 4 -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 || true
    ;;
  client | h2-client)
    "$VENV/bin/kosoku" -m fuzzingserver -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 &
    pid=$!
    started "$pid"
    wait_port "$port"
    if [ "$role" = client ]; then
      timeout 900 target/release/examples/autobahn_client "ws://127.0.0.1:$port"
    else
      local bridge_port
      bridge_port=$(free_port)
      target/release/h2bridge to-h1 "127.0.0.1:$bridge_port" "127.0.0.1:$port" 2>/dev/null &
      started $!
      wait_port "$bridge_port"
      timeout 900 target/release/examples/autobahn_client --h2 "ws://127.0.0.1:$bridge_port"
    fi
    # /updateReports makes the runner write the reports and finish.
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      [ -f "$reports/index.json" ] && sleep 0.5 && break
      sleep 0.1
    done
    ;;
  esac
  # A role run in the background has no EXIT trap of its own: stop here
  # what it started.
  kill "${mine[@]}" 2>/dev/null || true
  [ -f "$reports/index.json" ] || { echo "no reports written; see $reports/kosoku.log" >&2; return 1; }
  "$PY" autobahn/summary.py "$role" "$reports" autobahn/known-runner-issues.md
}

# run_both SERVER CLIENT: the two roles at once; the server role runs in the
# background and its output is shown after the client's.
run_both() {
  local log server status=0
  log=$(mktemp)
  run_role "$1" > "$log" 2>&1 &
  server=$!
  pids+=("$server")
  run_role "$2" || status=1
  wait "$server" || status=1
  cat "$log"
  rm -f "$log"
  return "$status"
}

case "$mode" in
  both) run_both server client ;;
  h2) run_both h2-server h2-client ;;
  *) run_role "$mode" ;;
esac
