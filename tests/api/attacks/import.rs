//! Attacks through `gatehouse import`: identity confusion and crafted password hashes.
//!
//! The import trusts its file, not the database's current names: a record matches an
//! existing user only by id, or by username and email together naming the same user.
//! Anything else is a conflict, whose memberships are not applied. A record is
//! checked as the API checks a create (password policy, a bounded argon2id hash,
//! names, control characters), and a record that fails is refused with its line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// One run of the real binary, as `tests/api/import.rs` runs it.
struct Run {
    code: Option<i32>,
    stats: Value,
    stderr: String,
}

fn import(app: &TestApp, file: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["import", "--quiet", "--database", &app.database_url])
        .args(extra)
        .arg(file)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("gatehouse runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        code: out.status.code(),
        stats: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn write_lines(app: &TestApp, name: &str, lines: &[Value]) -> std::path::PathBuf {
    let file = app.dir.path().join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    file
}

/// The problems the summary lists for one line.
fn problems_of(run: &Run, line: u64) -> Vec<Value> {
    run.stats["problems"]
        .as_array()
        .map(|all| all.iter().filter(|p| p["line"] == line).cloned().collect())
        .unwrap_or_default()
}

async fn is_admin(app: &TestApp, user: &str) -> bool {
    let r = app
        .head(&format!(
            "/api/security/users/{user}/groups/System%20Administrators"
        ))
        .await;
    r.status == StatusCode::NO_CONTENT
}

/// A user takes the email of an administrator-to-be by editing their own profile,
/// before the import that creates that administrator runs. The import must not hand
/// the administrator's groups to whoever holds the email now, whichever way the file
/// names the person (username and email, email alone, or a later `member` record).
#[tokio::test]
async fn a_self_service_email_change_does_not_inherit_an_imported_admins_groups() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("mallory").await;
    let r = app
        .send(
            Method::PATCH,
            "/api/security/users/@current",
            Some(&token),
            Some(json!({"email": "boss@corp.example"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let file = write_lines(
        &app,
        "admins.jsonl",
        &[
            json!({"type": "user", "username": "boss", "email": "boss@corp.example",
                   "firstName": "Big", "lastName": "Boss", "groups": ["System Administrators"]}),
            json!({"type": "user", "email": "boss@corp.example",
                   "groups": ["System Administrators"]}),
            json!({"type": "member", "group": "System Administrators", "user": "boss@corp.example"}),
            json!({"type": "user", "username": "mallory", "email": "someone.else@corp.example",
                   "groups": ["System Administrators"]}),
        ],
    );
    let run = import(&app, &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        !is_admin(&app, "mallory").await,
        "the import made the user who took the email an administrator"
    );
    assert_eq!(run.stats["conflicts"], 3, "{}", run.stats);
    assert_eq!(run.stats["users"], 0, "{}", run.stats);
    assert_eq!(run.stats["memberships"], 0, "{}", run.stats);
    for line in [1, 2, 4] {
        let p = problems_of(&run, line);
        assert_eq!(p.len(), 1, "line {line}: {}", run.stats);
        assert_eq!(p[0]["kind"], "conflict", "{}", p[0]);
    }
    // The `member` record names a person whose own record conflicted: it is refused,
    // not resolved to whoever holds the name in the database.
    let p = problems_of(&run, 3);
    assert_eq!(p.len(), 1, "line 3: {}", run.stats);
    assert_eq!(p[0]["kind"], "refused", "{}", p[0]);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);

    // Mallory's token still cannot do what an administrator can.
    app.send(Method::GET, "/api/security/users", Some(&token), None)
        .await
        .expect(StatusCode::FORBIDDEN);

    // `--strict` turns any conflict into a failed run (exit code 4), and still grants
    // nothing.
    let run = import(&app, &file, &["--strict"]);
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert_eq!(run.stats["conflicts"], 3, "{}", run.stats);
    assert!(!is_admin(&app, "mallory").await);

    // One record per batch: the `member` record is read after its user's conflict was
    // committed, and is refused all the same.
    let run = import(&app, &file, &["--batch", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stats["conflicts"], 3, "{}", run.stats);
    assert_eq!(problems_of(&run, 3)[0]["kind"], "refused", "{}", run.stats);
    assert_eq!(run.stats["memberships"], 0, "{}", run.stats);
    assert!(!is_admin(&app, "mallory").await);
}

/// A crafted `passwordHash` with a huge time or memory cost would make every login of
/// that user tie up a hashing thread: the record is refused, and nobody can log in as
/// that user.
#[tokio::test]
async fn crafted_password_hashes_are_refused_with_the_bound_they_break() {
    let app = TestApp::spawn().await;
    let real = gatehouse::auth::password::hash_blocking(PASSWORD).0;
    let tail: Vec<&str> = real.splitn(5, '$').collect();
    let crafted = |params: &str| format!("$argon2id$v=19${params}${}", tail[4]);
    let file = write_lines(
        &app,
        "hashes.jsonl",
        &[
            json!({"type": "user", "username": "slowpoke", "email": "slowpoke@example.com",
                   "passwordHash": crafted("m=19456,t=4294967295,p=1")}),
            json!({"type": "user", "username": "hog", "email": "hog@example.com",
                   "passwordHash": crafted("m=4194304,t=2,p=1")}),
            json!({"type": "user", "username": "fine", "email": "fine@example.com",
                   "passwordHash": real}),
        ],
    );
    let run = import(&app, &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stats["users"], 1, "{}", run.stats);
    assert_eq!(run.stats["refused"], 2, "{}", run.stats);
    for (line, says) in [(1, "t=4294967295"), (2, "m=4194304")] {
        let p = problems_of(&run, line);
        assert_eq!(p.len(), 1, "line {line}: {}", run.stats);
        assert_eq!(p[0]["kind"], "refused");
        assert_eq!(p[0]["field"], "passwordHash");
        assert!(p[0]["reason"].as_str().unwrap().contains(says), "{}", p[0]);
    }
    for name in ["slowpoke", "hog"] {
        app.get(&format!("/api/security/users/{name}"))
            .await
            .expect(StatusCode::NOT_FOUND);
        let login = tokio::time::timeout(
            Duration::from_secs(10),
            app.token(&[
                ("grant_type", "contensis_classic"),
                ("username", name),
                ("password", PASSWORD),
            ]),
        )
        .await
        .expect("a login answers at once");
        assert_eq!(login.status, StatusCode::BAD_REQUEST, "{}", login.body);
    }
    // A sound hash still migrates.
    assert!(!app.login("fine", PASSWORD).await.is_empty());

    let run = import(&app, &file, &["--strict"]);
    assert_eq!(run.code, Some(4), "{}", run.stderr);
}

/// A clear password is held to the policy a create through the API is.
#[tokio::test]
async fn a_clear_password_that_breaks_the_policy_is_refused() {
    let app = TestApp::spawn().await;
    let file = write_lines(
        &app,
        "weak.jsonl",
        &[
            json!({"type": "user", "username": "weak", "email": "weak@example.com",
                   "password": "password"}),
            json!({"type": "user", "username": "tyler", "email": "tyler@example.com",
                   "firstName": "Tyler", "lastName": "Durden", "password": "Tyler-Durden-1"}),
            json!({"type": "user", "username": "lower", "email": "lower@example.com",
                   "password": "onlylowercaseand1", "groups": ["System Administrators"]}),
        ],
    );
    let run = import(&app, &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stats["refused"], 3, "{}", run.stats);
    assert_eq!(run.stats["users"], 0, "{}", run.stats);
    for line in [1, 2, 3] {
        let p = problems_of(&run, line);
        assert_eq!(p.len(), 1, "line {line}: {}", run.stats);
        assert_eq!(p[0]["kind"], "refused");
        assert_eq!(p[0]["field"], "password", "{}", p[0]);
    }
    for name in ["weak", "tyler", "lower"] {
        app.get(&format!("/api/security/users/{name}"))
            .await
            .expect(StatusCode::NOT_FOUND);
    }
}

/// Control characters in names (terminal escapes, forged log lines) are refused as the
/// API refuses them, and so is an oversized or NUL-bearing profile.
#[tokio::test]
async fn control_characters_in_a_username_are_refused() {
    let app = TestApp::spawn().await;
    let file = write_lines(
        &app,
        "control.jsonl",
        &[
            json!({"type": "user", "username": "mallory\u{1b}[2J", "email": "m1@example.com"}),
            json!({"type": "user", "username": "admin\nINFO login ok user=admin",
                   "email": "m2@example.com"}),
            json!({"type": "user", "username": "m3", "email": "m3@example.com",
                   "lastName": "Singer\u{7}"}),
            json!({"type": "user", "username": "m4", "email": "m4@example.com",
                   "timezone": "x".repeat(256)}),
            json!({"type": "user", "username": "m5", "email": "m5@example.com",
                   "custom": {"note": "a\u{0}b"}}),
            json!({"type": "user", "username": "fine", "email": "fine@example.com"}),
        ],
    );
    let run = import(&app, &file, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stats["users"], 1, "{}", run.stats);
    assert_eq!(run.stats["refused"], 5, "{}", run.stats);
    for (line, field) in [
        (1, "username"),
        (2, "username"),
        (3, "lastName"),
        (4, "timezone"),
        (5, "custom"),
    ] {
        let p = problems_of(&run, line);
        assert_eq!(p.len(), 1, "line {line}: {}", run.stats);
        assert_eq!(p[0]["field"], field, "{}", p[0]);
    }
    for email in ["m1@example.com", "m2@example.com", "m3@example.com"] {
        app.get(&format!("/api/security/users/{email}"))
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    app.get("/api/security/users/fine")
        .await
        .expect(StatusCode::OK);
}
