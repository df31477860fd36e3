//! Attacks on the lockout: concurrent guessing on the token and password endpoints.
//!
//! Before the fix, both endpoints read the account before queueing for argon2 and acted
//! on that stale row afterwards: a right guess among 39 concurrent wrong ones was
//! accepted although the account had been locked meanwhile (token endpoint: access and
//! refresh token issued; password endpoint: the attacker's new password set).

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Resp, TestApp, enc};

/// Consecutive failures that lock. Higher than the default 5 so that the race is
/// reproduced every time: the right guess reads the account while it is still open and
/// waits for argon2 behind more than this many wrong guesses.
const THRESHOLD: u64 = 20;
/// Concurrent wrong guesses in each attack.
const WRONG: usize = 39;

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.lockout_threshold = THRESHOLD as u32).await
}

async fn user_json(app: &TestApp, user: &str) -> Value {
    let r = app.get(&format!("/api/security/users/{}", enc(user))).await;
    r.expect(StatusCode::OK);
    r.body
}

/// Unauthenticated `POST /users/{user}/credentials/password`.
async fn set_password(app: &TestApp, user: &str, existing: &str, new: &str) -> Resp {
    app.send(
        Method::POST,
        &format!("/api/security/users/{}/credentials/password", enc(user)),
        None,
        Some(json!({"existing": existing, "new": new})),
    )
    .await
}

fn count(v: &Value) -> u64 {
    v.as_u64().expect("a counter")
}

