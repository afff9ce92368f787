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

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
