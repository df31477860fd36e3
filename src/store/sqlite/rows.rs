//! Between rusqlite and the store's types: binding [`SqlValue`]s to `$N` placeholders,
//! reading rows by column name, and rusqlite's errors as [`StoreError`]s.

use std::borrow::Borrow;
use std::collections::HashMap;

use rusqlite::types::{FromSql, Value};

use crate::store::filter_sql::SqlValue;
use crate::store::sql::RowColumns;
use crate::store::{StoreError, StoreResult};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            // A row the write refers to is gone (as `sql::fk_or` reads it).
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL =>
            {
                Self::NotFound
            }
            other => Self::Other(Box::new(other)),
        }
    }
}

/// A column of an unexpected type, read through `get_ref`.
impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Other(Box::new(e))
    }
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
pub(super) const NO_ARRAYS: &str =
    "SQLite has no arrays: a statement for PostgreSQL was run on SQLite";

/// Binds `$N` placeholders to `params[N - 1]`. (SQLite numbers named parameters by
/// first appearance, and a list's text may name `$3` before `$1` or name one twice.)
pub(super) fn bind_numbered(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[SqlValue],
) -> StoreResult<()> {
    for index in 1..=stmt.parameter_count() {
        // `$N` names its value; an anonymous `?` takes the value at its position.
        let position = match stmt.parameter_name(index) {
            Some(name) => name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()),
            None => Some(index),
        };
        let value = position
            .and_then(|n| params.get(n.checked_sub(1)?))
            .ok_or_else(|| {
                StoreError::Other(format!("parameter {index} of a list query has no value").into())
            })?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

/// Runs a query bound with [`bind_numbered`] and maps every row.
pub(super) fn rows_of<T>(
    c: &rusqlite::Connection,
    text: &str,
    params: &[SqlValue],
    map: fn(&RowByName<'_, '_>) -> StoreResult<T>,
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

/// Where each column of a statement's result is, by name.
#[derive(Debug)]
pub(super) struct ColumnIndex(HashMap<String, usize>);

impl ColumnIndex {
    pub(super) fn of(stmt: &rusqlite::Statement<'_>) -> Self {
        let names = stmt.column_names().into_iter();
        Self(names.enumerate().map(|(i, n)| (n.to_owned(), i)).collect())
    }

    fn get(&self, column: &str) -> StoreResult<usize> {
        self.0.get(column).copied().ok_or_else(|| {
            StoreError::Other(rusqlite::Error::InvalidColumnName(column.to_owned()).into())
        })
    }
}

/// The values of one row, by position: a row being read, or one read already.
pub(super) trait Cells {
    /// The value in column `at`.
    fn cell<T: FromSql>(&self, at: usize) -> StoreResult<T>;
}

impl Cells for &rusqlite::Row<'_> {
    fn cell<T: FromSql>(&self, at: usize) -> StoreResult<T> {
        Ok(self.get(at)?)
    }
}

impl Cells for Vec<Value> {
    fn cell<T: FromSql>(&self, at: usize) -> StoreResult<T> {
        let value = self.get(at).ok_or(StoreError::Other(
            rusqlite::Error::InvalidColumnIndex(at).into(),
        ))?;
        Ok(T::column_result(value.into())?)
    }
}

/// A rusqlite row read by column name (`sql::user_from` and its siblings). rusqlite
/// finds a name by fetching and comparing every column's name on each read; for a user
/// row of 30 columns that was 40% of the CPU of serving a page of users. Here the
/// positions are looked up once per statement ([`ColumnIndex`]).
pub(super) struct ByName<C, I> {
    cells: C,
    columns: I,
}

/// A row being read, by name.
pub(super) type RowByName<'a, 'stmt> = ByName<&'a rusqlite::Row<'stmt>, &'a ColumnIndex>;

/// A row read already, with its values (the batch writer's executor returns these).
pub(super) type OwnedRow = ByName<Vec<Value>, std::sync::Arc<ColumnIndex>>;

impl<C: Cells, I: Borrow<ColumnIndex>> ByName<C, I> {
    pub(super) fn new(cells: C, columns: I) -> Self {
        Self { cells, columns }
    }

    fn get<T: FromSql>(&self, column: &str) -> StoreResult<T> {
        self.cells.cell(self.columns.borrow().get(column)?)
    }
}

impl<'stmt> RowByName<'_, 'stmt> {
    /// The row itself, to read by position.
    pub(super) fn row(&self) -> &rusqlite::Row<'stmt> {
        self.cells
    }
}

/// Maps the one row of a `query_row` by column name.
pub(super) fn by_name<T>(row: &rusqlite::Row<'_>, map: impl FnOnce(&RowByName<'_, '_>) -> T) -> T {
    let columns = ColumnIndex::of(row.as_ref());
    map(&ByName::new(row, &columns))
}

impl<C: Cells, I: Borrow<ColumnIndex>> RowColumns for ByName<C, I> {
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
