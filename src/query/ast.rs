//! The typed query both front ends produce: [`Expr`] (a filter) and [`OrderBy`].
//!
//! Role: the one shape a user or group query takes after parsing, checked against the
//! resource's [`FieldSet`] (field names resolved to their canonical spelling, values
//! checked against the field's type). ZenQL (`zenql.rs`) and the JSON `where`
//! (`json.rs`) both build it through the helpers at the bottom of this file, so the two
//! front ends accept the same values with the same messages.
//!
//! It must not know about SQL, HTTP or the clock: date functions such as `now(-7)` stay
//! symbolic here and are resolved by [`DateFunction::resolve`] with a time the caller
//! passes in (the store's translator does this with the service's clock).

use std::fmt;

/// Milliseconds in one day.
const DAY_MS: i64 = 86_400_000;

/// The largest offset accepted in a date function (`now(-7)`, `startOfMonth(3)`), in
/// units of the function's period. Big enough for any real query, small enough that
/// resolving never overflows.
pub const MAX_DATE_OFFSET: i64 = 100_000;

/// The type of a resource field, which decides which values and operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An identifier stored as text (a UUID); compared like text.
    Id,
    /// Free text, compared case-insensitively.
    Text,
    /// A point in time, stored as milliseconds since the Unix epoch.
    Timestamp,
    /// A boolean flag.
    Bool,
}

/// One field of a resource, by its canonical (camelCase) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Canonical name, e.g. `firstName` or `status.suspended`.
    pub name: &'static str,
    /// What values and operators the field takes.
    pub ty: FieldType,
}

/// The fields a query over one resource may name.
#[derive(Debug, Clone, Copy)]
pub struct FieldSet {
    /// The known fields, in canonical spelling.
    pub fields: &'static [FieldDef],
    /// Whether `custom.<key>` is allowed.
    pub custom: bool,
}

const fn f(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef { name, ty }
}

/// The fields of a user (spec §7).
pub const USERS: FieldSet = FieldSet {
    fields: &[
        f("id", FieldType::Id),
        f("username", FieldType::Text),
        f("email", FieldType::Text),
        f("firstName", FieldType::Text),
        f("lastName", FieldType::Text),
        f("timezone", FieldType::Text),
        f("language", FieldType::Text),
        f("created", FieldType::Timestamp),
        f("modified", FieldType::Timestamp),
        f("lastLogin", FieldType::Timestamp),
        f("expiry", FieldType::Timestamp),
        f("passwordChanged", FieldType::Timestamp),
        f("status.suspended", FieldType::Bool),
        f("status.locked", FieldType::Bool),
        f("status.passwordResetRequired", FieldType::Bool),
    ],
    custom: true,
};

/// The fields of a group (spec §7).
pub const GROUPS: FieldSet = FieldSet {
    fields: &[
        f("id", FieldType::Id),
        f("name", FieldType::Text),
        f("description", FieldType::Text),
        f("type", FieldType::Text),
        f("created", FieldType::Timestamp),
        f("modified", FieldType::Timestamp),
    ],
    custom: true,
};

/// The fields of an audit event (`GET /audit`, docs/audit.md).
pub const AUDIT: FieldSet = FieldSet {
    fields: &[
        f("type", FieldType::Text),
        f("at", FieldType::Timestamp),
        f("actorType", FieldType::Text),
        f("actorId", FieldType::Id),
        f("actorName", FieldType::Text),
        f("userId", FieldType::Id),
        f("userName", FieldType::Text),
        f("groupId", FieldType::Id),
        f("groupName", FieldType::Text),
        f("keyId", FieldType::Text),
        f("keyName", FieldType::Text),
        f("requestId", FieldType::Text),
        f("clientAddress", FieldType::Text),
    ],
    custom: false,
};

