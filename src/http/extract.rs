//! Extractors that give handlers typed input and turn every malformed request into the
//! error envelope: JSON bodies with case-insensitive property names, query parameters
//! with case-insensitive names, path segments, and the authenticated caller.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;
use crate::domain::ids::GroupRef;
use crate::domain::page::PageRequest;
use crate::service::Caller;

pub use super::fields::Field;

/// Renames properties that match a known field case-insensitively to its canonical
/// name. Where a body has both spellings (`firstname` and `firstName`), the exact one wins.
fn canonicalize(value: &mut Value, fields: &[Field]) {
    let Value::Object(map) = value else { return };
    if fields.is_empty() {
        return;
    }
    let old = std::mem::take(map);
    let mut out = Map::with_capacity(old.len());
    for (key, mut v) in old {
        match fields.iter().find(|f| f.name.eq_ignore_ascii_case(&key)) {
            Some(f) => {
                canonicalize(&mut v, &f.nested);
                let exact = key == f.name;
                if exact || !out.contains_key(f.name) {
                    out.insert(f.name.to_owned(), v);
                }
            }
            None => {
                out.insert(key, v);
            }
        }
    }
    *map = out;
}

/// A JSON body read with case-insensitive property names; any parse or type error is a
/// 400 in the error envelope naming the property.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "The request body is larger than 1 MiB.")
            } else {
                ApiError::new(status, "The request body could not be read.")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("A JSON request body is required."));
        }
        let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("The request body is not valid JSON: {e}."))
        })?;
        let fields = super::fields::of::<T>();
        if !fields.is_empty() && !value.is_object() {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            ));
        }
        canonicalize(&mut value, &fields);
        let parsed = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ApiError::bad_request(type_error(&path, &e.into_inner().to_string()))
        })?;
        Ok(Self(parsed))
    }
}

/// The 400 message for a body that is JSON but not of the expected shape, built so that
/// it never repeats a value the client sent: serde quotes the offending value
/// (`invalid type: string "hunter2", expected …`), and the message is both answered and
/// logged, so a password sent in the wrong property would reach the logs. Only serde's
/// fixed words are kept: the kind of value found, what was expected (which comes from
/// our types, not from the request), and the names of missing or unknown properties.
fn type_error(path: &str, serde_message: &str) -> String {
    let subject = if path == "." {
        "The request body".to_owned()
    } else {
        format!("Property '{path}'")
    };
    // The client's value, if any, comes before the last ", expected " (serde writes
    // `{found}, expected {what}`), so what follows it is ours.
    let expected = serde_message.rsplit_once(", expected ").map(|(_, e)| e);
    for (prefix, what) in [
        ("invalid type: ", "has the wrong type"),
        ("invalid value: ", "has an invalid value"),
        ("unknown variant ", "has an unknown value"),
    ] {
        let Some(found) = serde_message.strip_prefix(prefix) else {
            continue;
        };
        return match (expected, kind_of(found)) {
            (Some(e), Some(kind)) => format!("{subject} {what}: expected {e}, got {kind}."),
            (Some(e), None) => format!("{subject} {what}: expected {e}."),
            (None, _) => format!("{subject} {what}."),
        };
    }
    // These name properties (ours, or keys the client chose) and never a value.
    let names_only = ["missing field `", "duplicate field `", "unknown field `"]
        .iter()
        .any(|p| serde_message.starts_with(p));
    if names_only {
        format!("{subject} has the wrong shape: {serde_message}.")
    } else {
        format!("{subject} has the wrong type.")
    }
}

/// The kind of value serde found (`string "…"`, ``integer `5` ``, `sequence`, `null`), in
/// JSON's words; `None` for anything else. The value itself, quoted after the kind, is
/// never read.
fn kind_of(found: &str) -> Option<&'static str> {
    let end = found
        .find(['"', '`'])
        .into_iter()
        .chain(found.find(", expected"))
        .min()
        .unwrap_or(found.len());
    Some(match found[..end].trim() {
        "string" => "a string",
        "integer" => "an integer",
        "floating point" => "a number",
        "boolean" => "a boolean",
        "null" | "unit value" => "null",
        "sequence" => "an array",
        "map" => "an object",
        _ => return None,
    })
}

/// Path parameters; a malformed segment is a 400 in the error envelope.
#[derive(Debug)]
pub struct Segments<T>(pub T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Self(t))
            .map_err(|e| ApiError::bad_request(format!("The path is malformed: {e}.")))
    }
}

/// Query parameters, names matched case-insensitively (spec §1).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
                .collect(),
        ))
    }
}

/// The largest page size (spec §1).
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The default page size.
pub const DEFAULT_PAGE_SIZE: u32 = 25;

impl Params {
    /// A parameter's raw value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_lowercase()).map(String::as_str)
    }

    /// A `true`/`false` parameter; anything else is a 400.
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "Query parameter '{name}' must be true or false, not '{v}'."
            ))),
        }
    }

    fn number(&self, name: &str, default: u32) -> Result<u32, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Query parameter '{name}' must be a whole number of zero or more, not '{v}'."
                ))
            }),
        }
    }

    /// `pageIndex` (default 0) and `pageSize` (default 25, 1 to 1000).
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let index = self.number("pageIndex", 0)?;
        let size = self.number("pageSize", DEFAULT_PAGE_SIZE)?;
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(ApiError::bad_request(format!(
                "Query parameter 'pageSize' must be between 1 and {MAX_PAGE_SIZE}."
            )));
        }
        Ok(PageRequest { index, size })
    }

    /// A comma-separated list of group identifiers (`excludedGroups`).
    pub fn groups(&self, name: &str) -> Vec<GroupRef> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(GroupRef::group)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The authenticated caller; requests without a valid bearer token get 401.