/// Runs `WRONG` wrong attempts and one right one all at once, spelling the user by
/// username and by email in turn. The right one is sent once the first wrong guesses
/// have been recorded: it reads the account while it is still open (fewer than
/// `THRESHOLD` failures), and waits for argon2 behind the other wrong guesses, so its
/// password is checked after the lock. That is the race the attack wins on a server
/// that acts on the row it read first. Returns the right attempt's response.
async fn guess_concurrently<F, Fut>(app: &Arc<TestApp>, attempt: F) -> Resp
where
    F: Fn(Arc<TestApp>, &'static str, bool) -> Fut,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let mut wrong = Vec::new();
    for i in 0..WRONG {
        let spelling = if i % 2 == 0 {
            "victim"
        } else {
            "victim@example.com"
        };
        wrong.push(tokio::spawn(attempt(Arc::clone(app), spelling, false)));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recorded = loop {
        let n = count(&user_json(app, "victim").await["failedLoginAttempts"]);
        if n >= 3 {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no guess was recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    assert!(
        recorded < THRESHOLD,
        "the account locked before the right guess was sent"
    );
    let right = tokio::spawn(attempt(Arc::clone(app), "victim@example.com", true));
    for w in wrong {
        let r = w.await.expect("a wrong guess");
        assert_ne!(
            r.status.as_u16() / 100,
            2,
            "a wrong guess succeeded: {}",
            r.text
        );
        assert_ne!(
            r.status.as_u16() / 100,
            5,
            "a wrong guess failed: {}",
            r.text
        );
    }
    right.await.expect("the right guess")
}

/// What both attacks must leave: the account locked, and every guess, the right one
/// too, counted as a failure (a refused right guess cannot be told from a wrong one).
fn assert_locked_with_every_guess_counted(after: &Value) {
    assert_eq!(after["status"]["locked"], json!(true), "{after}");
    assert_eq!(
        count(&after["failedLoginAttempts"]),
        WRONG as u64 + 1,
        "{after}"
    );
    assert_eq!(
        count(&after["failedLoginAttemptsSinceLastSuccess"]),
        WRONG as u64 + 1,
        "{after}"
    );
    assert_eq!(count(&after["successfulLoginAttempts"]), 0, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_on_the_token_endpoint_never_beat_the_lockout() {
    let app = Arc::new(spawn().await);
    app.create_user("victim", "victim@example.com").await;

    let right = guess_concurrently(&app, |app, user, right| async move {
        let password = if right { PASSWORD } else { "Wrong-Guess-1" };
        app.password_grant(user, password).await
    })
    .await;
    assert_eq!(right.status, StatusCode::BAD_REQUEST, "{}", right.text);
    assert_eq!(right.body["error"], "invalid_grant");
    assert_locked_with_every_guess_counted(&user_json(&app, "victim").await);

    // Locked: the right password gets the same answer as a wrong one.
    let r = app.password_grant("victim", PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_on_the_password_endpoint_never_set_a_password_past_the_lockout() {
    let app = Arc::new(spawn().await);
    app.create_user("victim", "victim@example.com").await;
    const ATTACKERS: &str = "Attacker-Owns-7";

    let right = guess_concurrently(&app, |app, user, right| async move {
        let existing = if right { PASSWORD } else { "Wrong-Guess-1" };
        set_password(&app, user, existing, ATTACKERS).await
    })
    .await;
    right.expect(StatusCode::UNAUTHORIZED);
    assert_locked_with_every_guess_counted(&user_json(&app, "victim").await);

    // After an administrator unlocks the account, the attacker's password does not
    // work; the user's own still does.
    let r = app
        .post(
            "/api/security/users/victim/actions",
            json!({"type": "unlock"}),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert_eq!(
        app.password_grant("victim", ATTACKERS).await.status,
        StatusCode::BAD_REQUEST
    );
    app.login("victim", PASSWORD).await;
}

#[tokio::test]
async fn a_locked_or_suspended_account_answers_a_right_password_like_a_wrong_one() {
    let app = spawn().await;
    app.create_user("locked", "locked@example.com").await;
    app.create_user("held", "held@example.com").await;
    for _ in 0..THRESHOLD {
        app.password_grant("locked", "Wrong-Guess-1").await;
    }
    app.post(
        "/api/security/users/held/actions",
        json!({"type": "suspend"}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);

    for user in ["locked", "held"] {
        let right = app.password_grant(user, PASSWORD).await;
        let wrong = app.password_grant(user, "Wrong-Guess-1").await;
        assert_eq!(right.status, wrong.status);
        assert_eq!(right.body, wrong.body, "{user}");

        // The password endpoint: 401 either way, and the password is not changed.
        let right = set_password(&app, user, PASSWORD, "Attacker-Owns-7").await;
        let wrong = set_password(&app, user, "Wrong-Guess-1", "Attacker-Owns-7").await;
        right.expect(StatusCode::UNAUTHORIZED);
        assert_eq!(right.body["message"], wrong.body["message"]);
    }
    // An unknown user: the same 401 as a known one.
    set_password(&app, "nobody", PASSWORD, "Attacker-Owns-7")
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Lifted, the original password still works (nothing was changed meanwhile).
    for (user, action) in [("locked", "unlock"), ("held", "unsuspend")] {
        app.post(
            &format!("/api/security/users/{user}/actions"),
            json!({"type": action}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
        app.login(user, PASSWORD).await;
    }
}

#[tokio::test]
async fn the_password_endpoint_is_rate_limited_per_account_and_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.login_rate_per_user = 1;
        c.login_burst_per_user = 3;
    })
    .await;
    app.create_user("victim", "victim@example.com").await;
    // Three spellings, one account: one bucket.
    for user in ["victim", "victim@example.com", "VICTIM"] {
        set_password(&app, user, "Wrong-Guess-1", "Attacker-Owns-7")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let r = set_password(&app, "victim", "Wrong-Guess-1", "Attacker-Owns-7").await;
    r.expect(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1, "{retry}");
    // The refused attempt was not counted as a failure.
    assert_eq!(
        count(&user_json(&app, "victim").await["failedLoginAttempts"]),
        3
    );

    let app = TestApp::spawn_with(|c| {
        c.login_rate_per_ip = 1;
        c.login_burst_per_ip = 2;
    })
    .await;
    for user in ["a", "b"] {
        set_password(&app, user, "Wrong-Guess-1", "Attacker-Owns-7")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    set_password(&app, "c", "Wrong-Guess-1", "Attacker-Owns-7")
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}
