//! Group membership: users in groups (every example of the Contensis "Add user to a
//! group" page), bulk adds, removal, membership checks, the last-administrator rule,
//! and nested groups (child links, cycles, diamonds, deep chains, inherited listings).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const GROUPS: &str = "/api/security/groups";
const USERS: &str = "/api/security/users";
const SYSADMINS: &str = "System Administrators";
const PAPER: &str = "Paper Street Soap Company";

/// `/api/security/groups/{group}` with the group percent-encoded.
fn gp(group: &str) -> String {
    format!("{GROUPS}/{}", enc(group))
}

/// `/api/security/groups/{group}/users/{user}`.
fn member_path(group: &str, user: &str) -> String {
    format!("{}/users/{}", gp(group), enc(user))
}

/// `/api/security/groups/{parent}/groups/{child}`.
fn child_path(parent: &str, child: &str) -> String {
    format!("{}/groups/{}", gp(parent), enc(child))
}

/// `/api/security/users/{user}`.
fn up(user: &str) -> String {
    format!("{USERS}/{}", enc(user))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// A user without a password (cheap: no hashing), `{name}@example.com`.
async fn user(app: &TestApp, name: &str) -> Value {
    let r = app
        .post(
            USERS,
            json!({"username": name, "email": format!("{name}@example.com")}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    r.body
}

/// Adds a user to a group, expecting 204.
async fn join(app: &TestApp, group: &str, user: &str) {
    let r = app.put(&member_path(group, user), None).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "add {user} to {group}: {}",
        r.text
    );
}

/// Makes `child` a child of `parent`, expecting 204.
async fn link(app: &TestApp, parent: &str, child: &str) {
    let r = app.put(&child_path(parent, child), None).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "link {parent} > {child}: {}",
        r.text
    );
}

/// The status of `HEAD /groups/{group}/users/{user}`, asserting there is no body.
async fn is_member(app: &TestApp, group: &str, user: &str) -> StatusCode {
    let r = app.head(&member_path(group, user)).await;
    assert!(r.text.is_empty(), "HEAD has no body: {}", r.text);
    r.status
}

/// The status of `HEAD /users/{user}/groups/{list}` (`list` already encoded).
async fn in_any(app: &TestApp, user: &str, list: &str) -> StatusCode {
    let r = app.head(&format!("{}/groups/{list}", up(user))).await;
    assert!(r.text.is_empty(), "HEAD has no body: {}", r.text);
    r.status
}

/// A GET expected to be 200; returns the body.
async fn ok(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    r.expect(StatusCode::OK);
    r.body
}

/// The usernames of a paged user list, in order.
fn usernames(page: &Value) -> Vec<String> {
    items(page, "username")
}

/// The names of a paged group list, in order.
fn names(page: &Value) -> Vec<String> {
    items(page, "name")
}

fn items(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a paged list: {page}"))
        .iter()
        .map(|i| i[key].as_str().expect("a string").to_owned())
        .collect()
}

/// The seed page's cast: group `Paper Street Soap Company` and user `tdurden`.
async fn seed(app: &TestApp) -> (Value, Value) {
    let group = app.create_group(PAPER).await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    (group, user)
}

/// Asserts tdurden is now exactly one direct member of the seed group.
async fn assert_tdurden_joined(app: &TestApp, group: &Value, user: &Value) {
    assert_eq!(
        is_member(app, PAPER, "tdurden").await,
        StatusCode::NO_CONTENT
    );
    let g = ok(app, &gp(PAPER)).await;
    assert_eq!(g["userCount"], 1);
    let members = ok(app, &format!("{}/users", gp(PAPER))).await;
    assert_eq!(members["totalCount"], 1);
    assert_eq!(members["items"][0]["id"], user["id"]);
    let groups = ok(app, &format!("{}/groups", up("tdurden"))).await;
    assert_eq!(groups["totalCount"], 1);
    assert_eq!(groups["items"][0]["id"], group["id"]);
}

// ---------------------------------------------------------------------------------
// The seed page's examples, one test each
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn seed_add_a_user_to_a_group_by_ids() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    let r = app
        .put(
            &format!(
                "/api/security/groups/{}/users/{}",
                id_of(&group),
                id_of(&user)
            ),
            None,
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn seed_add_a_user_to_a_named_group() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    let r = app
        .put(
            &format!(
                "/api/security/groups/Paper%20Street%20Soap%20Company/users/{}",
                id_of(&user)
            ),
            None,
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn seed_add_a_user_to_a_group_by_username() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    let r = app
        .put(
            &format!("/api/security/groups/{}/users/tdurden", id_of(&group)),
            None,
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn seed_add_a_user_to_a_group_by_email() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    let r = app
        .put(
            &format!(
                "/api/security/groups/{}/users/t.durden@fightclub.com",
                id_of(&group)
            ),
            None,
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn seed_examples_work_under_the_older_management_prefix_and_any_case() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    app.put(
        "/api/management/security/groups/paper%20street%20SOAP%20company/users/T.Durden%40FightClub.com",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.put(
        "/api/management/security/groups/Paper%20Street%20Soap%20Company/users/TDURDEN/",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn adding_a_user_twice_is_still_204_and_one_membership() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    for who in [id_of(&user).as_str(), "tdurden", "t.durden@fightclub.com"] {
        app.put(&member_path(PAPER, who), None)
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    app.put(&member_path(&id_of(&group), "tdurden"), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_tdurden_joined(&app, &group, &user).await;
}

#[tokio::test]
async fn adding_to_an_unknown_group_is_404_naming_the_group() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let r = app
        .put("/api/security/groups/Lou%27s%20Tavern/users/tdurden", None)
        .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Lou's Tavern"}));

    let ghost = "6254736c-70e1-43b0-b769-f8e0f6359862";
    let r = app
        .put(&format!("/api/security/groups/{ghost}/users/tdurden"), None)
        .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": ghost}));
    let groups = ok(&app, &format!("{}/groups", up("tdurden"))).await;
    assert_eq!(groups["totalCount"], 0);
}

#[tokio::test]
async fn adding_an_unknown_user_is_404_naming_the_user() {
    let app = TestApp::spawn().await;
    let (group, _) = seed(&app).await;
    let ghost = "3d063773-2ca9-4baf-90e1-ed674fa68640";
    for who in ["marla", "marla.singer@fightclub.com", ghost] {
        let r = app.put(&member_path(PAPER, who), None).await;
        r.expect(StatusCode::NOT_FOUND);
        assert_eq!(r.body["data"], json!({"user": who}), "user {who}");
    }
    let r = app.put(&member_path(&id_of(&group), "marla"), None).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "marla"}));
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
}

#[tokio::test]
async fn bodiless_put_with_json_content_type_and_empty_body_is_204() {
    let app = TestApp::spawn().await;
    let (group, user) = seed(&app).await;
    let admin = app.admin.clone();
    // What the npm client sends: Content-Type application/json and no body.
    for ct in ["application/json", "application/json; charset=utf-8"] {
        let r = app
            .send_raw(
                Method::PUT,
                &member_path(PAPER, "tdurden"),
                Some(&admin),
                ct,
                Vec::new(),
            )
            .await;
        r.expect(StatusCode::NO_CONTENT);
    }
    assert_tdurden_joined(&app, &group, &user).await;

    // Same for a child link.
    app.create_group("Child").await;
    let r = app
        .send_raw(
            Method::PUT,
            &child_path(PAPER, "Child"),
            Some(&admin),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    // And for HEAD and DELETE carrying the header.
    let r = app
        .send_raw(
            Method::HEAD,
            &member_path(PAPER, "tdurden"),
            Some(&admin),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let r = app
        .send_raw(
            Method::DELETE,
            &member_path(PAPER, "tdurden"),
            Some(&admin),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn members_can_be_added_to_groups_with_awkward_names() {
    let app = TestApp::spawn().await;
    user(&app, "bob").await;
    for (name, path_segment) in [
        ("Sales & Marketing", "Sales%20&%20Marketing"),
        ("C++ Developers", "C++%20Developers"),
        ("100% Club", "100%25%20Club"),
    ] {
        app.create_group(name).await;
        app.put(&format!("{GROUPS}/{path_segment}/users/bob"), None)
            .await
            .expect(StatusCode::NO_CONTENT);
        assert_eq!(is_member(&app, name, "bob").await, StatusCode::NO_CONTENT);
    }
    let groups = ok(&app, &format!("{}/groups", up("bob"))).await;
    assert_eq!(
        names(&groups),
        ["100% Club", "C++ Developers", "Sales & Marketing"]
    );
}

#[tokio::test]
async fn non_admins_cannot_change_membership() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let (_, token) = app.user_with_token("plain").await;
    for (method, path, body) in [
        (Method::PUT, member_path(PAPER, "plain"), None),
        (Method::PUT, member_path(SYSADMINS, "plain"), None),
        (
            Method::POST,
            format!("{}/users", gp(PAPER)),
            Some(json!(["plain"])),
        ),
        (Method::GET, format!("{}/users", gp(PAPER)), None),
        (Method::PUT, child_path(SYSADMINS, PAPER), None),
    ] {
        app.send(method, &path, Some(&token), body)
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    assert_eq!(
        is_member(&app, SYSADMINS, "plain").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(is_member(&app, PAPER, "plain").await, StatusCode::NOT_FOUND);
    assert_eq!(ok(&app, &gp(SYSADMINS)).await["childGroupCount"], 0);
}

// ---------------------------------------------------------------------------------
// Bulk add
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn bulk_add_by_id_username_and_email_is_204() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    let a = user(&app, "ann").await;
    user(&app, "ben").await;
    user(&app, "cat").await;
    let r = app
        .post(
            &format!("{}/users", gp(PAPER)),
            json!([id_of(&a), "ben", "cat@example.com"]),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    let members = ok(&app, &format!("{}/users", gp(PAPER))).await;
    assert_eq!(usernames(&members), ["ann", "ben", "cat"]);
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 3);
}

#[tokio::test]
async fn bulk_add_is_all_or_nothing_and_404_names_the_missing() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    user(&app, "ann").await;
    user(&app, "ben").await;
    let ghost = "3d063773-2ca9-4baf-90e1-ed674fa68640";
    let r = app
        .post(
            &format!("{}/users", gp(PAPER)),
            json!(["ann", "ghost", "ben", "nobody@example.com", ghost]),
        )
        .await;
    r.expect(StatusCode::NOT_FOUND);
    let data = r.body["data"].to_string();
    for missing in ["ghost", "nobody@example.com", ghost] {
        assert!(data.contains(missing), "404 names {missing}: {data}");
    }
    for found in ["ann", "ben"] {
        assert!(!data.contains(found), "404 does not name {found}: {data}");
    }
    assert_eq!(
        r.body["data"],
        json!({"users": ["ghost", "nobody@example.com", ghost]})
    );
    // None were added.
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
    assert_eq!(is_member(&app, PAPER, "ann").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bulk_add_accepts_duplicates_and_existing_members() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    let a = user(&app, "ann").await;
    user(&app, "ben").await;
    join(&app, PAPER, "ben").await;
    app.post(
        &format!("{}/users", gp(PAPER)),
        json!([id_of(&a), "ann", "ANN@example.com", "ann", "ben"]),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let members = ok(&app, &format!("{}/users", gp(PAPER))).await;
    assert_eq!(usernames(&members), ["ann", "ben"]);
    assert_eq!(members["totalCount"], 2);
}

#[tokio::test]
async fn bulk_add_of_an_empty_array_is_a_no_op() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    app.post(&format!("{}/users", gp(PAPER)), json!([]))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
}

#[tokio::test]
async fn bulk_add_bad_bodies_and_unknown_group() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    user(&app, "ann").await;
    let admin = app.admin.clone();
    for body in [
        r#"["ann""#,
        r#"{"users": ["ann"]}"#,
        r#"[1, 2]"#,
        r#"["ann", null]"#,
        r#""ann""#,
        "",
    ] {
        let r = app
            .send_raw(
                Method::POST,
                &format!("{}/users", gp(PAPER)),
                Some(&admin),
                "application/json",
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "body {body}: {}", r.text);
        r.expect(StatusCode::BAD_REQUEST);
    }
    let r = app
        .post(&format!("{}/users", gp("Nope")), json!(["ann"]))
        .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Nope"}));
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
}

#[tokio::test]
async fn bulk_add_of_more_than_ten_thousand_ids_is_refused_without_500() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    user(&app, "ann").await;
    let mut ids: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
    ids.push("ann".to_owned());
    let r = app.post(&format!("{}/users", gp(PAPER)), json!(ids)).await;
    assert!(
        [
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(&r.status),
        "got {}: {}",
        r.status,
        r.text
    );
    r.expect(r.status);
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
}

// ---------------------------------------------------------------------------------
// Remove, check, list
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn delete_member_is_204_then_409_when_no_longer_a_member() {
    let app = TestApp::spawn().await;
    let (_, u) = seed(&app).await;
    join(&app, PAPER, "tdurden").await;
    let r = app.delete(&member_path(PAPER, &id_of(&u))).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    assert_eq!(
        is_member(&app, PAPER, "tdurden").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 0);
    // The user stays.
    ok(&app, &up("tdurden")).await;
    app.delete(&member_path(PAPER, "tdurden"))
        .await
        .expect(StatusCode::CONFLICT);
    app.delete(&member_path(PAPER, "t.durden@fightclub.com"))
        .await
        .expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn delete_member_of_an_inherited_only_member_is_409_and_keeps_the_inheritance() {
    let app = TestApp::spawn().await;
    app.create_group("Parent").await;
    app.create_group("Child").await;
    user(&app, "kid").await;
    link(&app, "Parent", "Child").await;
    join(&app, "Child", "kid").await;
    app.delete(&member_path("Parent", "kid"))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(
        is_member(&app, "Parent", "kid").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, "Child", "kid").await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn delete_member_with_unknown_group_or_user_is_404() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    join(&app, PAPER, "tdurden").await;
    let r = app.delete(&member_path("Nope", "tdurden")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Nope"}));
    let r = app.delete(&member_path(PAPER, "ghost")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "ghost"}));
    assert_eq!(
        is_member(&app, PAPER, "tdurden").await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn head_member_is_204_or_404_without_a_body() {
    let app = TestApp::spawn().await;
    let (g, u) = seed(&app).await;
    user(&app, "outsider").await;
    join(&app, PAPER, "tdurden").await;
    for who in [
        id_of(&u).as_str(),
        "tdurden",
        "t.durden@fightclub.com",
        "TDurden",
    ] {
        assert_eq!(
            is_member(&app, PAPER, who).await,
            StatusCode::NO_CONTENT,
            "{who}"
        );
        assert_eq!(
            is_member(&app, &id_of(&g), who).await,
            StatusCode::NO_CONTENT,
            "{who}"
        );
    }
    assert_eq!(
        is_member(&app, PAPER, "outsider").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(is_member(&app, PAPER, "ghost").await, StatusCode::NOT_FOUND);
    assert_eq!(
        is_member(&app, "Nope", "tdurden").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        is_member(&app, SYSADMINS, "tdurden").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        is_member(&app, SYSADMINS, "admin").await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn list_members_is_paged_and_ordered_by_username() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    app.create_group("Child").await;
    link(&app, PAPER, "Child").await;
    let mut all = Vec::new();
    for i in (0..30).rev() {
        let name = format!("member{i:02}");
        user(&app, &name).await;
        all.push(name);
    }
    all.sort();
    app.post(&format!("{}/users", gp(PAPER)), json!(all))
        .await
        .expect(StatusCode::NO_CONTENT);
    user(&app, "indirect").await;
    join(&app, "Child", "indirect").await;
    user(&app, "stranger").await;

    let p0 = ok(&app, &format!("{}/users", gp(PAPER))).await;
    assert_eq!(p0["pageIndex"], 0);
    assert_eq!(p0["pageSize"], 25);
    assert_eq!(p0["totalCount"], 30, "direct members only by default");
    assert_eq!(p0["pageCount"], 2);
    assert_eq!(usernames(&p0), all[..25]);
    // Items are users, without secrets.
    let first = &p0["items"][0];
    assert!(first["email"].is_string() && first["status"].is_object());
    assert!(first.get("password").is_none());

    let p1 = ok(&app, &format!("{}/users?pageIndex=1", gp(PAPER))).await;
    assert_eq!(usernames(&p1), all[25..]);
    let small = ok(&app, &format!("{}/users?pageSize=7&pageIndex=4", gp(PAPER))).await;
    assert_eq!(usernames(&small), all[28..]);
    assert_eq!(small["pageCount"], 5);
    let past = ok(&app, &format!("{}/users?pageIndex=9", gp(PAPER))).await;
    assert_eq!(past["items"], json!([]));
    let desc = ok(
        &app,
        &format!("{}/users?order=-username&pageSize=3", gp(PAPER)),
    )
    .await;
    assert_eq!(usernames(&desc), ["member29", "member28", "member27"]);
    let q = ok(&app, &format!("{}/users?q=MEMBER1", gp(PAPER))).await;
    assert_eq!(q["totalCount"], 10);

    let g = ok(&app, &gp(PAPER)).await;
    assert_eq!(g["userCount"], 30);
    assert_eq!(g["childGroupCount"], 1);

    let r = app.get(&format!("{}/users", gp("Nope"))).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Nope"}));
    for bad in ["pageSize=1001", "order=password", "includeInherited=yes"] {
        app.get(&format!("{}/users?{bad}", gp(PAPER)))
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn user_count_and_child_group_count_are_direct() {
    let app = TestApp::spawn().await;
    for g in ["Top", "Mid", "Low"] {
        app.create_group(g).await;
    }
    link(&app, "Top", "Mid").await;
    link(&app, "Mid", "Low").await;
    for (u, g) in [
        ("a", "Top"),
        ("b", "Top"),
        ("c", "Mid"),
        ("d", "Low"),
        ("e", "Low"),
    ] {
        user(&app, u).await;
        join(&app, g, u).await;
    }
    join(&app, "Low", "a").await;
    let counts = |g: Value| (g["userCount"].clone(), g["childGroupCount"].clone());
    assert_eq!(counts(ok(&app, &gp("Top")).await), (json!(2), json!(1)));
    assert_eq!(counts(ok(&app, &gp("Mid")).await), (json!(1), json!(1)));
    assert_eq!(counts(ok(&app, &gp("Low")).await), (json!(3), json!(0)));
    // The list shows the same counts.
    let list = ok(&app, &format!("{GROUPS}?q=Top")).await;
    assert_eq!(list["items"][0]["userCount"], 2);
    assert_eq!(list["items"][0]["childGroupCount"], 1);
}

#[tokio::test]
async fn a_users_groups_are_direct_by_default() {
    let app = TestApp::spawn().await;
    for g in ["Parent", "Beta", "Alpha", "Unrelated"] {
        app.create_group(g).await;
    }
    link(&app, "Parent", "Alpha").await;
    let u = user(&app, "uma").await;
    join(&app, "Beta", "uma").await;
    join(&app, "Alpha", "uma").await;
    for who in [id_of(&u).as_str(), "uma", "uma@example.com"] {
        let r = ok(&app, &format!("{}/groups", up(who))).await;
        assert_eq!(names(&r), ["Alpha", "Beta"], "{who}");
        assert_eq!(r["totalCount"], 2);
        assert_eq!(r["pageSize"], 25);
    }
    let r = ok(&app, &format!("{}/groups?includeInherited=true", up("uma"))).await;
    assert_eq!(names(&r), ["Alpha", "Beta", "Parent"]);
    let r = ok(
        &app,
        &format!("{}/groups?includeinherited=TRUE&order=-name", up("uma")),
    )
    .await;
    assert_eq!(names(&r), ["Parent", "Beta", "Alpha"]);

    let r = app.get(&format!("{}/groups", up("ghost"))).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "ghost"}));
    app.get(&format!("{}/groups?includeInherited=maybe", up("uma")))
        .await
        .expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_user_may_read_and_check_their_own_groups_but_not_others() {
    let app = TestApp::spawn().await;
    app.create_group("Parent").await;
    app.create_group("Mine").await;
    link(&app, "Parent", "Mine").await;
    let (_, token) = app.user_with_token("selfie").await;
    user(&app, "other").await;
    join(&app, "Mine", "selfie").await;
    join(&app, "Mine", "other").await;

    for path in [
        format!("{}/groups", up("selfie")),
        format!("{USERS}/@current/groups?includeInherited=true"),
    ] {
        let r = app.send(Method::GET, &path, Some(&token), None).await;
        r.expect(StatusCode::OK);
        assert!(names(&r.body).contains(&"Mine".to_owned()), "{path}");
    }
    let r = app
        .send(
            Method::HEAD,
            &format!("{}/groups/Parent", up("selfie")),
            Some(&token),
            None,
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let r = app
        .send(
            Method::HEAD,
            &format!("{USERS}/@current/groups/{}", enc(SYSADMINS)),
            Some(&token),
            None,
        )
        .await;
    r.expect(StatusCode::NOT_FOUND);

    app.send(
        Method::GET,
        &format!("{}/groups", up("other")),
        Some(&token),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let r = app
        .send(
            Method::HEAD,
            &format!("{}/groups/Mine", up("other")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------
// The last administrator
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn removing_the_only_admin_from_system_administrators_is_409() {
    let app = TestApp::spawn().await;
    let r = app.delete(&member_path(SYSADMINS, "admin")).await;
    r.expect(StatusCode::CONFLICT);
    assert_eq!(
        is_member(&app, SYSADMINS, "admin").await,
        StatusCode::NO_CONTENT
    );
    // Still an administrator.
    ok(&app, USERS).await;
    assert_eq!(ok(&app, &gp(SYSADMINS)).await["userCount"], 1);
}

#[tokio::test]
async fn deleting_the_only_admin_user_is_409() {
    let app = TestApp::spawn().await;
    let r = app.delete(&up("admin")).await;
    r.expect(StatusCode::CONFLICT);
    ok(&app, &up("admin")).await;
    ok(&app, USERS).await;
    app.login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn with_a_second_admin_the_first_can_be_removed_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, second) = app.user_with_token("second").await;
    join(&app, SYSADMINS, "second").await;

    // Removing the first from the group works while the second remains.
    app.delete(&member_path(SYSADMINS, "admin"))
        .await
        .expect(StatusCode::NO_CONTENT);
    // The first admin's token no longer administers.
    app.get(USERS).await.expect(StatusCode::FORBIDDEN);
    // The second re-adds the first, then deletes the first user outright.
    app.send(
        Method::PUT,
        &member_path(SYSADMINS, "admin"),
        Some(&second),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.send(Method::DELETE, &up("admin"), Some(&second), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    app.send(Method::GET, &up("admin"), Some(&second), None)
        .await
        .expect(StatusCode::NOT_FOUND);

    // Now the second is the last one.
    app.send(
        Method::DELETE,
        &member_path(SYSADMINS, "second"),
        Some(&second),
        None,
    )
    .await
    .expect(StatusCode::CONFLICT);
    app.send(Method::DELETE, &up("second"), Some(&second), None)
        .await
        .expect(StatusCode::CONFLICT);
    app.send(Method::GET, USERS, Some(&second), None)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn the_last_admin_reached_through_a_child_group_is_protected_too() {
    let app = TestApp::spawn().await;
    app.create_group("Deputies").await;
    link(&app, SYSADMINS, "Deputies").await;
    let (_, deputy) = app.user_with_token("deputy").await;
    join(&app, "Deputies", "deputy").await;
    // The bootstrap admin may leave: the deputy remains, through Deputies.
    app.delete(&member_path(SYSADMINS, "admin"))
        .await
        .expect(StatusCode::NO_CONTENT);

    let as_deputy = |method: Method, path: String| {
        let app = &app;
        let deputy = deputy.clone();
        async move { app.send(method, &path, Some(&deputy), None).await }
    };
    as_deputy(Method::DELETE, child_path(SYSADMINS, "Deputies"))
        .await
        .expect(StatusCode::CONFLICT);
    as_deputy(Method::DELETE, gp("Deputies"))
        .await
        .expect(StatusCode::CONFLICT);
    as_deputy(Method::DELETE, member_path("Deputies", "deputy"))
        .await
        .expect(StatusCode::CONFLICT);
    as_deputy(Method::DELETE, up("deputy"))
        .await
        .expect(StatusCode::CONFLICT);
    // Nothing changed.
    let r = as_deputy(Method::HEAD, member_path(SYSADMINS, "deputy")).await;
    r.expect(StatusCode::NO_CONTENT);
    as_deputy(Method::GET, USERS.to_owned())
        .await
        .expect(StatusCode::OK);
    let g = as_deputy(Method::GET, gp(SYSADMINS)).await;
    assert_eq!(g.body["childGroupCount"], 1);
    assert_eq!(g.body["userCount"], 0);
}

#[tokio::test]
async fn an_admin_through_a_child_group_of_system_administrators_can_call_admin_endpoints() {
    let app = TestApp::spawn().await;
    app.create_group("Ops").await;
    app.create_group("Ops Juniors").await;
    link(&app, "Ops", "Ops Juniors").await;
    let (_, token) = app.user_with_token("junior").await;
    join(&app, "Ops Juniors", "junior").await;
    app.send(Method::GET, USERS, Some(&token), None)
        .await
        .expect(StatusCode::FORBIDDEN);

    // Two levels below System Administrators; the same token now administers.
    link(&app, SYSADMINS, "Ops").await;
    app.send(Method::GET, USERS, Some(&token), None)
        .await
        .expect(StatusCode::OK);
    app.send(Method::GET, GROUPS, Some(&token), None)
        .await
        .expect(StatusCode::OK);
    app.send(
        Method::POST,
        GROUPS,
        Some(&token),
        Some(json!({"name": "Made By Junior"})),
    )
    .await
    .expect(StatusCode::CREATED);
    user(&app, "target").await;
    app.send(
        Method::PUT,
        &member_path("Made By Junior", "target"),
        Some(&token),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        in_any(&app, "junior", &enc(SYSADMINS)).await,
        StatusCode::NO_CONTENT
    );

    // Cut the link: the token stops administering.
    app.delete(&child_path(SYSADMINS, "Ops"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.send(Method::GET, USERS, Some(&token), None)
        .await
        .expect(StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------
// Child groups
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn put_child_group_is_204_and_idempotent() {
    let app = TestApp::spawn().await;
    let a = app.create_group("Parent Co").await;
    let b = app.create_group("Child Co").await;
    let r = app.put(&child_path("Parent Co", "Child Co"), None).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    link(&app, "Parent Co", "child co").await;
    link(&app, &id_of(&a), &id_of(&b)).await;
    link(&app, "PARENT CO", &id_of(&b)).await;
    assert_eq!(ok(&app, &gp("Parent Co")).await["childGroupCount"], 1);
    assert_eq!(ok(&app, &gp("Child Co")).await["childGroupCount"], 0);
    let kids = ok(&app, &format!("{}/groups", gp("Parent Co"))).await;
    assert_eq!(names(&kids), ["Child Co"]);
    assert_eq!(kids["totalCount"], 1);
}

#[tokio::test]
async fn put_child_group_with_unknown_parent_or_child_is_404_naming_it() {
    let app = TestApp::spawn().await;
    app.create_group("Real").await;
    let r = app.put(&child_path("Ghost Parent", "Real"), None).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Ghost Parent"}));
    let r = app.put(&child_path("Real", "Ghost Child"), None).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Ghost Child"}));
    assert_eq!(ok(&app, &gp("Real")).await["childGroupCount"], 0);
}

#[tokio::test]
async fn bulk_add_children_is_204_and_accepts_duplicates() {
    let app = TestApp::spawn().await;
    app.create_group("Holding").await;
    let b = app.create_group("Bee").await;
    app.create_group("Sea").await;
    app.create_group("Dee").await;
    link(&app, "Holding", "Dee").await;
    let r = app
        .post(
            &format!("{}/groups", gp("Holding")),
            json!([id_of(&b), "Sea", "sea", "Bee", "Dee"]),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let kids = ok(&app, &format!("{}/groups", gp("Holding"))).await;
    assert_eq!(names(&kids), ["Bee", "Dee", "Sea"]);
    assert_eq!(ok(&app, &gp("Holding")).await["childGroupCount"], 3);
}

#[tokio::test]
async fn bulk_add_children_with_unknown_groups_is_404_naming_them_and_adds_nothing() {
    let app = TestApp::spawn().await;
    app.create_group("Holding").await;
    app.create_group("Bee").await;
    let r = app
        .post(
            &format!("{}/groups", gp("Holding")),
            json!(["Bee", "Ghost One", "Ghost Two"]),
        )
        .await;
    r.expect(StatusCode::NOT_FOUND);
    let data = r.body["data"].to_string();
    assert!(
        data.contains("Ghost One") && data.contains("Ghost Two"),
        "{data}"
    );
    assert!(!data.contains("Bee"), "{data}");
    assert_eq!(ok(&app, &gp("Holding")).await["childGroupCount"], 0);

    let r = app
        .post(&format!("{}/groups", gp("Ghost Parent")), json!(["Bee"]))
        .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Ghost Parent"}));
}

#[tokio::test]
async fn bulk_add_children_that_would_cycle_is_409_and_adds_nothing() {
    let app = TestApp::spawn().await;
    for g in ["Top", "Mid", "Fine One", "Fine Two"] {
        app.create_group(g).await;
    }
    link(&app, "Top", "Mid").await;
    for body in [
        json!(["Fine One", "Top", "Fine Two"]),
        json!(["Top", "Fine One"]),
        json!(["Fine One", "Fine Two", "Mid"]),
    ] {
        let r = app
            .post(&format!("{}/groups", gp("Mid")), body.clone())
            .await;
        r.expect(StatusCode::CONFLICT);
        let mid = ok(&app, &gp("Mid")).await;
        assert_eq!(mid["childGroupCount"], 0, "after {body}");
    }
    // The valid part alone goes through.
    app.post(
        &format!("{}/groups", gp("Mid")),
        json!(["Fine One", "Fine Two"]),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_eq!(ok(&app, &gp("Mid")).await["childGroupCount"], 2);
    app.post(&format!("{}/groups", gp("Mid")), json!([1]))
        .await
        .expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_child_link_is_204_then_409_and_404_for_unknown() {
    let app = TestApp::spawn().await;
    for g in ["Top", "Mid", "Low"] {
        app.create_group(g).await;
    }
    link(&app, "Top", "Mid").await;
    link(&app, "Mid", "Low").await;
    // A grandchild is not a child.
    app.delete(&child_path("Top", "Low"))
        .await
        .expect(StatusCode::CONFLICT);
    // Neither is a parent.
    app.delete(&child_path("Mid", "Top"))
        .await
        .expect(StatusCode::CONFLICT);
    let r = app.delete(&child_path("Top", "Mid")).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    app.delete(&child_path("Top", "Mid"))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(ok(&app, &gp("Top")).await["childGroupCount"], 0);
    // Both groups remain, and the link below is untouched.
    assert_eq!(ok(&app, &gp("Mid")).await["childGroupCount"], 1);
    let r = app.delete(&child_path("Ghost", "Mid")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Ghost"}));
    let r = app.delete(&child_path("Top", "Ghost")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Ghost"}));
}

// ---------------------------------------------------------------------------------
// Cycles
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_group_cannot_contain_itself() {
    let app = TestApp::spawn().await;
    let a = app.create_group("Ouroboros").await;
    for (p, c) in [
        ("Ouroboros".to_owned(), "Ouroboros".to_owned()),
        ("ouroboros".to_owned(), id_of(&a)),
        (id_of(&a), id_of(&a)),
    ] {
        app.put(&child_path(&p, &c), None)
            .await
            .expect(StatusCode::CONFLICT);
    }
    app.post(&format!("{}/groups", gp("Ouroboros")), json!(["Ouroboros"]))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(ok(&app, &gp("Ouroboros")).await["childGroupCount"], 0);
    // Also the built-in group.
    app.put(&child_path(SYSADMINS, SYSADMINS), None)
        .await
        .expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_two_group_cycle_is_409() {
    let app = TestApp::spawn().await;
    app.create_group("A").await;
    app.create_group("B").await;
    link(&app, "A", "B").await;
    app.put(&child_path("B", "A"), None)
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(ok(&app, &gp("B")).await["childGroupCount"], 0);
    // After unlinking, the reverse direction is fine.
    app.delete(&child_path("A", "B"))
        .await
        .expect(StatusCode::NO_CONTENT);
    link(&app, "B", "A").await;
}

#[tokio::test]
async fn a_long_cycle_is_409() {
    let app = TestApp::spawn().await;
    let chain: Vec<String> = (0..10).map(|i| format!("Link {i}")).collect();
    for g in &chain {
        app.create_group(g).await;
    }
    for w in chain.windows(2) {
        link(&app, &w[0], &w[1]).await;
    }
    for ancestor in [&chain[0], &chain[4], &chain[8]] {
        app.put(&child_path(&chain[9], ancestor), None)
            .await
            .expect(StatusCode::CONFLICT);
    }
    app.post(&format!("{}/groups", gp(&chain[9])), json!([chain[0]]))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(ok(&app, &gp(&chain[9])).await["childGroupCount"], 0);
    // A shortcut downwards is not a cycle.
    link(&app, &chain[0], &chain[9]).await;
    app.put(&child_path(&chain[9], &chain[0]), None)
        .await
        .expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn concurrent_opposite_links_never_make_a_cycle() {
    let app = TestApp::spawn().await;
    for i in 0..10 {
        let (a, b) = (format!("Left {i}"), format!("Right {i}"));
        app.create_group(&a).await;
        app.create_group(&b).await;
        let (p1, p2) = (child_path(&a, &b), child_path(&b, &a));
        let (r1, r2) = tokio::join!(app.put(&p1, None), app.put(&p2, None));
        let mut got = [r1.status, r2.status];
        got.sort();
        assert_eq!(
            got,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "pair {i}: {} / {}",
            r1.text,
            r2.text
        );
        let total = ok(&app, &gp(&a)).await["childGroupCount"].as_i64().unwrap()
            + ok(&app, &gp(&b)).await["childGroupCount"].as_i64().unwrap();
        assert_eq!(total, 1, "pair {i}");
    }
}

#[tokio::test]
async fn concurrent_opposite_links_on_two_nodes_never_make_a_cycle_nor_a_500() {
    let node1 = TestApp::spawn().await;
    let node2 = TestApp::spawn_on(
        node1.dir.clone(),
        node1.database_url.clone(),
        node1.clock.clone(),
        |_| {},
    )
    .await;
    for i in 0..10 {
        let (a, b) = (format!("Left {i}"), format!("Right {i}"));
        node1.create_group(&a).await;
        node1.create_group(&b).await;
        let (p1, p2) = (child_path(&a, &b), child_path(&b, &a));
        let (r1, r2) = tokio::join!(node1.put(&p1, None), node2.put(&p2, None));
        let mut got = [r1.status, r2.status];
        got.sort();
        assert_eq!(
            got,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "pair {i}: {} / {}",
            r1.text,
            r2.text
        );
        let total = ok(&node2, &gp(&a)).await["childGroupCount"]
            .as_i64()
            .unwrap()
            + ok(&node2, &gp(&b)).await["childGroupCount"]
                .as_i64()
                .unwrap();
        assert_eq!(total, 1, "pair {i}");
    }
}

// ---------------------------------------------------------------------------------
// Inherited membership: diamonds and deep chains
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn diamond_membership_survives_until_the_last_path_goes() {
    let app = TestApp::spawn().await;
    for g in ["A", "B", "C", "D"] {
        app.create_group(g).await;
    }
    link(&app, "A", "B").await;
    link(&app, "A", "C").await;
    link(&app, "B", "D").await;
    link(&app, "C", "D").await;
    let u = user(&app, "dana").await;
    join(&app, "D", "dana").await;

    for g in ["A", "B", "C", "D"] {
        assert_eq!(
            is_member(&app, g, "dana").await,
            StatusCode::NO_CONTENT,
            "{g}"
        );
    }
    assert_eq!(
        is_member(&app, "A", &id_of(&u)).await,
        StatusCode::NO_CONTENT
    );
    // A lists dana once.
    let m = ok(&app, &format!("{}/users?includeInherited=true", gp("A"))).await;
    assert_eq!(usernames(&m), ["dana"]);
    assert_eq!(m["totalCount"], 1);
    // D appears once among A's descendants.
    let d = ok(&app, &format!("{}/groups?includeInherited=true", gp("A"))).await;
    assert_eq!(names(&d), ["B", "C", "D"]);

    app.delete(&child_path("B", "D"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        is_member(&app, "A", "dana").await,
        StatusCode::NO_CONTENT,
        "through C"
    );
    assert_eq!(is_member(&app, "B", "dana").await, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, "C", "dana").await, StatusCode::NO_CONTENT);

    app.delete(&child_path("C", "D"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, "A", "dana").await, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, "C", "dana").await, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, "D", "dana").await, StatusCode::NO_CONTENT);
    let g = ok(
        &app,
        &format!("{}/groups?includeInherited=true", up("dana")),
    )
    .await;
    assert_eq!(names(&g), ["D"]);

    // And back.
    link(&app, "C", "D").await;
    assert_eq!(is_member(&app, "A", "dana").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn diamond_where_one_side_is_deleted_keeps_the_other_path() {
    let app = TestApp::spawn().await;
    for g in ["A", "B", "C", "D"] {
        app.create_group(g).await;
    }
    link(&app, "A", "B").await;
    link(&app, "A", "C").await;
    link(&app, "B", "D").await;
    link(&app, "C", "D").await;
    user(&app, "dana").await;
    join(&app, "D", "dana").await;
    app.delete(&gp("B")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, "A", "dana").await, StatusCode::NO_CONTENT);
    app.delete(&gp("C")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, "A", "dana").await, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, "D", "dana").await, StatusCode::NO_CONTENT);
    assert_eq!(ok(&app, &gp("A")).await["childGroupCount"], 0);
}

/// Builds `Level 00 > Level 01 > ... > Level {n-1}` and puts `deep` in the last.
async fn chain(app: &TestApp, n: usize) -> Vec<String> {
    let levels: Vec<String> = (0..n).map(|i| format!("Level {i:02}")).collect();
    for g in &levels {
        app.create_group(g).await;
    }
    for w in levels.windows(2) {
        link(app, &w[0], &w[1]).await;
    }
    user(app, "deep").await;
    join(app, &levels[n - 1], "deep").await;
    levels
}

#[tokio::test]
async fn chain_twenty_deep_cutting_a_middle_link_updates_every_inherited_answer() {
    let app = TestApp::spawn().await;
    let levels = chain(&app, 20).await;
    for g in &levels {
        assert_eq!(
            is_member(&app, g, "deep").await,
            StatusCode::NO_CONTENT,
            "{g}"
        );
    }
    let top = ok(
        &app,
        &format!("{}/users?includeInherited=true", gp(&levels[0])),
    )
    .await;
    assert_eq!(usernames(&top), ["deep"]);
    let all = ok(
        &app,
        &format!("{}/groups?includeInherited=true&pageSize=100", up("deep")),
    )
    .await;
    assert_eq!(all["totalCount"], 20);

    app.delete(&child_path(&levels[9], &levels[10]))
        .await
        .expect(StatusCode::NO_CONTENT);
    for (i, g) in levels.iter().enumerate() {
        let expected = if i >= 10 {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(is_member(&app, g, "deep").await, expected, "{g}");
    }
    let below = ok(
        &app,
        &format!("{}/groups?includeInherited=true&pageSize=100", up("deep")),
    )
    .await;
    assert_eq!(names(&below), levels[10..]);
    let top = ok(
        &app,
        &format!("{}/users?includeInherited=true", gp(&levels[0])),
    )
    .await;
    assert_eq!(top["totalCount"], 0);
    let desc = ok(
        &app,
        &format!(
            "{}/groups?includeInherited=true&pageSize=100",
            gp(&levels[0])
        ),
    )
    .await;
    assert_eq!(names(&desc), levels[1..10]);

    // Re-linking restores every answer.
    link(&app, &levels[9], &levels[10]).await;
    for g in &levels {
        assert_eq!(
            is_member(&app, g, "deep").await,
            StatusCode::NO_CONTENT,
            "{g}"
        );
    }
}

#[tokio::test]
async fn chain_twenty_deep_deleting_a_middle_group_updates_every_inherited_answer() {
    let app = TestApp::spawn().await;
    let levels = chain(&app, 20).await;
    app.delete(&gp(&levels[10]))
        .await
        .expect(StatusCode::NO_CONTENT);
    for (i, g) in levels.iter().enumerate() {
        if i == 10 {
            continue;
        }
        let expected = if i > 10 {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(is_member(&app, g, "deep").await, expected, "{g}");
    }
    let groups = ok(
        &app,
        &format!("{}/groups?includeInherited=true&pageSize=100", up("deep")),
    )
    .await;
    assert_eq!(names(&groups), levels[11..]);
    assert_eq!(ok(&app, &gp(&levels[9])).await["childGroupCount"], 0);
    let desc = ok(
        &app,
        &format!(
            "{}/groups?includeInherited=true&pageSize=100",
            gp(&levels[0])
        ),
    )
    .await;
    assert_eq!(names(&desc), levels[1..10]);
    assert_eq!(
        in_any(&app, "deep", &enc(&levels[0])).await,
        StatusCode::NOT_FOUND
    );
    // A new route from the top past the hole restores the answers above it.
    link(&app, &levels[0], &levels[11]).await;
    assert_eq!(
        is_member(&app, &levels[0], "deep").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, &levels[9], "deep").await,
        StatusCode::NOT_FOUND
    );
    // The closure knows the new shape: the bottom cannot contain the top...
    app.put(&child_path(&levels[19], &levels[0]), None)
        .await
        .expect(StatusCode::CONFLICT);
    // ...but may contain a group that is no longer above it.
    link(&app, &levels[19], &levels[5]).await;
}

// ---------------------------------------------------------------------------------
// Inherited listings
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn inherited_members_list_each_user_once() {
    let app = TestApp::spawn().await;
    for g in ["A", "B", "C"] {
        app.create_group(g).await;
    }
    link(&app, "A", "B").await;
    link(&app, "A", "C").await;
    for u in ["uri", "val", "wes", "xan"] {
        user(&app, u).await;
    }
    join(&app, "A", "wes").await;
    join(&app, "B", "uri").await;
    join(&app, "C", "uri").await;
    join(&app, "C", "val").await;
    join(&app, "A", "uri").await;

    let direct = ok(&app, &format!("{}/users", gp("A"))).await;
    assert_eq!(usernames(&direct), ["uri", "wes"]);
    let inherited = ok(&app, &format!("{}/users?includeInherited=true", gp("A"))).await;
    assert_eq!(usernames(&inherited), ["uri", "val", "wes"]);
    assert_eq!(inherited["totalCount"], 3);
    // Paging counts each user once too.
    let page = ok(
        &app,
        &format!(
            "{}/users?includeInherited=true&pageSize=2&pageIndex=1",
            gp("A")
        ),
    )
    .await;
    assert_eq!(usernames(&page), ["wes"]);
    assert_eq!(page["pageCount"], 2);
    let explicit_false = ok(&app, &format!("{}/users?includeInherited=false", gp("A"))).await;
    assert_eq!(usernames(&explicit_false), ["uri", "wes"]);
}

#[tokio::test]
async fn excluded_groups_leave_out_members_reached_only_through_them() {
    let app = TestApp::spawn().await;
    let mut ids = std::collections::HashMap::new();
    for g in ["A", "B", "C", "D"] {
        ids.insert(g, id_of(&app.create_group(g).await));
    }
    // A > B, A > C > D.
    link(&app, "A", "B").await;
    link(&app, "A", "C").await;
    link(&app, "C", "D").await;
    for (u, g) in [
        ("wes", "A"),
        ("uri", "B"),
        ("val", "C"),
        ("xan", "D"),
        ("yul", "B"),
        ("yul", "C"),
    ] {
        if user_missing(&app, u).await {
            user(&app, u).await;
        }
        join(&app, g, u).await;
    }
    let members = |excluded: String| {
        let app = &app;
        async move {
            let path = format!(
                "{}/users?includeInherited=true&excludedGroups={excluded}",
                gp("A")
            );
            usernames(&ok(app, &path).await)
        }
    };
    assert_eq!(
        members("".into()).await,
        ["uri", "val", "wes", "xan", "yul"]
    );
    assert_eq!(members("C".into()).await, ["uri", "wes", "yul"]);
    assert_eq!(members(ids["C"].clone()).await, ["uri", "wes", "yul"]);
    assert_eq!(members("c".into()).await, ["uri", "wes", "yul"]);
    assert_eq!(members("D".into()).await, ["uri", "val", "wes", "yul"]);
    assert_eq!(
        members(format!("B,{}", ids["C"])).await,
        ["wes"],
        "CSV of a name and an id"
    );
    assert_eq!(
        members("B%2C%20C".into()).await,
        ["wes"],
        "encoded CSV with a space"
    );
    assert_eq!(
        members("No%20Such%20Group".into()).await,
        ["uri", "val", "wes", "xan", "yul"],
        "unknown names are ignored"
    );
    // D reachable another way (B > D): excluding C no longer hides xan.
    link(&app, "B", "D").await;
    assert_eq!(members("C".into()).await, ["uri", "wes", "xan", "yul"]);
    assert_eq!(members("B,C".into()).await, ["wes"]);
}

/// Whether the user does not exist yet.
async fn user_missing(app: &TestApp, name: &str) -> bool {
    app.get(&up(name)).await.status == StatusCode::NOT_FOUND
}

#[tokio::test]
async fn child_groups_direct_inherited_and_self() {
    let app = TestApp::spawn().await;
    for g in ["A", "B", "C", "D", "E"] {
        app.create_group(g).await;
    }
    // A > B > D, A > C > D, D > E.
    link(&app, "A", "B").await;
    link(&app, "A", "C").await;
    link(&app, "B", "D").await;
    link(&app, "C", "D").await;
    link(&app, "D", "E").await;
    let list = |query: &'static str| {
        let app = &app;
        async move { names(&ok(app, &format!("{}/groups{query}", gp("A"))).await) }
    };
    assert_eq!(list("").await, ["B", "C"]);
    assert_eq!(list("?includeInherited=false").await, ["B", "C"]);
    assert_eq!(list("?includeInherited=true").await, ["B", "C", "D", "E"]);
    assert_eq!(
        list("?includeInherited=true&includeSelf=true").await,
        ["A", "B", "C", "D", "E"]
    );
    assert_eq!(list("?includeSelf=true").await, ["A", "B", "C"]);
    assert_eq!(
        list("?IncludeInherited=true&order=-name").await,
        ["E", "D", "C", "B"]
    );
    assert_eq!(
        list("?includeInherited=true&excludedGroups=B").await,
        ["C", "D", "E"]
    );
    assert_eq!(
        list("?includeInherited=true&excludedGroups=B,C").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("?includeInherited=true&excludedGroups=D").await,
        ["B", "C"]
    );
    let page = ok(
        &app,
        &format!("{}/groups?includeInherited=true&pageSize=3", gp("A")),
    )
    .await;
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["pageCount"], 2);
    assert_eq!(names(&page), ["B", "C", "D"]);

    for (g, count) in [("A", 2), ("B", 1), ("C", 1), ("D", 1), ("E", 0)] {
        assert_eq!(ok(&app, &gp(g)).await["childGroupCount"], count, "{g}");
    }
    assert_eq!(
        names(&ok(&app, &format!("{}/groups?includeInherited=true", gp("E"))).await),
        Vec::<String>::new()
    );
    let r = app.get(&format!("{}/groups", gp("Nope"))).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"group": "Nope"}));
    for bad in ["includeSelf=1", "includeInherited=yes", "order=bogus"] {
        app.get(&format!("{}/groups?{bad}", gp("A")))
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_users_inherited_groups_add_ancestors_and_honour_exclusions() {
    let app = TestApp::spawn().await;
    let mut ids = std::collections::HashMap::new();
    for g in ["A", "B", "C", "D", "E", "Z"] {
        ids.insert(g, id_of(&app.create_group(g).await));
    }
    // E > A > B > D, C > D.
    link(&app, "E", "A").await;
    link(&app, "A", "B").await;
    link(&app, "B", "D").await;
    link(&app, "C", "D").await;
    user(&app, "uma").await;
    join(&app, "D", "uma").await;

    let groups = |query: String| {
        let app = &app;
        async move { names(&ok(app, &format!("{}/groups{query}", up("uma"))).await) }
    };
    assert_eq!(groups(String::new()).await, ["D"]);
    assert_eq!(
        groups("?includeInherited=true".into()).await,
        ["A", "B", "C", "D", "E"]
    );
    assert_eq!(
        groups("?includeInherited=true&excludedGroups=B".into()).await,
        ["C", "D"]
    );
    assert_eq!(
        groups(format!(
            "?includeInherited=true&excludedGroups={}",
            ids["B"]
        ))
        .await,
        ["C", "D"]
    );
    assert_eq!(
        groups(format!(
            "?includeInherited=true&excludedGroups=B,{}",
            ids["C"]
        ))
        .await,
        ["D"]
    );
    assert_eq!(
        groups("?includeInherited=true&excludedGroups=A".into()).await,
        ["B", "C", "D"]
    );
    assert_eq!(
        groups("?includeInherited=true&excludedGroups=D".into()).await,
        Vec::<String>::new()
    );
    assert_eq!(
        groups("?includeInherited=true&excludedGroups=Z,Unknown".into()).await,
        ["A", "B", "C", "D", "E"]
    );
    // A second route up to A (A > C) keeps A and E when B is excluded.
    link(&app, "A", "C").await;
    assert_eq!(
        groups("?includeInherited=true&excludedGroups=B".into()).await,
        ["A", "C", "D", "E"]
    );
}

#[tokio::test]
async fn head_user_groups_is_an_or_over_names_and_ids() {
    let app = TestApp::spawn().await;
    let a = app.create_group("Alpha Team").await;
    let d = app.create_group("Delta Squad").await;
    let x = app.create_group("X Files").await;
    app.create_group("Lonely").await;
    link(&app, "Alpha Team", "Delta Squad").await;
    let u = user(&app, "uma").await;
    user(&app, "nobody").await;
    join(&app, "Delta Squad", "uma").await;
    join(&app, "Lonely", "nobody").await;

    let alpha = "Alpha%20Team";
    let delta = "Delta%20Squad";
    let xf = "X%20Files";
    let cases = [
        (xf.to_owned(), StatusCode::NOT_FOUND),
        (delta.to_owned(), StatusCode::NO_CONTENT),
        (alpha.to_owned(), StatusCode::NO_CONTENT),
        (id_of(&a), StatusCode::NO_CONTENT),
        (format!("{xf},{alpha}"), StatusCode::NO_CONTENT),
        (
            format!("{},{}", id_of(&x), id_of(&d)),
            StatusCode::NO_CONTENT,
        ),
        (format!("{xf},{}", id_of(&a)), StatusCode::NO_CONTENT),
        (format!("{},{delta}", id_of(&x)), StatusCode::NO_CONTENT),
        (format!("{xf},Lonely"), StatusCode::NOT_FOUND),
        (format!("{xf}%2C{delta}"), StatusCode::NO_CONTENT),
        (format!("Ghost,{delta}"), StatusCode::NO_CONTENT),
        (format!("{delta},Ghost"), StatusCode::NO_CONTENT),
        (format!("Ghost,{xf}"), StatusCode::NOT_FOUND),
        ("Ghost".to_owned(), StatusCode::NOT_FOUND),
        ("Ghost,Other%20Ghost".to_owned(), StatusCode::NOT_FOUND),
        (format!("{},Ghost", enc(SYSADMINS)), StatusCode::NOT_FOUND),
    ];
    for who in [id_of(&u), "uma".to_owned(), "uma@example.com".to_owned()] {
        for (list, expected) in &cases {
            assert_eq!(in_any(&app, &who, list).await, *expected, "{who} in {list}");
        }
    }
    assert_eq!(in_any(&app, "nobody", alpha).await, StatusCode::NOT_FOUND);
    assert_eq!(
        in_any(&app, "nobody", "Lonely").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(in_any(&app, "ghost", alpha).await, StatusCode::NOT_FOUND);

    // Under the older prefix too.
    let r = app
        .head(&format!(
            "/api/management/security/users/uma/groups/{xf},{alpha}"
        ))
        .await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
}

// ---------------------------------------------------------------------------------
// Membership follows users and groups through their life
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_user_removes_their_memberships() {
    let app = TestApp::spawn().await;
    app.create_group("Parent").await;
    app.create_group(PAPER).await;
    link(&app, "Parent", PAPER).await;
    seed_user_and_friend(&app).await;
    join(&app, PAPER, "tdurden").await;
    join(&app, PAPER, "marla").await;
    app.delete(&up("tdurden"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(ok(&app, &gp(PAPER)).await["userCount"], 1);
    let m = ok(
        &app,
        &format!("{}/users?includeInherited=true", gp("Parent")),
    )
    .await;
    assert_eq!(usernames(&m), ["marla"]);
    assert_eq!(
        is_member(&app, PAPER, "tdurden").await,
        StatusCode::NOT_FOUND
    );
    // A new user with the same name starts without memberships.
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    assert_eq!(
        is_member(&app, PAPER, "tdurden").await,
        StatusCode::NOT_FOUND
    );
    let g = ok(
        &app,
        &format!("{}/groups?includeInherited=true", up("tdurden")),
    )
    .await;
    assert_eq!(g["totalCount"], 0);
}

async fn seed_user_and_friend(app: &TestApp) {
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    user(app, "marla").await;
}

#[tokio::test]
async fn renaming_a_group_keeps_its_members_and_links() {
    let app = TestApp::spawn().await;
    let g = app.create_group(PAPER).await;
    app.create_group("Parent").await;
    app.create_group("Child").await;
    link(&app, "Parent", PAPER).await;
    link(&app, PAPER, "Child").await;
    seed_user_and_friend(&app).await;
    join(&app, PAPER, "tdurden").await;
    join(&app, "Child", "marla").await;
    let r = app
        .put(&gp(PAPER), Some(json!({"name": "Lou's Tavern"})))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["userCount"], 1);
    assert_eq!(r.body["childGroupCount"], 1);
    assert_eq!(
        is_member(&app, "Lou's Tavern", "tdurden").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, "Lou's Tavern", "marla").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, "Parent", "marla").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, PAPER, "tdurden").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        is_member(&app, &id_of(&g), "tdurden").await,
        StatusCode::NO_CONTENT
    );
    let groups = ok(&app, &format!("{}/groups", up("tdurden"))).await;
    assert_eq!(names(&groups), ["Lou's Tavern"]);
}

#[tokio::test]
async fn at_current_names_the_caller_in_membership_paths() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    app.put(&format!("{}/users/@current", gp(PAPER)), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        is_member(&app, PAPER, "admin").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        is_member(&app, PAPER, "@current").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        in_any(&app, "@current", "Paper%20Street%20Soap%20Company").await,
        StatusCode::NO_CONTENT
    );
    let g = ok(&app, &format!("{USERS}/@current/groups")).await;
    assert_eq!(names(&g), [PAPER, SYSADMINS]);
    app.delete(&format!("{}/users/@current", gp(PAPER)))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, PAPER, "admin").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_child_group_of_system_administrators_is_fine_while_another_admin_remains() {
    let app = TestApp::spawn().await;
    app.create_group("Deputies").await;
    link(&app, SYSADMINS, "Deputies").await;
    let (_, deputy) = app.user_with_token("deputy").await;
    join(&app, "Deputies", "deputy").await;
    app.send(Method::GET, USERS, Some(&deputy), None)
        .await
        .expect(StatusCode::OK);
    app.delete(&gp("Deputies"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.send(Method::GET, USERS, Some(&deputy), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(ok(&app, &gp(SYSADMINS)).await["childGroupCount"], 0);
    ok(&app, &up("deputy")).await;
}

#[tokio::test]
async fn an_expired_second_admin_does_not_count_as_a_remaining_admin() {
    let mut app = TestApp::spawn().await;
    // Expires in one hour.
    let expiry =
        gatehouse::clock::format_rfc3339(gatehouse::clock::Clock::now_ms(&app.clock) + 3_600_000);
    let r = app
        .post(
            USERS,
            json!({"username": "temp", "email": "temp@example.com", "expiry": expiry}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    join(&app, SYSADMINS, "temp").await;
    app.clock.advance_ms(2 * 3_600_000);
    // The bootstrap admin's token expired too: log in again.
    app.admin = app.login("admin", ADMIN_PASSWORD).await;
    let temp = ok(&app, &up("temp")).await;
    assert_eq!(temp["status"]["active"], false, "temp has expired: {temp}");
    // Only the bootstrap admin is still active: it is the last one.
    app.delete(&member_path(SYSADMINS, "admin"))
        .await
        .expect(StatusCode::CONFLICT);
    app.delete(&up("admin")).await.expect(StatusCode::CONFLICT);
    ok(&app, USERS).await;
}

/// A check names its user by username or email: a name that moves to another user, or
/// whose user is deleted, is answered for whoever holds it now (SQLite remembers names:
/// src/store/name_cache.rs).
#[tokio::test]
async fn a_check_by_name_follows_the_name_to_its_current_user() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    user(&app, "ann").await;
    join(&app, PAPER, "ann").await;
    assert_eq!(is_member(&app, PAPER, "ann").await, StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, PAPER, "ann").await, StatusCode::NO_CONTENT);

    // Renamed: the old name is free, then taken by a user who is not a member.
    app.send_raw(
        Method::PATCH,
        &up("ann"),
        Some(&app.admin.clone()),
        "application/merge-patch+json",
        json!({"username": "ann2", "email": "ann2@example.com"})
            .to_string()
            .into_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(is_member(&app, PAPER, "ann").await, StatusCode::NOT_FOUND);
    user(&app, "ann").await;
    assert_eq!(is_member(&app, PAPER, "ann").await, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, PAPER, "ann2").await, StatusCode::NO_CONTENT);

    // Deleted: its name no longer finds anyone.
    assert_eq!(
        is_member(&app, PAPER, "ann2@example.com").await,
        StatusCode::NO_CONTENT
    );
    app.delete(&up("ann2")).await.expect(StatusCode::NO_CONTENT);
    let r = app.head(&member_path(PAPER, "ann2@example.com")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(is_member(&app, PAPER, "ann2").await, StatusCode::NOT_FOUND);
}

/// The same when another process moves the name (an import, an admin command, a
/// second node): the server learns of it only from the database.
#[tokio::test]
async fn a_check_by_name_follows_a_name_moved_by_another_process() {
    let app = TestApp::spawn().await;
    app.create_group(PAPER).await;
    let bob = user(&app, "bob").await;
    let eve = user(&app, "eve").await;
    join(&app, PAPER, "bob").await;
    assert_eq!(is_member(&app, PAPER, "bob").await, StatusCode::NO_CONTENT);
    assert_eq!(is_member(&app, PAPER, "bob").await, StatusCode::NO_CONTENT);

    // Behind the server's back: "bob" now names eve, who is not a member.
    let (bob_id, eve_id) = (id_of(&bob), id_of(&eve));
    let script = format!(
        "DELETE FROM user_identifiers WHERE key = 'bob'; \
         INSERT INTO user_identifiers (key, user_id, user_seq) \
         SELECT 'bob', id, seq FROM users WHERE id = '{eve_id}';"
    );
    run_sql(&app.database_url, &script).await;
    assert_eq!(is_member(&app, PAPER, "bob").await, StatusCode::NOT_FOUND);
    assert_eq!(
        is_member(&app, PAPER, &bob_id).await,
        StatusCode::NO_CONTENT
    );
}

/// Runs `script` on the test database through a connection of its own.
async fn run_sql(url: &str, script: &str) {
    use sqlx::Connection as _;
    if on_postgres() {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

/// Membership checks dropped halfway (their clients gone) leave nothing behind. On
/// PostgreSQL a check runs in place, not in a task of its own, so each one here is
/// dropped wherever it waits: the caller's authentication (the caller cache is off, so
/// every check reads its caller), a statement on a lane connection, a batch of checks.
/// Every check after them answers, and answers right, many of them at once too.
#[tokio::test]
async fn checks_dropped_halfway_leave_every_later_check_right() {
    let app = TestApp::spawn_with(|c| c.caller_cache_ms = 0).await;
    app.create_group("outer").await;
    app.create_group("inner").await;
    link(&app, "outer", "inner").await;
    let names: Vec<String> = (0..10).map(|i| format!("checked{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        user(&app, name).await;
        if i % 2 == 0 {
            join(&app, "inner", name).await;
        }
    }
    let expected = |i: usize| {
        if i % 2 == 0 {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        }
    };
    for round in 0..300_usize {
        let path = member_path("outer", &names[round % names.len()]);
        if round % 2 == 0 {
            // Dropped after 0, 1 or 2 ms.
            let wait = std::time::Duration::from_millis(u64::try_from(round % 3).unwrap());
            let _ = tokio::time::timeout(wait, app.head(&path)).await;
        } else {
            // Dropped after the runtime had a few turns.
            tokio::select! {
                _ = app.head(&path) => {}
                () = async {
                    for _ in 0..round % 40 {
                        tokio::task::yield_now().await;
                    }
                } => {}
            }
        }
    }
    for _ in 0..3 {
        for (i, name) in names.iter().enumerate() {
            assert_eq!(is_member(&app, "outer", name).await, expected(i), "{name}");
        }
    }
    // More at once than the store has connections for checks.
    let app = &app;
    let at_once = |i: usize| {
        let path = member_path("outer", &names[i % names.len()]);
        async move { (i, app.head(&path).await.status) }
    };
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        at_once(0),
        at_once(1),
        at_once(2),
        at_once(3),
        at_once(4),
        at_once(5),
        at_once(6),
        at_once(7)
    );
    for (i, status) in [a, b, c, d, e, f, g, h] {
        assert_eq!(status, expected(i), "{}", names[i]);
    }
}
