//! Issue #23: the operator's command line, run as the real binary. The bootstrap that
//! follows `GATEHOUSE_ADMIN_PASSWORD` (import, then serve; a second start with another
//! password), and `gatehouse user …` / `gatehouse group …` against the database and
//! against a live server: the same JSON from both, the same refusals, the exit codes.

use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as JSON, or a panic that shows the run.
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "the command failed: {self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code and that stderr is one line naming `needle`; returns it.
    fn refused(&self, code: i32, needle: &str) -> String {
        assert_eq!(self.code, Some(code), "{self:?}");
        let line = self.stderr.trim_end();
        assert!(!line.contains('\n'), "one line on stderr: {self:?}");
        assert!(line.contains(needle), "stderr names {needle:?}: {self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
        line.to_owned()
    }
}

/// Runs `gatehouse args…` with extra environment and optional stdin, off the async
/// threads (the in-process server must keep answering meanwhile).
async fn gatehouse(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    use std::io::Write as _;
    let mut cmd = gatehouse_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the gatehouse binary starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("stdin is written");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the wait is not cancelled")
        .expect("the output is read");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The two targets of a directory command: the database itself, and the live server
/// with the bootstrap admin's token (`app` is served: [`TestApp::serve`]).
struct Targets<'a> {
    app: &'a TestApp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum On {
    Database,
    Server,
}

const BOTH: [On; 2] = [On::Database, On::Server];

impl Targets<'_> {
    async fn run(&self, on: On, args: &[&str], stdin: Option<&str>) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        let env: Vec<(&str, &str)> = match on {
            On::Database => {
                all.extend(["--database", &self.app.database_url]);
                Vec::new()
            }
            On::Server => {
                all.extend(["--server", self.app.base()]);
                vec![("GATEHOUSE_TOKEN", self.app.admin.as_str())]
            }
        };
        gatehouse(&all, &env, stdin).await
    }

    /// Runs on both targets; asserts both succeed with the same JSON, and returns it.
    async fn same(&self, args: &[&str]) -> Value {
        let a = self.run(On::Database, args, None).await.json();
        let b = self.run(On::Server, args, None).await.json();
        assert_eq!(
            a, b,
            "gatehouse {args:?}: the database and the server differ"
        );
        a
    }
}

fn suffix(on: On) -> &'static str {
    match on {
        On::Database => "db",
        On::Server => "srv",
    }
}

