//! The habits of the big provisioning clients, each named after the client and what it
//! does, with requests shaped as they send them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::{PASSWORD, TestApp, enc};

/// Entra ID looks a user up by `userName eq "…"` before creating it, and matches on
/// the answer.
#[tokio::test]
async fn entra_id_probes_user_name_before_create() {
    let app = TestApp::spawn().await;
    let probe = format!(
        "/Users?filter={}",
        enc(r#"userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081""#)
    );
    let r = admin(&app, Method::GET, &probe, None).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    let body = json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb6499@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Sales"}
    });
    let created = create_user(&app, body).await;
    // Case does not matter to the probe.
    let probe = format!(
        "/Users?filter={}",
        enc(r#"userName eq "test_user_DFEEF4C5-5681-4387-b016-bdf221e82081""#)
    );
    let r = admin(&app, Method::GET, &probe, None).await;
    assert_eq!(ids(&r.body), [created["id"].as_str().unwrap().to_owned()]);
    // So does the externalId probe of a re-link.
    let r = admin(
        &app,
        Method::GET,
        &format!(
            "/Users?filter={}",
            enc(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#)
        ),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 1);
}

/// Entra ID's PATCH: `op` capitalised ("Replace", "Add"), booleans as strings
/// ("False"), a work email by value path, the manager as a bare id.
#[tokio::test]
async fn entra_id_patch_with_capitalised_ops_and_string_booleans() {
    let app = TestApp::spawn().await;
    let c = create_user(&app, user_body("ryan", "ryan@contoso.com")).await;
    let id = c["id"].as_str().unwrap();
    let r = admin(&app, Method::PATCH, &format!("/Users/{id}"), Some(json!({
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ryan.l@contoso.com"},
            {"op": "Add", "path": "name.givenName", "value": "Ryan"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "e5b7a0b2-0d5f-4c36-9c5a-6a1a0a8f4b7e"},
            {"op": "Replace", "path": "displayName", "value": "Ryan L"}
        ]
    }))).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["emails"][0]["value"], "ryan.l@contoso.com");
    assert_eq!(
        r.body[ENTERPRISE]["manager"],
        json!({"value": "e5b7a0b2-0d5f-4c36-9c5a-6a1a0a8f4b7e"})
    );
    let api = app.get(&format!("/api/security/users/{id}")).await;
    assert_eq!(api.body["status"]["suspended"], true);
    assert_eq!(api.body["email"], "ryan.l@contoso.com");
    assert_eq!(api.body["firstName"], "Ryan");
    // "True" brings it back.
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )),
    )
    .await;
    assert_eq!(r.body["active"], true);
}

/// Entra ID removes group members by value path, and sometimes as `remove` of
/// `members` with the members in `value`; it adds them with `Add`.
#[tokio::test]
async fn entra_id_removes_members_by_value_path() {
    let app = TestApp::spawn().await;
    let a = create_user(&app, user_body("a", "a@contoso.com")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create_user(&app, user_body("b", "b@contoso.com")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = create_user(&app, user_body("c", "c@contoso.com")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = create_group(&app, "Entra Group", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/Groups/{g}?excludedAttributes=members");
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}, {"value": c}]}
        ]))),
    )
    .await;
    r.expect(StatusCode::OK);
    assert!(
        r.body.get("members").is_none(),
        "excludedAttributes applies to the answer"
    );
    admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "Remove", "path": format!("members[value eq \"{a}\"]")}
        ]))),
    )
    .await
    .expect(StatusCode::OK);
    admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "Remove", "path": "members", "value": [{"value": b}]}
        ]))),
    )
    .await
    .expect(StatusCode::OK);
    let members = app.get(&format!("/api/security/groups/{g}/users")).await;
    let left: Vec<&str> = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [c.as_str()]);
}

/// Okta PUTs the whole user on every change, password included; the same password
/// again is no change and no error.
#[tokio::test]
async fn okta_puts_whole_users() {
    let app = TestApp::spawn().await;
    let mut body = json!({
        "schemas": [USER],
        "userName": "isaac@okta.example",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": true, "value": "isaac@okta.example", "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": PASSWORD,
        "active": true
    });
    let c = create_user(&app, body.clone()).await;
    let id = c["id"].as_str().unwrap();
    app.login("isaac@okta.example", PASSWORD).await;
    body["id"] = json!(id);
    body["name"]["familyName"] = json!("Brockman");
    let r = admin(
        &app,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(body.clone()),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["name"]["familyName"], "Brockman");
    app.login("isaac@okta.example", PASSWORD).await;
    // A new password in the PUT takes effect.
    body["password"] = json!("Another-Pass-77");
    admin(&app, Method::PUT, &format!("/Users/{id}"), Some(body))
        .await
        .expect(StatusCode::OK);
    app.login("isaac@okta.example", "Another-Pass-77").await;
}

/// Okta deactivates and reactivates with `active` in a PUT, or in a path-less PATCH
/// `replace`.
#[tokio::test]
async fn okta_toggles_active() {
    let app = TestApp::spawn().await;
    let mut body = user_body("jane@okta.example", "jane@okta.example");
    body["active"] = json!(true);
    let c = create_user(&app, body.clone()).await;
    let id = c["id"].as_str().unwrap();

    body["active"] = json!(false);
    admin(
        &app,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(body.clone()),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(suspended(&app, id).await, true);
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(json!([{"op": "replace", "value": {"active": true}}]))),
    )
    .await;
    assert_eq!(r.body["active"], true);
    assert_eq!(suspended(&app, id).await, false);
    admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "value": {"active": false}}]),
        )),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(suspended(&app, id).await, true);
}

async fn suspended(app: &TestApp, id: &str) -> serde_json::Value {
    app.get(&format!("/api/security/users/{id}")).await.body["status"]["suspended"].clone()
}
