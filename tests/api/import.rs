//! `gatehouse import`: the real binary loading JSON lines and CSV into the database a
//! running server uses, idempotently.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn import(app: &TestApp, file: &std::path::Path) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["import", "--quiet", "--database", &app.database_url])
        .arg(file)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("gatehouse runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stats = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        stats,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn jsonl_import_creates_users_groups_memberships_and_links_and_reruns_idempotently() {
    let app = TestApp::spawn().await;
    let file = app.dir.path().join("data.jsonl");
    let mut lines = vec![
        json!({"type": "group", "name": "Paper Street Soap Company", "description": "Soap"}),
        json!({"type": "group", "name": "Project Mayhem"}),
        json!({"type": "child", "parent": "Paper Street Soap Company", "child": "Project Mayhem"}),
    ];
    for i in 0..50 {
        lines.push(json!({"type": "user", "username": format!("member{i:02}"),
            "email": format!("member{i:02}@fightclub.com"), "firstName": "Space", "lastName": "Monkey",
            "groups": ["Project Mayhem"]}));
    }
    lines.push(json!({"type": "user", "email": "t.durden@fightclub.com", "password": PASSWORD}));
    lines.push(json!({"type": "member", "group": "Paper Street Soap Company", "user": "t.durden@fightclub.com"}));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();

    let (ok, stats, err) = import(&app, &file);
    assert!(ok, "{err}");
    assert_eq!(stats["users"], 51);
    assert_eq!(stats["groups"], 2);
    assert_eq!(stats["memberships"], 51);
    assert_eq!(stats["childLinks"], 1);

    // The running server sees it: nested membership, and the imported password works.
    app.head("/api/security/groups/Paper%20Street%20Soap%20Company/users/member07")
        .await
        .expect(StatusCode::NO_CONTENT);
    let token = app.login("t.durden@fightclub.com", PASSWORD).await;
    assert!(!token.is_empty());
    let members = app
        .get("/api/security/groups/Project%20Mayhem/users?pageSize=100")
        .await;
    assert_eq!(members.body["totalCount"], 50);

    // Again: nothing new, nothing broken.
    let (ok, stats, err) = import(&app, &file);
    assert!(ok, "{err}");
    assert_eq!(stats["users"], 0);
    assert_eq!(stats["usersSkipped"], 51);
    assert_eq!(stats["groupsSkipped"], 2);
    assert_eq!(stats["memberships"], 0);
    let all = app.get("/api/security/users?pageSize=1").await;
    assert_eq!(all.body["totalCount"], 52, "51 imported and the admin");
}

#[tokio::test]
async fn csv_import_reads_users_with_their_groups() {
    let app = TestApp::spawn().await;
    app.create_group("Soap").await;
    app.create_group("Paper Street").await;
    let file = app.dir.path().join("users.csv");
    std::fs::write(
        &file,
        "username,email,firstName,lastName,groups\n\
         marla,marla@fightclub.com,Marla,Singer,Soap;Paper Street\n\
         bob,bob@fightclub.com,Robert,Paulson,\n",
    )
    .unwrap();
    let (ok, stats, err) = import(&app, &file);
    assert!(ok, "{err}");
    assert_eq!(stats["users"], 2);
    assert_eq!(stats["memberships"], 2);
    let r = app.get("/api/security/users/marla/groups").await;
    let mut names: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Paper Street", "Soap"]);
    assert_eq!(
        app.get("/api/security/users/bob").await.body["lastName"],
        "Paulson"
    );
}

/// A record that breaks a rule is refused with its line and field, and the rest loads
/// (`--strict` makes that a failed run). Before issue #16 it stopped the import; the
/// rules were fewer then, and one bad line in a million should not undo the rest.
#[tokio::test]
async fn a_bad_record_is_refused_naming_its_line_and_field_and_the_rest_loads() {
    let app = TestApp::spawn().await;
    let file = app.dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"type\": \"user\", \"email\": \"fine@example.com\"}\n\
         {\"type\": \"user\", \"email\": \"not an email\"}\n",
    )
    .unwrap();
    let (ok, stats, err) = import(&app, &file);
    assert!(ok, "{err}");
    assert_eq!(stats["users"], 1, "{stats}");
    assert_eq!(stats["refused"], 1, "{stats}");
    assert_eq!(stats["problems"][0]["line"], 2, "{stats}");
    assert_eq!(stats["problems"][0]["field"], "email", "{stats}");
    assert!(err.contains("line 2"), "{err}");
    app.get("/api/security/users/fine@example.com")
        .await
        .expect(StatusCode::OK);
}

