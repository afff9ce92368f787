#!/usr/bin/env bash
# Connection scale: N connections held open against each echo server, by the
# `scale` client (no WebSocket library): memory per idle connection,
# handshakes per second while opening them, a second echo on every one, and
# the time to close them all. Server on CPU 0, client on CPU 1, servers
# interleaved per round.
#
#   bash benches/echo/scale.sh quick      # 10 000 connections, 1 round (CI)
#   bash benches/echo/scale.sh full       # 10 000 x 3 rounds, 100 000 x 1,
#                                         # and a storm: 10 000 opening at once
#   bash benches/echo/scale.sh max N      # ours alone at N connections
#   bash benches/echo/scale.sh spread N P # ours at N connections held by P
#                                         # server processes (P clients), for
#                                         # counts past one process's file limit
#
# Servers: ours (examples/echo_server) plain and with permessage-deflate
# offered the way browsers offer it (and again with glibc's mmap threshold
# fixed at 128 KiB, so freed zlib states go back to the kernel rather than
# staying in the heap), and the peers' echo servers (peer.rs).
# Raw rows go to target/echo-bench/scale-MODE-STAMP.tsv. Loopback only; the
# file limit is raised for this shell as far as the hard limit allows (and, as
# root, fs.nr_open); a cell it cannot hold is skipped with a line saying so.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
. "$root/.ci/lib.sh"
. ./lib.sh
mode=${1:-quick}
out="$root/target/echo-bench"
mkdir -p "$out"
tsv="$out/scale-$mode-$(date -u +%Y%m%dT%H%MZ).tsv"
scale=$PWD/target/release/scale

servers=(rfc6455 rfc6455+deflate rfc6455+deflate+mmap128k tokio-websockets fastwebsockets tungstenite sockudo-ws yawc)
case "$mode" in
  quick) cells=("10000 1 256") ;;
  full) cells=("10000 3 256" "100000 1 256" "10000 1 10000") ;;
  max)
    servers=(rfc6455)
    cells=("${2:?max needs a connection count} 1 256")
    ;;
  spread)
    total=${2:?spread needs a connection count}
    procs=${3:?spread needs a process count}
    cells=("$((total / procs)) 1 256")
    ;;
  *)
    sed -n '2,18p' "${0##*/}"
    exit 2
    ;;
esac

# The server holds one descriptor per connection, the client another: raise
# the file limit as far as the cells need (as root, fs.nr_open too). A cell
# the limit cannot hold is reported and skipped.
largest=$(printf '%s\n' "${cells[@]}" | awk '{print $1}' | sort -n | tail -1)
want=$((largest + 4096))
if [ "$(id -u)" = 0 ]; then
  [ "$(cat /proc/sys/fs/nr_open)" -ge "$want" ] || sysctl -qw fs.nr_open="$want" || true
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)

build_servers
cargo build --release --quiet --bin scale

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m) $(nproc) CPUs, mode $mode" | tee "$tsv"

# spread: P servers (ours) and P clients at once, each pair holding N/P
# connections; every client waits (--barrier) until all pairs are open, then
# 5 s more, before it samples, echoes and closes. Memory is the sum over the servers.
if [ "$mode" = spread ]; then
  per=$((total / procs))
  if [ $((per + 1024)) -gt "$limit" ]; then
    echo "scale: $per connections per process is past the file limit $limit" | tee -a "$tsv"
    exit 1
  fi
  echo "# system-wide: fs.file-max $(cat /proc/sys/fs/file-max), $procs processes x $per" | tee -a "$tsv"
  pids=() outs=()
  barrier="$out/spread-barrier"
  rm -rf "$barrier"
  used_before=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print int((t - a) / 1024)}' /proc/meminfo)
  for i in $(seq "$procs"); do
    start_server rfc6455
    sleep 0.2
    out_i="$out/spread-$i.out"
    outs+=("$out_i")
    timeout 900 "${on_loadgen[@]}" "$scale" "127.0.0.1:$port" "$per" --pid "$server_pid" \
      --sources 2 --first-source $((i * 2)) --barrier "$barrier:$procs" --settle 5 \
      >"$out_i" 2>"$out_i.err" &
    pids+=("$server_pid:$!")
  done
  for pair in "${pids[@]}"; do
    wait "${pair#*:}" || true
    kill "${pair%%:*}" 2>/dev/null || true
  done
  for o in "${outs[@]}"; do
    cat "$o.err" >&2
    printf 'rfc6455\t%s\t256\t%s\n' "$per" "$(cat "$o")" | tee -a "$tsv"
  done
  python3 - "$tsv" "$total" "$used_before" <<'PY'
