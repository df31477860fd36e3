#!/usr/bin/env bash
# Runs the scim2-tester SCIM 2.0 compliance checker (PyPI, pinned in requirements.txt)
# against a real gatehouse server.
#
#   bash tests/scim/run.sh [path/to/gatehouse]
#
# The binary defaults to target/debug/gatehouse under the repository root (build it
# first with `cargo build`). The server gets a free port on 127.0.0.1, a fresh SQLite
# file in a temporary directory, a known admin password and a provisioning group
# (--scim-group) and an LDAP listener; check.py puts an API key in that group, runs
# every check as the key, then reads what it provisioned back over LDAP. The server is stopped on exit, whatever happens. The exit code is the checker's:
# non-zero if any check failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${1:-$root/target/debug/gatehouse}"
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
if [[ ! -x "$bin" ]]; then
  echo "run.sh: no gatehouse binary at $bin (build it with 'cargo build', or pass its path)" >&2
  exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "run.sh: 'python3' (3.11 or later) is required" >&2
  exit 2
fi

# The checker's virtual environment, kept between runs (it is only installed once).
venv="${SCIM_VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

admin_password="${GATEHOUSE_ADMIN_PASSWORD:-Scim-Checker-Admin-42}"
group="SCIM Provisioners"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-scim.XXXXXX")"
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
free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port="$(free_port)"
ldap_port="$(free_port)"
url="http://127.0.0.1:$port"

NO_COLOR=1 GATEHOUSE_ADMIN_PASSWORD="$admin_password" \
  "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$workdir/gatehouse.db" \
  --public-url "$url" --scim-group "$group" --ldap-listen "127.0.0.1:$ldap_port" \
  >"$log" 2>&1 &
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

set +e
GATEHOUSE_URL="$url" GATEHOUSE_ADMIN_PASSWORD="$admin_password" GATEHOUSE_SCIM_GROUP="$group" \
  LDAP_PORT="$ldap_port" \
  "$venv/bin/python" "$here/check.py"
status=$?
set -e
exit "$status"
