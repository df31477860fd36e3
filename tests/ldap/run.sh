#!/usr/bin/env bash
# Runs the LDAP front door's tests against a real gatehouse server, with real clients:
# OpenLDAP's ldapsearch/ldapwhoami/ldappasswd (tests/ldap/cli.sh) and Python's ldap3
# (tests/ldap/test_ldap3.py).
#
#   bash tests/ldap/run.sh [path/to/gatehouse]
#
# The database is a fresh SQLite file, or, with GATEHOUSE_LDAP_TEST_POSTGRES set to a
# PostgreSQL server URL (postgres://postgres@127.0.0.1:5432/postgres), a fresh database
# created on that server for the run and dropped afterwards. The directory is seeded
# with `gatehouse import` (2,500 bulk users, a chain of groups nested five deep, the
# people the tests bind as) and an API key in the search group; a test certificate for
# LDAPS and StartTLS is made with the openssl CLI. The server gets free ports on
# 127.0.0.1 and is stopped on exit, whatever happens. Needs ldapsearch (Debian
# ldap-utils), python3 with ldap3, openssl and curl.
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
for tool in ldapsearch ldapwhoami ldappasswd python3 openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' is required (ldap-utils, python3, openssl, curl)" >&2
    exit 2
  fi
done
python3 -c 'import ldap3' 2>/dev/null || {
  echo "run.sh: the Python package ldap3 is required (pip install ldap3==2.9.1)" >&2
  exit 2
}

admin_password="Ldap-Test-Admin-42"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-ldap.XXXXXX")"
log="$workdir/server.log"
server_pid=""
pg_admin_url=""
pg_db=""

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
    echo "---- gatehouse server log (last 60 lines) ----" >&2
    tail -n 60 "$log" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  if [[ -n "$pg_db" ]]; then
    psql "$pg_admin_url" -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${GATEHOUSE_LDAP_TEST_POSTGRES:-}" ]]; then
  pg_admin_url="$GATEHOUSE_LDAP_TEST_POSTGRES"
  pg_db="gatehouse_ldap_$$"
  psql "$pg_admin_url" -q -c "CREATE DATABASE $pg_db" >/dev/null
  database="${pg_admin_url%/*}/$pg_db"
  backend="PostgreSQL"
else
  database="sqlite://$workdir/gatehouse.db"
  backend="SQLite"
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
http_port="$(free_port)"
ldap_port="$(free_port)"
ldaps_port="$(free_port)"

# A test certificate for 127.0.0.1 and localhost, valid for two days.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$workdir/key.pem" -out "$workdir/cert.pem" 2>/dev/null

# The directory: the people the tests bind as, groups nested five deep, 2,500 more.
python3 - "$workdir/seed.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[1], "w")
def w(**r): out.write(json.dumps(r) + "\n")
for g in ["ldap-users", "readers", "bulk", "n1", "n2", "n3", "n4", "n5", "Dev, Ops", "empty"]:
    w(type="group", name=g, description=f"{g} group")
for parent, child in [("n1", "n2"), ("n2", "n3"), ("n3", "n4"), ("n4", "n5")]:
    w(type="child", parent=parent, child=child)
pw = "Correct-Horse-42"
w(type="user", username="alice", email="alice@example.com", firstName="Alice", lastName="Liddell",
  password=pw, groups=["ldap-users", "Dev, Ops"])
w(type="user", username="bob", email="bob@example.com", firstName="Bob", password=pw, groups=["ldap-users"])
w(type="user", username="carol", email="carol@example.com", password=pw, groups=["n5"])
w(type="user", username="dave", email="dave@example.com", password=pw, groups=["ldap-users"])
w(type="user", username="erin", email="erin@example.com", password=pw)
w(type="user", username="frank", email="frank@example.com", password=pw)
w(type="user", username="grace", email="grace@example.com", password=pw, groups=["n1"])
for i in range(2500):
    w(type="user", username=f"user{i:04d}", email=f"user{i:04d}@bulk.example.com",
      firstName="Bulk", lastName=f"User {i:04d}", groups=["bulk"])
EOF
NO_COLOR=1 "$bin" import "$workdir/seed.jsonl" --database "$database" --quiet >"$workdir/import.json"
NO_COLOR=1 "$bin" user suspend bob --database "$database" >/dev/null
key_json="$(NO_COLOR=1 "$bin" apikey create ldap-reader --database "$database" 2>/dev/null)"
key_id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["clientId"])' "$key_json")"
key_secret="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["clientSecret"])' "$key_json")"
key_user="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["userId"])' "$key_json")"
echo "{\"type\": \"member\", \"group\": \"readers\", \"user\": \"$key_user\"}" >"$workdir/member.jsonl"
NO_COLOR=1 "$bin" import "$workdir/member.jsonl" --database "$database" --quiet >/dev/null

NO_COLOR=1 GATEHOUSE_ADMIN_PASSWORD="$admin_password" \
  "$bin" serve --listen "127.0.0.1:$http_port" --database "$database" \
  --ldap-listen "127.0.0.1:$ldap_port" --ldaps-listen "127.0.0.1:$ldaps_port" \
  --ldap-tls-cert "$workdir/cert.pem" --ldap-tls-key "$workdir/key.pem" \
  --ldap-base-dn "dc=example,dc=com" --ldap-search-group readers \
  --ldap-max-connections 40 --ldap-idle-timeout-secs 4 \
  --login-rate-per-ip 0 --login-rate-per-user 600 --login-burst-per-user 100 \
  >"$log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$http_port/ready" >/dev/null 2>&1; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: gatehouse exited before it was ready" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run.sh: gatehouse was not ready within 30 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "run.sh: gatehouse ($backend) serves LDAP on 127.0.0.1:$ldap_port, LDAPS on 127.0.0.1:$ldaps_port"

export LDAP_URL="ldap://127.0.0.1:$ldap_port"
export LDAPS_URL="ldaps://127.0.0.1:$ldaps_port"
export LDAP_HOST=127.0.0.1 LDAP_PORT="$ldap_port" LDAPS_PORT="$ldaps_port"
export LDAP_BASE="dc=example,dc=com"
export LDAP_CA="$workdir/cert.pem"
export LDAP_KEY_ID="$key_id" LDAP_KEY_SECRET="$key_secret"
export LDAP_PASSWORD="Correct-Horse-42" LDAP_ADMIN_PASSWORD="$admin_password"
export HTTP_URL="http://127.0.0.1:$http_port"
export LDAP_SERVER_PID="$server_pid"

status=0
bash "$here/cli.sh" || status=1
# For poking at the server by hand: LDAP_TEST_HOLD=600 keeps it up that many seconds.
if [[ -n "${LDAP_TEST_HOLD:-}" ]]; then sleep "$LDAP_TEST_HOLD"; fi
python3 "$here/test_ldap3.py" || status=1
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "run.sh: the server died during the tests" >&2
  status=1
fi
exit "$status"
