#!/usr/bin/env bash
# The README's server and client, copied unchanged into a scratch crate that
# depends on this one, built, and run against each other: the client must
# get the `chat` subprotocol, its echo and the server's Close.
#
#   bash tests/readme/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

# The first rust code block after a heading, verbatim.
snippet() {
  awk -v heading="$1" '
    $0 == heading { found = 1; next }
    found && /^```rust/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
  ' "$root/README.md"
}

mkdir -p "$scratch/src/bin"
snippet "## A server" >"$scratch/src/bin/server.rs"
snippet "## A client" >"$scratch/src/bin/client.rs"
for bin in server client; do
  [ -s "$scratch/src/bin/$bin.rs" ] || { echo "no $bin snippet in README.md" >&2; exit 1; }
done
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "readme-scratch"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
rfc6455 = { path = "$root" }
tokio = { version = "1", features = ["rt-multi-thread", "macros", "net"] }
TOML
# The same dependency versions the project tests with.
cp "$root/Cargo.lock" "$scratch/Cargo.lock"
export CARGO_TARGET_DIR="$root/target/readme"
(cd "$scratch" && cargo build --quiet --bins)

addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$scratch/src/bin/server.rs" | head -n 1)
if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
  echo "$addr is taken; the README server needs it" >&2
  exit 1
fi
"$CARGO_TARGET_DIR/debug/server" &
server_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
  sleep 0.1
done
out=$(timeout 20 "$CARGO_TARGET_DIR/debug/client")
echo "$out"
grep -qx 'subprotocol: Some("chat")' <<<"$out"
grep -qx 'reply: hello' <<<"$out"
grep -q '^closed: Some(CloseFrame' <<<"$out"
echo "README server and client ran against each other"
