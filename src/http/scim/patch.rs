//! PATCH (RFC 7644 §3.5.2) over a resource's JSON representation: `add`, `replace` and
//! `remove`, with or without a `path`, value filters (`emails[type eq "work"].value`)
//! and extension attributes (`urn:…:enterprise:2.0:User:department`). The resource's
//! front door then writes the result as a PUT would, through the service.
//!
//! Accepted beyond the letter of the RFC, because the big clients send them: `op` in any
//! case (Entra ID sends `Replace`), booleans as strings (`"False"`), a `remove` of
//! `members` with a `value` listing the members to remove (Entra ID), a manager given as
//! a bare id, dotted or URN-qualified names as keys of a path-less value, and a
//! `replace`/`add` through a value filter that matches nothing, which adds a value built
//! from the filter's `eq` terms (Entra ID's `emails[type eq "work"].value`).

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{self, Attr, ResourceSchema, Type};
use crate::query::scim_filter::{self, CompValue, CompareOp, Filter, PatchPath};

/// The most operations one PATCH may hold.
pub const MAX_OPERATIONS: usize = 1000;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `add`.
    Add,
    /// `replace`.
    Replace,
    /// `remove`.
    Remove,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// What it does.
    pub op: Op,
    /// Its `path`, as written.
    pub path: Option<String>,
    /// Its `value`.
    pub value: Option<Value>,
}

/// Reads a PatchOp body.
pub fn operations(body: Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("The body must be a JSON object."));
    };
    let get = |name: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let schemas_ok = get("schemas").and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|s| {
            s.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))
        })
    });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must be [\"{}\"].",
            schema::PATCH_OP
        )));
    }
    let Some(Value::Array(items)) = get("Operations") else {
        return Err(ScimError::invalid_syntax("'Operations' must be a list."));
    };
    if items.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty."));
    }
    if items.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Some("tooMany"),
            format!("At most {MAX_OPERATIONS} operations may be sent at once."),
        ));
    }
    items
        .iter()
        .map(|item| {
            let Value::Object(o) = item else {
                return Err(ScimError::invalid_syntax(
                    "Each operation must be an object.",
                ));
            };
            let field = |name: &str| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let op = match field("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => Op::Add,
                Some("replace") => Op::Replace,
                Some("remove") => Op::Remove,
                _ => {
                    return Err(ScimError::invalid_syntax(
                        "Each operation's 'op' must be add, replace or remove.",
                    ));
                }
            };
            let path = match field("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(ScimError::invalid_path("'path' must be a string.")),
            };
            let value = field("value").cloned().filter(|v| !v.is_null());
            if op != Op::Remove && value.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "'{}' needs a 'value'.",
                    if op == Op::Add { "add" } else { "replace" }
                )));
            }
            if op == Op::Remove && path.is_none() {
                return Err(ScimError::no_target("'remove' needs a 'path'."));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Where a path points.
struct Target {
    /// The extension URI, for an extension attribute (or the whole extension).
    ext: Option<&'static str>,
    /// The attribute; `None`: the whole extension.
    attr: Option<&'static Attr>,
    /// The value filter.
    filter: Option<Filter>,
    /// The sub-attribute.
    sub: Option<&'static Attr>,
}

fn resolve(path: &str, schema: &ResourceSchema) -> Result<Target, ScimError> {
    if let Some(ext) = schema.extension_named(path.trim()) {
        return Ok(Target {
            ext: Some(ext.id),
            attr: None,
            filter: None,
            sub: None,
        });
    }
    let parsed: PatchPath = scim_filter::parse_path(path)
        .map_err(|e| ScimError::invalid_path(format!("The path '{path}' cannot be read: {e}.")))?;
    let unknown = || ScimError::invalid_path(format!("The path '{path}' names no attribute."));
    let (ext, attr) = match parsed.attr.uri.as_deref() {
        None => (None, schema.attr(&parsed.attr.name).ok_or_else(unknown)?),
        Some(u) if u.eq_ignore_ascii_case(schema.core.id) => {
            (None, schema.attr(&parsed.attr.name).ok_or_else(unknown)?)
        }
        Some(u) => {
            let e = schema.extension_named(u).ok_or_else(unknown)?;
            let a = e
                .attrs
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&parsed.attr.name))
                .ok_or_else(unknown)?;
            (Some(e.id), a)
        }
    };
    if attr.mutability == schema::Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "'{}' is read-only.",
            attr.name
        )));
    }
    let sub_name = parsed.attr.sub.as_deref().or(parsed.sub.as_deref());
    let sub = match sub_name {
        None => None,
        Some(s) => Some(attr.sub_attr(s).ok_or_else(unknown)?),
    };
    if parsed.filter.is_some() && !attr.multi {
        return Err(ScimError::invalid_path(format!(
            "'{}' is not multi-valued: it takes no value filter.",
            attr.name
        )));
    }
    Ok(Target {
        ext,
        attr: Some(attr),
        filter: parsed.filter,
        sub,
    })
}

