//! `/apiKeys` (spec §6): administrators only. The secret appears in the create
//! response and nowhere else.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{AppJson, Auth, Field, Params, Schema, Segments, leaf};
use super::{AppState, views};
use crate::domain::api_key::ApiKey;
use crate::service::api_keys::ApiKeyInput;

impl Schema for ApiKeyInput {
    const FIELDS: &'static [Field] = &[leaf("name"), leaf("description"), leaf("enabled")];
}

/// The `/apiKeys` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apiKeys", get(list).post(create))
        .route("/apiKeys/{id}", get(read).put(update).delete(remove))
}

fn view(k: &ApiKey) -> Value {
    json!({
        "id": k.id.to_string(),
        "name": k.name,
        "description": k.description,
        "enabled": k.enabled,
        "clientId": k.client_id,
        "userId": k.user_id.to_string(),
        "created": views::time(Some(k.created)),
        "createdBy": k.created_by.map(|u| u.to_string()),
        "modified": views::time(Some(k.modified)),
        "modifiedBy": k.modified_by.map(|u| u.to_string()),
    })
}

async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let page_req = params.page()?;
    let page = s.list_api_keys(&caller, page_req).await?;
    Ok(Json(views::page(&page, page_req, view)).into_response())
}

async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<ApiKeyInput>,
) -> Result<Response, ApiError> {
    let created = s.create_api_key(&caller, input).await?;
    let mut body = view(&created.key);
    body["clientSecret"] = Value::String(created.secret);
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<Response, ApiError> {
    Ok(Json(view(&s.get_api_key(&caller, &id).await?)).into_response())
}

async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
    AppJson(input): AppJson<ApiKeyInput>,
) -> Result<Response, ApiError> {
    Ok(Json(view(&s.update_api_key(&caller, &id, input).await?)).into_response())
}

async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(id): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_api_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
