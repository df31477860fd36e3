//! `POST /Bulk` (RFC 7644 §3.7): up to [`MAX_OPERATIONS`] operations in order, each
//! through the same code as its own request. `bulkId:<id>` in a later operation's path
//! or data names what an earlier `POST` created; a reference to an operation that has
//! not run (yet), or that failed, fails that operation (gatehouse runs operations once,
//! in order: a client orders them). `failOnErrors` stops after that many errors.
//! Operations are not one transaction: each one's effect stays.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::list::Projection;
use super::{Ctx, MAX_OPERATIONS, Reply, ScimBody, groups, schema, users};

/// `POST /Bulk`.
pub async fn handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("The body must be a JSON object."));
    };
    let get = |name: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let schemas_ok = get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(schema::BULK_REQUEST)));
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must be [\"{}\"].",
            schema::BULK_REQUEST
        )));
    }
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            ScimError::invalid_value("failOnErrors must be a whole number of 1 or more.")
        })?),
    };
    let Some(Value::Array(ops)) = get("Operations") else {
        return Err(ScimError::invalid_syntax("'Operations' must be a list."));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("At most {MAX_OPERATIONS} operations may be sent at once."),
        ));
    }
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results = Vec::with_capacity(ops.len());
    let mut errors = 0u64;
    for op in ops {
        if fail_on_errors.is_some_and(|n| errors >= n) {
            break;
        }
        let (result, ok) = run(&ctx, op, &mut created).await;
        if !ok {
            errors += 1;
        }
        results.push(result);
    }
    Ok(Reply::ok(json!({
        "schemas": [schema::BULK_RESPONSE],
        "Operations": results,
    })))
}

/// Runs one operation: its result entry, and whether it succeeded.
async fn run(ctx: &Ctx, op: &Value, created: &mut HashMap<String, String>) -> (Value, bool) {
    let field = |name: &str| {
        op.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    };
    let method = field("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let bulk_id = field("bulkId").and_then(Value::as_str).map(str::to_owned);
    let mut entry = Map::new();
    entry.insert("method".into(), json!(method));
    if let Some(b) = &bulk_id {
        entry.insert("bulkId".into(), json!(b));
    }
    let outcome = async {
        if !op.is_object() {
            return Err(ScimError::invalid_syntax(
                "Each operation must be an object.",
            ));
        }
        let path = field("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax("Each operation needs a 'path'."))?;
        let path = substitute_str(path, created)?;
        let data = match field("data") {
            Some(d) => Some(substitute(d.clone(), created)?),
            None => None,
        };
        let mut headers = HeaderMap::new();
        if let Some(v) = field("version").and_then(Value::as_str) {
            if let Ok(h) = HeaderValue::from_str(v) {
                headers.insert(header::IF_MATCH, h);
            }
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let need_data = || {
            data.clone()
                .ok_or_else(|| ScimError::invalid_syntax("This operation needs 'data'."))
        };
        let none = Projection::default();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["Users"]) => {
                if bulk_id.is_none() {
                    return Err(ScimError::invalid_syntax("A bulk POST needs a 'bulkId'."));
                }
                users::create(ctx, need_data()?).await
            }
            ("POST", ["Groups"]) => {
                if bulk_id.is_none() {
                    return Err(ScimError::invalid_syntax("A bulk POST needs a 'bulkId'."));
                }
                groups::create(ctx, need_data()?).await
            }
            ("PUT", ["Users", id]) => users::put(ctx, id, need_data()?, &headers).await,
            ("PATCH", ["Users", id]) => users::patch(ctx, id, need_data()?, &headers).await,
            ("DELETE", ["Users", id]) => users::delete(ctx, id, &headers).await,
            ("PUT", ["Groups", id]) => groups::put(ctx, id, need_data()?, &headers).await,
            ("PATCH", ["Groups", id]) => {
                groups::patch(ctx, id, need_data()?, &headers, &none).await
            }
            ("DELETE", ["Groups", id]) => groups::delete(ctx, id, &headers).await,
            ("POST" | "PUT" | "PATCH" | "DELETE", _) => Err(ScimError::invalid_path(format!(
                "'{path}' is not a resource this method applies to in a bulk request."
            ))),
            _ => Err(ScimError::invalid_syntax(
                "'method' must be POST, PUT, PATCH or DELETE.",
            )),
        }
    }
    .await;
    match outcome {
        Ok(reply) => {
            if let Some(body) = &reply.body {
                if let Some(loc) = body["meta"]["location"].as_str() {
                    entry.insert("location".into(), json!(loc));
                }
                if let (Some(b), Some(id)) = (&bulk_id, body["id"].as_str()) {
                    if reply.status == StatusCode::CREATED {
                        created.insert(b.clone(), id.to_owned());
                    }
                }
            }
            if let Some(v) = &reply.etag {
                entry.insert("version".into(), json!(v));
            }
            entry.insert("status".into(), json!(reply.status.as_u16().to_string()));
            (Value::Object(entry), true)
        }
        Err(e) => {
            entry.insert("status".into(), json!(e.status.as_u16().to_string()));
            entry.insert("response".into(), e.body());
            (Value::Object(entry), false)
        }
    }
}

/// Replaces `bulkId:<id>` in a string (the whole string, or a path segment) with the id
/// that operation created.
fn substitute_str(s: &str, created: &HashMap<String, String>) -> Result<String, ScimError> {
    if !s.contains("bulkId:") {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("bulkId:") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "bulkId:".len()..];
        let end = after.find(['/', '"', ' ']).unwrap_or(after.len());
        let key = &after[..end];
        let id = created.get(key).ok_or_else(|| {
            ScimError::new(
                StatusCode::CONFLICT,
                Some("invalidValue"),
                format!("bulkId '{key}' names no operation that has created something (yet)."),
            )
        })?;
        out.push_str(id);
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(v: Value, created: &HashMap<String, String>) -> Result<Value, ScimError> {
    Ok(match v {
        Value::String(s) => Value::String(substitute_str(&s, created)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| substitute(i, created))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, substitute(v, created)?)))
                .collect::<Result<_, ScimError>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_ids_are_replaced_wherever_they_stand() {
        let created = HashMap::from([("u1".to_owned(), "1111".to_owned())]);
        assert_eq!(
            substitute_str("/Users/bulkId:u1", &created).unwrap(),
            "/Users/1111"
        );
        assert_eq!(
            substitute(json!({"members": [{"value": "bulkId:u1"}]}), &created).unwrap(),
            json!({"members": [{"value": "1111"}]})
        );
        let err = substitute_str("bulkId:nope", &created).unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert_eq!(substitute_str("plain", &created).unwrap(), "plain");
    }
}
