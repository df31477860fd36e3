//! The token endpoint (password grant), token validation, and the authorization matrix
//! of spec §3 over every users and groups endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "/authenticate/connect/token";
const DENIED: &str = "Authorization has been denied for this request.";

fn user_path(key: &str) -> String {
    format!("/api/security/users/{}", enc(key))
}

/// Sends a request with a literal `Authorization` header value (or none).
async fn with_authorization(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> Resp {
    let mut req = app.request(method, path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await
}

/// A password-grant login attempt.
async fn attempt(app: &TestApp, username: &str, password: &str) -> Resp {
    app.token(&[
        ("grant_type", "contensis_classic"),
        ("username", username),
        ("password", password),
    ])
    .await
}

#[track_caller]
fn assert_grant_error(r: &Resp, error: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(
        r.body.get("access_token").is_none(),
        "no token on failure: {}",
        r.text
    );
}

#[track_caller]
fn assert_denied(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
    assert!(
        r.headers.contains_key("www-authenticate"),
        "{what}: WWW-Authenticate header"
    );
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .starts_with("bearer"),
        "{what}: WWW-Authenticate names the Bearer scheme"
    );
    if !r.text.is_empty() {
        r.expect(StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["message"], DENIED, "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// The token endpoint
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn password_grant_issues_a_bearer_token() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .token(&[
            ("grant_type", "contensis_classic"),
            ("username", "tdurden"),
            ("password", PASSWORD),
            ("scope", "Security_Administrator ContentType_Read"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["access_token"].as_str().expect("access_token");
    assert!(!token.is_empty());
    assert_eq!(token.split('.').count(), 3, "a signed JWT");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "Security_Administrator ContentType_Read");
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(
        r.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    // The token works.
    let me = app
        .send(Method::GET, &user_path("@current"), Some(token), None)
        .await;
    me.expect(StatusCode::OK);
    assert_eq!(me.body["username"], "tdurden");
}

#[tokio::test]
async fn password_grant_without_scope_works() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = attempt(&app, "tdurden", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
}

#[tokio::test]
async fn password_grant_also_returns_a_refresh_token() {
    // Spec §2: `contensis_classic` "returns a refresh token too".
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = attempt(&app, "tdurden", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "refresh_token in {}",
        r.text
    );
}

#[tokio::test]
async fn the_token_lifetime_is_configurable() {
    let app = TestApp::spawn_with(|c| c.token_ttl_secs = 120).await;
    let (_, token) = app.user_with_token("tdurden").await;
    let r = attempt(&app, "tdurden", PASSWORD).await;
    assert_eq!(r.body["expires_in"], 120);
    app.clock.advance_ms(119 * 1000);
    app.send(Method::GET, &user_path("@current"), Some(&token), None)
        .await
        .expect(StatusCode::OK);
    app.clock.advance_ms(2 * 1000);
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "token past a 120 s lifetime");
}

#[tokio::test]
async fn login_by_username_or_email_in_any_case() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    for name in [
        "tdurden",
        "TDurden",
        "t.durden@fightclub.com",
        "T.DURDEN@FIGHTCLUB.COM",
    ] {
        let token = app.login(name, PASSWORD).await;
        let me = app
            .send(Method::GET, &user_path("@current"), Some(&token), None)
            .await;
        me.expect(StatusCode::OK);
        assert_eq!(me.body["id"], user["id"], "{name}");
    }
    // The password itself is case-sensitive.
    let r = attempt(&app, "tdurden", &PASSWORD.to_uppercase()).await;
    assert_grant_error(&r, "invalid_grant");
}

#[tokio::test]
async fn the_bootstrap_admin_logs_in_by_email() {
    let app = TestApp::spawn().await;
    let token = app.login("admin@localhost", ADMIN_PASSWORD).await;
    let r = app
        .send(Method::GET, "/api/security/users", Some(&token), None)
        .await;
    r.expect(StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_byte_identical_invalid_grant() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let wrong = attempt(&app, "tdurden", "Wrong-Pass-42").await;
    assert_grant_error(&wrong, "invalid_grant");
    let unknown = attempt(&app, "nobody", "Wrong-Pass-42").await;
    assert_grant_error(&unknown, "invalid_grant");
    let unknown_email = attempt(&app, "nobody@example.com", PASSWORD).await;
    assert_grant_error(&unknown_email, "invalid_grant");
    assert_eq!(wrong.text, unknown.text, "bodies must not reveal the user");
    assert_eq!(wrong.text, unknown_email.text);
    assert_eq!(
        wrong.headers.get("cache-control"),
        unknown.headers.get("cache-control")
    );
    assert_eq!(
        wrong
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(!wrong.text.contains("tdurden"));
    assert!(!unknown.text.contains("nobody"));
}

#[tokio::test]
async fn missing_parameters_are_invalid_request() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    for form in [
        vec![("grant_type", "contensis_classic"), ("password", PASSWORD)],
        vec![
            ("grant_type", "contensis_classic"),
            ("username", ""),
            ("password", PASSWORD),
        ],
        vec![("grant_type", "contensis_classic"), ("username", "tdurden")],
        vec![("username", "tdurden"), ("password", PASSWORD)],
        vec![],
    ] {
        let r = app.token(&form).await;
        assert_grant_error(&r, "invalid_request");
        assert_eq!(
            r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
    }
}

#[tokio::test]
async fn unknown_grant_types_are_unsupported_grant_type() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    for grant in [
        "authorization_code",
        "implicit",
        "nonsense",
        "CONTENSIS_CLASSIC",
    ] {
        let r = app
            .token(&[
                ("grant_type", grant),
                ("username", "tdurden"),
                ("password", PASSWORD),
            ])
            .await;
        assert_grant_error(&r, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn garbage_token_requests_are_400_not_500() {
    let app = TestApp::spawn().await;
    for (content_type, body) in [
        (
            "application/json",
            br#"{"grant_type": "contensis_classic", "username": "admin"}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, b'=', 0x00],
        ),
        ("application/x-www-form-urlencoded", b"&&&===&".to_vec()),
        ("text/plain", b"hello".to_vec()),
    ] {
        let r = app
            .send_raw(Method::POST, TOKEN, None, content_type, body)
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{content_type}: {}",
            r.text
        );
        assert!(r.body["error"].is_string(), "{}", r.text);
    }
}

#[tokio::test]
async fn a_suspended_user_gets_invalid_grant_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/security/users?suspended=true",
        json!({"username": "marla", "email": "marla@example.com", "credentials": {"password": PASSWORD}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let r = attempt(&app, "marla", PASSWORD).await;
    assert_grant_error(&r, "invalid_grant");
    // Same body as a wrong password for an unknown user.
    let unknown = attempt(&app, "nobody", PASSWORD).await;
    assert_eq!(r.text, unknown.text);
}

#[tokio::test]
async fn a_user_who_must_reset_their_password_gets_invalid_grant() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/security/users?forcePasswordReset=true",
        json!({"username": "bob", "email": "bob@example.com", "credentials": {"password": PASSWORD}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let r = attempt(&app, "bob", PASSWORD).await;
    assert_grant_error(&r, "invalid_grant");
}

#[tokio::test]
async fn a_user_without_a_password_cannot_log_in() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/security/users",
        json!({"username": "imported", "email": "imported@example.com"}),
    )
    .await
    .expect(StatusCode::CREATED);
    for password in ["", "anything", PASSWORD] {
        let r = attempt(&app, "imported", password).await;
        assert_grant_error(&r, "invalid_grant");
    }
    let r = app.get(&user_path("imported")).await;
    assert_eq!(r.body["passwordChanged"], Value::Null);
}

#[tokio::test]
async fn an_expired_account_gets_invalid_grant_and_its_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let expiry =
        gatehouse::clock::format_rfc3339(gatehouse::clock::Clock::now_ms(&app.clock) + 60_000);
    app.patch(&user_path("tdurden"), json!({ "expiry": expiry }))
        .await
        .expect(StatusCode::OK);
    app.login("tdurden", PASSWORD).await;
    app.clock.advance_ms(60_001);
    let r = attempt(&app, "tdurden", PASSWORD).await;
    assert_grant_error(&r, "invalid_grant");
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "token of an expired account");
}

#[tokio::test]
async fn login_updates_last_login_and_success_counter() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.clock.advance_ms(10_000);
    let at = gatehouse::clock::format_rfc3339(gatehouse::clock::Clock::now_ms(&app.clock));
    app.login("tdurden", PASSWORD).await;
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["lastLogin"], at);
    assert_eq!(u["successfulLoginAttempts"], 1);
    assert_eq!(u["failedLoginAttempts"], 0);
    assert_eq!(u["lastFailedLogin"], Value::Null);
    app.clock.advance_ms(10_000);
    app.login("t.durden@fightclub.com", PASSWORD).await;
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["successfulLoginAttempts"], 2);
    assert_ne!(u["lastLogin"], at);
    // A login is not a profile change.
    let created = app.get(&user_path("tdurden")).await.body["created"].clone();
    assert_eq!(u["modified"], created);
}

#[tokio::test]
async fn failed_logins_are_counted_and_reset_by_success() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.clock.advance_ms(1_000);
    let at = gatehouse::clock::format_rfc3339(gatehouse::clock::Clock::now_ms(&app.clock));
    for _ in 0..2 {
        assert_grant_error(
            &attempt(&app, "tdurden", "Wrong-Pass-1").await,
            "invalid_grant",
        );
    }
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["failedLoginAttempts"], 2);
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 2);
    assert_eq!(u["lastFailedLogin"], at);
    assert_eq!(u["successfulLoginAttempts"], 0);
    assert_eq!(u["lastLogin"], Value::Null);
    assert_eq!(u["status"]["locked"], false);
    app.login("tdurden", PASSWORD).await;
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["failedLoginAttempts"], 2, "all-time count stays");
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 0);
    assert_eq!(u["successfulLoginAttempts"], 1);
    // Failures by email count against the same user.
    attempt(&app, "T.Durden@fightclub.com", "nope").await;
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["failedLoginAttempts"], 3);
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 1);
}