#[tokio::test]
async fn every_user_and_group_command_works_on_the_database_and_through_the_server() {
    let app = TestApp::serve().await;
    let t = Targets { app: &app };
    for on in BOTH {
        let s = suffix(on);
        let (ann, gil, crew, kids) = (
            format!("ann-{s}"),
            format!("gil-{s}"),
            format!("crew-{s}"),
            format!("kids-{s}"),
        );
        let ann_email = format!("{ann}@example.com");

        // user create, with the password from stdin: not echoed.
        let created = t
            .run(
                on,
                &[
                    "user",
                    "create",
                    &ann,
                    "--email",
                    &ann_email,
                    "--first-name",
                    "Ann",
                    "--last-name",
                    "Lee",
                    "--password-stdin",
                    "--json",
                ],
                Some(&format!("{PASSWORD}\n")),
            )
            .await
            .json();
        assert_eq!(created["username"], json!(ann));
        assert_eq!(created["email"], json!(ann_email));
        assert_eq!(created["firstName"], json!("Ann"));
        assert_eq!(
            created["credentials"]["provider"]["type"],
            json!("contensis")
        );
        assert!(created.get("password").is_none(), "{created}");
        app.login(&ann, PASSWORD).await;

        // user create --admin, with a generated password printed once.
        let admin = t
            .run(
                on,
                &[
                    "user",
                    "create",
                    &gil,
                    "--email",
                    &format!("{gil}@example.com"),
                    "--admin",
                    "--json",
                ],
                None,
            )
            .await
            .json();
        let generated = admin["password"].as_str().expect("a generated password");
        let token = app.login(&gil, generated).await;
        app.send(Method::GET, "/api/security/users", Some(&token), None)
            .await
            .expect(StatusCode::OK);

        // user show by username, email and id: the same user.
        let id = created["id"].as_str().unwrap().to_owned();
        for name in [&ann, &ann_email, &id] {
            let shown = t
                .run(on, &["user", "show", name, "--json"], None)
                .await
                .json();
            assert_eq!(shown["id"], json!(id));
        }

        // user list with q, zenql and paging.
        let page = t
            .run(on, &["user", "list", "--q", &ann, "--json"], None)
            .await
            .json();
        assert_eq!(page["totalCount"], json!(1));
        assert_eq!(page["items"][0]["username"], json!(ann));
        let zenql = format!("lastName = Lee and username = {ann}");
        let page = t
            .run(on, &["user", "list", "--zenql", &zenql, "--json"], None)
            .await
            .json();
        assert_eq!(page["totalCount"], json!(1), "{page}");
        let page = t
            .run(
                on,
                &["user", "list", "--page", "1", "--page-size", "1", "--json"],
                None,
            )
            .await
            .json();
        assert_eq!(page["pageIndex"], json!(1));
        assert_eq!(page["pageSize"], json!(1));
        assert_eq!(page["items"].as_array().unwrap().len(), 1);

        // suspend, unsuspend, unlock: the user afterwards.
        let u = t
            .run(on, &["user", "suspend", &ann, "--json"], None)
            .await
            .json();
        assert_eq!(u["status"]["suspended"], json!(true));
        let u = t
            .run(on, &["user", "unsuspend", &ann, "--json"], None)
            .await
            .json();
        assert_eq!(u["status"]["suspended"], json!(false));
        for _ in 0..5 {
            app.token(&[
                ("grant_type", "contensis_classic"),
                ("username", &ann),
                ("password", "Wrong-Pass-000"),
            ])
            .await;
        }
        let u = t
            .run(on, &["user", "show", &ann, "--json"], None)
            .await
            .json();
        assert_eq!(u["status"]["locked"], json!(true), "five failures lock");
        let u = t
            .run(on, &["user", "unlock", &ann, "--json"], None)
            .await
            .json();
        assert_eq!(u["status"]["locked"], json!(false));
        app.login(&ann, PASSWORD).await;

        // group create, show, list.
        let g = t
            .run(
                on,
                &[
                    "group",
                    "create",
                    &crew,
                    "--description",
                    "The crew",
                    "--json",
                ],
                None,
            )
            .await
            .json();
        assert_eq!(g["name"], json!(crew));
        assert_eq!(g["description"], json!("The crew"));
        assert_eq!(g["type"], json!("contensis"));
        let shown = t
            .run(on, &["group", "show", &crew, "--json"], None)
            .await
            .json();
        assert_eq!(shown["id"], g["id"]);
        let page = t
            .run(on, &["group", "list", "--q", &crew, "--json"], None)
            .await
            .json();
        assert_eq!(page["totalCount"], json!(1));

        // add-user (several at once), add-child, members with and without inheritance.
        let g = t
            .run(
                on,
                &["group", "add-user", &crew, &ann, &gil, "--json"],
                None,
            )
            .await
            .json();
        assert_eq!(g["userCount"], json!(2));
        t.run(on, &["group", "create", &kids, "--json"], None)
            .await
            .json();
        let nested = format!("{s}-nested@example.com");
        app.create_user(&format!("nested-{s}"), &nested).await;
        t.run(on, &["group", "add-user", &kids, &nested, "--json"], None)
            .await
            .json();
        let g = t
            .run(on, &["group", "add-child", &crew, &kids, "--json"], None)
            .await
            .json();
        assert_eq!(g["childGroupCount"], json!(1));
        let direct = t
            .run(on, &["group", "members", &crew, "--json"], None)
            .await
            .json();
        assert_eq!(direct["totalCount"], json!(2));
        let all = t
            .run(
                on,
                &["group", "members", &crew, "--inherited", "--json"],
                None,
            )
            .await
            .json();
        assert_eq!(all["totalCount"], json!(3), "{all}");

        // remove-user.
        let g = t
            .run(on, &["group", "remove-user", &crew, &gil, "--json"], None)
            .await
            .json();
        assert_eq!(g["userCount"], json!(1));

        // group delete and user delete answer what they deleted; it is gone after.
        let gone = t
            .run(on, &["group", "delete", &kids, "--json"], None)
            .await
            .json();
        assert_eq!(gone["name"], json!(kids));
        t.run(on, &["group", "show", &kids], None)
            .await
            .refused(3, &kids);
        let gone = t
            .run(on, &["user", "delete", &gil, "--json"], None)
            .await
            .json();
        assert_eq!(gone["username"], json!(gil));
        t.run(on, &["user", "show", &gil], None)
            .await
            .refused(3, &gil);
    }

    // Whatever was made through either target, both read back the same JSON.
    t.same(&["user", "list", "--page-size", "1000", "--json"])
        .await;
    t.same(&["group", "list", "--json"]).await;
    for name in ["ann-db", "ann-srv"] {
        t.same(&["user", "show", name, "--json"]).await;
    }
    t.same(&["group", "members", "crew-srv", "--inherited", "--json"])
        .await;

    // The tables for people hold the same rows on both targets.
    let a = t.run(On::Database, &["user", "list"], None).await;
    let b = t.run(On::Server, &["user", "list"], None).await;
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.starts_with("USERNAME"), "{}", a.stdout);
    assert!(a.stdout.contains("ann-db"), "{}", a.stdout);
    assert!(
        !a.stdout.contains('\u{1b}'),
        "no colour when not on a terminal"
    );
}

