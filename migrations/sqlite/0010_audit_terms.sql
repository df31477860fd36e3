-- The audit trail's event row carries no index but its key (docs/audit.md).
--
-- In a batch of membership adds, the trail's pages were about 13 of the 47 WAL frames
-- the batch wrote (load benchmark; BENCHMARKS.md, "The audit trail's cost on the
-- add"): the event rows, an entry in each of `audit_events_at`, `audit_events_type` and
-- `audit_events_actor`, and `sqlite_sequence` (AUTOINCREMENT). Those lookups move to
-- what the batch writer's passes fill between batches (`sqlite/audit_index.rs`):
--
-- `audit_terms` replaces `audit_targets` (migration 0009) and holds one row per event,
-- every event, with its terms:
--   its user's and group's ids, as they are (a UUID is one token);
--   `type-` and its type with `-` for `.` (`type-group-memberadded`);
--   `actor-` and its actor's user id, when it has one.
--
-- `audit_spans` holds one row per pass: the first and last event it indexed and the
-- earliest and latest time among them. A time range becomes a range of seqs: from the
-- first span that reaches into it to the last, plus the events after the last pass.
--
-- Lookups read these up to `audit_indexed.seq` and scan the events after it, and
-- compare the recorded columns in the end: the indexes only narrow.
--
-- `seq` is no longer AUTOINCREMENT: SQLite then gives the next event MAX(seq) + 1, and
-- retention always keeps the newest event, so an id is still never given twice.
--
-- The new indexes start empty and the mark at 0: the passes index every event again, a
-- chunk at a time, and until they are done lookups find the older events by scanning.
CREATE TABLE audit_events_keyed (
    seq               INTEGER PRIMARY KEY,
    at                INTEGER NOT NULL,
    event_type        TEXT NOT NULL,
    actor_type        TEXT NOT NULL,
    actor_id          TEXT,
    actor_name        TEXT,
    target_user_id    TEXT,
    target_user_name  TEXT,
    target_group_id   TEXT,
    target_group_name TEXT,
    target_key_id     TEXT,
    target_key_name   TEXT,
    summary           TEXT NOT NULL DEFAULT '{}',
    request_id        TEXT,
    client_addr       TEXT
);
INSERT INTO audit_events_keyed SELECT seq, at, event_type, actor_type, actor_id, actor_name,
    target_user_id, target_user_name, target_group_id, target_group_name, target_key_id,
    target_key_name, summary, request_id, client_addr FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_keyed RENAME TO audit_events;

DROP TABLE audit_targets;
CREATE VIRTUAL TABLE audit_terms USING fts5 (
    terms,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = "ascii tokenchars '-'"
);

CREATE TABLE audit_spans (
    last_seq  INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    min_at    INTEGER NOT NULL,
    max_at    INTEGER NOT NULL
);

UPDATE audit_indexed SET seq = 0 WHERE only = 1;
