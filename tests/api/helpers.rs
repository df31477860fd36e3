//! The test harness: [`TestApp::spawn`] starts gatehouse on 127.0.0.1:0 with a fresh
//! database, a manual clock and a known admin password, and offers request helpers
//! named after API actions.
//!
//! The database is a fresh SQLite file, or, with `GATEHOUSE_TEST_BACKEND=postgres`, a
//! fresh schema on the PostgreSQL server at `TEST_POSTGRES_URL` (see [`fresh_database`]).
//! When PostgreSQL is asked for but unreachable, tests fail rather than skip.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use gatehouse::clock::ManualClock;
use gatehouse::config::{Config, Secret, TestBackend};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};

/// The bootstrap admin's password in every test app.
pub const ADMIN_PASSWORD: &str = "Admin-Pass-123";
/// A password that satisfies the policy, for test users.
pub const PASSWORD: &str = "Sturdy-Pass-42";
/// The token issuer of every test server (see [`TestApp::spawn_on`]).
pub const TEST_ISSUER: &str = "gatehouse-tests";
/// The public URL every node of [`Node::start`] shares, as nodes behind one load
/// balancer do: their tokens then carry the same issuer.
pub const NODES_PUBLIC_URL: &str = "http://gatehouse.test";

static LOGGING: Once = Once::new();

