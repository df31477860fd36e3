//! The one translator from a query ([`Expr`], [`OrderBy`]) to SQL, for SQLite and
//! PostgreSQL, with the few places where they differ chosen by [`Dialect`].
//!
//! Role: produce SQL text plus the values to bind, for the store to splice into its own
//! `SELECT`. Every value from the client becomes a bound parameter written `$N`; the SQL
//! text holds only column names from the store's [`Columns`] mapping, fixed keywords and
//! fixed literals chosen here (such as JSON type names). Field names from the client never
//! reach the SQL text.
//!
//! It must not execute SQL, import sqlx, or read the clock: the current time and user come
//! in through [`Ctx`].
//!
//! Semantics, the same on both backends:
//! - **Two-valued logic.** Every comparison yields true or false, never SQL NULL: a row
//!   whose field is missing (NULL, or an absent custom key) fails every positive
//!   comparison. So `!=`, `!~`, `not in` and `not (...)` match such rows, and
//!   `not (firstName = 'x')` means the same as `firstName != 'x'`.
//! - **Text** (text and id fields) compares case-insensitively: `lower(column)` against a
//!   value lowercased here with `to_lowercase` (Unicode). SQLite's `lower()` folds ASCII
//!   only, so the stores map the fields where case matters (username, email, names, group
//!   name) to columns that already hold the Unicode lower-case text; for the remaining
//!   text fields on SQLite, non-ASCII capitals in stored data match only in the same case. `contains`/`startsWith`/`endsWith`/`freeText` use `LIKE ... ESCAPE '\'`
//!   with `%`, `_` and `\` in the value escaped. Ordering comparisons (`>`, `between`) and
//!   `ORDER BY` on text use byte order (PostgreSQL `COLLATE "C"`, SQLite's default).
//! - **Timestamps** are integers (milliseconds). A bare date stands for its whole UTC day:
//!   `= 2024-01-31` matches any time that day, `> 2024-01-31` means after that day,
//!   `>= 2024-01-31` from its start, `< 2024-01-31` before its start, `<= 2024-01-31` up to
//!   its end, and `between(d1, d2)` from the start of `d1` to the end of `d2`.
//! - **Custom properties** (`custom.<key>`, one top-level key of a JSON object in a text
//!   column) compare by JSON type: a text value matches stored strings only
//!   (case-insensitively), a number matches stored numbers only (numerically; the
//!   PostgreSQL cast is guarded by `jsonb_typeof` inside a `CASE`, so non-numeric data
//!   never raises a cast error), a boolean matches stored booleans only. `= null` and
//!   `exists false` match an absent key and a JSON null alike.
//! - **Ordering** puts NULLs last in both directions on both backends; text (and custom
//!   properties, whatever their JSON type) sorts case-insensitively as text. The caller
//!   should append a unique column (the id) as a final tie-breaker for stable paging.

use crate::query::ast::{
    Condition, Direction, Expr, FieldRef, FieldType, Op, OrderBy, Relation, Value,
};

/// The SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.45 or later (as bundled with sqlx), for the JSON path key escapes.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Folds a value for a case-insensitive comparison: Unicode lower case on both
/// dialects, like the stores' pre-folded columns and PostgreSQL's `lower()`.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl Dialect {
    /// The `COLLATE` suffix that makes text compare and sort in byte order (empty on
    /// SQLite, where that is the default).
    pub fn byte_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }
}

/// A `LIKE ... ESCAPE '\'` pattern for `s`, folded, with `%`, `_` and `\` escaped;
/// `prefix`/`suffix` add the leading/trailing `%`.
pub fn like_pattern(s: &str, prefix: bool, suffix: bool) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    if prefix {
        p.push('%');
    }
    for c in fold(s).chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    if suffix {
        p.push('%');
    }
    p
}

/// The `LIKE` pattern of LDAP substrings: `initial%any1%…%last`, each part folded and
/// escaped, with a `%` at an end that is not anchored. `LIKE` consumes the parts left to
/// right, so they never overlap, as RFC 4517 requires.
pub fn substrings_pattern(initial: Option<&str>, any: &[String], last: Option<&str>) -> String {
    let mut p = like_pattern(initial.unwrap_or(""), false, true);
    for part in any {
        p.push_str(&like_pattern(part, false, true));
    }
    p.push_str(&like_pattern(last.unwrap_or(""), false, false));
    p
}

/// A value to bind, in placeholder order (`$1` is `params[0]`).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL (not produced by the translator, available to callers), typed as an
    /// integer where the database types parameters by their value (PostgreSQL).
    Null,
    /// SQL NULL typed as text (a cleared text column): PostgreSQL refuses an integer
    /// NULL for a text column.
    NullText,
    /// A boolean: `BOOLEAN` on PostgreSQL, `0`/`1` on SQLite.
    Bool(bool),
    /// A 64-bit integer (timestamps in milliseconds, custom numbers).
    Int(i64),
    /// A double (custom numbers that are not integers).
    Real(f64),
    /// Text (text values, LIKE patterns, custom keys and JSON paths).
    Text(String),
    /// Bytes (signing keys).
    Blob(Vec<u8>),
    /// A list of texts, for `= ANY($n)`: PostgreSQL only (SQLite has no arrays).
    TextArray(Vec<String>),
}

/// How the store names its columns. Implemented by each store for each resource; the
/// names it returns are the only identifiers the translator writes.
pub trait Columns {
    /// The column expression for a canonical field name of the resource's `FieldSet`,
    /// e.g. `firstName` → `u.first_name`, `status.suspended` → `u.suspended`.
    fn column(&self, canonical_field: &str) -> &'static str;
    /// The text column holding the resource's `custom` JSON object, e.g. `u.custom`.
    fn custom_column(&self) -> &'static str;
    /// The text columns a field-less `freeText` searches, e.g. username, email and names.
    fn free_text_columns(&self) -> &'static [&'static str];
    /// Whether a column (as returned by [`Columns::column`]) already holds lower-case text,
    /// so comparisons can use it (and its index) without wrapping it in `lower()`.
    fn is_folded(&self, _column: &str) -> bool {
        false
    }
    /// A SQLite FTS5 trigram index over a column, if there is one: substring filters of
    /// three or more characters then look it up instead of scanning every row.
    fn fts(&self, _column: &str) -> Option<FtsIndex> {
        None
    }
    /// An index that finds the rows whose folded `column` equals a value, for a column
    /// that has none of its own: a fixed SQL condition with `{}` where the bound folded
    /// value goes (e.g. the email through the `user_identifiers` table). The equality
    /// itself is still tested, so the index may return more rows than match.
    fn equality_index(&self, _column: &str) -> Option<&'static str> {
        None
    }
    /// The SQL condition of a [`Relation`] for this resource, with `{}` where the bound id
    /// of the other end goes; `None` when the resource has no such relation (the
    /// condition is then false).
    fn relation(&self, _rel: Relation) -> Option<&'static str> {
        None
    }

    /// The SQL condition "the [`Relation`] holds with at least one other end" for this
    /// resource; `None` (false) when it has no such relation.
    fn relation_any(&self, _rel: Relation) -> Option<&'static str> {
        None
    }
}

/// Where a column's text is indexed for substring search (SQLite FTS5, trigram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FtsIndex {
    /// The FTS5 table, e.g. `users_fts`.
    pub table: &'static str,
    /// The expression the FTS rowid equals, e.g. `u.seq`.
    pub key: &'static str,
    /// The FTS5 column holding this text, e.g. `email`.
    pub column: &'static str,
}

/// The smallest string greater than every string that starts with `prefix` (in code
/// point order, which is SQLite's BINARY order for UTF-8), or `None` when there is none
/// (an empty prefix, or one made only of `char::MAX`).
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What a query may refer to besides its own text: the time and the caller.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The current time in milliseconds since the epoch (from the service's clock).
    pub now_ms: i64,
    /// The id of the calling user, for `currentUser()`.
    pub current_user_id: String,
}

/// Translates a filter into a SQL boolean expression, pushing its values onto `params`.
/// Placeholders are numbered from `params.len() + 1`, so the caller may push its own
/// parameters first. The result is always parenthesised or atomic, so it can be joined
/// with `AND` safely.
pub fn translate(
    expr: &Expr,
    cols: &dyn Columns,
    dialect: Dialect,
    ctx: &Ctx,
    params: &mut Vec<SqlValue>,
) -> String {
    Writer {
        cols,
        dialect,
        ctx,
        params,
    }
    .expr(expr)
}

