#!/usr/bin/env bash
# Fan-out on one core and on two: the same broadcast servers of
# src/bin/fanout.rs with the server pinned to CPU 0, then to CPUs 0-1 (its
# runtime sizes its workers by the CPUs it may use), the load generator on
# CPU 1 both times. Paired: each round runs every (server, CPUs) pair in a
# rotated order; the table gives medians and the two-core / one-core ratio.
# On a two-core machine the two-core run shares CPU 1 with the load
# generator, so the ratio is a floor on the scaling, not its ceiling.
#
#   bash benches/echo/cores.sh [ROUNDS] [SECONDS]   (default 3 rounds of 2 s)
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
. "$root/.ci/lib.sh"
rounds=${1:-3} secs=${2:-2}
cargo build --release --quiet --bin fanout --bin fanload
fanout=$PWD/target/release/fanout
fanload=$PWD/target/release/fanload
ulimit -n 65536 2>/dev/null || true
servers=(raw rfc6455)
cells=("1000 16" "1000 1024" "10000 1024")
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT

for cell in "${cells[@]}"; do
  read -r subs size <<<"$cell"
  for round in $(seq "$rounds"); do
    pairs=()
    for kind in "${servers[@]}"; do pairs+=("$kind 0" "$kind 0,1"); done
    shift_by=$((round % ${#pairs[@]}))
    for pair in "${pairs[@]:shift_by}" "${pairs[@]:0:shift_by}"; do
      read -r kind cpus <<<"$pair"
      sub_port=$(free_port)
      pub_port=$(free_port)
      taskset -c "$cpus" "$fanout" "$kind" "127.0.0.1:$sub_port" "127.0.0.1:$pub_port" &
      pid=$!
      wait_port "$sub_port"
      line=$(timeout 300 taskset -c 1 "$fanload" "127.0.0.1:$sub_port" "127.0.0.1:$pub_port" \
        "$subs" "$size" "$secs" --pid "$pid" || echo "deliveries_per_s=0 server_cpu=0")
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      deliveries_per_s=0 server_cpu=0
      eval "$(tr ' ' '\n' <<<"$line" | grep -E '^(deliveries_per_s|server_cpu)=')"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$subs" "$size" "$kind" "$cpus" "$deliveries_per_s" "$server_cpu" >>"$rows"
    done
  done
done

python3 - "$rows" <<'PY'
import statistics, sys
cells = {}
for line in open(sys.argv[1]):
    subs, size, kind, cpus, rate, cpu = line.split('\t')
    cells.setdefault((int(subs), int(size), kind), {}).setdefault(cpus, []).append((float(rate), float(cpu)))
print('| subscribers | payload | server | 1 core: deliveries/s (CPU) | 2 cores: deliveries/s (CPU) | 2 / 1 |')
print('| --- | --- | --- | --- | --- | --- |')
for (subs, size, kind), by in sorted(cells.items()):
    one = statistics.median(r for r, _ in by['0']); two = statistics.median(r for r, _ in by['0,1'])
    c1 = statistics.median(c for _, c in by['0']); c2 = statistics.median(c for _, c in by['0,1'])
    print(f"| {subs} | {size} B | {kind} | {one:,.0f} ({c1:.2f}) | {two:,.0f} ({c2:.2f}) | {two / one:.2f}x |")
PY
