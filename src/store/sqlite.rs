//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One writer connection and a small pool of read-only connections over one WAL-mode
//! database file. A single writer means our own writes never fight over SQLite's lock;
//! WAL lets reads go on while it writes. `synchronous=FULL` makes every acknowledged
//! commit durable across a power loss.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::filter_sql::{self, Columns, Dialect, SqlValue};
use super::{
    GroupColumns, GroupScope, ImportBatch, ImportStats, ListQuery, LoginOutcome, Page,
    RefreshToken, RefreshUse, StateChange, Store, StoreError, StoreResult, StoredKey, UniqueField,
    UserColumns, UserScope,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{
    ApiKeyId, GroupId, SYSTEM_ADMINISTRATORS_ID, SYSTEM_ADMINISTRATORS_NAME, UserId,
};
use crate::domain::names::name_key;
use crate::domain::user::{PasswordHash, Provider, User};

/// Rows per multi-row statement in imports (24 values a user row: well under SQLite's
/// 32,766 bound parameters).
const IMPORT_CHUNK: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = if in_memory {
            // Each in-memory connection is its own database: share the writer.
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self { writer, reader })
    }

    /// Applies migrations only (for `gatehouse migrate`).
    pub async fn migrate(url: &str) -> StoreResult<()> {
        Self::open(url).await.map(|_| ())
    }
}

type Param = SqlValue;

fn bind_all(params: &[Param]) -> SqliteArguments<'_> {
    let mut args = SqliteArguments::default();
    for p in params {
        // Adding a plain value argument to SQLite cannot fail.
        let _ = match p {
            SqlValue::Null => args.add(None::<i64>),
            SqlValue::Bool(b) => args.add(*b),
            SqlValue::Int(i) => args.add(*i),
            SqlValue::Real(r) => args.add(*r),
            SqlValue::Text(s) => args.add(s.as_str()),
        };
    }
    args
}

/// Pushes a parameter and returns its `$N` placeholder.
fn push(params: &mut Vec<Param>, p: Param) -> String {
    params.push(p);
    format!("${}", params.len())
}

/// Placeholders for a list of group ids, e.g. `$3, $4`.
fn push_ids(params: &mut Vec<Param>, ids: &[GroupId]) -> String {
    ids.iter()
        .map(|id| push(params, Param::Text(id.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern and wraps it in `%`.
fn contains_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    // Unicode lower case, like the stored `name_key`. (SQLite's lower() folds ASCII
    // only, so a one- or two-letter non-ASCII user search can miss; longer ones go
    // through the trigram index, which folds Unicode.)
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn unique_or(e: sqlx::Error, field: UniqueField) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Unique(field);
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound;
        }
    }
    e.into()
}

fn fk_or(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_foreign_key_violation() {
            return StoreError::NotFound;
        }
    }
    e.into()
}

const USER_COLUMNS: &str = "u.id, u.username, u.email, u.first_name, u.last_name, u.timezone, \
    u.language, u.custom, u.provider_type, u.password_hash, u.password_change_frequency, \
    u.password_expirable, u.suspended, u.locked, u.password_reset_required, \
    u.opt_out_of_notifications, u.created, u.modified, u.last_login, u.last_failed_login, \
    u.expiry, u.password_changed, u.failed_login_attempts, u.failed_since_success, \
    u.successful_login_attempts, u.token_version";

const GROUP_COLUMNS: &str = "g.id, g.name, g.description, g.type, g.custom, g.created, g.modified, \
    (SELECT COUNT(*) FROM group_members gm WHERE gm.group_id = g.id) AS user_count, \
    (SELECT COUNT(*) FROM group_children gcc WHERE gcc.parent_id = g.id) AS child_group_count";

