//! Attacks on accounts and tokens: refresh tokens that outlive a suspension, unbounded
//! password work, administrators who cannot sign in counted as the last one, lost
//! updates between racing edits, forged key ids and retired keys.

use std::sync::Arc;

use gatehouse::clock::Clock as _;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::credentials::{cli_json, run_cli};
use crate::helpers::{ADMIN_PASSWORD, PASSWORD, Resp, TestApp};

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.token(&[
        ("grant_type", "contensis_classic_refresh_token"),
        ("refresh_token", token),
    ])
    .await
}

async fn refresh_token_of(app: &TestApp, user: &str) -> String {
    let r = app.password_grant(user, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

async fn action(app: &TestApp, user: &str, kind: &str) -> Resp {
    app.post(
        &format!("/api/security/users/{user}/actions"),
        json!({ "type": kind }),
    )
    .await
}

#[track_caller]
fn assert_invalid_grant(r: &Resp) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);
}

#[tokio::test]
async fn refresh_tokens_die_with_the_account_state_and_are_not_revived() {
    let app = TestApp::spawn().await;
    // Suspended, then unsuspended: the old refresh token stays dead.
    app.create_user("sus", "sus@example.com").await;
    let token = refresh_token_of(&app, "sus").await;
    action(&app, "sus", "suspend")
        .await
        .expect(StatusCode::NO_CONTENT);
    action(&app, "sus", "unsuspend")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_invalid_grant(&refresh(&app, &token).await);
    app.login("sus", PASSWORD).await;

    // Locked by failures, then unlocked.
    app.create_user("lock", "lock@example.com").await;
    let token = refresh_token_of(&app, "lock").await;
    for _ in 0..5 {
        assert_invalid_grant(&app.password_grant("lock", "Wrong-Guess-1").await);
    }
    action(&app, "lock", "unlock")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_invalid_grant(&refresh(&app, &token).await);

    // Forced to reset the password.
    app.create_user("reset", "reset@example.com").await;
    let token = refresh_token_of(&app, "reset").await;
    action(&app, "reset", "forcePasswordReset")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_invalid_grant(&refresh(&app, &token).await);

    // Expired, then given a later expiry again.
    app.create_user("exp", "exp@example.com").await;
    let soon = gatehouse::clock::format_rfc3339(app.clock.now_ms() + 60_000);
    app.patch("/api/security/users/exp", json!({ "expiry": soon }))
        .await
        .expect(StatusCode::OK);
    let token = refresh_token_of(&app, "exp").await;
    app.clock.advance_ms(120_000);
    assert_invalid_grant(&refresh(&app, &token).await);
    app.patch("/api/security/users/exp", json!({ "expiry": null }))
        .await
        .expect(StatusCode::OK);
    assert_invalid_grant(&refresh(&app, &token).await);

    // Deleted: the token goes with the user.
    app.create_user("gone", "gone@example.com").await;
    let token = refresh_token_of(&app, "gone").await;
    app.delete("/api/security/users/gone")
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_invalid_grant(&refresh(&app, &token).await);
}

