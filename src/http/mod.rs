//! The HTTP front end: routes, extractors, error envelope and middleware.
//!
//! Handlers are thin: extract, call one service function, shape the response. No SQL
//! and no business rules here. The security API is mounted under both `/api/security`
//! and `/api/management/security` (spec §1).

pub mod api_keys;
pub mod audit;
pub mod console;
pub mod content_type;
pub mod error;
pub mod extract;
pub mod fields;
pub mod groups;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod scim;
pub mod token;
pub mod users;
pub mod views;

use std::future::Future as _;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
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
/// [`openapi::router`], which also builds the OpenAPI document, and from SCIM's own
/// table ([`scim::router`], under `/scim/v2`, which describes itself in SCIM's terms),
/// and the admin console's static files ([`console::router`], under `/admin`: the API's
/// web client, not part of the API).
pub fn router(state: AppState) -> Router {
    let (routes, _) = openapi::router().split_for_parts();
    let detach_reads = !state.reads_are_cancel_safe();
    let detach_checks = !state.checks_are_cancel_safe();
    routes
        .merge(scim::router())
        .merge(console::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "No such endpoint.") })
        .with_state(state.clone())
        // Innermost: inside the task `deadline` spawns for writes, so the origin is set
        // where the service records events.
        .layer(axum::middleware::from_fn_with_state(state.clone(), origin))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(content_type::require_json))
        .layer(axum::middleware::from_fn_with_state(
            Deadline::new(REQUEST_TIMEOUT, detach_reads, MAX_DETACHED)
                .detaching_checks(detach_checks),
            deadline,
        ))
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
        .layer(tower::util::MapRequestLayer::new(
            drop_unusable_request_id::<axum::body::Body>,
        ))
}

/// The longest `x-request-id` kept from a client.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's request id is kept: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
/// characters (0x21–0x7E). The id goes into every log line of the request and back to
/// the client, so it must not carry megabytes, spaces, line breaks or other bytes a log
/// reader could mistake for something else.
pub fn usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Removes a client's `x-request-id` unless it is exactly one usable value
/// ([`usable_request_id`]), so that [`RandomRequestId`] makes a fresh one.
fn drop_unusable_request_id<B>(mut req: Request<B>) -> Request<B> {
    let mut values = req.headers().get_all(REQUEST_ID).iter();
    let usable = match (values.next(), values.next()) {
        (None, _) => return req,
        (Some(id), None) => usable_request_id(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !usable {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// How long a request may run, and which requests run in a task of their own.
#[derive(Debug, Clone)]
struct Deadline {
    limit: Duration,
    /// Whether reads run in a task of their own too ([`deadline`]).
    detach_reads: bool,
    /// Whether membership checks (`HEAD /groups/{group}/users/{user}`) do, when reads
    /// do: not where the store's checks are safe to drop
    /// ([`crate::store::Store::checks_are_cancel_safe`]).
    detach_checks: bool,
    /// Permits for requests running in tasks of their own, held until each task ends
    /// (past its deadline too): work that clients abandoned or that was answered 503 can
    /// fill these, and no more, before new requests are refused at once.
    detached: Arc<tokio::sync::Semaphore>,
}

/// Requests that may run in tasks of their own at once (see [`Deadline::detached`]).
const MAX_DETACHED: usize = 4_096;

impl Deadline {
    fn new(limit: Duration, detach_reads: bool, max_detached: usize) -> Self {
        Self {
            limit,
            detach_reads,
            detach_checks: detach_reads,
            detached: Arc::new(tokio::sync::Semaphore::new(max_detached)),
        }
    }

    /// The same, with membership checks detached or not on their own.
    fn detaching_checks(self, detach_checks: bool) -> Self {
        Self {
            detach_checks,
            ..self
        }
    }

    /// Whether a request runs in place rather than in a task of its own.
    fn in_place(&self, req: &axum::extract::Request) -> bool {
        match *req.method() {
            Method::HEAD if groups::is_member_check(req) => !self.detach_checks,
            Method::GET | Method::HEAD | Method::OPTIONS => !self.detach_reads,
            _ => false,
        }
    }
}

/// Answers 503, in the error envelope, for a request still running after `limit`, and
/// runs every request that may change state to its end.
///
/// A request that may change state (any method but GET, HEAD and OPTIONS) runs in a task
/// of its own, so that nothing but its own end stops it: not a client that disconnects
/// (hyper then drops the request's future), nor this deadline. A handler dropped halfway
/// could leave a change half made, and sqlx's transactions are not safe to drop while
/// they begin: one dropped there left the SQLite writer connection inside a transaction
/// sqlx no longer knew of, and every later write on it failed with "attempted to call
/// begin_with at non-zero transaction depth" (500s) until the server restarted. That is
/// what failed every request of the token case in two load runs: the warm-up ended, and
/// wrk disconnected, with 32 logins (each writing the user's last login) in flight.
/// Reads run in place (a task costs a hand-over between threads: 18% of `/health`'s
/// throughput when every request paid it), unless `detach_reads`: the store's reads use
/// sqlx transactions too ([`crate::store::Store::reads_are_cancel_safe`]). The
/// membership check, the hottest read, runs in place wherever the store's checks are
/// safe to drop ([`crate::store::Store::checks_are_cancel_safe`]): on PostgreSQL too.
///
/// For a read in place, the clock starts only when the handler does not finish on its
/// first poll. Most do (lookups, membership checks, the health probe), and so never
/// touch the runtime's timers. (tower-http's `TimeoutLayer` polls its timer before the
/// handler, registering one for every request and often waking the timer driver with a
/// system call; it also answers with an empty body.)
/// Runs a request that may change state with its origin (request id, client address)
/// set for the audit events it records (`service::with_origin`).
async fn origin(State(s): State<AppState>, req: Request<axum::body::Body>, next: Next) -> Response {
    // Reads record nothing: the membership check and lookups skip the work.
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let origin = crate::domain::audit::Origin {
        request_id: req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        client_addr: token::client_addr(peer, req.headers(), s.settings().trust_forwarded_for)
            .map(|a| a.to_string()),
    };
    crate::service::with_origin(origin, next.run(req)).await
}

async fn deadline(State(d): State<Deadline>, req: axum::extract::Request, next: Next) -> Response {
    let limit = d.limit;
    if d.in_place(&req) {
        let mut handler = std::pin::pin!(next.run(req));
        if let Poll::Ready(response) =
            std::future::poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await
        {
            return response;
        }
        return tokio::time::timeout(limit, handler)
            .await
            .unwrap_or_else(|_| too_late(limit));
    }
    let Ok(permit) = d.detached.try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server has too many requests in progress; retry in a moment.",
        )
        .retry_after(1)
        .into_response();
    };
    // The task keeps the request's span (its request id in every log line), and its
    // permit until it ends.
    let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let response = next.run(req).await;
        drop(permit);
        response
    }));
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The request failed.").into_response()
        }
        Err(_) => too_late(limit), // the task goes on to its end
    }
}

