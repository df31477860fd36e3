//! `/users`: create, read, update, delete, list.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn create_then_read_by_id_username_and_email() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    let id = user["id"].as_str().unwrap();
    for key in [
        id,
        "tdurden",
        "TDurden",
        "t.durden@fightclub.com",
        "T.Durden@FightClub.com",
    ] {
        let r = app.get(&format!("/api/security/users/{}", enc(key))).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], user["id"], "lookup by {key}");
    }
    assert!(user.get("password").is_none());
    assert!(user["credentials"].get("password").is_none());
    assert!(!user.to_string().contains(PASSWORD));
}
