//! The audit trail's lookup by target on PostgreSQL (`audit_targets`, migration 0006),
//! filled by a background pass on each node rather than by each event's insert.
//!
//! An event about a membership names a user and a group by random UUIDs; a B-tree
//! index on each of those columns put every event into two random leaves, inside the
//! grouped add's statement all of a node's adds wait on (migration 0006 has the
//! figures). A pass here takes the events recorded since the last pass (up to
//! [`MAX_PASS`]) and inserts a row per target of each into `audit_targets`, sorted, in
//! one statement; lookups never wait for a pass: they read `audit_targets` up to
//! `audit_indexed.seq` and scan the events after it (`store::audit::list_sql`).
//!
//! # Moving the mark past only what has settled
//!
//! `seq` comes from an identity, taken as each event is inserted, but transactions
//! commit in any order: a pass that indexed every event it saw and moved the mark to
//! the newest would pass over an event whose smaller `seq` commits later, and that
//! event would never be found by its target (the lookups scan only past the mark). So a
//! pass first learns how far the events have settled ([`settled`]): in a transaction of
//! its own it locks `audit_events` in SHARE mode, which conflicts with the ROW
//! EXCLUSIVE lock every insert holds until its transaction ends, and reads the newest
//! `seq`. Once the lock is granted, every transaction that ever took a `seq` has
//! committed or rolled back (the identity caches no values per session: migration
//! 0006), and every later one takes a larger `seq`; so each event up to that newest is
//! there to be read, or never will be. The lock is asked for with a 20 ms
//! `lock_timeout` (writers queue behind a waiting SHARE request, so that bounds how long
//! a pass can hold them up) and held for one read; a pass that does not get it is
//! skipped, and the next tries again.
//!
//! The indexing itself ([`index`]) is a second transaction, which takes the
//! [`AUDIT_INDEX_LOCK`] advisory lock, or gives up the pass if another holds it: the
//! passes of several nodes take turns rather than index the same events twice, and
//! retention (`store::audit::prune`), which takes the same lock and waits for it,
//! never removes an event between a pass's read of it and its commit, which would leave
//! the pass's rows for an event that is gone. An event removed before a pass is simply
//! not read. The mark moves with a guarded update in the same transaction, so a pass
//! that read a mark someone else moved (it cannot, holding the lock) writes nothing.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::oneshot;

use super::executor::AUDIT_INDEX_LOCK;
use crate::store::StoreResult;

/// How often a pass runs: the events a lookup by target scans are at most about this
/// old, plus one pass (and whatever a skipped pass left).
const PASS_EVERY: Duration = Duration::from_millis(200);

/// Events one pass indexes at most: bounds its transaction (a backlog, such as the
/// events recorded before migration 0006, takes several passes). Many times what a node
/// records in [`PASS_EVERY`].
const MAX_PASS: i64 = 20_000;

/// How long a pass waits for its lock on `audit_events`, and so at most how long the
/// writers that queue behind its request wait.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '20ms'";

/// How far the passes have come, and the newest event.
const PENDING: &str = "SELECT (SELECT seq FROM audit_indexed WHERE \"only\" = 1), \
    (SELECT MAX(seq) FROM audit_events)";

/// `$1` < seq <= `$2`: a row per target of each event, in the key's order.
const INDEX: &str = "INSERT INTO audit_targets (target, seq) \
    SELECT t.target, a.seq FROM audit_events a \
    CROSS JOIN LATERAL (VALUES (a.target_user_id), (a.target_group_id)) AS t (target) \
    WHERE a.seq > $1 AND a.seq <= $2 AND t.target IS NOT NULL ORDER BY 1, 2 \
    ON CONFLICT DO NOTHING";

/// Moves the mark from `$1` to `$2`.
const ADVANCE: &str = "UPDATE audit_indexed SET seq = $2 WHERE \"only\" = 1 AND seq = $1";

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// No event past the mark.
    Idle,
    /// Writers held `audit_events` past the lock timeout, or another pass (or
    /// retention) held the advisory lock: nothing done, the next pass tries again.
    Skipped,
    /// Indexed the events up to this `seq`, which the mark now says.
    Indexed(i64),
}

