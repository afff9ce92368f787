#!/usr/bin/env bash
# Runs the Autobahn TestSuite cases (driven by kosoku) against this crate.
#
#   autobahn/run.sh server   kosoku tests examples/echo_server
#   autobahn/run.sh client   examples/autobahn_client runs against kosoku's fuzzing server
#
# Reports go to autobahn/reports/ROLE/ (git-ignored); the summary table ends
# with `autobahn ROLE: N cases, F failed, S non-strict` and the exit status is
# non-zero on any FAILED or NON-STRICT case. Bounded in time; stops only the
# processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

role=${1:-}
case "$role" in
  server | client) ;;
  *) echo "usage: autobahn/run.sh server|client" >&2; exit 2 ;;
esac

. .ci/lib.sh
VENV=target/autobahn-venv
ensure_venv "$VENV" kosoku 0.1.0
PY="$VENV/bin/python"

reports="autobahn/reports/$role"
rm -rf "$reports"
mkdir -p "$reports"
port=$(free_port)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

if [ "$role" = server ]; then
  cargo build --quiet --release --example echo_server
  target/release/examples/echo_server "127.0.0.1:$port" 2>/dev/null &
  pid=$!
  wait_port "$port"
  # kosoku's own exit status counts UNIMPLEMENTED as failure: judge from the reports.
  timeout 900 "$VENV/bin/kosoku" -m fuzzingclient -p 4 -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 || true
else
  cargo build --quiet --release --example autobahn_client
  "$VENV/bin/kosoku" -m fuzzingserver -o "$reports" "127.0.0.1:$port" > "$reports/kosoku.log" 2>&1 &
  pid=$!
  wait_port "$port"
  timeout 900 target/release/examples/autobahn_client "ws://127.0.0.1:$port"
  # /updateReports makes the runner write the reports and finish.
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    [ -f "$reports/index.json" ] && sleep 0.5 && break
    sleep 0.1
  done
fi
[ -f "$reports/index.json" ] || { echo "no reports written; see $reports/kosoku.log" >&2; exit 1; }
"$PY" autobahn/summary.py "$role" "$reports" autobahn/known-runner-issues.md
