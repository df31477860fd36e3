//! `/health` (the process is up) and `/ready` (the database answers). No authentication.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use super::error::ApiError;

/// The health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn ready(State(s): State<AppState>) -> Result<Response, ApiError> {
    s.ready().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "The database is not reachable.",
        )
    })?;
    Ok(Json(json!({"status": "ready"})).into_response())
}
