#!/usr/bin/env bash
# Load benchmark (issues 8, 20): seeds a directory, starts gatehouse (release build, on
# SQLite or PostgreSQL), and measures with wrk at a fixed concurrency:
#   GET /health (the baseline), HEAD nested membership check, PUT add user to group,
#   GET a user, the first page of users, and token issuance.
# Prints requests/s, p50, p99, each throughput as a ratio to the baseline, and the
# server's peak memory.
#
#   bash bench/load.sh            # 100k users, 10k groups, 1M memberships, chains 20 deep
#   USER_COUNT=1000000 bash bench/load.sh
#   BACKEND=postgres bash bench/load.sh   # PostgreSQL at $PG_BASE (trust auth): a fresh
#                                         # database gatehouse_load, dropped at the end
#
# On PostgreSQL the run also measures what the database itself serves on this machine,
# before the server starts: pgbench -S (one indexed read per transaction) and pgbench -N
# (a small write transaction each), both -c 32 -j 2 -M prepared for DURATION seconds on a
# scratch database initialised with -s 10, and prints the check's and the add's
# throughput as ratios to those.
#
# Knobs (environment): USER_COUNT, GROUP_COUNT, PER_USER (memberships per user), DEPTH,
# DURATION (wrk seconds per case), WARMUP (unmeasured seconds before each), CONNECTIONS,
# THREADS, CASES (which cases after the baseline, comma-separated; default
# check,add,user,list,token), BACKEND (sqlite or postgres), PG_BASE (postgres://user@host:port, without a
# database; default postgres://postgres@127.0.0.1:5432), POOL_SIZE (the server's
# --database-pool-size on PostgreSQL; default the server's), BIN (a gatehouse binary to
# run instead of building this tree's).
set -euo pipefail

BACKEND=${BACKEND:-sqlite}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}

USER_COUNT=${USER_COUNT:-100000}
GROUP_COUNT=${GROUP_COUNT:-10000}
PER_USER=${PER_USER:-10}
DEPTH=${DEPTH:-20}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
CASES=${CASES:-check,add,user,list,token}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
command -v wrk >/dev/null || { echo "installing wrk (Debian package)" >&2; apt-get install -y wrk >/dev/null; }

if [[ -n "${BIN:-}" ]]; then
  bin="$BIN" # a binary built elsewhere (another commit, for a before-and-after)
else
  cargo build --release --manifest-path "$root/Cargo.toml" >&2
  bin="${CARGO_TARGET_DIR:-$root/target}/release/gatehouse"
fi

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
  if [[ "$BACKEND" == postgres ]]; then
    dropdb --if-exists --maintenance-db="$PG_BASE/postgres" gatehouse_load 2>/dev/null || true
    dropdb --if-exists --maintenance-db="$PG_BASE/postgres" gatehouse_pgbench 2>/dev/null || true
  fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password='Load-Admin-42'
pool_flag=()
case "$BACKEND" in
  sqlite) db="sqlite://$work/load.db" ;;
  postgres)
    command -v pgbench >/dev/null || { echo "pgbench (postgresql-client) is needed" >&2; exit 1; }
    db="$PG_BASE/gatehouse_load"
    [[ -n "${POOL_SIZE:-}" ]] && pool_flag=(--database-pool-size "$POOL_SIZE")
    dropdb --if-exists --maintenance-db="$PG_BASE/postgres" gatehouse_load
    createdb --maintenance-db="$PG_BASE/postgres" gatehouse_load
    # The database's own limits on this machine, measured before gatehouse runs.
    dropdb --if-exists --maintenance-db="$PG_BASE/postgres" gatehouse_pgbench
    createdb --maintenance-db="$PG_BASE/postgres" gatehouse_pgbench
    pgbench -i -s 10 -q "$PG_BASE/gatehouse_pgbench" >/dev/null 2>&1
    pgbench_tps() { # pgbench's mode flag
      sync
      pgbench "$1" -c "$CONNECTIONS" -j "$THREADS" -M prepared -T "$DURATION" "$PG_BASE/gatehouse_pgbench" 2>/dev/null |
        awk '/^tps = / {print $3; exit}'
    }
    pgbench_read=$(pgbench_tps -S)
    pgbench_write=$(pgbench_tps -N)
    dropdb --maintenance-db="$PG_BASE/postgres" gatehouse_pgbench
    echo "pgbench -S: $pgbench_read tps, pgbench -N: $pgbench_write tps" >&2
    ;;
  *) echo "BACKEND must be sqlite or postgres" >&2; exit 1 ;;
