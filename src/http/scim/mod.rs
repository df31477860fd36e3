//! SCIM 2.0 (RFC 7643, RFC 7644) at `/scim/v2`: a second front door onto the same users
//! and groups as the Contensis API, for identity providers (Entra ID, Okta) that
//! provision them.
//!
//! Role: read SCIM requests, map SCIM attributes onto gatehouse's users and groups, call
//! the service (`Services::provisioner` and its `provision_*` operations, or the ordinary
//! reads), and answer in SCIM's shapes (`application/scim+json`, SCIM error bodies).
//! Lists are `ListRequest`s with the filter parsed by `query::scim_filter` into the
//! shared AST: no second query engine.
//!
//! It must not name the store, and has its own route table: SCIM describes itself
//! (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`), so these routes are not in
//! the Contensis OpenAPI document (`http/openapi.rs`), which schemathesis fuzzes.
//!
//! Content type: a request body must be labelled `application/scim+json` or
//! `application/json` (any `application/…+json`), else 415 as a SCIM error; responses
//! are `application/scim+json`. (`http/content_type.rs` covers `/api/` only; this is
//! SCIM's own rule, in [`ScimBody`].)

pub mod bulk;
pub mod error;
pub mod groups;
pub mod list;
pub mod patch;
pub mod schema;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::Digest as _;

use super::AppState;
use crate::service::provisioning::Provisioner;
use error::{SCIM_JSON, ScimError};

/// Where SCIM is mounted.
pub const PREFIX: &str = "/scim/v2";

/// The most operations one bulk request may hold.
pub const MAX_OPERATIONS: usize = 1000;

/// The largest request body, bulk included (the server's limit for every request).
pub const MAX_PAYLOAD: usize = super::MAX_BODY_BYTES;

/// The largest page a list answers (`count` above it is lowered to it).
pub const MAX_RESULTS: u32 = 1000;

/// The SCIM routes, nested under [`PREFIX`], with SCIM's own 404 and 405.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes",
            get(resource_types).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes/{id}",
            get(resource_type).fallback(method_not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route(
            "/Schemas/{id}",
            get(schema_by_id).fallback(method_not_allowed),
        )
        .route(
            "/Users",
            get(users::list_handler)
                .post(users::create_handler)
                .fallback(method_not_allowed),
        )
        .route(
            "/Users/.search",
            post(users::search_handler).fallback(method_not_allowed),
        )
        .route(
            "/Users/{id}",
            get(users::get_handler)
                .put(users::replace_handler)
                .patch(users::patch_handler)
                .delete(users::delete_handler)
                .fallback(method_not_allowed),
        )
        .route(
            "/Me",
            get(users::me_handler)
                .put(users::me_handler)
                .patch(users::me_handler)
                .delete(users::me_handler)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups",
            get(groups::list_handler)
                .post(groups::create_handler)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups/.search",
            post(groups::search_handler).fallback(method_not_allowed),
        )
        .route(
            "/Groups/{id}",
            get(groups::get_handler)
                .put(groups::replace_handler)
                .patch(groups::patch_handler)
                .delete(groups::delete_handler)
                .fallback(method_not_allowed),
        )
        .route(
            "/.search",
            post(list::root_search_handler).fallback(method_not_allowed),
        )
        .route("/Bulk", post(bulk::handler).fallback(method_not_allowed))
        .fallback(not_found);
    Router::new().nest(PREFIX, routes)
}

async fn not_found() -> ScimError {
    ScimError::not_found("No such SCIM endpoint.")
}

async fn method_not_allowed() -> ScimError {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "This endpoint does not answer that method.",
    )
}

/// What every authenticated SCIM operation needs: the services, the provisioner and the
/// base URL resources are located under.
pub struct Ctx {
    /// The services.
    pub state: AppState,
    /// The authenticated provisioner.
    pub p: Provisioner,
    /// `<public URL>/scim/v2`.
    pub base: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ScimError;

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
            .ok_or_else(|| ScimError::from(crate::service::Error::Unauthenticated))?;
        let caller = state.authenticate(token).await?;
        let p = state.provisioner(&caller).await?;
        Ok(Self {
            state: state.clone(),
            p,
            base: base_url(state),
        })
    }
}

/// `<public URL>/scim/v2`.
pub fn base_url(state: &AppState) -> String {
    format!("{}{PREFIX}", state.settings().public_base)
}

/// A JSON request body, labelled as JSON (SCIM's media type or any other JSON type).
#[derive(Debug)]
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !super::content_type::is_json(req.headers()) {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "Send the body as application/scim+json (or application/json).",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    format!("The request body is larger than {MAX_PAYLOAD} bytes."),
                )
            } else {
                ScimError::invalid_syntax("The request body could not be read.")
            }
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a body as JSON, or 400 `invalidSyntax` saying where it broke (never quoting
/// the body, which may hold a password).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ScimError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "A JSON request body is required.",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ScimError::invalid_syntax(format!(
            "The request body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })
}

