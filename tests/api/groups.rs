//! `/groups`: create, read (by id and by URL-encoded name), update, delete, list, and
//! the validation of everything a client can send.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const GROUPS: &str = "/api/security/groups";
const SYSADMINS: &str = "System Administrators";

/// The path of a group addressed by id or name (percent-encoded).
fn group_path(key: &str) -> String {
    format!("{GROUPS}/{}", enc(key))
}

/// The id of a JSON resource.
fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// The `name` of every item of a paged list, in order.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a paged list: {page}"))
        .iter()
        .map(|g| g["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Asserts an RFC 3339 UTC timestamp with milliseconds, e.g. `2024-01-02T03:04:05.678Z`.
#[track_caller]
fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp string: {v}"));
    assert_eq!(s.len(), 24, "timestamp shape: {s}");
    assert!(s.ends_with('Z'), "UTC timestamp: {s}");
    assert_eq!(&s[19..20], ".", "milliseconds: {s}");
    assert!(
        gatehouse::clock::parse_rfc3339(s).is_some(),
        "parses as RFC 3339: {s}"
    );
}

/// The number of groups, System Administrators included.
async fn group_count(app: &TestApp) -> i64 {
    let r = app.get(GROUPS).await;
    r.expect(StatusCode::OK);
    r.body["totalCount"].as_i64().expect("totalCount")
}

// ---------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn create_returns_201_with_the_full_group_shape() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            GROUPS,
            json!({"name": "Paper Street Soap Company",
                   "description": "Soap, and other things",
                   "custom": {"city": "Wilmington", "members": 2}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    let g = &r.body;
    let keys: std::collections::BTreeSet<&str> = g
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "description",
            "type",
            "userCount",
            "childGroupCount",
            "custom",
            "created",
            "modified"
        ]
        .into_iter()
        .collect(),
        "group JSON keys: {g}"
    );
    assert!(
        uuid::Uuid::parse_str(&id_of(g)).is_ok(),
        "id is a UUID: {g}"
    );
    assert_eq!(g["name"], "Paper Street Soap Company");
    assert_eq!(g["description"], "Soap, and other things");
    assert_eq!(g["type"], "contensis");
    assert_eq!(g["userCount"], 0);
    assert_eq!(g["childGroupCount"], 0);
    assert_eq!(g["custom"], json!({"city": "Wilmington", "members": 2}));
    assert_timestamp(&g["created"]);
    assert_timestamp(&g["modified"]);
    assert_eq!(g["created"], g["modified"]);

    // What was created is what is read back.
    let read = app.get(&group_path(&id_of(g))).await;
    read.expect(StatusCode::OK);
    assert_eq!(&read.body, g);
}

#[tokio::test]
async fn create_with_only_a_name_defaults_type_description_and_custom() {
    let app = TestApp::spawn().await;
    let g = app.create_group("Project Mayhem").await;
    assert_eq!(g["name"], "Project Mayhem");
    assert_eq!(g["type"], "contensis");
    assert_eq!(g["description"], Value::Null);
    assert_eq!(g["custom"], json!({}));
    assert_eq!(g["userCount"], 0);
    assert_eq!(g["childGroupCount"], 0);
}

#[tokio::test]
async fn create_accepts_type_external_and_explicit_contensis() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            GROUPS,
            json!({"name": "Directory Mirror", "type": "external"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["type"], "external");
    let read = app.get(&group_path("Directory Mirror")).await;
    read.expect(StatusCode::OK);
    assert_eq!(read.body["type"], "external");

    let r = app
        .post(GROUPS, json!({"name": "Plain", "type": "contensis"}))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["type"], "contensis");
}

#[tokio::test]
async fn create_with_type_sys_or_unknown_type_is_422_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let before = group_count(&app).await;
    for (name, kind) in [
        ("Fake Admins", json!("sys")),
        ("Fake Admins", json!("SYS")),
        ("Weird", json!("wizard")),
        ("Weird", json!("")),
    ] {
        let r = app.post(GROUPS, json!({"name": name, "type": kind})).await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "type", "type {kind}: {}", r.text);
        app.get(&group_path(name))
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    assert_eq!(group_count(&app).await, before);
}

