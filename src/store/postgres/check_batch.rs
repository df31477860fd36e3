//! Grouped membership checks on PostgreSQL: the warm checks a node receives at once
//! share one statement, and so one round trip and one execution in the database.
//!
//! A warm check (the graph held in memory: see `member_check.rs`) needs only the user
//! (skipped when the name is remembered), their direct groups and the two counters of
//! `graph_version`. Alone, that is a statement of its own: a round trip, a wake-up of
//! the database backend and of the node's task, and a protocol exchange that costs the
//! database about what `pgbench -S`'s one-row read does (BENCHMARKS.md). Here a worker
//! takes every check waiting in the node's queue (up to [`MAX_BATCH`]) and runs
//! [`GROUPS_OF_USERS`] once for all of them: one row per check, its user's direct groups
//! as one array.
//!
//! What a check answers is unchanged. The statement reads the counters and every
//! check's groups from one snapshot, so each check still compares the counters read
//! with its own groups (a graph or name changed on any node is never answered from
//! memory). A check joins only a batch whose statement has not been sent yet: its
//! statement starts after the check did, so it sees every change committed before the
//! check began (a change is visible at once on the node that made it).
//!
//! The statement runs in the worker's task, on a lane connection (`lane.rs`) it takes
//! for the batch: a check whose request goes away while it waits drops only its
//! answer's receiver, never a connection in the middle of a statement. A batch that
//! fails answers each of its checks with `None`; the check then asks the database on
//! its own (`member_check.rs`'s next tier), which answers or reports the error.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::lane::{Jobs, Lane, next_batch, start_workers};
use crate::store::StoreResult;

/// Checks in one statement at most.
const MAX_BATCH: usize = 256;

/// Workers per node: how many batches may be in flight at once (each holds one lane
/// connection while its statement runs). With one, the checks that arrive while a
/// batch's statement runs all wait for the next: under load the batches grow rather
/// than multiply. Measured under the load benchmark's checks (BENCHMARKS.md), one
/// worker cost the database 15-19 µs of CPU per check, two 25-34 µs, four 49-50 µs,
/// and one gave the most checks a second.
pub(super) const WORKERS: usize = 1;

/// Arrays of one element per check: `$1` the user's integer key when the check knows it
/// (NULL otherwise), `$2` the user's id (or NULL) and `$3` their username or email key,
/// by which the others are found (by id first, else by name). For each check (by its
/// 1-based position, `ord`): the graph's and the names' versions (`graph_version.n`,
/// `.names`), the user's id and integer key as found by id or name (NULL for a check by
/// integer key, or for no such user) and the integer keys of the user's direct groups
/// (an empty array for none). One row per check; one snapshot for all.
const GROUPS_OF_USERS: &str = "SELECT q.ord, v.n, v.names, COALESCE(u.id, i.user_id), \
    COALESCE(u.seq, i.user_seq), \
    ARRAY(SELECT m.group_seq FROM group_members m \
    WHERE m.user_seq = COALESCE(q.seq, u.seq, i.user_seq)) \
    FROM graph_version v \
    CROSS JOIN unnest($1::int8[], $2::text[], $3::text[]) WITH ORDINALITY AS q(seq, uid, ukey, ord) \
    LEFT JOIN users u ON q.seq IS NULL AND u.id = q.uid \
    LEFT JOIN user_identifiers i ON q.seq IS NULL AND u.seq IS NULL AND i.key = q.ukey \
    WHERE v.id = 1";

/// What the database held for one check's user, in the batch's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UserGroups {
    /// `graph_version.n`.
    pub(super) graph: i64,
    /// `graph_version.names`.
    pub(super) names: i64,
    /// For a check by id or name: the user's id and integer key, if there is one.
    pub(super) found: Option<(String, i64)>,
    /// The integer keys of the user's direct groups.
    pub(super) groups: Vec<i64>,
}

/// Whom a check asks about.
#[derive(Debug)]
pub(super) enum Asked {
    /// A user whose integer key is known.
    Seq(i64),
    /// A user by id (if the segment is one), else by username or email key.
    Named { id: Option<String>, key: String },
}

/// One check waiting for its batch.
struct Pending {
    asked: Asked,
    reply: oneshot::Sender<Option<UserGroups>>,
}

/// The node's queue of warm checks and the workers that answer them (module
/// documentation).
#[derive(Debug)]
pub(super) struct CheckBatcher {
    queue: mpsc::UnboundedSender<Pending>,
}

impl CheckBatcher {
    /// Starts `workers` tasks on the current runtime; they end when the batcher is
    /// dropped and the queue is empty.
    pub(super) fn start(lane: &Arc<Lane>, workers: usize) -> Self {
        Self {
            queue: start_workers(lane, workers, run),
        }
    }

    /// The direct groups of the user `asked` names, with the counters, read by the next
    /// batch's statement; `None` when that statement failed (or the workers are gone,
    /// their runtime shut down): ask the database alone then.
    pub(super) async fn groups_of(&self, asked: Asked) -> Option<UserGroups> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { asked, reply }).ok()?;
        answer.await.ok().flatten()
    }
}

async fn run(lane: Arc<Lane>, jobs: Jobs<Pending>) {
    while let Some(batch) = next_batch(&jobs, MAX_BATCH).await {
        match groups_of_users(&lane, &batch).await {
            Ok(mut found) => {
                for (pending, groups) in batch.into_iter().zip(found.iter_mut()) {
                    // The request may have gone away: nothing to undo for a read.
                    let _ = pending.reply.send(groups.take());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, checks = batch.len(), "a batch of membership checks failed; each asks alone");
                for pending in batch {
                    let _ = pending.reply.send(None);
                }
            }
        }
    }
}

/// Runs [`GROUPS_OF_USERS`] for `batch`: each check's answer, in the batch's order
/// (`None` for one the statement did not answer, which it always does).
async fn groups_of_users(lane: &Lane, batch: &[Pending]) -> StoreResult<Vec<Option<UserGroups>>> {
    let (mut seqs, mut ids, mut keys) = (
        Vec::with_capacity(batch.len()),
        Vec::with_capacity(batch.len()),
        Vec::with_capacity(batch.len()),
    );
    for p in batch {
        match &p.asked {
            Asked::Seq(seq) => {
                seqs.push(Some(*seq));
                ids.push(None);
                keys.push(None);
            }
            Asked::Named { id, key } => {
                seqs.push(None);
                ids.push(id.as_deref());
                keys.push(Some(key.as_str()));
            }
        }
    }
    let mut taken = lane.take().await?;
    let rows = sqlx::query(GROUPS_OF_USERS)
        .bind(&seqs)
        .bind(&ids)
        .bind(&keys)
        .fetch_all(&mut taken.conn)
        .await?;
    lane.put(taken);
    let mut found = vec![None; batch.len()];
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| found.get_mut(i)) {
            let id: Option<String> = row.try_get(3)?;
            let seq: Option<i64> = row.try_get(4)?;
            *slot = Some(UserGroups {
                graph: row.try_get(1)?,
                names: row.try_get(2)?,
                found: id.zip(seq),
                groups: row.try_get(5)?,
            });
        }
    }
    Ok(found)
}
