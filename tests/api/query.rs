//! Querying (spec §1 paged lists and ordering, §7): ZenQL on every list endpoint, the
//! `q` contains search, `order` and paging, the JSON search over GET and POST, error
//! positions and paths, injection attempts and authorization. Every test builds a small
//! fixture with distinctive names, custom properties and creation times, and asserts
//! exactly which users or groups come back.

use std::collections::BTreeSet;

use gatehouse::clock::{Clock as _, format_rfc3339};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const USERS: &str = "/api/security/users";
const SEARCH: &str = "/api/security/users/search";
const GROUPS: &str = "/api/security/groups";
const DAY_MS: i64 = 86_400_000;

/// A server whose tokens outlive the clock jumps of the fixtures (days).
async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.token_ttl_secs = 60 * 86_400).await
}

fn user_path(key: &str) -> String {
    format!("{USERS}/{}", enc(key))
}

fn group_path(key: &str) -> String {
    format!("{GROUPS}/{}", enc(key))
}

/// Creates a user (as admin, without a password, so fast) from a JSON body; `query` is
/// appended to the path (e.g. `?suspended=true`). Returns the created user.
async fn add_user(app: &TestApp, query: &str, body: Value) -> Value {
    let r = app.post(&format!("{USERS}{query}"), body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "create {body}: {}", r.text);
    r.body
}

/// Creates a group from a JSON body.
async fn add_group(app: &TestApp, body: Value) -> Value {
    let r = app.post(GROUPS, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "create {body}: {}", r.text);
    r.body
}

/// GETs as the admin and asserts 200.
async fn get_ok(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
    r.body
}