#[tokio::test]
async fn create_duplicate_name_case_insensitively_is_409() {
    let app = TestApp::spawn().await;
    let first = app.create_group("Paper Street Soap Company").await;
    for dup in [
        "Paper Street Soap Company",
        "paper street soap company",
        "PAPER STREET SOAP COMPANY",
    ] {
        app.post(GROUPS, json!({"name": dup}))
            .await
            .expect(StatusCode::CONFLICT);
    }
    // Unicode case folding, not just ASCII.
    app.create_group("ÉCOLE Admins").await;
    app.post(GROUPS, json!({"name": "école admins"}))
        .await
        .expect(StatusCode::CONFLICT);
    // The built-in group's name is taken too.
    app.post(GROUPS, json!({"name": "system administrators"}))
        .await
        .expect(StatusCode::CONFLICT);
    // The original is untouched and still the only one.
    let r = app.get(&format!("{GROUPS}?q=paper")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 1);
    assert_eq!(r.body["items"][0]["id"], first["id"]);
}

#[tokio::test]
async fn create_reads_property_names_case_insensitively() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            GROUPS,
            json!({"Name": "Paper Street Soap Company", "Description": "As the docs send it",
                   "TYPE": "external", "Custom": {"KeepMyCase": true}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["name"], "Paper Street Soap Company");
    assert_eq!(r.body["description"], "As the docs send it");
    assert_eq!(r.body["type"], "external");
    // Keys inside custom are data, not property names: they keep their case.
    assert_eq!(r.body["custom"], json!({"KeepMyCase": true}));

    let r = app
        .put(
            &group_path("Paper Street Soap Company"),
            Some(json!({"DESCRIPTION": "Changed"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["description"], "Changed");
}

#[tokio::test]
async fn create_ignores_unknown_properties_and_read_only_ones() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            GROUPS,
            json!({"name": "Ignorer", "colour": "blue", "userCount": 99, "childGroupCount": 7,
                   "id": "6254736c-70e1-43b0-b769-f8e0f6359862"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["userCount"], 0);
    assert_eq!(r.body["childGroupCount"], 0);
    assert!(r.body.get("colour").is_none());
}

#[tokio::test]
async fn names_of_255_characters_and_descriptions_of_2000_are_accepted() {
    let app = TestApp::spawn().await;
    let name = "n".repeat(255);
    let r = app
        .post(
            GROUPS,
            json!({"name": name, "description": "d".repeat(2000)}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["name"], name);
    // Characters, not bytes.
    app.post(GROUPS, json!({"name": "é".repeat(255)}))
        .await
        .expect(StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn get_by_id_and_by_url_encoded_name() {
    let app = TestApp::spawn().await;
    let g = app.create_group("Paper Street Soap Company").await;
    let id = id_of(&g);
    for path in [
        format!("{GROUPS}/{id}"),
        format!("{GROUPS}/{}", id.to_uppercase()),
        format!("{GROUPS}/Paper%20Street%20Soap%20Company"),
        format!("{GROUPS}/paper%20street%20soap%20company"),
        "/api/management/security/groups/Paper%20Street%20Soap%20Company".to_owned(),
        format!("{GROUPS}/Paper%20Street%20Soap%20Company/"),
    ] {
        let r = app.get(&path).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], g["id"], "GET {path}");
        assert_eq!(r.body["name"], "Paper Street Soap Company");
    }
}

#[tokio::test]
async fn names_with_ampersand_plus_and_percent_round_trip() {
    let app = TestApp::spawn().await;
    let cases: [(&str, &[&str]); 4] = [
        (
            "Sales & Marketing",
            &["Sales%20%26%20Marketing", "Sales%20&%20Marketing"],
        ),
        (
            "C++ Developers",
            &["C%2B%2B%20Developers", "C++%20Developers"],
        ),
        ("100% Club", &["100%25%20Club"]),
        (
            "a+b=c?d#e/f",
            &["a%2Bb%3Dc%3Fd%23e%2Ff", "a+b=c%3Fd%23e%2Ff"],
        ),
    ];
    for (name, paths) in cases {
        let created = app.create_group(name).await;
        assert_eq!(created["name"], name);
        for p in paths.iter().copied().chain([enc(name).as_str()]) {
            let r = app.get(&format!("{GROUPS}/{p}")).await;
            r.expect(StatusCode::OK);
            assert_eq!(r.body["id"], created["id"], "GET {p}");
            assert_eq!(r.body["name"], name, "GET {p}");
        }
    }
    // A literal `+` is a plus, never a space.
    app.create_group("Blue Team").await;
    let r = app.get(&format!("{GROUPS}/Blue+Team")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Blue+Team"}));

    // They can be updated and deleted by those names too.
    app.put(
        &format!("{GROUPS}/C++%20Developers"),
        Some(json!({"description": "plus plus"})),
    )
    .await
    .expect(StatusCode::OK);
    app.delete(&format!("{GROUPS}/100%25%20Club"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get(&group_path("100% Club"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_group_is_404_naming_it() {
    let app = TestApp::spawn().await;
    let r = app.get(&format!("{GROUPS}/No%20Such%20Group")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "No Such Group"}));

    let ghost = "6254736c-70e1-43b0-b769-f8e0f6359862";
    let r = app.get(&format!("{GROUPS}/{ghost}")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": ghost}));

    let r = app
        .put(
            &format!("{GROUPS}/No%20Such%20Group"),
            Some(json!({"description": "x"})),
        )
        .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "No Such Group"}));

    let r = app.delete(&format!("{GROUPS}/No%20Such%20Group")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "No Such Group"}));
}

#[tokio::test]
async fn a_group_named_like_another_groups_id_is_found_by_id_first() {
    let app = TestApp::spawn().await;
    let a = app.create_group("A").await;
    let a_id = id_of(&a);
    // A group whose *name* is A's id: the id interpretation wins.
    let b = app.create_group(&a_id).await;
    let r = app.get(&group_path(&a_id)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], a["id"]);
    // A UUID that is no group's id falls back to being a name.
    let name_like_id = "6254736c-70e1-43b0-b769-f8e0f6359862";
    let c = app.create_group(name_like_id).await;
    let r = app.get(&group_path(name_like_id)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], c["id"]);
    assert_ne!(b["id"], c["id"]);
}

// ---------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn put_updates_name_description_and_custom() {
    let app = TestApp::spawn().await;
    let g = app.create_group("Old Name").await;
    app.clock.advance_ms(5_000);
    let r = app
        .put(
            &group_path("Old Name"),
            Some(json!({"name": "New Name", "description": "Now described",
                        "custom": {"k": [1, 2, 3]}})),
        )
        .await;
    r.expect(StatusCode::OK);
    let u = &r.body;
    assert_eq!(u["id"], g["id"]);
    assert_eq!(u["name"], "New Name");
    assert_eq!(u["description"], "Now described");
    assert_eq!(u["custom"], json!({"k": [1, 2, 3]}));
    assert_eq!(u["type"], "contensis");
    assert_eq!(u["created"], g["created"]);
    assert_ne!(u["modified"], g["modified"], "modified moves on update");
    assert_timestamp(&u["modified"]);

    let read = app.get(&group_path("New Name")).await;
    read.expect(StatusCode::OK);
    assert_eq!(&read.body, u);
    let r = app.get(&group_path("Old Name")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Old Name"}));
    // The old name is free again.
    app.create_group("Old Name").await;
}

#[tokio::test]
async fn put_with_some_fields_leaves_the_others_and_null_description_clears() {
    let app = TestApp::spawn().await;
    app.post(
        GROUPS,
        json!({"name": "Keep", "description": "first", "custom": {"a": 1}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let r = app
        .put(&group_path("Keep"), Some(json!({"description": "second"})))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["name"], "Keep");
    assert_eq!(r.body["description"], "second");
    assert_eq!(r.body["custom"], json!({"a": 1}));

    let r = app
        .put(&group_path("Keep"), Some(json!({"description": null})))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["custom"], json!({"a": 1}));

    // custom is replaced as a whole.
    let r = app
        .put(&group_path("Keep"), Some(json!({"custom": {"b": 2}})))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["custom"], json!({"b": 2}));
}

#[tokio::test]
async fn put_of_a_whole_fetched_group_ignores_read_only_fields() {
    let app = TestApp::spawn().await;
    let g = app.create_group("Round Trip").await;
    // What the npm client does: fetch, change a field, send the whole object back.
    let mut body = app.get(&group_path("Round Trip")).await.body;
    body["description"] = json!("edited");
    body["userCount"] = json!(42);
    body["childGroupCount"] = json!(7);
    body["created"] = json!("2000-01-01T00:00:00.000Z");
    let r = app.put(&group_path("Round Trip"), Some(body)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], g["id"]);
    assert_eq!(r.body["description"], "edited");
    assert_eq!(r.body["userCount"], 0);
    assert_eq!(r.body["childGroupCount"], 0);
    assert_eq!(r.body["created"], g["created"]);
}

#[tokio::test]
async fn put_cannot_turn_a_group_into_a_sys_group() {
    let app = TestApp::spawn().await;
    app.create_group("Wannabe").await;
    let r = app
        .put(&group_path("Wannabe"), Some(json!({"type": "sys"})))
        .await;
    assert!(
        r.status == StatusCode::OK || r.status == StatusCode::UNPROCESSABLE_ENTITY,
        "type on update is ignored or refused, got {}: {}",
        r.status,
        r.text
    );
    let read = app.get(&group_path("Wannabe")).await;
    read.expect(StatusCode::OK);
    assert_eq!(read.body["type"], "contensis");
    app.delete(&group_path("Wannabe"))
        .await
        .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn rename_onto_an_existing_name_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let a = app.create_group("Alpha").await;
    app.create_group("Beta").await;
    for target in ["Beta", "beta", "BETA", SYSADMINS] {
        app.put(&group_path("Alpha"), Some(json!({"name": target})))
            .await
            .expect(StatusCode::CONFLICT);
    }
    let read = app.get(&group_path("Alpha")).await;
    read.expect(StatusCode::OK);
    assert_eq!(read.body, a);
    // Changing only the case of one's own name is not a collision.
    let r = app
        .put(&group_path("Alpha"), Some(json!({"name": "ALPHA"})))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["name"], "ALPHA");
}

