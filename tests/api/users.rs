//! `/users`: create, read, update, delete, list, the user's groups, bad input and
//! persistence across restarts.

use gatehouse::clock::{Clock as _, format_rfc3339};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const USERS: &str = "/api/security/users";
const MERGE_PATCH: &str = "application/merge-patch+json; charset=utf-8";

fn user_path(key: &str) -> String {
    format!("{USERS}/{}", enc(key))
}

/// Creates a user without a password (no hashing, so fast) with the given names.
async fn make_user(app: &TestApp, username: &str, first: &str, last: &str) -> Value {
    let r = app
        .post(
            USERS,
            json!({"username": username, "email": format!("{username}@example.com"),
                   "firstName": first, "lastName": last}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    r.body.clone()
}

/// The number of users the list reports.
async fn user_count(app: &TestApp) -> i64 {
    let r = app.get(&format!("{USERS}?pageSize=1")).await;
    r.expect(StatusCode::OK);
    r.body["totalCount"].as_i64().expect("totalCount")
}

/// The usernames on a list page.
fn usernames(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

/// PATCHes as the admin with the npm client's merge-patch content type.
async fn merge_patch(app: &TestApp, path: &str, body: &Value) -> Resp {
    app.send_raw(
        Method::PATCH,
        path,
        Some(&app.admin.clone()),
        MERGE_PATCH,
        body.to_string().into_bytes(),
    )
    .await
}

/// Asserts an RFC 3339 UTC timestamp with milliseconds, e.g. `2026-01-02T03:04:05.678Z`.
#[track_caller]
fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {v}"));
    assert_eq!(s.len(), 24, "YYYY-MM-DDTHH:MM:SS.mmmZ: {s}");
    assert!(s.ends_with('Z'), "UTC with Z: {s}");
    assert_eq!(&s[19..20], ".", "milliseconds: {s}");
    assert!(
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok(),
        "RFC 3339: {s}"
    );
}

// ---------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------

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

#[tokio::test]
async fn create_returns_201_with_the_full_user_shape_and_no_password() {
    let app = TestApp::spawn().await;
    let now = app.clock.now_ms();
    let r = app
        .post(
            USERS,
            json!({
                "username": "tdurden",
                "email": "t.durden@fightclub.com",
                "firstName": "Tyler",
                "lastName": "Durden",
                "timezone": "Europe/London",
                "language": "en-GB",
                "custom": {"Soap": "Paper Street", "n": 7, "nested": {"a": [1, 2]}},
                "optOutOfNotifications": true,
                "credentials": {"password": PASSWORD, "passwordChangeFrequency": 30}
            }),
        )
        .await;
    r.expect(StatusCode::CREATED);
    let u = &r.body;
    assert!(uuid::Uuid::parse_str(u["id"].as_str().expect("id")).is_ok());
    assert_eq!(u["username"], "tdurden");
    assert_eq!(u["email"], "t.durden@fightclub.com");
    assert_eq!(u["firstName"], "Tyler");
    assert_eq!(u["lastName"], "Durden");
    assert_eq!(u["timezone"], "Europe/London");
    assert_eq!(u["language"], "en-GB");
    assert_eq!(
        u["custom"],
        json!({"Soap": "Paper Street", "n": 7, "nested": {"a": [1, 2]}})
    );
    assert_eq!(u["optOutOfNotifications"], true);
    assert_eq!(u["credentials"]["provider"]["type"], "contensis");
    assert!(
        u["credentials"]["provider"]
            .as_object()
            .unwrap()
            .contains_key("name"),
        "provider.name present: {u}"
    );
    assert_eq!(u["credentials"]["passwordChangeFrequency"], 30);
    assert_eq!(
        u["status"],
        json!({"active": true, "suspended": false, "locked": false, "passwordResetRequired": false})
    );
    assert_timestamp(&u["created"]);
    assert_timestamp(&u["modified"]);
    assert_timestamp(&u["passwordChanged"]);
    assert_eq!(u["created"], format_rfc3339(now));
    assert_eq!(u["created"], u["modified"]);
    assert_eq!(u["lastLogin"], Value::Null);
    assert_eq!(u["lastFailedLogin"], Value::Null);
    assert_eq!(u["expiry"], Value::Null);
    assert_eq!(u["failedLoginAttempts"], 0);
    assert_eq!(u["failedLoginAttemptsSinceLastSuccess"], 0);
    assert_eq!(u["successfulLoginAttempts"], 0);
    let text = r.text.to_lowercase();
    assert!(!text.contains("password\""), "no password property: {text}");
    assert!(!r.text.contains(PASSWORD));
    assert!(!r.text.contains("argon2"));
    // What GET returns is what POST returned.
    let got = app.get(&user_path("tdurden")).await;
    got.expect(StatusCode::OK);
    assert_eq!(&got.body, u);
}

#[tokio::test]
async fn password_never_appears_in_get_or_list() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    for path in [user_path("tdurden"), USERS.to_owned()] {
        let r = app.get(&path).await;
        r.expect(StatusCode::OK);
        assert!(!r.text.contains(PASSWORD), "{path}");
        assert!(!r.text.contains("$argon2"), "{path}");
        assert!(!r.text.to_lowercase().contains("\"password\""), "{path}");
        assert!(!r.text.to_lowercase().contains("hash"), "{path}");
    }
}

#[tokio::test]
async fn username_defaults_to_email() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"email": "Marla.Singer@example.com", "credentials": {"password": PASSWORD}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["username"], "Marla.Singer@example.com");
    assert_eq!(r.body["email"], "Marla.Singer@example.com");
    let got = app.get(&user_path("marla.singer@example.com")).await;
    got.expect(StatusCode::OK);
    assert_eq!(got.body["id"], r.body["id"]);
    // ... and the user can log in with it.
    app.login("marla.singer@example.com", PASSWORD).await;
}

#[tokio::test]
async fn create_without_email_is_422_naming_email() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for body in [
        json!({"username": "noemail"}),
        json!({"username": "noemail", "email": null}),
        json!({"username": "noemail", "email": ""}),
        json!({}),
    ] {
        let r = app.post(USERS, body.clone()).await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "email", "{body}");
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn create_suspended_gives_suspended_inactive_user() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            &format!("{USERS}?suspended=true"),
            json!({"username": "marla", "email": "marla@example.com", "credentials": {"password": PASSWORD}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["status"]["suspended"], true);
    assert_eq!(r.body["status"]["active"], false);
    assert_eq!(r.body["status"]["locked"], false);
    let got = app.get(&user_path("marla")).await;
    got.expect(StatusCode::OK);
    assert_eq!(got.body["status"]["suspended"], true);
    assert_eq!(got.body["status"]["active"], false);
}