impl FieldSet {
    /// Resolves a field name as a client wrote it: known names case-insensitively,
    /// `custom.<key>` (prefix case-insensitive, key kept verbatim and non-empty) when
    /// the resource has custom properties. `None` for anything else.
    pub fn lookup(&self, name: &str) -> Option<FieldRef> {
        if let Some(def) = self
            .fields
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
        {
            return Some(FieldRef::Named(*def));
        }
        let prefix = "custom.";
        if self.custom
            && name.len() > prefix.len()
            && name.is_char_boundary(prefix.len())
            && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            return Some(FieldRef::Custom(name[prefix.len()..].to_owned()));
        }
        None
    }
}

/// A field a condition or an ordering is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    /// A known field of the resource, in canonical spelling.
    Named(FieldDef),
    /// `custom.<key>`: one top-level key of the resource's `custom` JSON object. The key is
    /// taken literally (a dot in it does not mean nesting).
    Custom(String),
    /// Every free-text field of the resource: only made for a JSON `freeText` item
    /// that names no field.
    AnyText,
}

impl FieldRef {
    /// The field's type; custom properties and `AnyText` are `None` (untyped).
    pub fn ty(&self) -> Option<FieldType> {
        match self {
            FieldRef::Named(d) => Some(d.ty),
            FieldRef::Custom(_) | FieldRef::AnyText => None,
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldRef::Named(d) => f.write_str(d.name),
            FieldRef::Custom(k) => write!(f, "custom.{k}"),
            FieldRef::AnyText => f.write_str("*"),
        }
    }
}

/// The unit of a date function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A UTC calendar day.
    Day,
    /// A week starting on Monday 00:00 UTC.
    Week,
    /// A UTC calendar month.
    Month,
    /// A UTC calendar year.
    Year,
}

/// Which point a date function names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFnKind {
    /// `now(n)`: the current instant plus `n` days.
    Now,
    /// `startOfDay(n)` etc.: the first millisecond of the period `n` periods from the
    /// current one.
    StartOf(Period),
    /// `endOfDay(n)` etc.: the last millisecond of the period `n` periods from the current one.
    EndOf(Period),
}

/// A date function such as `now(-7)` or `startOfWeek(1)`, kept symbolic until the
/// query is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateFunction {
    /// Which function.
    pub kind: DateFnKind,
    /// The offset in units of the function's period (days for `now`); 0 when omitted.
    pub offset: i64,
}

impl DateFunction {
    /// The instant this function names, in milliseconds since the epoch, given the
    /// current time `now_ms` (UTC; weeks start on Monday). Never panics: results beyond
    /// the `i64` range saturate.
    pub fn resolve(&self, now_ms: i64) -> i64 {
        let n = self.offset;
        match self.kind {
            DateFnKind::Now => now_ms.saturating_add(n.saturating_mul(DAY_MS)),
            DateFnKind::StartOf(p) => start_of(p, now_ms, n),
            DateFnKind::EndOf(p) => start_of(p, now_ms, n.saturating_add(1)).saturating_sub(1),
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            DateFnKind::Now => "now",
            DateFnKind::StartOf(Period::Day) => "startOfDay",
            DateFnKind::StartOf(Period::Week) => "startOfWeek",
            DateFnKind::StartOf(Period::Month) => "startOfMonth",
            DateFnKind::StartOf(Period::Year) => "startOfYear",
            DateFnKind::EndOf(Period::Day) => "endOfDay",
            DateFnKind::EndOf(Period::Week) => "endOfWeek",
            DateFnKind::EndOf(Period::Month) => "endOfMonth",
            DateFnKind::EndOf(Period::Year) => "endOfYear",
        }
    }
}

