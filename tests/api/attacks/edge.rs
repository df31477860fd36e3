//! Attacks at the HTTP edge: content types, request ids, metrics, forged hosts, oversized input.
//!
//! Each test sends what an attacker (or a confused client) would and checks the edge
//! holds: bodies that are not JSON are refused before any handler reads them, client
//! request ids cannot forge log lines, query inputs are bounded, the discovery document
//! and the tokens' `iss` ignore the request's `Host` and `X-Forwarded-*` headers, and an
//! error about a wrongly typed property never repeats its value (a password typed into
//! the wrong field must not reach the logs).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

const USERS: &str = "/api/security/users";
const TOKEN: &str = "/authenticate/connect/token";
const DISCOVERY: &str = "/authenticate/.well-known/openid-configuration";

/// The admin's login form, URL-encoded.
fn admin_form() -> String {
    format!(
        "grant_type=contensis_classic&username=admin&password={}",
        enc(ADMIN_PASSWORD)
    )
}

/// A user body a create would accept.
fn new_user(name: &str) -> Value {
    json!({"username": name, "email": format!("{name}@example.com"),
           "credentials": {"password": PASSWORD}})
}

/// Sends `request` (head and body, exactly as given) over a fresh connection and returns
/// the response's head and body. For what a client library would not send: a forged
/// `Host`, a chunked body. `app` is served ([`TestApp::serve`]).
async fn raw(app: &TestApp, request: &str) -> (String, String) {
    let addr = app.base().trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    (head.to_owned(), body.to_owned())
}

// ---- 415: bodies that are not JSON ----