#[tokio::test]
async fn create_with_suspended_false_is_an_active_user() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            &format!("{USERS}?suspended=false&forcePasswordReset=false"),
            json!({"username": "marla", "email": "marla@example.com"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(
        r.body["status"],
        json!({"active": true, "suspended": false, "locked": false, "passwordResetRequired": false})
    );
}

#[tokio::test]
async fn create_with_malformed_boolean_query_parameter_is_400() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for q in ["suspended=yes", "forcePasswordReset=1", "SUSPENDED=maybe"] {
        let r = app
            .post(
                &format!("{USERS}?{q}"),
                json!({"username": "marla", "email": "marla@example.com"}),
            )
            .await;
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn create_with_force_password_reset_requires_reset() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            &format!("{USERS}?forcePasswordReset=true"),
            json!({"username": "bob", "email": "bob@example.com", "credentials": {"password": PASSWORD}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["status"]["passwordResetRequired"], true);
    assert_eq!(r.body["status"]["active"], true);
    assert_eq!(r.body["status"]["suspended"], false);
}

#[tokio::test]
async fn create_with_future_expiry_returns_it_in_utc_with_milliseconds() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "temp", "email": "temp@example.com", "expiry": "2099-06-01T12:00:00+02:00"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["expiry"], "2099-06-01T10:00:00.000Z");
    assert_eq!(r.body["status"]["active"], true);
}

#[tokio::test]
async fn create_with_past_expiry_is_422_and_malformed_expiry_is_400() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    let past = format_rfc3339(app.clock.now_ms() - 60_000);
    for expiry in [past.as_str(), "2001-01-01T00:00:00Z"] {
        let r = app
            .post(
                USERS,
                json!({"username": "temp", "email": "temp@example.com", "expiry": expiry}),
            )
            .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "expiry");
    }
    for expiry in ["tomorrow", "2099-13-01T00:00:00Z", "2099-01-01", ""] {
        let r = app
            .post(
                USERS,
                json!({"username": "temp", "email": "temp@example.com", "expiry": expiry}),
            )
            .await;
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn password_policy_violations_are_422_naming_password() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for (password, why) in [
        ("Ab1!xyz", "too short (7)"),
        ("", "empty"),
        ("alllowercase", "one class"),
        ("lowercase123", "two classes"),
        ("ALLUPPER!!!!", "two classes"),
        ("12345678!!", "two classes"),
        ("xxTylerxx-99", "contains first name"),
        ("DURDEN-pass-1", "contains last name, other case"),
    ] {
        let r = app
            .post(
                USERS,
                json!({"username": "tdurden", "email": "t@fightclub.com", "firstName": "Tyler",
                       "lastName": "Durden", "credentials": {"password": password}}),
            )
            .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "password", "{why}: {}", r.body);
        assert!(!r.text.contains(password) || password.is_empty(), "{why}");
    }
    assert_eq!(user_count(&app).await, before);
    // Exactly eight characters of three classes is fine; names under 3 characters are not checked.
    let r = app
        .post(
            USERS,
            json!({"username": "al", "email": "al@example.com", "firstName": "Al",
                   "credentials": {"password": "Al-pass1"}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_email_is_422_naming_email() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for email in [
        "plain",
        "@example.com",
        "marla@",
        "marla singer@example.com",
        "marla@.com",
        "marla@example..com",
        "   ",
    ] {
        let r = app
            .post(USERS, json!({"username": "marla", "email": email}))
            .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "email", "{email}");
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn duplicates_are_409_case_insensitively_across_usernames_and_emails() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_user("marla.singer@example.com", "marla@other.org")
        .await;
    let before = user_count(&app).await;
    for (username, email, why) in [
        ("TDURDEN", "new1@example.com", "same username, other case"),
        (
            "someone",
            "T.Durden@FightClub.COM",
            "same email, other case",
        ),
        (
            "T.Durden@fightclub.com",
            "new2@example.com",
            "username equal to another user's email",
        ),
        (
            "someone2",
            "Marla.Singer@Example.com",
            "email equal to another user's username",
        ),
        (
            "admin",
            "new3@example.com",
            "the bootstrap admin's username",
        ),
        ("someone3", "ADMIN@localhost", "the bootstrap admin's email"),
    ] {
        let r = app
            .post(USERS, json!({"username": username, "email": email}))
            .await;
        r.expect(StatusCode::CONFLICT);
        assert!(
            !r.text.to_lowercase().contains("unique constraint"),
            "{why}: no SQL in {}",
            r.text
        );
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn a_user_whose_username_equals_their_own_email_is_fine() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "Same@Example.com", "email": "same@example.com"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    app.get(&user_path("SAME@example.com"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn strings_over_255_characters_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    let long = "x".repeat(256);
    let long_email = format!("{}@example.com", "m".repeat(250));
    for (field, body) in [
        (
            "username",
            json!({"username": long, "email": "a@example.com"}),
        ),
        ("email", json!({"username": "a", "email": long_email})),
        (
            "firstName",
            json!({"username": "a", "email": "a@example.com", "firstName": long}),
        ),
        (
            "lastName",
            json!({"username": "a", "email": "a@example.com", "lastName": long}),
        ),
        (
            "timezone",
            json!({"username": "a", "email": "a@example.com", "timezone": long}),
        ),
        (
            "language",
            json!({"username": "a", "email": "a@example.com", "language": long}),
        ),
    ] {
        let r = app.post(USERS, body).await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], field, "{}", r.body);
    }
    assert_eq!(user_count(&app).await, before);
    // 255 characters (not bytes) are fine.
    let ok = "é".repeat(255);
    let r = app
        .post(
            USERS,
            json!({"username": ok, "email": "a@example.com", "firstName": ok, "lastName": ok}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["firstName"], ok);
}

#[tokio::test]
async fn long_strings_on_update_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    make_user(&app, "marla", "Marla", "Singer").await;
    let before = app.get(&user_path("marla")).await.body.clone();
    for field in [
        "username",
        "email",
        "firstName",
        "lastName",
        "timezone",
        "language",
    ] {
        let r = merge_patch(
            &app,
            &user_path("marla"),
            &json!({ field: "y".repeat(256) }),
        )
        .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], field);
    }
    assert_eq!(app.get(&user_path("marla")).await.body, before);
}

#[tokio::test]
async fn control_characters_and_blank_usernames_are_422() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for username in ["a\u{0}b", "bell\u{7}", "   ", ""] {
        let r = app
            .post(
                USERS,
                json!({"username": username, "email": "ctl@example.com"}),
            )
            .await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], "username");
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn custom_over_64_kib_is_422() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    let r = app
        .post(
            USERS,
            json!({"username": "big", "email": "big@example.com",
                   "custom": {"blob": "z".repeat(65 * 1024)}}),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["data"]["field"], "custom");
    assert_eq!(user_count(&app).await, before);
    // Just under the limit is fine.
    let r = app
        .post(
            USERS,
            json!({"username": "big", "email": "big@example.com",
                   "custom": {"blob": "z".repeat(60 * 1024)}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn negative_password_change_frequency_is_422() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "f", "email": "f@example.com",
                   "credentials": {"passwordChangeFrequency": -1}}),
        )
        .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["data"]["field"], "passwordChangeFrequency");
}

