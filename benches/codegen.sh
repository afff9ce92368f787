#!/usr/bin/env bash
# Checks the core's machine code where timing cannot: the blocking echo
# server built for x86-64 with AVX2, and with AVX-512 (what
# `-C target-cpu=native` enables on a recent CPU), must contain no gather or
# scatter instructions in this crate's functions. LLVM once vectorised
# `apply_mask`'s loop over 64-byte blocks across blocks with them under
# AVX-512, masking at a tenth of its speed; nothing in a byte-stream codec
# wants them. Where this CPU has the features, each build then echoes masked
# payloads of 1 B to 1 MiB (benches/mask_echo.py), which must come back
# intact: the unit tests run only the baseline build's masking.
#
#   bash benches/codegen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
status=0
for features in +avx2 +avx2,+avx512f,+avx512bw; do
  dir="target/codegen/${features//[+,]/_}"
  # An explicit --target keeps RUSTFLAGS off build scripts and proc macros,
  # which run on this CPU (that may lack AVX-512: they died of SIGILL).
  host=$(rustc -vV | sed -n 's/^host: //p')
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="$dir" \
    cargo build --quiet --release --no-default-features --example echo_server_blocking --target "$host"
  bin="$dir/$host/release/examples/echo_server_blocking"
  found=$(objdump -d --no-show-raw-insn -C "$bin" |
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $0 } /\tv(p?gather|p?scatter)/ && fn ~ /rfc6455/ { print fn; print }')
  echo "target-feature $features: $(grep -c $'\t' <<<"$found" || true) gather/scatter instructions in rfc6455 code"
  if [ -n "$found" ]; then
    head -5 <<<"$found"
    status=1
  fi
  missing=""
  for flag in ${features//[+,]/ }; do
    grep -qw "$flag" /proc/cpuinfo || missing="$missing $flag"
  done
  if [ -n "$missing" ]; then
    echo "target-feature $features: echo not run (this CPU lacks$missing)"
    continue
  fi
  port=$(free_port)
  "$bin" "127.0.0.1:$port" 2>/dev/null &
  pid=$!
  wait_port "$port"
  printf 'target-feature %s: ' "$features"
  timeout 120 python3 benches/mask_echo.py "$port" || status=1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
exit $status
