//! Inputs where SQLite and PostgreSQL differ underneath (NUL characters, Unicode case
//! folding), checked to give the same answers through the API.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

const USERS: &str = "/api/security/users";

/// PostgreSQL text cannot hold NUL; a NUL in anything a client sends must still be an
/// ordinary 4xx or an empty result, never a 500.
#[tokio::test]
async fn nul_characters_in_requests_are_never_a_server_error() {
    let app = TestApp::spawn().await;
    app.create_user("plain", "plain@example.com").await;
    for path in [
        format!("{USERS}/a%00b"),
        format!("{USERS}/plain/groups/a%00b"),
        "/api/security/groups/a%00b".to_owned(),
        format!("{USERS}?q=%00"),
        format!("{USERS}?zenql={}", enc("username = \"a\0b\"")),
        format!("{USERS}?zenql={}", enc("custom.k\0 = \"v\"")),
        format!("{USERS}?zenql={}", enc("username != \"a\0b\"")),
    ] {
        let r = app.get(&path).await;
        assert!(
            r.status.is_success() || r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.text
        );
    }
    // A negated comparison with a NUL value still matches every user.
    let r = app
        .get(&format!("{USERS}?zenql={}", enc("username != \"a\0b\"")))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 2, "{}", r.text);

    for form in [
        [
            ("grant_type", "contensis_classic"),
            ("username", "pla\0in"),
            ("password", PASSWORD),
        ],
        [
            ("grant_type", "client_credentials"),
            ("client_id", "x\0y"),
            ("client_secret", "z"),
        ],
    ] {
        let r = app.token(&form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
}

/// `custom` is queried as `jsonb` on PostgreSQL, which cannot hold `\u0000`; both
/// backends refuse it on the way in, so one value cannot break everyone's queries.
#[tokio::test]
async fn custom_properties_with_nul_are_refused_on_both_backends() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "nully", "email": "nully@example.com",
                   "custom": {"note": "a\u{0}b"}}),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/security/groups",
            json!({"name": "Nully", "custom": {"k\u{0}": 1}}),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let user = app.create_user("fine", "fine@example.com").await;
    let id = user["id"].as_str().unwrap();
    let r = app
        .send_raw(
            Method::PATCH,
            &format!("{USERS}/{id}"),
            Some(&app.admin),
            "application/merge-patch+json",
            br#"{"custom": {"deep": [{"x": "\u0000"}]}}"#.to_vec(),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
}

/// Case-insensitive filters and `q` fold Unicode on both backends for username, email
/// and names (the stores compare Rust-folded `*_lc` columns, since SQLite's `lower()`
/// folds ASCII only), short `q` terms included.
#[tokio::test]
async fn unicode_case_folding_is_the_same_on_both_backends() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "emile", "email": "emile@example.com",
                   "firstName": "Émile", "lastName": "Zola"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    for zenql in [
        "firstName = \"émile\"",
        "firstName startsWith \"ÉM\"",
        "firstName ~ \"MIL\"",
    ] {
        let r = app.get(&format!("{USERS}?zenql={}", enc(zenql))).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 1, "{zenql}: {}", r.text);
    }
    for q in ["ÉMILE", "é", "Ém"] {
        let r = app.get(&format!("{USERS}?q={}", enc(q))).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 1, "q={q}: {}", r.text);
    }
}
