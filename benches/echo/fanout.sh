#!/usr/bin/env bash
# The fan-out comparison: one publisher, N subscribers on loopback, every
# broadcast server of src/bin/fanout.rs against the neutral load generator
# (src/bin/fanload.rs), server on CPU 0 and load generator on CPU 1,
# servers in an order rotated per round.
#
#   bash benches/echo/fanout.sh quick   # 100 subscribers x 1 KiB, 1 round (under a minute)
#   bash benches/echo/fanout.sh full    # {10, 1 000, 10 000} subscribers x
#                                       # {16 B, 1 KiB, 64 KiB}, 2 rounds, then
#                                       # latency at a pace every server keeps
#   bash benches/echo/fanout.sh paced [SUBS] [ROUNDS]     # latency only, 16 B and 1 KiB
#                                       # (default 10 000 subscribers, 3 rounds)
#   bash benches/echo/fanout.sh unpaced SUBS SIZE [ROUNDS]  # one unpaced cell
#
# SERVERS="raw rfc6455 …" runs only those; BASE=PATH adds the server `base`:
# rfc6455 from another build of the fanout binary (a commit to compare
# against, built in a worktree), in the same rotation.
#
# Unpaced: the publisher sends as fast as its socket takes; deliveries per
# second summed over subscribers, and the messages subscribers skipped (gaps
# in the sequence: the broadcast channels drop what a lagging subscriber
# missed; the hub holds the publisher instead). Paced: 50 000 deliveries per second in all
# (fewer for 64 KiB: 200 MB/s), latency p50/p99/max from the send time each
# message carries. rfc6455+deflate negotiates permessage-deflate without
# context takeover (none of the peers here speaks it). Rows go to
# target/fanout-bench/MODE-STAMP.tsv; a table of medians is printed.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
. "$root/.ci/lib.sh"
. ./lib.sh
mode=${1:-quick}
out="$root/target/fanout-bench"
mkdir -p "$out"
tsv="$out/$mode-$(date -u +%Y%m%dT%H%MZ).tsv"
cargo build --release --quiet --bin fanout --bin fanload
fanout=$PWD/target/release/fanout
fanload=$PWD/target/release/fanload
ulimit -n 65536 2>/dev/null || true

servers=(raw raw-held rfc6455 rfc6455+deflate tungstenite fastwebsockets tokio-websockets sockudo-ws yawc)
if [ -n "${SERVERS:-}" ]; then read -r -a servers <<<"$SERVERS"; fi
if [ -n "${BASE:-}" ]; then servers+=(base); fi
case "$mode" in
  quick) secs=1 rounds=1 cells=("100 1024") paced=() ;;
  full)
    secs=2 rounds=2 cells=() paced=()
    for subs in 10 1000 10000; do
      for size in 16 1024 65536; do
        cells+=("$subs $size")
      done
    done
    for size in 16 1024 65536; do paced+=("10000 $size"); done
    ;;
  paced)
    secs=2 rounds=${3:-3} cells=() paced=()
    for _ in $(seq "$rounds"); do paced+=("${2:-10000} 16" "${2:-10000} 1024"); done
    ;;
  unpaced) secs=2 rounds=${4:-3} cells=("$2 $3") paced=() ;;
  *) sed -n '2,24p' "${0##*/}"; exit 2 ;;
esac

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m) $(nproc) CPUs, mode $mode" | tee "$tsv"
printf 'mode\tsubs\tsize\tserver\tdeliveries_per_s\tskipped_per_s\tp50_us\tp99_us\tmax_us\tserver_cpu\tserver_rss_mb\tloadgen_cpu\n' >>"$tsv"

# run MODE SUBS SIZE SERVER [fanload options...]: one measurement, one row.
run() {
  local run_mode=$1 subs=$2 size=$3 kind=$4
  shift 4
  local sub_port pub_port flags=()
  sub_port=$(free_port)
  pub_port=$(free_port)
  [ "$kind" = rfc6455+deflate ] && flags=(--deflate)
  local binary=$fanout server_kind=${kind%+deflate}
  [ "$kind" = base ] && binary=$BASE server_kind=rfc6455
  "${on_server[@]}" "$binary" "$server_kind" "127.0.0.1:$sub_port" "127.0.0.1:$pub_port" ${flags[@]+"${flags[@]}"} &
  local pid=$!
  wait_port "$sub_port"
  local line
  line=$(timeout 300 "${on_loadgen[@]}" "$fanload" "127.0.0.1:$sub_port" "127.0.0.1:$pub_port" \
    "$subs" "$size" "$secs" --pid "$pid" ${flags[@]+"${flags[@]}"} "$@" ||
    echo "deliveries_per_s=0 skipped_per_s=0 p50_us=nan p99_us=nan max_us=nan loadgen_cpu=0 server_cpu=0 server_rss_mb=0")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local deliveries_per_s skipped_per_s=0 p50_us p99_us max_us loadgen_cpu server_cpu=0 server_rss_mb=0
  eval "$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run_mode" "$subs" "$size" "$kind" \
    "$deliveries_per_s" "$skipped_per_s" "$p50_us" "$p99_us" "$max_us" "$server_cpu" "$server_rss_mb" "$loadgen_cpu" >>"$tsv"
}