fn parse_uuid<T>(s: &str, wrap: fn(uuid::Uuid) -> T) -> Result<T, sqlx::Error> {
    uuid::Uuid::parse_str(s)
        .map(wrap)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn parse_custom(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

fn user_from_row(row: &SqliteRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: parse_uuid(row.try_get("id")?, UserId::from_uuid)?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        timezone: row.try_get("timezone")?,
        language: row.try_get("language")?,
        custom: parse_custom(row.try_get("custom")?),
        provider: Provider::from_stored(row.try_get("provider_type")?),
        password_hash: row
            .try_get::<Option<String>, _>("password_hash")?
            .map(PasswordHash),
        password_change_frequency: row.try_get("password_change_frequency")?,
        password_expirable: row.try_get("password_expirable")?,
        suspended: row.try_get("suspended")?,
        locked: row.try_get("locked")?,
        password_reset_flag: row.try_get("password_reset_required")?,
        opt_out_of_notifications: row.try_get("opt_out_of_notifications")?,
        created: row.try_get("created")?,
        modified: row.try_get("modified")?,
        last_login: row.try_get("last_login")?,
        last_failed_login: row.try_get("last_failed_login")?,
        expiry: row.try_get("expiry")?,
        password_changed: row.try_get("password_changed")?,
        failed_login_attempts: row.try_get("failed_login_attempts")?,
        failed_since_success: row.try_get("failed_since_success")?,
        successful_login_attempts: row.try_get("successful_login_attempts")?,
        token_version: row.try_get("token_version")?,
    })
}

fn group_from_row(row: &SqliteRow) -> Result<Group, sqlx::Error> {
    let kind: String = row.try_get("type")?;
    Ok(Group {
        id: parse_uuid(row.try_get("id")?, GroupId::from_uuid)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        kind: GroupType::parse(&kind).unwrap_or(GroupType::Contensis),
        custom: parse_custom(row.try_get("custom")?),
        created: row.try_get("created")?,
        modified: row.try_get("modified")?,
        user_count: row.try_get("user_count")?,
        child_group_count: row.try_get("child_group_count")?,
    })
}

fn custom_text(custom: &Map<String, Value>) -> String {
    serde_json::to_string(custom).unwrap_or_else(|_| "{}".to_owned())
}

/// Inserts the identifier keys of a user, naming which field collided.
async fn insert_identifiers(conn: &mut SqliteConnection, user: &User) -> StoreResult<()> {
    let id = user.id.to_string();
    let username_key = name_key(&user.username);
    let email_key = name_key(&user.email);
    sqlx::query("INSERT INTO user_identifiers (key, user_id) VALUES ($1, $2)")
        .bind(&username_key)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_or(e, UniqueField::Username))?;
    if email_key != username_key {
        sqlx::query("INSERT INTO user_identifiers (key, user_id) VALUES ($1, $2)")
            .bind(&email_key)
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(|e| unique_or(e, UniqueField::Email))?;
    }
    Ok(())
}

/// Inserts a user row and its identifier keys.
async fn insert_user(conn: &mut SqliteConnection, user: &User) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, username, email, first_name, last_name, username_lc, email_lc, \
             first_name_lc, last_name_lc, timezone, language, \
             custom, provider_type, password_hash, password_change_frequency, password_expirable, \
             suspended, locked, password_reset_required, opt_out_of_notifications, created, \
             modified, expiry, password_changed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24)",
    )
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

const API_KEY_COLUMNS: &str = "id, name, description, enabled, client_id, secret_hash, user_id, \
    created, created_by, modified, modified_by";

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKey, sqlx::Error> {
    let opt_user = |v: Option<String>| v.and_then(|s| UserId::parse(&s));
    Ok(ApiKey {
        id: parse_uuid(row.try_get("id")?, ApiKeyId::from_uuid)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        enabled: row.try_get("enabled")?,
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        user_id: parse_uuid(row.try_get("user_id")?, UserId::from_uuid)?,
        created: row.try_get("created")?,
        created_by: opt_user(row.try_get("created_by")?),
        modified: row.try_get("modified")?,
        modified_by: opt_user(row.try_get("modified_by")?),
    })
}

