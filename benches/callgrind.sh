#!/usr/bin/env bash
# Instruction counts per message for the core's receive, send and echo paths,
# from valgrind --tool=callgrind: stable on a noisy machine, so a regression
# shows without timing. Each figure is (Ir(N2) - Ir(N1)) / (N2 - N1): setup cancels.
#
#   bash benches/callgrind.sh          the core's paths
#   bash benches/callgrind.sh fanout   the hub's fan-out: instructions per
#                                      delivery (queue, wake-up, task,
#                                      write; not the kernel)
set -euo pipefail
cd "$(dirname "$0")/echo"
cargo build --release --quiet --bin percall --bin fanpercall
bin=target/release/percall
n1=1000 n2=21000

ir() {
  local log
  log=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" >/dev/null 2>"$log"
  sed -n 's/.*Collected : *//p' "$log"
  rm -f "$log"
}

if [ "${1:-}" = fanout ]; then
  bin=target/release/fanpercall
  printf '| subscribers | payload | instructions per delivery |\n| --- | --- | --- |\n'
  for subs in 100 1000; do
    for size in 16 1024; do
      a=$(ir "$subs" "$size" 100)
      b=$(ir "$subs" "$size" 300)
      printf '| %s | %s B | %s |\n' "$subs" "$size" $(((b - a) / (200 * subs)))
    done
  done
  exit 0
fi

printf '| path | kind | payload | instructions per message |\n| --- | --- | --- | --- |\n'
for path in receive send echo; do
  for kind in binary text; do
    for size in 16 1024; do
      a=$(ir "$path" "$kind" "$size" "$n1")
      b=$(ir "$path" "$kind" "$size" "$n2")
      printf '| %s | %s | %s B | %s |\n' "$path" "$kind" "$size" $(((b - a) / (n2 - n1)))
    done
  done
done
