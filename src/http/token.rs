//! `/authenticate`: the token endpoint (form-encoded, RFC 6749 errors), the OpenID
//! discovery document and the JWKS.

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};

use super::AppState;
use super::error::ApiError;
use crate::service::auth::{GrantError, TokenRequest};

/// The token endpoint path.
pub const TOKEN_PATH: &str = "/authenticate/connect/token";
/// The JWKS path.
pub const JWKS_PATH: &str = "/authenticate/.well-known/jwks";

/// The `/authenticate` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(
            "/authenticate/.well-known/openid-configuration",
            get(discovery),
        )
        .route(JWKS_PATH, get(jwks))
}

fn parse_form(body: &[u8]) -> TokenRequest {
    let mut req = TokenRequest::default();
    for (k, v) in form_urlencoded::parse(body) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "grant_type" => req.grant_type = v,
            "username" => req.username = v,
            "password" => req.password = v,
            "refresh_token" => req.refresh_token = v,
            "client_id" => req.client_id = v,
            "client_secret" => req.client_secret = v,
            "scope" => req.scope = v,
            _ => {}
        }
    }
    req
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The client's address: the TCP peer, or with `--trust-forwarded-for` the last
/// address in `X-Forwarded-For` (the one our own proxy appended).
fn client_addr(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

async fn token(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut req = parse_form(&body);
    req.client_addr = client_addr(
        peer.map(|Extension(ConnectInfo(p))| p),
        &headers,
        s.settings().trust_forwarded_for,
    );
    let result = s.token(req).await;
    let response = match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(GrantError::Internal(e)) => ApiError::from(e).into_response(),
        Err(GrantError::RateLimited {
            retry_after_secs, ..
        }) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "error": "slow_down",
                    "error_description": "Too many token requests; retry after the number of seconds in Retry-After.",
                })),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            r
        }
        Err(e) => {
            let (error, description) = match &e {
                GrantError::InvalidGrant => (
                    "invalid_grant",
                    "The credentials are invalid or the account may not log in.",
                ),
                GrantError::InvalidClient => {
                    ("invalid_client", "The client credentials are invalid.")
                }
                GrantError::UnsupportedGrantType => {
                    ("unsupported_grant_type", "The grant type is not supported.")
                }
                GrantError::InvalidRequest(what) => ("invalid_request", *what),
                GrantError::Internal(_) | GrantError::RateLimited { .. } => {
                    unreachable!("handled above")
                }
            };
            tracing::info!(error, "token request refused");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": error, "error_description": description})),
            )
                .into_response()
        }
    };
    no_store(response)
}

/// The base URL clients reached us at, for absolute URLs in the discovery document.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn discovery(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    Json(json!({
        "issuer": s.keys().issuer(),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "grant_types_supported": ["contensis_classic", "contensis_classic_refresh_token", "client_credentials"],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

async fn jwks(State(s): State<AppState>) -> Response {
    Json(s.keys().jwks().clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_peer_unless_forwarded_for_is_trusted() {
        let peer = Some(SocketAddr::from(([10, 1, 2, 3], 5555)));
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2"),
        );
        assert_eq!(client_addr(peer, &h, false), Some([10, 1, 2, 3].into()));
        assert_eq!(client_addr(peer, &h, true), Some([2, 2, 2, 2].into()));
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_addr(peer, &h, true), Some([10, 1, 2, 3].into()));
        assert_eq!(client_addr(None, &HeaderMap::new(), true), None);
    }
}