/// The 503 for a request still running after `limit`.
fn too_late(limit: Duration) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("The request took longer than {} s.", limit.as_secs_f64()),
    )
    .into_response()
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
                Deadline::new(Duration::from_millis(200), false, MAX_DETACHED),
                deadline,
            ))
    }

    /// Whether the handler runs in a task of its own, in a header (HEAD answers have no
    /// body).
    fn in_task() -> [(&'static str, String); 1] {
        [("x-in-task", tokio::task::try_id().is_some().to_string())]
    }

    #[utoipa::path(head, path = "/api/security/groups/{group}/users/{user}", responses((status = 200)))]
    async fn check_head() -> [(&'static str, String); 1] {
        in_task()
    }

    #[utoipa::path(put, path = "/api/security/groups/{group}/users/{user}", responses((status = 200)))]
    async fn check_put() -> [(&'static str, String); 1] {
        in_task()
    }

    #[utoipa::path(get, path = "/api/security/users/{user}", responses((status = 200)))]
    async fn user_get() -> [(&'static str, String); 1] {
        in_task()
    }

    /// Where reads run in tasks of their own (PostgreSQL), the membership check alone
    /// runs in place when the store says its checks are safe to drop; writes never do.
    #[tokio::test]
    async fn only_the_membership_check_runs_in_place_where_reads_are_detached() {
        let app = |detach_checks| {
            let (routes, _) = utoipa_axum::router::OpenApiRouter::new()
                .routes(utoipa_axum::routes!(check_head, check_put))
                .routes(utoipa_axum::routes!(user_get))
                .split_for_parts();
            routes.layer(axum::middleware::from_fn_with_state(
                Deadline::new(Duration::from_secs(10), true, MAX_DETACHED)
                    .detaching_checks(detach_checks),
                deadline,
            ))
        };
        let check = "/api/security/groups/g/users/u";
        let user = "/api/security/users/u";
        for (detach_checks, method, path, spawned) in [
            (false, Method::HEAD, check, false),
            (true, Method::HEAD, check, true),
            (false, Method::PUT, check, true),
            (false, Method::GET, user, true),
            (false, Method::HEAD, user, true),
        ] {
            let response = app(detach_checks)
                .oneshot(
                    Request::builder()
                        .method(method.clone())
                        .uri(path)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                response.headers().get("x-in-task").unwrap(),
                &spawned.to_string(),
                "{method} {path}, checks detached: {detach_checks}"
            );
        }
    }

    /// A request dropped halfway (the client went away, or the deadline passed) still
    /// runs its handler to the end: a change is never left half made.
    /// (On a paused clock: the handler's work and the waits take no real time.)
    #[tokio::test(start_paused = true)]
    async fn a_dropped_request_still_runs_its_handler_to_the_end() {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        let app = Router::new()
            .fallback(move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                "done"
            })
            .layer(axum::middleware::from_fn_with_state(
                Deadline::new(Duration::from_secs(10), false, MAX_DETACHED),
                deadline,
            ));
        let request = app.oneshot(Request::post("/").body(Body::empty()).unwrap());
        assert!(
            tokio::time::timeout(Duration::from_millis(5), request)
                .await
                .is_err(),
            "dropped before the handler finished"
        );
        // The paused clock moves on only when every task waits: the handler's 50 ms pass.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            finished.load(std::sync::atomic::Ordering::SeqCst),
            "the handler ran to the end"
        );
    }

    /// Requests in tasks of their own are bounded: one that was answered 503 at its
    /// deadline (or abandoned) still holds its place until it ends, and past the bound a
    /// new request is refused at once instead of piling more work up.
    #[tokio::test(start_paused = true)]
    async fn abandoned_writes_cannot_pile_up_past_the_bound() {
        let release = Arc::new(tokio::sync::Notify::new());
        let gate = Arc::clone(&release);
        let app = Router::new()
            .fallback(move || {
                let gate = Arc::clone(&gate);
                async move {
                    gate.notified().await;
                    "done"
                }
            })
            .layer(axum::middleware::from_fn_with_state(
                Deadline::new(Duration::from_millis(100), false, 1),
                deadline,
            ));
        let post = || Request::post("/").body(Body::empty()).unwrap();
        // The first runs past its deadline: 503, but its task goes on.
        let first = app.clone().oneshot(post()).await.unwrap();
        assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
        // The bound is taken by it: the next is refused at once, with Retry-After.
        let started = tokio::time::Instant::now();
        let second = app.clone().oneshot(post()).await.unwrap();
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            second
                .headers()
                .contains_key(axum::http::header::RETRY_AFTER)
        );
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
        // Once the first ends, the place is free again.
        release.notify_one();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let app = app.clone();
            let gate = Arc::clone(&release);
            let third = tokio::spawn(async move { app.oneshot(post()).await.unwrap() });
            tokio::time::sleep(Duration::from_millis(10)).await;
            gate.notify_one();
            let third = third.await.unwrap();
            if third.status() == StatusCode::OK {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the place was never freed"
            );
        }
    }

    #[test]
    fn request_ids_are_kept_only_if_short_and_visible_ascii() {
        for good in ["a", "caller-chosen-42", "!~", &"x".repeat(64)] {
            assert!(usable_request_id(good.as_bytes()), "{good}");
        }
        for bad in [
            "".as_bytes(),
            "x".repeat(65).as_bytes(),
            b"two words",
            b"tab\there",
            b"line\nbreak",
            b"del\x7f",
            "naïve".as_bytes(),
        ] {
            assert!(!usable_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_or_repeated_request_id_is_dropped_and_a_good_one_kept() {
        let with = |ids: &[&str]| {
            let mut req = Request::get("/").body(()).unwrap();
            for id in ids {
                req.headers_mut()
                    .append(REQUEST_ID, HeaderValue::from_str(id).unwrap());
            }
            drop_unusable_request_id(req)
                .headers()
                .get_all(REQUEST_ID)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(with(&["kept-1"]), ["kept-1"]);
        assert!(with(&["a b"]).is_empty());
        assert!(with(&["one", "two"]).is_empty());
        assert!(with(&[]).is_empty());
    }

    /// A handler that finishes at once, one that waits but finishes in time, and one that
    /// runs past the limit, which is answered 503 in the error envelope. (On a paused
    /// clock: the waits take no real time, and the deadline fires exactly at its limit.)
    #[tokio::test(start_paused = true)]
    async fn the_deadline_answers_503_only_past_the_limit() {
        let now = status_and_body(answering_after(None)).await;
        assert_eq!(now.0, StatusCode::OK);
        let soon = status_and_body(answering_after(Some(Duration::from_millis(20)))).await;
        assert_eq!(soon.0, StatusCode::OK);
        let started = tokio::time::Instant::now();
        let (status, body) = status_and_body(answering_after(Some(Duration::from_secs(5)))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("longer than")),
            "{body}"
        );
        assert!(body["logId"].is_string(), "{body}");
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }
}
