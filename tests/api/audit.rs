//! The audit trail (docs/audit.md): every change writes exactly one matching event,
//! secrets never reach one, and the list filters as documented.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, PASSWORD, TestApp, assert_error_shape};

/// The newest event, if any.
async fn newest(app: &TestApp) -> Option<Value> {
    let r = app.get("/api/security/audit?pageSize=1").await;
    r.expect(StatusCode::OK);
    r.body["items"].as_array().and_then(|a| a.first().cloned())
}

/// Every event after `after_id`, oldest first.
async fn events_after(app: &TestApp, after_id: i64) -> Vec<Value> {
    let all = app.get("/api/security/audit?pageSize=1000").await;
    all.expect(StatusCode::OK);
    let mut items: Vec<Value> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["id"].as_i64().unwrap() > after_id)
        .cloned()
        .collect();
    items.reverse();
    items
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// The mutating operations of the document, as `METHOD /path-template` under
/// `/api/security`, and those under `/authenticate` with their full path (the token
/// endpoint is a login, tested on its own).
fn mutating_operations() -> Vec<String> {
    let doc = serde_json::to_value(gatehouse::http::openapi::document()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let rest = match path.strip_prefix("/api/security") {
            Some(rest) => rest,
            None if path.starts_with("/authenticate/") && path != "/authenticate/connect/token" => {
                path
            }
            None => continue,
        };
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_some() && rest != "/users/search" {
                ops.push(format!("{} {rest}", method.to_uppercase()));
            }
        }
    }
    ops.sort();
    ops
}

