"""What the membership tables' key width costs an add, outside the server.

Builds the shape of `group_members` twice, with 36-character text UUIDs (as now) and
with integers (the next step BENCHMARKS.md proposes): 100,000 users in 10 random groups
each of 10,000, inserted in random order. Then adds 32,000 random memberships in
transactions of 16 (the server's average batch under load) with the WAL and
`synchronous=FULL` as the server runs them, and prints the database's size, the WAL
pages each add wrote and the adds a second from this one thread.

    python3 bench/key_width.py [work-dir]
"""
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid

USERS, GROUPS, PER_USER = 100_000, 10_000, 10
ADDS, BATCH = 32_000, 16

scratch = tempfile.TemporaryDirectory(prefix="gatehouse-keys.")  # removed at exit
work = sys.argv[1] if len(sys.argv) > 1 else scratch.name
rng = random.Random(7)
users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(USERS)]
groups = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(GROUPS)]


def key(text, g, u):
    return (groups[g], users[u]) if text else (g + 1, u + 1)


def build(path, text):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    kind = "TEXT" if text else "INTEGER"
    db.execute(f"CREATE TABLE m (g {kind} NOT NULL, u {kind} NOT NULL, PRIMARY KEY (g, u)) WITHOUT ROWID")
    db.execute("CREATE INDEX m_u ON m (u, g)")
    rows = [key(text, g, u) for u in range(USERS) for g in rng.sample(range(GROUPS), PER_USER)]
    rng.shuffle(rows)
    db.execute("BEGIN")
    db.executemany("INSERT INTO m VALUES (?, ?)", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


for text in (True, False):
    path = os.path.join(work, "text.db" if text else "integer.db")
    db = build(path, text)
    size = os.path.getsize(path)
    adds = [key(text, rng.randrange(GROUPS), rng.randrange(USERS)) for _ in range(ADDS)]
    started = time.perf_counter()
    for i in range(0, ADDS, BATCH):
        db.execute("BEGIN IMMEDIATE")
        for row in adds[i:i + BATCH]:
            db.execute("INSERT OR IGNORE INTO m VALUES (?, ?)", row)
        db.execute("COMMIT")
    took = time.perf_counter() - started
    frames = db.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()[1]
    db.close()
    print(f"{'text UUID keys' if text else 'integer keys  '}: {size / 1e6:4.0f} MB, "
          f"{frames / ADDS:.2f} WAL pages per add, {ADDS / took:6.0f} adds/s")