#[tokio::test]
async fn the_rules_refuse_through_the_command_line_as_through_the_api() {
    let app = TestApp::serve().await;
    let t = Targets { app: &app };
    app.create_group("A").await;
    app.create_group("B").await;
    app.create_user("member", "member@example.com").await;
    t.run(
        On::Database,
        &["group", "add-child", "A", "B", "--json"],
        None,
    )
    .await
    .json();
    for on in BOTH {
        // The only administrator can be neither deleted nor suspended: 4, unchanged.
        let last = t.run(on, &["user", "delete", "admin"], None).await.refused(
            4,
            "System Administrators must keep at least one active member",
        );
        let suspended = t
            .run(on, &["user", "suspend", "admin"], None)
            .await
            .refused(4, "at least one active member");
        assert_eq!(last, suspended);
        // A cycle: 4.
        t.run(on, &["group", "add-child", "B", "A"], None)
            .await
            .refused(4, "cannot contain itself");
        // Unknown users and groups: 3, naming them; nothing is added.
        t.run(on, &["user", "show", "nobody@example.com"], None)
            .await
            .refused(3, "User 'nobody@example.com' was not found");
        t.run(on, &["group", "show", "Nowhere"], None)
            .await
            .refused(3, "Group 'Nowhere' was not found");
        t.run(on, &["group", "add-user", "A", "member", "ghost"], None)
            .await
            .refused(3, "'ghost'");
        // A weak password: 4, and no user.
        t.run(
            on,
            &[
                "user",
                "create",
                "weakling",
                "--email",
                "weak@example.com",
                "--password-stdin",
            ],
            Some("weak\n"),
        )
        .await
        .refused(4, "password");
        // A duplicate: 4.
        t.run(on, &["group", "create", "a"], None)
            .await
            .refused(4, "already exists");
        // A malformed ZenQL expression is a usage error: 2.
        t.run(on, &["user", "list", "--zenql", "nosuchfield = 1"], None)
            .await
            .refused(2, "nosuchfield");
    }
    app.get("/api/security/users/admin")
        .await
        .expect(StatusCode::OK);
    app.get("/api/security/users/weakling")
        .await
        .expect(StatusCode::NOT_FOUND);
    let a = app.get("/api/security/groups/A/users").await;
    assert_eq!(a.body["totalCount"], json!(0), "all or nothing");
    // The same words from both targets.
    for args in [
        &["user", "delete", "admin"][..],
        &["group", "add-child", "B", "A"],
        &["group", "add-user", "A", "ghost", "phantom"],
    ] {
        let a = t.run(On::Database, args, None).await;
        let b = t.run(On::Server, args, None).await;
        assert_eq!((a.code, &a.stderr), (b.code, &b.stderr), "{args:?}");
    }
    // A command line clap refuses: 2.
    let r = gatehouse(&["user", "list", "--page-size", "0"], &[], None).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    // The recovery command fails like the others: an unknown user is 3.
    gatehouse(
        &[
            "admin",
            "reset-password",
            "ghost",
            "--database",
            &app.database_url,
        ],
        &[],
        None,
    )
    .await
    .refused(3, "User 'ghost' was not found");
    // NO_COLOR, in any of its spellings, is accepted.
    let r = gatehouse(
        &["group", "list", "--database", &app.database_url],
        &[("NO_COLOR", "1")],
        None,
    )
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[tokio::test]
async fn an_unreachable_server_or_database_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!(
        "sqlite://{}",
        dir.path().join("no/such/dir/gatehouse.db").display()
    );
    let r = gatehouse(&["user", "list", "--database", &missing], &[], None).await;
    let line = r.refused(1, "cannot open the database");
    assert!(line.contains("no/such/dir"), "{line}");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let r = gatehouse(
        &["group", "list", "--server", &server],
        &[("GATEHOUSE_TOKEN", "whatever")],
        None,
    )
    .await;
    r.refused(1, &format!("cannot reach the server at {server}"));
    // No credentials for a server: a usage error.
    let r = gatehouse(&["user", "list", "--server", &server], &[], None).await;
    r.refused(2, "GATEHOUSE_TOKEN");
}

