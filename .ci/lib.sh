# Helpers shared by the scripts that need a Python peer (Autobahn, interop).
# Source it; it defines functions only.

# ensure_venv DIR PACKAGE VERSION: a venv in DIR with PACKAGE==VERSION, made
# once and reused (DIR is under target/, so git ignores it).
ensure_venv() {
  local dir=$1 package=$2 version=$3
  if [ ! -x "$dir/bin/python" ] || [ "$("$dir/bin/pip" show "$package" 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
  fi
}

# free_port: a TCP port on 127.0.0.1 that no socket uses right now, below
# the kernel's ephemeral range (so no outgoing connection takes it first).
# Plain bash: the echo comparison asks for some 500 ports per full run, and
# starting Python for each took 0.15-0.2 s, about 90 s of the run.
free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 12000))
    # Any state (listening, connected, TIME_WAIT), IPv4 or IPv6.
    if ! grep -qi ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# wait_port PORT: waits up to 20 s for something to listen on 127.0.0.1:PORT
# (polling every 20 ms: the echo comparison starts a server some 500 times).
wait_port() {
  for _ in $(seq 1 1000); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.02
  done
  echo "nothing listening on port $1" >&2
  return 1
}

# ensure_command COMMAND PACKAGE: COMMAND on the PATH, installing Debian's
# PACKAGE when it is missing and this runs as root (as CI does); fails
# with a message otherwise.
ensure_command() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $package (the distribution's package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; }
  fi
  command -v "$command" >/dev/null || { echo "$command is not on the PATH (install the $package package)" >&2; return 1; }
}
