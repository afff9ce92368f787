#!/usr/bin/env bash
# A real browser over HTTP/2 (RFC 8441): headless Chromium loads the
# axum_chat example's page over TLS (ALPN h2, http/1.1) and its WebSocket
# talks to the room over the same HTTP/2 connection; then a control run
# with extended CONNECT off, where the WebSocket falls back to HTTP/1.1.
#
# The page at /#probe sends a line, closes once the room echoes it and
# reports its close on /closed; the server logs every request with its
# connection's number and HTTP version, and that record is what is checked.
# Chromium is Debian's package, installed when missing and run as root.
#
#   bash tests/browser/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib.sh
ensure_command chromium chromium
chromium --version 2>/dev/null
cargo build --quiet --features axum,rustls --example axum_chat

pids=()
scratch=$(mktemp -d)
trap 'for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"' EXIT

# probe NAME [SERVER ARGS...]: runs the page once against a fresh server;
# leaves the server's record in $scratch/NAME.log.
probe() {
  local name=$1 port log=$scratch/$1.log server browser
  shift
  port=$(free_port)
  target/debug/examples/axum_chat "127.0.0.1:$port" --tls "$@" 2>"$log" &
  server=$!
  pids+=("$server")
  wait_port "$port"
  # Its own session group, so the browser's helper processes stop with it.
  setsid chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$scratch/profile-$name" --ignore-certificate-errors \
    "https://localhost:$port/#probe" >"$scratch/$name.chromium.log" 2>&1 &
  browser=$!
  pids+=("$browser")
  for _ in $(seq 300); do
    grep -q ' /closed?' "$log" && break
    sleep 0.1
  done
  kill -- "-$browser" 2>/dev/null || kill "$browser" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "--- $name: the server's record"
  grep 'axum_chat: connection' "$log" || true
  if ! grep -q ' /closed?code=1000&clean=true ' "$log"; then
    echo "$name: the page did not report a clean close (1000); Chromium said:" >&2
    tail -n 20 "$scratch/$name.chromium.log" >&2
    return 1
  fi
}

# connection_of LOG METHOD PATH VERSION: the number of the connection that
# carried that request, or nothing.
connection_of() {
  sed -n "s|^axum_chat: connection \([0-9]*\): $2 $3 over $4\$|\1|p" "$1" | head -n 1
}

probe h2
log=$scratch/h2.log
page=$(connection_of "$log" GET / HTTP/2.0)
ws=$(connection_of "$log" CONNECT /ws HTTP/2.0)
[ -n "$page" ] || { echo "h2: the page was not loaded over HTTP/2" >&2; exit 1; }
[ -n "$ws" ] || { echo "h2: the WebSocket was not opened over HTTP/2 (extended CONNECT)" >&2; exit 1; }
[ "$page" = "$ws" ] || { echo "h2: the WebSocket took connection $ws, the page $page" >&2; exit 1; }
echo "browser: page and WebSocket on HTTP/2 connection $ws, message echoed, closed 1000"

probe http1 --no-h2-websockets
log=$scratch/http1.log
[ -n "$(connection_of "$log" GET / HTTP/2.0)" ] || { echo "control: the page was not loaded over HTTP/2" >&2; exit 1; }
ws=$(connection_of "$log" GET /ws HTTP/1.1)
[ -n "$ws" ] || { echo "control: the WebSocket did not fall back to HTTP/1.1" >&2; exit 1; }
echo "browser: without extended CONNECT the WebSocket took HTTP/1.1 connection $ws"
