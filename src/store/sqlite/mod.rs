//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One WAL-mode database file, `synchronous=FULL` (every acknowledged commit is durable
//! across a power loss), reached three ways, chosen by cost:
//!
//! - sqlx's single writer connection: every write but memberships, each a transaction of
//!   `store/transactions.rs` begun with `BEGIN IMMEDIATE` (`executor.rs`). A single
//!   writer means our own writes never fight over SQLite's lock; WAL lets reads go on
//!   while it writes.
//! - rusqlite read connections (`readers.rs`): point lookups on the calling thread, scans
//!   on the blocking pool, because sqlx's thread hop per statement cost more than the
//!   statement. Lists and searches: `search.rs`; the membership check answered from the
//!   group graph and names held in memory: `member_check.rs`.
//! - the group-commit writer (`batch_writer.rs`): membership adds and removes, many
//!   requests a transaction and an fsync, running the same `transactions.rs` functions
//!   through the rusqlite executor; its WAL is copied back by the checkpointer
//!   (`checkpoint.rs`).
//!
//! Row mapping and binding for rusqlite: `rows.rs`.

mod audit_index;
mod batch_writer;
mod checkpoint;
mod executor;
mod member_check;
mod readers;
mod rows;
mod search;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use rusqlite::OptionalExtension as _;

use self::batch_writer::BatchWriter;
use self::checkpoint::WAL_SIZE_LIMIT;
use self::executor::{Direct, SqliteTx, run_now};
use self::readers::{BUSY_TIMEOUT, Readers};
use self::rows::by_name;
use self::search::fetch_page;
use super::audit::{self, Attempt, AuditFilter};
use super::filter_sql::Dialect;
use super::filter_sql::SqlValue;
use super::group_graph::GraphCache;
use super::name_cache::NameCache;
use super::sql::{self, ListSql};
use super::transactions;
use super::tx::Tx as _;
use super::{
    GroupScope, ImportBatch, ImportStats, ListQuery, MemberCheck, Named, Page, PasswordAttempt,
    PoolStats, RefreshToken, RefreshUse, Settled, StateChange, Store, StoreError, StoreResult,
    StoredKey, UserScope,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{Delivery, Event, Record, Webhook};
use crate::domain::group::Group;
use crate::domain::ids::{ApiKeyId, GroupId, UserId};
use crate::domain::user::{PasswordHash, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// sqlx's single writer connection: every write but memberships.
    writer: SqlitePool,
    /// Every read: point lookups on the calling thread, scans on the blocking pool.
    direct: Arc<Readers>,
    /// Membership changes, committed in groups.
    batch: Arc<BatchWriter>,
    /// How many users hold each trigram (capped at `search::TRIGRAM_CAP`), remembered for a
    /// while: `q` searches pick their rarest trigrams from it.
    trigrams: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
    /// The group graph, for membership checks.
    graph: Arc<GraphCache>,
    /// Which user each name a check asked for named (module `name_cache`).
    names: Arc<NameCache>,
}

/// What a [`SqliteStore`] is opened for: how its sqlx writer connection is tuned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Workload {
    /// A server: SQLite's default page cache and automatic checkpoints (every 1,000
    /// pages) for the writer, whose writes are small.
    #[default]
    Serve,
    /// `gatehouse import`: batches of thousands of rows into random-key indexes. A
    /// million-user import measured 139 s with the serving settings (77 s of it in the
    /// kernel, re-reading pages the 2 MiB cache had dropped) and 100 s with these.
    BulkLoad,
}

/// The writer's page cache for a bulk load, in KiB.
const BULK_CACHE_KIB: i64 = 256 * 1024;

/// What the add's resolving statement reads: the group's id, key and name, and the
/// user's.
type Resolved = (
    (Option<String>, Option<i64>, Option<String>),
    (Option<String>, Option<i64>, Option<String>),
);

/// WAL pages after which a bulk load's commit checkpoints: a page that every batch
/// changes (an index's upper levels, the full-text index) is copied once per 256 MiB of
/// WAL rather than after every batch.
const BULK_CHECKPOINT_PAGES: i64 = 65_536;

impl SqliteStore {
    /// How many users exist: a row kept by triggers (migration 0002), not a count.
    fn user_total(&self) -> StoreResult<i64> {
        self.direct.read(|c| {
            c.prepare_cached("SELECT n FROM row_counts WHERE name = 'users'")?
                .query_row([], |r| r.get(0))
        })
    }