#[tokio::test]
async fn passwords_over_1024_bytes_are_refused_before_any_hashing() {
    let app = TestApp::spawn().await;
    app.create_user("long", "long@example.com").await;
    // 1,025 bytes in 342 characters: the bound is on bytes.
    let long = format!("Aa1{}", "€".repeat(341));
    assert_eq!(long.len(), 1_026);

    // Token endpoint: the same answer as a wrong password, but not even counted as an
    // attempt (no argon2 ran).
    assert_invalid_grant(&app.password_grant("long", &long).await);
    let u = app.get("/api/security/users/long").await;
    assert_eq!(u.body["failedLoginAttempts"], json!(0), "{}", u.text);

    // Create and the password endpoint: 422 naming the field.
    let r = app
        .post(
            "/api/security/users",
            json!({"username": "big", "email": "big@example.com",
                   "credentials": {"password": long}}),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    for body in [
        json!({"existing": PASSWORD, "new": long}),
        json!({"existing": long, "new": "Another-Pass-9"}),
    ] {
        let r = app
            .send(
                Method::POST,
                "/api/security/users/long/credentials/password",
                None,
                Some(body),
            )
            .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let u = app.get("/api/security/users/long").await;
    assert_eq!(u.body["failedLoginAttempts"], json!(0), "{}", u.text);
    app.login("long", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_is_refused_with_503_rather_than_queued_without_bound() {
    let app = Arc::new(TestApp::spawn().await);
    let mut tasks = Vec::new();
    for i in 0..400 {
        let app = Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            app.password_grant(&format!("nobody{i}"), "Wrong-Guess-1")
                .await
        }));
    }
    let (mut refused, mut busy) = (0, 0);
    for t in tasks {
        let r = t.await.expect("a login");
        match r.status {
            StatusCode::BAD_REQUEST => refused += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert!(r.headers.contains_key("retry-after"), "{r:?}");
                crate::helpers::assert_error_shape(&r.body);
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!(
        busy > 0,
        "400 logins at once were all queued ({refused} answered)"
    );
    assert!(refused > 0, "no login was served at all");
    // The server is not wedged: a login right after works.
    app.login("admin", ADMIN_PASSWORD).await;
}

/// Makes `user` an administrator.
async fn make_admin(app: &TestApp, user: &str) {
    app.put(
        &format!("/api/security/groups/System%20Administrators/users/{user}"),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_last_admin_guard_counts_only_administrators_who_can_sign_in() {
    let app = TestApp::spawn().await;
    // A second administrator who is locked out does not count.
    app.create_user("second", "second@example.com").await;
    make_admin(&app, "second").await;
    for _ in 0..5 {
        assert_invalid_grant(&app.password_grant("second", "Wrong-Guess-1").await);
    }
    action(&app, "admin", "suspend")
        .await
        .expect(StatusCode::CONFLICT);
    app.delete("/api/security/groups/System%20Administrators/users/admin")
        .await
        .expect(StatusCode::CONFLICT);

    // An enabled administrator API key counts; disabling it, when it is the only other
    // administrator who can sign in, does not go through.
    let key = app
        .post(
            "/api/security/apiKeys",
            json!({"name": "robot", "enabled": true}),
        )
        .await;
    key.expect(StatusCode::CREATED);
    let key_id = key.body["id"].as_str().expect("an id").to_owned();
    let key_user = app
        .get(&format!("/api/security/apiKeys/{key_id}"))
        .await
        .body;
    let client_id = key_user["clientId"].as_str().expect("a client id");
    let users = app
        .get(&format!(
            "/api/security/users?zenql={}",
            crate::helpers::enc(&format!("username = \"{client_id}\""))
        ))
        .await;
    let key_user_id = users.body["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the key's user: {}", users.text))
        .to_owned();
    make_admin(&app, &key_user_id).await;
    action(&app, "admin", "suspend")
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = app
        .send(
            Method::PUT,
            &format!("/api/security/apiKeys/{key_id}"),
            Some(&app.admin.clone()),
            Some(json!({"name": "robot", "enabled": false})),
        )
        .await;
    // The admin's own token died with the suspension: use the key.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let key_token = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_secret",
                key.body["clientSecret"].as_str().expect("a secret"),
            ),
        ])
        .await;
    let key_token = key_token.body["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let r = app
        .send(
            Method::PUT,
            &format!("/api/security/apiKeys/{key_id}"),
            Some(&key_token),
            Some(json!({"name": "robot", "enabled": false})),
        )
        .await;
    r.expect(StatusCode::CONFLICT);

    // Back to one human administrator: giving them an expiry would leave none who never
    // expires, so it is refused; a non-administrator's expiry is fine.
    app.send(
        Method::POST,
        "/api/security/users/admin/actions",
        Some(&key_token),
        Some(json!({"type": "unsuspend"})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let admin = app.login("admin", ADMIN_PASSWORD).await;
    app.send(
        Method::DELETE,
        &format!("/api/security/apiKeys/{key_id}"),
        Some(&admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let later = gatehouse::clock::format_rfc3339(app.clock.now_ms() + 86_400_000);
    app.send(
        Method::PATCH,
        "/api/security/users/admin",
        Some(&admin),
        Some(json!({ "expiry": later })),
    )
    .await
    .expect(StatusCode::CONFLICT);
    app.send(
        Method::PATCH,
        "/api/security/users/second",
        Some(&admin),
        Some(json!({ "expiry": later })),
    )
    .await
    .expect(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_edits_of_different_fields_never_undo_each_other() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, token) = app.user_with_token("racer").await;
    for round in 0..30 {
        let expiry =
            gatehouse::clock::format_rfc3339(app.clock.now_ms() + 86_400_000 * (round + 1));
        let name = format!("Name{round}");
        let (a, b) = {
            let (app1, app2) = (Arc::clone(&app), Arc::clone(&app));
            let (token, name, expiry) = (token.clone(), name.clone(), expiry.clone());
            tokio::join!(
                tokio::spawn(async move {
                    app1.send(
                        Method::PATCH,
                        "/api/security/users/@current",
                        Some(&token),
                        Some(json!({ "firstName": name })),
                    )
                    .await
                }),
                tokio::spawn(async move {
                    app2.patch("/api/security/users/racer", json!({ "expiry": expiry }))
                        .await
                })
            )
        };
        a.expect("self edit").expect(StatusCode::OK);
        b.expect("admin edit").expect(StatusCode::OK);
        let u = app.get("/api/security/users/racer").await.body;
        assert_eq!(u["firstName"], json!(name), "round {round}: {u}");
        assert_eq!(u["expiry"], json!(expiry), "round {round}: {u}");
    }
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let head = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .expect("base64url");
    let header: Value = serde_json::from_slice(&bytes).expect("JSON");
    header["kid"].as_str().expect("a kid").to_owned()
}

#[tokio::test]
async fn forged_key_ids_cost_one_key_read_and_retired_keys_stop_working() {
    let a = TestApp::spawn().await;
    let old = a.admin.clone();
    let old_kid = kid_of(&old);
    let cli = |args: &'static [&'static str]| {
        let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--database".to_owned(), a.database_url.clone()]);
        v
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, None).await
    };
    // The only key cannot be retired.
    let mut retire_old = cli(&["admin", "retire-key"]);
    retire_old.insert(2, old_kid.clone());
    let (ok, _, err) = run(retire_old.clone()).await;
    assert!(!ok, "retiring the only key succeeded");
    assert!(err.contains("rotate"), "{err}");

    // A token with a made-up key id makes node A read the keys once...
    let forged = format!(
        "{}.{}",
        base64_json(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "made-up"})),
        old.split_once('.').expect("a JWT").1
    );
    a.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&forged),
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);

    // ...then a new key is made and the old one retired, and node B, started now,
    // signs with the new key.
    let (ok, out, err) = run(cli(&["admin", "rotate-key"])).await;
    assert!(ok, "{err}");
    let new_kid = cli_json(&out)["kid"].as_str().expect("a kid").to_owned();
    let (ok, _, err) = run(retire_old).await;
    assert!(ok, "{err}");
    let b = TestApp::spawn_on(
        Arc::clone(&a.dir),
        a.database_url.clone(),
        a.clock.clone(),
        |_| {},
    )
    .await;
    assert_eq!(kid_of(&b.admin), new_kid);

    // Within the reload gap, node A does not read the keys again for B's token: forged
    // key ids cannot turn every request into a database read.
    a.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&b.admin),
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
    // After it, A reads them once more: B's token works, the retired key's do not.
    a.clock.advance_ms(5_000);
    a.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&b.admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    a.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&old),
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}

fn base64_json(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}