#[tokio::test]
async fn every_mutating_endpoint_writes_exactly_one_matching_event() {
    let app = TestApp::spawn().await;
    let bob = app.create_user("bob", "bob@example.com").await;
    let bob_id = id_of(&bob);
    let eve = app.create_user("eve", "eve@example.com").await;
    let eve_id = id_of(&eve);
    let ops = app.create_group("Ops").await;
    let ops_id = id_of(&ops);
    let child = app.create_group("Child").await;
    let child_id = id_of(&child);
    let key = app
        .post("/api/security/apiKeys", json!({"name": "ci"}))
        .await;
    key.expect(StatusCode::CREATED);
    let key_id = id_of(&key.body);
    let hook = app
        .post(
            "/api/security/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["user.created"]}),
        )
        .await;
    hook.expect(StatusCode::CREATED);
    let hook_id = id_of(&hook.body);
    let signed_in = app.password_grant("admin", ADMIN_PASSWORD).await;
    let refresh = signed_in.body["refresh_token"].as_str().unwrap().to_owned();

    // One line per mutating operation: the request and the event it must record.
    let table: Vec<(&str, Method, String, Option<Value>, &str)> = vec![
        (
            "POST /users",
            Method::POST,
            "/users".into(),
            Some(
                json!({"username": "carol", "email": "carol@example.com", "credentials": {"password": PASSWORD}}),
            ),
            "user.created",
        ),
        (
            "PUT /users/{user}",
            Method::PUT,
            format!("/users/{bob_id}"),
            Some(json!({"firstName": "Robert"})),
            "user.updated",
        ),
        (
            "PATCH /users/{user}",
            Method::PATCH,
            format!("/users/{bob_id}"),
            Some(json!({"lastName": "Builder"})),
            "user.updated",
        ),
        (
            "POST /users/{user}/credentials/password",
            Method::POST,
            format!("/users/{bob_id}/credentials/password"),
            Some(json!({"new": "Another-Pass-77"})),
            "user.passwordReset",
        ),
        (
            "POST /users/{user}/actions",
            Method::POST,
            format!("/users/{bob_id}/actions"),
            Some(json!({"type": "suspend"})),
            "user.suspended",
        ),
        (
            "POST /groups",
            Method::POST,
            "/groups".into(),
            Some(json!({"name": "Dev"})),
            "group.created",
        ),
        (
            "PUT /groups/{group}",
            Method::PUT,
            format!("/groups/{ops_id}"),
            Some(json!({"name": "Operations"})),
            "group.updated",
        ),
        (
            "PUT /groups/{group}/users/{user}",
            Method::PUT,
            format!("/groups/{ops_id}/users/eve"),
            None,
            "group.memberAdded",
        ),
        (
            "POST /groups/{group}/users",
            Method::POST,
            format!("/groups/{ops_id}/users"),
            Some(json!([bob_id])),
            "group.memberAdded",
        ),
        (
            "DELETE /groups/{group}/users/{user}",
            Method::DELETE,
            format!("/groups/{ops_id}/users/{eve_id}"),
            None,
            "group.memberRemoved",
        ),
        (
            "PUT /groups/{group}/groups/{child}",
            Method::PUT,
            format!("/groups/{ops_id}/groups/{child_id}"),
            None,
            "group.childAdded",
        ),
        (
            "DELETE /groups/{group}/groups/{child}",
            Method::DELETE,
            format!("/groups/{ops_id}/groups/{child_id}"),
            None,
            "group.childRemoved",
        ),
        (
            "POST /groups/{group}/groups",
            Method::POST,
            format!("/groups/{ops_id}/groups"),
            Some(json!([child_id])),
            "group.childAdded",
        ),
        (
            "DELETE /groups/{group}",
            Method::DELETE,
            format!("/groups/{child_id}"),
            None,
            "group.deleted",
        ),
        (
            "POST /apiKeys",
            Method::POST,
            "/apiKeys".into(),
            Some(json!({"name": "deploy"})),
            "apiKey.created",
        ),
        (
            "PUT /apiKeys/{id}",
            Method::PUT,
            format!("/apiKeys/{key_id}"),
            Some(json!({"enabled": false})),
            "apiKey.disabled",
        ),
        (
            "DELETE /apiKeys/{id}",
            Method::DELETE,
            format!("/apiKeys/{key_id}"),
            None,
            "apiKey.deleted",
        ),
        (
            "POST /webhooks",
            Method::POST,
            "/webhooks".into(),
            Some(json!({"url": "https://hooks.example.com/x", "eventTypes": ["*"]})),
            "webhook.created",
        ),
        (
            "PUT /webhooks/{id}",
            Method::PUT,
            format!("/webhooks/{hook_id}"),
            Some(json!({"enabled": false})),
            "webhook.updated",
        ),
        (
            "DELETE /webhooks/{id}",
            Method::DELETE,
            format!("/webhooks/{hook_id}"),
            None,
            "webhook.deleted",
        ),
        (
            "DELETE /users/{user}",
            Method::DELETE,
            format!("/users/{eve_id}"),
            None,
            "user.deleted",
        ),
        (
            "POST /authenticate/connect/revocation",
            Method::POST,
            "/authenticate/connect/revocation".into(),
            Some(json!({"token": refresh})),
            "refreshToken.revoked",
        ),
    ];

    // The table covers the route table: a new mutating endpoint without a line fails here.
    let mut covered: Vec<String> = table.iter().map(|t| t.0.to_owned()).collect();
    covered.sort();
    covered.dedup();
    assert_eq!(
        covered,
        mutating_operations(),
        "a mutating endpoint has no audit line"
    );

    for (op, method, path, body, expected) in table {
        let before = newest(&app).await.map_or(0, |e| e["id"].as_i64().unwrap());
        let admin = app.admin.clone();
        let r = if path.starts_with("/authenticate/") {
            // A form, with the admin's own refresh token: the holder acts as its user.
            let form: Vec<(String, String)> = body
                .as_ref()
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.send_raw(
                method,
                &path,
                None,
                "application/x-www-form-urlencoded",
                crate::helpers::form_body(&form).into_bytes(),
            )
            .await
        } else {
            app.send(method, &format!("/api/security{path}"), Some(&admin), body)
                .await
        };
        assert!(r.status.is_success(), "{op}: {} {}", r.status, r.body);
        let events = events_after(&app, before).await;
        assert_eq!(events.len(), 1, "{op} wrote {events:#?}");
        let e = &events[0];
        assert_eq!(e["type"], expected, "{op}");
        assert_eq!(e["actor"]["type"], "user", "{op}");
        assert_eq!(e["actor"]["name"], "admin", "{op}");
        assert!(
            e["requestId"].as_str().is_some_and(|s| !s.is_empty()),
            "{op}: {e}"
        );
        assert_eq!(e["clientAddress"], "127.0.0.1", "{op}");
    }
}

#[tokio::test]
async fn who_made_bob_an_administrator_is_answered_by_name_even_after_he_is_renamed() {
    let app = TestApp::spawn().await;
    let bob = app.create_user("bob", "bob@example.com").await;
    app.put(
        "/api/security/groups/System%20Administrators/users/bob",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.put(
        &format!("/api/security/users/{}", id_of(&bob)),
        Some(json!({"username": "robert"})),
    )
    .await
    .expect(StatusCode::OK);
    // By the user's current name, his id, and the name he had.
    for target in ["robert", id_of(&bob).as_str(), "bob"] {
        let r = app
            .get(&format!(
                "/api/security/audit?type=group.memberAdded&target={target}"
            ))
            .await;
        r.expect(StatusCode::OK);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "target={target}: {}", r.body);
        let e = &items[0];
        assert_eq!(e["target"]["userName"], "bob", "the name then");
        assert_eq!(e["target"]["groupName"], "System Administrators");
        assert_eq!(e["actor"]["name"], "admin");
    }
    // By actor, by time range and by ZenQL.
    let r = app
        .get("/api/security/audit?actor=admin&zenql=type%20%3D%20%27user.updated%27")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["summary"]["username"], "robert");
    let r = app
        .get("/api/security/audit?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 0);
}

