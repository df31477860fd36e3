//! `/audit` and `/webhooks` (docs/audit.md): System Administrators only. A webhook's
//! secret appears in the create response and nowhere else.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AppJson, Auth, Params, Segments};
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, Unauthorized,
    Unprocessable,
};
use super::users::list_query;
use super::views::{PageView, stamp};
use super::{AppState, views};
use crate::clock::parse_rfc3339;
use crate::domain::audit::{Delivery, Record, Webhook};
use crate::query::ast::AUDIT;
use crate::service::Patch;
use crate::service::audit::AuditRequest;
use crate::service::webhooks::WebhookInput;

/// The `/audit` and `/webhooks` routes, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(list_hooks, create_hook))
        .routes(routes!(read_hook, update_hook, remove_hook))
        .routes(routes!(hook_deliveries))
}

/// The filters of the audit list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
struct AuditParams {
    /// Comma-separated event types, e.g. `group.memberAdded,user.suspended`.
    #[param(max_length = 2000)]
    r#type: Option<String>,
    /// The acting user: id, username or email (a deleted user: id or name).
    actor: Option<String>,
    /// The user or group the events are about: any identifier, or the name it had.
    target: Option<String>,
    /// RFC 3339; events at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; events before it.
    #[param(format = DateTime)]
    until: Option<String>,
    /// A ZenQL filter over the event's fields (`type`, `at`, `actorName`, `userName`,
    /// `groupName`, ...).
    zenql: Option<String>,
    /// Comma-separated fields, `-` for descending; default newest first.
    order: Option<String>,
}

/// Who acted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorView {
    /// `user`, `apiKey`, `cli` or `anonymous`.
    pub r#type: String,
    /// The user (for an API key, its user).
    #[schema(format = "uuid")]
    pub id: Option<String>,
    /// Their username then.
    pub name: Option<String>,
}

/// What the event is about; names as they were then.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// A user.
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
    /// Their username then (or the name tried, for an unknown login).
    pub user_name: Option<String>,
    /// A group.
    #[schema(format = "uuid")]
    pub group_id: Option<String>,
    /// Its name then.
    pub group_name: Option<String>,
    /// An API key id, signing key id or webhook id.
    pub key_id: Option<String>,
    /// Its name then.
    pub key_name: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditEvent)]
pub struct EventView {
    /// The event's id: its position in the log.
    pub id: i64,
    /// The event type, e.g. `group.memberAdded`.
    pub r#type: String,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Who.
    pub actor: ActorView,
    /// About what.
    pub target: TargetView,
    /// Changed fields and non-secret new values.
    #[schema(value_type = Object)]
    pub summary: Map<String, Value>,
    /// The `x-request-id` of the request that made it.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
}

/// The view of a recorded event (also the body of a webhook delivery).
pub fn event_view(r: &Record) -> EventView {
    EventView {
        id: r.seq,
        r#type: r.kind.clone(),
        at: stamp(r.at),
        actor: ActorView {
            r#type: r.actor_type.clone(),
            id: r.actor_id.clone(),
            name: r.actor_name.clone(),
        },
        target: TargetView {
            user_id: r.user_id.clone(),
            user_name: r.user_name.clone(),
            group_id: r.group_id.clone(),
            group_name: r.group_name.clone(),
            key_id: r.key_id.clone(),
            key_name: r.key_name.clone(),
        },
        summary: r.summary.clone(),
        request_id: r.request_id.clone(),
        client_address: r.client_addr.clone(),
    }
}

fn time_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => parse_rfc3339(v.trim()).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Query parameter '{name}' must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z."
            ))
            .with_data(serde_json::json!({ "parameter": name }))
        }),
    }
}

/// List audit events, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    operation_id = "listAuditEvents",
    params(AuditParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events.", body = PageView<EventView>),
        BadRequest, Unauthorized, Forbidden,
    ),
)]
async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let list = list_query(&params, &AUDIT)?;
    let page_req = list.page;
    let types = params
        .get("type")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let bounded = |name: &str| -> Result<Option<String>, ApiError> {
        match params.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().nth(255).is_some() => Err(ApiError::bad_request(format!(
                "Query parameter '{name}' is too long (at most 255 characters)."
            ))),
            v => Ok(v.map(str::to_owned)),
        }
    };
    if params.get("type").is_some_and(|t| t.len() > 2000) {
        return Err(ApiError::bad_request(
            "Query parameter 'type' is too long (at most 2000 characters).",
        ));
    }
    let req = AuditRequest {
        types,
        actor: bounded("actor")?,
        target: bounded("target")?,
        since: time_param(&params, "since")?,
        until: time_param(&params, "until")?,
        list,
    };
    let page = s.list_audit(&caller, &req).await?;
    Ok(Json(views::page(&page, page_req, event_view)).into_response())
}

