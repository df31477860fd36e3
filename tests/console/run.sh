#!/usr/bin/env bash
# Drives the admin console (/admin) in headless Chromium against a real gatehouse server.
#
#   bash tests/console/run.sh [path/to/gatehouse] [--screenshots] [test-name-part...]
#
# The binary defaults to target/debug/gatehouse under the repository root. The server
# gets a free port on 127.0.0.1 and a fresh SQLite file in a temporary directory; the
# tests (test_console.py) run Selenium, pinned in requirements.txt and installed once
# into a virtual environment under the system's temporary directory, against the
# Debian `chromium` through the system `chromedriver` (nothing is downloaded at run
# time). Access tokens live 60 s (the shortest allowed), so the console's refresh before
# expiry is exercised. With --screenshots the screenshots of the main pages at 1280 and 390 px are
# written to docs/console/ (what docs/console.md shows); otherwise to a temporary
# directory that is removed. The server is stopped on exit, whatever happens; the exit
# code is non-zero if a test failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="$root/target/debug/gatehouse"
screenshots=""
only=()
for arg in "$@"; do
  case "$arg" in
    --screenshots) screenshots="$root/docs/console" ;;
    */*|gatehouse) bin="$arg" ;;
    *) only+=("$arg") ;;
  esac
done
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
if [[ ! -x "$bin" ]]; then
  echo "run.sh: no gatehouse binary at $bin (build it with 'cargo build', or pass its path)" >&2
  exit 2
fi
for tool in python3 "${CHROMIUM:-/usr/bin/chromium}" "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' is required (apt-get install -y chromium chromium-driver)" >&2
    exit 2
  fi
done

# The tests' virtual environment, kept between runs (installed once per requirements).
venv="${CONSOLE_VENV:-${TMPDIR:-/tmp}/gatehouse-console-venv}"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

admin_password="${GATEHOUSE_ADMIN_PASSWORD:-Console-Admin-Pass-42}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-console.XXXXXX")"
log="$workdir/server.log"
server_pid=""

cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$log" ]]; then
    echo "---- gatehouse server log (last 20 lines) ----" >&2
    tail -n 20 "$log" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port: bind port 0, read what the kernel chose, release it.
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"

NO_COLOR=1 GATEHOUSE_ADMIN_PASSWORD="$admin_password" \
  "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$workdir/gatehouse.db" \
  --public-url "$url" --token-ttl-secs 60 >"$log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 20))
until "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/ready", timeout=1)' "$url" 2>/dev/null; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: gatehouse exited before it was ready" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run.sh: gatehouse was not ready at $url/ready within 20 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "run.sh: gatehouse is ready at $url (pid $server_pid)"

if [[ -n "$screenshots" ]]; then
  rm -f "$screenshots"/*.png
fi
set +e
GATEHOUSE_URL="$url" GATEHOUSE_ADMIN_PASSWORD="$admin_password" CONSOLE_TOKEN_TTL=60 \
  CONSOLE_SCREENSHOTS="${screenshots:-$workdir/screenshots}" \
  "$venv/bin/python" "$here/test_console.py" "${only[@]}"
status=$?
set -e
if [[ -n "$screenshots" && $status -eq 0 ]]; then
  echo "run.sh: screenshots in $screenshots ($(du -sh "$screenshots" | cut -f1))"
fi
exit "$status"
