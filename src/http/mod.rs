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

use std::future::Future as _;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::service::Services;
use error::ApiError;

/// What every handler receives.
pub type AppState = Arc<Services>;

/// The largest request body accepted (spec §1).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a request may run before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
        .layer(axum::middleware::from_fn_with_state(REQUEST_TIMEOUT, deadline))
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

/// Answers 503, in the error envelope, for a request still running after `limit`.
///
/// The clock starts only when the handler does not finish on its first poll. Most
/// requests (lookups, membership checks, the health probe) do, and so never touch the
/// runtime's timers. (tower-http's `TimeoutLayer` polls its timer before the handler, registering
/// one for every request and often waking the timer driver with a system call; it also
/// answers with an empty body.)
async fn deadline(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let mut handler = std::pin::pin!(next.run(req));
    if let Poll::Ready(response) =
        std::future::poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await
    {
        return response;
    }
    match tokio::time::timeout(limit, handler).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The request took longer than {} s.", limit.as_secs_f64()),
        )
        .into_response(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn status_and_body(app: Router) -> (StatusCode, serde_json::Value) {
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// A router whose every answer takes `wait` (none: at once), behind a 200 ms deadline.
    /// (A fallback rather than a route: routes belong in the documented table.)
    fn answering_after(wait: Option<Duration>) -> Router {
        Router::new()
            .fallback(move || async move {
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                "done"
            })
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(200),
                deadline,
            ))
    }

    /// A handler that finishes at once, one that waits but finishes in time, and one that
    /// runs past the limit, which is answered 503 in the error envelope.
    #[tokio::test]
    async fn the_deadline_answers_503_only_past_the_limit() {
        let now = status_and_body(answering_after(None)).await;
        assert_eq!(now.0, StatusCode::OK);
        let soon = status_and_body(answering_after(Some(Duration::from_millis(20)))).await;
        assert_eq!(soon.0, StatusCode::OK);
        let started = std::time::Instant::now();
        let (status, body) = status_and_body(answering_after(Some(Duration::from_secs(5)))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("longer than")),
            "{body}"
        );
        assert!(body["logId"].is_string(), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