/// A node's passes: the pool they run on, the store's lock scope, and the newest
/// `seq` a pass has found settled (it stays so: a later pass indexing up to it needs
/// no lock on `audit_events`).
#[derive(Debug)]
pub(super) struct AuditIndexer {
    pool: PgPool,
    scope: i32,
    settled: i64,
}

/// Keeps a node's passes running: they stop once it is dropped (with the last clone of
/// the store), after the pass under way, if any.
#[derive(Debug)]
pub(super) struct Running {
    _stop: oneshot::Sender<()>,
}

impl AuditIndexer {
    pub(super) fn new(pool: PgPool, scope: i32) -> Self {
        Self {
            pool,
            scope,
            settled: 0,
        }
    }

    /// Runs a pass every [`PASS_EVERY`] on the current runtime until the handle is
    /// dropped or the pool closed. A pass is never interrupted halfway: a transaction
    /// dropped while it begins can leave its connection wedged.
    pub(super) fn start(mut self) -> Running {
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(PASS_EVERY) => {}
                }
                if self.pool.is_closed() {
                    break;
                }
                match self.pass().await {
                    Ok(Pass::Skipped) => tracing::debug!("audit index pass skipped: busy"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "audit index pass failed"),
                }
            }
        });
        Running { _stop: stop }
    }

    /// Indexes the settled events past the mark, at most [`MAX_PASS`] of them.
    pub(super) async fn pass(&mut self) -> StoreResult<Pass> {
        let (mark, newest): (i64, Option<i64>) =
            sqlx::query_as(PENDING).fetch_one(&self.pool).await?;
        if newest.is_none_or(|newest| newest <= mark) {
            return Ok(Pass::Idle);
        }
        if self.settled <= mark {
            match settled(&self.pool).await? {
                Some(seq) => self.settled = seq,
                None => return Ok(Pass::Skipped),
            }
        }
        index(&self.pool, self.scope, self.settled).await
    }
}

/// The newest `seq` every event up to which has committed or never will (module
/// documentation), or `None` if writers held the table past the lock timeout.
async fn settled(pool: &PgPool) -> StoreResult<Option<i64>> {
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
    let locked = sqlx::query("LOCK TABLE audit_events IN SHARE MODE")
        .execute(&mut *tx)
        .await;
    if let Err(e) = locked {
        tx.rollback().await?;
        return match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => Ok(None),
            _ => Err(e.into()),
        };
    }
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(newest.unwrap_or(0)))
}

/// Indexes the events past the mark up to `settled` (at most [`MAX_PASS`]) and moves
/// the mark, under the advisory lock (module documentation).
async fn index(pool: &PgPool, scope: i32, settled: i64) -> StoreResult<Pass> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
        .bind(AUDIT_INDEX_LOCK)
        .bind(scope)
        .fetch_one(&mut *tx)
        .await?;
    if !ours {
        tx.rollback().await?;
        return Ok(Pass::Skipped);
    }
    // Read under the lock: another node's pass may have moved it.
    let mark: i64 = sqlx::query_scalar("SELECT seq FROM audit_indexed WHERE \"only\" = 1")
        .fetch_one(&mut *tx)
        .await?;
    if mark >= settled {
        tx.rollback().await?;
        return Ok(Pass::Idle);
    }
    let to = settled.min(mark + MAX_PASS);
    sqlx::query(INDEX)
        .bind(mark)
        .bind(to)
        .execute(&mut *tx)
        .await?;
    let moved = sqlx::query(ADVANCE)
        .bind(mark)
        .bind(to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if moved == 0 {
        tx.rollback().await?;
        return Ok(Pass::Skipped);
    }
    tx.commit().await?;
    Ok(Pass::Indexed(to))
}