#[tokio::test]
async fn five_failures_in_a_row_lock_the_account() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    for i in 1..=4 {
        assert_grant_error(
            &attempt(&app, "tdurden", "Wrong-Pass-1").await,
            "invalid_grant",
        );
        let u = app.get(&user_path("tdurden")).await.body.clone();
        assert_eq!(u["status"]["locked"], false, "after {i} failures");
    }
    assert_grant_error(
        &attempt(&app, "tdurden", "Wrong-Pass-1").await,
        "invalid_grant",
    );
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["status"]["locked"], true);
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 5);
    // Now even the right password fails, with the same body as any failure.
    let right = attempt(&app, "tdurden", PASSWORD).await;
    assert_grant_error(&right, "invalid_grant");
    let unknown = attempt(&app, "nobody", PASSWORD).await;
    assert_eq!(right.text, unknown.text);
    // And tokens issued before the lock stop working.
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "token of a locked user");
    // The administrator is unaffected.
    app.get(&user_path("tdurden")).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn a_success_in_between_restarts_the_lockout_count() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    for _ in 0..4 {
        attempt(&app, "tdurden", "Wrong-Pass-1").await;
    }
    app.login("tdurden", PASSWORD).await;
    for _ in 0..4 {
        attempt(&app, "tdurden", "Wrong-Pass-1").await;
    }
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["status"]["locked"], false);
    assert_eq!(u["failedLoginAttempts"], 8);
    app.login("tdurden", PASSWORD).await;
}

