-- The audit trail's lookup by target, kept out of the add's statement (docs/audit.md).
--
-- `audit_events_user` and `audit_events_group` were keyed by random UUIDs: each event
-- put an entry into a random leaf of both, inside the grouped add's statement
-- (src/store/postgres/batch_writer.rs), which all of a node's adds wait on. Without
-- them the adds rose from 1.55 to 1.74 times `pgbench -N` (BENCHMARKS.md). Their job
-- moves to `audit_targets`, which a background pass on each node fills from the events
-- in bulk (src/store/postgres/audit_index.rs). `audit_indexed.seq` says how far the
-- passes have come; a lookup by target reads `audit_targets` for the events up to it,
-- scans the events after it, and compares the recorded columns in the end
-- (src/store/audit.rs, `list_sql`), so an event is found by its target from the moment
-- it commits. The time, type and actor indexes stay: their keys grow with the log, so
-- an event's entries go to the right edge of each, pages the previous event dirtied.
DROP INDEX audit_events_user;
DROP INDEX audit_events_group;

-- One row per (user or group id, event about it). Retention finds an event's rows
-- through this key, from the ids the event row holds.
CREATE TABLE audit_targets (
    target TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (target, seq)
);

-- The newest event whose targets are in `audit_targets` (one row): every event with a
-- `seq` up to it has committed or never will. The same shape as SQLite's table, so the
-- lookups' SQL is one text for both; `only` is a reserved word in PostgreSQL, hence the
-- quotes here (a qualified `x.only` needs none).
--
-- It starts at 0, and the passes index the events already recorded a chunk at a time
-- (until they are done, lookups find those by scanning): indexing them here would hold
-- this migration's lock on `audit_events` (DROP INDEX takes it exclusively), and so
-- every write, for as long as the whole log takes.
CREATE TABLE audit_indexed (
    "only" INTEGER PRIMARY KEY CHECK ("only" = 1),
    seq    BIGINT NOT NULL
);
INSERT INTO audit_indexed ("only", seq) VALUES (1, 0);

-- A pass moves the mark only up to a `seq` every transaction that took one has settled,
-- which it learns by locking the table against writers for an instant: once it holds
-- that lock, every transaction that took a `seq` from the identity has ended. That
-- holds only if each `seq` is taken in the inserting statement, so the identity must
-- not cache values per session (CACHE 1, the default, said here because it is relied on):
-- a session holding cached values could insert one of them after the pass.
ALTER TABLE audit_events ALTER COLUMN seq SET CACHE 1;
