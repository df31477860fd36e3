//! The route table and the OpenAPI 3.1 document, built from the same declarations.
//!
//! Every handler carries a `#[utoipa::path]` attribute (method, path, parameters, body,
//! every status it can answer) and is mounted with `utoipa_axum::routes!`, which adds
//! the route to the axum router and the operation to the document in one step. So a
//! route cannot be served without being documented: [`router`] is the only way
//! `http::router` gets its routes, and a test (`tests/api/openapi.rs`) probes every
//! documented operation over HTTP and checks the list against the spec's endpoints.
//! Response schemas come from the typed views (`views.rs`, `error.rs`) that produce the
//! bodies; request-body schemas are described next to each resource's `Schema` impl
//! and checked against its list of properties below.
//!
//! The document is served at [`OPENAPI_PATH`]. No UI is bundled.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response as DocResponse, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem, Ref};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{AppState, api_keys, audit, groups, health, token, users};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The two prefixes the security API is mounted under (spec §1).
pub const PREFIXES: [&str; 2] = ["/api/security", "/api/management/security"];

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gatehouse",
        description = "Users, groups and API keys: the Contensis Security API. Every \
            security endpoint answers under both `/api/security` and \
            `/api/management/security`; a trailing slash is accepted everywhere. JSON \
            property names in request bodies and query parameter names are matched \
            case-insensitively; the document lists their canonical spelling.",
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody)),
    tags(
        (name = "users", description = "Users, their groups and credentials (spec §4)."),
        (name = "groups", description = "Groups, members and child groups (spec §5)."),
        (name = "apiKeys", description = "API keys; administrators only (spec §6)."),
        (name = "audit", description = "The audit trail and webhooks; administrators only (docs/audit.md)."),
        (name = "authentication", description = "Tokens, discovery and keys (spec §2)."),
        (name = "operations", description = "Health, readiness and this document."),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /authenticate/connect/token`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route with its documentation, before state and layers are added.
pub fn router() -> OpenApiRouter<AppState> {
    let security = OpenApiRouter::new()
        .merge(users::router())
        .merge(groups::router())
        .merge(api_keys::router())
        .merge(audit::router());
    let [current, management] = PREFIXES;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(current, security.clone())
        .nest(management, security)
        .merge(token::router())
        .merge(health::router())
        .routes(routes!(openapi_json))
}

/// The document, with the operation ids under the older prefix made unique.
pub fn document() -> Document {
    finish(router().into_openapi())
}

/// Operation ids must be unique: the copies under `/api/management/security` get a
/// `management_` prefix (`listUsers` there is `management_listUsers`). Every operation
/// under `/api/` can answer 415 (`content_type::require_json`, a middleware rather than
/// a handler, so it is declared here once).
fn finish(mut doc: Document) -> Document {
    let management = format!("{}/", PREFIXES[1]);
    for (path, item) in &mut doc.paths.paths {
        let renamed = path.starts_with(&management);
        let api = path.starts_with("/api/");
        for op in operations_mut(item) {
            if renamed && let Some(id) = &mut op.operation_id {
                *id = format!("management_{id}");
            }
            if api {
                op.responses
                    .responses
                    .insert("415".to_owned(), unsupported_media_type().into());
            }
        }
    }
    doc
}

/// The 415 of every API operation.
fn unsupported_media_type() -> DocResponse {
    ResponseBuilder::new()
        .description(
            "The request has a body that is not labelled `application/json` (or an \
             `application/…+json` type). Requests without a body may carry any label.",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// The operations of a path item.
pub fn operations_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

static DOCUMENT_JSON: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&document()).expect("the OpenAPI document serializes"));

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = Object)),
)]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

// Doc-only types: parameter lists and error responses shared by several handlers. They
// are never built; the extractors in `extract.rs` read what they describe.

/// Paging of every list (spec §1).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
pub struct PageParams {
    /// Zero-based page index (default 0).
    #[param(format = Int64, maximum = 4_294_967_295_u32)]
    page_index: Option<u32>,
    /// Items per page, 1 to 1000 (default 25).
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
}

/// Filtering and ordering of a user or group list (spec §7).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
pub struct ListParams {
    /// Case-insensitive contains over username, email, firstName and lastName (users)
    /// or the name (groups); at most 255 characters.
    #[param(max_length = 255)]
    q: Option<String>,
    /// A ZenQL filter, e.g. `lastName = Durden and created > now(-7)`. Also `zenQL`.
    zenql: Option<String>,
    /// Comma-separated fields, `-` for descending: `lastName,-created`; at most 16.
    order: Option<String>,
}

/// Inherited membership (spec §5).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
pub struct InheritanceParams {
    /// Also follow child groups.
    include_inherited: Option<bool>,
    /// Comma-separated group ids or names: leave out what is reached only through them.
    excluded_groups: Option<String>,
}

/// `includeSelf` of `GET /groups/{group}/groups`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
pub struct IncludeSelfParam {
    /// Include the group itself in the list.
    include_self: Option<bool>,
}

/// A user identifier in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
pub struct UserPath {
    /// A user id, username or email, or `@current` for the caller.
    #[param(min_length = 1)]
    user: String,
}

/// A group identifier in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
pub struct GroupPath {
    /// A group id or name (URL-encoded).
    #[param(min_length = 1)]
    group: String,
}

/// A group and a user in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
pub struct GroupUserPath {
    /// A group id or name (URL-encoded).
    #[param(min_length = 1)]
    group: String,
    /// A user id, username or email, or `@current`.
    #[param(min_length = 1)]
    user: String,
}

/// A group and a child group in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
pub struct GroupChildPath {
    /// The parent group's id or name.
    #[param(min_length = 1)]
    group: String,
    /// The child group's id or name.
    #[param(min_length = 1)]
    child: String,
}

/// 400 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "Malformed JSON, wrong types, bad query parameters or identifiers."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct BadRequest(ErrorBody);

/// 401 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "Missing, invalid or expired token; `WWW-Authenticate: Bearer`."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct Unauthorized(ErrorBody);

/// 403 in the error envelope.
#[derive(IntoResponses)]
#[response(status = 403, description = "Authenticated but not allowed.")]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct Forbidden(ErrorBody);

/// 404 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "Not found; `data` names what was missing."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct NotFound(ErrorBody);

/// 409 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "Conflict: a duplicate name, a cycle, a wrong existing password, not a \
        member, or the last System Administrator."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct Conflict(ErrorBody);

/// 413 in the error envelope.
#[derive(IntoResponses)]
#[response(status = 413, description = "The request body is larger than 1 MiB.")]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct PayloadTooLarge(ErrorBody);

/// 422 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "Validation failed; `data.field` names the field."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct Unprocessable(ErrorBody);

/// 429 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "Too many password attempts from this address or for this account; `Retry-After` gives the seconds to wait."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct TooManyRequests(ErrorBody);

/// 503 in the error envelope.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Every password-hashing thread is busy; `Retry-After` gives the seconds to wait."
)]
#[expect(dead_code, reason = "documents a response; `ApiError` builds it")]
pub struct Busy(ErrorBody);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::http::extract::Field;

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn is_openapi_3_1_and_every_reference_resolves() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn operation_ids_are_unique_and_both_prefixes_are_listed() {
        let doc = doc();
        let mut ids = BTreeSet::new();
        let paths = doc["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}"));
                assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            }
            if let Some(rest) = path.strip_prefix(PREFIXES[0]) {
                assert!(
                    paths.contains_key(&format!("{}{rest}", PREFIXES[1])),
                    "{path}"
                );
            }
            if let Some(rest) = path.strip_prefix(PREFIXES[1]) {
                assert!(
                    paths.contains_key(&format!("{}{rest}", PREFIXES[0])),
                    "{path}"
                );
            }
        }
    }

    /// Routes reach the router only through `routes!`, which documents them: a plain
    /// axum `.route(...)` (or a nested service) anywhere in `src/` would be served
    /// without a place in the document. The one other table is SCIM's
    /// (`http/scim/mod.rs`, everything under `/scim/v2`), which SCIM clients read from
    /// its own discovery endpoints, not from this document; and the console's static
    /// files (`http/console.rs`, GET under `/admin` only), a client of the API.
    #[test]
    fn no_route_bypasses_the_table() {
        fn scan(dir: &std::path::Path, hits: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.ends_with("http/scim/mod.rs") || path.ends_with("http/console.rs") {
                    continue;
                }
                if path.is_dir() {
                    scan(&path, hits);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let banned = [".route(", ".route_service(", ".nest_service("];
                        let code = line.split("//").next().unwrap_or_default();
                        if banned.iter().any(|b| code.contains(b)) && !code.contains("banned") {
                            hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut hits = Vec::new();
        scan(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut hits,
        );
        assert!(hits.is_empty(), "routes outside `routes!`: {hits:#?}");
    }

    fn names(fields: &[Field]) -> BTreeSet<String> {
        fields.iter().map(|f| f.name.to_owned()).collect()
    }

    fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has properties"))
            .keys()
            .cloned()
            .collect()
    }

    /// The documented request bodies name exactly the properties `AppJson` reads: the
    /// document is generated from the structs that parse the bodies, and this checks
    /// that their `ToSchema` and `Deserialize` derives agree on every name (`rename`,
    /// `rename_all`), nested objects included.
    #[test]
    fn request_body_schemas_match_what_is_read() {
        use super::super::api_keys::ApiKeyBody;
        use super::super::fields::of;
        use super::super::groups::GroupBody;
        use super::super::users::{ActionBody, PasswordBody, UserBody};
        let doc = doc();
        let cases = [
            ("UserInput", of::<UserBody>()),
            ("PasswordInput", of::<PasswordBody>()),
            ("ActionInput", of::<ActionBody>()),
            ("SearchInput", of::<users::SearchInput>()),
            ("GroupInput", of::<GroupBody>()),
            ("ApiKeyInput", of::<ApiKeyBody>()),
        ];
        for (schema, fields) in cases {
            assert_eq!(properties(&doc, schema), names(&fields), "{schema}");
            for f in fields.iter().filter(|f| !f.nested.is_empty()) {
                let nested = &doc["components"]["schemas"][schema]["properties"][f.name];
                let mut found = Vec::new();
                refs(nested, &mut found);
                let target = found
                    .first()
                    .and_then(|r| r.rsplit('/').next())
                    .unwrap_or_else(|| panic!("{schema}.{} is a reference", f.name));
                assert_eq!(
                    properties(&doc, target),
                    names(&f.nested),
                    "{schema}.{}",
                    f.name
                );
            }
        }
    }
}