/// Translates an ordering into the body of an `ORDER BY` clause, e.g.
/// `lower(u.last_name) ASC NULLS LAST, u.created DESC NULLS LAST` (empty for an empty
/// ordering). Custom keys are bound, so this may push onto `params`.
pub fn order_by_sql(
    order: &OrderBy,
    cols: &dyn Columns,
    dialect: Dialect,
    params: &mut Vec<SqlValue>,
) -> String {
    let ctx = Ctx {
        now_ms: 0,
        current_user_id: String::new(),
    };
    let mut w = Writer {
        cols,
        dialect,
        ctx: &ctx,
        params,
    };
    let mut parts = Vec::with_capacity(order.0.len());
    for (field, dir) in &order.0 {
        let key = match field {
            FieldRef::Named(def) => {
                let col = cols.column(def.name);
                match def.ty {
                    FieldType::Id | FieldType::Text => format!("{}{}", w.lower(col), w.collate()),
                    FieldType::Timestamp | FieldType::Bool => col.to_owned(),
                }
            }
            FieldRef::Custom(key) => {
                let acc = w.custom_value(key);
                format!("lower({acc}){}", w.collate())
            }
            FieldRef::AnyText => continue,
        };
        let dir = match dir {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        };
        parts.push(format!("{key} {dir} NULLS LAST"));
    }
    parts.join(", ")
}

