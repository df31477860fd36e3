//! `/authenticate`: the token endpoint (form-encoded, RFC 6749 errors), the OpenID
//! discovery document and the JWKS.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::service::auth::{GrantError, TokenRequest, TokenResponse};

/// The token endpoint path.
pub const TOKEN_PATH: &str = "/authenticate/connect/token";
/// The JWKS path.
pub const JWKS_PATH: &str = "/authenticate/.well-known/jwks";

/// The `/authenticate` routes, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(revocation))
        .routes(routes!(discovery))
        .routes(routes!(jwks))
}

/// A token request as the form carries it (`application/x-www-form-urlencoded`).
// What is read is what is documented. No `Debug`: it holds secrets.
#[derive(Default, serde::Deserialize, ToSchema)]
#[schema(as = TokenRequest)]
pub struct TokenForm {
    /// `contensis_classic`, `contensis_classic_refresh_token` or `client_credentials`.
    #[schema(value_type = String)]
    pub grant_type: Option<String>,
    /// Username or email (`contensis_classic`).
    pub username: Option<String>,
    /// Password (`contensis_classic`).
    pub password: Option<String>,
    /// Refresh token (`contensis_classic_refresh_token`).
    pub refresh_token: Option<String>,
    /// API key client id (`client_credentials`).
    pub client_id: Option<String>,
    /// API key secret (`client_credentials`).
    pub client_secret: Option<String>,
    /// Echoed back; does not widen what the caller may do.
    pub scope: Option<String>,
}

impl From<TokenForm> for TokenRequest {
    fn from(f: TokenForm) -> Self {
        Self {
            grant_type: f.grant_type,
            username: f.username,
            password: f.password,
            refresh_token: f.refresh_token,
            client_id: f.client_id,
            client_secret: f.client_secret,
            scope: f.scope,
            client_addr: None,
        }
    }
}

/// A revocation request as the form carries it (RFC 7009 §2.1).
// No `Debug`: it holds a secret.
#[derive(Default, serde::Deserialize, ToSchema)]
#[schema(as = RevocationRequest)]
pub struct RevocationForm {
    /// The refresh token to revoke; the rest of its rotation chain is revoked with it.
    pub token: Option<String>,
    /// `refresh_token` or `access_token`: read and ignored (RFC 7009 lets the server
    /// look the token up whatever the hint says; only refresh tokens are revocable).
    pub token_type_hint: Option<String>,
}

/// The token endpoint's success body (RFC 6749 §5.1), in the field order it always had.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokenResponse)]
pub struct TokenView {
    /// The signed access token (a JWT).
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A refresh token, for grants that issue one; it rotates on use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope asked for, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl From<TokenResponse> for TokenView {
    fn from(t: TokenResponse) -> Self {
        Self {
            access_token: t.access_token,
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            scope: t.scope,
            token_type: t.token_type,
        }
    }
}

/// The token endpoint's failure body (RFC 6749 §5.2). It never says whether a
/// username exists.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OAuthError)]
pub struct OAuthErrorView {
    /// `invalid_grant`, `invalid_client`, `unsupported_grant_type`, `invalid_request`, or `slow_down` (429).
    #[schema(
        value_type = String,
        pattern = "^(invalid_grant|invalid_client|unsupported_grant_type|invalid_request|slow_down)$"
    )]
    pub error: &'static str,
    /// Human-readable text.
    pub error_description: &'static str,
}