#[tokio::test]
async fn a_json_body_sent_as_text_or_without_a_type_is_415_and_changes_nothing() {
    // Served: chunked bodies go over a raw connection.
    let app = TestApp::serve().await;
    let body = serde_json::to_vec(&new_user("smuggled")).unwrap();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
    ] {
        for prefix in ["/api/security", "/api/management/security"] {
            let r = app
                .send_raw(
                    Method::POST,
                    &format!("{prefix}/users"),
                    Some(&app.admin),
                    content_type,
                    body.clone(),
                )
                .await;
            r.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(
                r.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{content_type}: {}",
                r.text
            );
        }
    }
    // No content type at all, with a body.
    let r = Resp::from(
        app.http
            .post(app.url(USERS))
            .bearer_auth(&app.admin)
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Also where the handler reads no body, and before authentication.
    let r = app
        .send_raw(
            Method::PUT,
            "/api/security/groups/System%20Administrators/users/admin",
            None,
            "text/plain",
            b"x".to_vec(),
        )
        .await;
    r.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A chunked body, whose length the headers do not give.
    let chunked = |content_type: &str, chunks: &str| {
        format!(
            "POST {USERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{chunks}",
            app.admin
        )
    };
    let user = serde_json::to_string(&new_user("smuggled")).unwrap();
    let (head, body) = raw(
        &app,
        &chunked(
            "text/plain",
            &format!("{:x}\r\n{user}\r\n0\r\n\r\n", user.len()),
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 415"), "{head}\n{body}");
    // An empty chunked body is no body: the handler runs (and wants JSON).
    let (head, body) = raw(&app, &chunked("text/plain", "0\r\n\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}\n{body}");
    assert!(body.contains("JSON request body is required"), "{body}");
    // None of it created the user.
    app.get(&format!("{USERS}/smuggled"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bodiless_requests_may_say_json_and_json_suffixes_are_json() {
    let app = TestApp::spawn().await;
    let user = app.create_user("plain", "plain@example.com").await;
    let id = user["id"].as_str().unwrap();
    let group = app.create_group("Plain Group").await;
    let gid = group["id"].as_str().unwrap();
    // What the npm client sends: `application/json` on GET, HEAD, DELETE and bodiless PUT.
    let json_ct = "application/json";
    app.send_raw(Method::GET, USERS, Some(&app.admin), json_ct, Vec::new())
        .await
        .expect(StatusCode::OK);
    app.send_raw(
        Method::PUT,
        &format!("/api/security/groups/{gid}/users/{id}"),
        Some(&app.admin),
        json_ct,
        Vec::new(),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.send_raw(
        Method::HEAD,
        &format!("/api/security/groups/{gid}/users/{id}"),
        Some(&app.admin),
        json_ct,
        Vec::new(),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    // Any type, or none, on a bodiless request.
    app.send_raw(
        Method::GET,
        USERS,
        Some(&app.admin),
        "text/plain",
        Vec::new(),
    )
    .await
    .expect(StatusCode::OK);
    // The merge patch the npm client sends, and other spellings of JSON.
    for content_type in [
        "application/merge-patch+json; charset=utf-8",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ] {
        app.send_raw(
            Method::PATCH,
            &format!("{USERS}/{id}"),
            Some(&app.admin),
            content_type,
            br#"{"firstName": "Patched"}"#.to_vec(),
        )
        .await
        .expect(StatusCode::OK);
    }
    app.send_raw(
        Method::DELETE,
        &format!("{USERS}/{id}"),
        Some(&app.admin),
        json_ct,
        Vec::new(),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_token_endpoint_takes_only_a_form() {
    let app = TestApp::spawn().await;
    // A valid form, labelled as something else, is refused in the OAuth error shape.
    for content_type in ["application/json", "text/plain", "multipart/form-data"] {
        let r = app
            .send_raw(
                Method::POST,
                TOKEN,
                None,
                content_type,
                admin_form().into_bytes(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{content_type}: {}",
            r.text
        );
        assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
        assert!(r.body["error_description"].is_string(), "{}", r.text);
        assert!(r.body["access_token"].is_null(), "{}", r.text);
        assert_eq!(r.headers["cache-control"], "no-store");
    }
    let r = app
        .request(Method::POST, TOKEN)
        .body(admin_form())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
    // The form itself, with or without a charset, still works.
    for content_type in [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded;charset=UTF-8",
    ] {
        let r = app
            .send_raw(
                Method::POST,
                TOKEN,
                None,
                content_type,
                admin_form().into_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{content_type}: {}", r.text);
    }
}

// ---- x-request-id ----

/// The request id a response carries for a request that sent `id` (over a served app's
/// socket: the bytes as a client puts them on the wire).
async fn echoed_request_id(app: &TestApp, id: reqwest::header::HeaderValue) -> String {
    let r = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let values: Vec<_> = r.headers().get_all("x-request-id").iter().collect();
    assert_eq!(values.len(), 1, "{values:?}");
    values[0].to_str().expect("visible ASCII").to_owned()
}

#[tokio::test]
async fn a_request_id_is_kept_only_if_short_and_visible_ascii() {
    let app = TestApp::serve().await;
    let fine = format!("abc-{}", "x".repeat(60));
    assert_eq!(fine.len(), 64);
    for good in ["a", "caller-chosen-42", "!~{}[]", fine.as_str()] {
        let id = reqwest::header::HeaderValue::from_str(good).unwrap();
        assert_eq!(echoed_request_id(&app, id).await, good);
    }
    let bad: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_str(&"y".repeat(65)).unwrap(),
        reqwest::header::HeaderValue::from_str(&"z".repeat(8000)).unwrap(),
        reqwest::header::HeaderValue::from_str("two words").unwrap(),
        reqwest::header::HeaderValue::from_str("tab\there").unwrap(),
        reqwest::header::HeaderValue::from_bytes("naïve-id".as_bytes()).unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        reqwest::header::HeaderValue::from_static(""),
    ];
    for id in bad {
        let sent = id.as_bytes().to_vec();
        let got = echoed_request_id(&app, id).await;
        assert_ne!(got.as_bytes(), sent.as_slice());
        let parsed = uuid::Uuid::parse_str(&got).unwrap_or_else(|e| panic!("{got}: {e}"));
        assert_eq!(parsed.get_version_num(), 4, "{got}");
    }
}

// ---- caps on query input ----

#[tokio::test]
async fn order_by_beyond_16_terms_and_q_beyond_255_characters_are_400() {
    let app = TestApp::spawn().await;
    let terms = |n: usize| -> Vec<String> { (0..n).map(|i| format!("custom.k{i}")).collect() };
    // JSON orderBy, both transports.
    for (n, status) in [(16, StatusCode::OK), (17, StatusCode::BAD_REQUEST)] {
        let order: Vec<Value> = terms(n).into_iter().map(|t| json!({"asc": t})).collect();
        let r = app
            .post(&format!("{USERS}/search"), json!({"orderBy": order}))
            .await;
        r.expect(status);
        let order = serde_json::to_string(&order).unwrap();
        let r = app
            .get(&format!("{USERS}/search?orderBy={}", enc(&order)))
            .await;
        r.expect(status);
        // The bare comma-separated form of GET orderBy, and `order=` on the lists.
        let csv = terms(n).join(",");
        app.get(&format!("{USERS}/search?orderBy={}", enc(&csv)))
            .await
            .expect(status);
        app.get(&format!("{USERS}?order={}", enc(&csv)))
            .await
            .expect(status);
        let csv = vec!["-name"; n].join(",");
        app.get(&format!("/api/security/groups?order={}", enc(&csv)))
            .await
            .expect(status);
    }
    let r = app
        .post(
            &format!("{USERS}/search"),
            json!({"orderBy": terms(10_000)}),
        )
        .await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("16"), "{}", r.text);
    // q: 255 characters (not bytes) are fine, 256 are not.
    for (q, status) in [
        ("é".repeat(255), StatusCode::OK),
        ("a".repeat(256), StatusCode::BAD_REQUEST),
        ("a".repeat(60_000), StatusCode::BAD_REQUEST),
    ] {
        for list in [USERS, "/api/security/groups"] {
            let r = app.get(&format!("{list}?q={}", enc(&q))).await;
            r.expect(status);
        }
    }
    let r = app.get(&format!("{USERS}?q={}", "a".repeat(256))).await;
    assert_eq!(r.body["data"]["parameter"], "q", "{}", r.text);
}

// ---- values of wrongly typed properties are not repeated ----

#[tokio::test]
async fn a_wrongly_typed_password_is_not_repeated_in_the_error() {
    let app = TestApp::spawn().await;
    app.create_user("typo", "typo@example.com").await;
    let secret = "Hunter2-Secret-Value";
    let number = "31415926535897932";
    let cases = [
        (
            Method::POST,
            USERS.to_owned(),
            format!(r#"{{"username": "x", "email": "x@example.com", "credentials": "{secret}"}}"#),
        ),
        (
            Method::POST,
            USERS.to_owned(),
            format!(
                r#"{{"username": "x", "email": "x@example.com", "credentials": {{"password": {number}}}}}"#
            ),
        ),
        (
            Method::POST,
            format!("{USERS}/typo/credentials/password"),
            format!(r#"{{"existing": {number}, "new": "{secret}"}}"#),
        ),
        (
            Method::POST,
            format!("{USERS}/typo/credentials/password"),
            format!(r#"{{"existing": "{secret}", "new": {number}}}"#),
        ),
        (
            Method::POST,
            format!("{USERS}/typo/actions"),
            format!(r#"{{"type": {number}}}"#),
        ),
        (
            Method::POST,
            "/api/security/apiKeys".to_owned(),
            format!(r#"{{"name": {number}}}"#),
        ),
        (
            Method::POST,
            format!("{USERS}/search"),
            format!(r#"{{"pageSize": "{secret}"}}"#),
        ),
    ];
    for (method, path, body) in cases {
        let r = app
            .send_raw(
                method.clone(),
                &path,
                Some(&app.admin),
                "application/json",
                body.clone().into_bytes(),
            )
            .await;
        r.expect(StatusCode::BAD_REQUEST);
        assert!(
            !r.text.contains(secret) && !r.text.contains(number),
            "{method} {path} {body}: {}",
            r.text
        );
        // Still useful: it names the property, or says what was expected.
        assert!(r.text.contains("expected"), "{method} {path}: {}", r.text);
    }
}

// ---- /metrics is not on the public listener ----

#[tokio::test]
async fn metrics_are_a_404_on_the_public_port_and_served_on_the_metrics_listener() {
    let app = TestApp::spawn().await;
    for path in ["/metrics", "/metrics/", "/METRICS"] {
        let r = app.send(Method::GET, path, None, None).await;
        r.expect(StatusCode::NOT_FOUND);
        assert!(!r.text.contains("gatehouse_"), "{path}: {}", r.text);
        // Not with an admin token either: the public port has no such route.
        app.get(path).await.expect(StatusCode::NOT_FOUND);
    }
    assert!(app.has_metrics(), "the harness turns it on");
    let r = app.get_metrics("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("gatehouse_http_requests_total"),
        "{}",
        r.text
    );
    // The public port's refusals were counted, under no route template.
    assert!(
        r.text.contains(
            r#"gatehouse_http_requests_total{method="GET",route="unmatched",status="404"} 6"#
        ),
        "{}",
        r.text
    );
    // And the OpenAPI document of the public port does not offer it.
    let doc = app.send(Method::GET, "/api/openapi.json", None, None).await;
    assert!(doc.body["paths"].get("/metrics").is_none());
}

// ---- forged Host and X-Forwarded-* headers ----

/// The JSON body of a 200 to `request_head` (request line and headers, without the
/// blank line) with `body`, sent over a raw connection.
async fn raw_json(app: &TestApp, request_head: &str, body: &str) -> Value {
    let (head, text) = raw(
        app,
        &format!(
            "{request_head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).unwrap()
}

/// Every header a proxy or an attacker might use to name another host.
const FORGED: &str = "Host: evil.example\r\nX-Forwarded-Host: evil.example\r\n\
                      X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\
                      X-Forwarded-Prefix: /evil\r\nForwarded: host=evil.example;proto=https\r\n";

/// The discovery document and a fresh token's `iss`, both asked for with `headers`.
async fn discovery_and_iss(app: &TestApp, headers: &str) -> (Value, String) {
    let doc = raw_json(app, &format!("GET {DISCOVERY} HTTP/1.1\r\n{headers}"), "").await;
    let form = format!(
        "grant_type=contensis_classic&username=admin&password={}",
        enc(ADMIN_PASSWORD)
    );
    let tokens = raw_json(
        app,
        &format!(
            "POST {TOKEN} HTTP/1.1\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\n"
        ),
        &form,
    )
    .await;
    let iss = claims(tokens["access_token"].as_str().unwrap())["iss"]
        .as_str()
        .unwrap()
        .to_owned();
    (doc, iss)
}

#[tokio::test]
async fn a_forged_host_changes_neither_the_discovery_document_nor_the_issuer() {
    // No --public-url, no --issuer: both come from the listen address.
    let app = TestApp::serve_with(|c| c.issuer = None).await;
    let addr = app.base().trim_start_matches("http://").to_owned();
    let (honest, honest_iss) = discovery_and_iss(&app, &format!("Host: {addr}\r\n")).await;
    let (forged, forged_iss) = discovery_and_iss(&app, FORGED).await;
    assert!(!forged.to_string().contains("evil"), "{forged}");
    assert_eq!(forged, honest);
    assert_eq!(forged_iss, honest_iss);
    let issuer = format!("{}/authenticate", app.base());
    assert_eq!(honest["issuer"], issuer);
    assert_eq!(honest_iss, issuer);
    assert_eq!(honest["token_endpoint"], app.url(TOKEN));
    assert_eq!(
        honest["jwks_uri"],
        app.url("/authenticate/.well-known/jwks")
    );
}

#[tokio::test]
async fn the_public_url_names_the_issuer_and_the_discovery_urls_whatever_the_headers() {
    let app = TestApp::serve_with(|c| {
        c.issuer = None;
        c.public_url = Some("https://Auth.Example.com/".parse().unwrap());
    })
    .await;
    let addr = app.base().trim_start_matches("http://").to_owned();
    for headers in [format!("Host: {addr}\r\n"), FORGED.to_owned()] {
        let (doc, iss) = discovery_and_iss(&app, &headers).await;
        assert_eq!(
            doc["issuer"], "https://auth.example.com/authenticate",
            "{doc}"
        );
        assert_eq!(iss, "https://auth.example.com/authenticate");
        assert_eq!(
            doc["token_endpoint"],
            "https://auth.example.com/authenticate/connect/token"
        );
        assert_eq!(
            doc["jwks_uri"],
            "https://auth.example.com/authenticate/.well-known/jwks"
        );
    }
    // Its tokens verify here (the same issuer is required as is written).
    let token = app.login("admin", ADMIN_PASSWORD).await;
    app.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&token),
        None,
    )
    .await
    .expect(StatusCode::OK);
}
