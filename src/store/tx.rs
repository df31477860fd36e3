//! The executor the store's transactions are written against: one small trait, [`Tx`],
//! over one open transaction (or connection), implemented by each backend.
//!
//! Role: let `transactions.rs` state each transaction's logic once, for SQLite and
//! PostgreSQL alike. Statements take their values as [`SqlValue`]s and hand rows back
//! as the driver's row type, read through [`RowColumns`]; errors are [`StoreError`](super::StoreError)s
//! that still carry the driver's error, so `sql::unique_or` and `sql::fk_or` map them
//! as before. The backends differ only in the hooks: how a transaction begins and is
//! retried (each store's own code), [`Tx::lock`] (advisory locks on PostgreSQL, nothing
//! on SQLite, whose write lock is taken by `BEGIN IMMEDIATE`), [`Tx::row_lock`]
//! (`FOR UPDATE`/`FOR SHARE` on PostgreSQL only) and the binding of text (PostgreSQL's
//! executor swaps NUL, which its text cannot hold).
//!
//! # Why a generic, not `&mut dyn Tx`
//!
//! The logic is generic over `T: Tx` (native `async fn` in a crate-private trait):
//! - The group-commit writer runs membership changes synchronously on a rusqlite
//!   connection it only borrows (`&Connection`, which is not `Send`). A generic lets the
//!   same logic run there, with futures that never wait, polled once
//!   (`sqlite::executor::run_now`); a trait object behind `async_trait` would have to
//!   be `Send` and could not.
//! - No box per statement: the futures are the drivers' own.
//! - Compile time stays small: the logic is a few hundred lines, monomorphized once per
//!   executor (sqlx SQLite, sqlx PostgreSQL, and two functions for the batch writer),
//!   and an executor's futures are `Send` exactly when its connection is, which the
//!   `Send` futures of `Store` need and get by inference rather than by bounds.
//!
//! It must not know any backend: no driver type, no dialect-specific text (that is in
//! `sql.rs`, chosen by [`Tx::dialect`]).

use super::StoreResult;
use super::filter_sql::{Dialect, SqlValue};
use super::sql::RowColumns;

/// An invariant whose check and write must not interleave with another node's: an
/// advisory lock on PostgreSQL (see `postgres.rs`), nothing on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock<'a> {
    /// Group-graph writes (the cycle check).
    Graph,
    /// Writes that may take an administrator away (the last-administrator guard).
    Admin,
    /// One refresh-token family's revocation and growth.
    Family(&'a str),
    /// Inserting memberships: shared with other inserters, exclusive with the deletion
    /// of a user or group, which deletes their memberships (PostgreSQL migration 0005,
    /// where memberships have no foreign keys). Take it after every other lock and
    /// before the insert's statement, which then resolves the user and group afresh.
    Members,
    /// The audit trail's index passes and retention (PostgreSQL: retention must not
    /// remove an event a pass is indexing, `postgres/audit_index.rs`).
    AuditIndex,
}

/// How a read locks the rows it returns until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Against changes and other `FOR UPDATE` readers.
    Update,
    /// Against changes only.
    Share,
    /// Against changes and other claims, skipping rows another transaction holds
    /// (a work queue: each row to one claimant).
    Claim,
}

/// One open transaction (or a connection for a single statement). See the module
/// documentation.
pub(crate) trait Tx {
    /// The rows it fetches.
    type Row: RowColumns;

    /// Which SQL dialect the statements are written in.
    fn dialect(&self) -> Dialect;

    /// The clause that makes a `SELECT` lock its rows. By default none: a transaction
    /// that holds the database's write lock from its start (SQLite's `BEGIN IMMEDIATE`)
    /// has every row to itself already.
    fn row_lock(&self, mode: RowLock) -> &'static str {
        let _ = mode;
        ""
    }

    /// Serializes the transaction with every other that takes `lock`, until it ends. By
    /// default nothing, for the same reason as [`Tx::row_lock`].
    async fn lock(&mut self, lock: Lock<'_>) -> StoreResult<()> {
        let _ = lock;
        Ok(())
    }

    /// Runs a statement; returns the rows it changed.
    async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64>;

    /// Runs a statement whose text is built for one call (a multi-row insert): it is
    /// not kept prepared where that costs (PostgreSQL). By default as [`Tx::execute`].
    async fn execute_once(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        self.execute(sql, args).await
    }

    /// The row a query returns, if any.
    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[SqlValue],
    ) -> StoreResult<Option<Self::Row>>;

    /// Every row a query returns.
    async fn fetch_all(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<Self::Row>>;

    /// The boolean in the first column of the one row a query returns (`SELECT EXISTS`).
    async fn fetch_flag(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<bool>;

    /// The text in the first column of every row a query returns.
    async fn fetch_texts(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<String>>;
}

/// A text value to bind.
pub(crate) fn text(s: impl Into<String>) -> SqlValue {
    SqlValue::Text(s.into())
}

/// A nullable text value to bind.
pub(crate) fn opt_text(s: Option<impl Into<String>>) -> SqlValue {
    s.map_or(SqlValue::NullText, |s| SqlValue::Text(s.into()))
}

/// A nullable integer to bind.
pub(crate) fn opt_int(i: Option<i64>) -> SqlValue {
    i.map_or(SqlValue::Null, SqlValue::Int)
}

/// An id (anything shown as a UUID) to bind.
pub(crate) fn id(id: impl ToString) -> SqlValue {
    SqlValue::Text(id.to_string())
}
