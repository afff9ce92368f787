# Shared by run.sh and ab.sh; source it from benches/echo with $root set to
# the repository root. Builds nothing; defines where the servers are, the CPU
# each side is pinned to, and start_server.

peer=$PWD/target/release/peer
loadgen=$PWD/target/release/loadgen
ours="$root/target/release/examples/echo_server"

# build_servers: the load generator, the peers' servers and ours, in release.
build_servers() {
  cargo build --release --quiet --bins
  (cd "$root" && cargo build --release --quiet --example echo_server)
}

# warmup_for SIZE CONNS DEPTH: seconds of load before measuring. 0.5, but
# 1.5 where 512 MiB or more is in flight (1 MiB x 512 connections): there the
# first echoes take 0.5-1 s to come back while every connection fills its
# buffers, so a shorter warm-up measures that ramp rather than the steady
# state (rates over time, SERIES_MS=250, at 1 MiB x 512 x 16 and x 1).
warmup_for() {
  if [ $(($1 * $2 * $3)) -ge $((512 << 20)) ]; then echo 1.5; else echo 0.5; fi
}

# The server on CPU 0, the load generator on CPU 1.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  on_server=(taskset -c 0) on_loadgen=(taskset -c 1)
else
  on_server=() on_loadgen=()
fi

# start_server KIND: starts KIND on a free port (sets port and server_pid).
# KIND is rfc6455 (examples/echo_server), a kind peer.rs serves, or bin:PATH
# for any echo server that takes ADDR as its argument (PATH from the root).
start_server() {
  local kind=$1
  port=$(free_port)
  case $kind in
    rfc6455) "${on_server[@]}" "$ours" "127.0.0.1:$port" 2>/dev/null & ;;
    bin:*) (cd "$root" && exec "${on_server[@]}" "${kind#bin:}" "127.0.0.1:$port" 2>/dev/null) & ;;
    *) "${on_server[@]}" "$peer" "$kind" "127.0.0.1:$port" & ;;
  esac
  server_pid=$!
  wait_port "$port" || { echo "server $kind did not start" >&2; return 1; }
}