#[tokio::test]
async fn system_administrators_cannot_be_renamed_or_deleted_but_its_description_can_change() {
    let app = TestApp::spawn().await;
    let sys = app.get(&group_path(SYSADMINS)).await;
    sys.expect(StatusCode::OK);
    assert_eq!(sys.body["type"], "sys");
    assert_eq!(sys.body["name"], SYSADMINS);
    assert_eq!(sys.body["userCount"], 1, "the bootstrap admin");

    for new_name in ["Admins", "system administrators"] {
        app.put(&group_path(SYSADMINS), Some(json!({"name": new_name})))
            .await
            .expect(StatusCode::CONFLICT);
    }
    app.get(&group_path("Admins"))
        .await
        .expect(StatusCode::NOT_FOUND);

    app.delete(&group_path(SYSADMINS))
        .await
        .expect(StatusCode::CONFLICT);
    app.delete(&format!("{GROUPS}/{}", id_of(&sys.body)))
        .await
        .expect(StatusCode::CONFLICT);

    let r = app
        .put(
            &group_path(SYSADMINS),
            Some(json!({"description": "The people in charge"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["description"], "The people in charge");
    assert_eq!(r.body["name"], SYSADMINS);
    assert_eq!(r.body["type"], "sys");

    // The npm client sends the whole fetched object back, name included.
    let mut whole = app.get(&group_path(SYSADMINS)).await.body;
    whole["description"] = json!("Again");
    let r = app.put(&group_path(SYSADMINS), Some(whole)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["description"], "Again");

    let read = app.get(&group_path(SYSADMINS)).await;
    read.expect(StatusCode::OK);
    assert_eq!(read.body["name"], SYSADMINS);
    assert_eq!(read.body["id"], sys.body["id"]);
    assert_eq!(read.body["userCount"], 1);
}

// ---------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn delete_is_204_and_takes_memberships_and_child_links_but_not_users() {
    let app = TestApp::spawn().await;
    let parent = app.create_group("Parent").await;
    app.create_group("Doomed").await;
    app.create_group("Child").await;
    let u = app.create_user("udoomed", "udoomed@example.com").await;
    let v = app.create_user("vchild", "vchild@example.com").await;
    for p in [
        format!("{GROUPS}/Parent/groups/Doomed"),
        format!("{GROUPS}/Doomed/groups/Child"),
        format!("{GROUPS}/Doomed/users/udoomed"),
        format!("{GROUPS}/Child/users/vchild"),
    ] {
        app.put(&p, None).await.expect(StatusCode::NO_CONTENT);
    }
    app.head(&format!("{GROUPS}/Parent/users/vchild"))
        .await
        .expect(StatusCode::NO_CONTENT);

    let r = app.delete(&group_path("Doomed")).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty(), "204 has no body: {}", r.text);

    let r = app.get(&group_path("Doomed")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Doomed"}));
    app.delete(&group_path("Doomed"))
        .await
        .expect(StatusCode::NOT_FOUND);

    // Users stay, without the membership.
    for (user, name) in [(&u, "udoomed"), (&v, "vchild")] {
        let r = app.get(&format!("/api/security/users/{name}")).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], user["id"]);
    }
    let r = app
        .get("/api/security/users/udoomed/groups?includeInherited=true")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 0, "{}", r.body);

    // The child stays, unlinked; the parent lost its child and the inherited member.
    let child = app.get(&group_path("Child")).await;
    child.expect(StatusCode::OK);
    assert_eq!(child.body["userCount"], 1);
    let p = app.get(&group_path("Parent")).await;
    p.expect(StatusCode::OK);
    assert_eq!(p.body["id"], parent["id"]);
    assert_eq!(p.body["childGroupCount"], 0);
    app.head(&format!("{GROUPS}/Parent/users/vchild"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = app
        .get("/api/security/users/vchild/groups?includeInherited=true")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), ["Child"]);

    // A new group of the same name starts empty: nothing stale survives.
    let again = app.create_group("Doomed").await;
    assert_ne!(again["id"], json!(null));
    let r = app.get(&group_path("Doomed")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["userCount"], 0);
    assert_eq!(r.body["childGroupCount"], 0);
    app.head(&format!("{GROUPS}/Doomed/users/udoomed"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn list_pages_with_defaults_and_bounds() {
    let app = TestApp::spawn().await;
    for i in (0..30).rev() {
        app.create_group(&format!("Group {i:02}")).await;
    }
    let r = app.get(GROUPS).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageIndex"], 0);
    assert_eq!(r.body["pageSize"], 25);
    assert_eq!(r.body["totalCount"], 31, "30 plus System Administrators");
    assert_eq!(r.body["pageCount"], 2);
    let first = names(&r.body);
    assert_eq!(first.len(), 25);
    assert_eq!(first[0], "Group 00", "default order is by name");
    assert_eq!(first[24], "Group 24");

    let r = app.get(&format!("{GROUPS}?pageIndex=1")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageIndex"], 1);
    let second = names(&r.body);
    assert_eq!(second.len(), 6);
    assert_eq!(second[5], SYSADMINS);

    let r = app.get(&format!("{GROUPS}?PAGESIZE=10&pageindex=3")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageSize"], 10);
    assert_eq!(r.body["pageCount"], 4);
    assert_eq!(names(&r.body), [SYSADMINS]);

    let r = app.get(&format!("{GROUPS}?pageIndex=7")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["totalCount"], 31);

    let r = app.get(&format!("{GROUPS}?pageSize=1000")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body).len(), 31);

    for bad in [
        "pageSize=1001",
        "pageSize=0",
        "pageSize=ten",
        "pageIndex=-1",
        "pageIndex=x",
    ] {
        app.get(&format!("{GROUPS}?{bad}"))
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn list_q_is_a_case_insensitive_contains_over_name() {
    let app = TestApp::spawn().await;
    for n in [
        "Paper Street Soap Company",
        "SOAP makers",
        "Fight Club",
        "100% Club",
        "under_score",
        "underXscore",
    ] {
        app.create_group(n).await;
    }
    let cases: [(&str, &[&str]); 6] = [
        ("soap", &["Paper Street Soap Company", "SOAP makers"]),
        ("CLUB", &["100% Club", "Fight Club"]),
        ("%25", &["100% Club"]),
        ("_", &["under_score"]),
        ("Street%20Soap", &["Paper Street Soap Company"]),
        ("nothing-like-this", &[]),
    ];
    for (q, expected) in cases {
        let r = app.get(&format!("{GROUPS}?q={q}")).await;
        r.expect(StatusCode::OK);
        assert_eq!(names(&r.body), expected, "q={q}");
        assert_eq!(r.body["totalCount"], expected.len(), "q={q}");
    }
}

#[tokio::test]
async fn list_order_by_name_descending_created_and_unknown_fields() {
    let app = TestApp::spawn().await;
    for n in ["bravo", "Alpha", "charlie"] {
        app.clock.advance_ms(1_000);
        app.create_group(n).await;
    }
    let r = app.get(&format!("{GROUPS}?order=-name")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), [SYSADMINS, "charlie", "bravo", "Alpha"]);

    let r = app.get(&format!("{GROUPS}?order=name")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), ["Alpha", "bravo", "charlie", SYSADMINS]);

    let r = app.get(&format!("{GROUPS}?order=created")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), [SYSADMINS, "bravo", "Alpha", "charlie"]);

    let r = app.get(&format!("{GROUPS}?ORDER=-Created")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), ["charlie", "Alpha", "bravo", SYSADMINS]);

    let r = app.get(&format!("{GROUPS}?order=type,-name")).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), ["charlie", "bravo", "Alpha", SYSADMINS]);

    for bad in [
        "order=colour",
        "order=name,-bogus",
        "order=password",
        "order=-",
    ] {
        let r = app.get(&format!("{GROUPS}?{bad}")).await;
        r.expect(StatusCode::BAD_REQUEST);
    }
}

