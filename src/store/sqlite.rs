//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One writer connection and a small pool of read-only connections over one WAL-mode
//! database file. A single writer means our own writes never fight over SQLite's lock;
//! WAL lets reads go on while it writes. `synchronous=FULL` makes every acknowledged
//! commit durable across a power loss.

use std::collections::HashMap;
use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use rusqlite::OptionalExtension as _;

use super::filter_sql::{Dialect, SqlValue};
use super::group_graph::{GraphCache, GroupGraph, MAX_CLOSURE_ROWS, Resolved};
use super::name_cache::NameCache;
use super::sql::{self, ListSql, push_ids};
use super::sqlite_direct::{
    BUSY_TIMEOUT, BatchWriter, ByName, ColumnIndex, Readers, WAL_SIZE_LIMIT, by_name,
};
use super::transactions;
use super::tx::{Lock, RowLock, Tx};
use super::{
    GroupScope, ImportBatch, ImportStats, ListQuery, MemberCheck, Named, Page, PasswordAttempt,
    PoolStats, RefreshToken, RefreshUse, Settled, StateChange, Store, StoreError, StoreResult,
    StoredKey, UserScope,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::group::Group;
use crate::domain::ids::{ApiKeyId, GroupId, UserId};
use crate::domain::user::{PasswordHash, User};

/// Rows an unfiltered, default-ordered user page may walk and still run on the calling
/// thread (an index walk of this many rows takes well under a millisecond).
const INLINE_WALK: u64 = 1_000;

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
    /// How many users hold each trigram (capped at [`TRIGRAM_CAP`]), remembered for a
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

/// WAL pages after which a bulk load's commit checkpoints: a page that every batch
/// changes (an index's upper levels, the full-text index) is copied once per 256 MiB of
/// WAL rather than after every batch.
const BULK_CHECKPOINT_PAGES: i64 = 65_536;

/// Trigram counts at or above this are "common": counting further would cost more than
/// it tells.
const TRIGRAM_CAP: i64 = 20_000;
/// How long a trigram count is trusted.
const TRIGRAM_TTL: Duration = Duration::from_secs(600);

impl SqliteStore {
    /// Reads the group graph again in the background, unless the graph held is already
    /// the one at `version` (another check reloaded it meanwhile) or a reload is running.
    fn reload_graph(&self, version: i64) {
        if self.graph.get().is_some_and(|g| g.version() == version) || !self.graph.begin_load() {
            return;
        }
        let (readers, cache) = (Arc::clone(&self.direct), Arc::clone(&self.graph));
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            match readers.scan(|c| GroupGraph::load(c, MAX_CLOSURE_ROWS)) {
                Ok(graph) => {
                    tracing::debug!(
                        version = graph.version(),
                        kept = graph.kept(),
                        took = ?started.elapsed(),
                        "group graph read"
                    );
                    cache.finish_load(graph);
                }
                Err(e) => {
                    cache.abandon_load();
                    tracing::warn!(error = %e, "reading the group graph failed");
                }
            }
        });
    }

    /// Plans a `q` search through the trigram index. FTS5 reads the posting list of
    /// every trigram of a phrase, and a term made of trigrams that most users share (the
    /// email domain, a common name prefix) then costs a pass over long lists. Instead,
    /// pick the two rarest trigrams of the term — counted once, capped, and remembered —
    /// and let the caller verify the candidates with `LIKE`. `None` keeps the phrase
    /// query (short terms, or terms whose every trigram is common).
    async fn trigram_plan(&self, q: &str) -> StoreResult<Option<String>> {
        // ASCII only: then our lower-casing and FTS5's case folding agree on every
        // trigram, so the candidates are a true superset of the matches.
        if !q.is_ascii() {
            return Ok(None);
        }
        let chars: Vec<char> = q.to_ascii_lowercase().chars().collect();
        if chars.len() < 5 {
            return Ok(None);
        }
        let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
        grams.sort();
        grams.dedup();
        let mut counted = Vec::with_capacity(grams.len());
        for gram in grams {
            let known = {
                let cache = self
                    .trigrams
                    .lock()
                    .expect("the trigram cache is never poisoned");
                cache
                    .get(&gram)
                    .filter(|(_, at)| at.elapsed() < TRIGRAM_TTL)
                    .map(|(n, _)| *n)
            };
            let n = match known {
                Some(n) => n,
                None => {
                    let phrase = sql::fts_phrase(&gram);
                    let n: i64 = self
                        .direct
                        .read_blocking(move |c| {
                            Ok(c.prepare_cached(
                                "SELECT COUNT(*) FROM (SELECT 1 FROM users_fts \
                                 WHERE users_fts MATCH $1 LIMIT $2)",
                            )?
                            .query_row(rusqlite::params![phrase, TRIGRAM_CAP], |r| r.get(0))?)
                        })
                        .await?;
                    let mut cache = self
                        .trigrams
                        .lock()
                        .expect("the trigram cache is never poisoned");
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(gram.clone(), (n, Instant::now()));
                    n
                }
            };
            counted.push((n, gram));
        }
        counted.sort();
        match counted.as_slice() {
            [(a, ga), (_, gb), ..] if *a < TRIGRAM_CAP => Ok(Some(format!(
                "{} AND {}",
                sql::fts_phrase(ga),
                sql::fts_phrase(gb)
            ))),
            _ => Ok(None),
        }
    }
}

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