/// One property of every item of a page, in order.
fn column(body: &Value, key: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {body}"))
        .iter()
        .map(|u| {
            u[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {u}"))
                .to_owned()
        })
        .collect()
}

fn usernames(body: &Value) -> Vec<String> {
    column(body, "username")
}

/// `path` plus one more query parameter, choosing `?` or `&`.
fn with_param(path: &str, param: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{param}")
}

/// The usernames (or group names, `key = "name"`) a ZenQL query returns on a list path.
async fn zen_on(app: &TestApp, path: &str, key: &str, zenql: &str) -> Vec<String> {
    let url = with_param(path, &format!("zenql={}&pageSize=1000", enc(zenql)));
    let body = get_ok(app, &url).await;
    let items = column(&body, key);
    assert_eq!(
        body["totalCount"].as_u64(),
        Some(items.len() as u64),
        "totalCount of {zenql}: {body}"
    );
    items
}

/// The usernames `GET /users?zenql=` returns (default order: username).
async fn zen(app: &TestApp, zenql: &str) -> Vec<String> {
    zen_on(app, USERS, "username", zenql).await
}

/// Asserts that a ZenQL query on `/users` returns exactly `expected`, in username order.
#[track_caller]
fn same(got: Vec<String>, expected: &[&str], what: &str) {
    assert_eq!(got, expected, "{what}");
}

/// Asserts a 400 in the error envelope and returns its body.
#[track_caller]
fn bad_request(r: &Resp) -> Value {
    r.expect(StatusCode::BAD_REQUEST);
    r.body.clone()
}

/// The number of users the plain list reports.
async fn user_count(app: &TestApp) -> i64 {
    get_ok(app, &format!("{USERS}?pageSize=1")).await["totalCount"]
        .as_i64()
        .expect("totalCount")
}

/// The standard fixture: seven users over three creation days, with custom properties.
///
/// | username | first  | last    | custom                          | created | other |
/// |----------|--------|---------|---------------------------------|---------|-------|
/// | admin    | null   | null    | {}                              | T0      | bootstrap admin, logged in |
/// | tdurden  | Tyler  | Durden  | dept soap, age 35, member true  | T0      | email @paper.example |
/// | msinger  | Marla  | Singer  | dept Support, age 29, member false | T0   | |
/// | rpaulson | Robert | Paulson | dept SOAP, age 48               | T0+3d   | email @paper.example |
/// | aface    | Angel  | Face    | age "30" (a string)             | T0+3d   | expiry in a year |
/// | anon     | null   | Nobody  | dept null                       | T0+6d   | |
/// | lou      | Lou    | Boss    | {}                              | T0+6d   | suspended |
///
/// The clock is left at T0+6d.
struct Fixture {
    /// The UTC dates (`YYYY-MM-DD`) of T0, T0+3d and T0+6d.
    d0: String,
    d3: String,
    d6: String,
}

const ALL: [&str; 7] = [
    "admin", "aface", "anon", "lou", "msinger", "rpaulson", "tdurden",
];

async fn seed(app: &TestApp) -> Fixture {
    add_user(
        app,
        "",
        json!({"username": "tdurden", "email": "tyler@paper.example", "firstName": "Tyler",
               "lastName": "Durden", "language": "en-GB", "timezone": "Europe/London",
               "custom": {"dept": "soap", "age": 35, "member": true}}),
    )
    .await;
    add_user(
        app,
        "",
        json!({"username": "msinger", "email": "marla@meals.example", "firstName": "Marla",
               "lastName": "Singer", "custom": {"dept": "Support", "age": 29, "member": false}}),
    )
    .await;
    app.clock.advance_ms(3 * DAY_MS);
    add_user(
        app,
        "",
        json!({"username": "rpaulson", "email": "bob@paper.example", "firstName": "Robert",
               "lastName": "Paulson", "custom": {"dept": "SOAP", "age": 48}}),
    )
    .await;
    let expiry = format_rfc3339(app.clock.now_ms() + 365 * DAY_MS);
    add_user(
        app,
        "",
        json!({"username": "aface", "email": "angel@face.example", "firstName": "Angel",
               "lastName": "Face", "expiry": expiry, "custom": {"age": "30"}}),
    )
    .await;
    app.clock.advance_ms(3 * DAY_MS);
    add_user(
        app,
        "",
        json!({"username": "anon", "email": "anon@void.example", "lastName": "Nobody",
               "custom": {"dept": null}}),
    )
    .await;
    let lou = add_user(
        app,
        "?suspended=true",
        json!({"username": "lou", "email": "lou@bar.example", "firstName": "Lou",
               "lastName": "Boss"}),
    )
    .await;
    assert_eq!(lou["status"]["suspended"], true);
    let day = |u: Value| u["created"].as_str().expect("created")[..10].to_owned();
    Fixture {
        d0: day(get_ok(app, &user_path("admin")).await),
        d3: day(get_ok(app, &user_path("rpaulson")).await),
        d6: day(get_ok(app, &user_path("anon")).await),
    }
}

// ---------------------------------------------------------------------------------------
// ZenQL on /users

#[tokio::test]
async fn zenql_equality_inequality_and_case_insensitivity() {
    let app = spawn().await;
    seed(&app).await;
    same(zen(&app, "firstName = tyler").await, &["tdurden"], "=");
    same(
        zen(&app, "FIRSTNAME = TYLER").await,
        &["tdurden"],
        "field and value case",
    );
    same(
        zen(&app, "firstname=Tyler").await,
        &["tdurden"],
        "no spaces",
    );
    same(
        zen(&app, "lastName = 'SINGER'").await,
        &["msinger"],
        "quoted",
    );
    same(
        zen(&app, "email = \"Bob@Paper.Example\"").await,
        &["rpaulson"],
        "email",
    );
    same(
        zen(&app, "firstName = tyl").await,
        &[] as &[&str],
        "= is exact",
    );
    // Two-valued logic: rows whose firstName is null match `!=`.
    same(
        zen(&app, "firstName != tyler").await,
        &["admin", "aface", "anon", "lou", "msinger", "rpaulson"],
        "!=",
    );
    same(
        zen(&app, "language = EN-gb").await,
        &["tdurden"],
        "language",
    );
    same(
        zen(&app, "timezone = 'europe/london'").await,
        &["tdurden"],
        "timezone",
    );
    // Every spelling of the parameter name.
    for param in ["zenql", "zenQL", "ZENQL", "ZenQl"] {
        let body = get_ok(
            &app,
            &format!("{USERS}?{param}={}", enc("firstName = marla")),
        )
        .await;
        assert_eq!(usernames(&body), ["msinger"], "{param}");
        assert_eq!(body["totalCount"], 1, "{param}");
    }
    // Blank zenql means no filter.
    let body = get_ok(&app, &format!("{USERS}?zenql=%20%20")).await;
    assert_eq!(usernames(&body), ALL);
}

#[tokio::test]
async fn zenql_contains_starts_ends_and_their_negations() {
    let app = spawn().await;
    seed(&app).await;
    same(zen(&app, "lastName ~ AUL").await, &["rpaulson"], "~");
    same(
        zen(&app, "email ~ paper").await,
        &["rpaulson", "tdurden"],
        "~ email",
    );
    same(
        zen(&app, "email !~ paper").await,
        &["admin", "aface", "anon", "lou", "msinger"],
        "!~",
    );
    // A null firstName does not contain anything, so !~ matches it.
    same(
        zen(&app, "firstName !~ r").await,
        &["admin", "aface", "anon", "lou"],
        "!~ with nulls",
    );
    same(
        zen(&app, "username startsWith a").await,
        &["admin", "aface", "anon"],
        "startsWith",
    );
    same(
        zen(&app, "username STARTSWITH 'AD'").await,
        &["admin"],
        "startsWith keyword case",
    );
    same(
        zen(&app, "username not startsWith a").await,
        &["lou", "msinger", "rpaulson", "tdurden"],
        "not startsWith",
    );
    same(
        zen(&app, "email endsWith \"@PAPER.example\"").await,
        &["rpaulson", "tdurden"],
        "endsWith",
    );
    same(
        zen(&app, "email not endsWith .example").await,
        &["admin"],
        "not endsWith",
    );
    same(
        zen(&app, "lastName endsWith er").await,
        &["msinger"],
        "endsWith is a suffix",
    );
}

#[tokio::test]
async fn zenql_ordering_comparisons_on_text() {
    let app = spawn().await;
    seed(&app).await;
    same(
        zen(&app, "username > msinger").await,
        &["rpaulson", "tdurden"],
        ">",
    );
    same(
        zen(&app, "username >= MSINGER").await,
        &["msinger", "rpaulson", "tdurden"],
        ">= (case-insensitive)",
    );
    same(zen(&app, "username < anon").await, &["admin", "aface"], "<");
    same(
        zen(&app, "username <= anon").await,
        &["admin", "aface", "anon"],
        "<=",
    );
    same(
        zen(&app, "username between(b, n)").await,
        &["lou", "msinger"],
        "between",
    );
    same(
        zen(&app, "username between (lou, rpaulson)").await,
        &["lou", "msinger", "rpaulson"],
        "between is inclusive",
    );
    same(
        zen(&app, "username not between(b, n)").await,
        &["admin", "aface", "anon", "rpaulson", "tdurden"],
        "not between",
    );
    // Null never compares.
    same(
        zen(&app, "firstName < b").await,
        &["aface"],
        "< skips null first names",
    );
}

#[tokio::test]
async fn zenql_in_not_in_exists_and_null() {
    let app = spawn().await;
    seed(&app).await;
    same(
        zen(&app, "username in (tdurden, 'msinger', \"LOU\")").await,
        &["lou", "msinger", "tdurden"],
        "in",
    );
    same(
        zen(&app, "username IN(nobody)").await,
        &[] as &[&str],
        "in, no match",
    );
    same(
        zen(&app, "username not in (admin, anon)").await,
        &["aface", "lou", "msinger", "rpaulson", "tdurden"],
        "not in",
    );
    same(
        zen(&app, "firstName in (tyler, null)").await,
        &["admin", "anon", "tdurden"],
        "in with null",
    );
    same(
        zen(&app, "firstName not in (tyler, null)").await,
        &["aface", "lou", "msinger", "rpaulson"],
        "not in with null",
    );
    same(
        zen(&app, "firstName exists").await,
        &["aface", "lou", "msinger", "rpaulson", "tdurden"],
        "exists",
    );
    same(
        zen(&app, "firstName exists true").await,
        &["aface", "lou", "msinger", "rpaulson", "tdurden"],
        "exists true",
    );
    same(
        zen(&app, "firstName exists false").await,
        &["admin", "anon"],
        "exists false",
    );
    same(
        zen(&app, "firstName not exists").await,
        &["admin", "anon"],
        "not exists",
    );
    same(
        zen(&app, "firstName = null").await,
        &["admin", "anon"],
        "= null",
    );
    same(
        zen(&app, "firstName = NULL").await,
        &["admin", "anon"],
        "= NULL",
    );
    same(
        zen(&app, "firstName != null").await,
        &["aface", "lou", "msinger", "rpaulson", "tdurden"],
        "!= null",
    );
    // Quoted, null is text.
    same(
        zen(&app, "firstName = 'null'").await,
        &[] as &[&str],
        "'null'",
    );
    same(
        zen(&app, "expiry exists").await,
        &["aface"],
        "expiry exists",
    );
    same(
        zen(&app, "expiry > now()").await,
        &["aface"],
        "expiry in the future",
    );
    same(
        zen(&app, "lastLogin exists").await,
        &["admin"],
        "only the admin has logged in",
    );
}

#[tokio::test]
async fn zenql_and_or_not_precedence_and_parentheses() {
    let app = spawn().await;
    seed(&app).await;
    // `and` binds tighter than `or`: tyler OR (marla AND durden).
    same(
        zen(
            &app,
            "firstName = tyler or firstName = marla and lastName = durden",
        )
        .await,
        &["tdurden"],
        "and before or",
    );
    same(
        zen(
            &app,
            "lastName = durden and firstName = marla or firstName = tyler",
        )
        .await,
        &["tdurden"],
        "and before or, other side",
    );
    same(
        zen(
            &app,
            "(firstName = tyler or firstName = marla) and lastName = singer",
        )
        .await,
        &["msinger"],
        "parentheses",
    );
    same(
        zen(&app, "firstName = tyler OR firstName = marla").await,
        &["msinger", "tdurden"],
        "OR keyword case",
    );
    same(
        zen(&app, "username startsWith a AND lastName exists").await,
        &["aface", "anon"],
        "AND keyword case",
    );
    same(
        zen(&app, "not (firstName = tyler or firstName = marla)").await,
        &["admin", "aface", "anon", "lou", "rpaulson"],
        "not over a group",
    );
    // `not` applies to the next clause only.
    same(
        zen(&app, "not firstName = tyler and lastName = singer").await,
        &["msinger"],
        "not binds to one clause",
    );
    same(
        zen(&app, "NOT NOT firstName = tyler").await,
        &["tdurden"],
        "double not",
    );
    same(
        zen(&app, "((username = lou) or ((username = anon)))").await,
        &["anon", "lou"],
        "nested parentheses",
    );
    same(
        zen(
            &app,
            "(email ~ paper or custom.dept = support) and not (custom.age > 40)",
        )
        .await,
        &["msinger", "tdurden"],
        "mixed",
    );
}

#[tokio::test]
async fn zenql_booleans_and_custom_properties() {
    let app = spawn().await;
    seed(&app).await;
    same(
        zen(&app, "status.suspended = true").await,
        &["lou"],
        "suspended",
    );
    same(
        zen(&app, "STATUS.SUSPENDED = TRUE").await,
        &["lou"],
        "suspended, any case",
    );
    same(
        zen(&app, "status.suspended = false").await,
        &["admin", "aface", "anon", "msinger", "rpaulson", "tdurden"],
        "not suspended",
    );
    same(
        zen(&app, "status.suspended != true").await,
        &["admin", "aface", "anon", "msinger", "rpaulson", "tdurden"],
        "!= true",
    );
    same(
        zen(&app, "status.locked = true").await,
        &[] as &[&str],
        "locked",
    );
    assert_eq!(
        zen(&app, "status.passwordResetRequired = false").await,
        ALL,
        "passwordResetRequired"
    );
    // Text custom values compare case-insensitively, and only with strings.
    same(
        zen(&app, "custom.dept = \"soap\"").await,
        &["rpaulson", "tdurden"],
        "custom text",
    );
    same(
        zen(&app, "CUSTOM.dept = Support").await,
        &["msinger"],
        "custom prefix case",
    );
    same(
        zen(&app, "custom.dept ~ OA").await,
        &["rpaulson", "tdurden"],
        "custom ~",
    );
    same(
        zen(&app, "custom.dept startsWith sup").await,
        &["msinger"],
        "custom startsWith",
    );
    // Numbers compare numerically with numbers only (aface's age is the string "30").
    same(
        zen(&app, "custom.age > 30").await,
        &["rpaulson", "tdurden"],
        "custom >",
    );
    same(
        zen(&app, "custom.age >= 48").await,
        &["rpaulson"],
        "custom >=",
    );
    same(zen(&app, "custom.age < 35").await, &["msinger"], "custom <");
    same(
        zen(&app, "custom.age <= 35").await,
        &["msinger", "tdurden"],
        "custom <=",
    );
    same(
        zen(&app, "custom.age = 35").await,
        &["tdurden"],
        "custom = number",
    );
    same(
        zen(&app, "custom.age = 35.0").await,
        &["tdurden"],
        "35.0 = 35",
    );
    same(
        zen(&app, "custom.age = 30").await,
        &[] as &[&str],
        "number vs string",
    );
    same(
        zen(&app, "custom.age = '30'").await,
        &["aface"],
        "string vs string",
    );
    same(
        zen(&app, "custom.age = '35'").await,
        &[] as &[&str],
        "string vs number",
    );
    same(
        zen(&app, "custom.age between(30, 40)").await,
        &["tdurden"],
        "custom between",
    );
    same(
        zen(&app, "custom.age in (29, 48)").await,
        &["msinger", "rpaulson"],
        "custom in",
    );
    same(
        zen(&app, "custom.member = true").await,
        &["tdurden"],
        "custom true",
    );
    same(
        zen(&app, "custom.member = false").await,
        &["msinger"],
        "custom false",
    );
    // Absent and JSON null are both null.
    same(
        zen(&app, "custom.dept = null").await,
        &["admin", "aface", "anon", "lou"],
        "custom null",
    );
    same(
        zen(&app, "custom.dept exists").await,
        &["msinger", "rpaulson", "tdurden"],
        "custom exists",
    );
    same(
        zen(&app, "custom.dept != soap").await,
        &["admin", "aface", "anon", "lou", "msinger"],
        "custom != includes missing",
    );
    same(
        zen(&app, "custom.nothing exists").await,
        &[] as &[&str],
        "absent key",
    );
}

#[tokio::test]
async fn zenql_dates_and_date_functions() {
    let app = spawn().await;
    let f = seed(&app).await;
    let (d0, d3, d6) = (&f.d0, &f.d3, &f.d6);
    same(zen(&app, "created > 2020-01-01").await, &ALL, "after 2020");
    same(
        zen(&app, "created < 2020-01-01").await,
        &[] as &[&str],
        "before 2020",
    );
    // A bare date is the whole UTC day.
    same(
        zen(&app, &format!("created = {d0}")).await,
        &["admin", "msinger", "tdurden"],
        "= day 0",
    );
    same(
        zen(&app, &format!("created = {d3}")).await,
        &["aface", "rpaulson"],
        "= day 3",
    );
    same(
        zen(&app, &format!("created = '{d6}'")).await,
        &["anon", "lou"],
        "= day 6, quoted",
    );
    same(
        zen(&app, &format!("created != {d3}")).await,
        &["admin", "anon", "lou", "msinger", "tdurden"],
        "!= a day",
    );
    same(
        zen(&app, &format!("created > {d3}")).await,
        &["anon", "lou"],
        "> a day: after it",
    );
    same(
        zen(&app, &format!("created >= {d3}")).await,
        &["aface", "anon", "lou", "rpaulson"],
        ">= a day: from its start",
    );
    same(
        zen(&app, &format!("created < {d3}")).await,
        &["admin", "msinger", "tdurden"],
        "< a day: before its start",
    );
    same(
        zen(&app, &format!("created <= {d3}")).await,
        &["admin", "aface", "msinger", "rpaulson", "tdurden"],
        "<= a day: up to its end",
    );
    same(
        zen(&app, &format!("created between({d3}, {d6})")).await,
        &["aface", "anon", "lou", "rpaulson"],
        "between days",
    );
    same(
        zen(&app, &format!("created in ({d0}, {d6})")).await,
        &["admin", "anon", "lou", "msinger", "tdurden"],
        "in days",
    );
    // An exact instant.
    let at = get_ok(&app, &user_path("rpaulson")).await["created"]
        .as_str()
        .unwrap()
        .to_owned();
    same(
        zen(&app, &format!("created = '{at}'")).await,
        &["aface", "rpaulson"],
        "= instant",
    );
    same(
        zen(&app, &format!("created > '{at}'")).await,
        &["anon", "lou"],
        "> instant",
    );
    // now() and friends follow the manual clock (now = T0+6d).
    same(zen(&app, "created > now(-7)").await, &ALL, "now(-7)");
    same(
        zen(&app, "created > now(-4)").await,
        &["aface", "anon", "lou", "rpaulson"],
        "now(-4)",
    );
    same(
        zen(&app, "created > now(-1)").await,
        &["anon", "lou"],
        "now(-1)",
    );
    same(
        zen(&app, "created >= now()").await,
        &["anon", "lou"],
        ">= now()",
    );
    same(
        zen(&app, "created > now()").await,
        &[] as &[&str],
        "> now()",
    );
    same(
        zen(&app, "created < NOW(-5)").await,
        &["admin", "msinger", "tdurden"],
        "NOW(-5)",
    );
    same(
        zen(&app, "created >= startOfDay()").await,
        &["anon", "lou"],
        "startOfDay()",
    );
    same(
        zen(&app, "created < startOfDay(-3)").await,
        &["admin", "msinger", "tdurden"],
        "startOfDay(-3)",
    );
    same(
        zen(&app, "created <= endOfDay(-3)").await,
        &["admin", "aface", "msinger", "rpaulson", "tdurden"],
        "endOfDay(-3)",
    );
    same(
        zen(&app, "created between(startOfDay(-3), endOfDay(-3))").await,
        &["aface", "rpaulson"],
        "between functions",
    );
    same(
        zen(&app, "created > endOfDay()").await,
        &[] as &[&str],
        "endOfDay()",
    );
    // Move on a week: now() moves with the clock.
    app.clock.advance_ms(7 * DAY_MS);
    same(
        zen(&app, "created > now(-7)").await,
        &[] as &[&str],
        "a week later",
    );
    same(
        zen(&app, "created > now(-8)").await,
        &["anon", "lou"],
        "a week later, now(-8)",
    );
}

#[tokio::test]
async fn zenql_current_user_is_the_caller() {
    let app = spawn().await;
    seed(&app).await;
    same(zen(&app, "id = currentUser()").await, &["admin"], "admin");
    same(
        zen(&app, "id != currentUser() and username startsWith a").await,
        &["aface", "anon"],
        "!= currentUser()",
    );
    // A second administrator sees themselves.
    let boss = app.create_user("mayhem", "mayhem@example.com").await;
    app.put(
        &format!(
            "{}/users/{}",
            group_path("System Administrators"),
            enc("mayhem")
        ),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let token = app.login("mayhem", PASSWORD).await;
    let r = app
        .send(
            Method::GET,
            &format!("{USERS}?zenql={}", enc("id = currentUser()")),
            Some(&token),
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ["mayhem"]);
    assert_eq!(r.body["items"][0]["id"], boss["id"]);
    // By id, literally.
    let id = boss["id"].as_str().unwrap();
    same(
        zen(&app, &format!("id = '{}'", id.to_uppercase())).await,
        &["mayhem"],
        "id, any case",
    );
}

#[tokio::test]
async fn zenql_values_bare_quoted_and_escaped() {
    let app = spawn().await;
    add_user(
        &app,
        "",
        json!({"username": "obrien", "email": "ob@quotes.example", "firstName": "Mo",
               "lastName": "O'Brien"}),
    )
    .await;
    add_user(
        &app,
        "",
        json!({"username": "sayhi", "email": "hi@quotes.example", "firstName": "Say \"Hi\"",
               "lastName": "back\\slash"}),
    )
    .await;
    add_user(
        &app,
        "",
        json!({"username": "emile", "email": "emile@quotes.example", "firstName": "Émile",
               "lastName": "Two Words"}),
    )
    .await;
    add_user(
        &app,
        "",
        json!({"username": "007", "email": "bond@quotes.example", "firstName": "James",
               "lastName": "Bond"}),
    )
    .await;
    same(
        zen(&app, "lastName = 'O''Brien'").await,
        &["obrien"],
        "doubled '",
    );
    same(
        zen(&app, "lastName = 'O\\'Brien'").await,
        &["obrien"],
        "\\'",
    );
    same(
        zen(&app, "lastName = \"O'Brien\"").await,
        &["obrien"],
        "' in \"",
    );
    same(
        zen(&app, "lastName = O'Brien").await,
        &["obrien"],
        "bare with '",
    );
    same(
        zen(&app, "firstName = \"Say \\\"Hi\\\"\"").await,
        &["sayhi"],
        "\\\"",
    );
    same(
        zen(&app, "firstName = \"Say \"\"Hi\"\"\"").await,
        &["sayhi"],
        "doubled \"",
    );
    same(
        zen(&app, "firstName = 'Say \"Hi\"'").await,
        &["sayhi"],
        "\" in '",
    );
    same(
        zen(&app, "lastName = \"back\\\\slash\"").await,
        &["sayhi"],
        "\\\\",
    );
    same(
        zen(&app, "lastName ~ '\\\\'").await,
        &["sayhi"],
        "~ backslash",
    );
    same(
        zen(&app, "firstName = Émile").await,
        &["emile"],
        "bare non-ASCII",
    );
    same(
        zen(&app, "firstName = \"\\u00c9mile\"").await,
        &["emile"],
        "\\u escape",
    );
    same(
        zen(&app, "lastName = 'two words'").await,
        &["emile"],
        "quoted space",
    );
    // A number on a text field is text.
    same(
        zen(&app, "username = 007").await,
        &["007"],
        "number as text",
    );
    same(
        zen(&app, "username = '007'").await,
        &["007"],
        "quoted digits",
    );
    same(
        zen(&app, "username = 7").await,
        &[] as &[&str],
        "7 is not 007",
    );
}

// ---------------------------------------------------------------------------------------
// ZenQL on the other lists

/// Groups: Paper Street Soap (members tdurden, msinger, rpaulson), Project Mayhem
/// (members tdurden, rpaulson, aface; children Paper Street Soap and Support Groups),
/// Support Groups (no members), created a day after System Administrators.
async fn seed_groups(app: &TestApp) {
    app.clock.advance_ms(DAY_MS);
    add_group(
        app,
        json!({"name": "Paper Street Soap", "description": "Soap makers",
               "custom": {"city": "Wilmington", "size": 3}}),
    )
    .await;
    add_group(
        app,
        json!({"name": "Project Mayhem", "description": "Space monkeys",
               "custom": {"size": 50, "secret": true}}),
    )
    .await;
    add_group(
        app,
        json!({"name": "Support Groups", "custom": {"size": 12}}),
    )
    .await;
    for (g, u) in [
        ("Paper Street Soap", "tdurden"),
        ("Paper Street Soap", "msinger"),
        ("Paper Street Soap", "rpaulson"),
        ("Project Mayhem", "tdurden"),
        ("Project Mayhem", "rpaulson"),
        ("Project Mayhem", "aface"),
    ] {
        app.put(&format!("{}/users/{}", group_path(g), enc(u)), None)
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    for child in ["Paper Street Soap", "Support Groups"] {
        app.put(
            &format!("{}/groups/{}", group_path("Project Mayhem"), enc(child)),
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn zenql_on_groups_list() {
    let app = spawn().await;
    seed(&app).await;
    seed_groups(&app).await;
    let z = |q: &'static str| zen_on(&app, GROUPS, "name", q);
    assert_eq!(
        z("").await,
        [
            "Paper Street Soap",
            "Project Mayhem",
            "Support Groups",
            "System Administrators"
        ]
    );
    assert_eq!(z("type = sys").await, ["System Administrators"]);
    assert_eq!(
        z("TYPE != SYS").await,
        ["Paper Street Soap", "Project Mayhem", "Support Groups"]
    );
    assert_eq!(
        z("name startsWith p").await,
        ["Paper Street Soap", "Project Mayhem"]
    );
    assert_eq!(z("name = 'project mayhem'").await, ["Project Mayhem"]);
    assert_eq!(z("description ~ MONKEY").await, ["Project Mayhem"]);
    assert_eq!(z("description = null").await, ["Support Groups"]);
    assert_eq!(
        z("custom.size > 10").await,
        ["Project Mayhem", "Support Groups"]
    );
    assert_eq!(z("custom.city = wilmington").await, ["Paper Street Soap"]);
    assert_eq!(z("custom.secret = true").await, ["Project Mayhem"]);
    assert_eq!(
        z("created >= startOfDay()").await,
        ["Paper Street Soap", "Project Mayhem", "Support Groups"]
    );
    assert_eq!(
        z("not (name ~ soap or name ~ admin)").await,
        ["Project Mayhem", "Support Groups"]
    );
    let id = get_ok(&app, &group_path("Support Groups")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(z_id(&app, &id).await, ["Support Groups"]);
    // User fields are not group fields.
    let r = app
        .get(&format!("{GROUPS}?zenql={}", enc("username = tdurden")))
        .await;
    let body = bad_request(&r);
    assert_eq!(body["data"]["position"], 0);
    assert_eq!(body["data"]["parameter"], "zenql");
}

async fn z_id(app: &TestApp, id: &str) -> Vec<String> {
    zen_on(app, GROUPS, "name", &format!("id = {id}")).await
}

#[tokio::test]
async fn zenql_on_group_members() {
    let app = spawn().await;
    seed(&app).await;
    seed_groups(&app).await;
    let members = format!("{}/users", group_path("Project Mayhem"));
    assert_eq!(
        zen_on(&app, &members, "username", "").await,
        ["aface", "rpaulson", "tdurden"]
    );
    assert_eq!(
        zen_on(&app, &members, "username", "custom.dept = soap").await,
        ["rpaulson", "tdurden"]
    );
    assert_eq!(
        zen_on(&app, &members, "username", "lastName != durden").await,
        ["aface", "rpaulson"]
    );
    assert_eq!(
        zen_on(&app, &members, "username", "created >= startOfDay(-4)").await,
        ["aface", "rpaulson"]
    );
    // Inherited members pass through the same filter, each once.
    let inherited = format!("{members}?includeInherited=true");
    assert_eq!(
        zen_on(&app, &inherited, "username", "").await,
        ["aface", "msinger", "rpaulson", "tdurden"]
    );
    assert_eq!(
        zen_on(&app, &inherited, "username", "username startsWith m").await,
        ["msinger"]
    );
    assert_eq!(
        zen_on(&app, &inherited, "username", "custom.age >= 35").await,
        ["rpaulson", "tdurden"]
    );
    // A group field is not a user field here.
    let r = app
        .get(&format!("{members}?zenql={}", enc("name = x")))
        .await;
    assert_eq!(bad_request(&r)["data"]["position"], 0);
}

#[tokio::test]
async fn zenql_on_child_groups_and_user_groups() {
    let app = spawn().await;
    seed(&app).await;
    seed_groups(&app).await;
    let children = format!("{}/groups", group_path("Project Mayhem"));
    assert_eq!(
        zen_on(&app, &children, "name", "").await,
        ["Paper Street Soap", "Support Groups"]
    );
    assert_eq!(
        zen_on(&app, &children, "name", "name ~ soap").await,
        ["Paper Street Soap"]
    );
    assert_eq!(
        zen_on(&app, &children, "name", "custom.size > 5").await,
        ["Support Groups"]
    );
    assert_eq!(
        zen_on(&app, &children, "name", "description exists").await,
        ["Paper Street Soap"]
    );
    let r = app
        .get(&format!("{children}?zenql={}", enc("name = ")))
        .await;
    assert_eq!(bad_request(&r)["data"]["parameter"], "zenql");

    let tyler = format!("{}/groups", user_path("tdurden"));
    assert_eq!(
        zen_on(&app, &tyler, "name", "").await,
        ["Paper Street Soap", "Project Mayhem"]
    );
    assert_eq!(
        zen_on(&app, &tyler, "name", "name startsWith proj").await,
        ["Project Mayhem"]
    );
    assert_eq!(
        zen_on(&app, &tyler, "name", "custom.size < 10").await,
        ["Paper Street Soap"]
    );
    // Marla is in Paper Street Soap directly and in Project Mayhem through it.
    let marla = format!("{}/groups?includeInherited=true", user_path("msinger"));
    assert_eq!(
        zen_on(&app, &marla, "name", "").await,
        ["Paper Street Soap", "Project Mayhem"]
    );
    assert_eq!(
        zen_on(&app, &marla, "name", "name = \"PROJECT MAYHEM\"").await,
        ["Project Mayhem"]
    );
    assert_eq!(
        zen_on(&app, &marla, "name", "type = sys").await,
        [] as [&str; 0]
    );
    let r = app
        .get(&format!("{tyler}?zenql={}", enc("lastName = x")))
        .await;
    assert_eq!(bad_request(&r)["data"]["position"], 0);
}

// ---------------------------------------------------------------------------------------
// q

async fn group_names(app: &TestApp, path: String) -> Vec<String> {
    column(&get_ok(app, &path).await, "name")
}

/// The `q` fixture: who contains what, with non-ASCII letters and LIKE wildcards.
async fn seed_q(app: &TestApp) -> Vec<[String; 5]> {
    let people = [
        ["qalpha", "first@zeta.example", "Émile", "Zola"],
        ["qbeta", "second@eta.example", "émilie", "Kowalski"],
        ["qgamma", "third@pct.example", "Say \"Hi\"", "100%_Pure"],
        ["qdelta", "fourth@under.example", "Plain", "Under_Score"],
        ["qeps", "fifth@big.example", "ÉMILE", "Upper"],
    ];
    let mut out = vec![[
        "admin".to_owned(),
        "admin@localhost".to_owned(),
        String::new(),
        String::new(),
        String::new(),
    ]];
    for [u, e, f, l] in people {
        add_user(
            app,
            "",
            json!({"username": u, "email": e, "firstName": f, "lastName": l}),
        )
        .await;
        out.push([u.into(), e.into(), f.into(), l.into(), String::new()]);
    }
    out
}

/// What a case-insensitive (Unicode) contains over the four fields gives, by username.
fn oracle(people: &[[String; 5]], q: &str) -> Vec<String> {
    let q = q.to_lowercase();
    let mut hits: Vec<String> = people
        .iter()
        .filter(|p| p[..4].iter().any(|f| f.to_lowercase().contains(&q)))
        .map(|p| p[0].clone())
        .collect();
    hits.sort();
    hits
}

async fn q_users(app: &TestApp, q: &str) -> Vec<String> {
    usernames(&get_ok(app, &format!("{USERS}?q={}&pageSize=1000", enc(q))).await)
}

#[tokio::test]
async fn q_searches_every_field_case_insensitively() {
    let app = spawn().await;
    let people = seed_q(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("qalpha", &["qalpha"]),
        ("QALP", &["qalpha"]),
        ("zeta", &["qalpha"]),
        ("ZETA.EX", &["qalpha"]),
        ("kowal", &["qbeta"]),
        ("KOWALSKI", &["qbeta"]),
        ("wal", &["qbeta"]),
        ("ola", &["qalpha"]),
        ("plain", &["qdelta"]),
        ("localhost", &["admin"]),
        ("example", &["qalpha", "qbeta", "qdelta", "qeps", "qgamma"]),
        ("nomatch", &[]),
    ];
    for (q, expected) in cases {
        assert_eq!(q_users(&app, q).await, *expected, "q={q}");
        assert_eq!(oracle(&people, q), *expected, "oracle for q={q}");
    }
    // The parameter name is case-insensitive too.
    let body = get_ok(&app, &format!("{USERS}?Q=kowal")).await;
    assert_eq!(usernames(&body), ["qbeta"]);
}

#[tokio::test]
async fn q_short_and_long_terms_agree() {
    let app = spawn().await;
    let people = seed_q(&app).await;
    // 1 and 2 characters go through LIKE, 3+ through the trigram index: every length
    // must give what a plain case-insensitive contains gives.
    let terms = [
        "z", "Z", "zo", "ZO", "zol", "ZOLA", "k", "ko", "kow", "@", "@z", "@ze", "t", "th", "thi",
        "third", "x", "xa", "exa", "m", "mi", "mil", "MILE", "pu", "pur", "PURE", "1", "10", "100",
        "a", "ad", "adm", ".", ".e", ".ex",
    ];
    for q in terms {
        assert_eq!(q_users(&app, q).await, oracle(&people, q), "q={q}");
    }
}

#[tokio::test]
async fn q_non_ascii_long_terms_fold_case() {
    let app = spawn().await;
    let people = seed_q(&app).await;
    for q in [
        "Émile", "émile", "ÉMILE", "émil", "ÉMI", "émi", "Émilie", "MILE",
    ] {
        let got = q_users(&app, q).await;
        assert_eq!(got, oracle(&people, q), "q={q}");
    }
    assert_eq!(q_users(&app, "émile").await, ["qalpha", "qeps"]);
    assert_eq!(q_users(&app, "ÉMIL").await, ["qalpha", "qbeta", "qeps"]);
}

#[tokio::test]
async fn q_non_ascii_short_terms_fold_case() {
    let app = spawn().await;
    let people = seed_q(&app).await;
    // Same answers as the long terms above: "É" and "é" are one letter in two cases.
    for q in ["É", "é", "Ém", "ém", "ÉM"] {
        let got = q_users(&app, q).await;
        assert_eq!(got, oracle(&people, q), "q={q}");
        assert_eq!(got, ["qalpha", "qbeta", "qeps"], "q={q}");
    }
}

#[tokio::test]
async fn q_wildcards_and_quotes_match_literally() {
    let app = spawn().await;
    let people = seed_q(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("%", &["qgamma"]),
        ("_", &["qdelta", "qgamma"]),
        ("%_", &["qgamma"]),
        ("0%_", &["qgamma"]),
        ("100%_pure", &["qgamma"]),
        ("r_s", &["qdelta"]),
        ("r_sc", &["qdelta"]),
        ("%%%", &[]),
        ("___", &[]),
        ("\"", &["qgamma"]),
        ("\"h", &["qgamma"]),
        ("\"Hi\"", &["qgamma"]),
        ("y \"h", &["qgamma"]),
        ("\"\"", &[]),
        ("\\", &[]),
        ("a%e", &[]),
        ("*", &[]),
        ("zol*", &[]),
        ("zola OR kowalski", &[]),
        ("NEAR(zola)", &[]),
    ];
    for (q, expected) in cases {
        assert_eq!(q_users(&app, q).await, *expected, "q={q}");
        assert_eq!(oracle(&people, q), *expected, "oracle for q={q}");
    }
}

#[tokio::test]
async fn q_on_groups_matches_names() {
    let app = spawn().await;
    for name in [
        "Paper Street Soap",
        "Project Mayhem",
        "Équipe Rouge",
        "50%_Off",
    ] {
        add_group(
            &app,
            json!({"name": name, "description": "zzz description"}),
        )
        .await;
    }
    let q = |q: &'static str| group_names(&app, format!("{GROUPS}?q={}&pageSize=1000", enc(q)));
    let cases: &[(&str, &[&str])] = &[
        ("soap", &["Paper Street Soap"]),
        ("SO", &["Paper Street Soap"]),
        (
            "p",
            &["Paper Street Soap", "Project Mayhem", "Équipe Rouge"],
        ),
        ("ject may", &["Project Mayhem"]),
        ("admin", &["System Administrators"]),
        ("équipe", &["Équipe Rouge"]),
        ("ÉQUIPE", &["Équipe Rouge"]),
        ("é", &["Équipe Rouge"]),
        ("É", &["Équipe Rouge"]),
        ("%", &["50%_Off"]),
        ("_", &["50%_Off"]),
        ("zzz", &[]),
    ];
    for (term, expected) in cases {
        assert_eq!(q(term).await, *expected, "q={term}");
    }
}

// ---------------------------------------------------------------------------------------
// order and paging

async fn ordered(app: &TestApp, order: &str) -> Vec<String> {
    usernames(&get_ok(app, &format!("{USERS}?order={}", enc(order))).await)
}

#[tokio::test]
async fn order_by_several_keys_directions_and_custom() {
    let app = spawn().await;
    seed(&app).await;
    assert_eq!(ordered(&app, "").await, ALL, "default: username");
    assert_eq!(
        ordered(&app, "-username").await,
        [
            "tdurden", "rpaulson", "msinger", "lou", "anon", "aface", "admin"
        ]
    );
    assert_eq!(
        ordered(&app, "-created,username").await,
        [
            "anon", "lou", "aface", "rpaulson", "admin", "msinger", "tdurden"
        ]
    );
    assert_eq!(
        ordered(&app, "created,-username").await,
        [
            "tdurden", "msinger", "admin", "rpaulson", "aface", "lou", "anon"
        ]
    );
    // Nulls last.
    assert_eq!(
        ordered(&app, "lastName,-created").await,
        [
            "lou", "tdurden", "aface", "anon", "rpaulson", "msinger", "admin"
        ]
    );
    assert_eq!(
        ordered(&app, "-firstName,username").await,
        [
            "tdurden", "rpaulson", "msinger", "lou", "aface", "admin", "anon"
        ]
    );
    assert_eq!(
        ordered(&app, "status.suspended,username").await,
        [
            "admin", "aface", "anon", "msinger", "rpaulson", "tdurden", "lou"
        ]
    );
    assert_eq!(
        ordered(&app, "-status.suspended, username").await,
        [
            "lou", "admin", "aface", "anon", "msinger", "rpaulson", "tdurden"
        ]
    );
    // Custom properties sort as text, case-insensitively, nulls last both ways.
    assert_eq!(
        ordered(&app, "custom.age,username").await,
        [
            "msinger", "aface", "tdurden", "rpaulson", "admin", "anon", "lou"
        ]
    );
    assert_eq!(
        ordered(&app, "-custom.age,username").await,
        [
            "rpaulson", "tdurden", "aface", "msinger", "admin", "anon", "lou"
        ]
    );
    assert_eq!(
        ordered(&app, "custom.dept,-username").await,
        [
            "tdurden", "rpaulson", "msinger", "lou", "anon", "aface", "admin"
        ]
    );
    assert_eq!(
        ordered(&app, "CUSTOM.dept,-USERNAME").await,
        [
            "tdurden", "rpaulson", "msinger", "lou", "anon", "aface", "admin"
        ]
    );
    // Together with a filter and the parameter name in another case.
    let body = get_ok(
        &app,
        &format!(
            "{USERS}?ORDER=-custom.age&zenql={}",
            enc("custom.age exists")
        ),
    )
    .await;
    assert_eq!(
        usernames(&body),
        ["rpaulson", "tdurden", "aface", "msinger"]
    );
    // Groups by name by default, and by custom keys.
    seed_groups(&app).await;
    assert_eq!(
        group_names(&app, format!("{GROUPS}?order={}", enc("type,-name"))).await,
        [
            "Support Groups",
            "Project Mayhem",
            "Paper Street Soap",
            "System Administrators"
        ]
    );
    assert_eq!(
        group_names(&app, format!("{GROUPS}?order={}", enc("-custom.city,name"))).await,
        [
            "Paper Street Soap",
            "Project Mayhem",
            "Support Groups",
            "System Administrators"
        ]
    );
}

#[tokio::test]
async fn order_unknown_or_malformed_fields_are_400_with_position() {
    let app = spawn().await;
    seed(&app).await;
    for (order, position) in [
        ("bogus", 0),
        ("username,-bogus", 9),
        ("username, password", 10),
        ("-", 0),
        ("username,", 9),
        ("custom.", 0),
        ("status", 0),
    ] {
        let r = app.get(&format!("{USERS}?order={}", enc(order))).await;
        let body = bad_request(&r);
        assert_eq!(body["data"]["parameter"], "order", "order={order}");
        assert_eq!(body["data"]["position"], position, "order={order}: {body}");
    }
    for path in [
        GROUPS.to_owned(),
        format!("{}/groups", user_path("tdurden")),
        format!("{}/users", group_path("System Administrators")),
    ] {
        let r = app.get(&format!("{path}?order=nonsense")).await;
        bad_request(&r);
    }
    // `username` is not a group field.
    bad_request(&app.get(&format!("{GROUPS}?order=username")).await);
}

#[tokio::test]
async fn paging_over_a_filtered_result_is_complete_and_stable() {
    let app = spawn().await;
    seed(&app).await;
    // 23 matching users, all created in the same millisecond (ties for `created`).
    for i in 0..23 {
        add_user(
            &app,
            "",
            json!({"username": format!("page{i:02}"), "email": format!("p{i}@pages.example"),
                   "lastName": if i % 2 == 0 { "Even" } else { "Odd" }}),
        )
        .await;
    }
    let filter = enc("email endsWith @pages.example");
    let expected: Vec<String> = (0..23).map(|i| format!("page{i:02}")).collect();
    for (order, size) in [
        ("username", 5),
        ("-username", 4),
        ("created", 6),
        ("lastName,-created", 7),
    ] {
        let mut seen = Vec::new();
        let pages = 23_usize.div_ceil(size);
        for index in 0..=pages {
            let body = get_ok(
                &app,
                &format!(
                    "{USERS}?zenql={filter}&order={}&pageIndex={index}&pageSize={size}",
                    enc(order)
                ),
            )
            .await;
            assert_eq!(body["totalCount"], 23, "{order}: {body}");
            assert_eq!(body["pageCount"], pages, "{order}");
            assert_eq!(body["pageIndex"], index, "{order}");
            assert_eq!(body["pageSize"], size, "{order}");
            let items = usernames(&body);
            let want = if index < pages {
                size.min(23 - index * size)
            } else {
                0
            };
            assert_eq!(items.len(), want, "{order} page {index}");
            seen.extend(items);
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), 23, "{order}: no duplicates: {seen:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{order}: none missing");
        match order {
            "username" => assert_eq!(seen, expected),
            "-username" => {
                let mut rev = expected.clone();
                rev.reverse();
                assert_eq!(seen, rev);
            }
            "lastName,-created" => {
                assert!(
                    seen[..12]
                        .iter()
                        .all(|u| { u[4..].parse::<u32>().unwrap() % 2 == 0 })
                );
            }
            _ => {}
        }
        // The same walk twice gives the same order.
        let mut again = Vec::new();
        for index in 0..pages {
            let body = get_ok(
                &app,
                &format!(
                    "{USERS}?zenql={filter}&order={}&pageindex={index}&pagesize={size}",
                    enc(order)
                ),
            )
            .await;
            again.extend(usernames(&body));
        }
        assert_eq!(again, seen, "{order}: stable");
    }
    // `q` plus zenql plus paging.
    let body = get_ok(
        &app,
        &format!(
            "{USERS}?q=page1&zenql={}&pageSize=3&pageIndex=1",
            enc("lastName = odd")
        ),
    )
    .await;
    assert_eq!(body["totalCount"], 5);
    assert_eq!(body["pageCount"], 2);
    assert_eq!(usernames(&body), ["page17", "page19"]);
}

#[tokio::test]
async fn page_size_bounds_are_enforced_everywhere() {
    let app = spawn().await;
    seed(&app).await;
    let body = get_ok(&app, &format!("{USERS}?pageSize=1000")).await;
    assert_eq!(body["pageSize"], 1000);
    assert_eq!(body["pageCount"], 1);
    let body = get_ok(&app, &format!("{USERS}?pageSize=1&pageIndex=6")).await;
    assert_eq!(usernames(&body), ["tdurden"]);
    assert_eq!(body["pageCount"], 7);
    let body = get_ok(&app, &format!("{USERS}?pageSize=1&pageIndex=7")).await;
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["totalCount"], 7);
    for bad in [
        "pageSize=0",
        "pageSize=1001",
        "pageSize=-1",
        "pageIndex=-1",
        "pageSize=x",
    ] {
        for path in [
            USERS.to_owned(),
            GROUPS.to_owned(),
            SEARCH.to_owned(),
            format!("{}/groups", user_path("tdurden")),
        ] {
            let r = app.get(&format!("{path}?{bad}")).await;
            bad_request(&r);
        }
    }
    for (size, ok) in [(0, false), (1001, false), (1, true), (1000, true)] {
        let r = app.post(SEARCH, json!({"pageSize": size})).await;
        if ok {
            r.expect(StatusCode::OK);
            assert_eq!(r.body["pageSize"], size);
        } else {
            bad_request(&r);
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON search

/// `GET /users/search?where=<json>` plus extra raw parameters.
async fn search_get(app: &TestApp, filter: &Value, extra: &str) -> Resp {
    app.get(&format!(
        "{SEARCH}?where={}&pageSize=1000{extra}",
        enc(&filter.to_string())
    ))
    .await
}

/// Runs a `where` over both transports, checks they agree, returns the usernames.
async fn search(app: &TestApp, filter: Value) -> Vec<String> {
    let g = search_get(app, &filter, "").await;
    assert_eq!(g.status, StatusCode::OK, "GET where={filter}: {}", g.text);
    let p = app
        .post(SEARCH, json!({"where": filter, "pageSize": 1000}))
        .await;
    assert_eq!(p.status, StatusCode::OK, "POST where={filter}: {}", p.text);
    let (a, b) = (usernames(&g.body), usernames(&p.body));
    assert_eq!(a, b, "GET and POST agree for {filter}");
    assert_eq!(g.body["totalCount"], a.len(), "{filter}");
    a
}

#[tokio::test]
async fn json_search_every_operator() {
    let app = spawn().await;
    let f = seed(&app).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{"field": "firstName", "equalTo": "TYLER"}]),
            vec!["tdurden"],
        ),
        (
            json!([{"field": "firstName", "equalTo": null}]),
            vec!["admin", "anon"],
        ),
        (
            json!([{"field": "lastName", "contains": "ULS"}]),
            vec!["rpaulson"],
        ),
        (
            json!([{"field": "username", "startsWith": "A"}]),
            vec!["admin", "aface", "anon"],
        ),
        (
            json!([{"field": "email", "endsWith": "@paper.example"}]),
            vec!["rpaulson", "tdurden"],
        ),
        (
            json!([{"field": "username", "in": ["tdurden", "LOU", "nobody"]}]),
            vec!["lou", "tdurden"],
        ),
        (
            json!([{"field": "firstName", "exists": false}]),
            vec!["admin", "anon"],
        ),
        (
            json!([{"field": "firstName", "exists": true}]),
            vec!["aface", "lou", "msinger", "rpaulson", "tdurden"],
        ),
        (
            json!([{"field": "created", "between": [f.d3, f.d6]}]),
            vec!["aface", "anon", "lou", "rpaulson"],
        ),
        (
            json!([{"field": "username", "between": ["b", "n"]}]),
            vec!["lou", "msinger"],
        ),
        (
            json!([{"field": "custom.age", "between": [30, 40]}]),
            vec!["tdurden"],
        ),
        (
            json!([{"field": "custom.age", "greaterThan": 30}]),
            vec!["rpaulson", "tdurden"],
        ),
        (
            json!([{"field": "custom.age", "greaterThanOrEqualTo": 35}]),
            vec!["rpaulson", "tdurden"],
        ),
        (
            json!([{"field": "custom.age", "lessThan": 35}]),
            vec!["msinger"],
        ),
        (
            json!([{"field": "custom.age", "lessThanOrEqualTo": 35}]),
            vec!["msinger", "tdurden"],
        ),
        (
            json!([{"field": "custom.age", "equalTo": "30"}]),
            vec!["aface"],
        ),
        (
            json!([{"field": "custom.dept", "equalTo": "SOAP"}]),
            vec!["rpaulson", "tdurden"],
        ),
        (
            json!([{"field": "custom.member", "equalTo": true}]),
            vec!["tdurden"],
        ),
        (
            json!([{"field": "status.suspended", "equalTo": true}]),
            vec!["lou"],
        ),
        (
            json!([{"field": "created", "greaterThan": f.d3}]),
            vec!["anon", "lou"],
        ),
        (
            json!([{"field": "created", "equalTo": f.d0}]),
            vec!["admin", "msinger", "tdurden"],
        ),
        (
            json!([{"field": "created", "lessThan": "now(-5)"}]),
            vec!["admin", "msinger", "tdurden"],
        ),
        (
            json!([{"field": "created", "greaterThanOrEqualTo": "startOfDay()"}]),
            vec!["anon", "lou"],
        ),
        (
            json!([{"field": "id", "equalTo": "currentUser()"}]),
            vec!["admin"],
        ),
        // freeText: every word must match, per field or across the text fields.
        (
            json!([{"field": "email", "freeText": "paper example"}]),
            vec!["rpaulson", "tdurden"],
        ),
        (json!([{"freeText": "tyler durden"}]), vec!["tdurden"]),
        (json!([{"freeText": "TYLER   paper"}]), vec!["tdurden"]),
        (json!([{"freeText": "paper robert"}]), vec!["rpaulson"]),
        (json!([{"freeText": "tyler singer"}]), vec![]),
        (
            json!([{"field": "lastName", "freeText": "dur den"}]),
            vec!["tdurden"],
        ),
        // No filter at all.
        (json!([]), ALL.to_vec()),
    ];
    for (filter, expected) in cases {
        assert_eq!(search(&app, filter.clone()).await, expected, "{filter}");
    }
}

#[tokio::test]
async fn json_search_and_or_not() {
    let app = spawn().await;
    seed(&app).await;
    let tyler = || json!({"field": "firstName", "equalTo": "tyler"});
    let marla = || json!({"field": "firstName", "equalTo": "marla"});
    let a_names = || json!({"field": "username", "startsWith": "a"});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        // Items of the array are ANDed.
        (
            json!([a_names(), {"field": "lastName", "exists": true}]),
            vec!["aface", "anon"],
        ),
        (json!([tyler(), marla()]), vec![]),
        (
            json!([{"or": [tyler(), marla()]}]),
            vec!["msinger", "tdurden"],
        ),
        (
            json!([{"and": [{"field": "email", "contains": "paper"}, {"field": "custom.age", "lessThan": 40}]}]),
            vec!["tdurden"],
        ),
        (
            json!([{"not": a_names()}]),
            vec!["lou", "msinger", "rpaulson", "tdurden"],
        ),
        // The npm client's array form of not.
        (
            json!([{"not": [a_names()]}]),
            vec!["lou", "msinger", "rpaulson", "tdurden"],
        ),
        // An array of several is ANDed, then negated.
        (
            json!([{"not": [a_names(), {"field": "lastName", "exists": true}]}]),
            vec!["admin", "lou", "msinger", "rpaulson", "tdurden"],
        ),
        (
            json!([{"not": {"or": [tyler(), marla()]}}]),
            vec!["admin", "aface", "anon", "lou", "rpaulson"],
        ),
        (
            json!([{"or": [{"and": [tyler(), {"field": "lastName", "equalTo": "durden"}]},
                            {"not": {"field": "status.suspended", "equalTo": false}}]}]),
            vec!["lou", "tdurden"],
        ),
        // One item object in place of the array.
        (tyler(), vec!["tdurden"]),
        // Property and field names in any case.
        (
            json!([{"Field": "FIRSTNAME", "EqualTo": "Tyler"}]),
            vec!["tdurden"],
        ),
        (
            json!([{"OR": [{"FIELD": "custom.age", "GREATERTHAN": 40}, {"NOT": [{"field": "Username", "STARTSWITH": "a"}]}]}]),
            vec!["lou", "msinger", "rpaulson", "tdurden"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(search(&app, filter.clone()).await, expected, "{filter}");
    }
}

#[tokio::test]
async fn json_search_order_by_and_paging() {
    let app = spawn().await;
    seed(&app).await;
    let all = json!([]);
    let post = |body: Value| {
        let app = &app;
        async move {
            let r = app.post(SEARCH, body.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
            r.body
        }
    };
    let body =
        post(json!({"where": all, "orderBy": [{"desc": "custom.age"}, {"asc": "username"}]})).await;
    assert_eq!(
        usernames(&body),
        [
            "rpaulson", "tdurden", "aface", "msinger", "admin", "anon", "lou"
        ]
    );
    let body = post(json!({"orderBy": ["-created", "username"]})).await;
    assert_eq!(
        usernames(&body),
        [
            "anon", "lou", "aface", "rpaulson", "admin", "msinger", "tdurden"
        ]
    );
    let body = post(json!({"orderBy": ["lastName"]})).await;
    assert_eq!(
        usernames(&body),
        [
            "lou", "tdurden", "aface", "anon", "rpaulson", "msinger", "admin"
        ]
    );
    let body = post(json!({"orderBy": "-username"})).await;
    assert_eq!(
        usernames(&body),
        [
            "tdurden", "rpaulson", "msinger", "lou", "anon", "aface", "admin"
        ]
    );
    // Property names in any case; paging.
    let body = post(json!({
        "Where": [{"field": "username", "startsWith": "a"}],
        "OrderBy": [{"DESC": "Username"}],
        "PageIndex": 1,
        "PAGESIZE": 2,
    }))
    .await;
    assert_eq!(body["totalCount"], 3);
    assert_eq!(body["pageCount"], 2);
    assert_eq!(body["pageIndex"], 1);
    assert_eq!(body["pageSize"], 2);
    assert_eq!(usernames(&body), ["admin"]);
    // GET: orderBy as JSON in the query string, or a plain list like `order`.
    let r = app
        .get(&format!(
            "{SEARCH}?orderBy={}&where={}",
            enc(r#"[{"desc":"created"},{"asc":"username"}]"#),
            enc(r#"[{"field":"created","greaterThan":"now(-4)"}]"#)
        ))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ["anon", "lou", "aface", "rpaulson"]);
    let r = app
        .get(&format!("{SEARCH}?orderBy=-created,username"))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(
        usernames(&r.body),
        [
            "anon", "lou", "aface", "rpaulson", "admin", "msinger", "tdurden"
        ]
    );
    let r = app
        .get(&format!(
            "{SEARCH}?ORDERBY={}&pageindex=2&PageSize=3",
            enc("[\"username\"]")
        ))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ["tdurden"]);
    assert_eq!(r.body["pageCount"], 3);
    // No parameters at all: everyone, by username.
    let r = app.get(SEARCH).await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ALL);
    assert_eq!(r.body["pageSize"], 25);
    let r = app.post(SEARCH, json!({})).await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ALL);
}

#[tokio::test]
async fn json_search_the_npm_client_request_shape() {
    let app = spawn().await;
    seed(&app).await;
    for u in ["admin2", "admin3", "xadmin"] {
        add_user(
            &app,
            "",
            json!({"username": u, "email": format!("{u}@npm.example")}),
        )
        .await;
    }
    // Exactly what client.security.users.search sends, URL-encoded.
    let path = format!(
        "{SEARCH}?orderBy={}&pageIndex=1&pageSize=5&where={}",
        enc(r#"[{"asc":"username"}]"#),
        enc(r#"[{"field":"username","equalTo":"admin"}]"#)
    );
    let r = app.get(&path).await;
    r.expect(StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"pageIndex": 1, "pageSize": 5, "totalCount": 1, "pageCount": 1, "items": []})
    );
    let path = format!(
        "{SEARCH}?orderBy={}&pageIndex=0&pageSize=5&where={}",
        enc(r#"[{"asc":"username"}]"#),
        enc(r#"[{"field":"username","equalTo":"admin"}]"#)
    );
    let r = app.get(&path).await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ["admin"]);
    assert_eq!(r.body["totalCount"], 1);
    // With the npm client's Content-Type on a GET and the older prefix.
    let r = app
        .send_raw(
            Method::GET,
            &path.replace("/api/security/", "/api/management/security/"),
            Some(&app.admin.clone()),
            "application/json",
            Vec::new(),
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(usernames(&r.body), ["admin"]);
    // And a page of a wider search.
    let path = format!(
        "{SEARCH}?orderBy={}&pageIndex=1&pageSize=2&where={}",
        enc(r#"[{"desc":"username"}]"#),
        enc(r#"[{"field":"username","contains":"admin"}]"#)
    );
    let r = app.get(&path).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 4);
    assert_eq!(r.body["pageCount"], 2);
    assert_eq!(usernames(&r.body), ["admin2", "admin"]);
}

// ---------------------------------------------------------------------------------------
// Errors

async fn zen_error(app: &TestApp, zenql: &str) -> Value {
    let r = app.get(&format!("{USERS}?zenql={}", enc(zenql))).await;
    let body = bad_request(&r);
    assert_eq!(body["data"]["parameter"], "zenql", "{zenql}: {body}");
    assert!(
        body["data"]["position"].is_u64(),
        "numeric position for {zenql}: {body}"
    );
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("position"), "{zenql}: {msg}");
    assert!(
        !msg.to_lowercase().contains("sql"),
        "no internals for {zenql}: {msg}"
    );
    body
}

#[tokio::test]
async fn zenql_errors_are_400_with_the_position() {
    let app = spawn().await;
    seed(&app).await;
    let cases: &[(&str, u64)] = &[
        // The second `~` is where a value was expected.
        ("firstName ~~ x", 11),
        ("frstName = x", 0),
        ("firstName = x and bogus = y", 18),
        ("custom. = 1", 0),
        ("(firstName = x", 14),
        ("((firstName = x) or lastName = y", 32),
        ("firstName = x)", 13),
        ("firstName = 'abc", 12),
        ("firstName = \"abc", 12),
        ("lastName = 'O\\'", 11),
        ("username in tdurden", 12),
        ("username in (a, b", 17),
        ("username in ()", 13),
        ("username not tdurden", 13),
        ("firstName", 9),
        ("firstName =", 11),
        ("firstName = x and", 17),
        ("firstName = x or or lastName = y", 17),
        ("firstName = x lastName = y", 14),
        ("= x", 0),
        ("firstName ! x", 10),
        ("firstName == x", 11),
        ("created ~ 2024", 8),
        ("created > yesterday", 10),
        ("created > 2024-13-45", 10),
        ("created > now(x)", 14),
        ("created > tomorrow()", 10),
        ("status.suspended = maybe", 19),
        ("status.suspended > true", 17),
        ("firstName = true", 12),
        ("firstName > null", 10),
        ("username between(a)", 18),
        ("firstName = 'bad \\q escape'", 17),
    ];
    for (q, position) in cases {
        let body = zen_error(&app, q).await;
        assert_eq!(body["data"]["position"], *position, "{q}: {body}");
    }
}

#[tokio::test]
async fn json_search_errors_are_400_with_the_path() {
    let app = spawn().await;
    seed(&app).await;
    let cases: &[(Value, &str)] = &[
        (
            json!([{"field": "username", "equalTo": "x"}, {"field": "bogus", "equalTo": "y"}]),
            "where[1].field",
        ),
        (
            json!([{"field": "username", "likeish": "x"}]),
            "where[0].likeish",
        ),
        (json!([{"equalTo": "x"}]), "where[0]"),
        (json!([{"field": "username"}]), "where[0]"),
        (
            json!([{"field": "username", "equalTo": "x", "contains": "y"}]),
            "where[0].equalTo",
        ),
        (json!([{"field": "username", "in": "x"}]), "where[0].in"),
        (
            json!([{"field": "username", "between": ["a"]}]),
            "where[0].between",
        ),
        (
            json!([{"field": "username", "exists": "yes"}]),
            "where[0].exists",
        ),
        (
            json!([{"field": "created", "greaterThan": "soon"}]),
            "where[0].greaterThan",
        ),
        (
            json!([{"field": "status.suspended", "equalTo": "yes"}]),
            "where[0].equalTo",
        ),
        (
            json!([{"or": {"field": "username", "equalTo": "x"}}]),
            "where[0].or",
        ),
        (
            json!([{"and": [{"field": "username", "equalTo": "x"}, {"not": {"field": "nope", "equalTo": 1}}]}]),
            "where[0].and[1].not.field",
        ),
        (
            json!([{"not": [{"field": "username", "equalTo": "x"}, 3]}]),
            "where[0].not[1]",
        ),
        (json!("username = x"), "where"),
        (json!(42), "where"),
        (json!([[]]), "where[0]"),
        (json!([{"field": 3, "equalTo": "x"}]), "where[0].field"),
        (
            json!([{"field": "username", "equalTo": {"a": 1}}]),
            "where[0].equalTo",
        ),
    ];
    for (filter, path) in cases {
        for r in [
            search_get(&app, filter, "").await,
            app.post(SEARCH, json!({"where": filter})).await,
        ] {
            let body = bad_request(&r);
            assert_eq!(body["data"]["parameter"], "where", "{filter}: {body}");
            assert_eq!(body["data"]["path"], *path, "{filter}: {body}");
        }
    }
    // orderBy errors name their path too.
    for (order, path) in [
        (json!([{"asc": "bogus"}]), "orderBy[0].asc"),
        (json!(["username", {"desc": "nope"}]), "orderBy[1].desc"),
        (json!([{"up": "username"}]), "orderBy[0].up"),
        (json!([{"asc": "username", "desc": "email"}]), "orderBy[0]"),
        (json!([7]), "orderBy[0]"),
    ] {
        let r = app.post(SEARCH, json!({"orderBy": order})).await;
        let body = bad_request(&r);
        assert_eq!(body["data"]["parameter"], "orderBy", "{order}: {body}");
        assert_eq!(body["data"]["path"], path, "{order}: {body}");
    }
    // Malformed JSON in the query string.
    for raw in [
        "[{",
        "[{\"field\": \"username\", }]",
        "{field:username}",
        "'x'",
        "[1,]",
    ] {
        let r = app.get(&format!("{SEARCH}?where={}", enc(raw))).await;
        let body = bad_request(&r);
        assert_eq!(body["data"]["parameter"], "where", "{raw}: {body}");
    }
    // Wrong types in the POST body.
    for body in [
        json!({"pageIndex": "one"}),
        json!({"pageSize": -5}),
        json!({"where": [{"field": "username", "equalTo": "x"}], "pageIndex": 1.5}),
    ] {
        bad_request(&app.post(SEARCH, body).await);
    }
    bad_request(
        &app.send_raw(
            Method::POST,
            SEARCH,
            Some(&app.admin.clone()),
            "application/json",
            b"{\"where\": [".to_vec(),
        )
        .await,
    );
}

// ---------------------------------------------------------------------------------------
// Injection

#[tokio::test]
async fn injection_attempts_never_run() {
    let app = spawn().await;
    seed(&app).await;
    let odd = add_user(
        &app,
        "",
        json!({"username": "bobby", "email": "bobby@tables.example", "firstName": "x' OR 1=1 --",
               "lastName": "\"); DROP TABLE users; --", "custom": {"k') OR 1=1 --": "v"}}),
    )
    .await;
    let before = user_count(&app).await;
    assert_eq!(before, 8);
    let attacks = [
        "x' OR 1=1 --",
        "\"); DROP TABLE users; --",
        "'; DELETE FROM users; --",
        "1; DROP TABLE groups",
        "' UNION SELECT password_hash FROM users --",
        "%' OR '%'='",
    ];
    for a in attacks {
        let literal = |hit: bool| {
            if hit {
                vec!["bobby".to_owned()]
            } else {
                vec![]
            }
        };
        let first_hit = a == "x' OR 1=1 --";
        let last_hit = a == "\"); DROP TABLE users; --";
        // ZenQL values, quoted both ways.
        let quoted_d = format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""));
        let quoted_s = format!("'{}'", a.replace('\'', "''"));
        for q in [
            format!("firstName = {quoted_s}"),
            format!("firstName = {quoted_d}"),
            format!("firstName ~ {quoted_d}"),
        ] {
            assert_eq!(zen(&app, &q).await, literal(first_hit), "{q}");
        }
        assert_eq!(
            zen(&app, &format!("lastName = {quoted_d}")).await,
            literal(last_hit),
            "lastName {a}"
        );
        assert_eq!(
            zen(&app, &format!("custom.dept in ({quoted_s}, {quoted_d})")).await,
            literal(false),
        );
        // Unquoted: either a 400 or a literal match, never more.
        let r = app
            .get(&format!(
                "{USERS}?zenql={}",
                enc(&format!("firstName = {a}"))
            ))
            .await;
        if r.status == StatusCode::OK {
            assert!(usernames(&r.body).len() <= 1, "{a}: {}", r.text);
        } else {
            bad_request(&r);
        }
        // q: a contains over the literal text.
        let got = q_users(&app, a).await;
        assert_eq!(got, literal(first_hit || last_hit), "q={a}");
        // JSON where values, and as a custom key.
        assert_eq!(
            search(&app, json!([{"field": "firstName", "equalTo": a}])).await,
            literal(first_hit)
        );
        assert_eq!(
            search(&app, json!([{"field": "lastName", "contains": a}])).await,
            literal(last_hit)
        );
        assert_eq!(
            search(
                &app,
                json!([{"field": format!("custom.{a}"), "exists": true}])
            )
            .await,
            literal(false)
        );
        assert_eq!(
            search(&app, json!([{"freeText": a}])).await.len(),
            usize::from(first_hit || last_hit),
            "freeText {a}"
        );
        // Group lists and the user's groups.
        let r = app.get(&format!("{GROUPS}?q={}", enc(a))).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 0);
    }
    // A custom key with SQL in it is only ever a key.
    assert_eq!(
        search(
            &app,
            json!([{"field": "custom.k') OR 1=1 --", "equalTo": "V"}])
        )
        .await,
        ["bobby"]
    );
    assert_eq!(zen(&app, "custom.k' = v").await, [] as [&str; 0]);
    // Ordering never takes SQL.
    for order in [
        "username;drop table users",
        "username; DROP TABLE users; --",
        "(select 1)",
        "username desc",
        "1",
        "username,(CASE WHEN 1=1 THEN username END)",
        "custom.x) --",
        "lower(username)",
    ] {
        let r = app.get(&format!("{USERS}?order={}", enc(order))).await;
        if r.status == StatusCode::OK {
            // Only a custom key can be arbitrary text, and it is bound.
            assert!(order.starts_with("custom."), "{order}: {}", r.text);
            assert_eq!(r.body["totalCount"], before);
        } else {
            assert_eq!(bad_request(&r)["data"]["parameter"], "order", "{order}");
        }
        let r = app.post(SEARCH, json!({"orderBy": [{"asc": order}]})).await;
        if r.status == StatusCode::OK {
            assert!(order.starts_with("custom."), "{order}: {}", r.text);
        } else {
            bad_request(&r);
        }
        let r = app.get(&format!("{GROUPS}?order={}", enc(order))).await;
        if order.starts_with("custom.") {
            r.expect(StatusCode::OK);
        } else {
            bad_request(&r);
        }
    }
    // Everyone is still there, and so is the odd user.
    assert_eq!(user_count(&app).await, before);
    for u in ALL.iter().chain(["bobby"].iter()) {
        get_ok(&app, &user_path(u)).await;
    }
    assert_eq!(get_ok(&app, &user_path("bobby")).await["id"], odd["id"]);
    let groups = get_ok(&app, GROUPS).await;
    assert_eq!(column(&groups, "name"), ["System Administrators"]);
}

// ---------------------------------------------------------------------------------------
// Authorization

#[tokio::test]
async fn standard_users_cannot_query_users() {
    let app = spawn().await;
    seed(&app).await;
    let (_, token) = app.user_with_token("pleb").await;
    let t = Some(token.as_str());
    for path in [
        format!("{USERS}?zenql={}", enc("firstName = tyler")),
        format!("{USERS}?zenQL={}", enc("id = currentUser()")),
        format!("{USERS}?q=tyler"),
        format!("{USERS}?order=-created"),
        format!(
            "{SEARCH}?where={}",
            enc(r#"[{"field":"username","equalTo":"admin"}]"#)
        ),
        SEARCH.to_owned(),
        format!(
            "{}/users?zenql={}",
            group_path("System Administrators"),
            enc("username = admin")
        ),
    ] {
        let r = app.send(Method::GET, &path, t, None).await;
        r.expect(StatusCode::FORBIDDEN);
    }
    for body in [
        json!({"where": [{"field": "username", "equalTo": "admin"}]}),
        json!({}),
    ] {
        let r = app.send(Method::POST, SEARCH, t, Some(body)).await;
        r.expect(StatusCode::FORBIDDEN);
    }
    // Without a token: 401.
    let r = app
        .send(
            Method::GET,
            &format!("{USERS}?zenql={}", enc("id = currentUser()")),
            None,
            None,
        )
        .await;
    r.expect(StatusCode::UNAUTHORIZED);
    let r = app.send(Method::POST, SEARCH, None, Some(json!({}))).await;
    r.expect(StatusCode::UNAUTHORIZED);
    // Their own groups they may query.
    let r = app
        .send(
            Method::GET,
            &format!("{}/groups?zenql={}", user_path("pleb"), enc("type = sys")),
            t,
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 0);
}
