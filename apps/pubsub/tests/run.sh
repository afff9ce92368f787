#!/usr/bin/env bash
# The pubsub server as a Redis cluster (apps/pubsub/tests/redis.rs, its
# ignored test): two node processes and a redis-server the test starts on free
# ports (no persistence) and kills by process id, with 400 clients over
# loopback. redis-server comes from the PATH; when it is missing and this
# runs as root, the distribution's package is installed.
#
#   bash apps/pubsub/tests/run.sh          the exactly-once and fault checks
#   bash apps/pubsub/tests/run.sh bench    cross-node latency and fan-out throughput
set -euo pipefail
cd "$(dirname "$0")/../../.."

. .ci/lib.sh
ensure_command redis-server redis-server
# The Debian package starts a system Redis on 6379; the test uses its own.
redis-server --version

cargo build --quiet --release -p rfc6455-pubsub --bin pubsub
export REDIS_SERVER PUBSUB_BIN
REDIS_SERVER=$(command -v redis-server)
PUBSUB_BIN=$PWD/target/release/pubsub

case "${1:-check}" in
  check)
    timeout 300 cargo test --quiet -p rfc6455-pubsub --test redis -- --ignored --nocapture \
      a_redis_cluster 2>&1 | grep -v '^pubsub: connection ended'
    ;;
  bench)
    timeout 600 cargo test --quiet --release -p rfc6455-pubsub --test redis -- --ignored \
      --nocapture --test-threads 1 bench_ 2>&1 | grep -v '^pubsub: connection ended'
    ;;
  *)
    echo "usage: $0 [check|bench]" >&2
    exit 2
    ;;
esac
