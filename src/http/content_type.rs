//! What a request body must say it is. Under `/api/` a request that carries a body must
//! label it `application/json` or an `application/…+json` type (parameters such as
//! `charset` are allowed); anything else, or no label, is 415 in the error envelope
//! before any handler or extractor runs. Requests without a body may carry any label:
//! the npm client sends `application/json` on GET, HEAD, DELETE and bodiless PUTs.
//!
//! One middleware for every API route, so no handler can forget it (a handler that reads
//! no body would otherwise accept anything). The token endpoint's rule, a form and only a
//! form, lives with its OAuth error shape in `token.rs`.

use std::pin::Pin;

use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::error::ApiError;

/// The paths this rule covers: the security API under both prefixes, and the document.
const API: &str = "/api/";

/// The message of every 415.
pub const NOT_JSON: &str = "A request body must be JSON: send it with \
    Content-Type: application/json (or an application/…+json type).";

/// Refuses, with 415, an API request whose body is not labelled as JSON.
pub async fn require_json(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(API) || is_json(req.headers()) {
        return next.run(req).await;
    }
    // Not labelled JSON: fine only without a body.
    let (parts, mut body) = req.into_parts();
    let hint = body.size_hint();
    if hint.exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    if hint.lower() > 0 {
        return not_json();
    }
    // A body of unknown length (chunked): its first data decides, nothing is buffered.
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return next.run(Request::from_parts(parts, Body::empty())).await,
            Some(Ok(frame)) => {
                if frame.data_ref().is_some_and(|d| !d.is_empty()) {
                    return not_json();
                }
            }
            Some(Err(_)) => {
                return ApiError::bad_request("The request body could not be read.")
                    .into_response();
            }
        }
    }
}

fn not_json() -> Response {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, NOT_JSON).into_response()
}

/// The media type of a request without its parameters, lower-cased, if it has exactly
/// one `Content-Type` that is text.
pub fn essence(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let text = value.to_str().ok()?;
    let essence = text.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// `application/json`, or `application/<subtype>+json` (RFC 6839), any parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    essence(headers).is_some_and(|e| {
        e == "application/json"
            || e.strip_prefix("application/")
                .and_then(|sub| sub.strip_suffix("+json"))
                .is_some_and(|sub| {
                    !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
                })
    })
}

/// `application/x-www-form-urlencoded`, any parameters.
pub fn is_form(headers: &HeaderMap) -> bool {
    essence(headers).is_some_and(|e| e == "application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::CONTENT_TYPE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn json_and_json_suffixes_with_any_parameters() {
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON ;charset=UTF-8",
            "application/merge-patch+json; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(is_json(&with(&[yes.as_bytes()])), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "text/json",
            "application/jsonx",
            "application/+json",
            "application/a/b+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=application/json",
            "json",
        ] {
            assert!(!is_json(&with(&[no.as_bytes()])), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()), "no label");
        assert!(
            !is_json(&with(&[b"application/json", b"text/plain"])),
            "two labels"
        );
        assert!(!is_json(&with(&[b"application/json\xff"])), "not text");
    }

    #[test]
    fn a_form_is_a_form_with_any_parameters() {
        assert!(is_form(&with(&[b"application/x-www-form-urlencoded"])));
        assert!(is_form(&with(&[
            b"application/x-www-form-urlencoded;charset=UTF-8"
        ])));
        assert!(!is_form(&with(&[b"application/json"])));
        assert!(!is_form(&HeaderMap::new()));
    }
}