/// A SCIM answer: status, body, and the `ETag` and `Location` headers.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body, if any.
    pub body: Option<Value>,
    /// `meta.version`, sent as `ETag`.
    pub etag: Option<String>,
    /// `meta.location`, sent as `Location` on creation.
    pub location: Option<String>,
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            etag: None,
            location: None,
        }
    }

    /// A resource: its `meta.version` becomes the `ETag`.
    pub fn resource(status: StatusCode, body: Value) -> Self {
        let etag = body["meta"]["version"].as_str().map(str::to_owned);
        let location = (status == StatusCode::CREATED)
            .then(|| body["meta"]["location"].as_str().map(str::to_owned))
            .flatten();
        Self {
            status,
            body: Some(body),
            etag,
            location,
        }
    }

    /// 204.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            etag: None,
            location: None,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (
                self.status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
                body.to_string(),
            )
                .into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        for (name, value) in [(header::ETAG, self.etag), (header::LOCATION, self.location)] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// The version of a representation: a weak ETag over its content (without `meta`), so
/// any change a client could see changes it, memberships included.
pub fn version_of(representation: &Value) -> String {
    let mut copy = representation.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("meta");
    }
    let digest = sha2::Sha256::digest(copy.to_string().as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Sets `meta.version` from the representation's content.
pub fn stamp_version(representation: &mut Value) {
    let version = version_of(representation);
    representation["meta"]["version"] = json!(version);
}

/// Refuses a change whose `If-Match` names another version: 412.
pub fn check_if_match(headers: &HeaderMap, current: &Value) -> Result<(), ScimError> {
    let Some(wanted) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or_default();
    let version = current["meta"]["version"].as_str().unwrap_or_default();
    let strip = |v: &str| v.trim().trim_start_matches("W/").to_owned();
    let ok = wanted
        .split(',')
        .any(|w| w.trim() == "*" || strip(w) == strip(version));
    if ok {
        Ok(())
    } else {
        Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "The resource has changed since that version (If-Match).",
        ))
    }
}

/// Whether `If-None-Match` names the current version (then a GET answers 304).
pub fn not_modified(headers: &HeaderMap, current: &Value) -> bool {
    let Some(wanted) = headers.get(header::IF_NONE_MATCH) else {
        return false;
    };
    let wanted = wanted.to_str().unwrap_or_default();
    let version = current["meta"]["version"].as_str().unwrap_or_default();
    let strip = |v: &str| v.trim().trim_start_matches("W/").to_owned();
    wanted
        .split(',')
        .any(|w| w.trim() == "*" || strip(w) == strip(version))
}

/// RFC 3339 with milliseconds, as the rest of the API shows times.
pub fn time(ms: i64) -> String {
    crate::clock::format_rfc3339(ms)
}

// ---------------------------------------------------------------------------------------
// Discovery (RFC 7644 §4): served without a token, they describe nothing private.

async fn service_provider_config(State(state): State<AppState>) -> Reply {
    let base = base_url(&state);
    Reply::ok(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": MAX_OPERATIONS,
            "maxPayloadSize": MAX_PAYLOAD,
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token from the token endpoint, e.g. an API key's \
                client-credentials grant; its user must be a System Administrator or in \
                the provisioning group.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    }))
}

fn resource_type_json(name: &str, base: &str) -> Option<Value> {
    let (endpoint, schema, extensions) = match name {
        "User" => (
            "/Users",
            schema::USER,
            vec![json!({"schema": schema::ENTERPRISE, "required": false})],
        ),
        "Group" => ("/Groups", schema::GROUP, vec![]),
        _ => return None,
    };
    Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": if name == "User" { "User Account" } else { "Group" },
        "schema": schema,
        "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
    }))
}

fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

async fn resource_types(State(state): State<AppState>) -> Reply {
    let base = base_url(&state);
    let items = ["User", "Group"]
        .iter()
        .filter_map(|n| resource_type_json(n, &base))
        .collect();
    Reply::ok(list_of(items))
}

async fn resource_type(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Reply, ScimError> {
    resource_type_json(&id, &base_url(&state))
        .map(Reply::ok)
        .ok_or_else(|| ScimError::not_found(format!("No resource type '{id}'.")))
}

async fn schemas(State(state): State<AppState>) -> Reply {
    let base = base_url(&state);
    Reply::ok(list_of(
        schema::SCHEMAS
            .iter()
            .map(|s| schema::describe(s, &base))
            .collect(),
    ))
}

async fn schema_by_id(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Reply, ScimError> {
    schema::SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .map(|s| Reply::ok(schema::describe(s, &base_url(&state))))
        .ok_or_else(|| ScimError::not_found(format!("No schema '{id}'.")))
}
