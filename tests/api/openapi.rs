//! The OpenAPI document at `/api/openapi.json`: it is served, it lists exactly the
//! endpoints of the spec under both prefixes, and the router answers every operation
//! it lists and nothing else on those paths.
//!
//! The router and the document come from one table (`src/http/openapi.rs`), so these
//! tests fail when a route is served but not documented, or documented but not served.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

/// Every endpoint of spec §4–§6, after the prefix.
pub(crate) const SECURITY: &[(&str, &str)] = &[
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/search"),
    ("POST", "/users/search"),
    ("GET", "/users/{user}"),
    ("PATCH", "/users/{user}"),
    ("PUT", "/users/{user}"),
    ("DELETE", "/users/{user}"),
    ("POST", "/users/{user}/credentials/password"),
    ("POST", "/users/{user}/actions"),
    ("GET", "/users/{user}/groups"),
    ("HEAD", "/users/{user}/groups/{groups}"),
    ("GET", "/groups"),
    ("POST", "/groups"),
    ("GET", "/groups/{group}"),
    ("PUT", "/groups/{group}"),
    ("DELETE", "/groups/{group}"),
    ("PUT", "/groups/{group}/users/{user}"),
    ("POST", "/groups/{group}/users"),
    ("DELETE", "/groups/{group}/users/{user}"),
    ("HEAD", "/groups/{group}/users/{user}"),
    ("GET", "/groups/{group}/users"),
    ("PUT", "/groups/{group}/groups/{child}"),
    ("POST", "/groups/{group}/groups"),
    ("DELETE", "/groups/{group}/groups/{child}"),
    ("GET", "/groups/{group}/groups"),
    ("GET", "/apiKeys"),
    ("POST", "/apiKeys"),
    ("GET", "/apiKeys/{id}"),
    ("PUT", "/apiKeys/{id}"),
    ("DELETE", "/apiKeys/{id}"),
];

/// gatehouse's own endpoints beyond the spec, under both prefixes like the spec's
/// (docs/audit.md).
pub(crate) const GATEHOUSE: &[(&str, &str)] = &[
    ("GET", "/audit"),
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks/{id}"),
    ("PUT", "/webhooks/{id}"),
    ("DELETE", "/webhooks/{id}"),
    ("GET", "/webhooks/{id}/deliveries"),
];

/// The endpoints outside the two prefixes (spec §2, §8, and the document). `/metrics`
/// is not one: it is served on the metrics listener only.
pub(crate) const OTHER: &[(&str, &str)] = &[
    ("POST", "/authenticate/connect/token"),
    ("POST", "/authenticate/connect/revocation"),
    ("GET", "/authenticate/.well-known/openid-configuration"),
    ("GET", "/authenticate/.well-known/jwks"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api/openapi.json"),
];

const PREFIXES: [&str; 2] = ["/api/security", "/api/management/security"];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let r = app.send(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
    r.body
}

/// The (METHOD, path) pairs the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_lists_exactly_the_spec_endpoints_under_both_prefixes() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc,
        serde_json::to_value(gatehouse::http::openapi::document()).unwrap()
    );
    let mut expected = BTreeSet::new();
    for prefix in PREFIXES {
        for (method, path) in SECURITY.iter().chain(GATEHOUSE) {
            expected.insert((method.to_string(), format!("{prefix}{path}")));
        }
    }
    for (method, path) in OTHER {
        expected.insert((method.to_string(), path.to_string()));
    }
    let listed = operations(&doc);
    let missing: Vec<_> = expected.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the document: {missing:?}; not in the spec: {extra:?}"
    );
}

/// A path template with its parameters filled. HEAD probes name the bootstrap admin and
/// System Administrators, so a routed HEAD answers 204 rather than a bodiless 404 that
/// would look like the fallback; other methods name things that do not exist, so the
/// probe changes nothing.
fn fill(path: &str, real: bool) -> String {
    let (user, group) = if real {
        ("admin", "System%20Administrators")
    } else {
        ("probe-missing-user", "probe-missing-group")
    };
    path.replace("{user}", user)
        .replace("{groups}", group)
        .replace("{group}", group)
        .replace("{child}", "probe-missing-child")
        .replace("{id}", "00000000-0000-4000-8000-000000000000")
}

fn is_fallback(r: &crate::helpers::Resp) -> bool {
    r.status == StatusCode::METHOD_NOT_ALLOWED
        || (r.status == StatusCode::NOT_FOUND && r.body["message"] == "No such endpoint.")
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else_on_its_path() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let listed = operations(&doc);
    let paths: BTreeSet<&String> = listed.iter().map(|(_, p)| p).collect();
    let mut failures = Vec::new();
    for path in paths {
        let documented = |m: &str| listed.contains(&(m.to_owned(), path.clone()));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] {
            let head = method == "HEAD";
            let url = fill(path, head);
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = app.send(m, &url, Some(&app.admin), None).await;
            if documented(method) {
                let routed = if head {
                    r.status == StatusCode::NO_CONTENT
                } else {
                    !is_fallback(&r)
                };
                if !routed {
                    failures.push(format!("{method} {url}: documented, answered {}", r.status));
                }
            } else if head && documented("GET") {
                // axum answers HEAD wherever GET is routed, without a body.
            } else if r.status != StatusCode::METHOD_NOT_ALLOWED {
                failures.push(format!(
                    "{method} {url}: not documented, answered {}",
                    r.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn the_document_is_served_without_a_token_on_both_spellings() {
    let app = TestApp::spawn().await;
    for path in ["/api/openapi.json", "/api/openapi.json/"] {
        let r = app.send(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.body["paths"].is_object());
    }
}

#[tokio::test]
async fn an_oversized_token_request_gets_413_in_the_error_envelope() {
    let app = TestApp::spawn().await;
    let body = format!(
        "grant_type=contensis_classic&username={}",
        "a".repeat(1 << 21)
    );
    let r = app
        .send_raw(
            Method::POST,
            "/authenticate/connect/token",
            None,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["type"], "error");
    assert!(r.body["logId"].is_string());
}
