#!/usr/bin/env bash
# The echo comparison: every server against the same neutral load generator,
# server pinned to CPU 0 and load generator to CPU 1, servers interleaved
# cell by cell in one run.
#
#   bash benches/echo/run.sh quick   # 4 cells, 2 rounds of 1 s (under 2 minutes)
#   ROUNDS=5 bash benches/echo/run.sh quick   # any mode, more rounds
#   bash benches/echo/run.sh full    # payload {16 B, 1 KiB, 64 KiB, 1 MiB} x
#                                    # connections {1, 64, 512} x depth {1, 16},
#                                    # 3 rounds of 1 s (under 15 minutes)
#
# Each run measures after a warm-up: 0.5 s, 1.5 s at 1 MiB x 512 connections
# (warmup_for in lib.sh).
#
# Every round runs every server once, in an order rotated per round and per
# cell, so a slow spell of the machine does not land on one server. Prints a
# table of each server's median messages/s, with ours against the best peer
# and against the raw TCP ceiling (and, at 64 KiB and up, against the
# store-and-forward ceiling: whole frames answered with only their headers
# rewritten, no unmasking). Raw rows go to target/echo-bench/MODE-STAMP.tsv
# (STAMP the start time, UTC); several runs' rounds pool into one table with
#
#   python3 benches/echo/table.py target/echo-bench/full-*.tsv
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
. "$root/.ci/lib.sh"
mode=${1:-quick}
out="$root/target/echo-bench"
mkdir -p "$out"
tsv="$out/$mode-$(date -u +%Y%m%dT%H%MZ).tsv"

. ./lib.sh
build_servers

servers=(raw rfc6455 tungstenite tungstenite-forward fastwebsockets tokio-websockets sockudo-ws yawc yawc-batched)
case "$mode" in
  quick)
    secs=1 rounds=2
    cells=("16 1 1" "16 64 16" "1024 512 16" "65536 64 16")
    ;;
  full)
    secs=1 rounds=3
    cells=()
    for size in 16 1024 65536 1048576; do
      for conns in 1 64 512; do
        for depth in 1 16; do
          cells+=("$size $conns $depth")
        done
      done
    done
    ;;
  *)
    sed -n '2,23p' "${0##*/}"
    exit 2
    ;;
esac
rounds=${ROUNDS:-$rounds}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m) $(nproc) CPUs, mode $mode" | tee "$tsv"
printf 'size\tconns\tdepth\tserver\tmsgs_per_s\tmb_per_s\tp50_us\tp99_us\tloadgen_cpu\tserver_cpu\n' >>"$tsv"
rotation=0
for cell in "${cells[@]}"; do
  read -r size conns depth <<<"$cell"
  warmup=$(warmup_for "$size" "$conns" "$depth")
  # Where whole messages are large, holding one costs what the raw echo never
  # pays; the store-and-forward echo shows what that alone costs.
  cell_servers=("${servers[@]}")
  if [ "$size" -ge 65536 ]; then
    cell_servers+=(store-forward)
  fi
  for _ in $(seq "$rounds"); do
    # Rotate the order per round, so no server always runs first (or last).
    rotation=$((rotation % ${#cell_servers[@]}))
    order=("${cell_servers[@]:rotation}" "${cell_servers[@]:0:rotation}")
    rotation=$((rotation + 1))
    for kind in "${order[@]}"; do
      start_server "$kind"
      line=$(timeout 120 "${on_loadgen[@]}" "$loadgen" "127.0.0.1:$port" "$conns" "$size" "$depth" "$secs" "$warmup" "$server_pid" || echo "msgs_per_s=0 mb_per_s=0 p50_us=nan p99_us=nan cpu=0 server_cpu=0")
      kill "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
      eval "$line"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$conns" "$depth" "$kind" \
        "$msgs_per_s" "$mb_per_s" "$p50_us" "$p99_us" "$cpu" "$server_cpu" >>"$tsv"
    done
  done
done

python3 table.py "$tsv"
