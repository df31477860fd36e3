//! The JSON query front end (spec §7): the `where` array and `orderBy` of the search
//! endpoints, and the `order=` parameter of the list endpoints.
//!
//! Role: read an already-parsed `serde_json::Value` into a checked [`Expr`] or
//! [`OrderBy`], naming the JSON path of anything wrong (`where[1].field`). Property
//! names (`field`, operator names, `and`/`or`/`not`, `asc`/`desc`) and field names are
//! case-insensitive.
//!
//! It must not read the clock or touch SQL, and bounds its work: nesting depth and the
//! number of conditions and values are capped, so that a large body fails as a 400
//! rather than as an oversized SQL statement.

use serde_json::{Map, Value as Json};

use super::ast::{self, Direction, Expr, FieldRef, FieldSet, Literal, OpKind, OrderBy};
use super::error::QueryError;

/// Deepest accepted nesting of `and`/`or`/`not`.
pub const MAX_DEPTH: usize = 32;
/// Most conditions plus values (each `in` element counts) in one `where`.
pub const MAX_TERMS: usize = 1000;
/// Most words in one `freeText` value.
pub const MAX_FREE_TEXT_WORDS: usize = 16;
/// Most sort keys in one `orderBy` or `order=`: each becomes an `ORDER BY` term (a JSON
/// extraction for `custom.<key>`), and no useful order needs more.
pub const MAX_ORDER_TERMS: usize = 16;

/// Reads a JSON `where`: an array of items that must all hold. An item is
/// `{"field": F, OP: V}` (one operator), `{"and": [...]}`, `{"or": [...]}`,
/// `{"not": {...}}` or `{"not": [...]}` (the array form is ANDed, then negated).
/// A single item object is accepted in place of the array; `null` or `[]` means no filter.
pub fn parse_where(value: &Json, fields: &FieldSet) -> Result<Expr, QueryError> {
    let mut r = Reader { fields, terms: 0 };
    match value {
        Json::Null => Ok(Expr::And(Vec::new())),
        Json::Array(items) => Ok(Expr::And(r.items(items, "where", 0)?)),
        Json::Object(_) => r.item(value, "where", 0),
        _ => Err(QueryError::at_path(
            "where",
            "expected an array of conditions",
        )),
    }
}

