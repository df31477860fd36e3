//! `/Bulk`: operations in order, `bulkId` references, `failOnErrors`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::TestApp;

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

#[tokio::test]
async fn bulk_creates_with_references_and_stops_on_errors() {
    let app = TestApp::spawn().await;
    let r = admin(&app, Method::POST, "/Bulk", Some(json!({
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("gus", "gus@example.com")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP], "displayName": "Pollos", "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": patch(json!([{"op": "add", "path": "title", "value": "Owner"}]))},
            {"method": "POST", "path": "/Groups", "bulkId": "g2", "data": {"schemas": [GROUP], "displayName": "Later", "members": [{"value": "bulkId:nope"}]}}
        ]
    }))).await;
    r.expect(StatusCode::OK);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "200", "409"], "{}", r.text);
    assert_eq!(ops[0]["bulkId"], "u1");
    let user_loc = ops[0]["location"].as_str().unwrap();
    let user_id = user_loc.rsplit('/').next().unwrap();
    assert!(ops[0]["version"].is_string());
    assert_eq!(ops[3]["response"]["schemas"], json!([ERROR]));
    let group_id = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let members = app
        .get(&format!("/api/security/groups/{group_id}/users"))
        .await;
    assert_eq!(members.body["items"][0]["id"], json!(user_id));
    let u = admin(&app, Method::GET, &format!("/Users/{user_id}"), None).await;
    assert_eq!(u.body["title"], "Owner");
    // failOnErrors: 1 stops after the first error.
    let r = admin(&app, Method::POST, "/Bulk", Some(json!({
        "schemas": [BULK],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": user_body("gus", "gus2@example.com")},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": user_body("lydia", "lydia@example.com")}
        ]
    }))).await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["status"], "409");
    assert_eq!(ops[0]["response"]["scimType"], "uniqueness");
    let l = admin(
        &app,
        Method::GET,
        &format!(
            "/Users?filter={}",
            crate::helpers::enc(r#"userName eq "lydia""#)
        ),
        None,
    )
    .await;
    assert_eq!(l.body["totalResults"], 0, "nothing after the stop");
    // Malformed bulk requests.
    let r = admin(
        &app,
        Method::POST,
        "/Bulk",
        Some(json!({"schemas": [BULK], "Operations": [{"method": "GET", "path": "/Users"}]})),
    )
    .await;
    assert_eq!(r.body["Operations"][0]["status"], "400");
    let r = admin(&app, Method::POST, "/Bulk", Some(json!({"Operations": []}))).await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidSyntax"));
}
