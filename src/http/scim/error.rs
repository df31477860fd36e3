//! SCIM error responses (RFC 7644 §3.12): `{"schemas": [Error], "status": "400",
//! "scimType": "invalidFilter", "detail": "…"}`, sent as `application/scim+json`. The one
//! place SCIM statuses and `scimType`s are chosen; 5xx details are opaque and logged
//! with the cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::schema;
use crate::query::error::QueryError;
use crate::service::Error;

/// The media type of every SCIM response.
pub const SCIM_JSON: &str = "application/scim+json";

/// A SCIM error.
#[derive(Debug)]
pub struct ScimError {
    /// The status.
    pub status: StatusCode,
    /// `scimType`, for the 400s and 409s that have one.
    pub scim_type: Option<&'static str>,
    /// Human-readable text.
    pub detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    retry_after: Option<u64>,
}

impl ScimError {
    /// An error with a status, a `scimType` and a detail.
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            source: None,
            retry_after: None,
        }
    }

    /// 400 `invalidSyntax`: the request could not be read.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    /// 400 `invalidValue`: a value is wrong.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("noTarget"), detail)
    }

    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("mutability"), detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// A filter that cannot be run.
    pub fn filter(e: &QueryError) -> Self {
        Self::invalid_filter(format!("The filter cannot be used: {e}."))
    }

    /// The body of this error.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [schema::ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body
    }
}

/// How a service outcome reads in SCIM. Conflicts are told apart by what the service
/// says (`service::Error` keeps one variant for every 409); `tests/api/scim/` checks
/// each reading end to end, so a reworded message fails there.
impl From<Error> for ScimError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadRequest(m) => Self::invalid_value(m),
            Error::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                None,
                "A valid bearer token is required.",
            ),
            Error::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, None, m),
            Error::NotFound { message, .. } => Self::not_found(message),
            Error::Conflict(m) => {
                if m.contains("already in use") || m.contains("already exists") {
                    Self::new(StatusCode::CONFLICT, Some("uniqueness"), m)
                } else if m.contains("cannot contain itself") {
                    Self::invalid_value(m)
                } else {
                    // The last administrator, the built-in group's name, a wrong
                    // current password: the state does not allow the change.
                    Self::mutability(m)
                }
            }
            Error::Invalid(f) => Self::invalid_value(format!("{}: {}", f.field, f.reason)),
            e @ Error::RateLimited { retry_after_secs } => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("tooMany"),
                    e.to_string(),
                );
                err.retry_after = Some(retry_after_secs);
                err
            }
            e @ Error::Busy => {
                let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, None, e.to_string());
                err.retry_after = Some(1);
                err
            }
            Error::Internal(source) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                scim_type: None,
                detail: "An unexpected error occurred.".into(),
                source: Some(source),
                retry_after: None,
            },
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let log_id = uuid::Uuid::new_v4();
        match &self.source {
            Some(source) => {
                tracing::error!(log_id = %log_id, status = self.status.as_u16(), error = %source, cause = ?source, "SCIM request failed");
            }
            None if self.status.is_server_error() => {
                tracing::error!(log_id = %log_id, status = self.status.as_u16(), detail = %self.detail, "SCIM request failed");
            }
            None => {
                tracing::info!(log_id = %log_id, status = self.status.as_u16(), detail = %self.detail, "SCIM request refused");
            }
        }
        let mut body = self.body();
        if self.status.is_server_error() {
            body["detail"] = json!(format!("{} logId {log_id}", self.detail));
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scim_type(e: Error) -> (u16, Option<&'static str>) {
        let s = ScimError::from(e);
        (s.status.as_u16(), s.scim_type)
    }

    /// (The conflicts are tested end to end, with the service's own words, in
    /// `tests/api/scim/`.)
    #[test]
    fn service_outcomes_become_scim_statuses() {
        assert_eq!(
            scim_type(Error::NotFound {
                message: "x".into(),
                data: Value::Null
            }),
            (404, None)
        );
        assert_eq!(
            scim_type(crate::domain::names::FieldError::new("password", "too short").into()),
            (400, Some("invalidValue"))
        );
        assert_eq!(scim_type(Error::Unauthenticated), (401, None));
        assert_eq!(
            scim_type(Error::RateLimited {
                retry_after_secs: 3
            }),
            (429, Some("tooMany"))
        );
    }

    #[test]
    fn the_body_has_the_rfc_shape() {
        let body = ScimError::invalid_filter("bad").body();
        assert_eq!(
            body,
            json!({"schemas": [schema::ERROR], "status": "400", "scimType": "invalidFilter", "detail": "bad"})
        );
    }
}
