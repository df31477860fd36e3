//! The executors of `store/transactions.rs` on SQLite: [`SqliteTx`] over sqlx's writer
//! connection, [`Direct`] over the batch writer's rusqlite connection. Neither takes a
//! lock or locks rows (`Tx`'s defaults): every write transaction here begins with
//! `BEGIN IMMEDIATE`, which holds the database's write lock until it ends.

use std::ops::DerefMut;
use std::sync::Arc;

use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::rows::{ColumnIndex, NO_ARRAYS, OwnedRow, bind_numbered};
use crate::store::filter_sql::{Dialect, SqlValue};
use crate::store::sql;
use crate::store::tx::Tx;
use crate::store::{StoreError, StoreResult};

/// The executor of `store/transactions.rs` over sqlx's writer connection (in a transaction
/// or not).
pub(super) struct SqliteTx<C>(pub(super) C);

impl SqliteTx<Transaction<'static, Sqlite>> {
    /// Commits, and hands back what the transaction made.
    pub(super) async fn commit<T>(self, out: T) -> StoreResult<T> {
        self.0.commit().await?;
        Ok(out)
    }
}

impl<C: DerefMut<Target = SqliteConnection> + Send> Tx for SqliteTx<C> {
    type Row = SqliteRow;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let done = sqlx::query_with(sql, sqlx_args(args)?)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
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

/// The executor of `store/transactions.rs` over the batch writer's rusqlite connection, inside
/// the batch's transaction (in the change's savepoint). Nothing it does waits, so the
/// logic's futures finish on their first poll ([`run_now`]).
pub(super) struct Direct<'c>(pub(super) &'c rusqlite::Connection);

impl Direct<'_> {
    /// Every row of a query, each value of it.
    fn rows(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<OwnedRow>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind_numbered(&mut stmt, args)?;
        let columns = Arc::new(ColumnIndex::of(&stmt));
        let width = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..width)
                .map(|i| row.get(i))
                .collect::<rusqlite::Result<_>>()?;
            all.push(OwnedRow::new(values, Arc::clone(&columns)));
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

    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind_numbered(&mut stmt, args)?;
        Ok(stmt.raw_execute()? as u64)
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
pub(super) fn run_now<T>(
    work: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
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
    Ok(sql::sqlx_arguments::<Sqlite>(
        params,
        str::to_owned,
        |_, _| Err(NO_ARRAYS.into()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_writer_runs_logic_to_its_end_in_one_poll_or_says_it_waited() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a'), ('b')")
            .unwrap();
        let texts = run_now(async {
            let mut tx = Direct(&conn);
            let a = [SqlValue::Text("a".into())];
            assert_eq!(tx.execute("DELETE FROM t WHERE x = $1", &a).await?, 1);
            tx.fetch_texts("SELECT x FROM t", &[]).await
        });
        assert_eq!(texts.unwrap(), ["b"]);
        let waited = run_now(std::future::pending::<StoreResult<()>>());
        assert!(matches!(waited, Err(StoreError::Other(_))));
    }
}
