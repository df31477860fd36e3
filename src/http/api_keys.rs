//! `/apiKeys` (spec §6): administrators only. The secret appears in the create
//! response and nowhere else.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AppJson, Auth, Params, Segments};
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, Unauthorized,
    Unprocessable,
};
use super::views::{PageView, stamp};
use super::{AppState, views};
use crate::domain::api_key::ApiKey;
use crate::service::Patch;
use crate::service::api_keys::ApiKeyInput;

/// The body of an API key create or update: what is read is what is documented.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKeyInput)]
pub struct ApiKeyBody {
    /// Required on create; unique case-insensitively.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub name: Patch<String>,
    /// Optional.
    #[schema(value_type = Option<String>, max_length = 2000)]
    #[serde(default)]
    pub description: Patch<String>,
    /// Defaults to true on create; a disabled key's tokens stop working.
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub enabled: Patch<bool>,
}

impl From<ApiKeyBody> for ApiKeyInput {
    fn from(b: ApiKeyBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            enabled: b.enabled,
        }
    }
}

/// An API key id in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
struct KeyPath {
    /// The key's id.
    #[param(min_length = 1)]
    id: String,
}

/// The `/apiKeys` routes, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
}

/// An API key as sent (spec §6).
// Fields are in the byte order of their names, as `json!` used to emit them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    /// The public half of the credentials (`client_id`); also the key user's username.
    pub client_id: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created: String,
    /// The administrator who created it, or `null` for the CLI.
    #[schema(format = "uuid")]
    pub created_by: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// A disabled key cannot get tokens, and its tokens stop working.
    pub enabled: bool,
    /// The key's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// Who changed it last.
    #[schema(format = "uuid")]
    pub modified_by: Option<String>,
    /// Unique case-insensitively.
    pub name: String,
    /// The id of the user the key acts as.
    #[schema(format = "uuid")]
    pub user_id: String,
}

/// A new API key with its secret, which is shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKeyCreated)]
pub struct ApiKeyCreatedView {
    /// The public half of the credentials (`client_id`).
    pub client_id: String,
    /// The secret (`client_secret`); stored hashed and never shown again.
    pub client_secret: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created: String,
    /// The administrator who created it.
    #[schema(format = "uuid")]
    pub created_by: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// Whether the key may get tokens.
    pub enabled: bool,
    /// The key's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// Who changed it last.
    #[schema(format = "uuid")]
    pub modified_by: Option<String>,
    /// Unique case-insensitively.
    pub name: String,
    /// The id of the user the key acts as.
    #[schema(format = "uuid")]
    pub user_id: String,
}

fn view(k: &ApiKey) -> ApiKeyView {
    ApiKeyView {
        client_id: k.client_id.clone(),
        created: stamp(k.created),
        created_by: k.created_by.map(|u| u.to_string()),
        description: k.description.clone(),
        enabled: k.enabled,
        id: k.id.to_string(),
        modified: stamp(k.modified),
        modified_by: k.modified_by.map(|u| u.to_string()),
        name: k.name.clone(),
        user_id: k.user_id.to_string(),
    }
}

/// List API keys.
#[utoipa::path(
    get,
    path = "/apiKeys",
    tag = "apiKeys",
    operation_id = "listApiKeys",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of API keys.", body = PageView<ApiKeyView>),
        BadRequest, Unauthorized, Forbidden,
    ),
)]
async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let page_req = params.page()?;
    let page = s.list_api_keys(&caller, page_req).await?;
    Ok(Json(views::page(&page, page_req, view)).into_response())
}

/// Create an API key; the response is the only place its secret appears.
#[utoipa::path(
    post,
    path = "/apiKeys",
    tag = "apiKeys",
    operation_id = "createApiKey",
    request_body = ApiKeyBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new key with its secret.", body = ApiKeyCreatedView),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<ApiKeyBody>,
) -> Result<Response, ApiError> {
    let created = s.create_api_key(&caller, input.into()).await?;
    let ApiKeyView {
        client_id,
        created: created_at,
        created_by,
        description,
        enabled,
        id,
        modified,
        modified_by,
        name,
        user_id,
    } = view(&created.key);
    let body = ApiKeyCreatedView {
        client_id,
        client_secret: created.secret,
        created: created_at,
        created_by,
        description,
        enabled,
        id,
        modified,
        modified_by,
        name,
        user_id,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Get an API key (without its secret).
#[utoipa::path(
    get,
    path = "/apiKeys/{id}",
    tag = "apiKeys",
    operation_id = "getApiKey",
    params(KeyPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key.", body = ApiKeyView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    Ok(Json(view(&s.get_api_key(&caller, &id).await?)).into_response())
}

/// Update the name, description or enabled flag.
#[utoipa::path(
    put,
    path = "/apiKeys/{id}",
    tag = "apiKeys",
    operation_id = "updateApiKey",
    params(KeyPath),
    request_body = ApiKeyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated key.", body = ApiKeyView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
    AppJson(input): AppJson<ApiKeyBody>,
) -> Result<Response, ApiError> {
    Ok(Json(view(&s.update_api_key(&caller, &id, input.into()).await?)).into_response())
}

/// Delete an API key and its user; its tokens stop working.
#[utoipa::path(
    delete,
    path = "/apiKeys/{id}",
    tag = "apiKeys",
    operation_id = "deleteApiKey",
    params(KeyPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_api_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ApiKeyId, UserId};

    /// The typed views emit the same bytes as the `json!` they replaced (sorted keys).
    #[test]
    fn views_serialize_with_sorted_keys() {
        let key = ApiKey {
            id: ApiKeyId::new(),
            name: "ci".into(),
            description: None,
            enabled: true,
            client_id: "abc".into(),
            secret_hash: "00".into(),
            user_id: UserId::new(),
            created: 1,
            created_by: Some(UserId::new()),
            modified: 2,
            modified_by: None,
        };
        let v = view(&key);
        let direct = serde_json::to_string(&v).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(&v).unwrap()).unwrap();
        assert_eq!(direct, sorted);
    }
}