/// What the file cannot mean (a line that is not a record, a group that exists
/// nowhere) stops the import with its line, and nothing of its batch is written.
#[tokio::test]
async fn a_record_that_cannot_be_read_stops_the_import_and_writes_nothing_of_its_batch() {
    let app = TestApp::spawn().await;
    let file = app.dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"type\": \"user\", \"email\": \"fine@example.com\"}\n\
         {\"type\": \"user\", \"email\": \"x@example.com\", \"groups\": [\"Nowhere\"]}\n",
    )
    .unwrap();
    let (ok, _, err) = import(&app, &file);
    assert!(!ok);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("Nowhere"), "{err}");
    app.get("/api/security/users/fine@example.com")
        .await
        .expect(StatusCode::NOT_FOUND);
    std::fs::write(&file, "{\"type\": \"user\", \"email\": 7}\n").unwrap();
    let (ok, _, err) = import(&app, &file);
    assert!(!ok);
    assert!(err.contains("line 1"), "{err}");
}

/// The unfiltered user list's `totalCount` is kept by triggers on SQLite rather than
/// counted: it must follow every way users come and go.
#[tokio::test]
async fn the_user_total_follows_creates_deletes_imports_and_api_keys() {
    let app = TestApp::spawn().await;
    let total = |r: &Resp| r.body["totalCount"].as_i64().unwrap();
    let listed = |r: &Resp| r.body["items"].as_array().unwrap().len() as i64;
    let start = app.get("/api/security/users?pageSize=1000").await;
    assert_eq!(total(&start), listed(&start), "the admin alone");

    for i in 0..5 {
        app.create_user(&format!("counted{i}"), &format!("counted{i}@example.com"))
            .await;
    }
    // A refused duplicate must not count.
    app.post(
        "/api/security/users",
        json!({"username": "counted0", "email": "other@example.com"}),
    )
    .await
    .expect(StatusCode::CONFLICT);
    app.delete("/api/security/users/counted3")
        .await
        .expect(StatusCode::NO_CONTENT);
    app.post("/api/security/apiKeys", json!({"name": "counted key"}))
        .await
        .expect(StatusCode::CREATED);
    let file = app.dir.path().join("more.jsonl");
    let lines: String = (0..7)
        .map(|i| format!("{}\n", json!({"type": "user", "username": format!("imported{i}"), "email": format!("imported{i}@example.com")})))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let (ok, _, err) = import(&app, &file);
    assert!(ok, "{err}");
    import(&app, &file); // a rerun skips them all

    let all = app.get("/api/security/users?pageSize=1000").await;
    assert_eq!(total(&all), listed(&all));
    assert_eq!(total(&all), total(&start) + 5 - 1 + 1 + 7);
}

/// A record with an `id` is that user, even after a rename, and no other: an unknown id
/// with another user's names is a conflict, as is a known id with another user's email.
#[tokio::test]
async fn a_record_with_an_id_matches_only_the_user_with_that_id() {
    let app = TestApp::spawn().await;
    app.create_group("Soap").await;
    let bob = app.create_user("bob", "bob@example.com").await;
    let bob_id = bob["id"].as_str().unwrap();
    let marla_id = "0a8b3c9e-5a8f-4a43-9a55-1a3c5e7f9b10";
    let file = app.dir.path().join("ids.jsonl");
    let lines = [
        json!({"type": "user", "id": marla_id, "username": "marla", "email": "marla@example.com"}),
        json!({"type": "user", "id": bob_id, "username": "robert", "email": "robert@example.com",
               "groups": ["Soap"]}),
        json!({"type": "user", "id": "6f1d8f5e-1b2c-4d3e-8f9a-0b1c2d3e4f5a", "username": "bob",
               "email": "bob@example.com", "groups": ["Soap"]}),
        json!({"type": "user", "id": marla_id, "username": "marla", "email": "bob@example.com",
               "groups": ["Soap"]}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let (ok, stats, err) = import(&app, &file);
    assert!(ok, "{err}");
    assert_eq!(stats["users"], 1, "{stats}");
    assert_eq!(stats["usersSkipped"], 1, "{stats}");
    assert_eq!(stats["conflicts"], 2, "{stats}");
    assert_eq!(stats["memberships"], 1, "{stats}");
    let lines: Vec<&Value> = stats["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["line"])
        .collect();
    assert_eq!(lines, [3, 4], "{stats}");
    assert_eq!(
        app.get("/api/security/users/marla").await.body["id"],
        marla_id
    );
    // Bob kept his names (an import does not edit users) and got the group.
    app.head("/api/security/groups/Soap/users/bob")
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get("/api/security/users/robert")
        .await
        .expect(StatusCode::NOT_FOUND);
}