impl SqliteStore {
    /// Reads one API key by a unique column (a fixed name, never client input).
    async fn api_key_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE {column} = $1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(api_key_from_row).transpose()?)
    }
}

/// Whether `user` is, directly or through child groups, in System Administrators.
async fn is_admin(conn: &mut SqliteConnection, user: UserId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM group_members m JOIN group_closure c \
         ON c.descendant_id = m.group_id WHERE m.user_id = $1 AND c.ancestor_id = $2)",
    )
    .bind(user.to_string())
    .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// Whether `group` is System Administrators or lies below it.
async fn is_under_admins(conn: &mut SqliteConnection, group: GroupId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM group_closure WHERE ancestor_id = $1 AND descendant_id = $2)",
    )
    .bind(SYSTEM_ADMINISTRATORS_ID.to_string())
    .bind(group.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// Refuses the transaction if System Administrators has no active (not suspended, not
/// expired) member left.
async fn admin_guard(conn: &mut SqliteConnection, now: Millis) -> StoreResult<()> {
    let left: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM group_closure c JOIN group_members m \
         ON m.group_id = c.descendant_id JOIN users u ON u.id = m.user_id \
         WHERE c.ancestor_id = $1 AND u.suspended = 0 AND (u.expiry IS NULL OR u.expiry > $2))",
    )
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

/// Adds the edge parent → child and its closure rows; `Ok(false)` if it existed.
/// Refuses an edge that would make a group contain itself.
async fn link_child(
    conn: &mut SqliteConnection,
    parent: GroupId,
    child: GroupId,
) -> StoreResult<bool> {
    if child == parent {
        return Err(StoreError::Cycle);
    }
    let (p, c) = (parent.to_string(), child.to_string());
    let cycle: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM group_closure WHERE ancestor_id = $1 AND descendant_id = $2)",
    )
    .bind(&c)
    .bind(&p)
    .fetch_one(&mut *conn)
    .await?;
    if cycle {
        return Err(StoreError::Cycle);
    }
    let added =
        sqlx::query("INSERT OR IGNORE INTO group_children (parent_id, child_id) VALUES ($1, $2)")
            .bind(&p)
            .bind(&c)
            .execute(&mut *conn)
            .await
            .map_err(fk_or)?;
    if added.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT OR IGNORE INTO group_closure (ancestor_id, descendant_id) \
         SELECT a.ancestor_id, d.descendant_id FROM group_closure a, group_closure d \
         WHERE a.descendant_id = $1 AND d.ancestor_id = $2",
    )
    .bind(&p)
    .bind(&c)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Rebuilds the closure rows of every group at or below `top` from the edges. Called
/// after an edge into that subtree went away; cost is the subtree size times its depth.
async fn rebuild_closure_below(conn: &mut SqliteConnection, top: &[String]) -> StoreResult<()> {
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
        sqlx::query("DELETE FROM group_closure WHERE descendant_id = $1 AND ancestor_id <> $1")
            .bind(d)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "WITH RECURSIVE up(a) AS ( \
                SELECT parent_id FROM group_children WHERE child_id = $1 \
                UNION SELECT gc.parent_id FROM group_children gc JOIN up ON gc.child_id = up.a) \
             INSERT OR IGNORE INTO group_closure (ancestor_id, descendant_id) SELECT a, $1 FROM up",
        )
        .bind(d)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Where a list's `q` looks: a full-text index (for users), and the columns a plain
/// `LIKE` scans when there is no index or the term is too short for trigrams.
struct TextSearch {
    fts: Option<(&'static str, &'static str)>,
    columns: &'static [&'static str],
}

const USER_SEARCH: TextSearch = TextSearch {
    fts: Some(("users_fts", "u.seq")),
    columns: &[
        "u.username_lc",
        "u.email_lc",
        "u.first_name_lc",
        "u.last_name_lc",
    ],
};

const GROUP_SEARCH: TextSearch = TextSearch {
    fts: None,
    columns: &["g.name_key"],
};