/// Where a comparison looks.
#[derive(Clone, Copy)]
enum Target<'k> {
    /// A text or id column.
    Text(&'static str),
    /// An integer-milliseconds column.
    Time(&'static str),
    /// A boolean column.
    Bool(&'static str),
    /// A key of the custom JSON column.
    Custom(&'k str),
}

/// The positive comparisons everything else is built from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }
}

struct Writer<'a> {
    cols: &'a dyn Columns,
    dialect: Dialect,
    ctx: &'a Ctx,
    params: &'a mut Vec<SqlValue>,
}

const FALSE: &str = "FALSE";

impl Writer<'_> {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }

    fn collate(&self) -> &'static str {
        self.dialect.byte_order()
    }

    /// `lower(col)`, or the column itself when it already holds lower-case text.
    fn lower(&self, col: &str) -> String {
        if self.cols.is_folded(col) {
            col.to_owned()
        } else {
            format!("lower({col})")
        }
    }

    /// Case folding of values: Unicode lower case, like the stores' `*_lc` columns.
    fn fold(&self, s: &str) -> String {
        fold(s)
    }

    fn like_pattern(&self, s: &str, prefix: bool, suffix: bool) -> String {
        like_pattern(s, prefix, suffix)
    }

    fn expr(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(items) => self.join(items, " AND ", "TRUE"),
            Expr::Or(items) => self.join(items, " OR ", FALSE),
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner)),
            Expr::Cmp(c) => self.condition(c),
            Expr::Related(rel, id) => match self.cols.relation(*rel) {
                Some(sql) => {
                    // Ids are lower case by construction; a provider is matched exactly.
                    let value = match rel {
                        Relation::Provider => id.clone(),
                        _ => self.fold(id),
                    };
                    let p = self.bind(SqlValue::Text(value));
                    format!("({})", sql.replace("{}", &p))
                }
                None => FALSE.to_owned(),
            },
            Expr::RelatedAny(rel) => match self.cols.relation_any(*rel) {
                Some(sql) => format!("({sql})"),
                None => FALSE.to_owned(),
            },
        }
    }

    fn join(&mut self, items: &[Expr], sep: &str, empty: &str) -> String {
        match items {
            [] => empty.to_owned(),
            [one] => self.expr(one),
            _ => {
                let parts: Vec<String> = items.iter().map(|e| self.expr(e)).collect();
                format!("({})", parts.join(sep))
            }
        }
    }

    fn target<'k>(&self, field: &'k FieldRef) -> Option<Target<'k>> {
        Some(match field {
            FieldRef::Named(def) => {
                let col = self.cols.column(def.name);
                match def.ty {
                    FieldType::Id | FieldType::Text => Target::Text(col),
                    FieldType::Timestamp => Target::Time(col),
                    FieldType::Bool => Target::Bool(col),
                }
            }
            FieldRef::Custom(key) => Target::Custom(key),
            FieldRef::AnyText => return None,
        })
    }

    fn condition(&mut self, c: &Condition) -> String {
        let Some(t) = self.target(&c.field) else {
            // Only `freeText` can range over every text field.
            return match &c.op {
                Op::FreeText(s) => {
                    let cols = self.cols.free_text_columns();
                    self.free_text(&cols.iter().map(|c| Target::Text(c)).collect::<Vec<_>>(), s)
                }
                _ => FALSE.to_owned(),
            };
        };
        match &c.op {
            Op::Eq(v) => self.eq(t, v),
            Op::Ne(Value::Null) => self.null_test(t, false),
            Op::Ne(v) => format!("(NOT {})", self.eq(t, v)),
            Op::Contains(s) => self.like(t, s, true, true),
            Op::NotContains(s) => format!("(NOT {})", self.like(t, s, true, true)),
            Op::StartsWith(s) => self.like(t, s, false, true),
            Op::EndsWith(s) => self.like(t, s, true, false),
            Op::Substrings { initial, any, last } => {
                let pattern = substrings_pattern(initial.as_deref(), any, last.as_deref());
                self.like_sql(t, pattern)
            }
            Op::In(vs) => self.any_eq(t, vs),
            Op::NotIn(vs) => format!("(NOT {})", self.any_eq(t, vs)),
            Op::Exists(b) => self.null_test(t, !b),
            Op::Between(a, b) => self.between(t, a, b),
            Op::Gt(v) => self.compare(t, Cmp::Gt, v),
            Op::Ge(v) => self.compare(t, Cmp::Ge, v),
            Op::Lt(v) => self.compare(t, Cmp::Lt, v),
            Op::Le(v) => self.compare(t, Cmp::Le, v),
            Op::FreeText(s) => self.free_text(&[t], s),
        }
    }

    fn eq(&mut self, t: Target<'_>, v: &Value) -> String {
        match v {
            Value::Null => self.null_test(t, true),
            _ => self.compare(t, Cmp::Eq, v),
        }
    }

    fn any_eq(&mut self, t: Target<'_>, vs: &[Value]) -> String {
        let parts: Vec<String> = vs.iter().map(|v| self.eq(t, v)).collect();
        match parts.len() {
            0 => FALSE.to_owned(),
            1 => parts.concat(),
            _ => format!("({})", parts.join(" OR ")),
        }
    }

    /// `IS NULL` (or `IS NOT NULL`); for a custom key, absent and JSON null are both null.
    fn null_test(&mut self, t: Target<'_>, is_null: bool) -> String {
        let what = if is_null { "IS NULL" } else { "IS NOT NULL" };
        match t {
            Target::Text(col) | Target::Time(col) | Target::Bool(col) => format!("{col} {what}"),
            Target::Custom(key) => {
                let acc = self.custom_value(key);
                format!("{acc} {what}")
            }
        }
    }

    /// The text of a value compared with a text field or a custom string, folded.
    fn text_of(&self, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(self.fold(s)),
            Value::CurrentUser => Some(self.fold(&self.ctx.current_user_id)),
            _ => None,
        }
    }

    fn compare(&mut self, t: Target<'_>, cmp: Cmp, v: &Value) -> String {
        let op = cmp.sql();
        match t {
            Target::Text(col) => {
                let Some(text) = self.text_of(v) else {
                    return FALSE.to_owned();
                };
                let coll = if cmp == Cmp::Eq { "" } else { self.collate() };
                let p = self.bind(SqlValue::Text(text));
                let folded = self.lower(col);
                let index = self
                    .cols
                    .equality_index(col)
                    .filter(|_| cmp == Cmp::Eq && self.cols.is_folded(col));
                match index {
                    Some(index) => format!("({} AND {folded} {op} {p})", index.replace("{}", &p)),
                    None => format!("({col} IS NOT NULL AND {folded}{coll} {op} {p})"),
                }
            }
            Target::Time(col) => {
                let Some((lo, hi)) = v.time_range(self.ctx.now_ms) else {
                    return FALSE.to_owned();
                };
                match cmp {
                    Cmp::Eq if lo == hi => {
                        let p = self.bind(SqlValue::Int(lo));
                        format!("({col} IS NOT NULL AND {col} = {p})")
                    }
                    Cmp::Eq => self.time_range(col, lo, hi),
                    Cmp::Gt | Cmp::Le => {
                        let p = self.bind(SqlValue::Int(hi));
                        format!("({col} IS NOT NULL AND {col} {op} {p})")
                    }
                    Cmp::Ge | Cmp::Lt => {
                        let p = self.bind(SqlValue::Int(lo));
                        format!("({col} IS NOT NULL AND {col} {op} {p})")
                    }
                }
            }
            Target::Bool(col) => match (cmp, v) {
                (Cmp::Eq, Value::Bool(b)) => {
                    let p = self.bind(SqlValue::Bool(*b));
                    format!("({col} IS NOT NULL AND {col} = {p})")
                }
                _ => FALSE.to_owned(),
            },
            Target::Custom(key) => match v {
                Value::Int(_) | Value::Float(_) => self.custom_number(key, &[(cmp, v)]),
                Value::Bool(b) if cmp == Cmp::Eq => self.custom_bool(key, *b),
                _ => match self.text_of(v) {
                    Some(text) => {
                        let coll = if cmp == Cmp::Eq { "" } else { self.collate() };
                        let guard = self.custom_is_string(key);
                        let acc = self.custom_value(key);
                        let p = self.bind(SqlValue::Text(text));
                        format!("COALESCE({guard} AND lower({acc}){coll} {op} {p}, FALSE)")
                    }
                    None => FALSE.to_owned(),
                },
            },
        }
    }

    fn time_range(&mut self, col: &str, lo: i64, hi: i64) -> String {
        let a = self.bind(SqlValue::Int(lo));
        let b = self.bind(SqlValue::Int(hi));
        format!("({col} IS NOT NULL AND {col} >= {a} AND {col} <= {b})")
    }

    fn between(&mut self, t: Target<'_>, a: &Value, b: &Value) -> String {
        match t {
            Target::Text(col) => {
                let (Some(x), Some(y)) = (self.text_of(a), self.text_of(b)) else {
                    return FALSE.to_owned();
                };
                let coll = self.collate();
                let p = self.bind(SqlValue::Text(x));
                let q = self.bind(SqlValue::Text(y));
                let folded = self.lower(col);
                format!("({col} IS NOT NULL AND {folded}{coll} >= {p} AND {folded}{coll} <= {q})")
            }
            Target::Time(col) => {
                let now = self.ctx.now_ms;
                let (Some((lo, _)), Some((_, hi))) = (a.time_range(now), b.time_range(now)) else {
                    return FALSE.to_owned();
                };
                self.time_range(col, lo, hi)
            }
            Target::Bool(_) => FALSE.to_owned(),
            Target::Custom(key) => {
                let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
                if numeric(a) && numeric(b) {
                    return self.custom_number(key, &[(Cmp::Ge, a), (Cmp::Le, b)]);
                }
                let (Some(x), Some(y)) = (self.text_of(a), self.text_of(b)) else {
                    return FALSE.to_owned();
                };
                let coll = self.collate();
                let guard = self.custom_is_string(key);
                let acc1 = self.custom_value(key);
                let p = self.bind(SqlValue::Text(x));
                let acc2 = self.custom_value(key);
                let q = self.bind(SqlValue::Text(y));
                format!(
                    "COALESCE({guard} AND lower({acc1}){coll} >= {p} AND lower({acc2}){coll} <= {q}, FALSE)"
                )
            }
        }
    }

    fn like(&mut self, t: Target<'_>, s: &str, prefix: bool, suffix: bool) -> String {
        // `startsWith` on a lower-case column is a range: SQLite then walks the column's
        // index instead of testing every row (its LIKE optimisation does not apply here).
        if let (Target::Text(col), Dialect::Sqlite, false, true) = (t, self.dialect, prefix, suffix)
        {
            if self.cols.is_folded(col) {
                let lo = self.fold(s);
                if let Some(hi) = successor(&lo) {
                    let a = self.bind(SqlValue::Text(lo));
                    let b = self.bind(SqlValue::Text(hi));
                    return format!("({col} IS NOT NULL AND {col} >= {a} AND {col} < {b})");
                }
            }
        }
        let pattern = self.like_pattern(s, prefix, suffix);
        // Through the trigram index when there is one: it finds every row holding the
        // text anywhere; the LIKE then keeps the exact start/end semantics.
        if let (Target::Text(col), Dialect::Sqlite) = (t, self.dialect) {
            if let Some(f) = self.cols.fts(col).filter(|_| s.chars().count() >= 3) {
                let phrase = format!("{} : \"{}\"", f.column, s.replace('"', "\"\""));
                let like = self.like_sql(t, pattern);
                let m = self.bind(SqlValue::Text(phrase));
                return format!(
                    "({} IN (SELECT rowid FROM {} WHERE {} MATCH {m}) AND {like})",
                    f.key, f.table, f.table
                );
            }
        }
        self.like_sql(t, pattern)
    }

    /// `LIKE pattern ESCAPE '\'` on a text field or a custom string; false elsewhere.
    fn like_sql(&mut self, t: Target<'_>, pattern: String) -> String {
        match t {
            Target::Text(col) => {
                let p = self.bind(SqlValue::Text(pattern));
                let folded = self.lower(col);
                format!("({col} IS NOT NULL AND {folded} LIKE {p} ESCAPE '\\')")
            }
            Target::Custom(key) => {
                let guard = self.custom_is_string(key);
                let acc = self.custom_value(key);
                let p = self.bind(SqlValue::Text(pattern));
                format!("COALESCE({guard} AND lower({acc}) LIKE {p} ESCAPE '\\', FALSE)")
            }
            Target::Time(_) | Target::Bool(_) => FALSE.to_owned(),
        }
    }

    /// Every word must be contained in at least one of the targets.
    fn free_text(&mut self, targets: &[Target<'_>], s: &str) -> String {
        if targets.is_empty() {
            return FALSE.to_owned();
        }
        let mut words = Vec::new();
        for word in s.split_whitespace() {
            let alts: Vec<String> = targets
                .iter()
                .map(|t| self.like(*t, word, true, true))
                .collect();
            words.push(if alts.len() == 1 {
                alts.concat()
            } else {
                format!("({})", alts.join(" OR "))
            });
        }
        match words.len() {
            0 => FALSE.to_owned(),
            1 => words.concat(),
            _ => format!("({})", words.join(" AND ")),
        }
    }

    // --- custom JSON properties -------------------------------------------------------

    /// Binds the key (SQLite: as a JSON path) and returns the placeholder.
    fn custom_key(&mut self, key: &str) -> String {
        let bound = match self.dialect {
            Dialect::Sqlite => sqlite_json_path(key),
            Dialect::Postgres => key.to_owned(),
        };
        self.bind(SqlValue::Text(bound))
    }

    /// The key's scalar value as SQL (text on PostgreSQL; typed on SQLite); NULL when
    /// the key is absent or holds JSON null.
    fn custom_value(&mut self, key: &str) -> String {
        let col = self.cols.custom_column();
        let k = self.custom_key(key);
        match self.dialect {
            Dialect::Sqlite => format!("json_extract({col}, {k})"),
            Dialect::Postgres => format!("({col}::jsonb ->> {k})"),
        }
    }

    /// True when the key holds a JSON string (NULL when absent: callers COALESCE).
    fn custom_is_string(&mut self, key: &str) -> String {
        let col = self.cols.custom_column();
        let k = self.custom_key(key);
        match self.dialect {
            Dialect::Sqlite => format!("json_type({col}, {k}) = 'text'"),
            Dialect::Postgres => format!("jsonb_typeof({col}::jsonb -> {k}) = 'string'"),
        }
    }

    fn custom_bool(&mut self, key: &str, b: bool) -> String {
        let col = self.cols.custom_column();
        let k = self.custom_key(key);
        // Fixed literals chosen by the (already parsed) boolean, not client text.
        match (self.dialect, b) {
            (Dialect::Sqlite, true) => format!("COALESCE(json_type({col}, {k}) = 'true', FALSE)"),
            (Dialect::Sqlite, false) => format!("COALESCE(json_type({col}, {k}) = 'false', FALSE)"),
            (Dialect::Postgres, true) => {
                format!("COALESCE(({col}::jsonb -> {k}) = 'true'::jsonb, FALSE)")
            }
            (Dialect::Postgres, false) => {
                format!("COALESCE(({col}::jsonb -> {k}) = 'false'::jsonb, FALSE)")
            }
        }
    }

    /// Numeric comparisons, all of which must hold, on a key that holds a JSON number.
    fn custom_number(&mut self, key: &str, tests: &[(Cmp, &Value)]) -> String {
        let col = self.cols.custom_column();
        let k = self.custom_key(key);
        let mut conds = Vec::with_capacity(tests.len());
        for (cmp, v) in tests {
            let value = match v {
                Value::Int(i) => SqlValue::Int(*i),
                Value::Float(x) => SqlValue::Real(*x),
                _ => return FALSE.to_owned(),
            };
            let acc = self.custom_key(key);
            let p = self.bind(value);
            let op = cmp.sql();
            conds.push(match self.dialect {
                Dialect::Sqlite => format!("json_extract({col}, {acc}) {op} {p}"),
                Dialect::Postgres => format!("({col}::jsonb ->> {acc})::numeric {op} {p}::numeric"),
            });
        }
        let conds = conds.join(" AND ");
        match self.dialect {
            Dialect::Sqlite => {
                format!("COALESCE(json_type({col}, {k}) IN ('integer', 'real') AND {conds}, FALSE)")
            }
            // CASE, unlike AND, guarantees the cast only runs on numbers.
            Dialect::Postgres => format!(
                "(CASE WHEN jsonb_typeof({col}::jsonb -> {k}) = 'number' THEN {conds} ELSE FALSE END)"
            ),
        }
    }
}

