//! The PostgreSQL implementation of [`Store`]: the scale-out backend, where several
//! `gatehouse serve` processes share one database and must behave as one service.
//!
//! It mirrors [`super::sqlite`] statement for statement (the shared text lives in
//! `store/sql.rs`, the filters come from [`super::filter_sql`] with
//! [`Dialect::Postgres`]); what differs is how the invariants hold when the writers are
//! other processes rather than one connection.
//!
//! # Cross-node correctness
//!
//! Every transaction runs at PostgreSQL's default isolation, READ COMMITTED, where each
//! statement sees every transaction committed before the statement began.
//!
//! - **Unique names** (usernames, emails, group names, API-key names) are unique indexes
//!   on keys folded in Rust. The index decides whichever node writes: the second insert
//!   waits for the first to commit and then fails with a unique violation, which becomes
//!   [`StoreError::Unique`].
//! - **No group cycles.** The cycle check reads the closure table and the write extends
//!   it; two nodes adding A→B and B→A at once would each see no path and both commit a
//!   cycle (write skew). Every group-graph write (`add_children`, `remove_child`,
//!   `delete_group`) therefore first takes a transaction-scoped advisory lock,
//!   `GRAPH_LOCK`. The second writer waits, and its cycle check, a statement that
//!   begins after the first committed, sees the first's edge.
//! - **At least one administrator.** The guard ("System Administrators still has an
//!   active member") has the same write skew: two nodes removing the last two admins
//!   each see the other still there. Every transaction that can take an administrator
//!   away (`delete_user`, `remove_member`, suspending, `delete_group`, `remove_child`,
//!   `delete_api_key`) takes `ADMIN_LOCK` first, before it even decides whether its
//!   target is an administrator, so that decision and the guard both see every earlier
//!   removal. Writes that only add administrators take no lock: they cannot break the
//!   guard. Lock order is always graph, then admin, and both are taken before any row is
//!   written, so the two locks cannot deadlock with each other.
//! - **No membership outlives its user or group.** Memberships have no foreign keys
//!   (checking them locked the parent rows on every add); the deletion of a user or
//!   group deletes their memberships in a trigger that takes the member guard, an
//!   advisory lock, exclusively, and every insert of memberships takes it shared and
//!   resolves the user and group in a statement that begins after (`Lock::Members`, the
//!   grouped add's function). Migration 0005 gives the argument.
//! - **Refresh-token reuse** is one conditional `UPDATE ... WHERE NOT used ... RETURNING`.
//!   Two nodes spending the same token contend for its row lock; the loser re-evaluates
//!   the `WHERE` against the winner's committed row, updates nothing, finds the token
//!   used and revokes the family. The family revocation and the insertion of a token into
//!   that family take a per-family advisory lock, so a token issued to the winner in the
//!   same instant is stored revoked rather than escaping.
//! - **An audit event is found by its target from the moment it commits.** The index by
//!   target, `audit_targets`, is filled by a pass on each node (`postgres/audit_index.rs`)
//!   up to a mark, and lookups scan the events past the mark. Transactions commit out of
//!   `seq` order, so a pass moves the mark only as far as every transaction that took a
//!   `seq` has ended, which it learns by locking `audit_events` in SHARE mode for an
//!   instant (20 ms `lock_timeout`, else the pass is skipped). The passes of all nodes
//!   and retention are serialized by `AUDIT_INDEX_LOCK`, which a pass only tries for:
//!   retention never removes an event between a pass's read of it and its commit.
//!
//! # Why advisory locks at READ COMMITTED, not SERIALIZABLE with retries
//!
//! SERIALIZABLE would also catch both write skews, by aborting one transaction with a
//! serialization failure. We prefer explicit locks because:
//! - The guarantee is local and visible. The lock names the invariant it protects and the
//!   conflict set is exactly the transactions that can break it; under SERIALIZABLE the
//!   protection is implicit, and it silently stops holding for any writer that runs at a
//!   lower level (an operator's `psql` session, a maintenance script, a future code path).
//! - Contention waits instead of failing. Serializable snapshot isolation tracks read
//!   predicates at page granularity, so the closure-table reads of unrelated graph writes
//!   produce false-positive aborts; every write path would need a retry loop, and under
//!   load those retries compound. Here a conflicting writer queues behind a lock held for
//!   one short transaction.
//! - Portability. Advisory locks (or an equivalent such as a lock row taken with
//!   `SELECT ... FOR UPDATE`) exist on PostgreSQL-compatible databases whose
//!   SERIALIZABLE behaves differently from PostgreSQL's.
//!
//! The cost is that group-graph writes, and separately admin-removing writes, are
//! serialized across the cluster; they are rare, short administrative actions. Deadlocks
//! between ordinary row locks remain possible in odd interleavings (two users swapping
//! usernames at once), so transactions are retried a few times on a deadlock or
//! serialization failure.
//!
//! The lock keys are the two-integer form `(class, scope)`: `class` says which invariant,
//! `scope` is a hash of `current_schema()`, so deployments (or test runs) in different
//! schemas of one database never wait on each other.