/// First millisecond of the period `n` periods away from the one containing `now_ms`.
fn start_of(p: Period, now_ms: i64, n: i64) -> i64 {
    let day = now_ms.div_euclid(DAY_MS);
    let start_day = match p {
        Period::Day => day.saturating_add(n),
        Period::Week => {
            // 1970-01-01 was a Thursday: Monday-based weekday index 3.
            let weekday = (day + 3).rem_euclid(7);
            (day - weekday).saturating_add(n.saturating_mul(7))
        }
        Period::Month => {
            let (y, m, _) = civil_from_days(day);
            let months = (y * 12 + (m - 1)).saturating_add(n);
            days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1)
        }
        Period::Year => {
            let (y, _, _) = civil_from_days(day);
            days_from_civil(y.saturating_add(n), 1, 1)
        }
    };
    start_day.saturating_mul(DAY_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
/// `y` must be within a few hundred million years, which every caller guarantees.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A value in a condition, already checked against the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`: with `=`/`!=` means "is (not) null".
    Null,
    /// `true` / `false` (bool fields and custom properties).
    Bool(bool),
    /// An integer (custom properties only; text fields keep numbers as text).
    Int(i64),
    /// A finite non-integer or out-of-`i64`-range number (custom properties only).
    Float(f64),
    /// Text (text and id fields, custom properties).
    String(String),
    /// An instant, in milliseconds since the epoch (timestamp fields).
    Timestamp(i64),
    /// A bare calendar date such as `2024-01-31`, as the millisecond of its 00:00 UTC.
    /// Compares as the whole day: `= 2024-01-31` matches any time that day.
    Date(i64),
    /// A date function, resolved at translation time (timestamp fields).
    DateFn(DateFunction),
    /// `currentUser()`: the id of the caller, supplied at translation time.
    CurrentUser,
}