/// Reads a JSON `orderBy`: `[{"asc": F} | {"desc": F} | "F" | "-F", ...]`, or one such
/// element alone. A leading `-` on a name means descending. `null` means no ordering.
pub fn parse_order_by(value: &Json, fields: &FieldSet) -> Result<OrderBy, QueryError> {
    let mut keys = Vec::new();
    match value {
        Json::Null => {}
        Json::Array(items) => {
            if items.len() > MAX_ORDER_TERMS {
                return Err(QueryError::at_path(
                    "orderBy",
                    format!("orderBy takes at most {MAX_ORDER_TERMS} fields"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                keys.push(order_item(item, &format!("orderBy[{i}]"), fields)?);
            }
        }
        _ => keys.push(order_item(value, "orderBy", fields)?),
    }
    Ok(OrderBy(keys))
}

/// Reads the `order=` parameter of the list endpoints: comma-separated field names, a
/// leading `-` for descending (`lastName,-created`). Errors carry the byte offset of the
/// offending name. A blank parameter means no ordering.
pub fn parse_order_param(s: &str, fields: &FieldSet) -> Result<OrderBy, QueryError> {
    const MAX_LEN: usize = 4096;
    if s.len() > MAX_LEN {
        return Err(QueryError::at(
            MAX_LEN,
            format!("order is too long (at most {MAX_LEN} bytes)"),
        ));
    }
    if s.trim().is_empty() {
        return Ok(OrderBy::default());
    }
    let mut keys = Vec::new();
    let mut offset = 0;
    for part in s.split(',') {
        let lead = part.len() - part.trim_start().len();
        let name = part.trim();
        let pos = offset + lead;
        offset += part.len() + 1;
        if keys.len() == MAX_ORDER_TERMS {
            return Err(QueryError::at(
                pos,
                format!("order takes at most {MAX_ORDER_TERMS} fields"),
            ));
        }
        let (dir, bare) = split_direction(name);
        let Some(field) = lookup_orderable(bare, fields) else {
            let msg = if bare.is_empty() {
                "expected a field name".to_owned()
            } else {
                format!("unknown field '{bare}'")
            };
            return Err(QueryError::at(pos, msg));
        };
        keys.push((field, dir));
    }
    Ok(OrderBy(keys))
}

fn split_direction(name: &str) -> (Direction, &str) {
    if let Some(rest) = name.strip_prefix('-') {
        (Direction::Desc, rest.trim_start())
    } else if let Some(rest) = name.strip_prefix('+') {
        (Direction::Asc, rest.trim_start())
    } else {
        (Direction::Asc, name)
    }
}

fn lookup_orderable(name: &str, fields: &FieldSet) -> Option<FieldRef> {
    fields.lookup(name)
}

fn order_item(
    item: &Json,
    path: &str,
    fields: &FieldSet,
) -> Result<(FieldRef, Direction), QueryError> {
    let (dir, name, name_path) = match item {
        Json::String(s) => {
            let (dir, bare) = split_direction(s.trim());
            (dir, bare.to_owned(), path.to_owned())
        }
        Json::Object(map) => {
            let mut entries = map.iter();
            let (Some((key, v)), None) = (entries.next(), entries.next()) else {
                return Err(QueryError::at_path(
                    path,
                    "expected {\"asc\": field} or {\"desc\": field}",
                ));
            };
            let dir = if key.eq_ignore_ascii_case("asc") {
                Direction::Asc
            } else if key.eq_ignore_ascii_case("desc") {
                Direction::Desc
            } else {
                return Err(QueryError::at_path(
                    format!("{path}.{key}"),
                    "expected \"asc\" or \"desc\"",
                ));
            };
            let name_path = format!("{path}.{}", key.to_ascii_lowercase());
            let Json::String(s) = v else {
                return Err(QueryError::at_path(name_path, "expected a field name"));
            };
            (dir, s.trim().to_owned(), name_path)
        }
        _ => {
            return Err(QueryError::at_path(
                path,
                "expected a field name or {\"asc\": field}",
            ));
        }
    };
    match lookup_orderable(&name, fields) {
        Some(field) => Ok((field, dir)),
        None => Err(QueryError::at_path(
            name_path,
            format!("unknown field '{name}'"),
        )),
    }
}

struct Reader<'a> {
    fields: &'a FieldSet,
    /// Conditions and values read so far, against [`MAX_TERMS`].
    terms: usize,
}

/// The operator properties of a condition, by lowercased name.
fn op_kind(lower: &str) -> Option<OpKind> {
    Some(match lower {
        "equalto" => OpKind::Eq,
        "contains" => OpKind::Contains,
        "startswith" => OpKind::StartsWith,
        "endswith" => OpKind::EndsWith,
        "in" => OpKind::In,
        "exists" => OpKind::Exists(true),
        "between" => OpKind::Between,
        "greaterthan" => OpKind::Gt,
        "greaterthanorequalto" => OpKind::Ge,
        "lessthan" => OpKind::Lt,
        "lessthanorequalto" => OpKind::Le,
        "freetext" => OpKind::FreeText,
        _ => return None,
    })
}

impl Reader<'_> {
    fn count(&mut self, n: usize, path: &str) -> Result<(), QueryError> {
        self.terms += n;
        if self.terms > MAX_TERMS {
            return Err(QueryError::at_path(
                path,
                format!("query is too large (at most {MAX_TERMS} conditions and values)"),
            ));
        }
        Ok(())
    }

    fn items(&mut self, items: &[Json], path: &str, depth: usize) -> Result<Vec<Expr>, QueryError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.item(item, &format!("{path}[{i}]"), depth))
            .collect()
    }

    fn item(&mut self, item: &Json, path: &str, depth: usize) -> Result<Expr, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(QueryError::at_path(
                path,
                format!("query is nested too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        let Json::Object(map) = item else {
            return Err(QueryError::at_path(
                path,
                "expected an object such as {\"field\": \"name\", \"equalTo\": \"x\"}",
            ));
        };
        let props = properties(map, path)?;
        for (lower, _, value) in &props {
            let combinator = lower.as_str();
            if !matches!(combinator, "and" | "or" | "not") {
                continue;
            }
            let here = format!("{path}.{combinator}");
            if props.len() > 1 {
                return Err(QueryError::at_path(
                    here,
                    format!("'{combinator}' cannot be combined with other properties"),
                ));
            }
            let expr = match (combinator, value) {
                ("and", Json::Array(items)) => Expr::And(self.items(items, &here, depth + 1)?),
                ("or", Json::Array(items)) => Expr::Or(self.items(items, &here, depth + 1)?),
                ("not", Json::Object(_)) => {
                    Expr::Not(Box::new(self.item(value, &here, depth + 1)?))
                }
                ("not", Json::Array(items)) => {
                    let mut inner = self.items(items, &here, depth + 1)?;
                    let inner = if inner.len() == 1 {
                        inner.remove(0)
                    } else {
                        Expr::And(inner)
                    };
                    Expr::Not(Box::new(inner))
                }
                ("not", _) => {
                    return Err(QueryError::at_path(
                        here,
                        "expected an object or an array of conditions",
                    ));
                }
                _ => return Err(QueryError::at_path(here, "expected an array of conditions")),
            };
            return Ok(expr);
        }
        self.condition(&props, path)
    }

    fn condition(
        &mut self,
        props: &[(String, &str, &Json)],
        path: &str,
    ) -> Result<Expr, QueryError> {
        self.count(1, path)?;
        let mut field = None;
        let mut op: Option<(OpKind, &str, &Json)> = None;
        for &(ref lower, written, value) in props {
            if lower == "field" {
                let here = format!("{path}.field");
                let Json::String(name) = value else {
                    return Err(QueryError::at_path(here, "expected a field name"));
                };
                match self.fields.lookup(name.trim()) {
                    Some(f) => field = Some(f),
                    None => {
                        return Err(QueryError::at_path(here, format!("unknown field '{name}'")));
                    }
                }
                continue;
            }
            let Some(kind) = op_kind(lower) else {
                return Err(QueryError::at_path(
                    format!("{path}.{written}"),
                    format!("unknown operator '{written}'"),
                ));
            };
            if op.is_some() {
                return Err(QueryError::at_path(
                    format!("{path}.{written}"),
                    "only one operator is allowed per condition",
                ));
            }
            op = Some((kind, written, value));
        }
        let Some((kind, written, value)) = op else {
            return Err(QueryError::at_path(
                path,
                "expected an operator such as \"equalTo\"",
            ));
        };
        let here = format!("{path}.{written}");
        let field = match field {
            Some(f) => f,
            None if kind == OpKind::FreeText => FieldRef::AnyText,
            None => return Err(QueryError::at_path(path, "missing \"field\"")),
        };
        ast::check_operator(&field, kind).map_err(|m| QueryError::at_path(&here, m))?;
        let values = match kind {
            OpKind::Exists(_) => {
                let Json::Bool(b) = value else {
                    return Err(QueryError::at_path(here, "expected true or false"));
                };
                return ast::make_condition(field, OpKind::Exists(*b), Vec::new())
                    .map(Expr::Cmp)
                    .map_err(|m| QueryError::at_path(here, m));
            }
            OpKind::In => {
                let Json::Array(items) = value else {
                    return Err(QueryError::at_path(here, "expected an array of values"));
                };
                self.count(items.len(), &here)?;
                let mut values = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    values.push(self.value(&field, v, &format!("{here}[{i}]"))?);
                }
                values
            }
            OpKind::Between => {
                let Json::Array(items) = value else {
                    return Err(QueryError::at_path(here, "expected an array of two values"));
                };
                let [a, b] = items.as_slice() else {
                    return Err(QueryError::at_path(here, "expected an array of two values"));
                };
                vec![
                    self.value(&field, a, &format!("{here}[0]"))?,
                    self.value(&field, b, &format!("{here}[1]"))?,
                ]
            }
            OpKind::FreeText => {
                if let Json::String(s) = value {
                    let words = s.split_whitespace().count();
                    if words > MAX_FREE_TEXT_WORDS {
                        return Err(QueryError::at_path(
                            here,
                            format!("freeText takes at most {MAX_FREE_TEXT_WORDS} words"),
                        ));
                    }
                    self.count(words, &here)?;
                }
                vec![self.value(&field, value, &here)?]
            }
            _ => vec![self.value(&field, value, &here)?],
        };
        ast::make_condition(field, kind, values)
            .map(Expr::Cmp)
            .map_err(|m| QueryError::at_path(here, m))
    }

    fn value(&self, field: &FieldRef, v: &Json, path: &str) -> Result<ast::Value, QueryError> {
        let lit = match v {
            Json::Null => Literal::Null,
            Json::Bool(b) => Literal::Bool(*b),
            Json::Number(n) => Literal::Number(n.to_string()),
            Json::String(s) => Literal::Text(s.clone()),
            Json::Array(_) | Json::Object(_) => {
                return Err(QueryError::at_path(path, "expected a single value"));
            }
        };
        ast::coerce(field, lit, true).map_err(|m| QueryError::at_path(path, m))
    }
}