#[tokio::test]
async fn concurrent_failed_logins_are_all_counted() {
    let app = TestApp::spawn_with(|c| c.lockout_threshold = 0).await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let results = crate::users::join_all(
        (0..8)
            .map(|_| attempt(&app, "tdurden", "Wrong-Pass-1"))
            .collect(),
    )
    .await;
    for r in &results {
        assert_grant_error(r, "invalid_grant");
    }
    let u = app.get(&user_path("tdurden")).await.body.clone();
    assert_eq!(u["failedLoginAttempts"], 8);
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 8);
    // Threshold 0 means never lock.
    assert_eq!(u["status"]["locked"], false);
    app.login("tdurden", PASSWORD).await;
}

#[tokio::test]
async fn the_lockout_threshold_is_configurable() {
    let app = TestApp::spawn_with(|c| c.lockout_threshold = 3).await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    for _ in 0..2 {
        attempt(&app, "tdurden", "Wrong-Pass-1").await;
    }
    assert_eq!(
        app.get(&user_path("tdurden")).await.body["status"]["locked"],
        false
    );
    attempt(&app, "tdurden", "Wrong-Pass-1").await;
    assert_eq!(
        app.get(&user_path("tdurden")).await.body["status"]["locked"],
        true
    );
    assert_grant_error(&attempt(&app, "tdurden", PASSWORD).await, "invalid_grant");
}

#[tokio::test]
async fn failed_logins_for_unknown_users_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.get("/api/security/users").await.body.clone();
    for _ in 0..6 {
        attempt(&app, "nobody", "Wrong-Pass-1").await;
    }
    assert_eq!(app.get("/api/security/users").await.body, before);
}

