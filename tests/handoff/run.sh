#!/usr/bin/env bash
# Deploys without reconnects, with real processes: a server started with
# --handoff PATH, clients on it (tests/handoff.rs, its ignored test), and
# HANDOFFS new server processes started one after the other with the same
# PATH, each taking the listener and every connection from the last. The
# clients fail on any missed or repeated message, Close, reset, or refused
# newcomer; each old process must have handed over every connection.
# The pubsub clients keep their subscriptions (SUBP) through the moves.
#
#   tests/handoff/run.sh            # echo_server, 1 000 clients (a third
#                                   # with permessage-deflate), 10 handoffs;
#                                   # chat, 100 members, 10 handoffs;
#                                   # pubsub, 100 clients on 10 topics
#   tests/handoff/run.sh pubsub     # one of the three alone
#   tests/handoff/run.sh figures    # release build: switch time and state
#                                   # bytes at 1 000 and 10 000 connections
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib.sh

what=${1:-check}
profile=debug
release=()
if [ "$what" = figures ]; then
  profile=release
  release=(--release)
fi
cargo build --quiet "${release[@]}" --features handoff --example echo_server --example chat
cargo build --quiet "${release[@]}" -p rfc6455-pubsub
cargo test --quiet "${release[@]}" --features handoff --test handoff --no-run
client=$(cargo test "${release[@]}" --features handoff --test handoff --no-run 2>&1 |
  sed -n 's/.*Executable tests\/handoff.rs (\(.*\))/\1/p')

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# start SERVER PORT SOCK LOG: starts echo_server, chat or pubsub with
# --handoff SOCK, in the background.
start() {
  case "$1" in
    pubsub) target/$profile/pubsub --listen "127.0.0.1:$2" --handoff "$3" 2>"$4" & ;;
    *) target/$profile/examples/$1 "127.0.0.1:$2" --handoff "$3" 2>"$4" & ;;
  esac
}

# run NAME SERVER MODE CONNS HANDOFFS PACE_MS: prints one line per handoff.
run() {
  local name=$1 example=$2 mode=$3 conns=$4 handoffs=$5 pace=$6
  local port sock server k old
  port=$(free_port)
  sock="$dir/$name.sock"
  start "$example" "$port" "$sock" "$dir/$name.0.log"
  server=$!
  pids+=("$server")
  wait_port "$port"
  rm -f "$dir/stop" "$dir/ready"
  WS_URL="ws://127.0.0.1:$port/" STOP_FILE="$dir/stop" READY_FILE="$dir/ready" \
    MODE=$mode CONNS=$conns PACE_MS=$pace \
    timeout 600 "$client" --ignored --exact clients_across_real_handoffs --nocapture \
    >"$dir/$name.clients.log" 2>&1 &
  local clients=$!
  pids+=("$clients")
  for _ in $(seq 1 1500); do [ -e "$dir/ready" ] && break; sleep 0.02; done
  [ -e "$dir/ready" ] || { cat "$dir/$name.clients.log"; echo "$name: clients not connected" >&2; return 1; }
  for k in $(seq 1 "$handoffs"); do
    sleep 1
    old=$server
    start "$example" "$port" "$sock" "$dir/$name.$k.log"
    server=$!
    pids+=("$server")
    # The old process exits once everything moved.
    if ! timeout 60 tail --pid="$old" -f /dev/null; then
      echo "$name: handoff $k: the old process did not exit" >&2
      cat "$dir/$name.$((k - 1)).log" >&2
      return 1
    fi
    local line
    line=$(grep "handed over" "$dir/$name.$((k - 1)).log" || true)
    echo "$name: handoff $k: ${line#*: }"
    case "$line" in
      *"; 0 stayed"*) ;;
      *) echo "$name: handoff $k did not move everything" >&2; cat "$dir/$name.$((k - 1)).log" >&2; return 1 ;;
    esac
  done
  sleep 1
  touch "$dir/stop"
  if ! wait "$clients"; then
    cat "$dir/$name.clients.log" >&2
    echo "$name: the clients saw a failure" >&2
    return 1
  fi
  grep "^clients:" "$dir/$name.clients.log" | sed "s/^/$name: /"
  kill -TERM "$server"
  wait "$server" || true
}

case "$what" in
  check)
    run echo echo_server echo 1000 10 20
    run chat chat chat 100 10 200
    run pubsub pubsub pubsub 100 10 200
    ;;
  echo) run echo echo_server echo 1000 10 20 ;;
  chat) run chat chat chat 100 10 200 ;;
  pubsub) run pubsub pubsub pubsub 100 10 200 ;;
  figures)
    run echo-1k echo_server echo 1000 3 20
    run echo-10k echo_server echo 10000 3 1000
    ;;
  *)
    echo "usage: $0 [check|echo|chat|pubsub|figures]" >&2
    exit 2
    ;;
esac