/// Applies one operation to a representation (core attributes at the top, extension
/// attributes in an object under the extension's URI, canonical names).
pub fn apply(
    doc: &mut Map<String, Value>,
    schema: &ResourceSchema,
    op: &Operation,
) -> Result<(), ScimError> {
    let Some(path) = &op.path else {
        // No path: the value is an object of attributes, each added or replaced.
        let Some(Value::Object(values)) = &op.value else {
            return Err(ScimError::invalid_value(
                "Without a 'path', 'value' must be an object of attributes.",
            ));
        };
        for (key, value) in values {
            if key.eq_ignore_ascii_case("schemas")
                || key.eq_ignore_ascii_case("id")
                || key.eq_ignore_ascii_case("meta")
            {
                continue;
            }
            if let Some(ext) = schema.extension_named(key) {
                let Value::Object(inner) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' must be an object.",
                        ext.id
                    )));
                };
                for (k, v) in inner
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    apply(
                        doc,
                        schema,
                        &Operation {
                            op: op.op,
                            path: Some(format!("{}:{k}", ext.id)),
                            value: Some(v.clone()),
                        },
                    )?;
                }
                continue;
            }
            apply(
                doc,
                schema,
                &Operation {
                    op: op.op,
                    path: Some(key.clone()),
                    value: Some(value.clone()),
                },
            )?;
        }
        return Ok(());
    };
    let t = resolve(path, schema)?;
    let container: &mut Map<String, Value> = match t.ext {
        None => doc,
        Some(uri) => {
            let entry = doc
                .entry(uri.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            entry
                .as_object_mut()
                .ok_or_else(|| ScimError::invalid_value("bad extension"))?
        }
    };
    let Some(attr) = t.attr else {
        // The whole extension.
        match op.op {
            Op::Remove => container.clear(),
            Op::Add | Op::Replace => {
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "The extension's value must be an object.",
                    ));
                };
                if op.op == Op::Replace {
                    container.clear();
                }
                // (scim2-models sends the extension's own `schemas` inside it.)
                for (k, v) in values
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    container.insert(k.clone(), v.clone());
                }
            }
        }
        tidy(doc, t.ext);
        return Ok(());
    };
    let value = op.value.clone().map(|v| normalise(attr, v));
    let name = attr.name.to_owned();
    if !attr.multi {
        match (op.op, t.sub) {
            (Op::Remove, None) => {
                container.remove(&name);
            }
            (Op::Remove, Some(sub)) => {
                if let Some(Value::Object(o)) = container.get_mut(&name) {
                    o.remove(sub.name);
                    if o.is_empty() {
                        container.remove(&name);
                    }
                }
            }
            (_, Some(sub)) => {
                let entry = container
                    .entry(name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let (Value::Object(o), Some(v)) = (entry, value) {
                    o.insert(sub.name.to_owned(), v);
                }
            }
            (_, None) => {
                let v = value.unwrap_or(Value::Null);
                match (attr.ty, v) {
                    // A complex attribute: the given sub-attributes replace theirs, the
                    // others stay (RFC 7644 §3.5.2.3).
                    (Type::Complex, Value::Object(new)) => {
                        let entry = container
                            .entry(name)
                            .or_insert_with(|| Value::Object(Map::new()));
                        if !entry.is_object() {
                            *entry = Value::Object(Map::new());
                        }
                        if let Value::Object(o) = entry {
                            for (k, v) in new {
                                o.insert(k, v);
                            }
                        }
                    }
                    (_, v) => {
                        container.insert(name, v);
                    }
                }
            }
        }
        tidy(doc, t.ext);
        return Ok(());
    }
    // Multi-valued.
    let mut items: Vec<Value> = match container.remove(&name) {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    };
    let new_items = |v: Option<Value>| -> Vec<Value> {
        match v {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![other],
        }
    };
    match (&t.filter, op.op) {
        (None, Op::Add) => {
            let added = new_items(value);
            if added.iter().any(is_primary) {
                clear_primary(&mut items);
            }
            for v in added {
                if !items.contains(&v) {
                    items.push(v);
                }
            }
        }
        (None, Op::Replace) => {
            if let Some(sub) = t.sub {
                // `emails.value`: every value's sub-attribute.
                for item in &mut items {
                    if let (Value::Object(o), Some(v)) = (item, value.clone()) {
                        o.insert(sub.name.to_owned(), v);
                    }
                }
            } else {
                items = new_items(value);
            }
        }
        (None, Op::Remove) => match (t.sub, value) {
            (Some(sub), _) => {
                for item in &mut items {
                    if let Value::Object(o) = item {
                        o.remove(sub.name);
                    }
                }
            }
            // Entra ID: `remove` of `members` with the members to remove as its value.
            (None, Some(v)) => {
                let gone = new_items(Some(v));
                items.retain(|item| !gone.iter().any(|g| same_value(g, item)));
            }
            (None, None) => items.clear(),
        },
        (Some(f), Op::Remove) => match t.sub {
            None => items.retain(|item| !scim_filter::matches(f, item)),
            Some(sub) => {
                for item in items.iter_mut().filter(|i| scim_filter::matches(f, i)) {
                    if let Value::Object(o) = item {
                        o.remove(sub.name);
                    }
                }
            }
        },
        (Some(f), Op::Add | Op::Replace) => {
            let mut hit = false;
            for item in items.iter_mut().filter(|i| scim_filter::matches(f, i)) {
                hit = true;
                match (t.sub, item, value.clone()) {
                    (Some(sub), Value::Object(o), Some(v)) => {
                        o.insert(sub.name.to_owned(), v);
                    }
                    (None, Value::Object(o), Some(Value::Object(new))) => {
                        if op.op == Op::Replace {
                            o.clear();
                        }
                        o.extend(new);
                    }
                    (None, slot, Some(v)) => *slot = v,
                    _ => {}
                }
            }
            if !hit {
                let Some(mut made) = from_filter(f) else {
                    return Err(ScimError::no_target(format!(
                        "No value of '{}' matches the filter.",
                        attr.name
                    )));
                };
                match (t.sub, value) {
                    (Some(sub), Some(v)) => {
                        made.insert(sub.name.to_owned(), v);
                    }
                    (None, Some(Value::Object(new))) => made.extend(new),
                    _ => {}
                }
                items.push(Value::Object(made));
            }
        }
    }
    if !items.is_empty() {
        container.insert(name, Value::Array(items));
    }
    tidy(doc, t.ext);
    Ok(())
}

