//! Upgrading a database made by an earlier version: the server applies the pending
//! migrations at start, and what the older schema held answers the same through the API.

use std::sync::Arc;

use gatehouse::clock::ManualClock;
use reqwest::StatusCode;
use sqlx::Connection;
use sqlx::migrate::Migrator;

use crate::helpers::*;

/// The migrations of the test backend before integer keys in the membership tables
/// (SQLite 0005, PostgreSQL 0002).
fn before_integer_keys() -> Migrator {
    let (all, first_new) = if on_postgres() {
        (sqlx::migrate!("migrations/postgres"), 2)
    } else {
        (sqlx::migrate!("migrations/sqlite"), 5)
    };
    let earlier: Vec<_> = all
        .iter()
        .filter(|m| m.version < first_new)
        .cloned()
        .collect();
    assert!(!earlier.is_empty());
    Migrator {
        migrations: earlier.into(),
        ..Migrator::DEFAULT
    }
}

/// Users, groups, a child link and memberships as the schema before integer keys held
/// them (plain SQL both backends accept).
fn old_rows(users: &[(&str, &str)], groups: &[(&str, &str)], members: &[(&str, &str)]) -> String {
    let mut script = String::new();
    for (id, name) in users {
        script += &format!(
            "INSERT INTO users (id, username, email, username_lc, email_lc, created, modified) \
             VALUES ('{id}', '{name}', '{name}@x.io', '{name}', '{name}@x.io', 1, 1); \
             INSERT INTO user_identifiers (key, user_id) \
             VALUES ('{name}', '{id}'), ('{name}@x.io', '{id}'); "
        );
    }
    for (id, name) in groups {
        script += &format!(
            "INSERT INTO groups (id, name, name_key, created, modified) \
             VALUES ('{id}', '{name}', '{name}', 1, 1); \
             INSERT INTO group_closure (ancestor_id, descendant_id) VALUES ('{id}', '{id}'); "
        );
    }
    for (group, user) in members {
        script += &format!(
            "INSERT INTO group_members (group_id, user_id) VALUES ('{group}', '{user}'); "
        );
    }
    script
}

/// The first administrator as the older schema held it (the server creates one only in
/// an empty database): a user with the test password, in System Administrators.
fn old_admin() -> String {
    use gatehouse::domain::ids::{SYSTEM_ADMINISTRATORS_ID, SYSTEM_ADMINISTRATORS_NAME};
    use gatehouse::domain::names::name_key;
    let admin = uuid::Uuid::new_v4();
    let hash = gatehouse::auth::password::hash_blocking(ADMIN_PASSWORD).0;
    let (sys, name) = (SYSTEM_ADMINISTRATORS_ID, SYSTEM_ADMINISTRATORS_NAME);
    let key = name_key(name);
    format!(
        "INSERT INTO users (id, username, email, username_lc, email_lc, password_hash, \
         created, modified) VALUES ('{admin}', 'admin', 'admin@localhost', 'admin', \
         'admin@localhost', '{hash}', 1, 1); \
         INSERT INTO user_identifiers (key, user_id) \
         VALUES ('admin', '{admin}'), ('admin@localhost', '{admin}'); \
         INSERT INTO groups (id, name, name_key, type, created, modified) \
         VALUES ('{sys}', '{name}', '{key}', 'sys', 1, 1); \
         INSERT INTO group_closure (ancestor_id, descendant_id) VALUES ('{sys}', '{sys}'); \
         INSERT INTO group_members (group_id, user_id) VALUES ('{sys}', '{admin}');"
    )
}

async fn run_old(url: &str, script: &str) {
    let migrator = before_integer_keys();
    if on_postgres() {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
        sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let mut conn = sqlx::SqliteConnection::connect_with(
            &options.create_if_missing(true).foreign_keys(true),
        )
        .await
        .unwrap();
        migrator.run(&mut conn).await.unwrap();
        sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn memberships_names_and_counts_survive_the_move_to_integer_keys() {
    let (dir, url) = fresh_database().await;
    let (ann, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (outer, inner, other) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let (ann, bob) = (ann.to_string(), bob.to_string());
    let (outer, inner, other) = (outer.to_string(), inner.to_string(), other.to_string());
    let mut script = old_rows(
        &[(&ann, "ann"), (&bob, "bob")],
        &[(&outer, "outer"), (&inner, "inner"), (&other, "other")],
        &[(&inner, &ann), (&other, &bob), (&outer, &bob)],
    );
    script += &format!(
        "INSERT INTO group_children (parent_id, child_id) VALUES ('{outer}', '{inner}'); \
         INSERT INTO group_closure (ancestor_id, descendant_id) VALUES ('{outer}', '{inner}');"
    );
    script += &old_admin();
    run_old(&url, &script).await;

    let app = TestApp::spawn_on(Arc::clone(&dir), url, ManualClock::new(), |_| {}).await;
    let check = |group: &str, user: &str| {
        let path = format!("/api/security/groups/{}/users/{}", enc(group), enc(user));
        let app = &app;
        async move { app.head(&path).await.status }
    };
    for (group, user, status) in [
        ("inner", "ann", StatusCode::NO_CONTENT),
        ("outer", "ann@x.io", StatusCode::NO_CONTENT),
        (outer.as_str(), ann.as_str(), StatusCode::NO_CONTENT),
        ("other", "ann", StatusCode::NOT_FOUND),
        ("other", "bob", StatusCode::NO_CONTENT),
        ("outer", "bob@x.io", StatusCode::NO_CONTENT),
        ("inner", "bob", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(check(group, user).await, status, "{user} in {group}");
    }
    let outer_group = app.get("/api/security/groups/outer").await;
    outer_group.expect(StatusCode::OK);
    assert_eq!(outer_group.body["userCount"], 1, "{}", outer_group.text);
    assert_eq!(outer_group.body["childGroupCount"], 1);
    let members = app
        .get("/api/security/groups/outer/users?includeInherited=true")
        .await;
    members.expect(StatusCode::OK);
    assert_eq!(members.body["totalCount"], 2, "{}", members.text);

    // New groups and memberships after the upgrade.
    app.create_group("newer").await;
    app.put("/api/security/groups/newer/users/ann", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(check("newer", "ann").await, StatusCode::NO_CONTENT);
    assert_eq!(check("newer", "bob").await, StatusCode::NOT_FOUND);
    app.delete(&format!("/api/security/users/{bob}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(check("other", "bob").await, StatusCode::NOT_FOUND);
    let other_group = app.get("/api/security/groups/other").await;
    assert_eq!(other_group.body["userCount"], 0, "{}", other_group.text);
}
