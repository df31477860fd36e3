//! `GET /metrics` (Prometheus/OpenMetrics text) on the management listener
//! (`--metrics-listen`), and the middleware that counts and times every request of the
//! public listener by its matched route template.
//!
//! The metrics are not part of the public API: the public listener answers `/metrics`
//! with its 404 (spec §3), and the OpenAPI document, which describes the public
//! listener, does not list it.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;

/// The management listener's router: `GET /metrics` and a 404 in the error envelope for
/// anything else. Wrap it like the public router ([`super::router`]) to accept a
/// trailing slash.
pub fn router(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::new()
        .routes(routes!(metrics))
        .split_for_parts();
    routes
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "No such endpoint.") })
        .with_state(state)
}

/// Prometheus metrics: requests by route template and status, logins, lockouts, pools.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Metrics in the Prometheus/OpenMetrics text format.", content_type = "application/openmetrics-text", body = String),
    ),
)]
async fn metrics(State(s): State<AppState>) -> Response {
    let mut response = s.render_metrics().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

/// Counts and times a request under its route template (`/api/security/users/{user}`),
/// or `unmatched` when no route matched: raw paths would make a series per id.
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    s.metrics().request(
        method.as_str(),
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