impl sql::RowColumns for SqliteRow {
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

impl SqliteStore {
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

/// The executor of `transactions.rs` over sqlx's writer connection (in a transaction
/// or not).
struct SqliteTx<C>(C);

impl SqliteTx<Transaction<'static, Sqlite>> {
    /// Commits, and hands back what the transaction made.
    async fn commit<T>(self, out: T) -> StoreResult<T> {
        self.0.commit().await?;
        Ok(out)
    }
}

impl<C: DerefMut<Target = SqliteConnection> + Send> Tx for SqliteTx<C> {
    type Row = SqliteRow;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn row_lock(&self, _: RowLock) -> &'static str {
        ""
    }

    async fn lock(&mut self, _: Lock<'_>) -> StoreResult<()> {
        Ok(())
    }

    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let done = sqlx::query_with(sql, sqlx_args(args)?)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
    }

    async fn execute_once(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        self.execute(sql, args).await
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[SqlValue],
    ) -> StoreResult<Option<SqliteRow>> {
        Ok(sqlx::query_with(sql, sqlx_args(args)?)
            .fetch_optional(&mut *self.0)
            .await?)
    }

    async fn fetch_all(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<SqliteRow>> {
        Ok(sqlx::query_with(sql, sqlx_args(args)?)
            .fetch_all(&mut *self.0)
            .await?)
    }

    async fn fetch_flag(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<bool> {
        Ok(sqlx::query_scalar_with(sql, sqlx_args(args)?)
            .fetch_one(&mut *self.0)
            .await?)
    }

    async fn fetch_texts(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar_with(sql, sqlx_args(args)?)
            .fetch_all(&mut *self.0)
            .await?)
    }
}

/// The executor of `transactions.rs` over the batch writer's rusqlite connection, inside
/// the batch's transaction (in the change's savepoint). Nothing it does waits, so the
/// logic's futures finish on their first poll ([`run_now`]).
struct Direct<'c>(&'c rusqlite::Connection);

/// A row the batch writer read, with its values.
struct OwnedRow {
    columns: Vec<String>,
    values: Vec<rusqlite::types::Value>,
}

impl OwnedRow {
    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> StoreResult<T> {
        let at = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                StoreError::Other(rusqlite::Error::InvalidColumnName(column.to_owned()).into())
            })?;
        Ok(T::column_result((&self.values[at]).into())?)
    }
}

impl sql::RowColumns for OwnedRow {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        self.get(column)
    }
}

impl Direct<'_> {
    /// Every row of a query, each value of it.
    fn rows(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<OwnedRow>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind_numbered(&mut stmt, args)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = stmt.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns.len())
                .map(|i| row.get(i))
                .collect::<rusqlite::Result<_>>()?;
            all.push(OwnedRow {
                columns: columns.clone(),
                values,
            });
        }
        Ok(all)
    }

    /// The first column of each row of a query.
    fn column<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        args: &[SqlValue],
    ) -> StoreResult<Vec<T>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind_numbered(&mut stmt, args)?;
        let mut rows = stmt.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            all.push(row.get(0)?);
        }
        Ok(all)
    }
}

