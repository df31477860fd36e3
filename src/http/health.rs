//! `/health` (the process is up) and `/ready` (the database answers). No authentication.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ErrorBody};

/// The health routes, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// The body of `/health` and `/ready`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusView {
    /// `ok` (health) or `ready` (readiness).
    #[schema(value_type = String, pattern = "^(ok|ready)$")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    responses((status = 200, description = "Up.", body = StatusView)),
)]
async fn health() -> Response {
    Json(StatusView { status: "ok" }).into_response()
}

/// The database answers.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    operation_id = "ready",
    responses(
        (status = 200, description = "Ready.", body = StatusView),
        (status = 503, description = "The database is not reachable.", body = ErrorBody),
    ),
)]
async fn ready(State(s): State<AppState>) -> Result<Response, ApiError> {
    s.ready().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "The database is not reachable.",
        )
    })?;
    Ok(Json(StatusView { status: "ready" }).into_response())
}
