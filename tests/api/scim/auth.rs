//! Who may provision: administrators, and members of the `--scim-group` group; a
//! provisioner that is not an administrator cannot make or unmake administrators.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::TestApp;

const SYS: &str = "4a1f0c5e-0000-4000-8000-000000000001";

#[tokio::test]
async fn a_token_is_needed_and_only_provisioners_may_use_it() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/scim/v2/Users").send().await;
    assert_scim_error(&r, StatusCode::UNAUTHORIZED, None);
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    let r = scim(&app, Method::GET, "/Users", "not-a-token", None).await;
    assert_scim_error(&r, StatusCode::UNAUTHORIZED, None);
    // A standard user: 403.
    let (_, token) = app.user_with_token("pinkman").await;
    assert_scim_error(
        &scim(&app, Method::GET, "/Users", &token, None).await,
        StatusCode::FORBIDDEN,
        None,
    );
    // An API key without a provisioning group configured: 403.
    let (key, _) = provisioning_key(&app, "Provisioners").await;
    assert_scim_error(
        &scim(&app, Method::GET, "/Users", &key, None).await,
        StatusCode::FORBIDDEN,
        None,
    );
    // Discovery needs no token.
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
        "/ResourceTypes/User",
        &format!("/Schemas/{USER}"),
    ] {
        let r = app
            .request(Method::GET, &format!("/scim/v2{path}"))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(content_type(&r), "application/scim+json");
    }
}

#[tokio::test]
async fn an_api_key_in_the_provisioning_group_provisions_but_cannot_touch_administrators() {
    let app = TestApp::spawn_with(|c| c.scim_group = Some("Provisioners".into())).await;
    let (key, key_user) = provisioning_key(&app, "Provisioners").await;
    let r = scim(
        &app,
        Method::POST,
        "/Users",
        &key,
        Some(user_body("mike", "mike@example.com")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mike = r.body["id"].as_str().unwrap().to_owned();
    // Audited like any change, with the key as the actor and the request's id.
    let events = app
        .get("/api/security/audit?type=user.created&target=mike")
        .await;
    events.expect(StatusCode::OK);
    let e = &events.body["items"][0];
    assert_eq!(e["actor"]["type"], "apiKey", "{}", events.text);
    assert_eq!(e["actor"]["id"], json!(key_user));
    assert_eq!(e["target"]["userId"], json!(mike), "{}", events.text);
    assert!(e["requestId"].is_string(), "{}", events.text);
    let r = scim(
        &app,
        Method::POST,
        "/Groups",
        &key,
        Some(json!({"schemas": [GROUP], "displayName": "Cartel", "members": [{"value": mike}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let cartel = r.body["id"].as_str().unwrap().to_owned();
    // Not an administrator itself: no way to become one, nor to take over one.
    let admin_id = admin(&app, Method::GET, "/Me", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/Groups/{SYS}"),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": key_user}]}]),
            )),
        ),
        (
            Method::PATCH,
            format!("/Groups/{SYS}"),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": cartel, "type": "Group"}]}]),
            )),
        ),
        (
            Method::PATCH,
            format!("/Users/{admin_id}"),
            Some(patch(
                json!([{"op": "replace", "path": "password", "value": "Taken-Over-42"}]),
            )),
        ),
        (
            Method::PATCH,
            format!("/Users/{admin_id}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        ),
        (Method::DELETE, format!("/Users/{admin_id}"), None),
        (Method::DELETE, format!("/Groups/{SYS}"), None),
    ] {
        let r = scim(&app, method.clone(), &path, &key, body).await;
        assert_scim_error(&r, StatusCode::FORBIDDEN, None);
    }
    // A group below System Administrators is off limits too.
    admin(&app, Method::PATCH, &format!("/Groups/{SYS}"), Some(patch(json!([{"op": "add", "path": "members", "value": [{"value": cartel, "type": "Group"}]}]))))
        .await
        .expect(StatusCode::OK);
    let r = scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{cartel}"),
        &key,
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": key_user}]}]),
        )),
    )
    .await;
    assert_scim_error(&r, StatusCode::FORBIDDEN, None);
    // The key's user is still not an administrator.
    let api = app
        .get(&format!("/api/security/users/{key_user}/groups"))
        .await;
    assert!(!api.text.contains(SYS), "{}", api.text);
    // Reading administrators is fine.
    assert_eq!(
        scim(&app, Method::GET, &format!("/Users/{admin_id}"), &key, None)
            .await
            .status,
        StatusCode::OK
    );
    // Out of the group: refused again.
    app.delete(&format!(
        "/api/security/groups/Provisioners/users/{key_user}"
    ))
    .await;
    assert_scim_error(
        &scim(&app, Method::GET, "/Users", &key, None).await,
        StatusCode::FORBIDDEN,
        None,
    );
}