#[derive(Debug, Clone)]
pub struct Auth(pub std::sync::Arc<Caller>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::from(crate::service::Error::Unauthenticated))?;
        let caller = state.authenticate(token).await?;
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leaf(name: &'static str) -> Field {
        Field {
            name,
            nested: Vec::new(),
        }
    }

    fn fields() -> Vec<Field> {
        vec![
            leaf("firstName"),
            Field {
                name: "credentials",
                nested: vec![leaf("password"), leaf("passwordChangeFrequency")],
            },
            leaf("custom"),
        ]
    }

    #[test]
    fn property_names_match_case_insensitively_but_custom_keys_keep_theirs() {
        let mut v = json!({
            "FIRSTNAME": "Tyler",
            "Credentials": {"PASSWORD": "x"},
            "custom": {"SomeKey": 1},
            "unknown": true
        });
        canonicalize(&mut v, &fields());
        assert_eq!(
            v,
            json!({
                "firstName": "Tyler",
                "credentials": {"password": "x"},
                "custom": {"SomeKey": 1},
                "unknown": true
            })
        );
    }

    #[test]
    fn exact_spelling_wins_when_both_are_sent() {
        for body in [
            json!({"firstname": "a", "firstName": "b"}),
            json!({"firstName": "b", "firstname": "a"}),
        ] {
            let mut v = body;
            canonicalize(&mut v, &fields());
            assert_eq!(v, json!({"firstName": "b"}));
        }
    }

    /// What serde says for each kind of value, with a value chosen to break a naive
    /// rewrite (it contains `", expected "`, quotes and backticks).
    #[test]
    fn type_errors_never_repeat_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only its errors are read")]
        struct Body {
            password: String,
            count: u32,
            flag: bool,
            kind: Kind,
            list: Vec<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        enum Kind {
            Suspend,
            Unlock,
        }
        let secret = "hunter2`, expected \"x\" \u{1F600}";
        let base = json!({"password": "p", "count": 1, "flag": true, "kind": "unlock", "list": []});
        let cases = [
            (
                "password",
                json!(31_415_926_535_u64),
                "expected a string, got an integer",
            ),
            (
                "password",
                json!(-31_415_926_535_i64),
                "expected a string, got an integer",
            ),
            (
                "password",
                json!(12.345_678_9),
                "expected a string, got a number",
            ),
            (
                "password",
                json!([secret]),
                "expected a string, got an array",
            ),
            (
                "password",
                json!({"k": secret}),
                "expected a string, got an object",
            ),
            ("password", json!(null), "expected a string, got null"),
            ("password", json!(true), "expected a string, got a boolean"),
            ("count", json!(secret), "expected u32, got a string"),
            (
                "count",
                json!(-31_415_926_535_i64),
                "has an invalid value: expected u32",
            ),
            ("flag", json!(secret), "expected a boolean, got a string"),
            (
                "kind",
                json!(secret),
                "has an unknown value: expected `suspend` or `unlock`.",
            ),
            ("list", json!(secret), "expected a sequence, got a string"),
        ];
        for (field, value, want) in cases {
            let mut body = base.clone();
            body[field] = value.clone();
            let e = serde_path_to_error::deserialize::<_, Body>(body).unwrap_err();
            let message = type_error(&e.path().to_string(), &e.into_inner().to_string());
            assert!(message.contains(want), "{field}: {message}");
            assert!(
                message.starts_with(&format!("Property '{field}'")),
                "{message}"
            );
            for leak in ["hunter2", "31415926535", "12.345", "\u{1F600}"] {
                assert!(!message.contains(leak), "{field}={value}: {message}");
            }
        }
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove("count");
        let e = serde_path_to_error::deserialize::<_, Body>(body).unwrap_err();
        assert_eq!(
            type_error(&e.path().to_string(), &e.into_inner().to_string()),
            "The request body has the wrong shape: missing field `count`."
        );
        assert_eq!(
            type_error("x", "something custom: hunter2"),
            "Property 'x' has the wrong type."
        );
    }

    fn params(q: &str) -> Params {
        Params(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
                .collect(),
        )
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            params("").page().unwrap(),
            PageRequest { index: 0, size: 25 }
        );
        assert_eq!(
            params("pageindex=2&PAGESIZE=10").page().unwrap(),
            PageRequest { index: 2, size: 10 }
        );
        for bad in [
            "pageSize=0",
            "pageSize=1001",
            "pageIndex=-1",
            "pageSize=ten",
        ] {
            assert!(params(bad).page().is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans_are_strict() {
        assert!(
            params("includeInherited=TRUE")
                .bool("includeInherited")
                .unwrap()
        );
        assert!(!params("").bool("includeInherited").unwrap());
        assert!(
            params("includeInherited=yes")
                .bool("includeInherited")
                .is_err()
        );
    }
}

/// The caller if a bearer token was sent (it must then be valid), or `None`.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<std::sync::Arc<Caller>>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Auth::from_request_parts(parts, state)
                .await
                .map(|Auth(c)| Self(Some(c)))
        } else {
            Ok(Self(None))
        }
    }
}