/// Quotes a search term as one FTS5 phrase (doubling any `"`), so no FTS5 syntax in the
/// term is interpreted.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// `WHERE` terms and `ORDER BY` for a list's `q`, filter and ordering.
fn list_terms(
    query: &ListQuery,
    cols: &dyn Columns,
    search: &TextSearch,
    default_order: &str,
    tie: &str,
    wheres: &mut Vec<String>,
    params: &mut Vec<Param>,
) -> String {
    if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
        match search.fts {
            // Trigram matching needs three characters.
            Some((table, key)) if q.chars().count() >= 3 => {
                let p = push(params, Param::Text(fts_phrase(q)));
                wheres.push(format!(
                    "{key} IN (SELECT rowid FROM {table} WHERE {table} MATCH {p})"
                ));
            }
            _ => {
                let p = push(params, Param::Text(contains_pattern(q)));
                let any: Vec<String> = search
                    .columns
                    .iter()
                    .map(|c| format!("lower({c}) LIKE {p} ESCAPE '\\'"))
                    .collect();
                wheres.push(format!("({})", any.join(" OR ")));
            }
        }
    }
    if let Some(filter) = &query.filter {
        wheres.push(filter_sql::translate(
            filter,
            cols,
            Dialect::Sqlite,
            &query.ctx,
            params,
        ));
    }
    let order = filter_sql::order_by_sql(&query.order, cols, Dialect::Sqlite, params);
    if order.is_empty() {
        format!("{default_order}, {tie} ASC")
    } else {
        format!("{order}, {tie} ASC")
    }
}

/// A paged list query under construction: `with` is a CTE prefix or empty, `wheres`
/// are ANDed, `params` are bound to the `$N` placeholders in order.
struct ListSql {
    select: &'static str,
    from: &'static str,
    with: String,
    wheres: Vec<String>,
    order: String,
    params: Vec<Param>,
}

