#!/usr/bin/env bash
# A real scrape: examples/echo_server built with the `metrics` feature and
# started with --metrics, an echo load from tests/metrics.rs (its ignored
# test), and /metrics fetched during and after it. Bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."

. .ci/lib.sh
cargo build --quiet --features metrics --example echo_server
cargo test --quiet --all-features --test metrics --no-run

port=$(free_port)
metrics_port=$(free_port)
target/debug/examples/echo_server "127.0.0.1:$port" --metrics "127.0.0.1:$metrics_port" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
wait_port "$port"
wait_port "$metrics_port"
WS_URL="ws://127.0.0.1:$port/" METRICS_ADDR="127.0.0.1:$metrics_port" \
  timeout 120 cargo test --quiet --all-features --test metrics -- --ignored
echo "metrics scrape: ok"