import sys
rows = [dict(p.split("=", 1) for p in l.rstrip("\n").split("\t")[3].split())
        for l in open(sys.argv[1]) if l.startswith("rfc6455\t")]
total = int(sys.argv[2])
opened = sum(int(r.get("opened", 0)) for r in rows)
echoed = sum(int(r.get("echoed", 0)) for r in rows)
grown = sum(float(r["rss_idle_kib"]) - float(r["rss_base_kib"]) for r in rows if "rss_idle_kib" in r)
open_s = max(float(r["open_until"]) for r in rows) - min(float(r["open_from"]) for r in rows)
together = min(float(r["echo_from"]) for r in rows) > max(float(r["open_until"]) for r in rows)
print(f"\n{total} connections over {len(rows)} server processes: opened {opened}, "
      f"echoed {'after all were open' if together else 'BEFORE ALL WERE OPEN'} {echoed}, failed {sum(int(r.get('failed', 0)) for r in rows)}")
print(f"server RSS growth {grown / 1024:.1f} MiB, {grown / max(opened, 1):.2f} KiB per idle connection; "
      f"{opened / open_s:,.0f} handshakes/s ({open_s:.1f} s to open all); "
      f"echo all {max(float(r.get('echo_s', 'nan')) for r in rows):.2f} s; "
      f"close all {max(float(r.get('close_s', 'nan')) for r in rows):.2f} s; "
      f"kernel TCP buffers {max(int(r.get('tcp_mem_kib', 0)) for r in rows) / 1024:.0f} MiB; "
      f"machine memory in use +{max(int(r.get('system_used_mib', 0)) for r in rows) - int(sys.argv[3]):,} MiB "
      f"(servers, clients and kernel)")
PY
  exit 0
fi
rotation=0
for cell in "${cells[@]}"; do
  read -r count rounds concurrency <<<"$cell"
  if [ $((count + 1024)) -gt "$limit" ]; then
    echo "scale: $count connections skipped: the file limit is $limit (hard limit $(ulimit -Hn))" | tee -a "$tsv"
    continue
  fi
  for _ in $(seq "$rounds"); do
    rotation=$((rotation % ${#servers[@]}))
    order=("${servers[@]:rotation}" "${servers[@]:0:rotation}")
    rotation=$((rotation + 1))
    for kind in "${order[@]}"; do
      flags=()
      case $kind in
        rfc6455+deflate) start_server rfc6455; flags=(--deflate) ;;
        rfc6455+deflate+mmap128k)
          MALLOC_MMAP_THRESHOLD_=131072 start_server rfc6455
          flags=(--deflate)
          ;;
        *) start_server "$kind" ;;
      esac
      sleep 0.3
      line=$(timeout 900 "${on_loadgen[@]}" "$scale" "127.0.0.1:$port" "$count" --pid "$server_pid" \
        --concurrency "$concurrency" "${flags[@]}" || echo "failed=$count")
      kill "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
      printf '%s\t%s\t%s\t%s\n' "$kind" "$count" "$concurrency" "$line" | tee -a "$tsv"
    done
  done
done

python3 - "$tsv" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or line.startswith("scale:"):
        continue
    kind, count, concurrency, kv = line.rstrip("\n").split("\t")
    values = dict(p.split("=", 1) for p in kv.split())
    rows.setdefault((int(count), int(concurrency)), {}).setdefault(kind, []).append(values)
for (count, concurrency), kinds in rows.items():
    opening = "all at once" if concurrency >= count else f"{concurrency} at a time"
    print(f"\n{count} connections, opened {opening}")
    print("| server | KiB per idle connection | handshakes/s | echo all s | close all s | failed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, runs in kinds.items():
        med = lambda k: statistics.median(float(r.get(k, "nan")) for r in runs)
        print(f"| {kind} | {med('kib_per_conn'):.2f} | {med('handshakes_per_s'):,.0f} | "
              f"{med('echo_s'):.2f} | {med('close_s'):.2f} | {max(int(r.get('failed', 0)) for r in runs)} |")
PY