impl Value {
    /// For timestamp fields: the inclusive millisecond range this value stands for
    /// (one instant, or a whole day for [`Value::Date`]). `None` for other values.
    pub fn time_range(&self, now_ms: i64) -> Option<(i64, i64)> {
        match self {
            Value::Timestamp(ms) => Some((*ms, *ms)),
            Value::Date(start) => Some((*start, start.saturating_add(DAY_MS - 1))),
            Value::DateFn(func) => {
                let ms = func.resolve(now_ms);
                Some((ms, ms))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            // Debug keeps a `.0`, so the printed form parses back as a float.
            Value::Float(x) => write!(f, "{x:?}"),
            Value::String(s) => write_quoted(f, s),
            Value::Timestamp(ms) => {
                let day = ms.div_euclid(DAY_MS);
                let rem = ms.rem_euclid(DAY_MS);
                let (y, m, d) = civil_from_days(day);
                let (h, mi, s, milli) = (
                    rem / 3_600_000,
                    rem / 60_000 % 60,
                    rem / 1000 % 60,
                    rem % 1000,
                );
                write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
            }
            Value::Date(ms) => {
                let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
            Value::DateFn(func) if func.offset == 0 => write!(f, "{}()", func.name()),
            Value::DateFn(func) => write!(f, "{}({})", func.name(), func.offset),
            Value::CurrentUser => f.write_str("currentUser()"),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// An operator with its operand(s).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `=` / `equalTo`; text compares case-insensitively; `Eq(Null)` is "is null".
    Eq(Value),
    /// `!=`; also matches rows where the field is missing; `Ne(Null)` is "is not null".
    Ne(Value),
    /// `~` / `contains`: case-insensitive substring.
    Contains(String),
    /// `!~`: negation of `Contains`.
    NotContains(String),
    /// `startsWith`: case-insensitive prefix.
    StartsWith(String),
    /// `endsWith`: case-insensitive suffix.
    EndsWith(String),
    /// LDAP substrings (RFC 4517 §4.2.6), case-insensitive: the value starts with
    /// `initial`, then holds each of `any` in order, then ends with `last`, no two parts
    /// overlapping (`ab*b` does not match `ab`). No front end writes it in ZenQL.
    Substrings {
        /// The value's start, if anchored.
        initial: Option<String>,
        /// Texts that follow one another, in order.
        any: Vec<String>,
        /// The value's end, if anchored.
        last: Option<String>,
    },
    /// `in (a, b)`: equal to any of the values (may include `null`).
    In(Vec<Value>),
    /// `not in (a, b)`: negation of `In`.
    NotIn(Vec<Value>),
    /// `exists` / `exists true|false`: the field has (or lacks) a non-null value.
    Exists(bool),
    /// `between(a, b)`: inclusive at both ends.
    Between(Value, Value),
    /// `>` / `greaterThan`.
    Gt(Value),
    /// `>=` / `greaterThanOrEqualTo`.
    Ge(Value),
    /// `<` / `lessThan`.
    Lt(Value),
    /// `<=` / `lessThanOrEqualTo`.
    Le(Value),
    /// `freeText`: every whitespace-separated word occurs (case-insensitively) in the
    /// field, or for [`FieldRef::AnyText`] in at least one of the resource's text fields.
    FreeText(String),
}

/// One `field op value` comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What the condition is about.
    pub field: FieldRef,
    /// The operator and its operand values.
    pub op: Op,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All must hold (an empty list holds for every row).
    And(Vec<Expr>),
    /// At least one must hold (an empty list holds for no row).
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(Condition),
    /// A relation through the group graph to the resource with the given id, or a
    /// property no query language names (the user's provider). No query language writes
    /// it yet; the LDAP front door does (`memberOf`, `member`, people but not API keys).
    Related(Relation, String),
    /// The relation holds with at least one user or group (LDAP's `(memberOf=*)`: the
    /// user is in some group).
    RelatedAny(Relation),
}

/// How a row relates to a user or group through memberships and child links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// (users) The user is a member of the group directly or, with `nested`, of one of
    /// its descendant groups (the closure).
    MemberOf {
        /// Follow child groups.
        nested: bool,
    },
    /// (groups) The user is a direct member of the group.
    HasMemberUser,
    /// (groups) The group is a direct child of the group.
    HasChildGroup,
    /// (users) The user's provider is the given one (`contensis`: a person; `apikey`:
    /// an API key's service user).
    Provider,
}

impl Relation {
    /// The relation's name in a filter's display form.
    fn name(self) -> &'static str {
        match self {
            Relation::MemberOf { nested: true } => "memberOf",
            Relation::MemberOf { nested: false } => "directMemberOf",
            Relation::HasMemberUser => "hasMember",
            Relation::HasChildGroup => "hasChild",
            Relation::Provider => "provider",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// An ordering: fields in priority order. Empty means "the endpoint's default".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderBy(pub Vec<(FieldRef, Direction)>);

impl fmt::Display for OrderBy {
    /// The `order=` parameter form, e.g. `lastName,-created`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (field, dir)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if *dir == Direction::Desc {
                f.write_str("-")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    /// A fully parenthesised ZenQL form, which parses back to the same `Expr` (except
    /// for `freeText`, which ZenQL lacks). Used in tests and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                let word = if matches!(self, Expr::And(_)) {
                    "and"
                } else {
                    "or"
                };
                if items.is_empty() {
                    return write!(f, "({word})");
                }
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {word} ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Expr::Not(inner) => write!(f, "not {inner}"),
            Expr::Cmp(c) => write!(f, "{c}"),
            Expr::Related(rel, id) => {
                write!(f, "{}(", rel.name())?;
                write_quoted(f, id)?;
                f.write_str(")")
            }
            Expr::RelatedAny(rel) => write!(f, "{}(*)", rel.name()),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        let list = |f: &mut fmt::Formatter<'_>, vs: &[Value]| -> fmt::Result {
            f.write_str("(")?;
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(")")
        };
        let text = |s: &str| Value::String(s.to_owned());
        match &self.op {
            Op::Eq(v) => write!(f, "{field} = {v}"),
            Op::Ne(v) => write!(f, "{field} != {v}"),
            Op::Contains(s) => write!(f, "{field} ~ {}", text(s)),
            Op::NotContains(s) => write!(f, "{field} !~ {}", text(s)),
            Op::StartsWith(s) => write!(f, "{field} startsWith {}", text(s)),
            Op::EndsWith(s) => write!(f, "{field} endsWith {}", text(s)),
            Op::Substrings { initial, any, last } => {
                let mut parts = vec![initial.clone().unwrap_or_default()];
                parts.extend(any.iter().cloned());
                parts.push(last.clone().unwrap_or_default());
                write!(f, "{field} substrings {}", text(&parts.join("*")))
            }
            Op::In(vs) => {
                write!(f, "{field} in ")?;
                list(f, vs)
            }
            Op::NotIn(vs) => {
                write!(f, "{field} not in ")?;
                list(f, vs)
            }
            Op::Exists(b) => write!(f, "{field} exists {b}"),
            Op::Between(a, b) => write!(f, "{field} between({a}, {b})"),
            Op::Gt(v) => write!(f, "{field} > {v}"),
            Op::Ge(v) => write!(f, "{field} >= {v}"),
            Op::Lt(v) => write!(f, "{field} < {v}"),
            Op::Le(v) => write!(f, "{field} <= {v}"),
            Op::FreeText(s) => write!(f, "{field} freeText {}", text(s)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Shared by the two front ends: literals as written, and their checks against a field.

/// A value as the client wrote it, before it is checked against a field's type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    /// `null`.
    Null,
    /// `true` / `false` (unquoted in ZenQL; JSON booleans).
    Bool(bool),
    /// A number, as written (ZenQL) or as serde_json prints it (JSON).
    Number(String),
    /// A quoted string, a bare ZenQL word, or a JSON string.
    Text(String),
    /// A date function call.
    DateFn(DateFunction),
    /// `currentUser()`.
    CurrentUser,
}

/// A function call by name and optional integer argument, as either front end read it.
pub(super) fn call_function(name: &str, arg: Option<i64>) -> Result<Literal, String> {
    let lower = name.to_ascii_lowercase();
    let kind = match lower.as_str() {
        "currentuser" => {
            return match arg {
                None => Ok(Literal::CurrentUser),
                Some(_) => Err("currentUser() takes no argument".to_owned()),
            };
        }
        "now" => DateFnKind::Now,
        "startofday" => DateFnKind::StartOf(Period::Day),
        "startofweek" => DateFnKind::StartOf(Period::Week),
        "startofmonth" => DateFnKind::StartOf(Period::Month),
        "startofyear" => DateFnKind::StartOf(Period::Year),
        "endofday" => DateFnKind::EndOf(Period::Day),
        "endofweek" => DateFnKind::EndOf(Period::Week),
        "endofmonth" => DateFnKind::EndOf(Period::Month),
        "endofyear" => DateFnKind::EndOf(Period::Year),
        _ => return Err(format!("unknown function '{name}'")),
    };
    let offset = arg.unwrap_or(0);
    if offset.abs() > MAX_DATE_OFFSET {
        return Err(format!(
            "date offset {offset} is out of range (at most {MAX_DATE_OFFSET})"
        ));
    }
    Ok(Literal::DateFn(DateFunction { kind, offset }))
}

/// Parses a function call written as a whole string, like `now(-7)` or `startOfWeek()`
/// (the JSON front end accepts these as strings on timestamp fields). `None` when the
/// string does not look like a call at all.
pub(super) fn parse_call_str(s: &str) -> Option<Result<Literal, String>> {
    let s = s.trim();
    let open = s.find('(')?;
    let inner = s.strip_suffix(')')?.get(open + 1..)?;
    let name = s[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let inner = inner.trim();
    let arg = if inner.is_empty() {
        None
    } else {
        match parse_int(inner) {
            Some(n) => Some(n),
            None => return Some(Err(format!("expected an integer argument, not '{inner}'"))),
        }
    };
    Some(call_function(name, arg))
}

/// An integer in plain decimal notation with an optional sign.
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `s` is a number in JSON-like notation: `-12`, `3.5`, `1e9`, `-2.5E-3`.
pub(super) fn is_number(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Parses a date (`2024-01-31`, the whole day) or a date-time (RFC 3339, or without an
/// offset, meaning UTC) into a [`Value::Date`] or [`Value::Timestamp`].
pub(super) fn parse_datetime(s: &str) -> Option<Value> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, OffsetDateTime, PrimitiveDateTime};

    let to_ms =
        |dt: OffsetDateTime| i64::try_from(dt.unix_timestamp_nanos().div_euclid(1_000_000)).ok();
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        let days = i64::from(d.to_julian_day()) - 2_440_588;
        return Some(Value::Date(days * DAY_MS));
    }
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return to_ms(dt).map(Value::Timestamp);
    }
    let naive = format_description!(
        "[year]-[month]-[day][first [T][t][ ]][hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(dt) = PrimitiveDateTime::parse(s, naive) {
        return to_ms(dt.assume_utc()).map(Value::Timestamp);
    }
    None
}

fn kind_of(lit: &Literal) -> &'static str {
    match lit {
        Literal::Null => "null",
        Literal::Bool(_) => "a boolean",
        Literal::Number(_) => "a number",
        Literal::Text(_) => "text",
        Literal::DateFn(_) => "a date function",
        Literal::CurrentUser => "currentUser()",
    }
}

/// Checks a literal against the field it is compared with and turns it into a [`Value`].
/// `from_json` lets a JSON string hold a function call (`"now(-7)"`) on timestamp
/// fields and `"currentUser()"` on id fields, since JSON has no other way to write them.
pub(super) fn coerce(field: &FieldRef, lit: Literal, from_json: bool) -> Result<Value, String> {
    if lit == Literal::Null {
        return Ok(Value::Null);
    }
    match field.ty() {
        Some(FieldType::Id | FieldType::Text) => match lit {
            Literal::Text(s) if from_json && field.ty() == Some(FieldType::Id) => {
                match parse_call_str(&s) {
                    Some(Ok(Literal::CurrentUser)) => Ok(Value::CurrentUser),
                    _ => Ok(Value::String(s)),
                }
            }
            Literal::Text(s) | Literal::Number(s) => Ok(Value::String(s)),
            Literal::CurrentUser => Ok(Value::CurrentUser),
            other => Err(format!(
                "field '{field}' takes text, not {}{}",
                kind_of(&other),
                if matches!(other, Literal::Bool(_)) {
                    " (quote it to compare as text)"
                } else {
                    ""
                }
            )),
        },
        Some(FieldType::Timestamp) => match lit {
            Literal::DateFn(func) => Ok(Value::DateFn(func)),
            Literal::Text(s) => {
                if let Some(v) = parse_datetime(&s) {
                    return Ok(v);
                }
                if from_json {
                    match parse_call_str(&s) {
                        Some(Ok(Literal::DateFn(func))) => return Ok(Value::DateFn(func)),
                        Some(Err(e)) => return Err(e),
                        _ => {}
                    }
                }
                Err(format!(
                    "field '{field}' takes a date such as 2024-01-31 or 2024-01-31T10:00:00Z, not '{s}'"
                ))
            }
            other => Err(format!(
                "field '{field}' takes a date such as 2024-01-31 or now(-7), not {}",
                kind_of(&other)
            )),
        },
        Some(FieldType::Bool) => match lit {
            Literal::Bool(b) => Ok(Value::Bool(b)),
            other => Err(format!(
                "field '{field}' takes true or false, not {}",
                kind_of(&other)
            )),
        },
        None => match lit {
            Literal::Bool(b) => Ok(Value::Bool(b)),
            Literal::Text(s) => Ok(Value::String(s)),
            Literal::CurrentUser => Ok(Value::CurrentUser),
            Literal::Number(s) => {
                number_value(&s).ok_or_else(|| format!("number '{s}' is out of range"))
            }
            other => Err(format!(
                "field '{field}' does not take {}: custom properties are compared as text, numbers or booleans",
                kind_of(&other)
            )),
        },
    }
}

fn number_value(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Int(i));
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => {
            // Integral values beyond i64 stay floats; that is what they compare as.
            Some(Value::Float(x))
        }
        _ => None,
    }
}