/// The OpenID discovery document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Discovery)]
pub struct DiscoveryView {
    /// The grant types the token endpoint issues.
    pub grant_types_supported: [&'static str; 3],
    /// Always `["EdDSA"]`.
    pub id_token_signing_alg_values_supported: [&'static str; 1],
    /// The `iss` of every token.
    pub issuer: String,
    /// Where the signing keys are.
    #[schema(format = "uri")]
    pub jwks_uri: String,
    /// Always `["token"]`.
    pub response_types_supported: [&'static str; 1],
    /// Always `["public"]`.
    pub subject_types_supported: [&'static str; 1],
    /// The token endpoint.
    #[schema(format = "uri")]
    pub token_endpoint: String,
    /// Always `["client_secret_post"]`.
    pub token_endpoint_auth_methods_supported: [&'static str; 1],
}

/// The documented shape of the JWKS.
#[derive(ToSchema)]
#[schema(as = Jwks)]
#[expect(dead_code, reason = "documents the JWKS; the key ring builds it")]
struct JwksDoc {
    /// Every key that verifies tokens; the newest signs.
    keys: Vec<JwkDoc>,
}

/// One Ed25519 public key (RFC 8037).
#[derive(ToSchema)]
#[schema(as = Jwk)]
#[expect(dead_code, reason = "documents the JWKS; the key ring builds it")]
struct JwkDoc {
    /// `OKP`.
    kty: String,
    /// `Ed25519`.
    crv: String,
    /// `EdDSA`.
    alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    usage: String,
    /// The key id tokens name in their header.
    kid: String,
    /// The public key, base64url.
    x: String,
}

/// Reads the form: a repeated name keeps its last value, unknown names are ignored,
/// and the names are [`TokenForm`]'s own (its `Deserialize`).
fn parse_form(body: &[u8]) -> TokenRequest {
    let pairs: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::from_value::<TokenForm>(serde_json::Value::Object(pairs))
        .unwrap_or_default()
        .into()
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The client's address: the TCP peer, or with `--trust-forwarded-for` the last
/// address in `X-Forwarded-For` (the one our own proxy appended).
pub(crate) fn client_addr(
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

/// Get a token (spec §2). Failures are 400 with an RFC 6749 body; too many attempts
/// from one address or for one username are 429 with `Retry-After`.
#[utoipa::path(
    post,
    path = "/authenticate/connect/token",
    tag = "authentication",
    operation_id = "token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`).", body = TokenView),
        (status = 400, description = "The grant failed, or the body is not `application/x-www-form-urlencoded` (`invalid_request`).", body = OAuthErrorView),
        (status = 413, description = "The request body is larger than 1 MiB.", body = ErrorBody),
        (status = 429, description = "Too many token requests (`Retry-After` gives the seconds to wait).", body = OAuthErrorView),
    ),
)]
async fn token(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    if !super::content_type::is_form(&headers) {
        tracing::info!(
            error = "invalid_request",
            "token request refused: not a form"
        );
        return no_store(oauth_error(
            "invalid_request",
            "The token request must be sent as application/x-www-form-urlencoded.",
        ));
    }
    let mut req = parse_form(&body);
    req.client_addr = client_addr(
        peer.map(|Extension(ConnectInfo(p))| p),
        &headers,
        s.settings().trust_forwarded_for,
    );
    let result = s.token(req).await;
    let response = match result {
        Ok(tokens) => Json(TokenView::from(tokens)).into_response(),
        Err(GrantError::Internal(e)) => ApiError::from(e).into_response(),
        Err(GrantError::RateLimited {
            retry_after_secs, ..
        }) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(OAuthErrorView {
                    error: "slow_down",
                    error_description: "Too many token requests; retry after the number of seconds in Retry-After.",
                }),
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
            oauth_error(error, description)
        }
    };
    no_store(response)
}

/// Revoke a refresh token (RFC 7009): sign-out. The token and every token of its
/// rotation chain stop working at the refresh grant. Holding the token is the proof (it
/// could as well be spent), so no access token is needed; an unknown, expired or already
/// revoked token is answered 200 too, as RFC 7009 §2.2 says. Access tokens are not
/// revocable here: they live out their `expires_in`.
#[utoipa::path(
    post,
    path = "/authenticate/connect/revocation",
    tag = "authentication",
    operation_id = "revokeToken",
    request_body(content = RevocationForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing live to revoke (empty body, `Cache-Control: no-store`)."),
        (status = 400, description = "`token` is missing, or the body is not `application/x-www-form-urlencoded` (`invalid_request`).", body = OAuthErrorView),
        (status = 413, description = "The request body is larger than 1 MiB.", body = ErrorBody),
    ),
)]
async fn revocation(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    if !super::content_type::is_form(&headers) {
        return no_store(oauth_error(
            "invalid_request",
            "The revocation request must be sent as application/x-www-form-urlencoded.",
        ));
    }
    // Read as the token endpoint reads its form: a repeated name keeps its last value.
    let pairs: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    let form = serde_json::from_value::<RevocationForm>(serde_json::Value::Object(pairs))
        .unwrap_or_default();
    // The hint is read and ignored: every token is looked up as a refresh token.
    let _hint = form.token_type_hint;
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return no_store(oauth_error("invalid_request", "token is required."));
    };
    match s.revoke_refresh_token(&token).await {
        Ok(revoked) => {
            tracing::info!(revoked, "refresh token revocation");
            no_store(StatusCode::OK.into_response())
        }
        Err(e) => no_store(ApiError::from(e).into_response()),
    }
}

/// The body of a token-endpoint request, or the `no-store` answer to one that could not
/// be read (too large: 413).
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Box<Response>> {
    body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "The request body is larger than 1 MiB."
        } else {
            "The request body could not be read."
        };
        Box::new(no_store(ApiError::new(status, message).into_response()))
    })
}

/// A 400 in the token endpoint's RFC 6749 §5.2 shape.
fn oauth_error(error: &'static str, description: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(OAuthErrorView {
            error,
            error_description: description,
        }),
    )
        .into_response()
}

/// The OpenID discovery document.
#[utoipa::path(
    get,
    path = "/authenticate/.well-known/openid-configuration",
    tag = "authentication",
    operation_id = "discovery",
    responses((status = 200, description = "The discovery document.", body = DiscoveryView)),
)]
async fn discovery(State(s): State<AppState>) -> Response {
    // The URLs come from the configured public base URL (`--public-url`, else the listen
    // address), never from the request: a forged `Host` or `X-Forwarded-*` header must
    // not point clients, or a cache between them, at another server.
    let base = &s.settings().public_base;
    Json(DiscoveryView {
        grant_types_supported: [
            "contensis_classic",
            "contensis_classic_refresh_token",
            "client_credentials",
        ],
        id_token_signing_alg_values_supported: ["EdDSA"],
        issuer: s.keys().issuer().to_owned(),
        jwks_uri: format!("{base}{JWKS_PATH}"),
        response_types_supported: ["token"],
        subject_types_supported: ["public"],
        token_endpoint: format!("{base}{TOKEN_PATH}"),
        token_endpoint_auth_methods_supported: ["client_secret_post"],
    })
    .into_response()
}

/// The public keys that verify tokens.
#[utoipa::path(
    get,
    path = "/authenticate/.well-known/jwks",
    tag = "authentication",
    operation_id = "jwks",
    responses((status = 200, description = "The JWKS.", body = JwksDoc)),
)]
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