#[tokio::test]
async fn an_api_key_or_a_bad_token_reaches_the_server_as_the_api_decides() {
    let app = TestApp::serve().await;
    let key = gatehouse(
        &[
            "apikey",
            "create",
            "cli-bot",
            "--admin",
            "--database",
            &app.database_url,
        ],
        &[],
        None,
    )
    .await
    .json();
    let (id, secret) = (
        key["clientId"].as_str().unwrap(),
        key["clientSecret"].as_str().unwrap(),
    );
    let page = gatehouse(
        &["user", "list", "--server", app.base(), "--json"],
        &[
            ("GATEHOUSE_CLIENT_ID", id),
            ("GATEHOUSE_CLIENT_SECRET", secret),
        ],
        None,
    )
    .await
    .json();
    assert!(page["totalCount"].as_i64().unwrap() >= 1, "{page}");
    let r = gatehouse(
        &["user", "list", "--server", app.base()],
        &[
            ("GATEHOUSE_CLIENT_ID", id),
            ("GATEHOUSE_CLIENT_SECRET", "wrong"),
        ],
        None,
    )
    .await;
    r.refused(1, "refused the API key");
    let r = gatehouse(
        &["user", "list", "--server", app.base()],
        &[("GATEHOUSE_TOKEN", "not-a-token")],
        None,
    )
    .await;
    r.refused(1, "Authorization has been denied");
    // A standard user's token: 403, exit 1.
    let (_, token) = app.user_with_token("plain").await;
    let r = gatehouse(
        &["user", "list", "--server", app.base()],
        &[("GATEHOUSE_TOKEN", &token)],
        None,
    )
    .await;
    r.refused(1, "not those of an administrator");
}

#[tokio::test]
async fn completions_and_the_man_page_come_from_the_command_definitions() {
    for (shell, marker) in [
        ("bash", "_gatehouse()"),
        ("zsh", "#compdef gatehouse"),
        ("fish", "complete -c gatehouse"),
    ] {
        let r = gatehouse(&["completions", shell], &[], None).await;
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(r.stdout.contains(marker), "{shell}: {}", r.stdout);
        assert!(
            r.stdout.contains("add-user"),
            "{shell} completes subcommands"
        );
    }
    let r = gatehouse(&["man"], &[], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(".TH gatehouse 1"), "{}", r.stdout);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let r = gatehouse(&["man", "--dir", out.to_str().unwrap()], &[], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(out.join("gatehouse-user-create.1").exists());
    assert!(out.join("gatehouse-group-add-user.1").exists());
}

// ---- the bootstrap -------------------------------------------------------------------

/// A `gatehouse serve` process over `database_url` with `password` as
/// `GATEHOUSE_ADMIN_PASSWORD`, its log in `dir/<name>.log`.
async fn start_server(
    dir: &std::path::Path,
    database_url: &str,
    password: &str,
    name: &str,
) -> Node {
    Node::start_with(database_url, dir, name, |cmd| {
        cmd.env("GATEHOUSE_ADMIN_PASSWORD", password);
    })
    .await
}

/// The status of a password grant at `node`.
async fn grant(node: &Node, username: &str, password: &str) -> StatusCode {
    client()
        .post(format!("{}/authenticate/connect/token", node.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "contensis_classic"),
            ("username", username),
            ("password", password),
        ]))
        .send()
        .await
        .expect("the token endpoint answers")
        .status()
}

const FIRST: &str = "First-Choice-71";
const SECOND: &str = "Second-Choice-82";

