-- The audit trail's per-target lookup as an FTS5 index (docs/audit.md).
--
-- `audit_targets` (migration 0008) was a B-tree keyed by (target, seq). Its keys are
-- random UUIDs, so a pass of the writer thread inserted into leaves all over the tree:
-- once the tree held more leaves than a pass had events, every pass rewrote most of
-- it, and passes grew from 20 to 70 ms in a one-minute benchmark (the adds waited for
-- them). FTS5 keeps its index as sorted segments: a pass writes one new segment, in
-- order, and segments are merged a few at a time as more are written, so a pass costs
-- what its own events cost however large the index is.
--
-- One row per event about a user or a group: rowid = the event's seq, the text = its
-- user's and group's ids. Contentless (the ids are in `audit_events`), ids kept whole
-- as single tokens (`-` is a token character), no positions (`detail = none`).
-- `contentless_delete` lets retention delete rows by rowid.
--
-- The new index starts empty, and the passes index the older events again, a chunk at
-- a time; until they are done, lookups find those events by scanning (as they find
-- every event newer than the last pass).
DROP TABLE audit_targets;
CREATE VIRTUAL TABLE audit_targets USING fts5 (
    targets,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = "ascii tokenchars '-'"
);
UPDATE audit_indexed SET seq = 0 WHERE only = 1;
