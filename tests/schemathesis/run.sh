#!/usr/bin/env bash
# Fuzzes a live gatehouse with schemathesis, driven by its own OpenAPI document
# (/api/openapi.json): no response may be a 5xx, and every response must have a
# documented status, content type and a body that matches its schema.
#
#   bash tests/schemathesis/run.sh [path/to/gatehouse]
#
# The binary defaults to target/debug/gatehouse (build it with `cargo build`).
# schemathesis comes from PyPI into a virtualenv (SCHEMATHESIS_VENV, default
# $CARGO_TARGET_DIR or target, under schemathesis-venv), pinned below; the server gets
# a free port on 127.0.0.1, a fresh SQLite file and a known admin password, and is
# stopped on exit whatever happens. The exit code is schemathesis's.
#
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 25 test cases per operation and phase),
# SCHEMATHESIS_SEED (default fixed, so a failure reproduces; "random" to vary),
# SCHEMATHESIS_PHASES (default "coverage fuzzing stateful"; the document has no
# examples, and the stateful phase follows links schemathesis infers from responses),
# and SCHEMATHESIS_CHECKS (default: see `checks` below).
#
# Destructive operations are not excluded. The run authenticates as the bootstrap
# admin, and schemathesis reuses ids it saw in responses, so it does reach the admin:
# it renames them, forces a password reset (so "admin" can no longer log in), and may
# change their password, which revokes the token (later calls then get 401, which every
# secured operation documents: the run still passes, it only tests less). Suspending or
# deleting the last administrator is refused (409). So each phase runs against a
# server of its own on a fresh database, with a fresh admin token.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
# Pinned with schemathesis: a newer Hypothesis can change what is generated, or break.
HYPOTHESIS_VERSION="6.170.17"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

bin="${1:-$target/debug/gatehouse}"
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
if [[ ! -x "$bin" ]]; then
  echo "run.sh: no gatehouse binary at $bin (build it with 'cargo build', or pass its path)" >&2
  exit 2
fi

venv="${SCHEMATHESIS_VENV:-$target/schemathesis-venv}"
st="$venv/bin/schemathesis"
if [[ ! -x "$st" ]] || ! "$st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "run.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
fi
"$st" --version

admin_password="${GATEHOUSE_ADMIN_PASSWORD:-Fuzz-Admin-Pass-42}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-st.XXXXXX")"
log=""
server_pid=""

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  local rc=$?
  stop_server
  if [[ $rc -ne 0 && -n "$log" && -s "$log" ]]; then
    echo "---- gatehouse server log (errors, last 40) ----" >&2
    grep -E "ERROR|panicked" "$log" | tail -n 40 >&2 || true
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$venv/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
'
}

# Starts a server on a fresh SQLite file; sets `url` and `log`.
start_server() {
  local name=$1 port
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  log="$workdir/$name.log"
  NO_COLOR=1 GATEHOUSE_ADMIN_PASSWORD="$admin_password" \
    "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$workdir/$name.db" \
    >"$log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 20))
  until curl -fsS -o /dev/null "$url/ready" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: gatehouse exited before it was ready" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "run.sh: gatehouse was not ready at $url/ready within 20 s" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "run.sh: gatehouse is ready at $url (pid $server_pid)"
}

# An access token of the bootstrap admin.
admin_token() {
  curl -fsS "$url/authenticate/connect/token" \
    --data-urlencode grant_type=contensis_classic \
    --data-urlencode username=admin \
    --data-urlencode "password=$admin_password" |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# No 5xx; every status, content type, header and body as documented; every secured
# operation refuses a call without a token; undocumented methods get 405. Left out:
# positive_data_acceptance and negative_data_rejection, because the schemas describe
# types, not the business rules (a schema-valid `{}` create is a 422), and an empty
# query value counts as absent (`pageSize=` is the default page size, docs/api.md).
checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,ignored_auth,unsupported_method}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
seed="${SCHEMATHESIS_SEED:-20260501}"
seed_args=()
if [[ "$seed" != "random" ]]; then
  seed_args=(--seed "$seed")
fi

# One schemathesis phase against a server of its own.
phase() {
  local name=$1 token rc=0
  echo
  echo "run.sh: phase $name"
  start_server "$name"
  token="$(admin_token)"
  if [[ -z "$token" ]]; then
    echo "run.sh: could not log in as admin" >&2
    return 1
  fi
  # From the work directory, so schemathesis's cache (.schemathesis/) goes with it.
  (cd "$workdir" && NO_COLOR=1 "$st" run "$url/api/openapi.json" \
    --phases "$name" \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    "${seed_args[@]}" \
    --workers 1 \
    --request-timeout 30 \
    --suppress-health-check all \
    --warnings off) || rc=$?
  if grep -qE "ERROR|panicked" "$log"; then
    echo "run.sh: the server logged errors during phase $name:" >&2
    grep -E "ERROR|panicked" "$log" | tail -n 20 >&2
    rc=1
  fi
  stop_server
  return "$rc"
}

status=0
for p in ${SCHEMATHESIS_PHASES:-coverage fuzzing stateful}; do
  phase "$p" || status=$?
done
exit "$status"