#[tokio::test]
async fn a_username_that_looks_like_a_uuid_is_found_by_name() {
    let app = TestApp::spawn().await;
    let name = uuid::Uuid::new_v4().to_string();
    let user = make_user(&app, &name, "Uu", "Id").await;
    assert_ne!(user["id"], json!(name));
    let r = app.get(&user_path(&name)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);
    let r = app.get(&user_path(&name.to_uppercase())).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);
}

#[tokio::test]
async fn emails_with_plus_signs_round_trip_in_paths() {
    let app = TestApp::spawn().await;
    let user = app.create_user("plus", "tyler+soap@example.com").await;
    for path in [
        format!("{USERS}/tyler%2Bsoap%40example.com"),
        format!("{USERS}/tyler+soap@example.com"),
        format!("{USERS}/TYLER%2BSOAP@example.com"),
    ] {
        let r = app.get(&path).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], user["id"], "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_works_under_both_prefixes_and_with_a_trailing_slash() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    let id = user["id"].as_str().unwrap();
    for path in [
        format!("/api/security/users/{id}"),
        format!("/api/security/users/{id}/"),
        format!("/api/management/security/users/{id}"),
        format!("/api/management/security/users/{id}/"),
        "/api/management/security/users/TDURDEN".to_owned(),
        "/api/management/security/users/t.durden%40fightclub.com/".to_owned(),
    ] {
        let r = app.get(&path).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["id"], user["id"], "{path}");
    }
    for path in [
        "/api/security/users/",
        "/api/management/security/users",
        "/api/management/security/users/",
    ] {
        let r = app.get(path).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 2, "{path}");
    }
}

#[tokio::test]
async fn get_accepts_the_npm_clients_content_type_on_bodiless_requests() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .send_raw(
            Method::GET,
            &user_path("tdurden"),
            Some(&app.admin.clone()),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "tdurden");
    let r = app
        .send_raw(
            Method::DELETE,
            &user_path("tdurden"),
            Some(&app.admin.clone()),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unknown_user_is_404_naming_it() {
    let app = TestApp::spawn().await;
    let r = app.get(&user_path("nobody")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "nobody"}));
    let id = uuid::Uuid::new_v4().to_string();
    let r = app.get(&user_path(&id)).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": id}));
    let r = app.get(&user_path("no body@example.com")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "no body@example.com"}));
    for (method, path) in [
        (Method::PUT, user_path("nobody")),
        (Method::PATCH, user_path("nobody")),
    ] {
        let r = app
            .send(
                method,
                &path,
                Some(&app.admin.clone()),
                Some(json!({"firstName": "X"})),
            )
            .await;
        r.expect(StatusCode::NOT_FOUND);
        assert_eq!(r.body["data"], json!({"user": "nobody"}));
    }
    let r = app.get(&format!("{}/groups", user_path("nobody"))).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "nobody"}));
}

#[tokio::test]
async fn bootstrap_admin_exists_with_email_admin_at_localhost() {
    let app = TestApp::spawn().await;
    let r = app.get(&user_path("admin")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "admin");
    assert_eq!(r.body["email"], "admin@localhost");
    assert_eq!(r.body["status"]["active"], true);
    let by_email = app.get(&user_path("admin@localhost")).await;
    by_email.expect(StatusCode::OK);
    assert_eq!(by_email.body["id"], r.body["id"]);
    let current = app.get(&user_path("@current")).await;
    current.expect(StatusCode::OK);
    assert_eq!(current.body["id"], r.body["id"]);
}

// ---------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn put_updates_the_given_profile_fields_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.clock.advance_ms(5_000);
    let r = app
        .put(
            &user_path("tdurden"),
            Some(json!({"firstName": "Tyler", "timezone": "America/New_York",
                        "custom": {"k": "v"}, "optOutOfNotifications": true})),
        )
        .await;
    r.expect(StatusCode::OK);
    let u = &r.body;
    assert_eq!(u["id"], user["id"]);
    assert_eq!(u["firstName"], "Tyler");
    assert_eq!(u["lastName"], "User", "unchanged");
    assert_eq!(u["email"], "t.durden@fightclub.com", "unchanged");
    assert_eq!(u["timezone"], "America/New_York");
    assert_eq!(u["custom"], json!({"k": "v"}));
    assert_eq!(u["optOutOfNotifications"], true);
    assert_eq!(u["created"], user["created"]);
    assert_eq!(u["modified"], format_rfc3339(app.clock.now_ms()));
    assert_ne!(u["modified"], user["modified"]);
    let got = app.get(&user_path("tdurden")).await;
    assert_eq!(&got.body, u);
    // The password still works.
    app.login("tdurden", PASSWORD).await;
}

#[tokio::test]
async fn put_with_null_clears_optional_fields() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .put(
            &user_path("tdurden"),
            Some(json!({"firstName": null, "custom": null})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], Value::Null);
    assert_eq!(r.body["lastName"], "User");
    assert_eq!(r.body["custom"], json!({}));
}

#[tokio::test]
async fn patch_with_merge_patch_content_type_updates_fields() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"lastName": "Durden", "language": "fr-FR"}),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["lastName"], "Durden");
    assert_eq!(r.body["language"], "fr-FR");
    assert_eq!(r.body["firstName"], "Test", "unchanged");
    let got = app.get(&user_path("tdurden")).await;
    assert_eq!(got.body["lastName"], "Durden");
    // Plain application/json is accepted too.
    let r = app
        .patch(&user_path("tdurden"), json!({"firstName": "Tyler"}))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "Tyler");
    assert_eq!(r.body["lastName"], "Durden");
}

