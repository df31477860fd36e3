//! The HTTP front end: routes, extractors, error envelope and middleware.
//!
//! Handlers are thin: extract, call one service function, shape the response. No SQL
//! and no business rules here. The security API is mounted under both `/api/security`
//! and `/api/management/security` (spec §1).

pub mod api_keys;
pub mod error;
pub mod extract;
pub mod groups;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod token;
pub mod users;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::service::Services;
use error::ApiError;

/// What every handler receives.
pub type AppState = Arc<Services>;

/// The largest request body accepted (spec §1).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The header carrying the request id, set on the request and echoed on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole router. Wrap it with [`tower_http::normalize_path`] before serving
/// (see `app.rs`) so trailing slashes are accepted. The routes come from the table in
/// [`openapi::router`], which also builds the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (routes, _) = openapi::router().split_for_parts();
    routes
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "No such endpoint.") })
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn_with_state(state, metrics::track))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
}

/// Request ids: random (version 4) UUIDs drawn from the thread's generator (ChaCha,
/// seeded by the operating system). tower-http's `MakeRequestUuid` asks the kernel for
/// each one: a `getrandom` system call on every request, 5% of the CPU a `/health`
/// request costs.
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}