/// A SQLite JSON path selecting one top-level key, taken literally: `$."key"`. SQLite
/// (3.45+) ends a quoted label at the first `"` and compares labels JSON-unescaped, so a
/// backslash is written `\\` and a double quote `\u0022`.
fn sqlite_json_path(key: &str) -> String {
    let mut p = String::with_capacity(key.len() + 4);
    p.push_str("$.\"");
    for c in key.chars() {
        match c {
            '\\' => p.push_str("\\\\"),
            '"' => p.push_str("\\u0022"),
            // SQLite reads the path as a C string: a raw NUL would cut it short.
            '\0' => p.push_str("\\u0000"),
            c => p.push(c),
        }
    }
    p.push('"');
    p
}

/// Test data for the translator, shared with anything that executes its SQL: the store
/// conformance suite can create [`SCHEMA_SQLITE`] / [`SCHEMA_POSTGRES`], insert
/// [`users`], and check [`ZENQL_CASES`] and [`ORDER_CASES`] on both backends.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Columns, Ctx};

    /// Milliseconds in a day.
    pub(crate) const DAY: i64 = 86_400_000;

    /// The fixed "now" of the tests: 2026-11-27T10:00:00Z, a Friday.
    pub(crate) const NOW: i64 = 1_795_773_600_000;
    /// The calling user's id, which is also `ann`'s.
    pub(crate) const ME: &str = "6f1c8a4e-0000-4000-8000-00000000000a";

    /// A user table aliased `u`, columns named in snake_case (see [`SCHEMA_SQLITE`]).
    pub(crate) struct UserCols;
    impl Columns for UserCols {
        fn column(&self, f: &str) -> &'static str {
            match f {
                "id" => "u.id",
                "username" => "u.username",
                "email" => "u.email",
                "firstName" => "u.first_name",
                "lastName" => "u.last_name",
                "timezone" => "u.timezone",
                "language" => "u.language",
                "created" => "u.created",
                "modified" => "u.modified",
                "lastLogin" => "u.last_login",
                "expiry" => "u.expiry",
                "passwordChanged" => "u.password_changed",
                "status.suspended" => "u.suspended",
                "status.locked" => "u.locked",
                "status.passwordResetRequired" => "u.password_reset_required",
                other => panic!("no column for {other}"),
            }
        }
        fn custom_column(&self) -> &'static str {
            "u.custom"
        }
        fn free_text_columns(&self) -> &'static [&'static str] {
            &["u.username", "u.email", "u.first_name", "u.last_name"]
        }
    }

    /// A group table aliased `g`.
    pub(crate) struct GroupCols;
    impl Columns for GroupCols {
        fn column(&self, f: &str) -> &'static str {
            match f {
                "id" => "g.id",
                "name" => "g.name",
                "description" => "g.description",
                "type" => "g.kind",
                "created" => "g.created",
                "modified" => "g.modified",
                other => panic!("no column for {other}"),
            }
        }
        fn custom_column(&self) -> &'static str {
            "g.custom"
        }
        fn free_text_columns(&self) -> &'static [&'static str] {
            &["g.name", "g.description"]
        }
    }

    /// [`NOW`] and [`ME`].
    pub(crate) fn ctx() -> Ctx {
        Ctx {
            now_ms: NOW,
            current_user_id: ME.to_owned(),
        }
    }

    /// The `users` table the fixture columns refer to.
    pub(crate) const SCHEMA_SQLITE: &str = "CREATE TABLE users (
        id TEXT PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL,
        first_name TEXT, last_name TEXT, timezone TEXT, language TEXT,
        created INTEGER NOT NULL, modified INTEGER NOT NULL, last_login INTEGER,
        expiry INTEGER, password_changed INTEGER,
        suspended INTEGER NOT NULL, locked INTEGER NOT NULL,
        password_reset_required INTEGER NOT NULL, custom TEXT)";

    /// The same table for PostgreSQL.
    pub(crate) const SCHEMA_POSTGRES: &str = "CREATE TABLE users (
        id TEXT PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL,
        first_name TEXT, last_name TEXT, timezone TEXT, language TEXT,
        created BIGINT NOT NULL, modified BIGINT NOT NULL, last_login BIGINT,
        expiry BIGINT, password_changed BIGINT,
        suspended BOOLEAN NOT NULL, locked BOOLEAN NOT NULL,
        password_reset_required BOOLEAN NOT NULL, custom TEXT)";

    /// One fixture user. Columns not listed: email is `<username>@example.com`,
    /// timezone `UTC`, language `en`, modified = created, expiry and passwordChanged
    /// NULL, suspended and passwordResetRequired false.
    pub(crate) struct FixtureUser {
        pub(crate) id: String,
        pub(crate) username: &'static str,
        pub(crate) first_name: Option<&'static str>,
        pub(crate) last_name: Option<&'static str>,
        pub(crate) created: i64,
        pub(crate) last_login: Option<i64>,
        pub(crate) locked: bool,
        pub(crate) custom: Option<&'static str>,
    }

    /// (username, first name, last name, created, last login, locked, custom)
    type Row = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        i64,
        Option<i64>,
        bool,
        Option<&'static str>,
    );

    /// Six users covering NULLs, case, `%`/`_`, non-ASCII, odd custom keys and JSON types.
    pub(crate) fn users() -> Vec<FixtureUser> {
        let rows: [Row; 6] = [
            (
                "ann",
                Some("Ann"),
                Some("Smith"),
                NOW - 30 * DAY,
                Some(NOW - DAY),
                false,
                Some(r#"{"dept":"Sales","age":34,"vip":true,"a\"b\\c.d":"odd","tags":["x"]}"#),
            ),
            (
                "bob",
                Some("Bob"),
                Some("O'Brien"),
                NOW - 3 * DAY,
                None,
                true,
                Some(r#"{"dept":"sales","age":"34","vip":false}"#),
            ),
            (
                "cleo",
                Some("Cléo"),
                None,
                1_706_659_200_000 + 5_000,
                Some(NOW),
                false,
                Some(r#"{"age":17.5,"vip":null}"#),
            ),
            (
                "dan_1",
                None,
                Some("100% Dan"),
                1_706_659_200_000 - 1,
                None,
                false,
                None,
            ),
            (
                "eve",
                Some("Eve"),
                Some("Smithers"),
                NOW + DAY,
                Some(NOW - 10 * DAY),
                false,
                Some(r#"{"dept":"Ops","age":1e400}"#),
            ),
            (
                "zed",
                Some("zed"),
                Some("smith"),
                NOW - 400 * DAY,
                None,
                true,
                Some("{}"),
            ),
        ];
        rows.into_iter()
            .enumerate()
            .map(
                |(i, (username, first_name, last_name, created, last_login, locked, custom))| {
                    FixtureUser {
                        id: if username == "ann" {
                            ME.to_owned()
                        } else {
                            format!("id-{i}")
                        },
                        username,
                        first_name,
                        last_name,
                        created,
                        last_login,
                        locked,
                        custom,
                    }
                },
            )
            .collect()
    }

    /// ZenQL over [`users`] → the matching usernames, ordered by username.
    pub(crate) const ZENQL_CASES: &[(&str, &str)] = &[
        ("firstName = ann", "ann"),
        ("firstName = ANN or lastName = SMITH", "ann zed"),
        ("lastName ~ smith", "ann eve zed"),
        ("lastName !~ smith", "bob cleo dan_1"),
        ("lastName startsWith o'", "bob"),
        ("lastName = \"o'brien\"", "bob"),
        ("lastName ~ '100%'", "dan_1"),
        ("lastName ~ '0%'", "dan_1"),
        ("lastName ~ '%'", "dan_1"),
        ("username ~ '_'", "dan_1"),
        ("username endsWith N", "ann"),
        ("firstName != ann", "bob cleo dan_1 eve zed"),
        ("not firstName = ann", "bob cleo dan_1 eve zed"),
        ("firstName = null", "dan_1"),
        ("lastName exists false", "cleo"),
        ("firstName in (bob, zed, null)", "bob dan_1 zed"),
        ("firstName not in (bob, zed)", "ann cleo dan_1 eve"),
        ("firstName > d and firstName < f", "eve"),
        ("firstName between(b, c)", "bob"),
        ("firstName = cléo", "cleo"),
        ("lastLogin > now(-2)", "ann cleo"),
        ("lastLogin exists", "ann cleo eve"),
        ("not lastLogin > now(-2)", "bob dan_1 eve zed"),
        ("created = 2024-01-31", "cleo"),
        ("created != 2024-01-31", "ann bob dan_1 eve zed"),
        ("created < 2024-01-31", "dan_1"),
        ("created <= 2024-01-31", "cleo dan_1"),
        ("created > 2024-01-31", "ann bob eve zed"),
        (
            "created >= startOfWeek() and created <= endOfWeek()",
            "bob eve",
        ),
        (
            "created between(startOfMonth(-1), endOfMonth())",
            "ann bob eve",
        ),
        (
            "created >= startOfYear(-1) and created < startOfYear()",
            "zed",
        ),
        ("created > now()", "eve"),
        ("status.locked = true", "bob zed"),
        ("status.locked != true", "ann cleo dan_1 eve"),
        (
            "status.suspended = false and status.locked = false",
            "ann cleo dan_1 eve",
        ),
        ("id = currentUser()", "ann"),
        ("custom.dept = SALES", "ann bob"),
        ("custom.dept != sales", "cleo dan_1 eve zed"),
        ("custom.dept ~ al", "ann bob"),
        ("custom.age = 34", "ann"),
        ("custom.age = '34'", "bob"),
        ("custom.age > 17", "ann cleo eve"),
        ("custom.age < 18", "cleo"),
        ("custom.age between(17.5, 34)", "ann cleo"),
        ("custom.age in (34, 17.5)", "ann cleo"),
        ("custom.vip = true", "ann"),
        ("custom.vip = false", "bob"),
        ("custom.vip = null", "cleo dan_1 eve zed"),
        ("custom.vip exists", "ann bob"),
        ("custom.tags exists", "ann"),
        ("not custom.age > 17", "bob dan_1 zed"),
        ("custom.a\"b\\c.d = ODD", "ann"),
        ("custom.nothing = x or custom.nothing exists", ""),
        ("username = \"x' OR 1=1 --\"", ""),
        (
            "(firstName = ann or firstName = bob) and status.locked = true",
            "bob",
        ),
        (
            "firstName = ann or firstName = bob and status.locked = true",
            "ann bob",
        ),
    ];

    /// `order=` over all [`users`] (then by id) → usernames in order.
    pub(crate) const ORDER_CASES: &[(&str, &str)] = &[
        ("-username", "zed eve dan_1 cleo bob ann"),
        ("lastName", "dan_1 bob ann zed eve cleo"),
        ("-lastLogin", "cleo ann eve bob dan_1 zed"),
        ("lastLogin", "eve ann cleo bob dan_1 zed"),
        ("-status.locked,username", "bob zed ann cleo dan_1 eve"),
        ("custom.dept,-username", "eve bob ann zed dan_1 cleo"),
    ];

    /// JSON `where` over [`users`] → the matching usernames, ordered by username.
    pub(crate) const JSON_CASES: &[(&str, &str)] = &[
        (r#"[{"freeText": "SMITH z"}]"#, "zed"),
        (r#"[{"freeText": "smi"}]"#, "ann eve zed"),
        (
            r#"[{"not": [{"field": "lastName", "contains": "smith"}]}, {"field": "created", "lessThan": "now()"}]"#,
            "bob cleo dan_1",
        ),
        (r#"[{"field": "custom.age", "between": [17, 18]}]"#, "cleo"),
        (
            r#"[{"or": [{"field": "firstName", "startsWith": "e"}, {"field": "custom.vip", "equalTo": true}]}]"#,
            "ann eve",
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{DateFnKind, DateFunction, GROUPS, Period, USERS};
    use crate::query::{json, zenql};
    use fixtures::{GroupCols, ME, NOW, UserCols, ctx};
    use serde_json::json;

    fn render(params: &[SqlValue]) -> String {
        let ps: Vec<String> = params
            .iter()
            .map(|p| match p {
                SqlValue::Null | SqlValue::NullText => "NULL".to_owned(),
                SqlValue::Blob(b) => format!("{b:?}"),
                SqlValue::TextArray(a) => format!("{a:?}"),
                SqlValue::Bool(b) => b.to_string(),
                SqlValue::Int(i) => i.to_string(),
                SqlValue::Real(x) => format!("{x:?}"),
                SqlValue::Text(s) => format!("{s:?}"),
            })
            .collect();
        ps.join(", ")
    }

    /// Parses ZenQL over users, translates, and compares `SQL -- params`.
    fn check(dialect: Dialect, zenql: &str, expected: &str) {
        let expr = zenql::parse(zenql, &USERS).unwrap_or_else(|e| panic!("{zenql}: {e}"));
        let mut params = Vec::new();
        let sql = translate(&expr, &UserCols, dialect, &ctx(), &mut params);
        assert_eq!(
            format!("{sql} -- {}", render(&params)),
            expected,
            "query: {zenql}"
        );
    }

    fn lite(zenql: &str, expected: &str) {
        check(Dialect::Sqlite, zenql, expected);
    }

    fn pg(zenql: &str, expected: &str) {
        check(Dialect::Postgres, zenql, expected);
    }

    #[test]
    fn text_operators() {
        lite(
            "firstName = Ann",
            "(u.first_name IS NOT NULL AND lower(u.first_name) = $1) -- \"ann\"",
        );
        lite(
            "firstName != Ann",
            "(NOT (u.first_name IS NOT NULL AND lower(u.first_name) = $1)) -- \"ann\"",
        );
        lite(
            "firstName ~ 'A%n_\\\\'",
            "(u.first_name IS NOT NULL AND lower(u.first_name) LIKE $1 ESCAPE '\\') -- \"%a\\\\%n\\\\_\\\\\\\\%\"",
        );
        lite(
            "firstName !~ a",
            "(NOT (u.first_name IS NOT NULL AND lower(u.first_name) LIKE $1 ESCAPE '\\')) -- \"%a%\"",
        );
        lite(
            "firstName startsWith An",
            "(u.first_name IS NOT NULL AND lower(u.first_name) LIKE $1 ESCAPE '\\') -- \"an%\"",
        );
        lite(
            "firstName endsWith NN",
            "(u.first_name IS NOT NULL AND lower(u.first_name) LIKE $1 ESCAPE '\\') -- \"%nn\"",
        );
        lite(
            "firstName > m",
            "(u.first_name IS NOT NULL AND lower(u.first_name) > $1) -- \"m\"",
        );
        pg(
            "firstName > M",
            "(u.first_name IS NOT NULL AND lower(u.first_name) COLLATE \"C\" > $1) -- \"m\"",
        );
        pg(
            "firstName <= m",
            "(u.first_name IS NOT NULL AND lower(u.first_name) COLLATE \"C\" <= $1) -- \"m\"",
        );
        lite(
            "firstName between(a, M)",
            "(u.first_name IS NOT NULL AND lower(u.first_name) >= $1 AND lower(u.first_name) <= $2) -- \"a\", \"m\"",
        );
        lite(
            "firstName in (A, b)",
            "((u.first_name IS NOT NULL AND lower(u.first_name) = $1) OR (u.first_name IS NOT NULL AND lower(u.first_name) = $2)) -- \"a\", \"b\"",
        );
        lite(
            "firstName in (A, null)",
            "((u.first_name IS NOT NULL AND lower(u.first_name) = $1) OR u.first_name IS NULL) -- \"a\"",
        );
        lite(
            "firstName not in (A)",
            "(NOT (u.first_name IS NOT NULL AND lower(u.first_name) = $1)) -- \"a\"",
        );
        lite("firstName = null", "u.first_name IS NULL -- ");
        lite("firstName != null", "u.first_name IS NOT NULL -- ");
        lite("firstName exists", "u.first_name IS NOT NULL -- ");
        lite("firstName exists false", "u.first_name IS NULL -- ");
        lite(
            "id = currentUser()",
            &format!("(u.id IS NOT NULL AND lower(u.id) = $1) -- {ME:?}"),
        );
    }

    #[test]
    fn values_fold_unicode_case_on_both_dialects() {
        lite(
            "lastName = 'ÉCOLE'",
            "(u.last_name IS NOT NULL AND lower(u.last_name) = $1) -- \"école\"",
        );
        pg(
            "lastName = 'ÉCOLE'",
            "(u.last_name IS NOT NULL AND lower(u.last_name) = $1) -- \"école\"",
        );
    }

    #[test]
    fn timestamps() {
        // 2024-01-31 is 1706659200000 .. 1706745599999.
        lite(
            "created = 2024-01-31",
            "(u.created IS NOT NULL AND u.created >= $1 AND u.created <= $2) -- 1706659200000, 1706745599999",
        );
        lite(
            "created != 2024-01-31",
            "(NOT (u.created IS NOT NULL AND u.created >= $1 AND u.created <= $2)) -- 1706659200000, 1706745599999",
        );
        lite(
            "created > 2024-01-31",
            "(u.created IS NOT NULL AND u.created > $1) -- 1706745599999",
        );
        lite(
            "created >= 2024-01-31",
            "(u.created IS NOT NULL AND u.created >= $1) -- 1706659200000",
        );
        lite(
            "created < 2024-01-31",
            "(u.created IS NOT NULL AND u.created < $1) -- 1706659200000",
        );
        lite(
            "created <= 2024-01-31",
            "(u.created IS NOT NULL AND u.created <= $1) -- 1706745599999",
        );
        lite(
            "created = 2024-01-31T00:00:01Z",
            "(u.created IS NOT NULL AND u.created = $1) -- 1706659201000",
        );
        lite(
            "created between (2024-01-01, 2024-01-31)",
            "(u.created IS NOT NULL AND u.created >= $1 AND u.created <= $2) -- 1704067200000, 1706745599999",
        );
        lite(
            "created in (2024-01-31, null)",
            "((u.created IS NOT NULL AND u.created >= $1 AND u.created <= $2) OR u.created IS NULL) -- 1706659200000, 1706745599999",
        );
        lite(
            "created > now(-7)",
            "(u.created IS NOT NULL AND u.created > $1) -- 1795168800000",
        );
        pg("expiry exists", "u.expiry IS NOT NULL -- ");
    }

    #[test]
    fn date_functions_resolve_against_the_given_now() {
        let at =
            |kind, offset| Value::Timestamp(DateFunction { kind, offset }.resolve(NOW)).to_string();
        use DateFnKind::{EndOf, Now, StartOf};
        use Period::{Day, Month, Week, Year};
        let cases = [
            (Now, 0, "2026-11-27T10:00:00.000Z"),
            (Now, -7, "2026-11-20T10:00:00.000Z"),
            (Now, 3, "2026-11-30T10:00:00.000Z"),
            (StartOf(Day), 0, "2026-11-27T00:00:00.000Z"),
            (EndOf(Day), 0, "2026-11-27T23:59:59.999Z"),
            (StartOf(Day), -1, "2026-11-26T00:00:00.000Z"),
            (EndOf(Day), 5, "2026-12-02T23:59:59.999Z"),
            (StartOf(Week), 0, "2026-11-23T00:00:00.000Z"),
            (EndOf(Week), 0, "2026-11-29T23:59:59.999Z"),
            (StartOf(Week), -1, "2026-11-16T00:00:00.000Z"),
            (EndOf(Week), 1, "2026-12-06T23:59:59.999Z"),
            (StartOf(Month), 0, "2026-11-01T00:00:00.000Z"),
            (EndOf(Month), 0, "2026-11-30T23:59:59.999Z"),
            (StartOf(Month), 2, "2027-01-01T00:00:00.000Z"),
            (EndOf(Month), 3, "2027-02-28T23:59:59.999Z"),
            (StartOf(Month), -11, "2025-12-01T00:00:00.000Z"),
            (EndOf(Month), -9, "2026-02-28T23:59:59.999Z"),
            (StartOf(Year), 0, "2026-01-01T00:00:00.000Z"),
            (EndOf(Year), 0, "2026-12-31T23:59:59.999Z"),
            (StartOf(Year), -2, "2024-01-01T00:00:00.000Z"),
            (EndOf(Year), -2, "2024-12-31T23:59:59.999Z"),
        ];
        for (kind, offset, want) in cases {
            assert_eq!(at(kind, offset), want, "{kind:?}({offset})");
        }
        // A Monday is the start of its own week; a Sunday belongs to the week before.
        let monday = 1_795_392_000_000; // 2026-11-23T00:00:00Z
        let f = DateFunction {
            kind: StartOf(Week),
            offset: 0,
        };
        assert_eq!(f.resolve(monday), monday);
        assert_eq!(f.resolve(monday - 1), monday - 7 * 86_400_000);
        // Leap years and pre-epoch times.
        let feb = DateFunction {
            kind: EndOf(Month),
            offset: 0,
        };
        assert_eq!(
            Value::Timestamp(feb.resolve(1_709_251_200_000 - 1)).to_string(),
            "2024-02-29T23:59:59.999Z"
        );
        let y = DateFunction {
            kind: StartOf(Year),
            offset: 0,
        };
        assert_eq!(
            Value::Timestamp(y.resolve(-1)).to_string(),
            "1969-01-01T00:00:00.000Z"
        );
        // Extreme inputs saturate instead of panicking.
        for kind in [Now, StartOf(Day), StartOf(Week), EndOf(Month), EndOf(Year)] {
            for now in [i64::MIN, i64::MAX, 0] {
                let _ = DateFunction {
                    kind,
                    offset: 100_000,
                }
                .resolve(now);
                let _ = DateFunction {
                    kind,
                    offset: -100_000,
                }
                .resolve(now);
            }
        }
    }

    #[test]
    fn bools() {
        lite(
            "status.locked = true",
            "(u.locked IS NOT NULL AND u.locked = $1) -- true",
        );
        pg(
            "status.suspended != false",
            "(NOT (u.suspended IS NOT NULL AND u.suspended = $1)) -- false",
        );
        lite(
            "status.passwordResetRequired in (true, null)",
            "((u.password_reset_required IS NOT NULL AND u.password_reset_required = $1) OR u.password_reset_required IS NULL) -- true",
        );
    }

    #[test]
    fn custom_properties() {
        lite(
            "custom.dept = Sales",
            "COALESCE(json_type(u.custom, $1) = 'text' AND lower(json_extract(u.custom, $2)) = $3, FALSE) -- \"$.\\\"dept\\\"\", \"$.\\\"dept\\\"\", \"sales\"",
        );
        pg(
            "custom.dept = Sales",
            "COALESCE(jsonb_typeof(u.custom::jsonb -> $1) = 'string' AND lower((u.custom::jsonb ->> $2)) = $3, FALSE) -- \"dept\", \"dept\", \"sales\"",
        );
        lite(
            "custom.age > 17",
            "COALESCE(json_type(u.custom, $1) IN ('integer', 'real') AND json_extract(u.custom, $2) > $3, FALSE) -- \"$.\\\"age\\\"\", \"$.\\\"age\\\"\", 17",
        );
        pg(
            "custom.age > 17.5",
            "(CASE WHEN jsonb_typeof(u.custom::jsonb -> $1) = 'number' THEN (u.custom::jsonb ->> $2)::numeric > $3::numeric ELSE FALSE END) -- \"age\", \"age\", 17.5",
        );
        pg(
            "custom.age between(1, 2)",
            "(CASE WHEN jsonb_typeof(u.custom::jsonb -> $1) = 'number' THEN (u.custom::jsonb ->> $2)::numeric >= $3::numeric AND (u.custom::jsonb ->> $4)::numeric <= $5::numeric ELSE FALSE END) -- \"age\", \"age\", 1, \"age\", 2",
        );
        lite(
            "custom.vip = true",
            "COALESCE(json_type(u.custom, $1) = 'true', FALSE) -- \"$.\\\"vip\\\"\"",
        );
        pg(
            "custom.vip = false",
            "COALESCE((u.custom::jsonb -> $1) = 'false'::jsonb, FALSE) -- \"vip\"",
        );
        lite(
            "custom.vip = null",
            "json_extract(u.custom, $1) IS NULL -- \"$.\\\"vip\\\"\"",
        );
        pg(
            "custom.vip exists",
            "(u.custom::jsonb ->> $1) IS NOT NULL -- \"vip\"",
        );
        pg(
            "custom.dept ~ x",
            "COALESCE(jsonb_typeof(u.custom::jsonb -> $1) = 'string' AND lower((u.custom::jsonb ->> $2)) LIKE $3 ESCAPE '\\', FALSE) -- \"dept\", \"dept\", \"%x%\"",
        );
    }

    #[test]
    fn combinations_and_placeholder_offsets() {
        let expr = zenql::parse(
            "not (firstName = a or lastName = b) and created > now()",
            &USERS,
        )
        .unwrap();
        let mut params = vec![SqlValue::Text("tenant".into())];
        let sql = translate(&expr, &UserCols, Dialect::Postgres, &ctx(), &mut params);
        assert_eq!(
            sql,
            "((NOT ((u.first_name IS NOT NULL AND lower(u.first_name) = $2) OR (u.last_name IS NOT NULL AND lower(u.last_name) = $3))) AND (u.created IS NOT NULL AND u.created > $4))"
        );
        assert_eq!(params.len(), 4);
        assert_eq!(params[3], SqlValue::Int(NOW));
        let mut params = Vec::new();
        assert_eq!(
            translate(
                &Expr::And(vec![]),
                &UserCols,
                Dialect::Sqlite,
                &ctx(),
                &mut params
            ),
            "TRUE"
        );
        assert_eq!(
            translate(
                &Expr::Or(vec![]),
                &UserCols,
                Dialect::Sqlite,
                &ctx(),
                &mut params
            ),
            "FALSE"
        );
        assert!(params.is_empty());
    }

    #[test]
    fn free_text() {
        let expr = json::parse_where(&json!([{"freeText": "ann  50%"}]), &USERS).unwrap();
        let mut params = Vec::new();
        let sql = translate(&expr, &UserCols, Dialect::Sqlite, &ctx(), &mut params);
        let like =
            |c: &str, n: usize| format!("({c} IS NOT NULL AND lower({c}) LIKE ${n} ESCAPE '\\')");
        let word = |n: usize| {
            let parts: Vec<String> = ["u.username", "u.email", "u.first_name", "u.last_name"]
                .iter()
                .enumerate()
                .map(|(i, c)| like(c, n + i))
                .collect();
            format!("({})", parts.join(" OR "))
        };
        assert_eq!(sql, format!("({} AND {})", word(1), word(5)));
        assert_eq!(params[0], SqlValue::Text("%ann%".into()));
        assert_eq!(params[4], SqlValue::Text("%50\\%%".into()));
        let expr =
            json::parse_where(&json!([{"field": "name", "freeText": "a b"}]), &GROUPS).unwrap();
        let mut params = Vec::new();
        let sql = translate(&expr, &GroupCols, Dialect::Postgres, &ctx(), &mut params);
        assert_eq!(
            sql,
            "((g.name IS NOT NULL AND lower(g.name) LIKE $1 ESCAPE '\\') AND (g.name IS NOT NULL AND lower(g.name) LIKE $2 ESCAPE '\\'))"
        );
    }

    #[test]
    fn ordering() {
        let order =
            json::parse_order_param("lastName,-created,custom.rank,status.locked", &USERS).unwrap();
        let mut params = vec![SqlValue::Int(1)];
        assert_eq!(
            order_by_sql(&order, &UserCols, Dialect::Sqlite, &mut params),
            "lower(u.last_name) ASC NULLS LAST, u.created DESC NULLS LAST, lower(json_extract(u.custom, $2)) ASC NULLS LAST, u.locked ASC NULLS LAST"
        );
        assert_eq!(params[1], SqlValue::Text("$.\"rank\"".into()));
        let mut params = Vec::new();
        assert_eq!(
            order_by_sql(&order, &UserCols, Dialect::Postgres, &mut params),
            "lower(u.last_name) COLLATE \"C\" ASC NULLS LAST, u.created DESC NULLS LAST, lower((u.custom::jsonb ->> $1)) COLLATE \"C\" ASC NULLS LAST, u.locked ASC NULLS LAST"
        );
        assert_eq!(
            order_by_sql(&OrderBy::default(), &UserCols, Dialect::Sqlite, &mut params),
            ""
        );
        let order = json::parse_order_by(&json!([{"desc": "type"}]), &GROUPS).unwrap();
        assert_eq!(
            order_by_sql(&order, &GroupCols, Dialect::Sqlite, &mut params),
            "lower(g.kind) DESC NULLS LAST"
        );
    }

    #[test]
    fn json_paths_escape_quotes_and_backslashes() {
        assert_eq!(sqlite_json_path("plain"), r#"$."plain""#);
        assert_eq!(sqlite_json_path(r#"a"b\c.d[0]"#), r#"$."a\u0022b\\c.d[0]""#);
        assert_eq!(sqlite_json_path("a\0b"), r#"$."a\u0000b""#);
    }

    /// Attacker text may appear in the parameters but never in the SQL text.
    #[test]
    fn injection_attempts_never_reach_the_sql_text() {
        let attacks = [
            r#"username = "x' OR 1=1 --""#,
            r#"custom.x' OR 1=1 -- = "y""#,
            r#"custom."x') OR 1=1 --" = y"#,
            "firstName ~ \"%' OR ''='\"",
            "created = '2024-01-01'' OR 1=1'",
            "email in ('a', \"b') DROP TABLE users --\")",
        ];
        for q in attacks {
            let Ok(expr) = zenql::parse(q, &USERS) else {
                continue;
            };
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let mut params = Vec::new();
                let sql = translate(&expr, &UserCols, dialect, &ctx(), &mut params);
                for bad in ["OR 1=1", "DROP", "--", "''"] {
                    assert!(!sql.contains(bad), "{q} gave {sql}");
                }
            }
        }
        let where_ = json!([{"field": "custom.a') OR 1=1 --", "equalTo": "x"}]);
        let expr = json::parse_where(&where_, &USERS).unwrap();
        let mut params = Vec::new();
        let sql = translate(&expr, &UserCols, Dialect::Postgres, &ctx(), &mut params);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(params[0], SqlValue::Text("a') OR 1=1 --".into()));
        assert!(zenql::parse("username;drop table users = x", &USERS).is_err());
        assert!(json::parse_order_param("name;delete", &GROUPS).is_err());
        assert!(json::parse_order_by(&json!(["name;delete"]), &GROUPS).is_err());
        assert!(
            json::parse_where(
                &json!([{"field": "username;drop table users", "equalTo": 1}]),
                &USERS
            )
            .is_err()
        );
    }

    /// Every fixture case parses, and its SQL uses exactly the placeholders it binds.
    #[test]
    fn fixture_cases_translate_with_consistent_placeholders() {
        let users = fixtures::users();
        let names: Vec<&str> = users.iter().map(|u| u.username).collect();
        for u in &users {
            if let Some(c) = u.custom {
                // 1e400 is valid JSON that serde_json cannot hold, so only the shape is checked.
                assert!(c.starts_with('{') && c.ends_with('}'), "{c}");
            }
            assert!(
                !u.id.is_empty()
                    && u.created != 0
                    && u.first_name != Some("")
                    && u.last_name != Some("")
            );
            let _ = (u.last_login, u.locked);
        }
        // The fixture schemas have every column the fixture mapping names.
        for def in USERS.fields {
            let col = UserCols.column(def.name).trim_start_matches("u.");
            for schema in [fixtures::SCHEMA_SQLITE, fixtures::SCHEMA_POSTGRES] {
                assert!(schema.contains(&format!(" {col} ")), "{col}");
            }
        }
        let mut exprs = Vec::new();
        for (q, want) in fixtures::ZENQL_CASES {
            exprs.push((
                zenql::parse(q, &USERS).unwrap_or_else(|e| panic!("{q}: {e}")),
                OrderBy::default(),
                *want,
            ));
        }
        for (q, want) in fixtures::JSON_CASES {
            let v: serde_json::Value = serde_json::from_str(q).unwrap();
            exprs.push((
                json::parse_where(&v, &USERS).unwrap(),
                OrderBy::default(),
                *want,
            ));
        }
        for (o, want) in fixtures::ORDER_CASES {
            exprs.push((
                Expr::And(vec![]),
                json::parse_order_param(o, &USERS).unwrap(),
                *want,
            ));
        }
        for (expr, order, want) in &exprs {
            assert!(
                want.split_whitespace().all(|w| names.contains(&w)),
                "{want}"
            );
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let mut params = vec![SqlValue::Null];
                let sql = translate(expr, &UserCols, dialect, &ctx(), &mut params)
                    + " ORDER BY "
                    + &order_by_sql(order, &UserCols, dialect, &mut params);
                let mut used: Vec<usize> = sql
                    .split('$')
                    .skip(1)
                    .map(|rest| {
                        let digits: String =
                            rest.chars().take_while(char::is_ascii_digit).collect();
                        digits.parse().unwrap_or_else(|_| panic!("bare $ in {sql}"))
                    })
                    .collect();
                used.sort_unstable();
                // $1 is the caller's own parameter; each of ours appears exactly once.
                let ours: Vec<usize> = (2..=params.len()).collect();
                assert_eq!(used, ours, "{sql}");
            }
        }
    }
}

#[cfg(test)]
mod successor_tests {
    use super::successor;

    #[test]
    fn successor_bounds_every_extension_of_the_prefix() {
        assert_eq!(successor("abc").as_deref(), Some("abd"));
        assert_eq!(successor("az").as_deref(), Some("a{"));
        assert_eq!(successor(""), None);
        let s = successor("user0123").unwrap();
        for ext in ["", "0", "zzz", "\u{10FFFF}"] {
            let candidate = format!("user0123{ext}");
            assert!(candidate.as_str() < s.as_str(), "{candidate}");
            assert!(candidate.as_str() >= "user0123");
        }
        // Skips the surrogate gap.
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
    }
}

#[cfg(test)]
mod folded_tests {
    use super::*;
    use crate::query::{ast::USERS, zenql};

    /// Users whose username is stored pre-folded, as the real stores do.
    struct Folded;
    impl Columns for Folded {
        fn column(&self, field: &str) -> &'static str {
            match field {
                "username" => "u.username_lc",
                _ => "u.other",
            }
        }
        fn custom_column(&self) -> &'static str {
            "u.custom"
        }
        fn free_text_columns(&self) -> &'static [&'static str] {
            &["u.username_lc"]
        }
        fn is_folded(&self, column: &str) -> bool {
            column == "u.username_lc"
        }
        fn fts(&self, column: &str) -> Option<FtsIndex> {
            (column == "u.username_lc").then_some(FtsIndex {
                table: "users_fts",
                key: "u.seq",
                column: "username",
            })
        }
    }

    fn sql(dialect: Dialect, q: &str) -> (String, Vec<SqlValue>) {
        let expr = zenql::parse(q, &USERS).expect("parses");
        let ctx = Ctx {
            now_ms: 0,
            current_user_id: String::new(),
        };
        let mut params = Vec::new();
        (
            translate(&expr, &Folded, dialect, &ctx, &mut params),
            params,
        )
    }

    #[test]
    fn folded_columns_are_compared_bare_so_their_index_applies() {
        let (s, p) = sql(Dialect::Sqlite, "username = TDurden");
        assert_eq!(s, "(u.username_lc IS NOT NULL AND u.username_lc = $1)");
        assert_eq!(p, vec![SqlValue::Text("tdurden".into())]);
    }

    #[test]
    fn starts_with_on_a_folded_column_is_a_range_on_sqlite_and_like_on_postgres() {
        let (s, p) = sql(Dialect::Sqlite, "username startsWith User01");
        assert_eq!(
            s,
            "(u.username_lc IS NOT NULL AND u.username_lc >= $1 AND u.username_lc < $2)"
        );
        assert_eq!(
            p,
            vec![
                SqlValue::Text("user01".into()),
                SqlValue::Text("user02".into())
            ]
        );
        let (s, _) = sql(Dialect::Postgres, "username startsWith User01");
        assert!(s.contains("LIKE"), "{s}");
    }

    #[test]
    fn substring_filters_use_the_trigram_index_on_sqlite_and_keep_like_for_exactness() {
        let (s, p) = sql(Dialect::Sqlite, "username endsWith \"Den\"");
        assert_eq!(
            s,
            "(u.seq IN (SELECT rowid FROM users_fts WHERE users_fts MATCH $2) AND \
             (u.username_lc IS NOT NULL AND u.username_lc LIKE $1 ESCAPE '\\'))"
        );
        assert_eq!(
            p,
            vec![
                SqlValue::Text("%den".into()),
                SqlValue::Text("username : \"Den\"".into())
            ]
        );
        // Too short for trigrams, or on PostgreSQL: a plain LIKE.
        let (s, _) = sql(Dialect::Sqlite, "username ~ de");
        assert!(!s.contains("MATCH"), "{s}");
        let (s, _) = sql(Dialect::Postgres, "username ~ den");
        assert!(!s.contains("MATCH"), "{s}");
    }
}

#[cfg(test)]
mod relation_tests {
    use super::*;
    use crate::query::{ast::USERS, zenql};
    use crate::store::{GroupColumns, UserColumns};

    fn render(expr: &Expr, cols: &dyn Columns) -> (String, Vec<SqlValue>) {
        let ctx = Ctx {
            now_ms: 0,
            current_user_id: String::new(),
        };
        let mut params = vec![SqlValue::Int(0)];
        let sql = translate(expr, cols, Dialect::Postgres, &ctx, &mut params);
        (sql, params)
    }

    #[test]
    fn email_equality_goes_through_the_identifier_index_and_still_compares() {
        let expr = zenql::parse("email = A@Example.com", &USERS).expect("parses");
        let (sql, params) = render(&expr, &UserColumns);
        assert_eq!(
            sql,
            "(u.seq IN (SELECT user_seq FROM user_identifiers WHERE key = $2) \
             AND u.email_lc = $2)"
        );
        assert_eq!(params[1], SqlValue::Text("a@example.com".into()));
        // Other comparisons keep the plain form.
        let expr = zenql::parse("email startsWith a", &USERS).expect("parses");
        assert!(!render(&expr, &UserColumns).0.contains("user_identifiers"));
    }

    #[test]
    fn relations_are_fixed_sql_with_the_id_bound() {
        let member_of = Expr::Related(Relation::MemberOf { nested: true }, "G-1".into());
        let (sql, params) = render(&member_of, &UserColumns);
        assert!(
            sql.contains("group_closure") && sql.contains("c.ancestor_id = $2"),
            "{sql}"
        );
        assert_eq!(params[1], SqlValue::Text("g-1".into()));
        let direct = Expr::Related(Relation::MemberOf { nested: false }, "g".into());
        assert!(!render(&direct, &UserColumns).0.contains("group_closure"));
        let has = Expr::Related(Relation::HasMemberUser, "u".into());
        assert!(render(&has, &GroupColumns).0.starts_with("(g.seq IN"));
        let child = Expr::Related(Relation::HasChildGroup, "c".into());
        assert!(render(&child, &GroupColumns).0.contains("group_children"));
        // A relation a resource does not have is false, and binds nothing.
        let (sql, params) = render(&has, &UserColumns);
        assert_eq!((sql.as_str(), params.len()), ("FALSE", 1));
        let (sql, _) = render(
            &Expr::Not(Box::new(Expr::Related(Relation::Provider, "apiKey".into()))),
            &UserColumns,
        );
        assert_eq!(sql, "(NOT (u.provider_type = $2))");
    }
}