rotation=0
for cell in "${cells[@]}"; do
  read -r subs size <<<"$cell"
  for _ in $(seq "$rounds"); do
    rotation=$((rotation % ${#servers[@]}))
    order=("${servers[@]:rotation}" "${servers[@]:0:rotation}")
    rotation=$((rotation + 1))
    for kind in "${order[@]}"; do
      run unpaced "$subs" "$size" "$kind"
    done
  done
done
for cell in ${paced[@]+"${paced[@]}"}; do
  read -r subs size <<<"$cell"
  total=$((50000 < 200000000 / size ? 50000 : 200000000 / size))
  rate=$(python3 -c "print(max($total / $subs, 0.5))")
  rotation=$((rotation % ${#servers[@]}))
  order=("${servers[@]:rotation}" "${servers[@]:0:rotation}")
  rotation=$((rotation + 1))
  for kind in "${order[@]}"; do
    run paced "$subs" "$size" "$kind" --rate "$rate"
  done
done

python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader((l for l in open(sys.argv[1]) if not l.startswith('#')), delimiter='\t')]
cells = {}
for r in rows:
    cells.setdefault((r['mode'], int(r['subs']), int(r['size'])), {}).setdefault(r['server'], []).append(r)
peers = ('tungstenite', 'fastwebsockets', 'tokio-websockets', 'sockudo-ws', 'yawc')
print('| mode | subscribers | payload | server | deliveries/s | skipped/s | p50 µs | p99 µs | max µs | server CPU | server RSS MB | load generator CPU |')
print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (mode, subs, size), servers in sorted(cells.items()):
    med = {}
    for name, rs in servers.items():
        m = lambda k: statistics.median(float(r[k]) for r in rs)
        med[name] = m('deliveries_per_s')
        skipped = m('skipped_per_s') if 'skipped_per_s' in rs[0] else float('nan')
        print(f"| {mode} | {subs} | {size} B | {name} | {med[name]:,.0f} | {skipped:,.0f} | {m('p50_us'):.0f} | {m('p99_us'):.0f} | {m('max_us'):.0f} | {m('server_cpu'):.2f} | {m('server_rss_mb'):.0f} | {m('loadgen_cpu') if 'loadgen_cpu' in rs[0] else float('nan'):.2f} |")
    best = max((med[p] for p in peers if p in med), default=0)
    if mode == 'paced' and 'rfc6455' in servers:
        p99 = {n: statistics.median(float(r['p99_us']) for r in rs) for n, rs in servers.items()}
        cpu = {n: statistics.median(float(r['server_cpu']) / max(float(r['deliveries_per_s']), 1) for r in rs) for n, rs in servers.items()}
        best_p99 = min((p99[p] for p in peers if p in p99), default=float('nan'))
        raw = 'raw' in p99
        line = f"rfc6455 p99 / best peer {p99['rfc6455'] / best_p99:.2f}x"
        if raw:
            line += f", / raw {p99['rfc6455'] / p99['raw']:.2f}x; CPU per delivery / raw {cpu['rfc6455'] / cpu['raw']:.2f}x"
        if 'base' in p99:
            line += f"; p99 / base {p99['rfc6455'] / p99['base']:.2f}x, CPU per delivery / base {cpu['rfc6455'] / cpu['base']:.2f}x"
        print(f"| | | | {line} | | | | | | | |")
    if mode == 'unpaced' and 'base' in med and 'rfc6455' in med:
        print(f"| | | | rfc6455 / base {med['rfc6455'] / med['base']:.2f}x | | | | | | | |")
    if mode == 'unpaced' and not best and 'raw-held' in med and 'rfc6455' in med:
        print(f"| | | | rfc6455 / raw-held {med['rfc6455'] / med['raw-held']:.2f}x | | | | | | | |")
    if mode == 'unpaced' and best and 'rfc6455' in med:
        raw = med.get('raw') or float('nan')
        held = med.get('raw-held') or float('nan')
        print(f"| | | | rfc6455 / best peer {med['rfc6455'] / best:.2f}x, / raw {med['rfc6455'] / raw:.2f}x, / raw-held {med['rfc6455'] / held:.2f}x; deflate / best peer {med.get('rfc6455+deflate', 0) / best:.2f}x | | | | | | | |")
PY