/// The properties of an object as (lowercased name, name as written, value), sorted by
/// name so that errors do not depend on serde_json's map order, refusing names that
/// differ only in case.
fn properties<'j>(
    map: &'j Map<String, Json>,
    path: &str,
) -> Result<Vec<(String, &'j str, &'j Json)>, QueryError> {
    let mut sorted: Vec<(&String, &Json)> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(String, &str, &Json)> = Vec::with_capacity(map.len());
    for (k, v) in sorted {
        let lower = k.to_ascii_lowercase();
        if out.iter().any(|(l, _, _)| *l == lower) {
            return Err(QueryError::at_path(
                format!("{path}.{k}"),
                format!("duplicate property '{k}'"),
            ));
        }
        out.push((lower, k.as_str(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{GROUPS, USERS};
    use serde_json::json;

    fn check(input: Json, expected: &str) {
        let got = match parse_where(&input, &USERS) {
            Ok(e) => e.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    fn check_order(input: Json, expected: &str) {
        let got = match parse_order_by(&input, &USERS) {
            Ok(o) => o.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    fn check_param(input: &str, expected: &str) {
        let got = match parse_order_param(input, &USERS) {
            Ok(o) => o.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn every_operator() {
        check(
            json!([{"field": "firstName", "equalTo": "Ann"}]),
            r#"(firstName = "Ann")"#,
        );
        check(
            json!([{"field": "firstName", "contains": "nn"}]),
            r#"(firstName ~ "nn")"#,
        );
        check(
            json!([{"field": "firstName", "startsWith": "A"}]),
            r#"(firstName startsWith "A")"#,
        );
        check(
            json!([{"field": "firstName", "endsWith": "n"}]),
            r#"(firstName endsWith "n")"#,
        );
        check(
            json!([{"field": "username", "in": ["a", "b", null]}]),
            r#"(username in ("a", "b", null))"#,
        );
        check(json!([{"field": "username", "in": []}]), "(username in ())");
        check(
            json!([{"field": "expiry", "exists": true}]),
            "(expiry exists true)",
        );
        check(
            json!([{"field": "expiry", "exists": false}]),
            "(expiry exists false)",
        );
        check(
            json!([{"field": "created", "between": ["2024-01-01", "2024-01-31T12:00:00Z"]}]),
            "(created between(2024-01-01, 2024-01-31T12:00:00.000Z))",
        );
        check(
            json!([{"field": "created", "greaterThan": "now(-7)"}]),
            "(created > now(-7))",
        );
        check(
            json!([{"field": "created", "greaterThanOrEqualTo": "startOfMonth()"}]),
            "(created >= startOfMonth())",
        );
        check(
            json!([{"field": "created", "lessThan": "2024-01-01"}]),
            "(created < 2024-01-01)",
        );
        check(
            json!([{"field": "created", "lessThanOrEqualTo": "endOfYear(1)"}]),
            "(created <= endOfYear(1))",
        );
        check(
            json!([{"field": "lastName", "freeText": "ann  smith"}]),
            r#"(lastName freeText "ann  smith")"#,
        );
        check(json!([{"freeText": "ann"}]), r#"(* freeText "ann")"#);
        check(
            json!([{"field": "id", "equalTo": "currentUser()"}]),
            "(id = currentUser())",
        );
        check(
            json!([{"field": "firstName", "equalTo": "currentUser()"}]),
            r#"(firstName = "currentUser()")"#,
        );
        check(
            json!([{"field": "status.locked", "equalTo": true}]),
            "(status.locked = true)",
        );
        check(
            json!([{"field": "firstName", "equalTo": null}]),
            "(firstName = null)",
        );
        check(
            json!([{"field": "firstName", "equalTo": 42}]),
            r#"(firstName = "42")"#,
        );
        check(
            json!([{"field": "custom.age", "greaterThan": 17.5}]),
            "(custom.age > 17.5)",
        );
        check(
            json!([{"field": "custom.age", "equalTo": 18}]),
            "(custom.age = 18)",
        );
        check(
            json!([{"field": "custom.Team", "equalTo": "Red"}]),
            r#"(custom.Team = "Red")"#,
        );
    }

    #[test]
    fn case_insensitive_names() {
        check(
            json!([{"Field": "FIRSTNAME", "EqualTo": "x"}]),
            r#"(firstName = "x")"#,
        );
        check(
            json!([{"FIELD": "Status.Locked", "equalto": false}]),
            "(status.locked = false)",
        );
        check(
            json!([{"OR": [{"field": "email", "CONTAINS": "a"}]}]),
            r#"((email ~ "a"))"#,
        );
        check(
            json!([{"Not": {"field": "email", "contains": "a"}}]),
            r#"(not email ~ "a")"#,
        );
    }

    #[test]
    fn combinators() {
        check(json!([]), "(and)");
        check(json!(null), "(and)");
        check(json!({"field": "email", "contains": "a"}), r#"email ~ "a""#);
        check(
            json!([{"field": "email", "contains": "a"}, {"or": [{"field": "firstName", "equalTo": "x"}, {"and": [{"field": "lastName", "equalTo": "y"}, {"field": "expiry", "exists": false}]}]}]),
            r#"(email ~ "a" and (firstName = "x" or (lastName = "y" and expiry exists false)))"#,
        );
        check(
            json!([{"not": {"field": "email", "contains": "a"}}]),
            r#"(not email ~ "a")"#,
        );
        check(
            json!([{"not": [{"field": "email", "contains": "a"}]}]),
            r#"(not email ~ "a")"#,
        );
        check(
            json!([{"not": [{"field": "email", "contains": "a"}, {"field": "email", "contains": "b"}]}]),
            r#"(not (email ~ "a" and email ~ "b"))"#,
        );
        check(json!([{"or": []}]), "((or))");
    }

    #[test]
    fn errors_name_the_path() {
        check(
            json!([{"field": "x", "equalTo": 1}]),
            "error: unknown field 'x' at where[0].field",
        );
        check(
            json!([{"field": "email", "equalTo": 1}, {"field": "frstName", "equalTo": 1}]),
            "error: unknown field 'frstName' at where[1].field",
        );
        check(
            json!([{"field": "email", "like": 1}]),
            "error: unknown operator 'like' at where[0].like",
        );
        check(
            json!([{"field": "email"}]),
            "error: expected an operator such as \"equalTo\" at where[0]",
        );
        check(
            json!([{"equalTo": "x"}]),
            "error: missing \"field\" at where[0]",
        );
        check(
            json!([{"field": "email", "equalTo": "x", "contains": "y"}]),
            "error: only one operator is allowed per condition at where[0].equalTo",
        );
        check(
            json!([{"field": "email", "field": "x"}]),
            "error: unknown field 'x' at where[0].field",
        );
        check(
            json!([{"field": "email", "Field": "x", "equalTo": 1}]),
            "error: duplicate property 'field' at where[0].field",
        );
        check(
            json!([{"field": 3, "equalTo": 1}]),
            "error: expected a field name at where[0].field",
        );
        check(
            json!([{"field": "email", "in": "x"}]),
            "error: expected an array of values at where[0].in",
        );
        check(
            json!([{"field": "created", "in": ["2024-01-01", "nope"]}]),
            "error: field 'created' takes a date such as 2024-01-31 or 2024-01-31T10:00:00Z, not 'nope' at where[0].in[1]",
        );
        check(
            json!([{"field": "email", "between": ["a"]}]),
            "error: expected an array of two values at where[0].between",
        );
        check(
            json!([{"field": "email", "exists": "yes"}]),
            "error: expected true or false at where[0].exists",
        );
        check(
            json!([{"field": "email", "equalTo": ["x"]}]),
            "error: expected a single value at where[0].equalTo",
        );
        check(
            json!([{"field": "created", "greaterThan": "now(x)"}]),
            "error: expected an integer argument, not 'x' at where[0].greaterThan",
        );
        check(
            json!([{"field": "created", "contains": "2024"}]),
            "error: operator 'contains' needs a text field, and 'created' is not one at where[0].contains",
        );
        check(
            json!([{"field": "status.locked", "equalTo": "true"}]),
            "error: field 'status.locked' takes true or false, not text at where[0].equalTo",
        );
        check(
            json!([{"freeText": "   "}]),
            "error: freeText needs at least one word at where[0].freeText",
        );
        check(
            json!([{"freeText": 5}]),
            "error: operator 'freeText' takes text at where[0].freeText",
        );
        check(
            json!([{"and": {"field": "email"}}]),
            "error: expected an array of conditions at where[0].and",
        );
        check(
            json!([{"and": [], "field": "email"}]),
            "error: 'and' cannot be combined with other properties at where[0].and",
        );
        check(
            json!([{"not": 1}]),
            "error: expected an object or an array of conditions at where[0].not",
        );
        check(
            json!([{"or": [{"field": "email", "equalTo": "a"}, 7]}]),
            "error: expected an object such as {\"field\": \"name\", \"equalTo\": \"x\"} at where[0].or[1]",
        );
        check(
            json!("email = x"),
            "error: expected an array of conditions at where",
        );
    }

    #[test]
    fn limits() {
        let mut deep = json!({"field": "email", "equalTo": "x"});
        for _ in 0..40 {
            deep = json!({"not": deep});
        }
        let err = parse_where(&json!([deep]), &USERS).unwrap_err();
        assert!(
            err.to_string().starts_with("query is nested too deeply"),
            "{err}"
        );
        let many: Vec<Json> = (0..1001).map(|i| json!(format!("u{i}"))).collect();
        let err = parse_where(&json!([{"field": "username", "in": many}]), &USERS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "query is too large (at most 1000 conditions and values) at where[0].in"
        );
        let words = vec!["w"; 17].join(" ");
        let err = parse_where(&json!([{"freeText": words}]), &USERS).unwrap_err();
        assert_eq!(err.path(), Some("where[0].freeText"));
    }

    #[test]
    fn order_by_forms() {
        check_order(
            json!([{"asc": "lastName"}, {"desc": "created"}]),
            "lastName,-created",
        );
        check_order(
            json!([{"ASC": "LASTNAME"}, {"Desc": "custom.rank"}]),
            "lastName,-custom.rank",
        );
        check_order(json!(["lastName", "-created"]), "lastName,-created");
        check_order(json!("-created"), "-created");
        check_order(json!({"desc": "email"}), "-email");
        check_order(json!(null), "");
        check_order(json!([]), "");
        check_order(
            json!([{"asc": "nope"}]),
            "error: unknown field 'nope' at orderBy[0].asc",
        );
        check_order(
            json!(["email", "name;delete"]),
            "error: unknown field 'name;delete' at orderBy[1]",
        );
        check_order(
            json!([{"up": "email"}]),
            "error: expected \"asc\" or \"desc\" at orderBy[0].up",
        );
        check_order(
            json!([{"asc": "email", "desc": "id"}]),
            "error: expected {\"asc\": field} or {\"desc\": field} at orderBy[0]",
        );
        check_order(
            json!([{"asc": 1}]),
            "error: expected a field name at orderBy[0].asc",
        );
        check_order(
            json!([1]),
            "error: expected a field name or {\"asc\": field} at orderBy[0]",
        );
        let sixteen: Vec<String> = (0..16).map(|i| format!("custom.k{i}")).collect();
        assert_eq!(parse_order_by(&json!(sixteen), &USERS).unwrap().0.len(), 16);
        let mut seventeen = sixteen.clone();
        seventeen.push("email".into());
        check_order(
            json!(seventeen),
            "error: orderBy takes at most 16 fields at orderBy",
        );
        let groups = parse_order_by(&json!(["-Name"]), &GROUPS).unwrap();
        assert_eq!(groups.to_string(), "-name");
    }

    #[test]
    fn order_param() {
        check_param("lastName,-created", "lastName,-created");
        check_param(
            " lastname , -CREATED ,custom.x",
            "lastName,-created,custom.x",
        );
        check_param("", "");
        check_param("+email", "email");
        check_param("lastName,", "error: expected a field name at position 9");
        check_param(
            "lastName,-nope",
            "error: unknown field 'nope' at position 9",
        );
        check_param(
            "name;delete",
            "error: unknown field 'name;delete' at position 0",
        );
        check_param("email, -", "error: expected a field name at position 7");
        let sixteen = vec!["-email"; 16].join(",");
        assert_eq!(parse_order_param(&sixteen, &USERS).unwrap().0.len(), 16);
        check_param(
            &format!("{sixteen},id"),
            "error: order takes at most 16 fields at position 112",
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Json> {
            let leaf = prop_oneof![
                Just(Json::Null),
                any::<bool>().prop_map(Json::Bool),
                any::<i64>().prop_map(|i| json!(i)),
                any::<f64>().prop_map(|x| json!(x)),
                prop::sample::select(vec![
                    "field",
                    "FIELD",
                    "equalTo",
                    "in",
                    "between",
                    "exists",
                    "not",
                    "and",
                    "or",
                    "freeText",
                    "firstName",
                    "created",
                    "custom.x",
                    "status.locked",
                    "now(-1)",
                    "2024-01-31",
                    "currentUser()",
                    "asc",
                    "desc",
                    "-email",
                    "",
                ])
                .prop_map(|s| json!(s)),
                "\\PC{0,12}".prop_map(Json::String),
            ];
            leaf.prop_recursive(6, 64, 6, |inner| {
                let keys = prop::sample::select(vec![
                    "field",
                    "equalTo",
                    "contains",
                    "in",
                    "between",
                    "exists",
                    "not",
                    "and",
                    "or",
                    "freeText",
                    "greaterThan",
                    "asc",
                    "desc",
                    "x",
                ]);
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                    prop::collection::vec((keys, inner), 0..4).prop_map(|kv| Json::Object(
                        kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_json_never_panics(v in arb_json()) {
                let _ = parse_where(&v, &USERS);
                let _ = parse_order_by(&v, &GROUPS);
            }

            #[test]
            fn arbitrary_order_param_never_panics(s in "\\PC{0,64}") {
                let _ = parse_order_param(&s, &USERS);
            }
        }
    }
}