#[tokio::test]
async fn patch_expiry_sets_it_and_null_clears_it() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"expiry": "2099-01-01T00:00:00Z"}),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["expiry"], "2099-01-01T00:00:00.000Z");
    let r = merge_patch(&app, &user_path("tdurden"), &json!({"expiry": null})).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["expiry"], Value::Null);
    let got = app.get(&user_path("tdurden")).await;
    assert_eq!(got.body["expiry"], Value::Null);
    // A past expiry on update is 422 as on create.
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"expiry": "2000-01-01T00:00:00Z"}),
    )
    .await;
    r.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["data"]["field"], "expiry");
    assert_eq!(
        app.get(&user_path("tdurden")).await.body["expiry"],
        Value::Null
    );
}

#[tokio::test]
async fn malformed_expiry_on_update_is_400_when_the_user_has_an_expiry() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"expiry": "2099-01-01T00:00:00Z"}),
    )
    .await
    .expect(StatusCode::OK);
    for expiry in ["soon", "", "2099-01-01"] {
        let r = merge_patch(&app, &user_path("tdurden"), &json!({ "expiry": expiry })).await;
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        app.get(&user_path("tdurden")).await.body["expiry"],
        "2099-01-01T00:00:00.000Z"
    );
}

#[tokio::test]
async fn malformed_expiry_on_update_is_400_when_the_user_has_no_expiry() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before = app.get(&user_path("tdurden")).await.body.clone();
    for expiry in ["soon", "", "2099-01-01"] {
        for method in [Method::PUT, Method::PATCH] {
            let r = app
                .send(
                    method.clone(),
                    &user_path("tdurden"),
                    Some(&app.admin.clone()),
                    Some(json!({"firstName": "Changed", "expiry": expiry})),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{method} expiry {expiry:?}: {}",
                r.text
            );
            r.expect(StatusCode::BAD_REQUEST);
        }
    }
    assert_eq!(app.get(&user_path("tdurden")).await.body, before);
}

#[tokio::test]
async fn patch_merges_custom_as_a_json_merge_patch() {
    // RFC 7396: objects merge recursively, `null` removes a member.
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"custom": {"keep": 1, "drop": 2, "nested": {"a": 1, "b": 2}}}),
    )
    .await
    .expect(StatusCode::OK);
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"custom": {"drop": null, "add": 3, "nested": {"b": null, "c": 3}}}),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(
        r.body["custom"],
        json!({"keep": 1, "add": 3, "nested": {"a": 1, "c": 3}})
    );
}

#[tokio::test]
async fn an_expired_account_shows_inactive() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let expiry = format_rfc3339(app.clock.now_ms() + 60_000);
    let r = merge_patch(&app, &user_path("tdurden"), &json!({ "expiry": expiry })).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["status"]["active"], true);
    app.clock.advance_ms(61_000);
    let r = app.get(&user_path("tdurden")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["status"]["active"], false);
    assert_eq!(r.body["status"]["suspended"], false);
}

#[tokio::test]
async fn property_names_are_case_insensitive() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .put(
            &user_path("tdurden"),
            Some(json!({"FirstName": "Tyler", "LASTNAME": "Durden",
                        "Credentials": {"PasswordChangeFrequency": 14}})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "Tyler");
    assert_eq!(r.body["lastName"], "Durden");
    assert_eq!(r.body["credentials"]["passwordChangeFrequency"], 14);
    // The public examples send both spellings in one body: the exact one wins.
    for body in [
        json!({"firstname": "lower", "firstName": "Exact"}),
        json!({"firstName": "Exact", "firstname": "lower"}),
    ] {
        let r = merge_patch(&app, &user_path("tdurden"), &body).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["firstName"], "Exact", "{body}");
    }
    // On create too.
    let r = app
        .post(
            USERS,
            json!({"UserName": "marla", "EMAIL": "marla@example.com", "firstname": "Marla"}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.body["username"], "marla");
    assert_eq!(r.body["firstName"], "Marla");
    // Keys inside custom keep their case.
    let r = merge_patch(
        &app,
        &user_path("marla"),
        &json!({"Custom": {"CamelKey": 1, "camelkey": 2}}),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["custom"], json!({"CamelKey": 1, "camelkey": 2}));
}

#[tokio::test]
async fn unknown_properties_are_ignored() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            USERS,
            json!({"username": "marla", "email": "marla@example.com", "favouriteSoap": "lye",
                   "credentials": {"shoeSize": 9}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert!(r.body.get("favouriteSoap").is_none());
}

#[tokio::test]
async fn read_only_fields_sent_back_are_ignored() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.login("tdurden", PASSWORD).await;
    let original = app.get(&user_path("tdurden")).await.body.clone();
    // The npm client sends the whole fetched object back, with edits.
    let mut body = original.clone();
    body["firstName"] = json!("Tyler");
    body["id"] = json!(uuid::Uuid::new_v4().to_string());
    body["status"] = json!({"active": false, "suspended": true, "locked": true,
                            "passwordResetRequired": true});
    body["created"] = json!("2001-01-01T00:00:00.000Z");
    body["modified"] = json!("2001-01-01T00:00:00.000Z");
    body["lastLogin"] = json!("2001-01-01T00:00:00.000Z");
    body["passwordChanged"] = json!("2001-01-01T00:00:00.000Z");
    body["failedLoginAttempts"] = json!(99);
    body["failedLoginAttemptsSinceLastSuccess"] = json!(99);
    body["successfulLoginAttempts"] = json!(99);
    body["credentials"]["provider"] = json!({"type": "apiKey", "name": "evil"});
    for method in [Method::PUT, Method::PATCH] {
        let r = app
            .send(
                method.clone(),
                &user_path("tdurden"),
                Some(&app.admin.clone()),
                Some(body.clone()),
            )
            .await;
        r.expect(StatusCode::OK);
        let mut expected = original.clone();
        expected["firstName"] = json!("Tyler");
        expected["modified"] = r.body["modified"].clone();
        assert_eq!(r.body, expected, "{method}");
    }
    // Sending the fetched object back unchanged is a no-op too.
    let fetched = app.get(&user_path("tdurden")).await.body.clone();
    let r = app.put(&user_path("tdurden"), Some(fetched.clone())).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body, fetched);
    app.login("tdurden", PASSWORD).await;
}