esac

echo "generating $USER_COUNT users, $GROUP_COUNT groups, $((USER_COUNT * PER_USER)) memberships, chains $DEPTH deep" >&2
python3 "$here/seed.py" "$work" "$USER_COUNT" "$GROUP_COUNT" "$PER_USER" "$DEPTH" \
  "$(( (DURATION + 6) * 50000 ))"

GATEHOUSE_ADMIN_PASSWORD="$password" RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" \
  --database "$db" "${pool_flag[@]}" --login-rate-per-ip 0 --login-rate-per-user 0 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$base/ready" >/dev/null

t0=$(date +%s)
"$bin" import "$work/seed.jsonl" --database "$db" --quiet >&2
echo "imported in $(( $(date +%s) - t0 )) s" >&2
if [[ "$BACKEND" == postgres ]]; then
  # Planner statistics and the visibility map for the tables just filled, as
  # autovacuum would have them within a minute or so on a server that has been up
  # (it may be off on a test server): without statistics the plans are chosen for
  # empty tables, and without the visibility map an index-only scan reads the table.
  psql -q "$db" -c "VACUUM ANALYZE"
fi

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
wanted() { [[ ",$CASES," == *",$1,"* ]]; }
# CPU time (clock ticks) of the server's threads whose name starts with $1.
thread_ticks() {
  local total=0 t
  for t in /proc/"$server"/task/*; do
    if [[ "$(cat "$t/comm" 2>/dev/null)" == "$1"* ]]; then
      total=$((total + $(awk '{print $14 + $15}' "$t/stat")))
    fi
  done
  echo "$total"
}
run "GET /health (baseline)" health.lua
wanted check && run "HEAD nested membership check" member_check.lua
if wanted add; then
  # The group-commit writer's CPU per add (SQLite): the figure that moves least with
  # the machine's load, for before-and-after comparisons of the add's write path.
  writer0=$(thread_ticks gatehouse-batch)
  WARMUP=0 run "PUT add user to group" add_member.lua # no warm-up: it would spend adds
  writer1=$(thread_ticks gatehouse-batch)
  if [[ "$BACKEND" == sqlite ]]; then
    adds=$(awk -F'\t' 'END {print $2}' "$work/results.tsv")
    python3 -c "import os; print(f'batch writer CPU per add: {($writer1 - $writer0) * 1e6 / os.sysconf(\"SC_CLK_TCK\") / ($adds * $DURATION):.1f} us')" >"$work/writer.txt"
  fi
fi
wanted user && run "GET a user" get_user.lua
wanted list && run "GET first page of users" list_users.lua
wanted token && run "POST token (argon2id)" token.lua

peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
wal_bytes=$(stat -c %s "$work/load.db-wal" 2>/dev/null || echo 0) # SQLite only
python3 - "$work/results.tsv" "$peak_kb" "$USER_COUNT" "$CONNECTIONS" "$wal_bytes" \
  "$BACKEND" "${pgbench_read:-}" "${pgbench_write:-}" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
base = float(rows[0][1]) or 1.0
backend, pg_read, pg_write = sys.argv[6], sys.argv[7], sys.argv[8]
print(f"\n{backend}: {sys.argv[3]} users, {sys.argv[4]} connections, wrk on the same machine\n")
print(f"| {'case':<32} | {'req/s':>9} | {'p50':>9} | {'p99':>9} | {'vs baseline':>11} |")
print(f"|{'-'*34}|{'-'*11}|{'-'*11}|{'-'*11}|{'-'*13}|")
for label, rps, p50, p99 in rows:
    print(f"| {label:<32} | {float(rps):>9.0f} | {p50:>9} | {p99:>9} | {float(rps)/base:>10.1%} |")
print(f"\nserver peak memory (VmHWM): {int(sys.argv[2]) / 1024:.0f} MiB")
if backend == "sqlite":
    print(f"WAL file at the end: {int(sys.argv[5]) / 1048576:.0f} MiB")
else:
    by_label = {label: float(rps) for label, rps, _, _ in rows}
    check = by_label.get("HEAD nested membership check", 0.0)
    add = by_label.get("PUT add user to group", 0.0)
    print(f"pgbench -S (read):  {float(pg_read or 0):>9.0f} tps; check / pgbench -S = {check / (float(pg_read or 0) or 1):.2f}")
    print(f"pgbench -N (write): {float(pg_write or 0):>9.0f} tps; add / pgbench -N   = {add / (float(pg_write or 0) or 1):.2f}")
PY
cat "$work/writer.txt" 2>/dev/null || true
