//! Grouped membership adds on PostgreSQL: the adds a node receives at once share one
//! statement, and so one transaction and one commit.
//!
//! `PUT /groups/{group}/users/{user}` alone costs a transaction of several round trips
//! (resolve the names, `BEGIN`, insert, record the event, queue it for webhooks,
//! `COMMIT`) and a WAL flush of its own. Here a few workers each take every add waiting
//! in the node's queue (up to [`MAX_BATCH`]) and run [`ADD_BATCH`] once for all of
//! them: one call, in its own implicit transaction, of a function (migration 0005) that
//! takes the member guard shared, then in one statement resolves each add's group and
//! user (by id, else by name key, as `Store::resolve_named` does), inserts the new
//! memberships (`ON CONFLICT DO NOTHING`: an existing one is left as it is), records an
//! audit event for each membership it inserted and queues those events for subscribed
//! webhooks. The commit is durable before any add of the batch is answered
//! (`synchronous_commit` is left on); while one worker's batch commits, the next worker
//! gathers the adds that arrived meanwhile.
//!
//! Adds need neither the graph nor the admin lock: they cannot make a cycle or take an
//! administrator away. The member guard (shared among adds, exclusive for the deletion
//! of a user or group) keeps a membership from outliving its user or group, as foreign
//! keys did without locking the parent rows (migration 0005). Uniqueness is the primary
//! key's, whichever node inserts. The statement inserts in key order, so two nodes'
//! batches wait on each other in one order; a deadlock or serialization failure all the
//! same is retried.
//!
//! A batch that fails otherwise answers every add of it with [`Outcome::Alone`]: each
//! is then made again on its own, in its own transaction
//! (`PgStore::add_member_named`), so one failing add never fails the others, as a
//! savepoint per change would.

use std::sync::Arc;

use serde_json::Value;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::executor::{pg_text, retrying};
use super::lane::{Jobs, Lane, next_batch, start_workers};
use crate::domain::audit::Event;
use crate::domain::ids::{GroupId, UserId};
use crate::store::{MemberCheck, StoreResult};

/// Adds in one statement at most.
const MAX_BATCH: usize = 256;

/// Workers per node: how many batches may be in flight at once (each holds one lane
/// connection, `lane.rs`, while its statement runs). Two let one batch run while the other's commit
/// waits for its WAL flush; four measured no better (BENCHMARKS.md).
pub(super) const WORKERS: usize = 2;

/// One statement for a batch of adds: `gatehouse_add_members` (PostgreSQL migration
/// 0005, which describes its arguments), which takes the member guard shared and then
/// resolves, inserts and records in a statement of its own. Returns each add's position
/// with the group and user it resolved to (NULL where none).
const ADD_BATCH: &str = "SELECT ord, group_id, user_id FROM gatehouse_add_members($1, $2, \
    $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// How a grouped add ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Committed (or, with a group or user missing, nothing to do).
    Done(MemberCheck),
    /// The batch failed as a whole: make this add again on its own.
    Alone,
}

/// One add waiting for its batch.
struct Pending {
    group_id: Option<String>,
    group_key: String,
    user_id: Option<String>,
    user_key: String,
    event: Event,
    reply: oneshot::Sender<Outcome>,
}

/// The node's queue of adds and the workers that commit them (module documentation).
#[derive(Debug)]
pub(super) struct AddWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

impl AddWriter {
    /// Starts `workers` tasks on the current runtime; they end when the writer is
    /// dropped and the queue is empty.
    pub(super) fn start(lane: &Arc<Lane>, workers: usize) -> Self {
        Self {
            queue: start_workers(lane, workers, run),
        }
    }

    /// Adds the user to the group (each named by id, else by folded name key) in the
    /// next batch, recording `event` (its target completed with both) if the membership
    /// is new; answers once the batch has committed.
    pub(super) async fn add(
        &self,
        group: (Option<GroupId>, &str),
        user: (Option<UserId>, &str),
        event: &Event,
    ) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            group_id: group.0.map(|g| g.to_string()),
            group_key: pg_text(group.1).into_owned(),
            user_id: user.0.map(|u| u.to_string()),
            user_key: pg_text(user.1).into_owned(),
            event: event.clone(),
            reply,
        };
        if self.queue.send(pending).is_err() {
            return Outcome::Alone;
        }
        // A worker that went away (its runtime shut down) leaves the add to be made alone.
        answer.await.unwrap_or(Outcome::Alone)
    }
}

async fn run(lane: Arc<Lane>, jobs: Jobs<Pending>) {
    while let Some(batch) = next_batch(&jobs, MAX_BATCH).await {
        match retrying(|| add_batch(&lane, &batch)).await {
            Ok(found) => {
                for (pending, check) in batch.into_iter().zip(found) {
                    // The request may have gone away: the add stands anyway.
                    let _ = pending.reply.send(Outcome::Done(check));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, adds = batch.len(), "a batch of adds failed; each is made alone");
                for pending in batch {
                    let _ = pending.reply.send(Outcome::Alone);
                }
            }
        }
    }
}

/// Runs [`ADD_BATCH`] for `batch`: what each add found, in the batch's order.
async fn add_batch(lane: &Lane, batch: &[Pending]) -> StoreResult<Vec<MemberCheck>> {
    let n = batch.len();
    let mut ord = Vec::with_capacity(n);
    let (mut gid, mut gkey, mut uid, mut ukey) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut at, mut kind, mut actor_type, mut actor_id, mut actor_name) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut key_id, mut key_name, mut summary, mut request_id, mut client_addr) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let text = |s: &Option<String>| s.as_deref().map(|s| pg_text(s).into_owned());
    for (i, p) in (0_i64..).zip(batch) {
        let e = &p.event;
        ord.push(i);
        gid.push(p.group_id.clone());
        gkey.push(p.group_key.clone());
        uid.push(p.user_id.clone());
        ukey.push(p.user_key.clone());
        at.push(e.at);
        kind.push(e.kind.as_str().to_owned());
        actor_type.push(e.actor.kind.as_str().to_owned());
        actor_id.push(e.actor.id.map(|u| u.to_string()));
        actor_name.push(text(&e.actor.name));
        key_id.push(text(&e.target.key));
        key_name.push(text(&e.target.key_name));
        summary.push(pg_text(&Value::Object(e.summary.clone()).to_string()).into_owned());
        request_id.push(text(&e.origin.request_id));
        client_addr.push(text(&e.origin.client_addr));
    }
    let rows = sqlx::query(ADD_BATCH)
        .bind(&ord)
        .bind(&gid)
        .bind(&gkey)
        .bind(&uid)
        .bind(&ukey)
        .bind(&at)
        .bind(&kind)
        .bind(&actor_type)
        .bind(&actor_id)
        .bind(&actor_name)
        .bind(&key_id)
        .bind(&key_name)
        .bind(&summary)
        .bind(&request_id)
        .bind(&client_addr);
    let mut taken = lane.take().await?;
    let rows = rows.fetch_all(&mut taken.conn).await?;
    lane.put(taken);
    let mut found = vec![
        MemberCheck {
            group: None,
            user: None,
            member: false,
        };
        n
    ];
    for row in rows {
        let i: i64 = row.try_get(0)?;
        let group = row
            .try_get::<Option<String>, _>(1)?
            .as_deref()
            .and_then(GroupId::parse);
        let user = row
            .try_get::<Option<String>, _>(2)?
            .as_deref()
            .and_then(UserId::parse);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| found.get_mut(i)) {
            *slot = MemberCheck {
                group,
                user,
                member: group.is_some() && user.is_some(),
            };
        }
    }
    Ok(found)
}
