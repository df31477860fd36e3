//! The one place that turns outcomes into HTTP statuses and the error envelope of spec §1:
//! `{"logId", "message", "data", "type": "error"}`. The `logId` is logged with the cause.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::service::Error;

/// The error envelope of every 4xx/5xx with a body (spec §1).
// Fields are in the byte order of their names, as `json!` used to emit them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What was missing or invalid, e.g. `{"group": "Admins"}` for a 404 or
    /// `{"field": "email"}` for a 422; `null` when there is nothing to add.
    #[schema(value_type = Option<Object>)]
    pub data: Value,
    /// Also written to the server log with the cause.
    #[schema(value_type = String, format = "uuid")]
    pub log_id: uuid::Uuid,
    /// Human-readable text.
    pub message: String,
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: ErrorType,
}

/// The `type` of the error envelope: always `error`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorType {
    /// The only value.
    Error,
}

/// The message of every 401 (spec §1).
pub const DENIED: &str = "Authorization has been denied for this request.";

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    data: Value,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, message and no data.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            data: Value::Null,
            source: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Attaches `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadRequest(m) => Self::bad_request(m),
            Error::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, DENIED),
            Error::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, m),
            Error::NotFound { message, data } => {
                Self::new(StatusCode::NOT_FOUND, message).with_data(data)
            }
            Error::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            Error::Invalid(f) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, f.reason)
                .with_data(json!({ "field": f.field })),
            e @ Error::RateLimited { retry_after_secs } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
                    .retry_after(retry_after_secs)
            }
            e @ Error::Busy => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(1)
            }
            Error::Internal(source) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "An unexpected error occurred. Quote the logId to the operator.".into(),
                data: Value::Null,
                source: Some(source),
                retry_after: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let log_id = uuid::Uuid::new_v4();
        match &self.source {
            Some(source) => {
                tracing::error!(log_id = %log_id, status = self.status.as_u16(), error = %source, cause = ?source, "request failed");
            }
            None if self.status.is_server_error() => {
                tracing::error!(log_id = %log_id, status = self.status.as_u16(), message = %self.message, "request failed");
            }
            None => {
                tracing::info!(log_id = %log_id, status = self.status.as_u16(), message = %self.message, "request refused");
            }
        }
        let body = ErrorBody {
            data: self.data,
            log_id,
            message: self.message,
            kind: ErrorType::Error,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
