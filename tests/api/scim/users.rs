//! Users over SCIM: the mapping onto gatehouse's users, CRUD, lists, versions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::helpers::{PASSWORD, TestApp};

fn full_user() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "ext-0042",
        "userName": "bjensen",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto.jpg", "type": "photo"}],
        "addresses": [{
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood", "region": "CA", "postalCode": "91608",
            "country": "US", "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "type": "work", "primary": true
        }],
        "entitlements": [{"value": "reports"}],
        "roles": [{"value": "guide", "primary": true}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

/// What a representation holds that the client did not send.
fn without_server_parts(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    for k in ["id", "meta", "groups"] {
        m.remove(k);
    }
    v
}

#[tokio::test]
async fn every_attribute_survives_a_round_trip() {
    let app = TestApp::spawn().await;
    let sent = full_user();
    let created = create_user(&app, sent.clone()).await;
    assert_eq!(
        without_server_parts(created.clone()),
        sent,
        "POST answers what was stored"
    );
    let id = created["id"].as_str().unwrap();
    let got = admin(&app, Method::GET, &format!("/Users/{id}"), None).await;
    got.expect(StatusCode::OK);
    assert_eq!(
        without_server_parts(got.body.clone()),
        sent,
        "GET gives back every attribute"
    );
    assert_eq!(got.body["meta"]["resourceType"], "User");
    assert_eq!(
        got.body["meta"]["location"],
        json!(app.public_url(&format!("/scim/v2/Users/{id}")))
    );
    assert_eq!(content_type(&got), "application/scim+json");
    // The version is the ETag, and stays while nothing changes.
    let etag = got
        .headers
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(got.body["meta"]["version"], json!(etag));
    let again = admin(&app, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(again.body["meta"]["version"], json!(etag));
}

#[tokio::test]
async fn a_scim_user_is_the_same_user_through_the_contensis_api_and_back() {
    let app = TestApp::spawn().await;
    let created = create_user(&app, full_user()).await;
    let id = created["id"].as_str().unwrap();
    let api = app.get(&format!("/api/security/users/{id}")).await;
    api.expect(StatusCode::OK);
    assert_eq!(api.body["username"], "bjensen");
    assert_eq!(api.body["email"], "bjensen@example.com");
    assert_eq!(api.body["firstName"], "Barbara");
    assert_eq!(api.body["lastName"], "Jensen");
    assert_eq!(api.body["language"], "en-US");
    assert_eq!(api.body["timezone"], "America/Los_Angeles");
    assert_eq!(api.body["custom"]["scim.externalId"], "ext-0042");
    assert_eq!(
        api.body["custom"]["scim.enterprise.department"],
        "Tour Operations"
    );
    // A change through the Contensis API shows in SCIM, the client's own custom keys
    // are kept by a SCIM PUT and not shown there.
    app.patch(
        &format!("/api/security/users/{id}"),
        json!({"firstName": "Babs", "email": "babs@example.com", "custom": {"crm": 7}}),
    )
    .await
    .expect(StatusCode::OK);
    let g = app.create_group("Tour Guides").await;
    let parent = app.create_group("Staff").await;
    app.put(
        &format!(
            "/api/security/groups/{}/users/{id}",
            g["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    app.put(
        &format!(
            "/api/security/groups/{}/groups/{}",
            parent["id"].as_str().unwrap(),
            g["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let got = admin(&app, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(got.body["name"]["givenName"], "Babs");
    assert_eq!(
        got.body["emails"][0]["value"], "babs@example.com",
        "the primary email is the user's email"
    );
    assert_eq!(got.body["emails"][1]["value"], "babs@jensen.org");
    assert!(got.body.get("crm").is_none() && !got.text.contains("\"crm\""));
    let mut groups: Vec<(String, String)> = got.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["display"].as_str().unwrap().to_owned(),
                g["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            ("Staff".to_owned(), "indirect".to_owned()),
            ("Tour Guides".to_owned(), "direct".to_owned())
        ]
    );
    let mut body = without_server_parts(got.body.clone());
    body["title"] = json!("Head Guide");
    admin(&app, Method::PUT, &format!("/Users/{id}"), Some(body))
        .await
        .expect(StatusCode::OK);
    let api = app.get(&format!("/api/security/users/{id}")).await;
    assert_eq!(
        api.body["custom"]["crm"], 7,
        "a SCIM PUT keeps the client's own custom keys"
    );
    assert_eq!(api.body["custom"]["scim.title"], "Head Guide");
}

#[tokio::test]
async fn put_replaces_patch_changes_delete_removes() {
    let app = TestApp::spawn().await;
    let created = create_user(&app, full_user()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    // PUT: what is absent is cleared.
    let r = admin(
        &app,
        Method::PUT,
        &path,
        Some(user_body("bjensen2", "b2@example.com")),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["userName"], "bjensen2");
    assert!(
        r.body.get("name").is_none() && r.body.get("title").is_none(),
        "{}",
        r.text
    );
    assert!(r.body.get(ENTERPRISE).is_none());
    let api = app.get(&format!("/api/security/users/{id}")).await;
    assert_eq!(api.body["firstName"], Value::Null);
    // PATCH: add, replace, remove, with paths and without.
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([
            {"op": "add", "path": "name.givenName", "value": "Barb"},
            {"op": "replace", "value": {"displayName": "B", "externalId": "x-1"}},
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "1", "type": "work"}, {"value": "2", "type": "home"}]},
            {"op": "remove", "path": "phoneNumbers[type eq \"work\"]"},
            {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}
        ]))),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["name"], json!({"givenName": "Barb"}));
    assert_eq!(r.body["displayName"], "B");
    assert_eq!(r.body["externalId"], "x-1");
    assert_eq!(
        r.body["phoneNumbers"],
        json!([{"value": "2", "type": "home"}])
    );
    assert_eq!(r.body[ENTERPRISE]["department"], "Ops");
    assert_eq!(r.body["schemas"], json!([USER, ENTERPRISE]));
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(
            json!([{"op": "remove", "path": ENTERPRISE}, {"op": "remove", "path": "name"}]),
        )),
    )
    .await;
    r.expect(StatusCode::OK);
    assert!(
        r.body.get(ENTERPRISE).is_none() && r.body.get("name").is_none(),
        "{}",
        r.text
    );
    // Removing a required attribute is refused, and changes nothing.
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(patch(json!([{"op": "remove", "path": "userName"}]))),
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
    // DELETE: gone for SCIM and for the Contensis API.
    let r = admin(&app, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_scim_error(
        &admin(&app, Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    app.get(&format!("/api/security/users/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_scim_error(
        &admin(&app, Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &admin(&app, Method::GET, "/Users/not-a-uuid", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
}

#[tokio::test]
async fn deactivation_suspends_and_revokes_tokens() {
    let app = TestApp::spawn().await;
    let mut body = user_body("walter", "walter@example.com");
    body["password"] = json!(PASSWORD);
    let created = create_user(&app, body).await;
    assert!(created.get("password").is_none(), "never returned");
    let id = created["id"].as_str().unwrap();
    let token = app.login("walter", PASSWORD).await;
    app.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&token),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let r = admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["active"], false);
    app.send(
        Method::GET,
        "/api/security/users/@current",
        Some(&token),
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
    let api = app.get(&format!("/api/security/users/{id}")).await;
    assert_eq!(api.body["status"]["suspended"], true, "{}", api.text);
    assert_eq!(
        app.password_grant("walter", PASSWORD).await.status,
        StatusCode::BAD_REQUEST
    );
    // Reactivated: a new login works.
    admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": true}]),
        )),
    )
    .await
    .expect(StatusCode::OK);
    app.login("walter", PASSWORD).await;
    // Created inactive: suspended from the start.
    let mut body = user_body("skyler", "skyler@example.com");
    body["active"] = json!(false);
    let c = create_user(&app, body).await;
    assert_eq!(c["active"], false);
}

#[tokio::test]
async fn passwords_go_through_the_policy_and_names_are_unique() {
    let app = TestApp::spawn().await;
    let mut body = user_body("jesse", "jesse@example.com");
    body["password"] = json!("short");
    let r = admin(&app, Method::POST, "/Users", Some(body)).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(
        !r.text.contains("short\""),
        "the password is not echoed: {}",
        r.text
    );
    let c = create_user(&app, user_body("jesse", "jesse@example.com")).await;
    let id = c["id"].as_str().unwrap();
    // A password set by PATCH works for the password grant.
    admin(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "password", "value": PASSWORD}]),
        )),
    )
    .await
    .expect(StatusCode::OK);
    app.login("jesse", PASSWORD).await;
    for (user_name, email) in [
        ("JESSE", "other@example.com"),
        ("other", "Jesse@Example.com"),
        ("jesse@example.com", "x@example.com"),
    ] {
        let r = admin(
            &app,
            Method::POST,
            "/Users",
            Some(user_body(user_name, email)),
        )
        .await;
        assert_scim_error(&r, StatusCode::CONFLICT, Some("uniqueness"));
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page_through_the_shared_query_engine() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for (i, name) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
        let mut body = user_body(name, &format!("{name}@example.com"));
        body["externalId"] = json!(format!("ext-{i}"));
        body["name"] = json!({"givenName": name.to_uppercase()});
        body["active"] = json!(i % 2 == 0);
        ids.push(
            create_user(&app, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let list = |q: String| {
        let app = &app;
        async move {
            let r = admin(app, Method::GET, &format!("/Users?{q}"), None).await;
            r.expect(StatusCode::OK);
            r.body
        }
    };
    let enc = crate::helpers::enc;
    let l = list(format!("filter={}", enc(r#"userName eq "CAROL""#))).await;
    assert_eq!(ids_of(&l), [ids[2].clone()]);
    assert_eq!(l["totalResults"], 1);
    assert_eq!(
        l["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    let l = list(format!("filter={}", enc(r#"externalId eq "ext-3""#))).await;
    assert_eq!(ids_of(&l), [ids[3].clone()]);
    let l = list(format!(
        "filter={}&sortBy=userName",
        enc(r#"active eq false"#)
    ))
    .await;
    assert_eq!(ids_of(&l), [ids[1].clone(), ids[3].clone()]);
    let l = list(format!(
        "filter={}&sortBy=userName&sortOrder=descending",
        enc(r#"emails co "@example" and (name.givenName sw "A" or name.givenName sw "E")"#)
    ))
    .await;
    assert_eq!(ids_of(&l), [ids[4].clone(), ids[0].clone()]);
    // Pages start anywhere: startIndex 2, count 2 (of the five, by userName, after admin).
    let l = list(format!(
        "filter={}&sortBy=userName&startIndex=2&count=2",
        enc(r#"emails ew "@example.com""#)
    ))
    .await;
    assert_eq!(ids_of(&l), [ids[1].clone(), ids[2].clone()]);
    assert_eq!(
        (
            l["totalResults"].as_i64(),
            l["startIndex"].as_i64(),
            l["itemsPerPage"].as_i64()
        ),
        (Some(5), Some(2), Some(2))
    );
    let l = list(format!(
        "filter={}&sortBy=userName&startIndex=4&count=3",
        enc(r#"emails ew "@example.com""#)
    ))
    .await;
    assert_eq!(ids_of(&l), [ids[3].clone(), ids[4].clone()]);
    // A window across two of the service's pages, up to the very last item.
    for (window, want) in [
        ("startIndex=4&count=2", &ids[3..5]),
        ("startIndex=5&count=4", &ids[4..5]),
    ] {
        let l = list(format!(
            "filter={}&sortBy=userName&{window}",
            enc(r#"emails ew "@example.com""#)
        ))
        .await;
        assert_eq!(ids_of(&l), want, "{window}");
    }
    let l = list("count=0".into()).await;
    assert_eq!(l["Resources"], json!([]));
    assert_eq!(l["totalResults"], 6, "five and the admin");
    // .search takes the same in a body.
    let r = admin(
        &app,
        Method::POST,
        "/Users/.search",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"d\"",
            "attributes": ["userName"],
        })),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(
        r.body["Resources"],
        json!([{"schemas": [USER], "id": ids[3], "userName": "dave"}])
    );
    // A filter the shared AST cannot say is invalidFilter, never a 500.
    for bad in [
        r#"phoneNumbers eq "1""#,
        r#"name.formatted eq "x""#,
        r#"userName eq"#,
        r#"meta.created gt "soon""#,
    ] {
        let r = admin(
            &app,
            Method::GET,
            &format!("/Users?filter={}", enc(bad)),
            None,
        )
        .await;
        assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    }
    let r = admin(&app, Method::GET, "/Users?sortBy=phoneNumbers", None).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
}

fn ids_of(list: &Value) -> Vec<String> {
    ids(list)
}

#[tokio::test]
async fn attributes_and_excluded_attributes_shape_the_answer() {
    let app = TestApp::spawn().await;
    let c = create_user(&app, full_user()).await;
    let id = c["id"].as_str().unwrap();
    let r = admin(
        &app,
        Method::GET,
        &format!(
            "/Users/{id}?attributes=userName,name.givenName,{ENTERPRISE}:department,emails.value"
        ),
        None,
    )
    .await;
    assert_eq!(
        r.body,
        json!({
            "schemas": [USER, ENTERPRISE], "id": id, "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            ENTERPRISE: {"department": "Tour Operations"},
            "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
        })
    );
    let r = admin(
        &app,
        Method::GET,
        &format!("/Users/{id}?excludedAttributes=emails,name,{ENTERPRISE},id"),
        None,
    )
    .await;
    assert!(
        r.body.get("emails").is_none()
            && r.body.get("name").is_none()
            && r.body.get(ENTERPRISE).is_none()
    );
    assert_eq!(r.body["id"], json!(id), "id is always returned");
    assert_eq!(r.body["title"], "Tour Guide");
}

#[tokio::test]
async fn versions_guard_changes() {
    let app = TestApp::spawn().await;
    let c = create_user(&app, user_body("hank", "hank@example.com")).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/scim/v2/Users/{id}");
    let version = c["meta"]["version"].as_str().unwrap().to_owned();
    let send = |method: Method, if_match: &str, body: Option<Value>| {
        let mut req = app
            .request(method, &path)
            .bearer(&app.admin)
            .header("if-match", if_match);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        req.send()
    };
    let p = patch(json!([{"op": "replace", "path": "title", "value": "Agent"}]));
    let r = send(Method::PATCH, "W/\"0000\"", Some(p.clone())).await;
    assert_scim_error(&r, StatusCode::PRECONDITION_FAILED, None);
    let r = send(Method::PATCH, &version, Some(p.clone())).await;
    r.expect(StatusCode::OK);
    let new_version = r.body["meta"]["version"].as_str().unwrap().to_owned();
    assert_ne!(new_version, version);
    assert_scim_error(
        &send(Method::DELETE, &version, None).await,
        StatusCode::PRECONDITION_FAILED,
        None,
    );
    // If-None-Match with the current version: 304.
    let r = app
        .request(Method::GET, &path)
        .bearer(&app.admin)
        .header("if-none-match", &new_version)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        send(Method::DELETE, "*", None).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn me_is_the_callers_own_user() {
    let app = TestApp::spawn().await;
    let r = admin(&app, Method::GET, "/Me", None).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["userName"], "admin");
    let r = admin(
        &app,
        Method::PATCH,
        "/Me",
        Some(patch(
            json!([{"op": "add", "path": "nickName", "value": "boss"}]),
        )),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["nickName"], "boss");
    // The last administrator cannot deactivate itself.
    let r = admin(
        &app,
        Method::PATCH,
        "/Me",
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("mutability"));
}

/// Attack: several PATCHes sent at once with the same `If-Match`. Each read the same
/// version; only the first write may win, the rest must see that the version moved.
#[tokio::test]
async fn racing_patches_with_one_version_let_exactly_one_through() {
    let app = TestApp::spawn().await;
    let c = create_user(&app, user_body("racer", "racer@example.com")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let version = c["meta"]["version"].as_str().unwrap().to_owned();
    let statuses = crate::users::join_all(
        (0..8)
            .map(|i| {
                let (app, id, version) = (&app, &id, &version);
                async move {
                    app.request(Method::PATCH, &format!("/scim/v2/Users/{id}"))
                .bearer(&app.admin)
                .header("if-match", version)
                .header("content-type", "application/scim+json")
                .body(
                    patch(json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]))
                        .to_string(),
                )
                .send()
                .await
                .status
                }
            })
            .collect(),
    )
    .await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, refused), (1, 7), "{statuses:?}");
}

/// Attack: PATCHes of different attributes at once, without versions. Each is applied to
/// the representation it read; none may write back a stale copy over another's change.
#[tokio::test]
async fn concurrent_patches_of_different_attributes_lose_nothing() {
    let app = TestApp::spawn().await;
    let c = create_user(&app, user_body("sharer", "sharer@example.com")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let attrs = [
        "title",
        "nickName",
        "displayName",
        "locale",
        "timezone",
        "preferredLanguage",
        "userType",
        "profileUrl",
    ];
    let statuses = crate::users::join_all(
        attrs
            .iter()
            .map(|attr| {
                let (app, id) = (&app, &id);
                async move {
                    let value = format!("https://example.com/{attr}");
                    admin(
                        app,
                        Method::PATCH,
                        &format!("/Users/{id}"),
                        Some(patch(
                            json!([{"op": "replace", "path": attr, "value": value}]),
                        )),
                    )
                    .await
                    .status
                }
            })
            .collect(),
    )
    .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let r = admin(&app, Method::GET, &format!("/Users/{id}"), None).await;
    for attr in attrs {
        assert_eq!(
            r.body[attr],
            json!(format!("https://example.com/{attr}")),
            "{attr} lost: {}",
            r.text
        );
    }
}