/// How many events of a type are about dora.
async fn count(app: &TestApp, t: &str) -> i64 {
    let r = app
        .get(&format!(
            "/api/security/audit?type={t}&target=dora&pageSize=100"
        ))
        .await;
    r.expect(StatusCode::OK);
    r.body["totalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn logins_are_recorded_failures_and_lockouts_included() {
    let app = TestApp::spawn().await;
    app.create_user("dora", "dora@example.com").await;
    app.login("dora", PASSWORD).await;
    for _ in 0..5 {
        let r = app.password_grant("dora", "Wrong-Pass-99").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    app.password_grant("nobody-at-all", "Wrong-Pass-99").await;
    assert_eq!(count(&app, "login.succeeded").await, 1);
    assert_eq!(count(&app, "login.failed").await, 5);
    assert_eq!(count(&app, "login.lockedOut").await, 1);
    let r = app
        .get("/api/security/audit?type=login.failed&target=nobody-at-all")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["actor"]["type"], "anonymous");
}

#[tokio::test]
async fn no_secret_ever_reaches_the_audit_log() {
    let app = TestApp::spawn().await;
    let created = app
        .post(
            "/api/security/users",
            json!({"username": "sam", "email": "sam@example.com",
                   "credentials": {"password": "Secret-Pass-123"},
                   "custom": {"apiToken": "tok-very-secret"}}),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let sam = id_of(&created.body);
    let set = app
        .post(
            &format!("/api/security/users/{sam}/credentials/password"),
            json!({"new": "Fresher-Pass-456"}),
        )
        .await;
    assert!(set.status.is_success(), "{}", set.body);
    let key = app
        .post("/api/security/apiKeys", json!({"name": "svc"}))
        .await;
    key.expect(StatusCode::CREATED);
    let key_secret = key.body["clientSecret"].as_str().unwrap().to_owned();
    let token = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", key.body["clientId"].as_str().unwrap()),
            ("client_secret", &key_secret),
        ])
        .await;
    token.expect(StatusCode::OK);
    let hook = app
        .post(
            "/api/security/webhooks",
            json!({"url": "http://127.0.0.1:9/", "eventTypes": ["*"]}),
        )
        .await;
    hook.expect(StatusCode::CREATED);
    let hook_secret = hook.body["secret"].as_str().unwrap().to_owned();
    let refresh = app.password_grant("admin", ADMIN_PASSWORD).await;
    let refresh_token = refresh.body["refresh_token"].as_str().unwrap().to_owned();
    let log = app.get("/api/security/audit?pageSize=1000").await;
    log.expect(StatusCode::OK);
    let text = log.body.to_string();
    assert!(log.body["totalCount"].as_i64().unwrap() >= 6, "{text}");
    for secret in [
        "Secret-Pass-123",
        "Fresher-Pass-456",
        ADMIN_PASSWORD,
        "tok-very-secret",
        key_secret.as_str(),
        hook_secret.as_str(),
        refresh_token.as_str(),
        "$argon2id",
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
    // The custom key that changed is named, its value is not.
    assert!(text.contains("apiToken"));
    // The secret is shown once: not in the webhook's later views.
    let hooks = app.get("/api/security/webhooks").await;
    assert!(!hooks.body.to_string().contains(&hook_secret));
}

#[tokio::test]
async fn the_audit_log_is_for_administrators_and_refuses_bad_filters() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("mallory").await;
    for path in ["/api/security/audit", "/api/security/webhooks"] {
        let r = app.send(Method::GET, path, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_error_shape(&r.body);
    }
    for query in [
        "type=user.exploded",
        "since=yesterday",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "zenql=nosuchfield%20%3D%201",
    ] {
        let r = app.get(&format!("/api/security/audit?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_error_shape(&r.body);
    }
    for body in [
        json!({"url": "ftp://example.com/", "eventTypes": ["*"]}),
        json!({"url": "http://example.com/", "eventTypes": ["user.exploded"]}),
        json!({"url": "http://example.com/", "eventTypes": []}),
        json!({"url": "not a url", "eventTypes": ["*"]}),
    ] {
        let r = app.post("/api/security/webhooks", body.clone()).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
        assert_error_shape(&r.body);
    }
}

#[tokio::test]
async fn the_export_writes_every_event_as_a_json_line_from_the_database() {
    let app = TestApp::spawn().await;
    app.create_user("erin", "erin@example.com").await;
    app.create_group("Auditors").await;
    let total = app.get("/api/security/audit").await.body["totalCount"]
        .as_i64()
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["audit", "export", "--database", &app.database_url])
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len() as i64, total);
    let ids: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "group.created" && l["target"]["groupName"] == "Auditors")
    );
    let future = run(&["--since", "2999-01-01T00:00:00Z"]);
    assert!(future.status.success());
    assert!(future.stdout.is_empty());
    let bad = run(&["--since", "last tuesday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}