// ---------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------

/// Bodies that must be refused on create and on update, with the status.
fn bad_bodies() -> Vec<(String, StatusCode)> {
    let s400 = StatusCode::BAD_REQUEST;
    let s422 = StatusCode::UNPROCESSABLE_ENTITY;
    vec![
        (r#"{"name": "#.to_owned(), s400),
        (r#"{"name": "x",}"#.to_owned(), s400),
        ("not json".to_owned(), s400),
        (r#"{"name": 5}"#.to_owned(), s400),
        (r#"{"name": ["a"]}"#.to_owned(), s400),
        (r#"{"name": "Ok Name", "description": 7}"#.to_owned(), s400),
        (
            r#"{"name": "Ok Name", "custom": "string"}"#.to_owned(),
            s400,
        ),
        (r#"{"name": "Ok Name", "custom": [1, 2]}"#.to_owned(), s400),
        (r#"{"name": "Ok Name", "type": 3}"#.to_owned(), s400),
        (r#""Ok Name""#.to_owned(), s400),
        ("null".to_owned(), s400),
        (r#"{"name": ""}"#.to_owned(), s422),
        (r#"{"name": "   "}"#.to_owned(), s422),
        (r#"{"name": "bell\u0007"}"#.to_owned(), s422),
        (json!({"name": "n".repeat(256)}).to_string(), s422),
        (json!({"name": "é".repeat(256)}).to_string(), s422),
        (
            json!({"name": "Ok Name", "description": "d".repeat(2001)}).to_string(),
            s422,
        ),
        (
            json!({"name": "Ok Name", "custom": {"big": "x".repeat(70 * 1024)}}).to_string(),
            s422,
        ),
    ]
}

#[tokio::test]
async fn bad_create_bodies_are_400_or_422_never_500_and_create_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin.clone();
    let before = group_count(&app).await;
    let mut cases = bad_bodies();
    cases.push(("{}".to_owned(), StatusCode::UNPROCESSABLE_ENTITY));
    cases.push((
        r#"{"name": null}"#.to_owned(),
        StatusCode::UNPROCESSABLE_ENTITY,
    ));
    cases.push(("".to_owned(), StatusCode::BAD_REQUEST));
    for (body, status) in cases {
        let r = app
            .send_raw(
                Method::POST,
                GROUPS,
                Some(&admin),
                "application/json",
                body.clone().into_bytes(),
            )
            .await;
        assert_eq!(
            r.status,
            status,
            "POST {}: {}",
            body.chars().take(80).collect::<String>(),
            r.text
        );
        r.expect(status);
    }
    assert_eq!(group_count(&app).await, before);
    app.get(&group_path("Ok Name"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(256)}), "name"),
        (json!({"description": "x"}), "name"),
        (
            json!({"name": "ok", "description": "d".repeat(2001)}),
            "description",
        ),
    ] {
        let r = app.post(GROUPS, body).await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], field, "{}", r.text);
    }
}

#[tokio::test]
async fn bad_update_bodies_are_400_or_422_never_500_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin.clone();
    app.post(
        GROUPS,
        json!({"name": "Stable", "description": "as created", "custom": {"a": 1}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let before = app.get(&group_path("Stable")).await.body;
    let mut cases = bad_bodies();
    cases.push((
        r#"{"name": null}"#.to_owned(),
        StatusCode::UNPROCESSABLE_ENTITY,
    ));
    cases.push(("".to_owned(), StatusCode::BAD_REQUEST));
    for (body, status) in cases {
        let r = app
            .send_raw(
                Method::PUT,
                &group_path("Stable"),
                Some(&admin),
                "application/json",
                body.clone().into_bytes(),
            )
            .await;
        assert_eq!(
            r.status,
            status,
            "PUT {}: {}",
            body.chars().take(80).collect::<String>(),
            r.text
        );
        r.expect(status);
        let now = app.get(&group_path("Stable")).await;
        now.expect(StatusCode::OK);
        assert_eq!(
            now.body,
            before,
            "after PUT {}",
            body.chars().take(80).collect::<String>()
        );
    }
    assert_eq!(group_count(&app).await, 2);
}

#[tokio::test]
async fn array_bodies_are_400_and_never_read_as_positional_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin.clone();
    app.post(
        GROUPS,
        json!({"name": "Stable", "description": "as created"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let before = app.get(&group_path("Stable")).await.body;
    let mut outcomes = Vec::new();
    for body in [
        r#"["Positional Name", "positional description"]"#,
        r#"["Positional Name"]"#,
        "[]",
    ] {
        for (method, path) in [
            (Method::POST, GROUPS.to_owned()),
            (Method::PUT, group_path("Stable")),
        ] {
            app.clock.advance_ms(1_000);
            let r = app
                .send_raw(
                    method.clone(),
                    &path,
                    Some(&admin),
                    "application/json",
                    body.as_bytes().to_vec(),
                )
                .await;
            outcomes.push(format!(
                "{method} {body} -> {} {}",
                r.status.as_u16(),
                r.text
            ));
        }
    }
    let positional = app.get(&group_path("Positional Name")).await;
    let now = app.get(&group_path("Stable")).await;
    let all_400 = outcomes.iter().all(|o| o.contains(" -> 400 "));
    assert!(
        all_400 && positional.status == StatusCode::NOT_FOUND && now.body == before,
        "array bodies must be 400 and change nothing:\n{}\nGET Positional Name -> {}\nStable now: {}",
        outcomes.join("\n"),
        positional.status,
        now.text
    );
    assert_eq!(group_count(&app).await, 2);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_without_500() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Huge", "description": "x".repeat(1024 * 1024 + 10)});
    let r = app.post(GROUPS, body).await;
    assert!(
        r.status == StatusCode::PAYLOAD_TOO_LARGE || r.status == StatusCode::UNPROCESSABLE_ENTITY,
        "got {}: {}",
        r.status,
        r.text
    );
    r.expect(r.status);
    app.get(&group_path("Huge"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------
// Who may call
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn group_endpoints_are_401_without_a_token_and_403_for_non_admins() {
    let app = TestApp::spawn().await;
    app.create_group("Existing").await;
    let (_, token) = app.user_with_token("plainuser").await;

    for (method, path, body) in [
        (Method::GET, GROUPS.to_owned(), None),
        (
            Method::POST,
            GROUPS.to_owned(),
            Some(json!({"name": "Sneaky"})),
        ),
        (Method::GET, group_path("Existing"), None),
        (
            Method::PUT,
            group_path("Existing"),
            Some(json!({"name": "Hijacked"})),
        ),
        (Method::DELETE, group_path("Existing"), None),
    ] {
        let r = app.send(method.clone(), &path, None, body.clone()).await;
        r.expect(StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.body["message"],
            "Authorization has been denied for this request."
        );
        app.send(method.clone(), &path, Some(&token), body)
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    app.get(&group_path("Sneaky"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = app.get(&group_path("Existing")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["name"], "Existing");
}