impl Tx for Direct<'_> {
    type Row = OwnedRow;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn row_lock(&self, _: RowLock) -> &'static str {
        ""
    }

    async fn lock(&mut self, _: Lock<'_>) -> StoreResult<()> {
        Ok(())
    }

    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind_numbered(&mut stmt, args)?;
        Ok(stmt.raw_execute()? as u64)
    }

    async fn execute_once(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        self.execute(sql, args).await
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[SqlValue],
    ) -> StoreResult<Option<OwnedRow>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    async fn fetch_all(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<OwnedRow>> {
        self.rows(sql, args)
    }

    async fn fetch_flag(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<bool> {
        self.column(sql, args)?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    async fn fetch_texts(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<String>> {
        self.column(sql, args)
    }
}

/// Runs a function of `transactions.rs` on the batch writer's thread, with [`Direct`]:
/// its statements never wait, so the future is done after one poll.
fn run_now<T>(work: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    use std::task::{Context, Poll, Waker};
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Other(
            "a change on the batch writer waited, which its executor never does".into(),
        )),
    }
}

/// Binds [`SqlValue`]s for sqlx's SQLite driver.
fn sqlx_args(params: &[SqlValue]) -> StoreResult<sqlx::sqlite::SqliteArguments<'static>> {
    use sqlx::Arguments as _;
    let mut args = sqlx::sqlite::SqliteArguments::default();
    for p in params {
        match p {
            SqlValue::Null => args.add(None::<i64>),
            SqlValue::NullText => args.add(None::<String>),
            SqlValue::Bool(b) => args.add(*b),
            SqlValue::Int(i) => args.add(*i),
            SqlValue::Real(r) => args.add(*r),
            SqlValue::Text(s) => args.add(s.clone()),
            SqlValue::Blob(b) => args.add(b.clone()),
            SqlValue::TextArray(_) => Err(NO_ARRAYS.into()),
        }
        .map_err(StoreError::Other)?;
    }
    Ok(args)
}

/// Binds a [`SqlValue`] for rusqlite, text and bytes without a copy.
impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            SqlValue::Null | SqlValue::NullText => ToSqlOutput::Owned(Value::Null),
            SqlValue::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            SqlValue::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            SqlValue::Real(r) => ToSqlOutput::Owned(Value::Real(*r)),
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            SqlValue::TextArray(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(NO_ARRAYS.into()));
            }
        })
    }
}

/// Why a [`SqlValue::TextArray`] cannot be bound here.
const NO_ARRAYS: &str = "SQLite has no arrays: a statement for PostgreSQL was run on SQLite";

