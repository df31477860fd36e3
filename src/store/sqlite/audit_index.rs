//! The audit trail's lookup by target, type, actor and time (`audit_terms`, an FTS5
//! index, and `audit_spans`: migrations 0008 to 0010), filled by the batch writer's thread between batches rather
//! than by each event's insert.
//!
//! An event about a membership names a user and a group by random UUIDs; two B-tree
//! indexes on those columns dirtied two random leaves per event, which halved the rate
//! of adds, and the type, actor and time indexes took more pages a batch. A pass here
//! takes every event recorded since the last pass (up to [`MAX_PASS`]) and indexes its
//! terms (ids, `type-…`, `actor-…`: migration 0010) as one new FTS5 segment, written in
//! order, and records the span of seqs and times it covered; FTS5 merges segments as more arrive, so a pass costs what its events cost,
//! whatever the size of the index. Lookups never wait for a pass: they read
//! `audit_terms` up to `audit_indexed.seq` and scan the events after it
//! (`store::audit::list_sql`).

use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How often a pass runs while events arrive: the events a lookup scans are at most
/// about this old (plus one pass). A pass holds the write lock, so the adds queued
/// behind it wait for it: every 500 ms, a pass indexed about 12,000 events and the
/// add's p99 was 27-30 ms; every 100 ms, 10 ms, and the writer spent less per add
/// (BENCHMARKS.md).
pub(super) const PASS_EVERY: Duration = Duration::from_millis(100);

/// Events one pass indexes at most: bounds the time it holds the write lock, and so the
/// wait of the changes queued behind it (a backlog, such as the events recorded before
/// migration 0008, takes several passes). Many times what the load benchmark's adds
/// record between two passes, so passes keep up with the writer.
const MAX_PASS: i64 = 20_000;

/// How far the passes have come, and the newest event.
const PENDING: &str = "SELECT (SELECT seq FROM audit_indexed WHERE only = 1), \
    (SELECT MAX(seq) FROM audit_events)";

/// `$1` < seq <= `$2`: each event's terms (`store::audit::type_term` and `actor_term`
/// make the same from a filter).
const INDEX: &str = "INSERT INTO audit_terms (rowid, terms) \
    SELECT seq, concat_ws(' ', target_user_id, target_group_id, \
    'type-' || replace(event_type, '.', '-'), 'actor-' || actor_id) FROM audit_events \
    WHERE seq > $1 AND seq <= $2";

/// `$1` < seq <= `$2`: the span of the events the pass indexes, if any (migration 0010).
const SPAN: &str = "INSERT INTO audit_spans (last_seq, first_seq, min_at, max_at) \
    SELECT MAX(seq), MIN(seq), MIN(at), MAX(at) FROM audit_events \
    WHERE seq > $1 AND seq <= $2 HAVING COUNT(*) > 0";

const ADVANCE: &str = "UPDATE audit_indexed SET seq = $1 WHERE only = 1";

/// When the last pass ran.
#[derive(Debug)]
pub(super) struct AuditIndexer {
    last: Instant,
}

impl AuditIndexer {
    pub(super) fn new() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// How long until the next pass is due.
    pub(super) fn wait(&self) -> Duration {
        PASS_EVERY.saturating_sub(self.last.elapsed())
    }

    /// Runs a pass if one is due; `Ok(true)` if it wrote.
    pub(super) fn tick(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        if self.last.elapsed() < PASS_EVERY {
            return Ok(false);
        }
        self.last = Instant::now();
        pass(conn)
    }
}

/// Indexes the events recorded since the last pass (up to [`MAX_PASS`]) in a transaction
/// of its own; `Ok(false)` if there were none (checked without the write lock first).
pub(super) fn pass(conn: &Connection) -> rusqlite::Result<bool> {
    if pending(conn)?.is_none() {
        return Ok(false);
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let ran = (|| {
        // Read again under the write lock: another process's writer may have run a pass.
        let Some((from, to)) = pending(conn)? else {
            return Ok(false);
        };
        conn.prepare_cached(INDEX)?.execute([from, to])?;
        conn.prepare_cached(SPAN)?.execute([from, to])?;
        conn.prepare_cached(ADVANCE)?.execute([to])?;
        Ok(true)
    })();
    match ran {
        Ok(wrote) => {
            conn.execute_batch("COMMIT")?;
            Ok(wrote)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The range of events the next pass indexes, if any.
fn pending(conn: &Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    let (from, newest): (i64, Option<i64>) = conn
        .prepare_cached(PENDING)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(newest
        .filter(|&newest| newest > from)
        .map(|newest| (from, newest.min(from + MAX_PASS))))
}
