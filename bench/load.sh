#!/usr/bin/env bash
# Load benchmark (issue 8): seeds a directory, starts gatehouse (release build, SQLite),
# and measures with wrk at a fixed concurrency:
#   GET /health (the baseline), HEAD nested membership check, PUT add user to group,
#   GET a user, the first page of users, and token issuance.
# Prints requests/s, p50, p99, each throughput as a ratio to the baseline, and the
# server's peak memory.
#
#   bash bench/load.sh            # 100k users, 10k groups, 1M memberships, chains 20 deep
#   USER_COUNT=1000000 bash bench/load.sh
#
# Knobs (environment): USER_COUNT, GROUP_COUNT, PER_USER (memberships per user), DEPTH,
# DURATION (wrk seconds per case), WARMUP (unmeasured seconds before each), CONNECTIONS,
# THREADS.
set -euo pipefail

USER_COUNT=${USER_COUNT:-100000}
GROUP_COUNT=${GROUP_COUNT:-10000}
PER_USER=${PER_USER:-10}
DEPTH=${DEPTH:-20}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
command -v wrk >/dev/null || { echo "installing wrk (Debian package)" >&2; apt-get install -y wrk >/dev/null; }

cargo build --release --manifest-path "$root/Cargo.toml" >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release/gatehouse"

work="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-load.XXXXXX")"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  # A case with answers other than 2xx keeps the server's log for a look.
  if grep -q "non-2xx" "$work/results.tsv" 2>/dev/null; then
    kept="${TMPDIR:-/tmp}/gatehouse-load-$(date +%s).log"
    cp "$work/server.log" "$kept" && echo "a case had non-2xx answers; server log: $kept" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
db="sqlite://$work/load.db"
password='Load-Admin-42'

echo "generating $USER_COUNT users, $GROUP_COUNT groups, $((USER_COUNT * PER_USER)) memberships, chains $DEPTH deep" >&2
python3 "$here/seed.py" "$work" "$USER_COUNT" "$GROUP_COUNT" "$PER_USER" "$DEPTH" \
  "$(( (DURATION + 6) * 50000 ))"

GATEHOUSE_ADMIN_PASSWORD="$password" RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" \
  --database "$db" --login-rate-per-ip 0 --login-rate-per-user 0 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$base/ready" >/dev/null

t0=$(date +%s)
"$bin" import "$work/seed.jsonl" --database "$db" --quiet >&2
echo "imported in $(( $(date +%s) - t0 )) s" >&2

token=$(curl -s "$base/authenticate/connect/token" -d grant_type=contensis_classic \
  -d username=admin --data-urlencode "password=$password" |
  python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
# A user with a password, for token issuance.
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$base/api/security/users" \
  -d '{"username": "loadtester", "email": "loadtester@example.com", "credentials": {"password": "Load-Tester-42"}}' >/dev/null

export GATEHOUSE_THREADS="$THREADS" GATEHOUSE_TOKEN="$token" GATEHOUSE_PATHS="$work" GATEHOUSE_LUA_DIR="$here"
run() { # label, lua script
  # Each case starts with nothing left for the kernel to write. It flushes dirty pages
  # up to 30 s after they were written, so the import's (or a previous case's) writes
  # would otherwise reach the disk in the middle of a later case, and every add waiting
  # on its fsync queued behind them: add p99 15-33 ms against 6-7 ms with a sync first,
  # in alternating runs on the benchmark machine.
  sync
  # Warm-up (not measured): fills the page caches and the caller cache, as on a server
  # that has been up for a while.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$here/$2" "$base" >/dev/null 2>&1 || true
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$here/$2" "$base" >"$work/$2.out" 2>&1 || true
  python3 "$here/wrk_summary.py" "$1" "$work/$2.out" >>"$work/results.tsv"
}
run "GET /health (baseline)" health.lua
run "HEAD nested membership check" member_check.lua
WARMUP=0 run "PUT add user to group" add_member.lua # no warm-up: it would spend adds
run "GET a user" get_user.lua
run "GET first page of users" list_users.lua
run "POST token (argon2id)" token.lua

peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
wal_bytes=$(stat -c %s "$work/load.db-wal" 2>/dev/null || echo 0)
python3 - "$work/results.tsv" "$peak_kb" "$USER_COUNT" "$CONNECTIONS" "$wal_bytes" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
base = float(rows[0][1]) or 1.0
print(f"\n{sys.argv[3]} users, {sys.argv[4]} connections, wrk on the same machine\n")
print(f"| {'case':<32} | {'req/s':>9} | {'p50':>9} | {'p99':>9} | {'vs baseline':>11} |")
print(f"|{'-'*34}|{'-'*11}|{'-'*11}|{'-'*11}|{'-'*13}|")
for label, rps, p50, p99 in rows:
    print(f"| {label:<32} | {float(rps):>9.0f} | {p50:>9} | {p99:>9} | {float(rps)/base:>10.1%} |")
print(f"\nserver peak memory (VmHWM): {int(sys.argv[2]) / 1024:.0f} MiB")
print(f"WAL file at the end: {int(sys.argv[5]) / 1048576:.0f} MiB")
PY