/// Removes an extension object left empty.
fn tidy(doc: &mut Map<String, Value>, ext: Option<&str>) {
    if let Some(uri) = ext {
        if doc
            .get(uri)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
        {
            doc.remove(uri);
        }
    }
}

fn is_primary(v: &Value) -> bool {
    match v.get("primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn clear_primary(items: &mut [Value]) {
    for item in items {
        if let Value::Object(o) = item {
            if o.contains_key("primary") {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Whether two values of a multi-valued attribute are the same one: by `value` when
/// both have it (ids of members), else equal.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The value a filter of `eq` terms joined by `and` describes (`type eq "work"` makes
/// `{"type": "work"}`); `None` for any other filter.
fn from_filter(f: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut add = |f: &Filter| -> bool {
        match f {
            Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value,
            } if attr.sub.is_none() && attr.uri.is_none() && *value != CompValue::Null => {
                out.insert(attr.name.clone(), value.to_json());
                true
            }
            _ => false,
        }
    };
    let ok = match f {
        Filter::And(items) => items.iter().all(&mut add),
        other => add(other),
    };
    ok.then_some(out)
}

/// Client habits, made regular: a manager given as a bare id becomes `{"value": id}`.
fn normalise(attr: &Attr, v: Value) -> Value {
    match (attr.ty, v) {
        (Type::Complex, Value::String(s)) if !attr.multi && attr.sub_attr("value").is_some() => {
            let mut m = Map::new();
            m.insert("value".into(), Value::String(s));
            Value::Object(m)
        }
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::scim::schema::{ENTERPRISE, USERS};
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, ScimError> {
        let mut doc = doc.as_object().cloned().unwrap();
        let ops = operations(json!({"schemas": [schema::PATCH_OP], "Operations": ops}))?;
        for op in &ops {
            apply(&mut doc, &USERS, op)?;
        }
        Ok(Value::Object(doc))
    }

    #[test]
    fn entra_id_patches() {
        let doc = json!({"userName": "a", "active": true,
            "emails": [{"type": "work", "value": "a@x.org", "primary": true}]});
        // Capitalised op, boolean as a string.
        let out = run(
            doc.clone(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(
            out["active"],
            json!("False"),
            "read as a boolean when the body is checked"
        );
        // A value path with a sub-attribute.
        let out = run(doc.clone(), json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@x.org"}])).unwrap();
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "b@x.org", "primary": true}])
        );
        // No match: added from the filter.
        let out = run(
            doc.clone(),
            json!([{"op": "Add", "path": "emails[type eq \"home\"].value", "value": "h@x.org"}]),
        )
        .unwrap();
        assert_eq!(
            out["emails"][1],
            json!({"type": "home", "value": "h@x.org"})
        );
        // Dotted keys without a path, an extension attribute, a manager as a bare id.
        let out = run(
            doc,
            json!([
                {"op": "replace", "value": {"name.givenName": "Ann", "displayName": "Ann A"}},
                {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Ops"},
                {"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": "m-1"},
            ]),
        )
        .unwrap();
        assert_eq!(out["name"], json!({"givenName": "Ann"}));
        assert_eq!(out["displayName"], json!("Ann A"));
        assert_eq!(
            out[ENTERPRISE],
            json!({"department": "Ops", "manager": {"value": "m-1"}})
        );
    }

    #[test]
    fn add_replace_remove_on_multi_valued_attributes() {
        let doc = json!({"userName": "a", "phoneNumbers": [{"value": "1", "type": "work", "primary": true}]});
        let out = run(doc.clone(), json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "2", "primary": true}]}])).unwrap();
        assert_eq!(
            out["phoneNumbers"],
            json!([{"value": "1", "type": "work", "primary": false}, {"value": "2", "primary": true}])
        );
        let out = run(
            doc.clone(),
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]),
        )
        .unwrap();
        assert!(out.get("phoneNumbers").is_none());
        let out = run(
            doc.clone(),
            json!([{"op": "remove", "path": "phoneNumbers", "value": [{"value": "1"}]}]),
        )
        .unwrap();
        assert!(
            out.get("phoneNumbers").is_none(),
            "Entra's removal by value"
        );
        let err = run(doc.clone(), json!([{"op": "replace", "path": "phoneNumbers[value eq \"9\" or value eq \"8\"]", "value": {"value": "3"}}])).unwrap_err();
        assert_eq!(err.scim_type, Some("noTarget"));
        let out = run(doc, json!([{"op": "remove", "path": "phoneNumbers"}])).unwrap();
        assert!(out.get("phoneNumbers").is_none());
    }

    #[test]
    fn bad_operations_are_400s() {
        let doc = json!({"userName": "a"});
        for (ops, want) in [
            (json!([{"op": "move", "path": "userName"}]), "invalidSyntax"),
            (json!([{"op": "remove"}]), "noTarget"),
            (json!([{"op": "add", "path": "userName"}]), "invalidSyntax"),
            (
                json!([{"op": "add", "path": "shoeSize", "value": 1}]),
                "invalidPath",
            ),
            (
                json!([{"op": "add", "path": "emails[type eq", "value": 1}]),
                "invalidPath",
            ),
            (
                json!([{"op": "add", "path": "groups", "value": []}]),
                "mutability",
            ),
            (
                json!([{"op": "add", "path": "userName[value eq \"x\"]", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "add", "value": "not an object"}]),
                "invalidValue",
            ),
            (json!([]), "invalidSyntax"),
        ] {
            let err = run(doc.clone(), ops.clone()).expect_err(&ops.to_string());
            assert_eq!(err.scim_type, Some(want), "{ops}: {}", err.detail);
        }
    }
}
