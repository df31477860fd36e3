//! Operability over HTTP: `/metrics` (on the metrics listener), the request-id header, and the token endpoint's
//! rate limits (per client address and per username, 429 with `Retry-After`).

use reqwest::{Method, StatusCode};

use crate::helpers::*;

/// The value of the sample `name{labels}` in an OpenMetrics text, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The metrics, scraped from the management app.
async fn metrics(app: &TestApp) -> String {
    let r = app.get_metrics("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text
}

async fn wrong_login(app: &TestApp, username: &str, forwarded_for: Option<&str>) -> Resp {
    let mut req = app
        .request(Method::POST, "/authenticate/connect/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "contensis_classic"),
            ("username", username),
            ("password", "Not-The-Password-1"),
        ]));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await
}

#[track_caller]
fn assert_invalid_grant(r: &Resp) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);
}

#[track_caller]
fn assert_rate_limited(r: &Resp) -> u64 {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.body["error"], "slow_down", "{}", r.text);
    assert!(r.body["error_description"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
    let secs: u64 = r.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    secs
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_logins_by_outcome() {
    let app = TestApp::spawn_with(|c| c.lockout_threshold = 2).await;
    let user = app.create_user("counted", "counted@example.com").await;
    let id = user["id"].as_str().unwrap();
    app.login("counted", PASSWORD).await;
    app.get(&format!("/api/security/users/{id}"))
        .await
        .expect(StatusCode::OK);
    app.get("/api/security/users/nobody-here")
        .await
        .expect(StatusCode::NOT_FOUND);
    app.get("/no/such/endpoint")
        .await
        .expect(StatusCode::NOT_FOUND);
    wrong_login(&app, "counted", None).await;
    wrong_login(&app, "counted", None).await; // locks the account
    app.token(&[("grant_type", "magic")]).await;

    let text = metrics(&app).await;
    let users = r#"route="/api/security/users/{user}""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"gatehouse_http_requests_total{{method="GET",{users},status="200"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"gatehouse_http_requests_total{{method="GET",{users},status="404"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains(
            r#"gatehouse_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"gatehouse_http_request_duration_seconds_count{{method="GET",{users},status="200"}} 1"#
        )),
        "{text}"
    );
    // Ids and raw paths never become labels.
    assert!(
        !text.contains(id) && !text.contains("nobody-here"),
        "{text}"
    );
    // The test's logins are counted by outcome (the harness signed the admin in on a
    // server of its own).
    assert_eq!(
        sample(
            &text,
            r#"gatehouse_logins_total{grant="contensis_classic",outcome="success"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gatehouse_logins_total{grant="contensis_classic",outcome="invalid_grant"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gatehouse_logins_total{grant="other",outcome="unsupported_grant_type"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "gatehouse_lockouts_total"),
        Some(1.0),
        "{text}"
    );
    let pool = if on_postgres() { "main" } else { "writer" };
    let open = sample(
        &text,
        &format!(r#"gatehouse_db_pool_connections{{pool="{pool}"}}"#),
    )
    .expect("a pool gauge");
    assert!(open >= 1.0, "{text}");
    assert!(
        sample(
            &text,
            &format!(r#"gatehouse_db_pool_max_connections{{pool="{pool}"}}"#)
        )
        .is_some_and(|max| max >= open),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_need_no_token_on_their_listener_which_is_off_by_default() {
    let app = TestApp::spawn().await;
    metrics(&app).await;
    let r = app.get_metrics("/metrics/").await;
    assert_eq!(r.status, StatusCode::OK, "a trailing slash is accepted");
    // Nothing else is served there.
    for path in [
        "/health",
        "/api/security/users",
        "/authenticate/connect/token",
    ] {
        app.get_metrics(path).await.expect(StatusCode::NOT_FOUND);
    }
    let off = TestApp::spawn_with(|c| c.metrics_listen = None).await;
    assert!(!off.has_metrics());
    off.send(Method::GET, "/metrics", None, None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for (method, path) in [
        (Method::GET, "/health"),
        (Method::GET, "/health"),
        (Method::GET, "/api/security/users"),
        (Method::GET, "/no/such/endpoint"),
        (Method::POST, "/authenticate/connect/token"),
    ] {
        let r = app.send(method, path, None, None).await;
        let id = r.headers["x-request-id"].to_str().unwrap();
        let parsed = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{path}: {id}: {e}"));
        assert_eq!(parsed.get_version_num(), 4, "{path}: {id}");
        assert!(seen.insert(parsed), "{path}: {id} was given before");
    }
    // A caller's own id is kept, so it can follow the request across services.
    let r = app
        .request(Method::GET, "/health")
        .header("x-request-id", "caller-chosen-42")
        .send()
        .await;
    assert_eq!(r.headers["x-request-id"], "caller-chosen-42");
}

#[tokio::test]
async fn a_burst_of_wrong_logins_from_one_address_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.login_rate_per_ip = 1;
        c.login_burst_per_ip = 5;
    })
    .await;
    // The harness signed the admin in on a server of its own: all five are left.
    for i in 0..5 {
        assert_invalid_grant(&wrong_login(&app, &format!("nobody{i}"), None).await);
    }
    let r = wrong_login(&app, "nobody9", None).await;
    assert_rate_limited(&r);
    // Any grant from that address waits, even with the right password.
    let r = app
        .token(&[
            ("grant_type", "contensis_classic"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_rate_limited(&r);
    // X-Forwarded-For is not trusted by default: a new "address" in it changes nothing.
    assert_rate_limited(&wrong_login(&app, "nobody9", Some("203.0.113.7")).await);
    // Other endpoints are not limited.
    app.get("/api/security/users").await.expect(StatusCode::OK);

    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"gatehouse_login_rate_limited_total{limit="ip"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gatehouse_logins_total{grant="contensis_classic",outcome="rate_limited"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

#[tokio::test]
async fn with_trusted_forwarded_for_each_client_address_has_its_own_bucket() {
    let app = TestApp::spawn_with(|c| {
        c.trust_forwarded_for = true;
        c.login_rate_per_ip = 1;
        c.login_burst_per_ip = 2;
    })
    .await;
    // The last entry is the one our proxy appended; earlier ones are the client's say.
    for _ in 0..2 {
        assert_invalid_grant(&wrong_login(&app, "nobody", Some("198.51.100.1, 203.0.113.1")).await);
    }
    assert_rate_limited(&wrong_login(&app, "nobody", Some("198.51.100.2, 203.0.113.1")).await);
    assert_invalid_grant(&wrong_login(&app, "nobody", Some("203.0.113.2")).await);
}

#[tokio::test]
async fn the_per_username_limit_holds_whatever_the_address() {
    let app = TestApp::spawn_with(|c| {
        c.trust_forwarded_for = true;
        c.login_rate_per_ip = 0;
        c.login_rate_per_user = 1;
        c.login_burst_per_user = 3;
        c.lockout_threshold = 0;
    })
    .await;
    app.create_user("victim", "victim@example.com").await;
    app.create_user("bystander", "bystander@example.com").await;
    for i in 0..3 {
        assert_invalid_grant(&wrong_login(&app, "victim", Some(&format!("192.0.2.{i}"))).await);
    }
    // A fourth address, another spelling: the username's bucket is empty.
    let retry = assert_rate_limited(&wrong_login(&app, "VICTIM", Some("192.0.2.99")).await);
    assert!(retry > 1, "one request a minute: {retry}");
    // Other usernames from the same addresses are not affected.
    let r = app
        .request(Method::POST, "/authenticate/connect/token")
        .header("x-forwarded-for", "192.0.2.0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "contensis_classic"),
            ("username", "bystander"),
            ("password", PASSWORD),
        ]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"gatehouse_login_rate_limited_total{limit="user"}"#),
        Some(1.0),
        "{text}"
    );
}
