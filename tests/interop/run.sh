#!/usr/bin/env bash
# Interop with an independent implementation, the Python `websockets` library:
# its client against examples/echo_server, and our tokio client against its server.
# Creates (and caches) its own venv under target/. Bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."

WEBSOCKETS_VERSION=17.4
VENV=target/interop-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
PY="$VENV/bin/python"
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2
  return 1
}

cargo build --quiet --example echo_server
cargo test --quiet --test interop --no-run

echo "== websockets client -> examples/echo_server"
port=$(free_port)
target/debug/examples/echo_server "127.0.0.1:$port" 2>/dev/null &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
wait_port "$port"
timeout 60 "$PY" tests/interop/peer.py client "ws://127.0.0.1:$port/"
kill "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true

echo "== our client (tests/interop.rs) -> websockets server"
port=$(free_port)
"$PY" tests/interop/peer.py server "$port" &
peer_pid=$!
trap 'kill $peer_pid 2>/dev/null || true' EXIT
wait_port "$port"
INTEROP_URL="ws://127.0.0.1:$port/" timeout 60 cargo test --quiet --test interop -- --ignored
wait "$peer_pid"
echo "interop: ok"
