//! The membership check on PostgreSQL, in one round trip on a warm node: the user's
//! direct groups read with `graph_version` in one statement, against the group graph
//! held in memory (`store/group_graph.rs`), skipping the name lookup when the name was
//! asked for before (`store/name_cache.rs`); else one statement that answers through
//! the closure table, after which the graph is read again in the background. The same
//! tiers as the SQLite store's (`sqlite/member_check.rs`). Once the graph is held, a
//! check shares its statement with the other checks waiting on the node
//! (`check_batch.rs`); the rest run on a lane connection (`lane.rs`), which goes back
//! without the ping a pooled one costs.
//!
//! Across nodes: the counters are bumped by triggers in the transaction that changes the
//! graph or a name (migration 0004), and a statement at READ COMMITTED sees one snapshot,
//! so the counters it reads belong to the memberships it reads. A graph or name changed
//! on any node is therefore never answered from memory once committed: the counters
//! differ, and the database answers.

use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::PgStore;
use super::check_batch::{self, Asked, CheckBatcher};
use super::executor::pg_text;
use crate::domain::ids::{GroupId, UserId};
use crate::store::group_graph::{GroupGraph, MAX_CLOSURE_ROWS, Resolved};
use crate::store::sql;
use crate::store::{MemberCheck, Named, StoreResult};

impl PgStore {
    /// Reads the group graph again in the background, unless the graph held is already
    /// the one at `version` (another check reloaded it meanwhile) or a reload is running.
    fn reload_graph(&self, version: i64) {
        if !self.graph.begin_reload(version) {
            return;
        }
        let (pool, cache) = (self.pool.clone(), Arc::clone(&self.graph));
        tokio::spawn(async move {
            let started = Instant::now();
            cache.settle_load(load_graph(&pool, MAX_CLOSURE_ROWS).await, started);
        });
    }

    /// [`Store::check_member`](crate::store::Store::check_member), answered from memory
    /// where it can (module documentation): in a batch of checks when it is warm, else
    /// on a lane connection (`lane.rs`).
    pub(super) async fn check_member_here(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        if let Some(found) = self.check_warm(group, user).await {
            return Ok(found);
        }
        let mut taken = self.lane.take().await?;
        let found = self.check_on(&mut taken.conn, group, user).await?;
        self.lane.put(taken);
        Ok(found)
    }

    /// The tiers that answer from the graph held in memory, in a batch of checks
    /// (`check_batch.rs`): a name asked for before needs only the user's groups, if no
    /// name has stopped naming its user since; any other user is found by id or name in
    /// the same statement (and the name remembered). `None` when the graph is not held,
    /// or not the one the statement saw.
    async fn check_warm(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> Option<MemberCheck> {
        let graph = self.graph.get().filter(|g| g.kept())?;
        let known = user
            .id
            .is_none()
            .then(|| self.names.get(user.key))
            .flatten();
        let asked = match &known {
            Some(known) => Asked::Seq(known.seq),
            None => Asked::Named {
                id: user.id.map(|u| u.to_string()),
                key: pg_text(user.key).into_owned(),
            },
        };
        let checks = self
            .checks
            .get_or_init(|| CheckBatcher::start(&self.lane, check_batch::WORKERS));
        let found = checks.groups_of(asked).await?;
        if found.graph != graph.version() {
            return None;
        }
        let id = match &known {
            Some(known) if found.names == known.version => Some(known.id),
            Some(_) => return None,
            None => {
                let (text, seq) = found.found.as_ref().map(|(t, s)| (t, *s)).unzip();
                let id = text.and_then(|t| UserId::parse(t));
                if let (Some(id), Some(seq), None) = (id, seq, user.id) {
                    self.names.remember(user.key, found.names, seq, id);
                }
                id
            }
        };
        let resolved = graph.resolve(group.id, group.key);
        Some(MemberCheck {
            group: resolved.map(|g| g.id),
            user: id,
            member: id.is_some()
                && resolved.is_some_and(|group| {
                    found
                        .groups
                        .iter()
                        .any(|&direct| graph.is_under(group, direct))
                }),
        })
    }

    async fn check_on(
        &self,
        conn: &mut PgConnection,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        let uid = user.id.map(|u| u.to_string());
        let graph = self.graph.get();
        if let Some(graph) = graph.as_ref().filter(|g| g.kept()) {
            let resolved = graph.resolve(group.id, group.key);
            let rows = sqlx::query(sql::USER_GROUPS)
                .bind(uid.as_deref())
                .bind(pg_text(user.key).as_ref())
                .fetch_all(&mut *conn)
                .await?;
            // The versions and the user are on every row: read them from the first.
            if let Some(first) = rows.first()
                && first.try_get::<i64, _>(0)? == graph.version()
            {
                let found = first
                    .try_get::<Option<String>, _>(2)?
                    .as_deref()
                    .and_then(UserId::parse);
                if let (Some(id), Some(seq), None) =
                    (found, first.try_get::<Option<i64>, _>(3)?, user.id)
                {
                    self.names.remember(user.key, first.try_get(1)?, seq, id);
                }
                return Ok(MemberCheck {
                    group: resolved.map(|g| g.id),
                    user: found,
                    member: any_row_under(&rows, 4, graph, resolved)?,
                });
            }
        }
        let row = sqlx::query(sql::MEMBER_CHECK)
            .bind(group.id.map(|g| g.to_string()))
            .bind(pg_text(group.key).as_ref())
            .bind(uid.as_deref())
            .bind(pg_text(user.key).as_ref())
            .fetch_one(&mut *conn)
            .await?;
        let version: i64 = row.try_get(3)?;
        if graph.is_none_or(|g| g.version() != version) {
            self.reload_graph(version);
        }
        Ok(MemberCheck {
            group: row
                .try_get::<Option<String>, _>(0)?
                .as_deref()
                .and_then(GroupId::parse),
            user: row
                .try_get::<Option<String>, _>(1)?
                .as_deref()
                .and_then(UserId::parse),
            member: row.try_get(2)?,
        })
    }
}

/// Whether any row's direct group (column `col`, an integer key, NULL for none) is
/// `group` or lies below it in `graph`.
fn any_row_under(
    rows: &[PgRow],
    col: usize,
    graph: &GroupGraph,
    group: Option<Resolved>,
) -> StoreResult<bool> {
    let Some(group) = group else {
        return Ok(false);
    };
    for row in rows {
        if let Some(direct) = row.try_get::<Option<i64>, _>(col)?
            && graph.is_under(group, direct)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads the whole graph from one snapshot (a read-only REPEATABLE READ transaction),
/// not kept when it has more than `max_closure` closure rows.
async fn load_graph(pool: &PgPool, max_closure: i64) -> StoreResult<GroupGraph> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let version: i64 = sqlx::query_scalar("SELECT n FROM graph_version WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_closure")
        .fetch_one(&mut *tx)
        .await?;
    if rows > max_closure {
        tx.commit().await?;
        return Ok(GroupGraph::not_kept(version));
    }
    let mut graph = GroupGraph::builder(version);
    for row in sqlx::query("SELECT id, name_key, seq FROM groups")
        .fetch_all(&mut *tx)
        .await?
    {
        graph.group(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    }
    for row in sqlx::query("SELECT ancestor_id, descendant_id FROM group_closure")
        .fetch_all(&mut *tx)
        .await?
    {
        graph.closure_row(row.try_get(0)?, row.try_get(1)?);
    }
    tx.commit().await?;
    Ok(graph.finish())
}