/// Binds `$N` placeholders to `params[N - 1]`. (SQLite numbers named parameters by
/// first appearance, and a list's text may name `$3` before `$1` or name one twice.)
fn bind_numbered(stmt: &mut rusqlite::Statement<'_>, params: &[SqlValue]) -> StoreResult<()> {
    for index in 1..=stmt.parameter_count() {
        let value = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| params.get(n.checked_sub(1)?))
            .ok_or_else(|| {
                StoreError::Other(format!("parameter {index} of a list query has no value").into())
            })?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

/// Runs a query bound with [`bind_numbered`] and maps every row.
fn rows_of<T>(
    c: &rusqlite::Connection,
    text: &str,
    params: &[SqlValue],
    map: fn(&ByName<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(text)?;
    bind_numbered(&mut stmt, params)?;
    let columns = ColumnIndex::of(&stmt);
    let mut rows = stmt.raw_query();
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(map(&ByName::new(row, &columns))?);
    }
    Ok(items)
}

/// Counts the matches of a list (unless `total` is known) and fetches one page of them,
/// concurrently on two read connections of the blocking pool: a search's cost is then
/// the slower of the two, not their sum. (On rusqlite rather than sqlx: sqlx hands each
/// row to the async side over a channel, which cost more than the query.)
async fn fetch_page<T: Send + 'static>(
    readers: &Arc<Readers>,
    mut list: ListSql,
    page: super::PageRequest,
    total: Option<i64>,
    map: fn(&ByName<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let count_sql = list.count_sql();
    let count_params = list.count_params().to_vec();
    let page_sql = list.page_sql(page);
    let page_params = list.params.clone();
    let count = async {
        match total {
            Some(n) => Ok(n),
            None => {
                readers
                    .read_blocking(move |c| {
                        rows_of(c, &count_sql, &count_params, |r| Ok(r.row().get(0)?))?
                            .pop()
                            .ok_or(StoreError::NotFound)
                    })
                    .await
            }
        }
    };
    let rows = readers.read_blocking(move |c| rows_of(c, &page_sql, &page_params, map));
    let (total, items) = tokio::try_join!(count, rows)?;
    Ok(Page { items, total })
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

    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::ensure_system_group(&mut tx, now).await?;
        tx.commit(out).await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        self.user_total()
    }

    async fn create_user(&self, user: &User, groups: &[GroupId]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_user(&mut tx, user, groups).await?;
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

    async fn import(&self, batch: &ImportBatch) -> StoreResult<ImportStats> {
        let mut tx = self.begin().await?;
        let out = transactions::import(&mut tx, batch).await?;
        tx.commit(out).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let text = format!("SELECT {} FROM users u WHERE u.id = $1", sql::USER_COLUMNS);
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

    async fn update_user_profile(&self, before: &User, after: &User) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let out = transactions::update_user_profile(&mut tx, before, after).await?;
        tx.commit(out).await
    }

    async fn set_password(&self, id: UserId, hash: &PasswordHash, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::set_password(&mut tx, id, hash, now).await?;
        tx.commit(out).await
    }

    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::set_user_state(&mut tx, id, change, now).await?;
        tx.commit(out).await
    }

    async fn record_login(&self, id: UserId, now: Millis) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let out = transactions::record_login(&mut tx, id, now).await?;
        tx.commit(out).await
    }

    async fn settle_password_attempt(
        &self,
        id: UserId,
        attempt: PasswordAttempt<'_>,
        now: Millis,
    ) -> StoreResult<Settled> {
        let mut tx = self.begin().await?;
        let out = transactions::settle_password_attempt(&mut tx, id, attempt, now).await?;
        tx.commit(out).await
    }

    async fn revoke_refresh_tokens(&self, id: UserId) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::revoke_refresh_tokens(&mut conn, id).await
    }

    async fn delete_user(&self, id: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_user(&mut tx, id, now).await?;
        tx.commit(out).await
    }

    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>> {
        let plan = match query.q.as_deref() {
            Some(q) => self.trigram_plan(q).await?,
            None => None,
        };
        let mut list = ListSql::users_matching(scope, query, Dialect::Sqlite, plan);
        if !list.is_everything() {
            return fetch_page(&self.direct, list, query.page, None, |r| sql::user_from(r)).await;
        }
        let total = self.user_total()?;
        let page = query.page;
        let walked = (u64::from(page.index) + 1) * u64::from(page.size);
        if !query.order.0.is_empty() || walked > INLINE_WALK {
            return fetch_page(&self.direct, list, page, Some(total), |r| sql::user_from(r)).await;
        }
        // The default order over everyone, near the start: a bounded walk of the
        // username index, cheap enough to run here rather than hop to the blocking pool.
        let page_sql = list.page_sql(page);
        let params = &list.params;
        let items = self
            .direct
            .read(|c| rows_of(c, &page_sql, params, |r| sql::user_from(r)))?;
        Ok(Page { items, total })
    }

    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_group(&mut tx, group).await?;
        tx.commit(out).await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let text = format!(
            "SELECT {} FROM groups g WHERE g.id = $1",
            sql::GROUP_COLUMNS
        );
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

    async fn update_group(&self, group: &Group) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::update_group(&mut conn, group).await
    }

    async fn delete_group(&self, id: GroupId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_group(&mut tx, id, now).await?;
        tx.commit(out).await
    }

    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>> {
        let list = ListSql::groups(scope, query, Dialect::Sqlite);
        fetch_page(&self.direct, list, query.page, None, |r| sql::group_from(r)).await
    }

    async fn add_members(&self, group: GroupId, users: &[UserId]) -> StoreResult<()> {
        let users = users.to_vec();
        self.batch
            .write(move |c| run_now(transactions::add_members(&mut Direct(c), group, &users)))
            .await
    }

    async fn add_member_named(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        // Resolved by the batch writer, in the transaction that inserts: its page cache
        // is never reset by its own commits, where a reader's is by every commit.
        let (gid, gkey) = (group.id.map(|g| g.to_string()), group.key.to_owned());
        let (uid, ukey) = (user.id.map(|u| u.to_string()), user.key.to_owned());
        self.batch
            .write(move |c| {
                let (g, gseq, u, useq): (Option<String>, Option<i64>, Option<String>, Option<i64>) =
                    c.prepare_cached(sql::RESOLVE_GROUP_AND_USER)?
                        .query_row(rusqlite::params![gid, gkey, uid, ukey], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })?;
                let member = match (gseq, useq) {
                    (Some(g), Some(u)) => {
                        c.prepare_cached(sql::INSERT_MEMBER_BY_KEYS)?
                            .execute([g, u])?;
                        true
                    }
                    _ => false,
                };
                Ok(MemberCheck {
                    group: g.as_deref().and_then(GroupId::parse),
                    user: u.as_deref().and_then(UserId::parse),
                    member,
                })
            })
            .await
    }

    async fn remove_member(&self, group: GroupId, user: UserId, now: Millis) -> StoreResult<bool> {
        self.batch
            .write(move |c| {
                run_now(transactions::remove_member(
                    &mut Direct(c),
                    group,
                    user,
                    now,
                ))
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
        let uid = user.id.map(|u| u.to_string());
        let graph = self.graph.get();
        if let Some(graph) = graph.as_ref().filter(|g| g.kept()) {
            // The user and their direct groups; the closure from memory, if it is the
            // graph this statement saw (module `group_graph`).
            let resolved = graph.resolve(group.id, group.key);
            // A name asked for before: the user's groups alone, if no name has stopped
            // naming its user since (module `name_cache`).
            if user.id.is_none()
                && let Some(known) = self.names.get(user.key)
            {
                let member = self.direct.read(|c| {
                    let mut stmt = c.prepare_cached(sql::GROUPS_OF_USER_SEQ)?;
                    let mut rows = stmt.query([known.seq])?;
                    let Some(first) = rows.next()? else {
                        return Ok(None);
                    };
                    if first.get::<_, i64>(0)? != graph.version()
                        || first.get::<_, i64>(1)? != known.version
                    {
                        return Ok(None); // changed since: ask the database
                    }
                    if lies_under(first, 2, graph, resolved)? {
                        return Ok(Some(true));
                    }
                    Ok::<_, StoreError>(Some(any_row_under(&mut rows, 2, graph, resolved)?))
                })?;
                if let Some(member) = member {
                    return Ok(MemberCheck {
                        group: resolved.map(|g| g.id),
                        user: Some(known.id),
                        member,
                    });
                }
            }
            let answer = self.direct.read(|c| {
                let mut stmt = c.prepare_cached(sql::USER_GROUPS)?;
                let mut rows = stmt.query(rusqlite::params![uid, user.key])?;
                // The versions and the user are on every row: read them from the first.
                let Some(first) = rows.next()? else {
                    return Ok(None);
                };
                if first.get::<_, i64>(0)? != graph.version() {
                    return Ok(None); // changed since it was read: ask the database
                }
                let found = first.get_ref(2)?.as_str_or_null()?.and_then(UserId::parse);
                if let (Some(id), Some(seq), None) =
                    (found, first.get_ref(3)?.as_i64_or_null()?, user.id)
                {
                    self.names.remember(user.key, first.get(1)?, seq, id);
                }
                if lies_under(first, 4, graph, resolved)? {
                    return Ok(Some((found, true)));
                }
                let member = any_row_under(&mut rows, 4, graph, resolved)?;
                Ok::<_, StoreError>(Some((found, member)))
            })?;
            if let Some((user, member)) = answer {
                return Ok(MemberCheck {
                    group: resolved.map(|g| g.id),
                    user,
                    member,
                });
            }
        }
        let gid = group.id.map(|g| g.to_string());
        let (g, u, member, version): (Option<String>, Option<String>, bool, i64) =
            self.direct.read(|c| {
                c.prepare_cached(sql::MEMBER_CHECK)?
                    .query_row(rusqlite::params![gid, group.key, uid, user.key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
            })?;
        if graph.is_none_or(|g| g.version() != version) {
            self.reload_graph(version);
        }
        Ok(MemberCheck {
            group: g.as_deref().and_then(GroupId::parse),
            user: u.as_deref().and_then(UserId::parse),
            member,
        })
    }

    async fn add_children(&self, parent: GroupId, children: &[GroupId]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::add_children(&mut tx, parent, children).await?;
        tx.commit(out).await
    }

    async fn remove_child(
        &self,
        parent: GroupId,
        child: GroupId,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::remove_child(&mut tx, parent, child, now).await?;
        tx.commit(out).await
    }

    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::insert_refresh_token(&mut conn, t).await
    }

    async fn use_refresh_token(&self, token_hash: &str, now: Millis) -> StoreResult<RefreshUse> {
        let mut tx = self.begin().await?;
        let out = transactions::use_refresh_token(&mut tx, token_hash, now).await?;
        tx.commit(out).await
    }

    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::create_api_key(&mut tx, key, user, groups).await?;
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

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out = transactions::update_api_key(&mut tx, key).await?;
        tx.commit(out).await
    }

    async fn delete_api_key(&self, id: ApiKeyId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = transactions::delete_api_key(&mut tx, id, now).await?;
        tx.commit(out).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.direct.read(|c| {
            c.prepare_cached(
                "SELECT kid, algorithm, private_key, public_key, created FROM signing_keys \
                 ORDER BY created DESC, kid",
            )?
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

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<bool> {
        let mut conn = self.connection().await?;
        transactions::delete_signing_key(&mut conn, kid).await
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        transactions::insert_signing_key(&mut conn, key).await
    }
}

/// Whether the direct group in column `col` of `row` (an integer key, NULL for none) is
/// `group` or lies below it in `graph`.
fn lies_under(
    row: &rusqlite::Row<'_>,
    col: usize,
    graph: &GroupGraph,
    group: Option<Resolved>,
) -> StoreResult<bool> {
    let direct = row.get_ref(col)?.as_i64_or_null()?;
    Ok(group.zip(direct).is_some_and(|(g, d)| graph.is_under(g, d)))
}

/// Whether any remaining row's direct group (column `col`) lies under `group`.
fn any_row_under(
    rows: &mut rusqlite::Rows<'_>,
    col: usize,
    graph: &GroupGraph,
    group: Option<Resolved>,
) -> StoreResult<bool> {
    if group.is_none() {
        return Ok(false);
    }
    while let Some(row) = rows.next()? {
        if lies_under(row, col, graph, group)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::group::GroupType;

    fn group(name: &str) -> Group {
        Group {
            id: GroupId::new(),
            name: name.into(),
            description: None,
            kind: GroupType::Contensis,
            custom: serde_json::Map::new(),
            created: 1,
            modified: 1,
            user_count: 0,
            child_group_count: 0,
        }
    }

    /// Names by key, as a path does.
    fn named<Id>(key: &str) -> Named<'_, Id> {
        Named { id: None, key }
    }

    /// The group, the user and the answer a check by names gives.
    async fn answer(
        store: &SqliteStore,
        group: &str,
        user: &str,
    ) -> (Option<GroupId>, Option<UserId>, bool) {
        let found = store.check_member(named(group), named(user)).await.unwrap();
        (found.group, found.user, found.member)
    }

    async fn is_in(store: &SqliteStore, g: &Group, user: &str) -> bool {
        let (group, _, member) = answer(store, &g.name, user).await;
        assert_eq!(group, Some(g.id), "the group resolves");
        member
    }

    /// Waits until the store holds the graph as the database has it now.
    async fn graph_loaded(store: &SqliteStore) -> i64 {
        for _ in 0..200 {
            // A check notices a stale graph and starts the reload.
            store
                .check_member(named("nobody"), named("nobody"))
                .await
                .unwrap();
            let version: i64 = store
                .direct
                .read(|c| c.query_row("SELECT n FROM graph_version", [], |r| r.get(0)))
                .unwrap();
            if store
                .graph
                .get()
                .is_some_and(|g| g.kept() && g.version() == version)
            {
                return version;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the graph was never loaded");
    }

    /// Checks answered from the graph in memory see every change to the graph at once,
    /// also one made by another connection to the file (another process, such as
    /// `gatehouse import`): the version they read with the user's groups tells them.
    #[tokio::test]
    async fn checks_from_the_graph_in_memory_see_changes_made_elsewhere_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let elsewhere = SqliteStore::open(&url).await.unwrap();

        let (outer, inner) = (group("outer"), group("inner"));
        store.create_group(&outer).await.unwrap();
        store.create_group(&inner).await.unwrap();
        let user = User::new("tyler".into(), "tyler@example.com".into(), 1);
        store.create_user(&user, &[inner.id]).await.unwrap();

        let before = graph_loaded(&store).await;
        assert!(is_in(&store, &inner, "tyler").await);
        assert!(!is_in(&store, &outer, "tyler").await, "no link yet");

        // A link made through the other store: the next check sees it.
        elsewhere.add_children(outer.id, &[inner.id]).await.unwrap();
        assert!(is_in(&store, &outer, "tyler").await, "the new link is seen");
        let after = graph_loaded(&store).await;
        assert!(after > before, "the link bumped the graph's version");
        assert!(is_in(&store, &outer, "tyler").await, "and from memory");
        // The other answers from memory: no such group, no such user, a user with no
        // groups.
        assert_eq!(
            answer(&store, "nope", "tyler").await,
            (None, Some(user.id), false)
        );
        assert_eq!(
            answer(&store, "outer", "nobody").await,
            (Some(outer.id), None, false)
        );
        let loner = User::new("marla".into(), "marla@example.com".into(), 1);
        store.create_user(&loner, &[]).await.unwrap();
        assert!(!is_in(&store, &outer, "marla@example.com").await);
        let by_id = store
            .check_member(
                Named {
                    id: Some(outer.id),
                    key: "",
                },
                Named {
                    id: Some(user.id),
                    key: "",
                },
            )
            .await
            .unwrap();
        assert!(by_id.member, "by ids");
        assert!(
            store.graph.get().is_some_and(|g| g.version() == after),
            "all of these were answered with the same graph"
        );

        // A group created elsewhere is found by name; its removal is seen too.
        let late = group("late");
        elsewhere.create_group(&late).await.unwrap();
        elsewhere.add_members(late.id, &[user.id]).await.unwrap();
        assert!(is_in(&store, &late, "tyler").await);
        graph_loaded(&store).await;
        assert!(
            elsewhere.remove_child(outer.id, inner.id, 2).await.unwrap(),
            "the link existed"
        );
        assert!(
            !is_in(&store, &outer, "tyler").await,
            "the removed link is seen"
        );
        assert!(elsewhere.delete_group(late.id, 3).await.unwrap());
        let (group, _, member) = answer(&store, "late", "tyler").await;
        assert_eq!(group, None, "a deleted group is gone at once");
        assert!(!member);
    }

    /// A check by name remembers the user the name resolved to (module `name_cache`),
    /// and forgets it once the name stops naming that user, whichever connection (or
    /// process) made the change: a name moved to another user, a user renamed, a user
    /// deleted.
    #[tokio::test]
    async fn a_remembered_name_follows_changes_made_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("n.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let elsewhere = SqliteStore::open(&url).await.unwrap();
        let club = group("club");
        store.create_group(&club).await.unwrap();
        let tyler = User::new("tyler".into(), "tyler@example.com".into(), 1);
        store.create_user(&tyler, &[club.id]).await.unwrap();
        let marla = User::new("marla".into(), "marla@example.com".into(), 1);
        store.create_user(&marla, &[]).await.unwrap();
        graph_loaded(&store).await;

        assert!(is_in(&store, &club, "tyler").await);
        let known = store.names.get("tyler").expect("remembered");
        assert_eq!(known.id, tyler.id);
        assert!(is_in(&store, &club, "tyler").await, "answered from it");
        // A new user does not make a remembered name wrong.
        let bob = User::new("bob".into(), "bob@example.com".into(), 1);
        elsewhere.create_user(&bob, &[]).await.unwrap();
        assert_eq!(store.names.get("tyler"), Some(known));

        // "tyler" moved to marla behind this store's back.
        sqlx::raw_sql(&format!(
            "DELETE FROM user_identifiers WHERE key = 'tyler'; \
             INSERT INTO user_identifiers (key, user_id, user_seq) \
             SELECT 'tyler', id, seq FROM users WHERE id = '{}'",
            marla.id
        ))
        .execute(&elsewhere.writer)
        .await
        .unwrap();
        assert_eq!(
            answer(&store, "club", "tyler").await,
            (Some(club.id), Some(marla.id), false)
        );
        assert_eq!(store.names.get("tyler").map(|k| k.id), Some(marla.id));

        // Renamed, then deleted, elsewhere.
        assert!(is_in(&store, &club, "tyler@example.com").await);
        sqlx::raw_sql(
            "UPDATE user_identifiers SET key = 'tyler@example.org' WHERE key = 'tyler@example.com'",
        )
        .execute(&elsewhere.writer)
        .await
        .unwrap();
        assert_eq!(
            answer(&store, "club", "tyler@example.com").await,
            (Some(club.id), None, false)
        );
        assert!(is_in(&store, &club, "tyler@example.org").await);
        assert!(elsewhere.delete_user(tyler.id, 2).await.unwrap());
        assert_eq!(
            answer(&store, "club", "tyler@example.org").await,
            (Some(club.id), None, false)
        );
    }

    /// Migration 0005 moves memberships and names to integer keys: a database made by
    /// the migrations before it keeps every membership (direct and nested), every name,
    /// the groups' counts, and takes new groups, members and deletions afterwards.
    #[tokio::test]
    async fn integer_keys_migration_keeps_memberships_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let old = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let before_0005: Vec<_> = MIGRATOR.iter().filter(|m| m.version < 5).cloned().collect();
        assert_eq!(before_0005.len(), 4);
        let earlier = sqlx::migrate::Migrator {
            migrations: before_0005.into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        earlier.run(&old).await.unwrap();
        let (ann, bob) = (UserId::new(), UserId::new());
        let (outer, inner, other) = (GroupId::new(), GroupId::new(), GroupId::new());
        let mut script = String::new();
        for (id, name) in [(ann, "ann"), (bob, "bob")] {
            script += &format!(
                "INSERT INTO users (id, username, email, username_lc, email_lc, created, \
                 modified) VALUES ('{id}', '{name}', '{name}@x.io', '{name}', '{name}@x.io', 1, 1); \
                 INSERT INTO user_identifiers VALUES ('{name}', '{id}'), ('{name}@x.io', '{id}'); "
            );
        }
        for (id, name) in [(outer, "outer"), (inner, "inner"), (other, "other")] {
            script += &format!(
                "INSERT INTO groups (id, name, name_key, created, modified) \
                 VALUES ('{id}', '{name}', '{name}', 1, 1); \
                 INSERT INTO group_closure VALUES ('{id}', '{id}'); "
            );
        }
        script += &format!(
            "INSERT INTO group_children VALUES ('{outer}', '{inner}'); \
             INSERT INTO group_closure VALUES ('{outer}', '{inner}'); \
             INSERT INTO group_members VALUES ('{inner}', '{ann}'), ('{other}', '{bob}'), \
             ('{outer}', '{bob}');"
        );
        sqlx::raw_sql(&script).execute(&old).await.unwrap();
        old.close().await;

        let store = SqliteStore::open(&url).await.unwrap();
        for (group, user, member) in [
            ("inner", "ann", true),
            ("outer", "ann@x.io", true),
            ("other", "ann", false),
            ("other", "bob", true),
            ("outer", "bob@x.io", true),
            ("inner", "bob", false),
        ] {
            assert_eq!(
                answer(&store, group, user).await.2,
                member,
                "{user} in {group}"
            );
        }
        assert_eq!(store.find_user_by_key("bob@x.io").await.unwrap(), Some(bob));
        let counts = store.get_group(outer).await.unwrap().unwrap();
        assert_eq!((counts.user_count, counts.child_group_count), (1, 1));

        // New rows take numbers of their own.
        let newer = group("newer");
        store.create_group(&newer).await.unwrap();
        store.add_members(newer.id, &[ann]).await.unwrap();
        assert!(answer(&store, "newer", "ann").await.2);
        assert!(!answer(&store, "newer", "bob").await.2);
        let numbers: Vec<i64> = store
            .direct
            .read(|c| {
                c.prepare("SELECT seq FROM groups ORDER BY seq")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .unwrap();
        assert_eq!(numbers, [1, 2, 3, 4]);

        // Deleting a user takes their memberships and names with them.
        assert!(store.delete_user(bob, 2).await.unwrap());
        let left: (i64, i64) = store
            .direct
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM group_members), \
                     (SELECT COUNT(*) FROM user_identifiers)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap();
        assert_eq!(left, (2, 2), "ann's two memberships and two names");
    }
}
