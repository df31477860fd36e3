//! Groups over SCIM: members are the direct users and child groups; the service's
//! rules (cycles, the last administrator, unique names) answer in SCIM's terms.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::helpers::TestApp;

fn member_ids(group: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = group["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["value"].as_str().unwrap().to_owned(),
                        m["type"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test]
async fn members_are_direct_users_and_child_groups_seen_by_the_contensis_api() {
    let app = TestApp::spawn().await;
    let u = create_user(&app, user_body("ann", "ann@example.com")).await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let child = create_group(&app, "Child", &[]).await;
    let cid = child["id"].as_str().unwrap().to_owned();
    let g = create_group(&app, "Parent", &[&uid, &cid]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let mut want = vec![
        (uid.clone(), "User".to_owned()),
        (cid.clone(), "Group".to_owned()),
    ];
    want.sort();
    assert_eq!(member_ids(&g), want);
    assert!(
        g["members"][0]["$ref"]
            .as_str()
            .unwrap()
            .starts_with(&app.public_url("/scim/v2/"))
    );
    // The Contensis API sees the same graph.
    let users = app.get(&format!("/api/security/groups/{gid}/users")).await;
    assert_eq!(users.body["items"][0]["id"], json!(uid), "{}", users.text);
    let children = app.get(&format!("/api/security/groups/{gid}/groups")).await;
    assert_eq!(
        children.body["items"][0]["id"],
        json!(cid),
        "{}",
        children.text
    );
    // And the user's groups say it.
    let got = admin(&app, Method::GET, &format!("/Users/{uid}"), None).await;
    assert_eq!(got.body["groups"][0]["value"], json!(gid));
    assert_eq!(got.body["groups"][0]["type"], "direct");
    // A member added through the Contensis API shows in SCIM.
    let v = create_user(&app, user_body("vic", "vic@example.com")).await;
    let vid = v["id"].as_str().unwrap();
    app.put(&format!("/api/security/groups/{gid}/users/{vid}"), None)
        .await;
    let got = admin(&app, Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(member_ids(&got.body).len(), 3);
    // Filters through the membership relations: the groups a member is in, the users
    // in a group (also through child groups).
    let enc = crate::helpers::enc;
    let l = admin(
        &app,
        Method::GET,
        &format!(
            "/Groups?filter={}",
            enc(&format!("members[value eq \"{cid}\"]"))
        ),
        None,
    )
    .await;
    assert_eq!(ids(&l.body), [gid.as_str()], "{}", l.text);
    let l = admin(
        &app,
        Method::GET,
        &format!(
            "/Groups?filter={}",
            enc(&format!("members.value eq \"{uid}\""))
        ),
        None,
    )
    .await;
    assert_eq!(ids(&l.body), [gid.as_str()], "{}", l.text);
    let l = admin(
        &app,
        Method::GET,
        &format!(
            "/Users?filter={}",
            enc(&format!(
                "groups.value eq \"{gid}\" and userName eq \"ann\""
            ))
        ),
        None,
    )
    .await;
    assert_eq!(ids(&l.body), [uid.as_str()], "{}", l.text);
    // excludedAttributes=members leaves them out (and unread).
    let got = admin(
        &app,
        Method::GET,
        &format!("/Groups/{gid}?excludedAttributes=members"),
        None,
    )
    .await;
    assert!(got.body.get("members").is_none());
    assert_eq!(got.body["displayName"], "Parent");
}

#[tokio::test]
async fn patch_adds_and_removes_members_put_replaces_them() {
    let app = TestApp::spawn().await;
    let a = create_user(&app, user_body("a", "a@example.com")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create_user(&app, user_body("b", "b@example.com")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = create_group(&app, "Team", &[]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "add", "path": "members", "value": [{"value": a}, {"value": b, "type": "User"}]},
            {"op": "replace", "path": "displayName", "value": "Team A"},
            {"op": "add", "path": "externalId", "value": "grp-1"}
        ]))),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(member_ids(&r.body).len(), 2);
    assert_eq!(r.body["displayName"], "Team A");
    assert_eq!(r.body["externalId"], "grp-1");
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")}
        ]))),
    )
    .await;
    assert_eq!(member_ids(&r.body), [(b.clone(), "User".to_owned())]);
    // Removing what is not there is no error.
    admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")}
        ]))),
    )
    .await
    .expect(StatusCode::OK);
    // A member that does not exist: 400, nothing changed.
    let r = admin(&app, Method::PATCH, &path, Some(patch(json!([
        {"op": "add", "path": "members", "value": [{"value": "5b7e9a51-3d2f-4c1a-9e8b-000000000000"}]}
    ])))).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
    // PUT: the member list is replaced.
    let r = admin(
        &app,
        Method::PUT,
        &path,
        Some(json!({"schemas": [GROUP], "displayName": "Team A", "members": [{"value": a}]})),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(member_ids(&r.body), [(a.clone(), "User".to_owned())]);
    assert!(
        r.body.get("externalId").is_none(),
        "PUT clears what it leaves out"
    );
    // Filter by name, externalId.
    let l = admin(
        &app,
        Method::GET,
        &format!(
            "/Groups?filter={}",
            crate::helpers::enc(r#"displayName eq "team a""#)
        ),
        None,
    )
    .await;
    assert_eq!(ids(&l.body), [gid.as_str()]);
    // DELETE.
    assert_eq!(
        admin(&app, Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/api/security/groups/{gid}"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_services_rules_answer_in_scim_terms() {
    let app = TestApp::spawn().await;
    let x = create_group(&app, "X", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let y = create_group(&app, "Y", &[&x]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A cycle: Y contains X; X may not contain Y.
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Groups/{x}"),
        Some(patch(json!([
            {"op": "add", "path": "members", "value": [{"value": y, "type": "Group"}]}
        ]))),
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
    // A taken name.
    let r = admin(
        &app,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "x"})),
    )
    .await;
    assert_scim_error(&r, StatusCode::CONFLICT, Some("uniqueness"));
    // The last administrator stays.
    let sys = "4a1f0c5e-0000-4000-8000-000000000001";
    let admin_id = admin(&app, Method::GET, "/Me", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Groups/{sys}"),
        Some(patch(json!([
            {"op": "remove", "path": format!("members[value eq \"{admin_id}\"]")}
        ]))),
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("mutability"));
    // The built-in group keeps its name and cannot be deleted.
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Groups/{sys}"),
        Some(patch(json!([
            {"op": "replace", "path": "displayName", "value": "Admins"}
        ]))),
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("mutability"));
    let r = admin(&app, Method::DELETE, &format!("/Groups/{sys}"), None).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("mutability"));
    assert_scim_error(
        &admin(&app, Method::GET, "/Groups/nope", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
}

/// `POST /.search` at the root: users then groups, one window over both.
#[tokio::test]
async fn the_root_search_spans_users_and_groups() {
    let app = TestApp::spawn().await;
    let u = create_user(&app, user_body("pat", "pat@example.com")).await;
    let g = create_group(&app, "Pat's group", &[]).await;
    let search = |filter: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": filter,
        })
    };
    let r = admin(
        &app,
        Method::POST,
        "/.search",
        Some(search(r#"id eq "x" or meta.created pr"#)),
    )
    .await;
    r.expect(StatusCode::OK);
    let found = ids(&r.body);
    assert!(
        found.contains(&u["id"].as_str().unwrap().to_owned()),
        "{}",
        r.text
    );
    assert!(
        found.contains(&g["id"].as_str().unwrap().to_owned()),
        "{}",
        r.text
    );
    assert_eq!(r.body["totalResults"].as_u64(), Some(found.len() as u64));
    // displayName is a group's name, and a user's own attribute.
    let r = admin(
        &app,
        Method::POST,
        "/.search",
        Some(search(r#"displayName sw "Pat""#)),
    )
    .await;
    assert_eq!(ids(&r.body), [g["id"].as_str().unwrap()]);
    // userName only users have: the groups contribute nothing.
    let r = admin(
        &app,
        Method::POST,
        "/.search",
        Some(search(r#"userName eq "pat""#)),
    )
    .await;
    assert_eq!(ids(&r.body), [u["id"].as_str().unwrap()]);
    // Neither has it: the client's error.
    let r = admin(&app, Method::POST, "/.search", Some(search("members pr"))).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
}