// ---------------------------------------------------------------------------------------
// Public endpoints
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn health_and_discovery_need_no_token() {
    // Served: the JWKS is fetched where the document says it is.
    let app = TestApp::serve().await;
    let r = with_authorization(&app, Method::GET, "/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = with_authorization(&app, Method::GET, "/ready", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = with_authorization(
        &app,
        Method::GET,
        "/authenticate/.well-known/openid-configuration",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token_endpoint = r.body["token_endpoint"].as_str().expect("token_endpoint");
    assert!(token_endpoint.ends_with(TOKEN), "{token_endpoint}");
    let jwks_uri = r.body["jwks_uri"].as_str().expect("jwks_uri").to_owned();
    assert!(r.body["issuer"].is_string());
    let jwks = Resp::from(app.http.get(&jwks_uri).send().await.expect("jwks")).await;
    assert_eq!(jwks.status, StatusCode::OK, "{jwks_uri}: {}", jwks.text);
    let keys = jwks.body["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k["kid"].is_string()));
    assert!(!jwks.text.contains("\"d\""), "no private key material");
    // Garbage credentials on public endpoints do not turn them into 401s.
    let r = with_authorization(&app, Method::GET, "/health", Some("Bearer garbage")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .send_raw(
            Method::POST,
            TOKEN,
            Some("garbage"),
            "application/x-www-form-urlencoded",
            format!(
                "grant_type=contensis_classic&username=admin&password={}",
                enc(ADMIN_PASSWORD)
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

// ---------------------------------------------------------------------------------------
// 401: missing, malformed, expired and revoked tokens
// ---------------------------------------------------------------------------------------

/// Every users and groups endpoint, with a valid body where one is needed.
fn all_endpoints(user: &str, group: &str, child: &str) -> Vec<(Method, String, Option<Value>)> {
    let u = enc(user);
    let g = enc(group);
    let c = enc(child);
    vec![
        (Method::GET, "/users".into(), None),
        (
            Method::POST,
            "/users".into(),
            Some(json!({"username": "newbie", "email": "newbie@example.com"})),
        ),
        (Method::GET, format!("/users/{u}"), None),
        (
            Method::PUT,
            format!("/users/{u}"),
            Some(json!({"firstName": "X"})),
        ),
        (
            Method::PATCH,
            format!("/users/{u}"),
            Some(json!({"firstName": "Y"})),
        ),
        (Method::GET, format!("/users/{u}/groups"), None),
        (Method::HEAD, format!("/users/{u}/groups/{g}"), None),
        (Method::GET, "/groups".into(), None),
        (
            Method::POST,
            "/groups".into(),
            Some(json!({"name": "Newbies"})),
        ),
        (Method::GET, format!("/groups/{g}"), None),
        (
            Method::PUT,
            format!("/groups/{g}"),
            Some(json!({"description": "changed"})),
        ),
        (Method::GET, format!("/groups/{g}/users"), None),
        (
            Method::POST,
            format!("/groups/{g}/users"),
            Some(json!([user])),
        ),
        (Method::PUT, format!("/groups/{g}/users/{u}"), None),
        (Method::HEAD, format!("/groups/{g}/users/{u}"), None),
        (Method::DELETE, format!("/groups/{g}/users/{u}"), None),
        (Method::GET, format!("/groups/{g}/groups"), None),
        (
            Method::POST,
            format!("/groups/{g}/groups"),
            Some(json!([child])),
        ),
        (Method::PUT, format!("/groups/{g}/groups/{c}"), None),
        (Method::DELETE, format!("/groups/{g}/groups/{c}"), None),
        (Method::DELETE, format!("/users/{u}"), None),
        (Method::DELETE, format!("/groups/{g}"), None),
    ]
}

async fn send_json(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = app.request(method, path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await
}

#[tokio::test]
async fn every_endpoint_is_401_without_a_valid_token() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_group("Project Mayhem").await;
    app.create_group("Space Monkeys").await;
    let before_users = app.get("/api/security/users").await.body.clone();
    let before_groups = app.get("/api/security/groups").await.body.clone();
    let other = TestApp::spawn_separate().await;
    let foreign = other.admin.clone();
    let foreign_header = format!("Bearer {foreign}");
    // Flip a character in the middle of the signature (the last one may only carry
    // padding bits).
    let mut tampered: Vec<char> = app.admin.chars().collect();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let tampered_header = format!("Bearer {tampered}");
    let admin_basic = format!("Basic {}", enc("admin:Admin-Pass-123"));
    let bare = app.admin.clone();
    let authorizations: Vec<(&str, Option<&str>)> = vec![
        ("no header", None),
        ("empty header", Some("")),
        ("scheme only", Some("Bearer")),
        ("scheme and space", Some("Bearer ")),
        ("garbage token", Some("Bearer garbage")),
        ("three garbage parts", Some("Bearer aaa.bbb.ccc")),
        ("token of another installation", Some(&foreign_header)),
        ("tampered signature", Some(&tampered_header)),
        ("basic scheme", Some(&admin_basic)),
        ("token without scheme", Some(&bare)),
    ];
    for prefix in ["/api/security", "/api/management/security"] {
        for (method, path, body) in all_endpoints("tdurden", "Project Mayhem", "Space Monkeys") {
            for (what, authorization) in &authorizations {
                let full = format!("{prefix}{path}");
                let r = send_json(&app, method.clone(), &full, *authorization, body.as_ref()).await;
                assert_denied(&r, &format!("{method} {full} with {what}"));
            }
        }
    }
    // Nothing changed.
    assert_eq!(app.get("/api/security/users").await.body, before_users);
    assert_eq!(app.get("/api/security/groups").await.body, before_groups);
}

#[tokio::test]
async fn the_401_body_is_the_error_envelope_with_the_standard_message() {
    let app = TestApp::spawn().await;
    let r = with_authorization(&app, Method::GET, "/api/security/users", None).await;
    r.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["message"], DENIED);
    assert_eq!(r.body["type"], "error");
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    // HEAD: no body, same status and header.
    let r = with_authorization(
        &app,
        Method::HEAD,
        "/api/security/users/admin/groups/System%20Administrators",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.is_empty());
    assert!(r.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = with_authorization(
            &app,
            Method::GET,
            "/api/security/users/@current",
            Some(&format!("{scheme} {}", app.admin)),
        )
        .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["username"], "admin", "{scheme}");
    }
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let mut app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.clock.advance_ms(3599 * 1000);
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    r.expect(StatusCode::OK);
    app.clock.advance_ms(2 * 1000);
    for t in [token.clone(), app.admin.clone()] {
        for path in [
            user_path("@current"),
            "/api/security/users".into(),
            "/api/security/groups".into(),
        ] {
            let r = app.send(Method::GET, &path, Some(&t), None).await;
            assert_denied(&r, &format!("expired token on {path}"));
        }
    }
    // Logging in again gives a fresh token.
    app.admin = app.login("admin", ADMIN_PASSWORD).await;
    app.get("/api/security/users").await.expect(StatusCode::OK);
    let fresh = app.login("tdurden", PASSWORD).await;
    app.send(Method::GET, &user_path("@current"), Some(&fresh), None)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_users_token_is_401() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.send(Method::GET, &user_path("@current"), Some(&token), None)
        .await
        .expect(StatusCode::OK);
    app.delete(&user_path("tdurden"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "token of a deleted user");
    // Even when someone new takes the name.
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "token of a deleted user whose name was reused");
}

#[tokio::test]
async fn a_user_who_deletes_themself_loses_their_token() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.send(Method::DELETE, &user_path("@current"), Some(&token), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    assert_denied(&r, "after self-deletion");
    app.get(&user_path("tdurden"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------
// 403: what a standard user may and may not do
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_standard_user_may_read_and_update_themself() {
    let app = TestApp::spawn().await;
    let (me, token) = app.user_with_token("tdurden").await;
    let t = Some(token.as_str());
    for key in [
        "tdurden".to_owned(),
        "@current".to_owned(),
        "@Current".to_owned(),
        "tdurden@example.com".to_owned(),
        me["id"].as_str().unwrap().to_owned(),
    ] {
        let r = app.send(Method::GET, &user_path(&key), t, None).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], me["id"], "{key}");
    }
    let r = app
        .send(
            Method::PUT,
            &user_path("@current"),
            t,
            Some(json!({"firstName": "Tyler"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "Tyler");
    let r = app
        .send_raw(
            Method::PATCH,
            &user_path("tdurden"),
            t,
            "application/merge-patch+json; charset=utf-8",
            json!({"lastName": "Durden", "custom": {"soap": true}})
                .to_string()
                .into_bytes(),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["lastName"], "Durden");
    assert_eq!(r.body["custom"], json!({"soap": true}));
    // Via the management prefix as well.
    let r = app
        .send(
            Method::GET,
            "/api/management/security/users/@current/",
            t,
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    // The npm client sends the whole fetched object back: fine, status etc. are ignored.
    let mut whole = r.body.clone();
    whole["firstName"] = json!("T.");
    whole["status"]["suspended"] = json!(true);
    let r = app
        .send(Method::PUT, &user_path("@current"), t, Some(whole))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "T.");
    assert_eq!(r.body["status"]["suspended"], false);
}

#[tokio::test]
async fn a_standard_user_may_delete_themself() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.send(Method::DELETE, &user_path("tdurden"), Some(&token), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get(&user_path("tdurden"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_standard_user_cannot_touch_other_users() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let marla = app.create_user("marla", "marla@example.com").await;
    let t = Some(token.as_str());
    let marla_before = app.get(&user_path("marla")).await.body.clone();
    let admin_before = app.get(&user_path("admin")).await.body.clone();
    let count_before = app.get("/api/security/users").await.body["totalCount"].clone();
    for key in [
        "marla",
        "MARLA@example.com",
        marla["id"].as_str().unwrap(),
        "admin",
        "admin@localhost",
    ] {
        let p = user_path(key);
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(json!({"firstName": "Hacked"}))),
            (Method::PATCH, Some(json!({"firstName": "Hacked"}))),
            (Method::DELETE, None),
        ] {
            let r = app.send(method.clone(), &p, t, body).await;
            r.expect(StatusCode::FORBIDDEN);
            assert_ne!(r.body["message"], DENIED);
            assert!(!r.text.contains("Hacked"));
        }
        let r = app.send(Method::GET, &format!("{p}/groups"), t, None).await;
        r.expect(StatusCode::FORBIDDEN);
        let r = app
            .send(
                Method::HEAD,
                &format!("{p}/groups/System%20Administrators"),
                t,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "HEAD {p}/groups/...");
    }
    for path in [
        "/api/security/users",
        "/api/security/users?q=marla",
        "/api/management/security/users/",
    ] {
        let r = app.send(Method::GET, path, t, None).await;
        r.expect(StatusCode::FORBIDDEN);
        assert!(!r.text.contains("marla"), "{path} leaks users");
    }
    let r = app
        .send(
            Method::POST,
            "/api/security/users",
            t,
            Some(json!({"username": "sock", "email": "sock@example.com"})),
        )
        .await;
    r.expect(StatusCode::FORBIDDEN);
    assert_eq!(app.get(&user_path("marla")).await.body, marla_before);
    assert_eq!(app.get(&user_path("admin")).await.body, admin_before);
    assert_eq!(
        app.get("/api/security/users").await.body["totalCount"],
        count_before
    );
}

#[tokio::test]
async fn a_standard_user_probing_unknown_users_gets_403_not_404() {
    // Spec §3: everything but their own user is 403 for a non-admin, so a 404 here would
    // tell a standard user which usernames and emails exist.
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let t = Some(token.as_str());
    for key in ["nobody", "nobody@example.com"] {
        let p = user_path(key);
        for (method, path) in [
            (Method::GET, p.clone()),
            (Method::DELETE, p.clone()),
            (Method::GET, format!("{p}/groups")),
        ] {
            let r = app.send(method.clone(), &path, t, None).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {}",
                r.text
            );
        }
        let r = app
            .send(Method::PATCH, &p, t, Some(json!({"firstName": "X"})))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "PATCH {p}: {}", r.text);
    }
}

#[tokio::test]
async fn a_standard_user_cannot_change_their_own_expiry_or_password_change_frequency() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let t = Some(token.as_str());
    app.patch(
        &user_path("tdurden"),
        json!({"expiry": "2099-01-01T00:00:00Z", "credentials": {"passwordChangeFrequency": 30}}),
    )
    .await
    .expect(StatusCode::OK);
    let before = app.get(&user_path("tdurden")).await.body.clone();
    for body in [
        json!({"expiry": "2098-01-01T00:00:00Z"}),
        json!({"expiry": "2100-01-01T00:00:00.000Z"}),
        json!({"expiry": null}),
        json!({"credentials": {"passwordChangeFrequency": 0}}),
        json!({"credentials": {"passwordChangeFrequency": 365}}),
        json!({"Credentials": {"PASSWORDCHANGEFREQUENCY": 1}}),
        json!({"firstName": "Sneaky", "expiry": null}),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let r = app
                .send(
                    method.clone(),
                    &user_path("@current"),
                    t,
                    Some(body.clone()),
                )
                .await;
            r.expect(StatusCode::FORBIDDEN);
        }
    }
    assert_eq!(app.get(&user_path("tdurden")).await.body, before);
    // Sending them back unchanged is fine (in the same or another notation of the instant).
    for body in [
        json!({"firstName": "Tyler", "expiry": before["expiry"].clone(),
               "credentials": {"passwordChangeFrequency": 30}}),
        json!({"expiry": "2099-01-01T01:00:00+01:00"}),
        before.clone(),
    ] {
        let r = app
            .send(Method::PUT, &user_path("@current"), t, Some(body.clone()))
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["expiry"], "2099-01-01T00:00:00.000Z", "{body}");
        assert_eq!(r.body["credentials"]["passwordChangeFrequency"], 30);
    }
}

#[tokio::test]
async fn a_standard_user_cannot_set_an_expiry_where_there_was_none() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let r = app
        .send(
            Method::PATCH,
            &user_path("@current"),
            Some(&token),
            Some(json!({"expiry": "2099-01-01T00:00:00Z"})),
        )
        .await;
    r.expect(StatusCode::FORBIDDEN);
    // null where there is none is "unchanged".
    let r = app
        .send(
            Method::PATCH,
            &user_path("@current"),
            Some(&token),
            Some(json!({"expiry": null, "credentials": {"passwordChangeFrequency": 0}})),
        )
        .await;
    r.expect(StatusCode::OK);
}

#[tokio::test]
async fn a_standard_user_may_see_their_own_groups_and_membership_only() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.create_user("marla", "marla@example.com").await;
    app.create_group("Project Mayhem").await;
    app.create_group("Fight Club").await;
    for u in ["tdurden", "marla"] {
        app.put(
            &format!("/api/security/groups/Project%20Mayhem/users/{u}"),
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    }
    let t = Some(token.as_str());
    for key in ["tdurden", "@current"] {
        let r = app
            .send(Method::GET, &format!("{}/groups", user_path(key)), t, None)
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 1);
        assert_eq!(r.body["items"][0]["name"], "Project Mayhem");
        let r = app
            .send(
                Method::HEAD,
                &format!("{}/groups/Project%20Mayhem", user_path(key)),
                t,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{key}");
        let r = app
            .send(
                Method::HEAD,
                &format!("{}/groups/Fight%20Club", user_path(key)),
                t,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{key}");
        let r = app
            .send(
                Method::HEAD,
                &format!("/api/security/groups/Project%20Mayhem/users/{key}"),
                t,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{key}");
        let r = app
            .send(
                Method::HEAD,
                &format!("/api/security/groups/Fight%20Club/users/{key}"),
                t,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{key}");
    }
    // Someone else's groups and membership: 403.
    let r = app
        .send(Method::GET, "/api/security/users/marla/groups", t, None)
        .await;
    r.expect(StatusCode::FORBIDDEN);
    for path in [
        "/api/security/users/marla/groups/Project%20Mayhem",
        "/api/security/groups/Project%20Mayhem/users/marla",
        "/api/security/groups/Project%20Mayhem/users/admin",
    ] {
        let r = app.send(Method::HEAD, path, t, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "HEAD {path}");
    }
}

#[tokio::test]
async fn a_standard_user_is_refused_every_group_endpoint() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.create_user("marla", "marla@example.com").await;
    app.create_group("Project Mayhem").await;
    app.create_group("Space Monkeys").await;
    app.put("/api/security/groups/Project%20Mayhem/users/marla", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let groups_before = app.get("/api/security/groups").await.body.clone();
    let members_before = app
        .get("/api/security/groups/Project%20Mayhem/users")
        .await
        .body
        .clone();
    let t = Some(token.as_str());
    for prefix in ["/api/security", "/api/management/security"] {
        for (method, path, body) in all_endpoints("marla", "Project Mayhem", "Space Monkeys") {
            if !path.starts_with("/groups") {
                continue;
            }
            let full = format!("{prefix}{path}");
            let r = app.send(method.clone(), &full, t, body).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {full}: {}",
                r.text
            );
            if method != Method::HEAD {
                r.expect(StatusCode::FORBIDDEN);
            }
        }
        // Not even to put themself into a group, or into System Administrators.
        for path in [
            "/groups/Project%20Mayhem/users/@current",
            "/groups/System%20Administrators/users/tdurden",
            "/groups/System%20Administrators/users/@current",
        ] {
            let full = format!("{prefix}{path}");
            let r = app.send(Method::PUT, &full, t, None).await;
            r.expect(StatusCode::FORBIDDEN);
        }
        let r = app
            .send(
                Method::POST,
                &format!("{prefix}/groups/System%20Administrators/users"),
                t,
                Some(json!(["tdurden"])),
            )
            .await;
        r.expect(StatusCode::FORBIDDEN);
        let r = app
            .send(
                Method::GET,
                &format!("{prefix}/groups/System%20Administrators"),
                t,
                None,
            )
            .await;
        r.expect(StatusCode::FORBIDDEN);
    }
    assert_eq!(app.get("/api/security/groups").await.body, groups_before);
    assert_eq!(
        app.get("/api/security/groups/Project%20Mayhem/users")
            .await
            .body,
        members_before
    );
    let r = app
        .send(Method::GET, "/api/security/users/@current/groups", t, None)
        .await;
    assert_eq!(r.body["totalCount"], 0, "still in no group");
}

// ---------------------------------------------------------------------------------------
// Administrators
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_bootstrap_admin_is_in_system_administrators() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/security/users/admin/groups").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 1);
    assert_eq!(r.body["items"][0]["name"], "System Administrators");
    assert_eq!(r.body["items"][0]["type"], "sys");
    let r = app
        .get("/api/security/groups/System%20Administrators")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["type"], "sys");
    assert_eq!(r.body["userCount"], 1);
    app.head("/api/security/groups/System%20Administrators/users/admin@localhost")
        .await
        .expect(StatusCode::NO_CONTENT);
    app.head("/api/security/users/@current/groups/System%20Administrators")
        .await
        .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_admin_may_call_every_endpoint() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_group("Project Mayhem").await;
    app.create_group("Space Monkeys").await;
    let expected = |method: &Method, path: &str| -> StatusCode {
        match (method.as_str(), path) {
            ("POST", "/users") | ("POST", "/groups") => StatusCode::CREATED,
            ("GET", _) | ("PUT", "/users/tdurden") | ("PATCH", _) => StatusCode::OK,
            ("PUT", p) if !p.contains("/users/") && !p.contains("/groups/Project%20Mayhem/") => {
                StatusCode::OK
            }
            // HEAD /users/tdurden/groups/... before the user is added: not a member.
            ("HEAD", "/users/tdurden/groups/Project%20Mayhem") => StatusCode::NOT_FOUND,
            _ => StatusCode::NO_CONTENT,
        }
    };
    for (method, path, body) in all_endpoints("tdurden", "Project Mayhem", "Space Monkeys") {
        let full = format!("/api/security{path}");
        let r = app
            .send(method.clone(), &full, Some(&app.admin.clone()), body)
            .await;
        let want = expected(&method, &path);
        assert_eq!(r.status, want, "{method} {full}: {}", r.text);
    }
    // Everything created or deleted as expected.
    app.get("/api/security/users/newbie")
        .await
        .expect(StatusCode::OK);
    app.get("/api/security/groups/Newbies")
        .await
        .expect(StatusCode::OK);
    app.get("/api/security/users/tdurden")
        .await
        .expect(StatusCode::NOT_FOUND);
    app.get("/api/security/groups/Project%20Mayhem")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn membership_in_a_child_group_of_system_administrators_makes_an_admin() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    let t = Some(token.as_str());
    app.send(Method::GET, "/api/security/users", t, None)
        .await
        .expect(StatusCode::FORBIDDEN);
    app.create_group("Deputies").await;
    app.put(
        "/api/security/groups/System%20Administrators/groups/Deputies",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.put("/api/security/groups/Deputies/users/tdurden", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    // The same token is now an administrator's.
    app.send(Method::GET, "/api/security/users", t, None)
        .await
        .expect(StatusCode::OK);
    app.send(Method::GET, "/api/security/groups", t, None)
        .await
        .expect(StatusCode::OK);
    app.send(Method::GET, "/api/security/users/admin", t, None)
        .await
        .expect(StatusCode::OK);
    // And loses it when the link goes.
    app.delete("/api/security/groups/System%20Administrators/groups/Deputies")
        .await
        .expect(StatusCode::NO_CONTENT);
    app.send(Method::GET, "/api/security/users", t, None)
        .await
        .expect(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_second_direct_admin_can_manage_users_and_the_first_admin() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("tdurden").await;
    app.put(
        "/api/security/groups/System%20Administrators/users/tdurden",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let t = Some(token.as_str());
    let r = app
        .send(
            Method::PATCH,
            "/api/security/users/admin",
            t,
            Some(json!({"firstName": "Root"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "Root");
    // An admin may change their own expiry.
    let r = app
        .send(
            Method::PATCH,
            "/api/security/users/@current",
            t,
            Some(json!({"expiry": "2099-01-01T00:00:00Z"})),
        )
        .await;
    r.expect(StatusCode::OK);
    // With two admins, one may be deleted.
    app.send(Method::DELETE, "/api/security/users/admin", t, None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = app
        .send(Method::GET, "/api/security/users/admin", t, None)
        .await;
    r.expect(StatusCode::NOT_FOUND);
}

/// The authenticated caller is cached for a moment; every change made through this node
/// must still take effect on the very next request: admin rights granted and taken away
/// directly, through a child group, and by removing that child link.
#[tokio::test]
async fn admin_rights_change_at_the_next_request_despite_the_caller_cache() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("rising").await;
    let admin = app.admin.clone();
    let list_as_user = || app.send(Method::GET, "/api/security/users", Some(&token), None);
    // Warm the cache with the user as a non-admin.
    assert_eq!(list_as_user().await.status, StatusCode::FORBIDDEN);
    assert_eq!(list_as_user().await.status, StatusCode::FORBIDDEN);

    app.create_group("Deputies").await;
    const ADMINS: &str = "/api/security/groups/System%20Administrators";
    // Each change by the admin, then what the user's very next request gets. The last
    // three go through a child group: the user's own memberships do not change there,
    // the graph does.
    let steps = [
        (
            Method::PUT,
            format!("{ADMINS}/users/rising"),
            StatusCode::OK,
            "granted",
        ),
        (
            Method::DELETE,
            format!("{ADMINS}/users/rising"),
            StatusCode::FORBIDDEN,
            "revoked",
        ),
        (
            Method::PUT,
            "/api/security/groups/Deputies/users/rising".to_owned(),
            StatusCode::FORBIDDEN,
            "in a group outside",
        ),
        (
            Method::PUT,
            format!("{ADMINS}/groups/Deputies"),
            StatusCode::OK,
            "via the child",
        ),
        (
            Method::DELETE,
            format!("{ADMINS}/groups/Deputies"),
            StatusCode::FORBIDDEN,
            "link removed",
        ),
    ];
    for (method, path, expected, what) in steps {
        app.send(method, &path, Some(&admin), None)
            .await
            .expect(StatusCode::NO_CONTENT);
        assert_eq!(list_as_user().await.status, expected, "{what}");
    }
}

/// With the cache off, nothing is remembered between requests; the setting is capped at
/// the spec's two seconds.
#[tokio::test]
async fn the_caller_cache_can_be_turned_off_and_is_capped() {
    let app = TestApp::spawn_with(|c| c.caller_cache_ms = 0).await;
    let (_, token) = app.user_with_token("plain").await;
    let me = || {
        app.send(
            Method::GET,
            "/api/security/users/@current",
            Some(&token),
            None,
        )
    };
    assert_eq!(me().await.status, StatusCode::OK);
    app.post(
        "/api/security/users/plain/actions",
        json!({"type": "suspend"}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_eq!(me().await.status, StatusCode::UNAUTHORIZED);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--print-config", "--caller-cache-ms", "2001"])
        .output()
        .expect("gatehouse runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("caller-cache-ms"), "{err}");
}