#[tokio::test]
async fn import_then_serve_lets_admin_sign_in_with_the_variable_and_a_restart_keeps_it() {
    let (dir, url) = fresh_database().await;
    let file = dir.path().join("people.jsonl");
    std::fs::write(
        &file,
        "{\"type\": \"group\", \"name\": \"Staff\"}\n\
         {\"type\": \"user\", \"username\": \"pat\", \"email\": \"pat@example.com\", \"groups\": [\"Staff\"]}\n",
    )
    .unwrap();
    let imported = gatehouse(
        &[
            "import",
            "--quiet",
            "--database",
            &url,
            file.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(imported.code, Some(0), "{imported:?}");

    // The database is not empty, yet the variable's password lets admin in.
    let server = start_server(dir.path(), &url, FIRST, "first").await;
    assert_eq!(grant(&server, "admin", FIRST).await, StatusCode::OK);
    assert_eq!(
        server.logged(
            "INFO",
            "created the administrator `admin` from GATEHOUSE_ADMIN_PASSWORD"
        ),
        1,
        "{}",
        server.log_text()
    );
    // SIGKILL is enough: every acknowledged write is durable.
    drop(server);

    // A second start with another password: the first stays, and one warning says why.
    let server = start_server(dir.path(), &url, SECOND, "second").await;
    assert_eq!(grant(&server, "admin", FIRST).await, StatusCode::OK);
    assert_eq!(
        grant(&server, "admin", SECOND).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        server.logged("WARN", "GATEHOUSE_ADMIN_PASSWORD is set but was ignored"),
        1,
        "{}",
        server.log_text()
    );
    assert!(
        !server.log_text().contains(SECOND),
        "the password is never logged"
    );
}

#[tokio::test]
async fn an_admin_who_cannot_sign_in_is_repaired_from_the_variable() {
    let app = TestApp::spawn().await;
    // A second administrator, so that admin may leave System Administrators and be
    // suspended; then the second one is locked out by failed logins.
    let ops = app.create_user("ops", "ops@example.com").await;
    app.put(
        "/api/security/groups/System%20Administrators/users/ops",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.delete("/api/security/groups/System%20Administrators/users/admin")
        .await
        .expect(StatusCode::NO_CONTENT);
    let ops_token = app.login("ops", PASSWORD).await;
    app.send(
        Method::POST,
        "/api/security/users/admin/actions",
        Some(&ops_token),
        Some(json!({"type": "suspend"})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    for _ in 0..5 {
        app.token(&[
            ("grant_type", "contensis_classic"),
            ("username", "ops"),
            ("password", "Wrong-Pass-000"),
        ])
        .await;
    }
    let (dir, url, _) = app.stop().await;

    let server = start_server(dir.path(), &url, FIRST, "repair").await;
    assert_eq!(grant(&server, "admin", FIRST).await, StatusCode::OK);
    assert_eq!(
        server.logged("INFO", "repaired the user `admin`"),
        1,
        "{}",
        server.log_text()
    );
    // Back in System Administrators: admin may list users; ops is left as it was.
    let r = gatehouse(
        &["user", "show", "ops", "--server", &server.base, "--json"],
        &[("GATEHOUSE_TOKEN", &admin_token(&server).await)],
        None,
    )
    .await
    .json();
    assert_eq!(r["id"], ops["id"]);
    assert_eq!(r["status"]["locked"], json!(true));
}

async fn admin_token(server: &Node) -> String {
    let r: Value = client()
        .post(format!("{}/authenticate/connect/token", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=contensis_classic&username=admin&password={}",
            enc(FIRST)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn a_user_named_admin_who_is_no_administrator_is_left_alone() {
    let app = TestApp::spawn().await;
    app.create_user("ops", "ops@example.com").await;
    app.put(
        "/api/security/groups/System%20Administrators/users/ops",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.delete("/api/security/groups/System%20Administrators/users/admin")
        .await
        .expect(StatusCode::NO_CONTENT);
    let (dir, url, _) = app.stop().await;

    let server = start_server(dir.path(), &url, FIRST, "alone").await;
    // ops can sign in, so nothing changes: admin keeps its password and stays out.
    let log = server.log_text();
    assert_eq!(
        grant(&server, "admin", FIRST).await,
        StatusCode::BAD_REQUEST,
        "{log}"
    );
    assert_eq!(
        grant(&server, "admin", ADMIN_PASSWORD).await,
        StatusCode::OK,
        "{log}"
    );
    assert_eq!(
        grant(&server, "ops", PASSWORD).await,
        StatusCode::OK,
        "{log}"
    );
    assert_eq!(
        server.logged("WARN", "GATEHOUSE_ADMIN_PASSWORD is set but was ignored"),
        1,
        "{log}"
    );
    let r = gatehouse(
        &[
            "group",
            "members",
            "System Administrators",
            "--database",
            &url,
            "--json",
        ],
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(r["totalCount"], json!(1));
    assert_eq!(r["items"][0]["username"], json!("ops"));
}