mod audit_index;
mod batch_writer;
mod check_batch;
mod executor;
mod lane;
mod member_check;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection as _, PgPool, Postgres, Row, Transaction};

use self::audit_index::AuditIndexer;
use self::batch_writer::{AddWriter, Outcome};
use self::check_batch::CheckBatcher;
use self::executor::{MAX_RETRIES, PgTx, bind_all, lock_key, pg_text, retrying};
use self::lane::Lane;
use super::audit::{self, Attempt, AuditFilter};
use super::filter_sql::Dialect;
use super::filter_sql::SqlValue;
use super::group_graph::GraphCache;
use super::name_cache::NameCache;
use super::sql::{self, ListSql};
use super::transactions;
use super::tx::Tx as _;
use super::{
    GroupScope, ImportBatch, ImportStats, ListQuery, MemberCheck, Named, Page, PageRequest,
    PasswordAttempt, PoolStats, RefreshToken, RefreshUse, Settled, StateChange, Store, StoreError,
    StoreResult, StoredKey, UserScope,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{Delivery, Event, Record, Webhook};
use crate::domain::group::Group;
use crate::domain::ids::{ApiKeyId, GroupId, UserId};
use crate::domain::user::{PasswordHash, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process unless the caller chooses.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The second key of every advisory lock: a hash of the schema the store lives in.
    scope: i32,
    /// The group graph the membership check answers from (`postgres/member_check.rs`).
    graph: Arc<GraphCache>,
    /// Which user each name a check asked for named (`store/name_cache.rs`).
    names: Arc<NameCache>,
    /// The grouped adds (`postgres/batch_writer.rs`), started on the first add.
    adds: Arc<OnceLock<AddWriter>>,
    /// The grouped warm checks (`postgres/check_batch.rs`), started on the first.
    checks: Arc<OnceLock<CheckBatcher>>,
    /// The connections of the checks and the grouped adds (`postgres/lane.rs`): half of
    /// the pool size, taken from it.
    lane: Arc<Lane>,
    /// The audit trail's index passes (`postgres/audit_index.rs`), which stop when the
    /// last clone of the store is dropped.
    audit_index: Option<Arc<audit_index::Running>>,
}

/// A pooled connection idle longer than this is pinged before it is handed out; one used
/// more recently is handed out as it is (a ping is a round trip of its own, as long as
/// a membership check's).
pub(super) const PING_IDLE: Duration = Duration::from_secs(10);

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`, libpq-style parameters such
    /// as `options=-c search_path=...` accepted) with a pool of [`DEFAULT_POOL_SIZE`] and
    /// applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// Like [`PgStore::open`] with at most `pool_size` connections (at least 2): half
    /// for the membership checks and the grouped adds, half for everything else.
    pub async fn open_with_pool_size(url: &str, pool_size: u32) -> StoreResult<Self> {
        let mut store = Self::connect(url, pool_size).await?;
        let passes = AuditIndexer::new(store.pool.clone(), store.scope).start();
        store.audit_index = Some(Arc::new(passes));
        Ok(store)
    }

    /// [`PgStore::open_with_pool_size`] without the audit index passes.
    async fn connect(url: &str, pool_size: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let lane_size = (pool_size / 2).max(1);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.saturating_sub(lane_size).max(1))
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await?;
        // sqlx holds a database-wide advisory lock while it migrates, so nodes starting
        // together apply each migration once.
        MIGRATOR.run(&pool).await?;
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        check_server(&pool).await?;
        Ok(Self {
            pool,
            scope: lock_key(schema.as_deref().unwrap_or("")),
            graph: Arc::default(),
            names: Arc::default(),
            adds: Arc::default(),
            checks: Arc::default(),
            lane: Arc::new(Lane::new(options, lane_size)),
            audit_index: None,
        })
    }

    /// Applies migrations only (for `gatehouse migrate`).
    pub async fn migrate(url: &str) -> StoreResult<()> {
        Self::connect(url, 1).await.map(|_| ())
    }

    /// Begins a transaction for a function of `transactions.rs`; run it in
    /// [`retrying`].
    async fn begin(&self) -> StoreResult<PgTx<Transaction<'static, Postgres>>> {
        Ok(PgTx {
            conn: self.pool.begin().await?,
            scope: self.scope,
        })
    }

    /// A pooled connection, for a function of `transactions.rs` that is one statement.
    async fn connection(&self) -> StoreResult<PgTx<PoolConnection<Postgres>>> {
        Ok(PgTx {
            conn: self.pool.acquire().await?,
            scope: self.scope,
        })
    }

    /// Reads one API key by a unique column (a fixed name, never client input).
    async fn api_key_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<ApiKey>> {
        let text = sql::api_key_by(column);
        let row = sqlx::query(&text)
            .bind(pg_text(value).as_ref())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(api_key_from_row).transpose()?)
    }
}

/// Warns about server settings that make gatehouse behave differently from its contract.
async fn check_server(pool: &PgPool) -> StoreResult<()> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(pool)
        .await?;
    if version < 120_000 {
        tracing::warn!(
            version,
            "PostgreSQL older than 12 is not supported; gatehouse is tested on 15"
        );
    }
    let folds: bool = sqlx::query_scalar("SELECT lower('ÄÉ') = 'äé'")
        .fetch_one(pool)
        .await?;
    if !folds {
        tracing::warn!(
            "the database folds case for ASCII only (LC_CTYPE C?); case-insensitive \
             filters will miss non-ASCII letters in another case: use a UTF-8 database \
             with a ctype such as C.UTF-8 or en_US.UTF-8"
        );
    }
    Ok(())
}

fn user_from_row(row: &PgRow) -> Result<User, sqlx::Error> {
    sql::user_from(row).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn group_from_row(row: &PgRow) -> Result<Group, sqlx::Error> {
    sql::group_from(row).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn api_key_from_row(row: &PgRow) -> Result<ApiKey, sqlx::Error> {
    sql::api_key_from(row).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Counts the matches of a list and fetches one page of them, concurrently (on two
/// pooled connections, as the SQLite store does on two readers).
///
/// List statements are not kept prepared (`persistent(false)`): their text is built per
/// request, and one text can come with differently typed values (`custom.age = 35` binds
/// an integer where `custom.age = 35.5` binds a double). A statement prepared for the
/// first would read the second's bytes as the wrong type.
async fn fetch_page<T>(
    pool: &PgPool,
    mut list: ListSql,
    page: PageRequest,
    map: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> StoreResult<Page<T>> {
    let count_sql = list.count_sql();
    let page_sql = list.page_sql(page);
    let (total, rows) = tokio::try_join!(
        sqlx::query_scalar_with::<_, i64, _>(&count_sql, bind_all(list.count_params())?)
            .persistent(false)
            .fetch_one(pool),
        sqlx::query_with(&page_sql, bind_all(&list.params)?)
            .persistent(false)
            .fetch_all(pool),
    )?;
    let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
    Ok(Page { items, total })
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Its checks begin no transaction. A warm check waits for a batch whose statement
    /// runs in a worker task of its own (`check_batch.rs`): dropping it drops only its
    /// answer's receiver. The other tiers run on a lane connection, which is put back
    /// only after its statement succeeded and closed when dropped (`lane.rs`). The
    /// caller's authentication reads are single statements on the pool, and sqlx pings
    /// every pooled connection as it comes back, which waits for a dropped statement's
    /// end (or closes the connection) before the connection is used again.
    fn checks_are_cancel_safe(&self) -> bool {
        true
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![super::pool_stats("main", &self.pool)]
    }

    async fn close(&self) {
        self.lane.close().await;
        self.pool.close().await;
    }

    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::ensure_system_group(&mut tx, now).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_user(&self, user: &User, groups: &[GroupId], event: &Event) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::create_user(&mut tx, user, groups, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn user_exists(&self, id: UserId) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                .bind(id.to_string())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let text = sql::user_by_id();
        let row = sqlx::query(&text)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn find_user_by_key(&self, key: &str) -> StoreResult<Option<UserId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM user_identifiers WHERE key = $1")
                .bind(pg_text(key).as_ref())
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.and_then(|s| UserId::parse(&s)))
    }

    async fn update_user_profile(
        &self,
        before: &User,
        after: &User,
        event: &Event,
    ) -> StoreResult<User> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::update_user_profile(&mut tx, before, after, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::set_password(&mut tx, id, hash, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn recover_user(
        &self,
        id: UserId,
        hash: &PasswordHash,
        groups: &[GroupId],
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::recover_user(&mut tx, id, hash, groups, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn admin_can_sign_in(&self, now: Millis) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::admin_can_sign_in(&mut tx, now).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::set_user_state(&mut tx, id, change, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn record_login(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<User> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::record_login(&mut tx, id, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn settle_password_attempt(
        &self,
        id: UserId,
        attempt: PasswordAttempt<'_>,
        now: Millis,
        event: &Event,
    ) -> StoreResult<Settled> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out =
                transactions::settle_password_attempt(&mut tx, id, attempt, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn revoke_refresh_tokens(&self, id: UserId) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::revoke_refresh_tokens(&mut conn, id).await
    }

    async fn delete_user(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::delete_user(&mut tx, id, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>> {
        let list = ListSql::users(scope, query, Dialect::Postgres);
        fetch_page(&self.pool, list, query.page, user_from_row).await
    }

    async fn create_group(&self, group: &Group, event: &Event) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::create_group(&mut tx, group, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn group_exists(&self, id: GroupId) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM groups WHERE id = $1)")
                .bind(id.to_string())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let text = sql::group_by_id();
        let row = sqlx::query(&text)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(group_from_row).transpose()?)
    }

    async fn find_group_by_key(&self, key: &str) -> StoreResult<Option<GroupId>> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM groups WHERE name_key = $1")
            .bind(pg_text(key).as_ref())
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.and_then(|s| GroupId::parse(&s)))
    }

    async fn update_group(&self, group: &Group, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::update_group(&mut tx, group, event).await?;
        tx.commit(out).await
    }

    async fn delete_group(&self, id: GroupId, now: Millis, event: &Event) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::delete_group(&mut tx, id, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>> {
        let list = ListSql::groups(scope, query, Dialect::Postgres);
        fetch_page(&self.pool, list, query.page, group_from_row).await
    }

    async fn add_members(
        &self,
        group: GroupId,
        users: &[UserId],
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::add_members(&mut tx, group, users, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn remove_member(
        &self,
        group: GroupId,
        user: UserId,
        now: Millis,
        event: &Event,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::remove_member(&mut tx, group, user, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn is_member(&self, user: UserId, groups: &[GroupId]) -> StoreResult<bool> {
        let Some((text, params)) = sql::member_of_any(user, groups) else {
            return Ok(false);
        };
        Ok(sqlx::query_scalar_with(&text, bind_all(&params)?)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn check_member(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        self.check_member_here(group, user).await
    }

    async fn add_member_named(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
        event: &Event,
    ) -> StoreResult<MemberCheck> {
        let adds = self
            .adds
            .get_or_init(|| AddWriter::start(&self.lane, batch_writer::WORKERS));
        match adds
            .add((group.id, group.key), (user.id, user.key), event)
            .await
        {
            Outcome::Done(found) => Ok(found),
            // Alone, as the trait's default makes it: resolve, then one transaction.
            Outcome::Alone => super::add_member_resolving(self, group, user, event).await,
        }
    }

    async fn add_children(
        &self,
        parent: GroupId,
        children: &[GroupId],
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::add_children(&mut tx, parent, children, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn import(&self, batch: &ImportBatch, event: &Event) -> StoreResult<ImportStats> {
        // A name taken by another node between this batch's check and its insert fails
        // the attempt; the next attempt's check sees it and skips it, as a rerun would.
        let mut attempts = 0;
        loop {
            let attempt = retrying(|| async move {
                let mut tx = self.begin().await?;
                let out = transactions::import(&mut tx, batch, event).await?;
                tx.commit(out).await
            });
            match attempt.await {
                Err(StoreError::Unique(_)) if attempts < MAX_RETRIES => attempts += 1,
                other => return other,
            }
        }
    }

    async fn remove_child(
        &self,
        parent: GroupId,
        child: GroupId,
        now: Millis,
        event: &Event,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::remove_child(&mut tx, parent, child, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::insert_refresh_token(&mut tx, t).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Millis,
        event: &Event,
    ) -> StoreResult<RefreshUse> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::use_refresh_token(&mut tx, token_hash, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn revoke_refresh_family(&self, token_hash: &str, event: &Event) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::revoke_refresh_family(&mut tx, token_hash, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
        event: &Event,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::create_api_key(&mut tx, key, user, groups, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        self.api_key_where("id", &id.to_string()).await
    }

    async fn find_api_key_by_client_id(&self, client_id: &str) -> StoreResult<Option<ApiKey>> {
        self.api_key_where("client_id", client_id).await
    }

    async fn api_key_of_user(&self, user: UserId) -> StoreResult<Option<ApiKey>> {
        self.api_key_where("user_id", &user.to_string()).await
    }

    async fn list_api_keys(&self, page: PageRequest) -> StoreResult<Page<ApiKey>> {
        fetch_page(&self.pool, ListSql::api_keys(), page, api_key_from_row).await
    }

    async fn update_api_key(&self, key: &ApiKey, event: &Event) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::update_api_key(&mut tx, key, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn delete_api_key(&self, id: ApiKeyId, now: Millis, event: &Event) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.begin().await?;
            let out = transactions::delete_api_key(&mut tx, id, now, event).await?;
            tx.commit(out).await
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(sql::SIGNING_KEYS).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    algorithm: r.try_get("algorithm")?,
                    private_key: r.try_get("private_key")?,
                    public_key: r.try_get("public_key")?,
                    created: r.try_get("created")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn delete_signing_key(&self, kid: &str, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_signing_key(&mut tx, kid, event).await?;
        tx.commit(out).await
    }

    async fn insert_signing_key(&self, key: &StoredKey, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::insert_signing_key(&mut tx, key, event).await?;
        tx.commit(out).await
    }

    async fn record_event(&self, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        audit::record(&mut tx, event).await?;
        tx.commit(()).await
    }

    async fn audit_after(
        &self,
        after_seq: i64,
        since: Millis,
        limit: i64,
    ) -> StoreResult<Vec<Record>> {
        let mut conn = self.connection().await?;
        let rows = conn
            .fetch_all(
                audit::EVENTS_AFTER,
                &[
                    SqlValue::Int(after_seq),
                    SqlValue::Int(since),
                    SqlValue::Int(limit),
                ],
            )
            .await?;
        rows.iter().map(audit::record_from).collect()
    }

    async fn prune_audit(&self, cutoff: Millis, limit: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let out = audit::prune(&mut tx, cutoff, limit).await?;
        tx.commit(out).await
    }

    async fn create_webhook(&self, hook: &Webhook, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = audit::create_webhook(&mut tx, hook, event).await?;
        tx.commit(out).await
    }

    async fn update_webhook(&self, hook: &Webhook, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = audit::update_webhook(&mut tx, hook, event).await?;
        tx.commit(out).await
    }

    async fn delete_webhook(&self, id: &str, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = audit::delete_webhook(&mut tx, id, event).await?;
        tx.commit(out).await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let mut conn = self.connection().await?;
        audit::get_webhook(&mut conn, id).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let mut conn = self.connection().await?;
        audit::list_webhooks(&mut conn).await
    }

    async fn webhook_deliveries(
        &self,
        id: &str,
        state: &str,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let mut conn = self.connection().await?;
        audit::deliveries(&mut conn, id, state, limit).await
    }

    async fn claim_webhook(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<Webhook>> {
        let mut tx = self.begin().await?;
        let out = audit::claim_webhook(&mut tx, owner, now, lease_until).await?;
        tx.commit(out).await
    }

    async fn next_delivery(&self, webhook: &str) -> StoreResult<Option<(Delivery, Record)>> {
        let mut conn = self.connection().await?;
        audit::next_delivery(&mut conn, webhook).await
    }

    async fn settle_delivery(
        &self,
        webhook: &str,
        owner: &str,
        delivery: i64,
        attempt: &Attempt,
        lease_until: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out =
            audit::settle_delivery(&mut tx, webhook, owner, delivery, attempt, lease_until).await?;
        tx.commit(out).await
    }

    async fn release_webhook(&self, webhook: &str, owner: &str) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        audit::release_webhook(&mut conn, webhook, owner).await
    }

    async fn outbox_depth(&self) -> StoreResult<(i64, Option<Millis>, i64)> {
        let mut conn = self.connection().await?;
        audit::outbox_depth(&mut conn).await
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        query: &ListQuery,
    ) -> StoreResult<Page<Record>> {
        let list = audit::list_sql(filter, query, Dialect::Postgres);
        fetch_page(&self.pool, list, query.page, |r| {
            audit::record_from(r).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .await
    }
}
