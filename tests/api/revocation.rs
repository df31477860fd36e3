//! `POST /authenticate/connect/revocation` (RFC 7009, docs/api.md): sign-out. A revoked
//! refresh token, and every token of its rotation chain, can no longer be spent; unknown
//! and already-revoked tokens are answered 200 and change nothing; holding the token is
//! the proof, so whoever holds a user's token may revoke it (as they could spend it).

use reqwest::{Method, StatusCode};

use crate::helpers::*;

const PATH: &str = "/authenticate/connect/revocation";

async fn revoke(app: &TestApp, form: &[(&str, &str)], token: Option<&str>) -> Resp {
    app.send_raw(
        Method::POST,
        PATH,
        token,
        "application/x-www-form-urlencoded",
        form_body(form).into_bytes(),
    )
    .await
}

fn refresh_token(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.token(&[
        ("grant_type", "contensis_classic_refresh_token"),
        ("refresh_token", token),
    ])
    .await
}

async fn revocations(app: &TestApp) -> Vec<serde_json::Value> {
    let r = app
        .get("/api/security/audit?type=refreshToken.revoked&pageSize=100")
        .await;
    r.expect(StatusCode::OK);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_revoked_token_and_its_whole_chain_cannot_refresh() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob@example.com").await;
    let first = refresh_token(&app.password_grant("bob", PASSWORD).await);
    let second = refresh_token(&refresh(&app, &first).await);
    let r = revoke(&app, &[("token", &second)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(r.headers["cache-control"], "no-store");
    for token in [&second, &first] {
        let r = refresh(&app, token).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"], "invalid_grant");
    }
    // One event, by bob, about bob.
    let events = revocations(&app).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["actor"]["type"], "user");
    assert_eq!(events[0]["actor"]["name"], "bob");
    assert_eq!(events[0]["target"]["userName"], "bob");
    // A new sign-in starts a new chain.
    let fresh = refresh_token(&app.password_grant("bob", PASSWORD).await);
    refresh_token(&refresh(&app, &fresh).await);
}

#[tokio::test]
async fn revoking_a_spent_token_ends_the_live_one_after_it() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob@example.com").await;
    let first = refresh_token(&app.password_grant("bob", PASSWORD).await);
    let second = refresh_token(&refresh(&app, &first).await);
    revoke(&app, &[("token", &first)], None)
        .await
        .expect(StatusCode::OK);
    let r = refresh(&app, &second).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test]
async fn unknown_and_repeated_revocations_answer_200_and_record_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob@example.com").await;
    let token = refresh_token(&app.password_grant("bob", PASSWORD).await);
    let long = "x".repeat(100_000);
    for t in ["not-a-token", long.as_str(), &token, &token] {
        let r = revoke(
            &app,
            &[("token", t), ("token_type_hint", "refresh_token")],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(revocations(&app).await.len(), 1);
    // An access token is not revocable here: unknown as a refresh token, 200, and it
    // keeps working until it expires.
    let access = app.login("bob", PASSWORD).await;
    revoke(
        &app,
        &[("token", &access), ("token_type_hint", "access_token")],
        None,
    )
    .await
    .expect(StatusCode::OK);
    app.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&access),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(revocations(&app).await.len(), 1);
}

#[tokio::test]
async fn whoever_holds_a_token_may_revoke_it_and_only_that_chain_ends() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob@example.com").await;
    app.create_user("alice", "alice@example.com").await;
    let bobs = refresh_token(&app.password_grant("bob", PASSWORD).await);
    let bobs_other = refresh_token(&app.password_grant("bob", PASSWORD).await);
    let alices = refresh_token(&app.password_grant("alice", PASSWORD).await);
    let alice_access = app.login("alice", PASSWORD).await;
    // Alice, signed in, revokes bob's token: holding it is enough, as it is to spend it.
    revoke(&app, &[("token", &bobs)], Some(&alice_access))
        .await
        .expect(StatusCode::OK);
    assert_eq!(refresh(&app, &bobs).await.status, StatusCode::BAD_REQUEST);
    // Bob's other sign-in and alice's own chain are untouched.
    refresh_token(&refresh(&app, &bobs_other).await);
    refresh_token(&refresh(&app, &alices).await);
    let events = revocations(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["actor"]["name"], "bob",
        "the token's holder acts as its user"
    );
}

#[tokio::test]
async fn a_malformed_revocation_is_an_rfc_6749_invalid_request() {
    let app = TestApp::spawn().await;
    for form in [vec![], vec![("token", "")], vec![("tokne", "x")]] {
        let r = revoke(&app, &form, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_request");
        assert_eq!(r.headers["cache-control"], "no-store");
    }
    let r = app
        .send_raw(
            Method::POST,
            PATH,
            None,
            "application/json",
            br#"{"token": "x"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_request");
    let r = app.send(Method::GET, PATH, None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
