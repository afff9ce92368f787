#!/usr/bin/env bash
# Interop with an independent implementation, the Python `websockets` library:
# its client against examples/echo_server and examples/axum_chat, and our tokio
# client against its server.
# Creates (and caches) its own venv under target/. Bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."

. .ci/lib.sh
VENV=target/interop-venv
ensure_venv "$VENV" websockets 17.4
PY="$VENV/bin/python"

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

echo "== websockets clients -> examples/axum_chat"
cargo build --quiet --example axum_chat --features axum
port=$(free_port)
target/debug/examples/axum_chat "127.0.0.1:$port" 2>/dev/null &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
wait_port "$port"
timeout 60 "$PY" tests/interop/peer.py chat "ws://127.0.0.1:$port/ws"
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
