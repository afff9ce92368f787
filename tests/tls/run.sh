#!/usr/bin/env bash
# wss:// end to end with the examples: `client` (WebSocketStream::connect
# through the rustls feature) against `wss_server`, trusting the
# certificate the server wrote at start. One message must come back.
#
#   bash tests/tls/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --features rustls --example wss_server --example client
bin=target/debug/examples
log=$(mktemp)
"$bin/wss_server" 127.0.0.1:0 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 100); do
  port=$(sed -n 's|.*wss://localhost:\([0-9]*\)/.*|\1|p' "$log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "wss_server did not start:" >&2; cat "$log" >&2; exit 1; }
cert=$(sed -n 's/.*(certificate: \(.*\))$/\1/p' "$log")
out=$(printf 'hello over tls\n' | timeout 20 "$bin/client" "wss://localhost:$port/" --ca "$cert")
if ! grep -qx '< hello over tls' <<<"$out"; then
  echo "no echo over wss; the client printed:" >&2
  echo "$out" >&2
  exit 1
fi
echo "wss: client example echoed through wss_server on port $port"