#[tokio::test]
async fn renaming_a_user_moves_the_identifier() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = merge_patch(&app, &user_path("tdurden"), &json!({"username": "Tyler"})).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "Tyler");
    assert_eq!(r.body["id"], user["id"]);
    let r = app.get(&user_path("tdurden")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "tdurden"}));
    let r = app.get(&user_path("tyler")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);
    // The email still finds the user, and logins use the new name.
    app.get(&user_path("t.durden@fightclub.com"))
        .await
        .expect(StatusCode::OK);
    app.login("TYLER", PASSWORD).await;
    let r = app
        .token(&[
            ("grant_type", "contensis_classic"),
            ("username", "tdurden"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The old name is free again.
    app.create_user("tdurden", "someone.else@example.com").await;
}

#[tokio::test]
async fn changing_the_email_moves_the_identifier() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .put(
            &user_path("tdurden"),
            Some(json!({"email": "tyler@paperstreet.com"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["email"], "tyler@paperstreet.com");
    app.get(&user_path("t.durden@fightclub.com"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = app.get(&user_path("Tyler@PaperStreet.com")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);
    // Changing only the case of one's own username or email is not a conflict.
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"username": "TDurden", "email": "Tyler@PaperStreet.com"}),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "TDurden");
}

#[tokio::test]
async fn renaming_into_a_taken_name_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_user("marla", "marla@example.com").await;
    let before = app.get(&user_path("marla")).await.body.clone();
    for body in [
        json!({"username": "TDURDEN"}),
        json!({"username": "t.durden@fightclub.com"}),
        json!({"email": "T.Durden@fightclub.com"}),
        json!({"email": "admin@localhost"}),
        json!({"username": "Admin"}),
        json!({"firstName": "Changed", "username": "tdurden"}),
    ] {
        let r = merge_patch(&app, &user_path("marla"), &body).await;
        r.expect(StatusCode::CONFLICT);
        let r = app.put(&user_path("marla"), Some(body.clone())).await;
        r.expect(StatusCode::CONFLICT);
    }
    assert_eq!(app.get(&user_path("marla")).await.body, before);
    // Both users still resolve by every identifier.
    for key in [
        "marla",
        "marla@example.com",
        "tdurden",
        "t.durden@fightclub.com",
    ] {
        app.get(&user_path(key)).await.expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn update_cannot_blank_username_or_email() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before = app.get(&user_path("tdurden")).await.body.clone();
    for (body, field) in [
        (json!({"username": null}), "username"),
        (json!({"username": ""}), "username"),
        (json!({"email": null}), "email"),
        (json!({"email": "not-an-email"}), "email"),
    ] {
        let r = merge_patch(&app, &user_path("tdurden"), &body).await;
        r.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["data"]["field"], field, "{body}");
    }
    assert_eq!(app.get(&user_path("tdurden")).await.body, before);
}

#[tokio::test]
async fn update_via_management_prefix_and_trailing_slash() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app
        .put(
            "/api/management/security/users/tdurden/",
            Some(json!({"firstName": "Old-Docs"})),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["firstName"], "Old-Docs");
    let r = app
        .patch(
            "/api/security/users/tdurden/",
            json!({"lastName": "Trailing"}),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["lastName"], "Trailing");
}

// ---------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before = user_count(&app).await;
    let r = app.delete(&user_path("T.Durden@FightClub.com")).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    assert_eq!(user_count(&app).await, before - 1);
    for key in [
        user["id"].as_str().unwrap(),
        "tdurden",
        "t.durden@fightclub.com",
    ] {
        let r = app.get(&user_path(key)).await;
        r.expect(StatusCode::NOT_FOUND);
        assert_eq!(r.body["data"]["user"], key);
    }
    let r = app.delete(&user_path("tdurden")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["data"], json!({"user": "tdurden"}));
    let r = app
        .delete(user_path(user["id"].as_str().unwrap()).as_str())
        .await;
    r.expect(StatusCode::NOT_FOUND);
    // Login no longer works; the name can be reused.
    let r = app
        .token(&[
            ("grant_type", "contensis_classic"),
            ("username", "tdurden"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    let again = app.create_user("TDurden", "t.durden@fightclub.com").await;
    assert_ne!(again["id"], user["id"]);
}

#[tokio::test]
async fn deleting_a_user_removes_their_memberships() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_group("Project Mayhem").await;
    app.put("/api/security/groups/Project%20Mayhem/users/tdurden", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let g = app.get("/api/security/groups/Project%20Mayhem").await;
    assert_eq!(g.body["userCount"], 1);
    app.delete(&user_path("tdurden"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let g = app.get("/api/security/groups/Project%20Mayhem").await;
    g.expect(StatusCode::OK);
    assert_eq!(g.body["userCount"], 0);
    let members = app.get("/api/security/groups/Project%20Mayhem/users").await;
    members.expect(StatusCode::OK);
    assert_eq!(members.body["totalCount"], 0);
}

#[tokio::test]
async fn the_last_system_administrator_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let r = app.delete(&user_path("admin")).await;
    r.expect(StatusCode::CONFLICT);
    app.get(&user_path("admin")).await.expect(StatusCode::OK);
    let r = app.delete(&user_path("@current")).await;
    r.expect(StatusCode::CONFLICT);
}

// ---------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn list_pages_with_default_size_25() {
    let app = TestApp::spawn().await;
    for i in 0..30 {
        make_user(&app, &format!("page-{i:02}"), "P", "Age").await;
    }
    let r = app.get(USERS).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageIndex"], 0);
    assert_eq!(r.body["pageSize"], 25);
    assert_eq!(r.body["totalCount"], 31);
    assert_eq!(r.body["pageCount"], 2);
    let names = usernames(&r.body);
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "admin", "default order is by username");
    assert_eq!(names[1], "page-00");
    assert_eq!(names[24], "page-23");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    for k in ["pageIndex", "pageSize", "totalCount", "pageCount", "items"] {
        assert!(r.body.get(k).is_some(), "{k} in {keys:?}");
    }
    let r = app.get(&format!("{USERS}?pageIndex=1")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageIndex"], 1);
    assert_eq!(
        usernames(&r.body),
        (24..30).map(|i| format!("page-{i:02}")).collect::<Vec<_>>()
    );
    let r = app.get(&format!("{USERS}?pageIndex=2&pageSize=10")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageCount"], 4);
    assert_eq!(r.body["pageSize"], 10);
    assert_eq!(usernames(&r.body).len(), 10);
    assert_eq!(usernames(&r.body)[0], "page-19");
    // Items are whole users.
    let first = &r.body["items"][0];
    for k in ["id", "email", "status", "credentials", "created"] {
        assert!(first.get(k).is_some(), "{k}");
    }
}

#[tokio::test]
async fn page_size_bounds_and_pages_past_the_end() {
    let app = TestApp::spawn().await;
    make_user(&app, "one", "O", "Ne").await;
    let r = app.get(&format!("{USERS}?pageSize=1000")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageSize"], 1000);
    assert_eq!(r.body["totalCount"], 2);
    assert_eq!(r.body["pageCount"], 1);
    for q in [
        "pageSize=1001",
        "pageSize=0",
        "pageSize=-5",
        "pageSize=ten",
        "pageIndex=-1",
        "pageIndex=x",
        "pageIndex=1.5",
        "pageSize=99999999999999999999",
    ] {
        let r = app.get(&format!("{USERS}?{q}")).await;
        r.expect(StatusCode::BAD_REQUEST);
    }
    for q in [
        "pageIndex=1",
        "pageIndex=7&pageSize=3",
        "pageIndex=4294967295&pageSize=1000",
    ] {
        let r = app.get(&format!("{USERS}?{q}")).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["items"], json!([]), "{q}");
        assert_eq!(r.body["totalCount"], 2, "{q}");
    }
}

#[tokio::test]
async fn query_parameter_names_are_case_insensitive() {
    let app = TestApp::spawn().await;
    for name in ["a1", "a2", "a3"] {
        make_user(&app, name, "X", "Y").await;
    }
    let r = app.get(&format!("{USERS}?PAGESIZE=2&PageIndex=1")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["pageSize"], 2);
    assert_eq!(r.body["pageIndex"], 1);
    assert_eq!(usernames(&r.body), vec!["a3", "admin"]);
    let r = app.get(&format!("{USERS}?Q=A2")).await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), vec!["a2"]);
    let r = app
        .get(&format!("{USERS}?ORDER=-username&pagesize=1"))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), vec!["admin"]);
    let r = app.get(&format!("{USERS}?PageSize=1001")).await;
    r.expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn q_is_a_case_insensitive_contains_over_names_and_email() {
    let app = TestApp::spawn().await;
    for (username, email, first, last) in [
        ("qa-one", "one@alpha.test", "Marla", "Singer"),
        ("qb-two", "two@beta.test", "Robert", "Paulson"),
        ("qc-three", "three@gamma.test", "Tyler", "Durden"),
    ] {
        app.post(
            USERS,
            json!({"username": username, "email": email, "firstName": first, "lastName": last}),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    for (q, expected) in [
        ("ALPHA", vec!["qa-one"]),
        ("paul", vec!["qb-two"]),
        ("tYL", vec!["qc-three"]),
        ("QB-", vec!["qb-two"]),
        ("ing", vec!["qa-one"]),
        (".test", vec!["qa-one", "qb-two", "qc-three"]),
        ("nomatch", vec![]),
        ("%", vec![]),
        ("_", vec![]),
        ("q%-", vec![]),
    ] {
        let r = app.get(&format!("{USERS}?q={}", enc(q))).await;
        r.expect(StatusCode::OK);
        assert_eq!(usernames(&r.body), expected, "q={q}");
        assert_eq!(
            r.body["totalCount"],
            json!(expected.len()),
            "q={q} totalCount"
        );
    }
    let r = app.get(&format!("{USERS}?q=nomatch")).await;
    assert_eq!(r.body["pageCount"], 0);
    // An empty q is no filter.
    let r = app.get(&format!("{USERS}?q=")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 4);
}

#[tokio::test]
async fn q_is_case_insensitive_beyond_ascii() {
    let app = TestApp::spawn().await;
    app.post(
        USERS,
        json!({"username": "emile", "email": "emile@example.com", "firstName": "Émile",
               "lastName": "Öztürk"}),
    )
    .await
    .expect(StatusCode::CREATED);
    for q in ["Émile", "émile", "ÉMILE", "öztürk", "ÖZTÜRK"] {
        let r = app.get(&format!("{USERS}?q={}", enc(q))).await;
        r.expect(StatusCode::OK);
        assert_eq!(usernames(&r.body), vec!["emile"], "q={q}");
    }
}

#[tokio::test]
async fn non_ascii_names_are_unique_and_found_case_insensitively() {
    let app = TestApp::spawn().await;
    let user = make_user(&app, "Émile", "E", "Z").await;
    let r = app.get(&user_path("émile")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);
    let r = app
        .post(
            USERS,
            json!({"username": "ÉMILE", "email": "other@example.com"}),
        )
        .await;
    r.expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn order_by_fields_ascending_and_descending() {
    let app = TestApp::spawn().await;
    make_user(&app, "ord-b", "Bob", "Alpha").await;
    app.clock.advance_ms(1_000);
    make_user(&app, "ord-c", "Cid", "Beta").await;
    app.clock.advance_ms(1_000);
    make_user(&app, "ord-a", "Abe", "Alpha").await;
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("{USERS}?q=ord-&{q}")).await;
            r.expect(StatusCode::OK);
            usernames(&r.body)
        }
    };
    assert_eq!(list("").await, vec!["ord-a", "ord-b", "ord-c"]);
    assert_eq!(
        list("order=-username").await,
        vec!["ord-c", "ord-b", "ord-a"]
    );
    assert_eq!(
        list("order=username").await,
        vec!["ord-a", "ord-b", "ord-c"]
    );
    assert_eq!(
        list("order=lastName,-created").await,
        vec!["ord-a", "ord-b", "ord-c"]
    );
    assert_eq!(
        list("order=lastName,created").await,
        vec!["ord-b", "ord-a", "ord-c"]
    );
    assert_eq!(
        list("order=-lastName,created").await,
        vec!["ord-c", "ord-b", "ord-a"]
    );
    assert_eq!(
        list("order=-created").await,
        vec!["ord-a", "ord-c", "ord-b"]
    );
    assert_eq!(
        list("order=firstName").await,
        vec!["ord-a", "ord-b", "ord-c"]
    );
    assert_eq!(
        list("order=LASTNAME,-CREATED").await,
        vec!["ord-a", "ord-b", "ord-c"]
    );
}

#[tokio::test]
async fn ordering_by_an_unknown_field_is_400() {
    let app = TestApp::spawn().await;
    for order in [
        "password",
        "passwordHash",
        "username;DROP TABLE users",
        "lastName,nope",
        "-",
        "status.suspended.x",
    ] {
        let r = app.get(&format!("{USERS}?order={}", enc(order))).await;
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(user_count(&app).await, 1);
}

// ---------------------------------------------------------------------------------------
// The user's groups
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_users_groups_lists_direct_memberships() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_user("marla", "marla@example.com").await;
    for g in ["Project Mayhem", "Fight Club", "Paper Street Soap Company"] {
        app.create_group(g).await;
    }
    for g in ["Project Mayhem", "Paper Street Soap Company"] {
        app.put(
            &format!("/api/security/groups/{}/users/tdurden", enc(g)),
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    }
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for key in [
        "tdurden".to_owned(),
        "T.Durden@FightClub.com".to_owned(),
        user["id"].as_str().unwrap().to_owned(),
    ] {
        let r = app.get(&format!("{}/groups", user_path(&key))).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 2, "{key}");
        assert_eq!(r.body["pageIndex"], 0);
        assert_eq!(r.body["pageSize"], 25);
        assert_eq!(
            names(&r.body),
            vec!["Paper Street Soap Company", "Project Mayhem"],
            "{key}"
        );
        assert_eq!(r.body["items"][0]["type"], "contensis");
    }
    let r = app
        .get("/api/management/security/users/marla/groups/")
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["totalCount"], 0);
    let r = app
        .get(&format!("{}/groups?order=-name", user_path("tdurden")))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(
        names(&r.body),
        vec!["Project Mayhem", "Paper Street Soap Company"]
    );
    let r = app
        .get(&format!("{}/groups?order=nope", user_path("tdurden")))
        .await;
    r.expect(StatusCode::BAD_REQUEST);
    let r = app.get(&format!("{}/groups", user_path("admin"))).await;
    r.expect(StatusCode::OK);
    assert_eq!(names(&r.body), vec!["System Administrators"]);
    assert_eq!(r.body["items"][0]["type"], "sys");
}

