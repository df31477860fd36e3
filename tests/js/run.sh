#!/usr/bin/env bash
# Runs the official-npm-client tests (tests/js) against a real gatehouse server.
#
#   bash tests/js/run.sh [path/to/gatehouse]
#
# The binary defaults to target/debug/gatehouse under the repository root (build it
# first with `cargo build`). The server gets a free port on 127.0.0.1, a fresh SQLite
# file in a temporary directory and a known admin password; it is stopped on exit,
# whatever happens. The exit code is the test run's.
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
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' is required (Node.js 20 or later)" >&2
    exit 2
  fi
done

admin_password="${GATEHOUSE_ADMIN_PASSWORD:-Js-Client-Admin-42}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-js.XXXXXX")"
log="$workdir/server.log"
server_pid=""

cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # Graceful shutdown drains in-flight requests; do not wait for ever.
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$log" ]]; then
    echo "---- gatehouse server log (last 60 lines) ----" >&2
    tail -n 60 "$log" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port: bind port 0, read what the kernel chose, release it.
port="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });
')"
url="http://127.0.0.1:$port"

NO_COLOR=1 GATEHOUSE_ADMIN_PASSWORD="$admin_password" \
  "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$workdir/gatehouse.db" \
  >"$log" 2>&1 &
server_pid=$!

# Wait (at most ~20 s) for GET /ready to answer 200; give up early if the server died.
ready_probe='fetch(process.argv[1] + "/ready").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))'
deadline=$((SECONDS + 20))
until node -e "$ready_probe" "$url"; do
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

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

set +e
GATEHOUSE_URL="$url" GATEHOUSE_ADMIN_PASSWORD="$admin_password" npm test
status=$?
set -e
exit "$status"