/// The operators as the parsers recognise them, before operands are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Eq,
    Ne,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    Exists(bool),
    Between,
    Gt,
    Ge,
    Lt,
    Le,
    FreeText,
}

impl OpKind {
    /// The operator as a client would recognise it in a message.
    pub(super) fn name(self) -> &'static str {
        match self {
            OpKind::Eq => "equalTo",
            OpKind::Ne => "!=",
            OpKind::Contains => "contains",
            OpKind::NotContains => "!~",
            OpKind::StartsWith => "startsWith",
            OpKind::EndsWith => "endsWith",
            OpKind::In => "in",
            OpKind::NotIn => "not in",
            OpKind::Exists(_) => "exists",
            OpKind::Between => "between",
            OpKind::Gt => "greaterThan",
            OpKind::Ge => "greaterThanOrEqualTo",
            OpKind::Lt => "lessThan",
            OpKind::Le => "lessThanOrEqualTo",
            OpKind::FreeText => "freeText",
        }
    }
}

/// Checks that an operator can apply to a field at all, before its values are read, so
/// that `created ~ 2024` is reported as a misused operator rather than a bad date.
pub(super) fn check_operator(field: &FieldRef, kind: OpKind) -> Result<(), String> {
    let op_name = kind.name();
    match (kind, field.ty()) {
        (
            OpKind::Contains
            | OpKind::NotContains
            | OpKind::StartsWith
            | OpKind::EndsWith
            | OpKind::FreeText,
            Some(FieldType::Timestamp | FieldType::Bool),
        ) => Err(format!(
            "operator '{op_name}' needs a text field, and '{field}' is not one"
        )),
        (
            OpKind::Gt | OpKind::Ge | OpKind::Lt | OpKind::Le | OpKind::Between,
            Some(FieldType::Bool),
        ) => Err(format!(
            "operator '{op_name}' cannot be used with true/false field '{field}'"
        )),
        _ => Ok(()),
    }
}