/// A webhook create or update body.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookInput)]
pub struct WebhookBody {
    /// Where events are POSTed: an absolute `http` or `https` URL. Required on create.
    #[schema(value_type = Option<String>, max_length = 2048)]
    #[serde(default)]
    pub url: Patch<String>,
    /// Event types to receive (`*` for all). Required on create.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub event_types: Patch<Vec<String>>,
    /// Optional.
    #[schema(value_type = Option<String>, max_length = 2000)]
    #[serde(default)]
    pub description: Patch<String>,
    /// Defaults to true; a disabled endpoint is sent nothing and nothing is queued for it.
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub enabled: Patch<bool>,
}

impl From<WebhookBody> for WebhookInput {
    fn from(b: WebhookBody) -> Self {
        Self {
            url: b.url,
            event_types: b.event_types,
            description: b.description,
            enabled: b.enabled,
        }
    }
}

/// A webhook endpoint (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhook)]
pub struct WebhookView {
    /// Its id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// Optional description.
    pub description: Option<String>,
    /// Whether it is sent events.
    pub enabled: bool,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created: String,
    /// The administrator who registered it, or `null` for the CLI.
    #[schema(format = "uuid")]
    pub created_by: Option<String>,
    /// Last change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// The signing secret: only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn hook_view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        event_types: w.event_types.clone(),
        description: w.description.clone(),
        enabled: w.enabled,
        created: stamp(w.created),
        created_by: w.created_by.clone(),
        modified: stamp(w.modified),
        secret: None,
    }
}

/// A queued or failed delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    /// The event delivered.
    pub event_id: i64,
    /// `pending` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was queued.
    #[schema(format = DateTime)]
    pub created: String,
    /// When the next attempt is due.
    #[schema(format = DateTime)]
    pub next_attempt: String,
    /// The last error, e.g. `HTTP 500`, `timed out`.
    pub last_error: Option<String>,
    /// The status the receiver last answered.
    pub last_status: Option<i64>,
}

fn delivery_view(d: &Delivery) -> DeliveryView {
    DeliveryView {
        event_id: d.event_seq,
        state: d.state.clone(),
        attempts: d.attempts,
        created: stamp(d.created),
        next_attempt: stamp(d.next_attempt),
        last_error: d.last_error.clone(),
        last_status: d.last_status,
    }
}

/// A webhook id in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
struct HookPath {
    /// The webhook's id.
    #[param(min_length = 1)]
    id: String,
}

/// Which deliveries to list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
struct DeliveryParams {
    /// `failed` (default) or `pending`.
    state: Option<String>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// List webhook endpoints.
#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "audit",
    operation_id = "listWebhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every endpoint.", body = Vec<WebhookView>),
        Unauthorized, Forbidden,
    ),
)]
async fn list_hooks(State(s): State<AppState>, Auth(caller): Auth) -> Result<Response, ApiError> {
    let hooks = s.list_webhooks(&caller).await?;
    Ok(Json(hooks.iter().map(hook_view).collect::<Vec<_>>()).into_response())
}

/// Register a webhook endpoint; the response is the only place its secret appears.
#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "audit",
    operation_id = "createWebhook",
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The endpoint with its secret.", body = WebhookView),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn create_hook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<WebhookBody>,
) -> Result<Response, ApiError> {
    let created = s.create_webhook(&caller, input.into()).await?;
    let mut body = hook_view(&created.webhook);
    body.secret = Some(created.secret);
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Get a webhook endpoint.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "audit",
    operation_id = "getWebhook",
    params(HookPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint.", body = WebhookView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn read_hook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    Ok(Json(hook_view(&s.get_webhook(&caller, &id).await?)).into_response())
}

/// Change a webhook's URL, event types, description or enabled flag.
#[utoipa::path(
    put,
    path = "/webhooks/{id}",
    tag = "audit",
    operation_id = "updateWebhook",
    params(HookPath),
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint.", body = WebhookView),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Unprocessable,
    ),
)]
async fn update_hook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
    AppJson(input): AppJson<WebhookBody>,
) -> Result<Response, ApiError> {
    let hook = s.update_webhook(&caller, &id, input.into()).await?;
    Ok(Json(hook_view(&hook)).into_response())
}

/// Remove a webhook endpoint and everything queued for it.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "audit",
    operation_id = "deleteWebhook",
    params(HookPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed."),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn remove_hook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_webhook(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's failed deliveries (newest first) or its queue (oldest first).
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "audit",
    operation_id = "listWebhookDeliveries",
    params(HookPath, DeliveryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deliveries.", body = Vec<DeliveryView>),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn hook_deliveries(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let state = params.get("state").unwrap_or("failed");
    let limit = match params.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "Query parameter 'limit' must be a whole number from 1 to 1000.",
                )
            })?,
    };
    let list = s.webhook_deliveries(&caller, &id, state, limit).await?;
    Ok(Json(list.iter().map(delivery_view).collect::<Vec<_>>()).into_response())
}
