-- The audit trail's per-target lookup, kept off the write path (docs/audit.md).
--
-- `audit_events_user` and `audit_events_group` were keyed by random UUIDs: each event
-- about a membership dirtied a random leaf of both, so the group-commit writer wrote
-- about 2.5 more WAL pages per add and the add ran at about half its speed
-- (BENCHMARKS.md, "The audit trail's cost on the add"). Their job moves to
-- `audit_targets`, which the batch writer fills in passes of thousands of events at a
-- time, sorted, a few times a second: a leaf that gets many entries in one pass is
-- written once. `audit_indexed.seq` says how far the passes have come; a lookup by
-- target reads `audit_targets` for the events up to it and scans the few newer ones,
-- so an event is found by its target from the moment it commits.
DROP INDEX audit_events_user;
DROP INDEX audit_events_group;

-- One row per (user or group id, event about it). The second index serves retention,
-- which removes the oldest events' rows.
CREATE TABLE audit_targets (
    target TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (target, seq)
) WITHOUT ROWID;
CREATE INDEX audit_targets_seq ON audit_targets (seq);

-- The newest event whose targets are in `audit_targets` (one row). Starts at 0: the
-- first passes index the events recorded before this migration, a chunk at a time.
CREATE TABLE audit_indexed (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    seq  INTEGER NOT NULL
);
INSERT INTO audit_indexed (only, seq) VALUES (1, 0);