#[tokio::test]
async fn head_membership_checks_any_of_the_listed_groups() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    app.create_group("Project Mayhem").await;
    app.create_group("Fight Club").await;
    app.put("/api/security/groups/Project%20Mayhem/users/tdurden", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let base = user_path("tdurden");
    let r = app.head(&format!("{base}/groups/Project%20Mayhem")).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    app.head(&format!("{base}/groups/Fight%20Club"))
        .await
        .expect(StatusCode::NOT_FOUND);
    app.head(&format!("{base}/groups/Fight%20Club,Project%20Mayhem"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.head(&format!("{base}/groups/Nope,PROJECT%20MAYHEM"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = app.head(&format!("{base}/groups/Nope")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert!(r.text.is_empty(), "HEAD has no body");
}

// ---------------------------------------------------------------------------------------
// Bad input never 500s and never changes anything
// ---------------------------------------------------------------------------------------

fn raw_bad_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("truncated object", b"{".to_vec()),
        ("trailing comma", br#"{"email": "a@b.com",}"#.to_vec()),
        ("not json", b"username=marla".to_vec()),
        ("single quotes", b"{'email': 'a@b.com'}".to_vec()),
        (
            "invalid utf-8",
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        ),
        (
            "two objects",
            br#"{"email": "a@b.com"} {"email": "c@d.com"}"#.to_vec(),
        ),
        (
            "array",
            br#"[{"username": "x", "email": "x@example.com"}]"#.to_vec(),
        ),
        ("string", br#""x@example.com""#.to_vec()),
        ("number", b"5".to_vec()),
        ("null", b"null".to_vec()),
        ("empty", Vec::new()),
        ("whitespace", b"  \n ".to_vec()),
        ("deep nesting", {
            let mut v =
                br#"{"username": "deep", "email": "deep@example.com", "custom": {"a": "#.to_vec();
            v.extend(std::iter::repeat_n(b'[', 5000));
            v.extend(std::iter::repeat_n(b']', 5000));
            v.extend(b"}}");
            v
        }),
    ]
}

fn wrong_type_bodies() -> Vec<Value> {
    vec![
        json!({"username": "x", "email": 5}),
        json!({"username": 5, "email": "x@example.com"}),
        json!({"username": "x", "email": "x@example.com", "custom": "x"}),
        json!({"username": "x", "email": "x@example.com", "custom": [1, 2]}),
        json!({"username": "x", "email": "x@example.com", "optOutOfNotifications": "yes"}),
        json!({"username": "x", "email": "x@example.com", "firstName": ["Tyler"]}),
        json!({"username": "x", "email": "x@example.com", "lastName": {"a": 1}}),
        json!({"username": "x", "email": "x@example.com", "expiry": 4_102_444_800_000_i64}),
        json!({"username": "x", "email": "x@example.com", "credentials": "Sturdy-Pass-42"}),
        json!({"username": "x", "email": "x@example.com", "credentials": {"password": 12345678}}),
        json!({"username": "x", "email": "x@example.com",
               "credentials": {"passwordChangeFrequency": "often"}}),
        json!({"username": "x", "email": "x@example.com",
               "credentials": {"passwordChangeFrequency": 1.5}}),
        json!({"username": "x", "email": "x@example.com",
               "credentials": {"passwordChangeFrequency": 1e30}}),
        json!({"username": "x", "email": "x@example.com", "timezone": true}),
    ]
}

#[tokio::test]
async fn malformed_create_bodies_are_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for (why, body) in raw_bad_bodies() {
        let r = app
            .send_raw(
                Method::POST,
                USERS,
                Some(&app.admin.clone()),
                "application/json",
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.text);
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn json_arrays_are_not_accepted_as_user_bodies() {
    // Spec §1: a body of the wrong type is a 400. An array must not be read as the
    // struct's fields in declaration order (username, email, ...).
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before_count = user_count(&app).await;
    let before = app.get(&user_path("tdurden")).await.body.clone();
    let mut wrong = Vec::new();
    for body in [json!([]), json!(["positional", "positional@example.com"])] {
        let r = app.post(USERS, body.clone()).await;
        if r.status != StatusCode::BAD_REQUEST {
            wrong.push(format!("POST {body} -> {}: {}", r.status, r.text));
        }
    }
    for body in [
        json!([]),
        json!(["renamed"]),
        json!(["renamed", "renamed@example.com"]),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let r = app
                .send(
                    method.clone(),
                    &user_path("tdurden"),
                    Some(&app.admin.clone()),
                    Some(body.clone()),
                )
                .await;
            if r.status != StatusCode::BAD_REQUEST {
                wrong.push(format!(
                    "{method} {body} -> {}: username now {}",
                    r.status, r.body["username"]
                ));
                // Undo, so the next body starts from the same user.
                app.put(
                    &user_path(r.body["id"].as_str().unwrap_or("tdurden")),
                    Some(json!({"username": "tdurden", "email": "t.durden@fightclub.com"})),
                )
                .await;
            }
        }
    }
    let created = user_count(&app).await - before_count;
    let after = app.get(&user_path("tdurden")).await.body.clone();
    assert!(
        wrong.is_empty() && created == 0,
        "arrays accepted as bodies ({created} users created):\n{}",
        wrong.join("\n")
    );
    assert_eq!(after, before);
}

#[tokio::test]
async fn wrongly_typed_create_bodies_are_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    for body in wrong_type_bodies() {
        let r = app.post(USERS, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        r.expect(StatusCode::BAD_REQUEST);
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn bad_update_bodies_are_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before = app.get(&user_path("tdurden")).await.body.clone();
    for method in [Method::PUT, Method::PATCH] {
        for content_type in ["application/json", MERGE_PATCH] {
            for (why, body) in raw_bad_bodies() {
                let r = app
                    .send_raw(
                        method.clone(),
                        &user_path("tdurden"),
                        Some(&app.admin.clone()),
                        content_type,
                        body,
                    )
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {content_type} {why}: {}",
                    r.text
                );
                r.expect(StatusCode::BAD_REQUEST);
            }
            for body in wrong_type_bodies() {
                let r = app
                    .send_raw(
                        method.clone(),
                        &user_path("tdurden"),
                        Some(&app.admin.clone()),
                        content_type,
                        body.to_string().into_bytes(),
                    )
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {body}: {}",
                    r.text
                );
                r.expect(StatusCode::BAD_REQUEST);
            }
        }
    }
    assert_eq!(app.get(&user_path("tdurden")).await.body, before);
    app.login("tdurden", PASSWORD).await;
}

#[tokio::test]
async fn bodies_over_1_mib_are_413_in_the_error_envelope() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let before_count = user_count(&app).await;
    let before = app.get(&user_path("tdurden")).await.body.clone();
    let blob = "z".repeat(1024 * 1024 + 10);
    let body = json!({"username": "big", "email": "big@example.com", "custom": {"blob": blob}});
    let r = app.post(USERS, body.clone()).await;
    r.expect(StatusCode::PAYLOAD_TOO_LARGE);
    for method in [Method::PUT, Method::PATCH] {
        let r = app
            .send(
                method,
                &user_path("tdurden"),
                Some(&app.admin.clone()),
                Some(json!({"firstName": "Big", "custom": {"blob": blob}})),
            )
            .await;
        r.expect(StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(user_count(&app).await, before_count);
    assert_eq!(app.get(&user_path("tdurden")).await.body, before);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_errors_in_the_envelope() {
    let app = TestApp::spawn().await;
    app.create_user("tdurden", "t.durden@fightclub.com").await;
    let r = app.get("/api/security/nothing-here").await;
    r.expect(StatusCode::NOT_FOUND);
    let r = app
        .send(
            Method::POST,
            &user_path("tdurden"),
            Some(&app.admin.clone()),
            Some(json!({})),
        )
        .await;
    assert!(
        r.status.is_client_error(),
        "POST on a user is a 4xx: {}",
        r.status
    );
}

// ---------------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn users_survive_a_restart() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token("tdurden").await;
    app.create_group("Project Mayhem").await;
    app.put("/api/security/groups/Project%20Mayhem/users/tdurden", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let r = merge_patch(
        &app,
        &user_path("tdurden"),
        &json!({"firstName": "Tyler", "custom": {"k": [1, 2]}, "expiry": "2099-01-01T00:00:00Z"}),
    )
    .await;
    r.expect(StatusCode::OK);
    let before = app.get(&user_path("tdurden")).await.body.clone();
    let admin_token = app.admin.clone();

    let (dir, url, clock) = app.stop().await;
    let app = TestApp::spawn_on(dir, url, clock, |_| {}).await;

    let r = app.get(&user_path("tdurden")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body, before);
    assert_eq!(r.body["id"], user["id"]);
    let r = app.get(&format!("{}/groups", user_path("tdurden"))).await;
    assert_eq!(r.body["items"][0]["name"], "Project Mayhem");
    // Still exactly one admin (bootstrap did not run again) and the password still works.
    let r = app.get(&format!("{USERS}?q=admin")).await;
    assert_eq!(r.body["totalCount"], 1);
    app.login("tdurden", PASSWORD).await;
    // Tokens issued before the restart are still valid (the keys live in the database).
    let r = app
        .send(Method::GET, &user_path("@current"), Some(&token), None)
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "tdurden");
    let r = app.send(Method::GET, USERS, Some(&admin_token), None).await;
    r.expect(StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Concurrency and odd identifiers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_creates_of_one_name_give_one_201_and_the_rest_409() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    let results = join_all(
        (0..12)
            .map(|i| {
                let app = &app;
                async move {
                    app.post(
                        USERS,
                        json!({"username": if i % 2 == 0 { "Racer".to_owned() } else { "RACER".to_owned() },
                               "email": format!("racer{i}@example.com")}),
                    )
                    .await
                }
            })
            .collect(),
    )
    .await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    let others: Vec<String> = results
        .iter()
        .filter(|r| r.status != StatusCode::CREATED && r.status != StatusCode::CONFLICT)
        .map(|r| format!("{}: {}", r.status, r.text))
        .collect();
    assert!(others.is_empty(), "unexpected: {others:?}");
    assert_eq!(created, 1);
    assert_eq!(conflicts, 11);
    assert_eq!(user_count(&app).await, before + 1);
}

#[tokio::test]
async fn concurrent_creates_of_different_users_all_succeed() {
    let app = TestApp::spawn().await;
    let before = user_count(&app).await;
    let results = join_all(
        (0..20)
            .map(|i| {
                let app = &app;
                async move {
                    app.post(
                        USERS,
                        json!({"username": format!("par-{i:02}"), "email": format!("par{i}@example.com")}),
                    )
                    .await
                }
            })
            .collect(),
    )
    .await;
    for r in &results {
        r.expect(StatusCode::CREATED);
    }
    assert_eq!(user_count(&app).await, before + 20);
}

/// Runs futures concurrently (all polled from the calling task, so they may borrow the
/// app) and returns their outputs in order.
pub(crate) async fn join_all<T, F: std::future::Future<Output = T>>(futs: Vec<F>) -> Vec<T> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => *slot = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[tokio::test]
async fn malformed_identifiers_are_4xx_not_500() {
    let app = TestApp::spawn().await;
    for path in [
        format!("{USERS}/%FF%FE"),
        format!("{USERS}/%FF/groups"),
        format!("{USERS}/%"),
        format!("{USERS}/{}", "x".repeat(5000)),
        format!("{USERS}/%00"),
    ] {
        let r = app.get(&path).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND,
            "{path}: {} {}",
            r.status,
            r.text
        );
        r.expect(r.status);
    }
    let r = app.get(&format!("{USERS}/%FF%FE")).await;
    r.expect(StatusCode::BAD_REQUEST);
    // `q` is bounded like every string (255 characters): longer is a 400, not a scan.
    let r = app.get(&format!("{USERS}?q={}", "q".repeat(10_000))).await;
    r.expect(StatusCode::BAD_REQUEST);
    let r = app.get(&format!("{USERS}?q={}", "q".repeat(255))).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["items"], json!([]));
}