impl ListSql {
    /// Counts the matches and fetches one page of them, concurrently.
    async fn fetch<T>(
        mut self,
        pool: &SqlitePool,
        page: super::PageRequest,
        map: fn(&SqliteRow) -> Result<T, sqlx::Error>,
    ) -> StoreResult<Page<T>> {
        let filter = if self.wheres.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.wheres.join(" AND "))
        };
        let (with, from) = (&self.with, self.from);
        let count_sql = format!("{with} SELECT COUNT(*) FROM {from}{filter}");
        let count_params = self.params.clone();
        let offset = i64::from(page.index) * i64::from(page.size);
        let limit = push(&mut self.params, Param::Int(i64::from(page.size)));
        let off = push(&mut self.params, Param::Int(offset));
        let sql = format!(
            "{with} SELECT {} FROM {from}{filter} ORDER BY {} LIMIT {limit} OFFSET {off}",
            self.select, self.order
        );
        // The count and the page run at once on two read connections: a search's cost
        // is then the slower of the two, not their sum.
        let (total, rows) = tokio::try_join!(
            sqlx::query_scalar_with::<_, i64, _>(&count_sql, bind_all(&count_params))
                .fetch_one(pool),
            sqlx::query_with(&sql, bind_all(&self.params)).fetch_all(pool),
        )?;
        let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = SYSTEM_ADMINISTRATORS_ID.to_string();
        sqlx::query(
            "INSERT OR IGNORE INTO groups (id, name, name_key, description, type, custom, created, modified) \
             VALUES ($1, $2, $3, $4, 'sys', '{}', $5, $5)",
        )
        .bind(&id)
        .bind(SYSTEM_ADMINISTRATORS_NAME)
        .bind(name_key(SYSTEM_ADMINISTRATORS_NAME))
        .bind("Members may call every endpoint.")
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO group_closure (ancestor_id, descendant_id) VALUES ($1, $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn create_user(&self, user: &User, groups: &[GroupId]) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        insert_user(&mut tx, user).await?;
        for g in groups {
            sqlx::query("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES ($1, $2)")
                .bind(g.to_string())
                .bind(user.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(fk_or)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn user_exists(&self, id: UserId) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                .bind(id.to_string())
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn group_exists(&self, id: GroupId) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM groups WHERE id = $1)")
                .bind(id.to_string())
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn import(&self, batch: &ImportBatch) -> StoreResult<ImportStats> {
        let mut stats = ImportStats::default();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Users: which of their names are taken (by earlier rows or earlier in this
        // batch) decides who is skipped; a skipped user's memberships go to the user
        // who holds the name.
        let mut remap: HashMap<UserId, UserId> = HashMap::new();
        let mut holder: HashMap<String, UserId> = HashMap::new();
        let mut fresh: Vec<&User> = Vec::with_capacity(batch.users.len());
        for chunk in batch.users.chunks(IMPORT_CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|u| [name_key(&u.username), name_key(&u.email)])
                .collect();
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT key, user_id FROM user_identifiers WHERE key IN (",
            );
            let mut list = q.separated(", ");
            for k in &keys {
                list.push_bind(k.as_str());
            }
            q.push(")");
            for row in q.build().fetch_all(&mut *tx).await? {
                let key: String = row.try_get("key")?;
                let id: String = row.try_get("user_id")?;
                holder.insert(key, parse_uuid(&id, UserId::from_uuid)?);
            }
            for user in chunk {
                let (uk, ek) = (name_key(&user.username), name_key(&user.email));
                match holder.get(&uk).or_else(|| holder.get(&ek)) {
                    Some(existing) => {
                        remap.insert(user.id, *existing);
                        stats.users_skipped += 1;
                    }
                    None => {
                        holder.insert(uk, user.id);
                        holder.insert(ek, user.id);
                        fresh.push(user);
                    }
                }
            }
        }
        for chunk in fresh.chunks(IMPORT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
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
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::Username))?;
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO user_identifiers (key, user_id) ");
            let pairs: Vec<(String, String)> = chunk
                .iter()
                .flat_map(|u| {
                    let (uk, ek) = (name_key(&u.username), name_key(&u.email));
                    let id = u.id.to_string();
                    let email = (ek != uk).then(|| (ek, id.clone()));
                    std::iter::once((uk, id)).chain(email)
                })
                .collect();
            q.push_values(&pairs, |mut b, (k, id)| {
                b.push_bind(k.as_str()).push_bind(id.as_str());
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, UniqueField::Email))?;
            stats.users += chunk.len() as u64;
        }
        for group in &batch.groups {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO groups (id, name, name_key, description, type, custom, created, modified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
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
            sqlx::query(
                "INSERT OR IGNORE INTO group_closure (ancestor_id, descendant_id) VALUES ($1, $1)",
            )
            .bind(group.id.to_string())
            .execute(&mut *tx)
            .await?;
            stats.groups += 1;
        }
        let members: Vec<(String, String)> = batch
            .members
            .iter()
            .map(|(g, u)| (g.to_string(), remap.get(u).unwrap_or(u).to_string()))
            .collect();
        for chunk in members.chunks(IMPORT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) ",
            );
            q.push_values(chunk, |mut b, (g, u)| {
                b.push_bind(g.as_str()).push_bind(u.as_str());
            });
            let done = q.build().execute(&mut *tx).await.map_err(fk_or)?;
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

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn find_user_by_key(&self, key: &str) -> StoreResult<Option<UserId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM user_identifiers WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        Ok(id.and_then(|s| UserId::parse(&s)))
    }

    async fn update_user_profile(&self, user: &User) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE users SET username = $2, email = $3, first_name = $4, last_name = $5, \
             timezone = $6, language = $7, custom = $8, password_change_frequency = $9, \
             opt_out_of_notifications = $10, expiry = $11, modified = $12, username_lc = $13, \
             email_lc = $14, first_name_lc = $15, last_name_lc = $16 WHERE id = $1",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&user.timezone)
        .bind(&user.language)
        .bind(custom_text(&user.custom))
        .bind(user.password_change_frequency)
        .bind(user.opt_out_of_notifications)
        .bind(user.expiry)
        .bind(user.modified)
        .bind(name_key(&user.username))
        .bind(name_key(&user.email))
        .bind(user.first_name.as_deref().map(name_key))
        .bind(user.last_name.as_deref().map(name_key))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM user_identifiers WHERE user_id = $1")
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_identifiers(&mut tx, user).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_password(&self, id: UserId, hash: &PasswordHash, now: Millis) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed = $3, modified = $3, \
             password_reset_required = 0, token_version = token_version + 1 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(&hash.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
    ) -> StoreResult<()> {
        let set = match change {
            StateChange::Suspend => "suspended = 1, token_version = token_version + 1",
            StateChange::Unsuspend => "suspended = 0",
            StateChange::Unlock => "locked = 0, failed_since_success = 0",
            StateChange::ForcePasswordReset => "password_reset_required = 1",
            StateChange::SetPasswordToExpirable => "password_expirable = 1",
        };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("UPDATE users SET {set}, modified = $2 WHERE id = $1");
        let done = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if change == StateChange::Suspend && is_admin(&mut tx, id).await? {
            admin_guard(&mut tx, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_login(
        &self,
        id: UserId,
        outcome: LoginOutcome,
        now: Millis,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = match outcome {
            LoginOutcome::Success => {
                sqlx::query(
                    "UPDATE users SET last_login = $2, successful_login_attempts = \
                     successful_login_attempts + 1, failed_since_success = 0 WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?
            }
            LoginOutcome::Failure { lock_after } => {
                sqlx::query(
                    "UPDATE users SET last_failed_login = $2, failed_login_attempts = \
                     failed_login_attempts + 1, failed_since_success = failed_since_success + 1, \
                     locked = CASE WHEN $3 > 0 AND failed_since_success + 1 >= $3 THEN 1 ELSE locked END, \
                     token_version = token_version + CASE WHEN $3 > 0 AND failed_since_success + 1 = $3 THEN 1 ELSE 0 END \
                     WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(now)
                .bind(i64::from(lock_after))
                .execute(&mut *tx)
                .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    async fn delete_user(&self, id: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
    }

    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>> {
        let mut params = Vec::new();
        let mut wheres = Vec::new();
        let mut with = String::new();
        match scope {
            UserScope::All => {}
            UserScope::MembersOf {
                group,
                inherited: false,
                ..
            } => {
                let g = push(&mut params, Param::Text(group.to_string()));
                wheres.push(format!(
                    "u.id IN (SELECT user_id FROM group_members WHERE group_id = {g})"
                ));
            }
            UserScope::MembersOf {
                group,
                inherited: true,
                excluded,
            } if excluded.is_empty() => {
                let g = push(&mut params, Param::Text(group.to_string()));
                wheres.push(format!(
                    "u.id IN (SELECT m.user_id FROM group_closure c JOIN group_members m \
                     ON m.group_id = c.descendant_id WHERE c.ancestor_id = {g})"
                ));
            }
            UserScope::MembersOf {
                group, excluded, ..
            } => {
                let g = push(&mut params, Param::Text(group.to_string()));
                let x = push_ids(&mut params, excluded);
                with = format!(
                    "WITH RECURSIVE reach(id) AS (SELECT {g} UNION SELECT gc.child_id \
                     FROM group_children gc JOIN reach r ON gc.parent_id = r.id \
                     WHERE gc.child_id NOT IN ({x}))"
                );
                wheres.push(
                    "u.id IN (SELECT m.user_id FROM group_members m WHERE m.group_id IN (SELECT id FROM reach))"
                        .to_owned(),
                );
            }
        }
        let order = list_terms(
            query,
            &UserColumns,
            &USER_SEARCH,
            "u.username_lc ASC",
            "u.id",
            &mut wheres,
            &mut params,
        );
        ListSql {
            select: USER_COLUMNS,
            from: "users u",
            with,
            wheres,
            order,
            params,
        }
        .fetch(&self.reader, query.page, user_from_row)
        .await
    }

    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO groups (id, name, name_key, description, type, custom, created, modified) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
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
        sqlx::query("INSERT INTO group_closure (ancestor_id, descendant_id) VALUES ($1, $1)")
            .bind(group.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(group_from_row).transpose()?)
    }

    async fn find_group_by_key(&self, key: &str) -> StoreResult<Option<GroupId>> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM groups WHERE name_key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(id.and_then(|s| GroupId::parse(&s)))
    }

    async fn update_group(&self, group: &Group) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE groups SET name = $2, name_key = $3, description = $4, custom = $5, \
             modified = $6 WHERE id = $1",
        )
        .bind(group.id.to_string())
        .bind(&group.name)
        .bind(name_key(&group.name))
        .bind(&group.description)
        .bind(custom_text(&group.custom))
        .bind(group.modified)
        .execute(&self.writer)
        .await
        .map_err(|e| unique_or(e, UniqueField::GroupName))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_group(&self, id: GroupId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
    }

    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>> {
        let mut params = Vec::new();
        let mut wheres = Vec::new();
        let mut with = String::new();
        match scope {
            GroupScope::All => {}
            GroupScope::OfUser {
                user,
                inherited,
                excluded,
            } => {
                let u = push(&mut params, Param::Text(user.to_string()));
                if excluded.is_empty() {
                    wheres.push(if *inherited {
                        format!(
                            "g.id IN (SELECT c.ancestor_id FROM group_members m JOIN group_closure c \
                             ON c.descendant_id = m.group_id WHERE m.user_id = {u})"
                        )
                    } else {
                        format!("g.id IN (SELECT group_id FROM group_members WHERE user_id = {u})")
                    });
                } else {
                    let x = push_ids(&mut params, excluded);
                    if *inherited {
                        with = format!(
                            "WITH RECURSIVE reach(id) AS (SELECT group_id FROM group_members \
                             WHERE user_id = {u} AND group_id NOT IN ({x}) UNION SELECT gc.parent_id \
                             FROM group_children gc JOIN reach r ON gc.child_id = r.id \
                             WHERE gc.parent_id NOT IN ({x}))"
                        );
                        wheres.push("g.id IN (SELECT id FROM reach)".to_owned());
                    } else {
                        wheres.push(format!(
                            "g.id IN (SELECT group_id FROM group_members WHERE user_id = {u}) \
                             AND g.id NOT IN ({x})"
                        ));
                    }
                }
            }
            GroupScope::ChildrenOf {
                group,
                inherited,
                include_self,
                excluded,
            } => {
                let g = push(&mut params, Param::Text(group.to_string()));
                let set = if !*inherited {
                    let x = if excluded.is_empty() {
                        String::new()
                    } else {
                        format!(" AND child_id NOT IN ({})", push_ids(&mut params, excluded))
                    };
                    format!("SELECT child_id FROM group_children WHERE parent_id = {g}{x}")
                } else if excluded.is_empty() {
                    format!("SELECT descendant_id FROM group_closure WHERE ancestor_id = {g}")
                } else {
                    let x = push_ids(&mut params, excluded);
                    with = format!(
                        "WITH RECURSIVE reach(id) AS (SELECT {g} UNION SELECT gc.child_id \
                         FROM group_children gc JOIN reach r ON gc.parent_id = r.id \
                         WHERE gc.child_id NOT IN ({x}))"
                    );
                    "SELECT id FROM reach".to_owned()
                };
                let own = if *include_self {
                    format!("(g.id IN ({set}) OR g.id = {g})")
                } else {
                    format!("(g.id IN ({set}) AND g.id <> {g})")
                };
                wheres.push(own);
            }
        }
        let order = list_terms(
            query,
            &GroupColumns,
            &GROUP_SEARCH,
            "lower(g.name) ASC",
            "g.id",
            &mut wheres,
            &mut params,
        );
        ListSql {
            select: GROUP_COLUMNS,
            from: "groups g",
            with,
            wheres,
            order,
            params,
        }
        .fetch(&self.reader, query.page, group_from_row)
        .await
    }

    async fn add_members(&self, group: GroupId, users: &[UserId]) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let g = group.to_string();
        for u in users {
            sqlx::query("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES ($1, $2)")
                .bind(&g)
                .bind(u.to_string())
                .execute(&mut *tx)
                .await
                .map_err(fk_or)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_member(&self, group: GroupId, user: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
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
    }

    async fn is_member(&self, user: UserId, groups: &[GroupId]) -> StoreResult<bool> {
        if groups.is_empty() {
            return Ok(false);
        }
        let mut params = vec![Param::Text(user.to_string())];
        let set = push_ids(&mut params, groups);
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM group_members m JOIN group_closure c \
             ON c.descendant_id = m.group_id WHERE m.user_id = $1 AND c.ancestor_id IN ({set}))"
        );
        Ok(sqlx::query_scalar_with(&sql, bind_all(&params))
            .fetch_one(&self.reader)
            .await?)
    }

    async fn add_children(&self, parent: GroupId, children: &[GroupId]) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for child in children {
            link_child(&mut tx, parent, *child).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_child(
        &self,
        parent: GroupId,
        child: GroupId,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM group_children WHERE parent_id = $1 AND child_id = $2")
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
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, scope, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.token_hash)
        .bind(&t.family)
        .bind(t.user_id.to_string())
        .bind(&t.scope)
        .bind(t.created)
        .bind(t.expires)
        .execute(&self.writer)
        .await
        .map_err(fk_or)?;
        Ok(())
    }

    async fn use_refresh_token(&self, token_hash: &str, now: Millis) -> StoreResult<RefreshUse> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT token_hash, family, user_id, scope, created, expires, used, revoked \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshUse::Invalid);
        };
        let used: bool = row.try_get("used")?;
        let revoked: bool = row.try_get("revoked")?;
        let family: String = row.try_get("family")?;
        if revoked {
            return Ok(RefreshUse::Invalid);
        }
        if used {
            sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family = $1")
                .bind(&family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshUse::Reused);
        }
        let token = RefreshToken {
            token_hash: row.try_get("token_hash")?,
            family,
            user_id: parse_uuid(row.try_get("user_id")?, UserId::from_uuid)?,
            scope: row.try_get("scope")?,
            created: row.try_get("created")?,
            expires: row.try_get("expires")?,
        };
        if token.expires <= now {
            return Ok(RefreshUse::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshUse::Valid(token))
    }

    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        insert_user(&mut tx, user).await?;
        for g in groups {
            sqlx::query("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES ($1, $2)")
                .bind(g.to_string())
                .bind(user.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(fk_or)?;
        }
        sqlx::query(
            "INSERT INTO api_keys (id, name, name_key, description, enabled, client_id, \
             secret_hash, user_id, created, created_by, modified, modified_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
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
        ListSql {
            select: API_KEY_COLUMNS,
            from: "api_keys",
            with: String::new(),
            wheres: Vec::new(),
            order: "name_key ASC, id ASC".to_owned(),
            params: Vec::new(),
        }
        .fetch(&self.reader, page, api_key_from_row)
        .await
    }

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE api_keys SET name = $2, name_key = $3, description = $4, enabled = $5, \
             modified = $6, modified_by = $7 WHERE id = $1",
        )
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
        sqlx::query(
            "UPDATE users SET first_name = $2, first_name_lc = $4, modified = $3 WHERE id = $1",
        )
        .bind(key.user_id.to_string())
        .bind(&key.name)
        .bind(key.modified)
        .bind(name_key(&key.name))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_api_key(&self, id: ApiKeyId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let user: Option<String> = sqlx::query_scalar("SELECT user_id FROM api_keys WHERE id = $1")
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
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, public_key, created FROM signing_keys \
             ORDER BY created DESC, kid",
        )
        .fetch_all(&self.reader)
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
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