    /// Opens (creating if missing) the database file at `url` (`sqlite://path`) and
    /// applies pending migrations. In-memory databases are refused: the readers and the
    /// batch writer open the file on connections of their own.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_for(url, Workload::Serve).await
    }

    /// [`Self::open`], with the writer connection tuned for `workload`.
    pub async fn open_for(url: &str, workload: Workload) -> StoreResult<Self> {
        let mut options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // sqlx's writer keeps SQLite's automatic checkpoints (a bulk import then keeps
            // its WAL to about one transaction); the group-commit writer, on the hot
            // path, leaves them to the checkpointer thread.
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        if workload == Workload::BulkLoad {
            options = options
                .pragma("cache_size", BULK_CACHE_KIB.saturating_neg().to_string())
                .pragma("wal_autocheckpoint", BULK_CHECKPOINT_PAGES.to_string());
        }
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Other(
                "gatehouse needs a database file (sqlite://path), not an in-memory database".into(),
            ));
        }
        let path = options.get_filename().to_owned();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        Ok(Self {
            writer,
            direct: Arc::new(Readers::new(&path)),
            batch: Arc::new(BatchWriter::start(&path)?),
            trigrams: Arc::default(),
            names: Arc::default(),
            graph: Arc::default(),
        })
    }

    /// Applies migrations only (for `gatehouse migrate`).
    pub async fn migrate(url: &str) -> StoreResult<()> {
        Self::open(url).await.map(|_| ())
    }
}

impl SqliteStore {
    /// Reads one API key by a unique column (a fixed name, never client input).
    async fn api_key_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<ApiKey>> {
        let text = sql::api_key_by(column);
        let row = self.direct.read(|c| {
            c.prepare_cached(&text)?
                .query_row([value], |r| Ok(by_name(r, |n| sql::api_key_from(n))))
                .optional()
        })?;
        row.transpose()
    }
}

impl SqliteStore {
    /// Begins a transaction on sqlx's writer for a function of `transactions.rs`, with
    /// `BEGIN IMMEDIATE`: the write lock first, so a row read in it stays as read until
    /// the commit.
    async fn begin(&self) -> StoreResult<SqliteTx<Transaction<'static, Sqlite>>> {
        Ok(SqliteTx(self.writer.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// sqlx's writer, for a function of `transactions.rs` that is one statement.
    async fn connection(&self) -> StoreResult<SqliteTx<PoolConnection<Sqlite>>> {
        Ok(SqliteTx(self.writer.acquire().await?))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.direct
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![super::pool_stats("writer", &self.writer)]
    }

    async fn close(&self) {
        self.writer.close().await;
        let batch = Arc::clone(&self.batch);
        // Joining waits for the batch in progress, if any: off the async threads.
        let _ = tokio::task::spawn_blocking(move || batch.stop()).await;
    }

    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::ensure_system_group(&mut tx, now).await?;
        tx.commit(out).await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        self.user_total()
    }

    async fn create_user(&self, user: &User, groups: &[GroupId], event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_user(&mut tx, user, groups, event).await?;
        tx.commit(out).await
    }

    async fn user_exists(&self, id: UserId) -> StoreResult<bool> {
        let id = id.to_string();
        self.direct.read(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")?
                .query_row([&id], |r| r.get(0))
        })
    }

