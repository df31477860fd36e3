#!/usr/bin/env bash
# LDAP benchmark (issue 21): seeds a directory with `gatehouse import`, starts gatehouse
# (release build unless a binary is given, SQLite, rate limits off as LLDAP has none)
# with its LDAP listener, and measures with Python ldap3 client processes on the same
# machine: password binds/s (argon2id, each a real login), searches/s for the members of
# one group through memberOf (200 members, half of them through a nested group), and
# searches/s for one user by uid (with memberOf); and, for comparison on the same
# machine at the same moment, the HTTP password grant (the same login code).
#
#   bash bench/ldap.sh [path/to/gatehouse]
#
# Knobs (environment): USER_COUNT (default 10000), DURATION (seconds per case, 10),
# BIND_CLIENTS (8), SEARCH_CLIENTS (4).
set -euo pipefail

USER_COUNT=${USER_COUNT:-10000}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python3 -c 'import ldap3' 2>/dev/null || { echo "needs: pip install ldap3==2.9.1" >&2; exit 2; }

if [[ $# -ge 1 ]]; then
  bin="$1"
else
  cargo build --release --manifest-path "$root/Cargo.toml" >&2
  bin="${CARGO_TARGET_DIR:-$root/target}/release/gatehouse"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-ldap-bench.XXXXXX")"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/seed.jsonl" "$USER_COUNT" <<'PY'
import json, random, sys
out, n = open(sys.argv[1], "w"), int(sys.argv[2])
w = lambda **r: out.write(json.dumps(r) + "\n")
random.seed(21)
w(type="group", name="team"); w(type="group", name="team-sub"); w(type="group", name="readers")
w(type="child", parent="team", child="team-sub")
for g in range(100):
    w(type="group", name=f"g{g:03d}")
for i in range(200):
    w(type="user", username=f"bench{i:04d}", email=f"bench{i:04d}@example.com", password="Bench-Horse-42")
for i in range(n):
    groups = [f"g{g:03d}" for g in random.sample(range(100), 3)]
    if i < 100:
        groups.append("team")
    elif i < 200:
        groups.append("team-sub")
    w(type="user", username=f"user{i:05d}", email=f"user{i:05d}@example.com", firstName="Bench",
      lastName=f"User {i}", groups=groups)
PY
db="sqlite://$work/gatehouse.db"
"$bin" import "$work/seed.jsonl" --database "$db" --quiet >/dev/null
key="$("$bin" apikey create bench --database "$db" 2>/dev/null)"
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$key" "$1"; }
echo "{\"type\":\"member\",\"group\":\"readers\",\"user\":\"$(field userId)\"}" >"$work/m.jsonl"
"$bin" import "$work/m.jsonl" --database "$db" --quiet >/dev/null

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
http="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" serve --listen "127.0.0.1:$http" --database "$db" --ldap-listen "127.0.0.1:$port" \
  --ldap-search-group readers --login-rate-per-ip 0 --login-rate-per-user 0 \
  >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$http/ready" >/dev/null 2>&1 && break; sleep 0.2; done

echo "gatehouse LDAP, $USER_COUNT users + 200 with passwords, 103 groups; $(nproc) cores shared with the clients"
USER_COUNT="$USER_COUNT" HTTP_URL="http://127.0.0.1:$http" python3 "$here/ldap_load.py" 127.0.0.1 "$port" "dc=example,dc=com" \
  "cn=$(field clientId),ou=services,dc=example,dc=com" "$(field clientSecret)"
