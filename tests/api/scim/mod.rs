//! SCIM 2.0 at `/scim/v2` (issue #22): the mapping onto the same users and groups as the
//! Contensis API, the protocol's operations, authorization, the habits of Entra ID and
//! Okta (each named in a test), and bad input. The compliance checker (scim2-tester)
//! runs separately against a live server: `tests/scim/run.sh`.

mod auth;
mod bad_input;
mod bulk;
mod clients;
mod groups;
mod users;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp};

pub(crate) const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Sends a SCIM request as `token`, the body labelled `application/scim+json`.
pub(crate) async fn scim(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Resp {
    let mut req = app
        .request(method, &format!("/scim/v2{path}"))
        .bearer(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    req.send().await
}

/// As the bootstrap administrator.
pub(crate) async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    scim(app, method, path, &app.admin.clone(), body).await
}

/// Asserts a SCIM error: status, `scimType` (when given) and the RFC shape.
#[track_caller]
pub(crate) fn assert_scim_error(r: &Resp, status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.text);
    assert_eq!(
        r.body["status"],
        json!(status.as_u16().to_string()),
        "{}",
        r.text
    );
    assert!(r.body["detail"].is_string(), "{}", r.text);
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.text);
    assert_eq!(content_type(r), "application/scim+json");
}

/// The response's media type.
pub(crate) fn content_type(r: &Resp) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A minimal user body.
pub(crate) fn user_body(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "emails": [{"value": email, "type": "work", "primary": true}],
    })
}

/// Creates a user over SCIM as the administrator; returns its representation.
pub(crate) async fn create_user(app: &TestApp, body: Value) -> Value {
    let r = admin(app, Method::POST, "/Users", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// Creates a group over SCIM as the administrator; returns its representation.
pub(crate) async fn create_group(app: &TestApp, name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = admin(
        app,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": name, "members": members})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// A PatchOp body.
pub(crate) fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// The ids in a list response, in order.
pub(crate) fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A group and an API key in it, with the key's client-credentials token: what an
/// identity provider is given.
pub(crate) async fn provisioning_key(app: &TestApp, group: &str) -> (String, String) {
    app.post("/api/security/groups", json!({"name": group}))
        .await
        .expect(StatusCode::CREATED);
    let key = app
        .post(
            "/api/security/apiKeys",
            json!({"name": format!("{group} key")}),
        )
        .await;
    key.expect(StatusCode::CREATED);
    let user_id = key.body["userId"].as_str().unwrap().to_owned();
    app.put(
        &format!(
            "/api/security/groups/{}/users/{user_id}",
            crate::helpers::enc(group)
        ),
        None,
    )
    .await;
    let t = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", key.body["clientId"].as_str().unwrap()),
            ("client_secret", key.body["clientSecret"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    (t.body["access_token"].as_str().unwrap().to_owned(), user_id)
}