    async fn group_exists(&self, id: GroupId) -> StoreResult<bool> {
        let id = id.to_string();
        self.direct.read(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM groups WHERE id = $1)")?
                .query_row([&id], |r| r.get(0))
        })
    }

    async fn import(&self, batch: &ImportBatch, event: &Event) -> StoreResult<ImportStats> {
        let mut tx = self.begin().await?;
        let out = transactions::import(&mut tx, batch, event).await?;
        tx.commit(out).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let text = sql::user_by_id();
        let id = id.to_string();
        let row = self.direct.read(|c| {
            c.prepare_cached(&text)?
                .query_row([&id], |r| Ok(by_name(r, |n| sql::user_from(n))))
                .optional()
        })?;
        row.transpose()
    }

    async fn find_user_by_key(&self, key: &str) -> StoreResult<Option<UserId>> {
        let id: Option<String> = self.direct.read(|c| {
            c.prepare_cached("SELECT user_id FROM user_identifiers WHERE key = $1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })?;
        Ok(id.and_then(|s| UserId::parse(&s)))
    }

    async fn update_user_profile(
        &self,
        before: &User,
        after: &User,
        event: &Event,
    ) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let out = transactions::update_user_profile(&mut tx, before, after, event).await?;
        tx.commit(out).await
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::set_password(&mut tx, id, hash, now, event).await?;
        tx.commit(out).await
    }

    async fn recover_user(
        &self,
        id: UserId,
        hash: &PasswordHash,
        groups: &[GroupId],
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::recover_user(&mut tx, id, hash, groups, now, event).await?;
        tx.commit(out).await
    }

    async fn admin_can_sign_in(&self, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::admin_can_sign_in(&mut tx, now).await?;
        tx.commit(out).await
    }

    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::set_user_state(&mut tx, id, change, now, event).await?;
        tx.commit(out).await
    }

    async fn record_login(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let out = transactions::record_login(&mut tx, id, now, event).await?;
        tx.commit(out).await
    }

    async fn settle_password_attempt(
        &self,
        id: UserId,
        attempt: PasswordAttempt<'_>,
        now: Millis,
        event: &Event,
    ) -> StoreResult<Settled> {
        let mut tx = self.begin().await?;
        let out = transactions::settle_password_attempt(&mut tx, id, attempt, now, event).await?;
        tx.commit(out).await
    }

    async fn revoke_refresh_tokens(&self, id: UserId) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::revoke_refresh_tokens(&mut conn, id).await
    }

    async fn delete_user(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_user(&mut tx, id, now, event).await?;
        tx.commit(out).await
    }

    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>> {
        self.users_page(scope, query).await
    }

    async fn create_group(&self, group: &Group, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_group(&mut tx, group, event).await?;
        tx.commit(out).await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let text = sql::group_by_id();
        let id = id.to_string();
        // On the blocking pool: the member counts read a range per group.
        let row = self
            .direct
            .read_blocking(move |c| {
                Ok(c.prepare_cached(&text)?
                    .query_row([&id], |r| Ok(by_name(r, |n| sql::group_from(n))))
                    .optional()?)
            })
            .await?;
        row.transpose()
    }

    async fn find_group_by_key(&self, key: &str) -> StoreResult<Option<GroupId>> {
        let id: Option<String> = self.direct.read(|c| {
            c.prepare_cached("SELECT id FROM groups WHERE name_key = $1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })?;
        Ok(id.and_then(|s| GroupId::parse(&s)))
    }

    async fn update_group(&self, group: &Group, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::update_group(&mut tx, group, event).await?;
        tx.commit(out).await
    }

    async fn delete_group(&self, id: GroupId, now: Millis, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_group(&mut tx, id, now, event).await?;
        tx.commit(out).await
    }

    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>> {
        let list = ListSql::groups(scope, query, Dialect::Sqlite);
        fetch_page(&self.direct, list, query.page, None, |r| sql::group_from(r)).await
    }

    async fn add_members(
        &self,
        group: GroupId,
        users: &[UserId],
        event: &Event,
    ) -> StoreResult<()> {
        let users = users.to_vec();
        let event = event.clone();
        self.batch
            .write(move |c| {
                run_now(transactions::add_members(
                    &mut Direct(c),
                    group,
                    &users,
                    &event,
                ))
            })
            .await
    }

    async fn add_member_named(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
        event: &Event,
    ) -> StoreResult<MemberCheck> {
        // Resolved by the batch writer, in the transaction that inserts: its page cache
        // is never reset by its own commits, where a reader's is by every commit.
        let (gid, gkey) = (group.id.map(|g| g.to_string()), group.key.to_owned());
        let (uid, ukey) = (user.id.map(|u| u.to_string()), user.key.to_owned());
        let event = event.clone();
        // Made here, not on the writer's thread, which every change waits for.
        let row = audit::EventRow::new(&event);
        self.batch
            .write_add(move |c| {
                let resolved: Resolved = c.prepare_cached(sql::RESOLVE_GROUP_AND_USER)?.query_row(
                    rusqlite::params![gid, gkey, uid, ukey],
                    |r| {
                        Ok((
                            (r.get(0)?, r.get(1)?, r.get(2)?),
                            (r.get(3)?, r.get(4)?, r.get(5)?),
                        ))
                    },
                )?;
                let ((g, gseq, gname), (u, useq, uname)) = resolved;
                let group = g.as_deref().and_then(GroupId::parse);
                let user = u.as_deref().and_then(UserId::parse);
                let member = match (gseq, useq, group, user) {
                    (Some(gs), Some(us), Some(gid), Some(uid)) => {
                        let added = c
                            .prepare_cached(sql::INSERT_MEMBER_BY_KEYS)?
                            .execute([gs, us])?;
                        if added > 0 {
                            let (uname, gname) =
                                (uname.unwrap_or_default(), gname.unwrap_or_default());
                            if c.webhooks {
                                let event = event.group(gid).user(uid);
                                let names = (uname.as_str(), gname.as_str());
                                run_now(audit::record_named(&mut Direct(c), &event, names))?;
                            } else {
                                let ids = (g.unwrap_or_default(), u.unwrap_or_default());
                                c.defer_event(row.about((ids.1, uname), (ids.0, gname)));
                            }
                        }
                        true
                    }
                    _ => false,
                };
                Ok(MemberCheck {
                    group,
                    user,
                    member,
                })
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
        let event = event.clone();
        self.batch
            .write(move |c| {
                run_now(transactions::remove_member(
                    &mut Direct(c),
                    group,
                    user,
                    now,
                    &event,
                ))
            })
            .await
    }

    async fn is_member(&self, user: UserId, groups: &[GroupId]) -> StoreResult<bool> {
        let Some((text, params)) = sql::member_of_any(user, groups) else {
            return Ok(false);
        };
        self.direct.read(|c| {
            c.prepare_cached(&text)?
                .query_row(rusqlite::params_from_iter(&params), |r| r.get(0))
        })
    }

    /// Reads run on rusqlite connections, each statement from start to end without an
    /// await in between (lookups on the calling thread, scans on the blocking pool, which
    /// finishes them whether or not anyone waits).
    fn reads_are_cancel_safe(&self) -> bool {
        true
    }

    async fn check_member(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        self.check_member_here(group, user)
    }

    async fn add_children(
        &self,
        parent: GroupId,
        children: &[GroupId],
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::add_children(&mut tx, parent, children, event).await?;
        tx.commit(out).await
    }

    async fn remove_child(
        &self,
        parent: GroupId,
        child: GroupId,
        now: Millis,
        event: &Event,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::remove_child(&mut tx, parent, child, now, event).await?;
        tx.commit(out).await
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::insert_refresh_token(&mut conn, t).await
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Millis,
        event: &Event,
    ) -> StoreResult<RefreshUse> {
        let mut tx = self.begin().await?;
        let out = transactions::use_refresh_token(&mut tx, token_hash, now, event).await?;
        tx.commit(out).await
    }

    async fn revoke_refresh_family(&self, token_hash: &str, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::revoke_refresh_family(&mut tx, token_hash, event).await?;
        tx.commit(out).await
    }

    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_api_key(&mut tx, key, user, groups, event).await?;
        tx.commit(out).await
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

    async fn list_api_keys(&self, page: super::PageRequest) -> StoreResult<Page<ApiKey>> {
        fetch_page(&self.direct, ListSql::api_keys(), page, None, |r| {
            sql::api_key_from(r)
        })
        .await
    }

    async fn update_api_key(&self, key: &ApiKey, event: &Event) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::update_api_key(&mut tx, key, event).await?;
        tx.commit(out).await
    }

    async fn delete_api_key(&self, id: ApiKeyId, now: Millis, event: &Event) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_api_key(&mut tx, id, now, event).await?;
        tx.commit(out).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.direct.read(|c| {
            c.prepare_cached(sql::SIGNING_KEYS)?
                .query_map([], |r| {
                    Ok(StoredKey {
                        kid: r.get("kid")?,
                        algorithm: r.get("algorithm")?,
                        private_key: r.get("private_key")?,
                        public_key: r.get("public_key")?,
                        created: r.get("created")?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
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
        // Asked on a reader first: a poll with nothing to deliver (the usual case) takes
        // no write lock, and never waits behind a long write of another process.
        let due: bool = self.direct.read(|c| {
            c.prepare_cached(&audit::any_claimable_sql())?
                .query_row([now], |r| r.get(0))
        })?;
        if !due {
            return Ok(None);
        }
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
        let list = audit::list_sql(filter, query, Dialect::Sqlite);
        fetch_page(&self.direct, list, query.page, None, |r| {
            audit::record_from(r)
        })
        .await
    }
}