fn init_logging() {
    LOGGING.call_once(|| {
        if gatehouse::config::test_log_enabled() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A running server for one test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, unless a test turned it off.
    pub metrics_base: Option<String>,
    /// The manual clock the server reads.
    pub clock: ManualClock,
    /// A client without default headers.
    pub http: reqwest::Client,
    /// A token of the bootstrap admin.
    pub admin: String,
    /// The database file's directory (kept alive for the test's duration).
    pub dir: Arc<tempfile::TempDir>,
    /// The database URL.
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Starts a fresh server with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a fresh server after `tweak` adjusts the configuration.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let (dir, database_url) = fresh_database().await;
        Self::spawn_on(dir, database_url, ManualClock::new(), tweak).await
    }

    /// Starts a server over an existing database (for restart tests). The URL names the
    /// same SQLite file or PostgreSQL schema again.
    pub async fn spawn_on(
        dir: Arc<tempfile::TempDir>,
        database_url: String,
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        init_logging();
        let mut config = Config::for_database(database_url.clone());
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        // Every test logs in from 127.0.0.1, many times: limits high enough never to
        // trip, but on, so the limiter's path runs. Rate-limit tests lower them.
        config.login_rate_per_ip = 1_000_000;
        config.login_burst_per_ip = 1_000_000;
        config.login_rate_per_user = 1_000_000;
        config.login_burst_per_user = 1_000_000;
        // Tests scrape metrics from the management listener; off in production.
        config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        // One issuer for every server of a test, whatever port each gets: a token must
        // survive a restart (another port) and work on a second node. By default the
        // issuer derives from the listen address (tests/api/attacks/edge.rs checks that).
        config.issuer = Some(TEST_ISSUER.to_owned());
        tweak(&mut config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (running, handle) = gatehouse::app::start(&config, Arc::new(clock.clone()), async {
            let _ = rx.await;
        })
        .await
        .expect("the server starts");
        let mut app = Self {
            base: format!("http://{}", running.addr),
            metrics_base: running.metrics_addr.map(|a| format!("http://{a}")),
            clock,
            http: crate::helpers::client(),
            admin: String::new(),
            dir,
            database_url,
            shutdown: Some(tx),
            handle: Some(handle),
        };
        app.admin = app.login("admin", ADMIN_PASSWORD).await;
        app
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, String, ManualClock) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        (
            self.dir.clone(),
            self.database_url.clone(),
            self.clock.clone(),
        )
    }

    /// An absolute URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::from(req.send().await.expect("the request is sent")).await
    }

    /// Sends a raw body with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("the request is sent")).await
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.admin.clone()), None)
            .await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.admin.clone()), Some(body))
            .await
    }

    /// PUT JSON (or nothing) as the admin.
    pub async fn put(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::PUT, path, Some(&self.admin.clone()), body)
            .await
    }

    /// PATCH JSON as the admin.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.admin.clone()), Some(body))
            .await
    }

    /// DELETE as the admin.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.admin.clone()), None)
            .await
    }

    /// HEAD as the admin.
    pub async fn head(&self, path: &str) -> Resp {
        self.send(Method::HEAD, path, Some(&self.admin.clone()), None)
            .await
    }

    /// Posts a form to the token endpoint.
    pub async fn token(&self, form: &[(&str, &str)]) -> Resp {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send_raw(
            Method::POST,
            "/authenticate/connect/token",
            None,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    /// Asks for tokens with the password grant.
    pub async fn password_grant(&self, username: &str, password: &str) -> Resp {
        self.token(&[
            ("grant_type", "contensis_classic"),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    /// Logs in with the password grant and returns the access token, or panics.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.password_grant(username, password).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "login of {username} failed: {}",
            r.body
        );
        r.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// Creates a user (as admin) with the test password; returns its JSON.
    pub async fn create_user(&self, username: &str, email: &str) -> Value {
        let r = self
            .post(
                "/api/security/users",
                json!({"username": username, "email": email, "firstName": "Test", "lastName": "User",
                       "credentials": {"password": PASSWORD}}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create user {username}: {}",
            r.body
        );
        r.body
    }

    /// Creates a group (as admin); returns its JSON.
    pub async fn create_group(&self, name: &str) -> Value {
        let r = self
            .post("/api/security/groups", json!({"name": name}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create group {name}: {}",
            r.body
        );
        r.body
    }

    /// Creates a user and returns a token for them.
    pub async fn user_with_token(&self, username: &str) -> (Value, String) {
        let user = self
            .create_user(username, &format!("{username}@example.com"))
            .await;
        let token = self.login(username, PASSWORD).await;
        (user, token)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The backend the tests run on; panics on an unknown `GATEHOUSE_TEST_BACKEND`.
pub fn backend() -> TestBackend {
    gatehouse::config::test_backend().unwrap_or_else(|e| panic!("{e}"))
}

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    matches!(backend(), TestBackend::Postgres { .. })
}

/// A temporary directory and the URL of an empty database of the test backend: a SQLite
/// file in that directory, or a new PostgreSQL schema (`gh_<epoch>_<uuid>`) reached
/// through a URL whose connections use it as their `search_path`.
pub async fn fresh_database() -> (Arc<tempfile::TempDir>, String) {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    let url = match backend() {
        TestBackend::Sqlite => format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
        TestBackend::Postgres { url } => fresh_schema(&url).await,
    };
    (dir, url)
}

/// Swept once per test process, so schemas of earlier runs do not pile up.
static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Schemas older than this (by the server's clock) belong to finished runs.
const SCHEMA_MAX_AGE_SECS: i64 = 3600;

async fn connect_server(server: &str) -> PgConnection {
    PgConnection::connect(server).await.unwrap_or_else(|e| {
        panic!(
            "GATEHOUSE_TEST_BACKEND=postgres, but PostgreSQL at {server} is unreachable \
             (set TEST_POSTGRES_URL, or start the server): {e}"
        )
    })
}

/// Creates a schema and returns `server` with `options=-c search_path=<schema>` added.
async fn fresh_schema(server: &str) -> String {
    SWEPT.get_or_init(|| sweep_old_schemas(server)).await;
    let mut conn = connect_server(server).await;
    // The server's clock names the schema, so sweeping never compares two clocks.
    let name: String =
        sqlx::query_scalar("SELECT 'gh_' || floor(extract(epoch FROM now()))::bigint || '_' || $1")
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .fetch_one(&mut conn)
            .await
            .expect("a schema name");
    conn.execute(format!("CREATE SCHEMA {name}").as_str())
        .await
        .expect("CREATE SCHEMA");
    let _ = conn.close().await;
    let sep = if server.contains('?') { '&' } else { '?' };
    // `public` second: where shared extensions (pg_trgm) live.
    format!("{server}{sep}options=-c%20search_path%3D{name},public")
}

/// Drops the test schemas of runs that finished (or died) long ago.
async fn sweep_old_schemas(server: &str) {
    let mut conn = connect_server(server).await;
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^gh_[0-9]+_[0-9a-f]+$' \
         AND split_part(nspname, '_', 2)::bigint < extract(epoch FROM now()) - $1",
    )
    .bind(SCHEMA_MAX_AGE_SECS)
    .fetch_all(&mut conn)
    .await
    .expect("listing old test schemas");
    for name in old {
        // Another process may be sweeping the same schema; either drop is fine.
        let _ = conn
            .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
            .await;
    }
    let _ = conn.close().await;
}

/// Percent-encodes a path segment or form value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response with its body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Reads a response.
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts the status and, for errors with a body, the error envelope.
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if status.as_u16() >= 400 && !self.text.is_empty() {
            assert_error_shape(&self.body);
        }
        self
    }
}

/// Asserts the spec's error envelope: `logId` (a UUID), `message`, `data`, `type: error`.
#[track_caller]
pub fn assert_error_shape(body: &Value) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    let log_id = obj.get("logId").and_then(Value::as_str).expect("logId");
    assert!(
        uuid::Uuid::parse_str(log_id).is_ok(),
        "logId is a UUID: {log_id}"
    );
    assert!(
        obj.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "message: {body}"
    );
    assert!(obj.contains_key("data"), "data: {body}");
    assert_eq!(obj.get("type"), Some(&json!("error")), "type: {body}");
}

// ---- real server processes ----

/// How long a node may take to answer `/ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One `gatehouse serve` process, killed when dropped.
pub struct Node {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
    log: PathBuf,
}

impl Node {
    /// Starts a node on a free port over `database_url` and waits until it is ready.
    pub async fn start(database_url: &str, dir: &tempfile::TempDir, name: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.path().join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--listen", &listen, "--database", database_url])
            .args(["--public-url", NODES_PUBLIC_URL])
            .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Tests log in many times from one address: no rate limits.
            .env("GATEHOUSE_LOGIN_RATE_PER_IP", "0")
            .env("GATEHOUSE_LOGIN_RATE_PER_USER", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the gatehouse binary starts");
        let mut node = Node {
            base: format!("http://{listen}"),
            child,
            log,
        };
        node.wait_ready().await;
        node
    }

    /// Polls `GET /ready` until it answers 200, the process exits, or time runs out.
    async fn wait_ready(&mut self) {
        let http = crate::helpers::client_builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a client");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{}/ready", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "gatehouse at {} exited with {status} before it was ready:\n{}",
                    self.base,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse at {} was not ready within {START_TIMEOUT:?}:\n{}",
                self.base,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL, as a power cut would, and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process wrote to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for tests (with the TLS provider the crate's clients use installed).
pub fn client() -> reqwest::Client {
    client_builder().build().expect("an HTTP client")
}

/// A client builder for tests that set options.
pub fn client_builder() -> reqwest::ClientBuilder {
    gatehouse::app::install_tls_provider();
    reqwest::Client::builder()
}
