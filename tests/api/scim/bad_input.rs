//! Bad input is a SCIM 400 (or 404/405/413/415), never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::{TestApp, enc};

async fn raw(app: &TestApp, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
    app.request(method, &format!("/scim/v2{path}"))
        .bearer(&app.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn malformed_bodies_wrong_schemas_and_unknown_attributes_are_400s() {
    let app = TestApp::spawn().await;
    let u = create_user(&app, user_body("saul", "saul@example.com")).await;
    let id = u["id"].as_str().unwrap();
    for body in [&b"{"[..], b"", b"   ", b"[1,2", b"\xff\xfe", b"nul\x00l"] {
        let r = raw(
            &app,
            Method::POST,
            "/Users",
            "application/scim+json",
            body.to_vec(),
        )
        .await;
        assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    }
    for (body, scim_type) in [
        (json!([]), "invalidSyntax"),
        (json!({"userName": "x"}), "invalidSyntax"),
        (
            json!({"schemas": [GROUP], "userName": "x"}),
            "invalidSyntax",
        ),
        (json!({"schemas": "nope", "userName": "x"}), "invalidSyntax"),
        (
            json!({"schemas": [USER, "urn:example:unknown"], "userName": "x"}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "shoeSize": 44}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "emails": [{"value": "x@y.z", "colour": "red"}]}),
            "invalidSyntax",
        ),
        (json!({"schemas": [USER], "userName": 42}), "invalidValue"),
        (
            json!({"schemas": [USER], "userName": "x", "active": "perhaps"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "name": ["a"]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "emails": [{"value": "x@y.z"}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "nobody"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "emails": [{"value": "not an email"}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x".repeat(300), "emails": [{"value": "x@y.z"}]}),
            "invalidValue",
        ),
    ] {
        let r = admin(&app, Method::POST, "/Users", Some(body.clone())).await;
        assert_scim_error(&r, StatusCode::BAD_REQUEST, Some(scim_type));
        let r = admin(
            &app,
            Method::PUT,
            &format!("/Users/{id}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "PUT {body}: {}", r.text);
    }
    // Custom properties are bounded: a huge attribute is refused, not stored.
    let mut big = user_body("big", "big@example.com");
    big["title"] = json!("x".repeat(70 * 1024));
    assert_scim_error(
        &admin(&app, Method::POST, "/Users", Some(big)).await,
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
    );
    for ops in [
        json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        json!({"schemas": [PATCH_OP], "Operations": "add"}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "teleport", "path": "title"}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "shoeSize", "value": 1}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails[type eq", "value": 1}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": 7}]}),
    ] {
        let r = admin(
            &app,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(ops.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ops}: {}", r.text);
        assert_eq!(r.body["schemas"], json!([ERROR]));
    }
}

#[tokio::test]
async fn media_types_sizes_and_unknown_endpoints() {
    let app = TestApp::spawn().await;
    let body = user_body("lalo", "lalo@example.com")
        .to_string()
        .into_bytes();
    let r = raw(&app, Method::POST, "/Users", "text/plain", body.clone()).await;
    assert_scim_error(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    let r = raw(&app, Method::POST, "/Users", "application/json", body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "plain JSON is accepted too: {}",
        r.text
    );
    assert_eq!(content_type(&r), "application/scim+json");
    assert_eq!(
        r.headers.get("location").unwrap().to_str().unwrap(),
        r.body["meta"]["location"].as_str().unwrap()
    );
    let mut huge = user_body("huge", "huge@example.com");
    huge["title"] = json!("x".repeat(1024 * 1024 + 10));
    let r = raw(
        &app,
        Method::POST,
        "/Users",
        "application/scim+json",
        huge.to_string().into_bytes(),
    )
    .await;
    assert_scim_error(&r, StatusCode::PAYLOAD_TOO_LARGE, None);
    let long = format!(r#"userName eq "{}""#, "x".repeat(5000));
    let r = admin(
        &app,
        Method::GET,
        &format!("/Users?filter={}", enc(&long)),
        None,
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    let r = admin(
        &app,
        Method::GET,
        &format!("/Users?filter={}", enc(&deep)),
        None,
    )
    .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    for q in ["startIndex=abc", "count=1.5", "sortOrder=sideways"] {
        let r = admin(&app, Method::GET, &format!("/Users?{q}"), None).await;
        assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidValue"));
    }
    // Out-of-range numbers are read leniently, as the RFC says.
    let r = admin(&app, Method::GET, "/Users?startIndex=-5&count=100000", None).await;
    assert_eq!(r.body["startIndex"], 1);
    let r = admin(&app, Method::GET, "/Users?startIndex=99999999999999", None).await;
    assert_eq!(r.body["Resources"], json!([]));
    assert_scim_error(
        &admin(&app, Method::GET, "/Nope", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &admin(&app, Method::GET, "/Schemas/urn:nope", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    let r = admin(&app, Method::DELETE, "/ServiceProviderConfig", None).await;
    assert_scim_error(&r, StatusCode::METHOD_NOT_ALLOWED, None);
    let r = admin(&app, Method::POST, "/Schemas", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // The Contensis API keeps its own rules and envelope beside it.
    app.get("/api/security/nope")
        .await
        .expect(StatusCode::NOT_FOUND);
}
