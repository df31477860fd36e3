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
//! - **Refresh-token reuse** is one conditional `UPDATE ... WHERE NOT used ... RETURNING`.
//!   Two nodes spending the same token contend for its row lock; the loser re-evaluates
//!   the `WHERE` against the winner's committed row, updates nothing, finds the token
//!   used and revokes the family. The family revocation and the insertion of a token into
//!   that family take a per-family advisory lock, so a token issued to the winner in the
//!   same instant is stored revoked rather than escaping.
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

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Arguments, PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::filter_sql::{Dialect, SqlValue};
use super::import_match::{Decision, Known, Matcher};
use super::sql::{self, ListSql, custom_text, fk_or, parse_uuid, push_ids, unique_or};
use super::{
    GroupScope, ImportBatch, ImportStats, ListQuery, OnAccept, Page, PageRequest, PasswordAttempt,
    PoolStats, RefreshToken, RefreshUse, Settled, StateChange, Store, StoreError, StoreResult,
    StoredKey, UniqueField, UserScope,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::group::Group;
use crate::domain::ids::{
    ApiKeyId, GroupId, SYSTEM_ADMINISTRATORS_ID, SYSTEM_ADMINISTRATORS_NAME, UserId,
};
use crate::domain::names::name_key;
use crate::domain::user::{PasswordHash, User};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process unless the caller chooses.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// Advisory-lock class serializing group-graph writes (ASCII "GH" and 1).
const GRAPH_LOCK: i32 = 0x4748_0001;
/// Advisory-lock class serializing transactions that may remove an administrator.
const ADMIN_LOCK: i32 = 0x4748_0002;
/// Advisory-lock class serializing a refresh-token family's revocation and growth.
const FAMILY_LOCK: i32 = 0x4748_0003;

/// Rows per multi-row statement in imports (24 values a user row: well under
/// PostgreSQL's 65,535 bound parameters).
const IMPORT_CHUNK: usize = 500;

/// How often a transaction that hit a deadlock or serialization failure is retried.
const MAX_RETRIES: u32 = 4;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The second key of every advisory lock: a hash of the schema the store lives in.
    scope: i32,
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`, libpq-style parameters such
    /// as `options=-c search_path=...` accepted) with a pool of [`DEFAULT_POOL_SIZE`] and
    /// applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// Like [`PgStore::open`] with at most `pool_size` connections (at least 1).
    pub async fn open_with_pool_size(url: &str, pool_size: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
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
        })
    }

    /// Applies migrations only (for `gatehouse migrate`).
    pub async fn migrate(url: &str) -> StoreResult<()> {
        Self::open_with_pool_size(url, 1).await.map(|_| ())
    }

    /// Takes the advisory lock of `class` until the transaction ends.
    async fn lock(&self, conn: &mut PgConnection, class: i32) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(class)
            .bind(self.scope)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Takes the lock of one refresh-token family until the transaction ends.
    async fn lock_family(&self, conn: &mut PgConnection, family: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(FAMILY_LOCK)
            .bind(lock_key(family) ^ self.scope)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// One attempt at [`Store::import`], in one transaction, in multi-row statements of
    /// [`IMPORT_CHUNK`] rows (the same algorithm as the SQLite store's).
    async fn import_once(&self, batch: &ImportBatch) -> StoreResult<ImportStats> {
        let mut stats = ImportStats::default();
        let mut tx = self.pool.begin().await?;
        if !batch.children.is_empty() {
            self.lock(&mut tx, GRAPH_LOCK).await?;
        }
        // Users: read every user a record could be (by its names, or by its id when the
        // record gave one) and lock those rows until the transaction ends, so the
        // decision (module `import_match`) holds when it is acted on: a concurrent
        // rename or email change waits for this batch, and one committed just before
        // is what `FOR SHARE` returns. A name taken after the read makes a fresh
        // record's insert fail; `import` then runs the batch again. An existing user's
        // memberships go to that user; a conflict's are dropped.
        let mut matcher = Matcher::default();
        let mut remap: HashMap<UserId, UserId> = HashMap::new();
        let mut dropped: HashSet<UserId> = HashSet::new();
        let mut fresh: Vec<&User> = Vec::with_capacity(batch.users.len());
        for chunk in batch.users.chunks(IMPORT_CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|u| [name_key(&u.username), name_key(&u.email)])
                .collect();
            let given: Vec<String> = chunk
                .iter()
                .filter(|u| batch.ids_given.contains(&u.id))
                .map(|u| u.id.to_string())
                .collect();
            let rows = sqlx::query(
                "SELECT id, username_lc, email_lc FROM users WHERE id IN \
                 (SELECT user_id FROM user_identifiers WHERE key = ANY($1)) OR id = ANY($2) \
                 FOR SHARE",
            )
            .bind(&keys)
            .bind(&given)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let id: String = row.try_get("id")?;
                matcher.add(Known {
                    id: parse_uuid(&id, UserId::from_uuid)?,
                    username_key: row.try_get("username_lc")?,
                    email_key: row.try_get("email_lc")?,
                });
            }
            for user in chunk {
                match matcher.decide(
                    user,
                    batch.ids_given.contains(&user.id),
                    !batch.existing_only.contains(&user.id),
                ) {
                    Decision::Fresh => fresh.push(user),
                    Decision::Existing(id) => {
                        remap.insert(user.id, id);
                        stats.users_skipped += 1;
                    }
                    Decision::Conflict(reason) => {
                        dropped.insert(user.id);
                        stats.conflicts.push((user.id, reason));
                    }
                }
            }
        }
        for chunk in fresh.chunks(IMPORT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO users (id, username, email, first_name, last_name, username_lc, \
                 email_lc, first_name_lc, last_name_lc, timezone, language, custom, provider_type, \
                 password_hash, password_change_frequency, password_expirable, suspended, locked, \
                 password_reset_required, opt_out_of_notifications, created, modified, expiry, \
                 password_changed) ",
            );
            q.push_values(chunk, |mut b, u| {
                b.push_bind(u.id.to_string())
                    .push_bind(u.username.clone())
                    .push_bind(u.email.clone())
                    .push_bind(u.first_name.clone())
                    .push_bind(u.last_name.clone())
                    .push_bind(name_key(&u.username))
                    .push_bind(name_key(&u.email))
                    .push_bind(u.first_name.as_deref().map(name_key))
                    .push_bind(u.last_name.as_deref().map(name_key))
                    .push_bind(u.timezone.clone())
                    .push_bind(u.language.clone())
                    .push_bind(custom_text(&u.custom))
                    .push_bind(u.provider.as_str())
                    .push_bind(u.password_hash.as_ref().map(|h| h.0.clone()))
                    .push_bind(u.password_change_frequency)
                    .push_bind(u.password_expirable)
                    .push_bind(u.suspended)
                    .push_bind(u.locked)
                    .push_bind(u.password_reset_flag)
                    .push_bind(u.opt_out_of_notifications)
                    .push_bind(u.created)
                    .push_bind(u.modified)
                    .push_bind(u.expiry)
                    .push_bind(u.password_changed);
            });
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::Username))?;
            let pairs: Vec<(String, String)> = chunk
                .iter()
                .flat_map(|u| {
                    let (uk, ek) = (name_key(&u.username), name_key(&u.email));
                    let id = u.id.to_string();
                    let email = (ek != uk).then(|| (ek, id.clone()));
                    std::iter::once((uk, id)).chain(email)
                })
                .collect();
            let mut q = QueryBuilder::<Postgres>::new(sql::IMPORT_IDENTIFIERS_HEAD);
            q.push_values(&pairs, |mut b, (k, id)| {
                b.push_bind(k.as_str()).push_bind(id.as_str());
            });
            q.push(sql::IMPORT_IDENTIFIERS_TAIL);
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::Email))?;
            stats.users += chunk.len() as u64;
        }
        for group in &batch.groups {
            let done = sqlx::query(sql::INSERT_GROUP_IF_NEW)
                .bind(group.id.to_string())
                .bind(&group.name)
                .bind(name_key(&group.name))
                .bind(&group.description)
                .bind(group.kind.as_str())
                .bind(custom_text(&group.custom))
                .bind(group.created)
                .bind(group.modified)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                stats.groups_skipped += 1;
                continue;
            }
            sqlx::query(sql::INSERT_SELF_CLOSURE)
                .bind(group.id.to_string())
                .execute(&mut *tx)
                .await?;
            stats.groups += 1;
        }
        let members: Vec<(String, String)> = batch
            .members
            .iter()
            .filter(|(_, u)| !dropped.contains(u))
            .map(|(g, u)| (g.to_string(), remap.get(u).unwrap_or(u).to_string()))
            .collect();
        for chunk in members.chunks(IMPORT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(sql::IMPORT_MEMBERS_HEAD);
            q.push_values(chunk, |mut b, (g, u)| {
                b.push_bind(g.as_str()).push_bind(u.as_str());
            });
            q.push(sql::IMPORT_MEMBERS_TAIL);
            let done = q
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(fk_or)?;
            stats.members += done.rows_affected();
        }
        for (parent, child) in &batch.children {
            if link_child(&mut tx, *parent, *child).await? {
                stats.children += 1;
            }
        }
        tx.commit().await?;
        Ok(stats)
    }

    /// Reads one API key by a unique column (a fixed name, never client input).
    async fn api_key_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<ApiKey>> {
        let text = format!(
            "SELECT {} FROM api_keys WHERE {column} = $1",
            sql::API_KEY_COLUMNS
        );
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

/// A stable 32-bit key for an advisory lock (FNV-1a; the same on every node).
fn lock_key(s: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i32::from_be_bytes(h.to_be_bytes())
}

/// Whether an error is a deadlock or serialization failure, after which the whole
/// transaction may simply run again.
fn is_transient(e: &StoreError) -> bool {
    let StoreError::Other(inner) = e else {
        return false;
    };
    match inner.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Runs `attempt` (one whole transaction) again after a transient failure.
async fn retrying<T, F, Fut>(mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if tries < MAX_RETRIES && is_transient(&e) => {
                tries += 1;
                tracing::debug!(error = %e, tries, "retrying a transaction");
            }
            other => return other,
        }
    }
}

/// PostgreSQL text cannot hold NUL, so no stored value contains one (the domain refuses
/// control characters in what it writes). A NUL in a value the client searches with is
/// swapped for U+FFFD, which keeps the query valid and, like the NUL, matches nothing
/// stored; sending it as is would fail the whole query.
fn pg_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn bind_all(params: &[SqlValue]) -> Result<PgArguments, sqlx::Error> {
    let mut args = PgArguments::default();
    for p in params {
        match p {
            SqlValue::Null => args.add(None::<i64>),
            SqlValue::Bool(b) => args.add(*b),
            SqlValue::Int(i) => args.add(*i),
            SqlValue::Real(r) => args.add(*r),
            SqlValue::Text(s) => args.add(pg_text(s).into_owned()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

impl sql::RowColumns for PgRow {
    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get(column)?)
    }
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

/// Inserts the identifier keys of a user, naming which field collided.
async fn insert_identifiers(conn: &mut PgConnection, user: &User) -> StoreResult<()> {
    let id = user.id.to_string();
    let username_key = name_key(&user.username);
    let email_key = name_key(&user.email);
    sqlx::query(sql::INSERT_IDENTIFIER)
        .bind(&username_key)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_or(e, UniqueField::Username))?;
    if email_key != username_key {
        sqlx::query(sql::INSERT_IDENTIFIER)
            .bind(&email_key)
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(|e| unique_or(e, UniqueField::Email))?;
    }
    Ok(())
}

/// Inserts a user row and its identifier keys.
async fn insert_user(conn: &mut PgConnection, user: &User) -> StoreResult<()> {
    sqlx::query(sql::INSERT_USER)
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(name_key(&user.username))
        .bind(name_key(&user.email))
        .bind(user.first_name.as_deref().map(name_key))
        .bind(user.last_name.as_deref().map(name_key))
        .bind(&user.timezone)
        .bind(&user.language)
        .bind(custom_text(&user.custom))
        .bind(user.provider.as_str())
        .bind(user.password_hash.as_ref().map(|h| h.0.as_str()))
        .bind(user.password_change_frequency)
        .bind(user.password_expirable)
        .bind(user.suspended)
        .bind(user.locked)
        .bind(user.password_reset_flag)
        .bind(user.opt_out_of_notifications)
        .bind(user.created)
        .bind(user.modified)
        .bind(user.expiry)
        .bind(user.password_changed)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_or(e, UniqueField::Username))?;
    insert_identifiers(conn, user).await
}

/// Makes `user` a direct member of `groups`, in a fixed order so that two transactions
/// adding overlapping sets cannot deadlock on each other's rows.
async fn insert_memberships(
    conn: &mut PgConnection,
    user: UserId,
    groups: &[GroupId],
) -> StoreResult<()> {
    let mut ids: Vec<String> = groups.iter().map(ToString::to_string).collect();
    ids.sort();
    ids.dedup();
    let u = user.to_string();
    for g in &ids {
        sqlx::query(sql::INSERT_MEMBER)
            .bind(g)
            .bind(&u)
            .execute(&mut *conn)
            .await
            .map_err(fk_or)?;
    }
    Ok(())
}

/// Whether `user` is, directly or through child groups, in System Administrators.
/// Reads a user in a transaction; with `lock`, `FOR UPDATE`, so that a decision made on
/// the row holds until the transaction ends.
async fn read_user(conn: &mut PgConnection, id: UserId, lock: bool) -> StoreResult<Option<User>> {
    let text = format!(
        "SELECT {} FROM users u WHERE u.id = $1{}",
        sql::USER_COLUMNS,
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(&text)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

async fn is_admin(conn: &mut PgConnection, user: UserId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(sql::IS_ADMIN)
        .bind(user.to_string())
        .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
        .fetch_one(&mut *conn)
        .await?)
}

/// Whether `group` is System Administrators or lies below it.
async fn is_under_admins(conn: &mut PgConnection, group: GroupId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(sql::IS_UNDER)
        .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
        .bind(group.to_string())
        .fetch_one(&mut *conn)
        .await?)
}

/// Refuses the transaction if System Administrators has no active (not suspended, not
/// expired) member left. Call it only while holding [`ADMIN_LOCK`].
async fn admin_guard(conn: &mut PgConnection, now: Millis) -> StoreResult<()> {
    let left: bool = sqlx::query_scalar(sql::ADMIN_LEFT)
        .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    if left {
        Ok(())
    } else {
        Err(StoreError::LastAdmin)
    }
}

/// Adds the edge parent → child and its closure rows; `Ok(false)` if it existed. Refuses
/// an edge that would make a group contain itself. Call it only while holding
/// [`GRAPH_LOCK`], so that the cycle check sees every other node's committed edges.
async fn link_child(conn: &mut PgConnection, parent: GroupId, child: GroupId) -> StoreResult<bool> {
    if child == parent {
        return Err(StoreError::Cycle);
    }
    let (p, c) = (parent.to_string(), child.to_string());
    let cycle: bool = sqlx::query_scalar(sql::IS_UNDER)
        .bind(&c)
        .bind(&p)
        .fetch_one(&mut *conn)
        .await?;
    if cycle {
        return Err(StoreError::Cycle);
    }
    let added = sqlx::query(sql::INSERT_CHILD)
        .bind(&p)
        .bind(&c)
        .execute(&mut *conn)
        .await
        .map_err(fk_or)?;
    if added.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(sql::EXTEND_CLOSURE)
        .bind(&p)
        .bind(&c)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Rebuilds the closure rows of every group at or below `top` from the edges. Called,
/// holding [`GRAPH_LOCK`], after an edge into that subtree went away.
async fn rebuild_closure_below(conn: &mut PgConnection, top: &[String]) -> StoreResult<()> {
    let mut below: Vec<String> = Vec::new();
    for t in top {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT descendant_id FROM group_closure WHERE ancestor_id = $1")
                .bind(t)
                .fetch_all(&mut *conn)
                .await?;
        below.extend(ids);
    }
    below.sort();
    below.dedup();
    for d in &below {
        sqlx::query(sql::CLEAR_ANCESTORS)
            .bind(d)
            .execute(&mut *conn)
            .await?;
        sqlx::query(sql::INSERT_ANCESTORS)
            .bind(d)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![super::pool_stats("main", &self.pool)]
    }

    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let id = SYSTEM_ADMINISTRATORS_ID.to_string();
            sqlx::query(sql::INSERT_SYSTEM_GROUP)
                .bind(&id)
                .bind(SYSTEM_ADMINISTRATORS_NAME)
                .bind(name_key(SYSTEM_ADMINISTRATORS_NAME))
                .bind("Members may call every endpoint.")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::INSERT_SELF_CLOSURE)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_user(&self, user: &User, groups: &[GroupId]) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            insert_user(&mut tx, user).await?;
            insert_memberships(&mut tx, user.id, groups).await?;
            tx.commit().await?;
            Ok(())
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
        let text = format!("SELECT {} FROM users u WHERE u.id = $1", sql::USER_COLUMNS);
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

    async fn update_user_profile(&self, before: &User, after: &User) -> StoreResult<User> {
        let id = after.id;
        let update = sql::profile_update(before, after);
        let update = &update;
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let guards = sql::sets_expiry(before, after);
            if guards {
                self.lock(&mut tx, ADMIN_LOCK).await?;
            }
            if let Some((text, params)) = update {
                let done = sqlx::query_with(text, bind_all(params)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique_or(e, UniqueField::Username))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            let stored = read_user(&mut tx, id, false)
                .await?
                .ok_or(StoreError::NotFound)?;
            if sql::renames(before, after) {
                sqlx::query(sql::DELETE_IDENTIFIERS)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                insert_identifiers(&mut tx, &stored).await?;
            }
            if guards && is_admin(&mut tx, id).await? {
                admin_guard(&mut tx, Millis::MAX).await?;
            }
            tx.commit().await?;
            Ok(stored)
        })
        .await
    }

    async fn set_password(&self, id: UserId, hash: &PasswordHash, now: Millis) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(sql::SET_PASSWORD)
                .bind(id.to_string())
                .bind(&hash.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(sql::REVOKE_USER_TOKENS)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn recover_user(
        &self,
        id: UserId,
        hash: &PasswordHash,
        groups: &[GroupId],
        now: Millis,
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(sql::RECOVER_USER)
                .bind(id.to_string())
                .bind(&hash.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(sql::REVOKE_USER_TOKENS)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            insert_memberships(&mut tx, id, groups).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn admin_can_sign_in(&self, now: Millis) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(sql::ADMIN_CAN_SIGN_IN)
            .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
    ) -> StoreResult<()> {
        let set = sql::state_change_set(change);
        let text = format!("UPDATE users SET {set}, modified = $2 WHERE id = $1");
        let text = text.as_str();
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let removes_admin = change == StateChange::Suspend;
            if removes_admin {
                self.lock(&mut tx, ADMIN_LOCK).await?;
            }
            let done = sqlx::query(text)
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if removes_admin && is_admin(&mut tx, id).await? {
                admin_guard(&mut tx, now).await?;
            }
            if sql::revokes_refresh_tokens(change) {
                sqlx::query(sql::REVOKE_USER_TOKENS)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn record_login(&self, id: UserId, now: Millis) -> StoreResult<User> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(sql::RECORD_LOGIN_SUCCESS)
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let user = read_user(&mut tx, id, false)
                .await?
                .ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(user)
        })
        .await
    }

    async fn settle_password_attempt(
        &self,
        id: UserId,
        attempt: PasswordAttempt<'_>,
        now: Millis,
    ) -> StoreResult<Settled> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            // `FOR UPDATE`: every other attempt (on any node) waits for this one to end
            // and then reads the row as this one left it.
            let user = read_user(&mut tx, id, true)
                .await?
                .ok_or(StoreError::NotFound)?;
            let key = id.to_string();
            let accepted = attempt.accepted_by(&user, now);
            if accepted {
                match attempt.on_accept {
                    OnAccept::Login => {
                        sqlx::query(sql::RECORD_LOGIN_SUCCESS)
                            .bind(&key)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    OnAccept::SetPassword(hash) => {
                        sqlx::query(sql::SET_PASSWORD)
                            .bind(&key)
                            .bind(&hash.0)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(sql::REVOKE_USER_TOKENS)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(sql::RESET_FAILURES)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            } else if user.password_hash.is_some() {
                sqlx::query(sql::RECORD_LOGIN_FAILURE)
                    .bind(&key)
                    .bind(now)
                    .bind(i64::from(attempt.lock_after))
                    .execute(&mut *tx)
                    .await?;
            }
            let after = read_user(&mut tx, id, false)
                .await?
                .ok_or(StoreError::NotFound)?;
            let newly_locked = after.locked && !user.locked;
            if newly_locked {
                sqlx::query(sql::REVOKE_USER_TOKENS)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(if accepted {
                Settled::Accepted(after)
            } else {
                Settled::Refused {
                    user: after,
                    newly_locked,
                }
            })
        })
        .await
    }

    async fn revoke_refresh_tokens(&self, id: UserId) -> StoreResult<()> {
        sqlx::query(sql::REVOKE_USER_TOKENS)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_user(&self, id: UserId, now: Millis) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            self.lock(&mut tx, ADMIN_LOCK).await?;
            let was_admin = is_admin(&mut tx, id).await?;
            let done = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            if was_admin {
                admin_guard(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>> {
        let list = ListSql::users(scope, query, Dialect::Postgres);
        fetch_page(&self.pool, list, query.page, user_from_row).await
    }

    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query(sql::INSERT_GROUP)
                .bind(group.id.to_string())
                .bind(&group.name)
                .bind(name_key(&group.name))
                .bind(&group.description)
                .bind(group.kind.as_str())
                .bind(custom_text(&group.custom))
                .bind(group.created)
                .bind(group.modified)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::GroupName))?;
            sqlx::query(sql::INSERT_SELF_CLOSURE)
                .bind(group.id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
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
        let text = format!(
            "SELECT {} FROM groups g WHERE g.id = $1",
            sql::GROUP_COLUMNS
        );
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

    async fn update_group(&self, group: &Group) -> StoreResult<()> {
        let done = sqlx::query(sql::UPDATE_GROUP)
            .bind(group.id.to_string())
            .bind(&group.name)
            .bind(name_key(&group.name))
            .bind(&group.description)
            .bind(custom_text(&group.custom))
            .bind(group.modified)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_or(e, UniqueField::GroupName))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_group(&self, id: GroupId, now: Millis) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            self.lock(&mut tx, GRAPH_LOCK).await?;
            self.lock(&mut tx, ADMIN_LOCK).await?;
            let admin_related = is_under_admins(&mut tx, id).await?;
            let children: Vec<String> =
                sqlx::query_scalar("SELECT child_id FROM group_children WHERE parent_id = $1")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
            let done = sqlx::query("DELETE FROM groups WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            rebuild_closure_below(&mut tx, &children).await?;
            if admin_related {
                admin_guard(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>> {
        let list = ListSql::groups(scope, query, Dialect::Postgres);
        fetch_page(&self.pool, list, query.page, group_from_row).await
    }

    async fn add_members(&self, group: GroupId, users: &[UserId]) -> StoreResult<()> {
        // A fixed order, so that two transactions adding overlapping sets to one group
        // cannot deadlock on each other's rows.
        let mut ids: Vec<String> = users.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        let ids = ids.as_slice();
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            let g = group.to_string();
            for u in ids {
                sqlx::query(sql::INSERT_MEMBER)
                    .bind(&g)
                    .bind(u)
                    .execute(&mut *tx)
                    .await
                    .map_err(fk_or)?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn remove_member(&self, group: GroupId, user: UserId, now: Millis) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            self.lock(&mut tx, ADMIN_LOCK).await?;
            let done = sqlx::query(sql::DELETE_MEMBER)
                .bind(group.to_string())
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            if is_under_admins(&mut tx, group).await? {
                admin_guard(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn is_member(&self, user: UserId, groups: &[GroupId]) -> StoreResult<bool> {
        if groups.is_empty() {
            return Ok(false);
        }
        let mut params = vec![SqlValue::Text(user.to_string())];
        let set = push_ids(&mut params, groups);
        let text = format!("{} IN ({set}))", sql::IS_MEMBER_OF_ANY_HEAD);
        Ok(sqlx::query_scalar_with(&text, bind_all(&params)?)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn add_children(&self, parent: GroupId, children: &[GroupId]) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            // Before the cycle check: see the module documentation.
            self.lock(&mut tx, GRAPH_LOCK).await?;
            for child in children {
                link_child(&mut tx, parent, *child).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn import(&self, batch: &ImportBatch) -> StoreResult<ImportStats> {
        // A name taken by another node between this batch's check and its insert fails
        // the attempt; the next attempt's check sees it and skips it, as a rerun would.
        let mut attempts = 0;
        loop {
            match retrying(|| self.import_once(batch)).await {
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
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            self.lock(&mut tx, GRAPH_LOCK).await?;
            self.lock(&mut tx, ADMIN_LOCK).await?;
            let done =
                sqlx::query("DELETE FROM group_children WHERE parent_id = $1 AND child_id = $2")
                    .bind(parent.to_string())
                    .bind(child.to_string())
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let admin_related = is_under_admins(&mut tx, parent).await?;
            rebuild_closure_below(&mut tx, &[child.to_string()]).await?;
            if admin_related {
                admin_guard(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            // Serialized with a revocation of the same family: see the module docs.
            self.lock_family(&mut tx, &t.family).await?;
            sqlx::query(sql::INSERT_REFRESH_TOKEN)
                .bind(&t.token_hash)
                .bind(&t.family)
                .bind(t.user_id.to_string())
                .bind(&t.scope)
                .bind(t.created)
                .bind(t.expires)
                .execute(&mut *tx)
                .await
                .map_err(fk_or)?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, now: Millis) -> StoreResult<RefreshUse> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            // Spends the token if it is live. Of two nodes racing here, the second waits
            // for the first's row lock and then finds `used` set, so it updates nothing.
            let spent = sqlx::query(
                "UPDATE refresh_tokens SET used = TRUE \
                 WHERE token_hash = $1 AND NOT used AND NOT revoked AND expires > $2 \
                 RETURNING token_hash, family, user_id, scope, created, expires",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = spent {
                let token = RefreshToken {
                    token_hash: row.try_get("token_hash")?,
                    family: row.try_get("family")?,
                    user_id: parse_uuid(row.try_get("user_id")?, UserId::from_uuid)?,
                    scope: row.try_get("scope")?,
                    created: row.try_get("created")?,
                    expires: row.try_get("expires")?,
                };
                tx.commit().await?;
                return Ok(RefreshUse::Valid(token));
            }
            let row = sqlx::query(
                "SELECT family, used, revoked FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(RefreshUse::Invalid);
            };
            let used: bool = row.try_get("used")?;
            let revoked: bool = row.try_get("revoked")?;
            if revoked || !used {
                // Revoked, or live but expired.
                return Ok(RefreshUse::Invalid);
            }
            let family: String = row.try_get("family")?;
            self.lock_family(&mut tx, &family).await?;
            sqlx::query(sql::REVOKE_FAMILY)
                .bind(&family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RefreshUse::Reused)
        })
        .await
    }

    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
    ) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            insert_user(&mut tx, user).await?;
            insert_memberships(&mut tx, user.id, groups).await?;
            sqlx::query(sql::INSERT_API_KEY)
                .bind(key.id.to_string())
                .bind(&key.name)
                .bind(name_key(&key.name))
                .bind(&key.description)
                .bind(key.enabled)
                .bind(&key.client_id)
                .bind(&key.secret_hash)
                .bind(key.user_id.to_string())
                .bind(key.created)
                .bind(key.created_by.map(|u| u.to_string()))
                .bind(key.modified)
                .bind(key.modified_by.map(|u| u.to_string()))
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::ApiKeyName))?;
            tx.commit().await?;
            Ok(())
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

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            if !key.enabled {
                self.lock(&mut tx, ADMIN_LOCK).await?;
            }
            let done = sqlx::query(sql::UPDATE_API_KEY)
                .bind(key.id.to_string())
                .bind(&key.name)
                .bind(name_key(&key.name))
                .bind(&key.description)
                .bind(key.enabled)
                .bind(key.modified)
                .bind(key.modified_by.map(|u| u.to_string()))
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::ApiKeyName))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(sql::RENAME_API_KEY_USER)
                .bind(key.user_id.to_string())
                .bind(&key.name)
                .bind(key.modified)
                .bind(name_key(&key.name))
                .execute(&mut *tx)
                .await?;
            if !key.enabled && is_admin(&mut tx, key.user_id).await? {
                admin_guard(&mut tx, key.modified).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn delete_api_key(&self, id: ApiKeyId, now: Millis) -> StoreResult<bool> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await?;
            self.lock(&mut tx, ADMIN_LOCK).await?;
            let user: Option<String> =
                sqlx::query_scalar("SELECT user_id FROM api_keys WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(user) = user else {
                return Ok(false);
            };
            let user_id = parse_uuid(&user, UserId::from_uuid)?;
            let was_admin = is_admin(&mut tx, user_id).await?;
            // The key row goes with its user (ON DELETE CASCADE).
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(&user)
                .execute(&mut *tx)
                .await?;
            if was_admin {
                admin_guard(&mut tx, now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, public_key, created FROM signing_keys \
             ORDER BY created DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
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

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn lock_keys_are_stable_across_builds() {
        // Nodes of different builds must agree on these, so they are pinned.
        assert_eq!(lock_key("public"), -862_940_288);
        assert_ne!(lock_key("public"), lock_key("gh_1"));
    }
}
