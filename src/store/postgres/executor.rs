//! The executor of `store/transactions.rs` on PostgreSQL, [`PgTx`], with what it adds:
//! advisory locks and row locks, the retry after a deadlock, and text binding that
//! PostgreSQL can hold.

use std::future::Future;
use std::ops::DerefMut;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, PgConnection, Postgres, Transaction};

use crate::store::filter_sql::{Dialect, SqlValue};
use crate::store::sql;
use crate::store::tx::{Lock, RowLock, Tx};
use crate::store::{StoreError, StoreResult};

/// Advisory-lock class serializing group-graph writes (ASCII "GH" and 1).
const GRAPH_LOCK: i32 = 0x4748_0001;

/// Advisory-lock class serializing transactions that may remove an administrator.
const ADMIN_LOCK: i32 = 0x4748_0002;

/// Advisory-lock class serializing a refresh-token family's revocation and growth.
const FAMILY_LOCK: i32 = 0x4748_0003;

/// Advisory-lock class serializing the audit trail's index passes with each other and
/// with retention (`audit_index.rs`).
pub(super) const AUDIT_INDEX_LOCK: i32 = 0x4748_0005;

/// How often a transaction that hit a deadlock or serialization failure is retried.
pub(super) const MAX_RETRIES: u32 = 4;

/// The executor of `transactions.rs` over one PostgreSQL transaction (or pooled
/// connection).
pub(super) struct PgTx<C> {
    pub(super) conn: C,
    /// The store's lock scope (`PgStore::scope`).
    pub(super) scope: i32,
}

impl<C: DerefMut<Target = PgConnection> + Send> Tx for PgTx<C> {
    type Row = PgRow;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn row_lock(&self, mode: RowLock) -> &'static str {
        match mode {
            RowLock::Update => " FOR UPDATE",
            RowLock::Share => " FOR SHARE",
            RowLock::Claim => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Takes the advisory lock until the transaction ends: the class says which
    /// invariant, the key is the schema's (for a family, with the family's mixed in).
    /// The member guard is a function of migration 0005, shared with its triggers.
    async fn lock(&mut self, lock: Lock<'_>) -> StoreResult<()> {
        let (class, key) = match lock {
            Lock::Members => {
                // The deletions' triggers take it too, so its key is made in SQL.
                sqlx::query("SELECT gatehouse_member_guard(false)")
                    .execute(&mut *self.conn)
                    .await?;
                return Ok(());
            }
            Lock::Graph => (GRAPH_LOCK, self.scope),
            Lock::Admin => (ADMIN_LOCK, self.scope),
            Lock::Family(family) => (FAMILY_LOCK, lock_key(family) ^ self.scope),
            Lock::AuditIndex => (AUDIT_INDEX_LOCK, self.scope),
        };
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(class)
            .bind(key)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let done = sqlx::query_with(sql, bind_all(args)?)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn execute_once(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let done = sqlx::query_with(sql, bind_all(args)?)
            .persistent(false)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch_optional(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Option<PgRow>> {
        Ok(sqlx::query_with(sql, bind_all(args)?)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn fetch_all(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<PgRow>> {
        Ok(sqlx::query_with(sql, bind_all(args)?)
            .fetch_all(&mut *self.conn)
            .await?)
    }

    async fn fetch_flag(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<bool> {
        Ok(sqlx::query_scalar_with(sql, bind_all(args)?)
            .fetch_one(&mut *self.conn)
            .await?)
    }

    async fn fetch_texts(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar_with(sql, bind_all(args)?)
            .fetch_all(&mut *self.conn)
            .await?)
    }
}

impl PgTx<Transaction<'static, Postgres>> {
    /// Commits, and hands back what the transaction made.
    pub(super) async fn commit<T>(self, out: T) -> StoreResult<T> {
        self.conn.commit().await?;
        Ok(out)
    }
}

/// A stable 32-bit key for an advisory lock (FNV-1a; the same on every node).
pub(super) fn lock_key(s: &str) -> i32 {
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
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> StoreResult<T>
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
pub(super) fn pg_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Binds [`SqlValue`]s for sqlx's PostgreSQL driver, text through [`pg_text`].
pub(super) fn bind_all(params: &[SqlValue]) -> Result<PgArguments, sqlx::Error> {
    sql::sqlx_arguments::<Postgres>(
        params,
        |s| pg_text(s).into_owned(),
        |args, texts| args.add(texts),
    )
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
