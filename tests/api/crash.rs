//! Crash safety (issue 8): writes against a real `gatehouse serve` process that is
//! killed with SIGKILL at random moments, again and again. Every write that was answered
//! 2xx must be there after each restart, and the database must pass its integrity check.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`: a commit is on disk (fsync'd) before
//! the 2xx leaves, so neither a killed process nor a power cut can lose it. (A killed
//! process alone cannot show the power-cut half: that needs the fsync, which is the
//! setting this documents.) On PostgreSQL the same test checks the same promise.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::*;

/// Kill-and-restart rounds (the issue asks for at least 20).
const ROUNDS: usize = 20;
/// Concurrent writers per round.
const WRITERS: usize = 8;
/// At most this many users are acknowledged in a round before its kill (at least one).
const WRITES_PER_ROUND: usize = 16;

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!("{base}/authenticate/connect/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=contensis_classic&username=admin&password={}",
            enc(ADMIN_PASSWORD)
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<serde_json::Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

#[tokio::test]
async fn acknowledged_writes_survive_twenty_kill_9s() {
    let (dir, url) = fresh_database().await;
    let http = crate::helpers::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Acknowledged writes: users created, and (group, user) memberships added.
    let users: Arc<Mutex<Vec<String>>> = Arc::default();
    let members: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut rng = rand::thread_rng();
    let mut group_created = false;

    for round in 0..ROUNDS {
        let mut node = Node::start(&url, &dir, &format!("round{round}")).await;
        let token = admin_token(&http, &node.base).await;
        if !group_created {
            let r = http
                .post(format!("{}/api/security/groups", node.base))
                .bearer_auth(&token)
                .json(&json!({"name": "Crash Test Dummies"}))
                .send()
                .await
                .expect("create group");
            assert_eq!(r.status(), StatusCode::CREATED);
            group_created = true;
        }
        // Everything acknowledged before is still there.
        verify(&http, &node.base, &token, &users, &members).await;
        let acknowledged_before = users.lock().await.len();
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (http, base, token) = (http.clone(), node.base.clone(), token.clone());
            let (users, members) = (users.clone(), members.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("r{round}w{w}i{i}");
                    let created = http
                        .post(format!("{base}/api/security/users"))
                        .bearer_auth(&token)
                        .json(&json!({"username": name, "email": format!("{name}@crash.test")}))
                        .send()
                        .await;
                    match created {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            users.lock().await.push(name.clone())
                        }
                        _ => return,
                    }
                    let added = http
                        .put(format!(
                            "{base}/api/security/groups/Crash%20Test%20Dummies/users/{name}"
                        ))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    match added {
                        Ok(r) if r.status() == StatusCode::NO_CONTENT => {
                            members
                                .lock()
                                .await
                                .push(("Crash Test Dummies".into(), name));
                        }
                        _ => return,
                    }
                }
            }));
        }
        // Let the writers get a random number of changes acknowledged, then pull the
        // plug: wherever that leaves the writers, requests are in flight.
        let target = acknowledged_before + rng.gen_range(1..=WRITES_PER_ROUND);
        eventually(
            Duration::from_secs(60),
            &format!("round {round}: {target} acknowledged users"),
            || async { (users.lock().await.len() >= target).then_some(()) },
        )
        .await;
        node.kill9();
        for w in writers {
            let _ = w.await;
        }
    }

    let mut node = Node::start(&url, &dir, "final").await;
    let token = admin_token(&http, &node.base).await;
    verify(&http, &node.base, &token, &users, &members).await;
    let acknowledged = users.lock().await.len();
    assert!(
        acknowledged >= ROUNDS,
        "the writers wrote too little to prove anything: {acknowledged}"
    );
    node.kill9();

    eprintln!(
        "{acknowledged} acknowledged users and {} memberships survived {ROUNDS} kills",
        members.lock().await.len()
    );
    if !on_postgres() {
        let path = url.trim_start_matches("sqlite://");
        integrity_check(path).await;
    }
}

/// Every username on every page of a list.
async fn all_usernames(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> HashSet<String> {
    let mut names = HashSet::new();
    for page in 0.. {
        let r = http
            .get(format!("{base}{path}?pageSize=1000&pageIndex={page}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("list");
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = r.json().await.expect("json");
        let items = body["items"].as_array().expect("items");
        if items.is_empty() {
            return names;
        }
        names.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().expect("username").to_owned()),
        );
    }
    unreachable!("the loop returns on an empty page")
}

/// Every acknowledged user and membership is present.
async fn verify(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    users: &Mutex<Vec<String>>,
    members: &Mutex<Vec<(String, String)>>,
) {
    let present = all_usernames(http, base, token, "/api/security/users").await;
    for name in users.lock().await.iter() {
        assert!(present.contains(name), "acknowledged user {name} was lost");
    }
    let in_group = all_usernames(
        http,
        base,
        token,
        "/api/security/groups/Crash%20Test%20Dummies/users",
    )
    .await;
    for (_, user) in members.lock().await.iter() {
        assert!(
            in_group.contains(user),
            "acknowledged membership of {user} was lost"
        );
    }
    // Each acknowledged change has its audit record (written in its transaction).
    let created = audited(http, base, token, "user.created").await;
    for name in users.lock().await.iter() {
        assert!(
            created.contains(name),
            "the creation of {name} has no audit record"
        );
    }
    let added = audited(http, base, token, "group.memberAdded").await;
    for (_, user) in members.lock().await.iter() {
        assert!(
            added.contains(user),
            "the add of {user} has no audit record"
        );
    }
}

/// The target usernames of every audit event of a type.
async fn audited(http: &reqwest::Client, base: &str, token: &str, kind: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for page in 0.. {
        let r = http
            .get(format!(
                "{base}/api/security/audit?type={kind}&pageSize=1000&pageIndex={page}"
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("audit list");
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = r.json().await.expect("json");
        let items = body["items"].as_array().expect("items");
        if items.is_empty() {
            return names;
        }
        names.extend(
            items
                .iter()
                .filter_map(|e| e["target"]["userName"].as_str().map(str::to_owned)),
        );
    }
    unreachable!("the loop returns on an empty page")
}

/// SQLite's own consistency checks: the b-trees, and the full-text index.
async fn integrity_check(path: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .expect("open the database");
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check");
    assert_eq!(result, "ok");
    let fk: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .expect("foreign_key_check");
    assert!(fk.is_empty(), "foreign key violations: {fk:?}");
    sqlx::query("INSERT INTO users_fts (users_fts) VALUES ('integrity-check')")
        .execute(&mut conn)
        .await
        .expect("the full-text index matches the users table");
}
