#!/usr/bin/env bash
# One cell of the echo comparison, run in many rounds with paired ratios:
# for a gap of a few percent, which one full run's three one-second rounds
# cannot show on a noisy machine.
#
#   bash benches/echo/ab.sh SIZE CONNS DEPTH ROUNDS SERVER...
#   bash benches/echo/ab.sh 1048576 64 1 8 rfc6455 tokio-websockets store-forward
#   bash benches/echo/ab.sh 1048576 64 1 8 rfc6455 bin:target/v4/release/examples/echo_server
#
# SERVER is a kind run.sh knows (rfc6455, raw, store-forward, tungstenite,
# tungstenite-forward, fastwebsockets, tokio-websockets, sockudo-ws, yawc,
# yawc-batched) or bin:PATH, any echo
# server that takes ADDR as its argument (another build of the example, say).
# Every round runs every server once, in an order rotated per round; SECS
# (default 2) is each run's length after a warm-up (0.5 s, 1.5 s where
# 512 MiB or more is in flight: see warmup_for in lib.sh). Prints each
# server's median messages/s and CPU use, then the first server's ratio to
# each other one taken within each round (so a slow spell of the machine
# cancels) as a median with its quartiles.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
. "$root/.ci/lib.sh"
if [ $# -lt 5 ]; then
  sed -n '2,18p' "${0##*/}"
  exit 2
fi
size=$1 conns=$2 depth=$3 rounds=$4
shift 4
servers=("$@")
secs=${SECS:-2}

. ./lib.sh
build_servers
warmup=$(warmup_for "$size" "$conns" "$depth")

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for round in $(seq 0 $((rounds - 1))); do
  for i in "${!servers[@]}"; do
    kind=${servers[$(((i + round) % ${#servers[@]}))]}
    start_server "$kind"
    line=$(timeout 120 "${on_loadgen[@]}" "$loadgen" "127.0.0.1:$port" "$conns" "$size" "$depth" "$secs" "$warmup" "$server_pid" || echo "msgs_per_s=0 cpu=0 server_cpu=0")
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    msgs_per_s=0 cpu=0 server_cpu=0
    eval "$line"
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$kind" "$msgs_per_s" "$cpu" "$server_cpu" >>"$rows"
  done
done

python3 - "$rows" "$size" "$conns" "$depth" "$rounds" "${servers[@]}" <<'PY'
import statistics
import sys

path, size, conns, depth, rounds, *servers = sys.argv[1:]
runs = {}
for line in open(path):
    round_, kind, rate, cpu, server_cpu = line.split("\t")
    runs.setdefault(kind, {})[int(round_)] = (float(rate), float(cpu), float(server_cpu))

def quartiles(values):
    values = sorted(values)
    return values[len(values) // 4], statistics.median(values), values[(3 * len(values)) // 4]

print(f"{size} B x {conns} connections x depth {depth}, {rounds} rounds")
for kind in servers:
    rates = [r for r, _, _ in runs[kind].values()]
    cpu = statistics.median(c for _, c, _ in runs[kind].values())
    server = statistics.median(s for _, _, s in runs[kind].values())
    print(f"  {kind:<24} median {statistics.median(rates):>12.1f} msgs/s"
          f"  (load-gen CPU {cpu:.2f}, server CPU {server:.2f})")
first = servers[0]
for kind in servers[1:]:
    ratios = [runs[first][r][0] / runs[kind][r][0]
              for r in runs[first] if r in runs[kind] and runs[kind][r][0] > 0]
    if ratios:
        low, mid, high = quartiles(ratios)
        print(f"  {first} / {kind}: {mid:.3f}x within a round (quartiles {low:.3f}-{high:.3f})")
PY