/// Builds a condition from an operator and its already coerced operands, checking that
/// the operator suits the field and the values (e.g. no `contains` on a date, no `>`
/// with `null`). The parsers guarantee the operand count for each kind.
pub(super) fn make_condition(
    field: FieldRef,
    kind: OpKind,
    mut values: Vec<Value>,
) -> Result<Condition, String> {
    check_operator(&field, kind)?;
    let op_name = kind.name();
    let text_only = |v: Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s),
            _ => Err(format!("operator '{op_name}' takes text")),
        }
    };
    let ordered = |v: &Value| -> Result<(), String> {
        match v {
            Value::Null | Value::Bool(_) | Value::CurrentUser => Err(format!(
                "operator '{op_name}' takes a text, number or date value, not {}",
                match v {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    _ => "currentUser()",
                }
            )),
            _ => Ok(()),
        }
    };
    let mut one = || values.pop().unwrap_or(Value::Null);
    let op = match kind {
        OpKind::Eq => Op::Eq(one()),
        OpKind::Ne => Op::Ne(one()),
        OpKind::Contains => Op::Contains(text_only(one())?),
        OpKind::NotContains => Op::NotContains(text_only(one())?),
        OpKind::StartsWith => Op::StartsWith(text_only(one())?),
        OpKind::EndsWith => Op::EndsWith(text_only(one())?),
        OpKind::FreeText => {
            let s = text_only(one())?;
            if s.split_whitespace().next().is_none() {
                return Err("freeText needs at least one word".to_owned());
            }
            Op::FreeText(s)
        }
        OpKind::In => Op::In(values),
        OpKind::NotIn => Op::NotIn(values),
        OpKind::Exists(b) => Op::Exists(b),
        OpKind::Gt | OpKind::Ge | OpKind::Lt | OpKind::Le => {
            let v = one();
            ordered(&v)?;
            match kind {
                OpKind::Gt => Op::Gt(v),
                OpKind::Ge => Op::Ge(v),
                OpKind::Lt => Op::Lt(v),
                _ => Op::Le(v),
            }
        }
        OpKind::Between => {
            let b = one();
            let a = one();
            ordered(&a)?;
            ordered(&b)?;
            let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
            if numeric(&a) != numeric(&b) {
                return Err(
                    "between needs two values of the same kind (two numbers or two texts)"
                        .to_owned(),
                );
            }
            Op::Between(a, b)
        }
    };
    Ok(Condition { field, op })
}
