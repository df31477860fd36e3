//! The test harness.
//!
//! - [`TestApp::spawn`] assembles gatehouse over a fresh database, with a manual clock and
//!   a known admin password, and calls its router in-process
//!   (`tower::ServiceExt::oneshot`), with the client address `127.0.0.1` as the listener
//!   would give it. [`TestApp::serve`] puts the same app behind a real listener on
//!   127.0.0.1:0, for the tests that need one (raw sockets, other processes, URLs the
//!   server hands out). Both offer the same request helpers, named after API actions.
//! - [`Node`] runs the real `gatehouse serve` binary, for the process, crash, multi-node
//!   and command-line tests.
//!
//! The database is a fresh SQLite file, or, with `GATEHOUSE_TEST_BACKEND=postgres`, a
//! fresh schema on the PostgreSQL server at `TEST_POSTGRES_URL` (see [`fresh_database`]).
//! When PostgreSQL is asked for but unreachable, tests fail rather than skip.
//!
//! A test starts with the bootstrap admin signed in ([`TestApp::admin`]). The database is
//! first made ready as a first start makes it (migrations, the built-in group, a signing
//! key, `admin`), and the admin signs in with the password grant, on services of their
//! own ([`prepare`]): the server under test starts with no login in its rate limits or
//! metrics. On SQLite that is done once per test process ([`Template`]): each test gets
//! a copy of the prepared file, and the token is valid on every copy (same signing key,
//! same admin, same issuer), so a test pays for neither migrations nor argon2. A test
//! whose settings change the token (issuer, lifetimes) or the bootstrap, a restart, and
//! every test on PostgreSQL, is prepared on its own. No token is ever minted outside
//! the token endpoint.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use gatehouse::app::App;
use gatehouse::clock::{Clock as _, ManualClock, Millis};
use gatehouse::config::{Config, Secret, TestBackend};
use gatehouse::service::Services;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tower::ServiceExt as _;

/// The bootstrap admin's password in every test app.
pub const ADMIN_PASSWORD: &str = "Admin-Pass-123";
/// A password that satisfies the policy, for test users.
pub const PASSWORD: &str = "Sturdy-Pass-42";
/// The token issuer of every test server (see [`TestApp::spawn_on`]).
pub const TEST_ISSUER: &str = "gatehouse-tests";
/// The public URL every node of [`Node::start`] shares, as nodes behind one load
/// balancer do: their tokens then carry the same issuer.
pub const NODES_PUBLIC_URL: &str = "http://gatehouse.test";

/// The client address an in-process request comes from, as a listener would report a
/// client on the same machine.
pub const CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50_000);

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

/// How a test reaches its server.
enum Transport {
    /// The apps, called in-process.
    InProcess {
        public: App,
        /// The management app, unless `metrics_listen` was turned off.
        metrics: Option<App>,
    },
    /// A real listener ([`TestApp::serve`]).
    Socket {
        base: String,
        metrics_base: Option<String>,
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    },
}

/// A server for one test.
pub struct TestApp {
    /// The manual clock the server reads.
    pub clock: ManualClock,
    /// A client without default headers (for a served app: [`TestApp::url`]).
    pub http: reqwest::Client,
    /// A token of the bootstrap admin.
    pub admin: String,
    /// The database file's directory (kept alive for the test's duration).
    pub dir: Arc<tempfile::TempDir>,
    /// The database URL.
    pub database_url: String,
    /// The server's services, for tests that reach behind the HTTP API.
    pub services: Arc<Services>,
    transport: Transport,
}

/// Where a [`TestApp`] gets its database.
enum Database {
    /// A fresh one, a copy of the [`Template`] when it fits.
    Fresh,
    /// A fresh one prepared for this app alone.
    Separate,
    /// One that exists (a restart, a second node).
    Existing(Arc<tempfile::TempDir>, String),
}

/// The harness's configuration of a test server, before a test's own changes.
fn base_config(database_url: &str) -> Config {
    let mut config = Config::for_database(database_url.to_owned());
    config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    // Every test logs in from 127.0.0.1, many times: limits high enough never to
    // trip, but on, so the limiter's path runs. Rate-limit tests lower them.
    config.login_rate_per_ip = 1_000_000;
    config.login_burst_per_ip = 1_000_000;
    config.login_rate_per_user = 1_000_000;
    config.login_burst_per_user = 1_000_000;
    // Tests scrape metrics from the management app; off in production.
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    // One issuer for every server of a test, whatever port each gets: a token must
    // survive a restart (another port) and work on a second node. By default the
    // issuer derives from the listen address (tests/api/attacks/edge.rs checks that).
    config.issuer = Some(TEST_ISSUER.to_owned());
    config
}

impl TestApp {
    /// Starts a fresh server with default settings, called in-process.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a fresh server after `tweak` adjusts the configuration, called in-process.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start(Database::Fresh, ManualClock::new(), tweak, false).await
    }

    /// Starts a fresh server whose database is prepared for it alone: another
    /// installation, with a signing key of its own. ([`TestApp::spawn`]'s databases
    /// may be copies of one prepared database, and then share its key.)
    pub async fn spawn_separate() -> Self {
        Self::start(Database::Separate, ManualClock::new(), |_| {}, false).await
    }

    /// Starts a server over an existing database (for restart tests), called
    /// in-process. The URL names the same SQLite file or PostgreSQL schema again.
    pub async fn spawn_on(
        dir: Arc<tempfile::TempDir>,
        database_url: String,
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start(Database::Existing(dir, database_url), clock, tweak, false).await
    }

    /// Starts a fresh server on a real listener (127.0.0.1:0, and the metrics listener
    /// on another port): every request goes over TCP.
    pub async fn serve() -> Self {
        Self::serve_with(|_| {}).await
    }

    /// [`TestApp::serve`] after `tweak` adjusts the configuration.
    pub async fn serve_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start(Database::Fresh, ManualClock::new(), tweak, true).await
    }

    async fn start(
        database: Database,
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
        listen: bool,
    ) -> Self {
        init_logging();
        let (dir, database_url, copied) = match database {
            Database::Fresh | Database::Separate => {
                let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
                let url = fresh_url(&dir).await;
                (dir, url, matches!(database, Database::Fresh))
            }
            Database::Existing(dir, url) => (dir, url, false),
        };
        let mut config = base_config(&database_url);
        tweak(&mut config);
        // Bound before the services start, as `app::start` does: without an issuer of
        // its own, a served app's tokens name the address actually bound.
        let listeners = if listen {
            let public = tokio::net::TcpListener::bind(config.listen)
                .await
                .expect("a listener");
            let metrics = match config.metrics_listen {
                Some(at) => Some(
                    tokio::net::TcpListener::bind(at)
                        .await
                        .expect("a metrics listener"),
                ),
                None => None,
            };
            Some((public, metrics))
        } else {
            None
        };
        let listening = listeners.as_ref().map_or(config.listen, |(l, _)| {
            l.local_addr().expect("a bound address")
        });
        let template = if copied && !on_postgres() {
            Template::get()
                .await
                .copy_if_fits(&config, &clock, dir.path())
        } else {
            None
        };
        let (store, admin) = match template {
            Some(token) => (open_store(&config).await, token),
            None => prepare(&config, &clock, listening).await,
        };
        let assembled =
            gatehouse::app::assemble(store, &config, Arc::new(clock.clone()), listening)
                .await
                .expect("the server starts");
        let services = Arc::clone(&assembled.services);
        let transport = match listeners {
            None => Transport::InProcess {
                public: assembled.public,
                metrics: config.metrics_listen.map(|_| assembled.metrics),
            },
            Some((public, metrics)) => {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let (running, handle) =
                    gatehouse::app::serve(assembled, public, metrics, None, async {
                        let _ = rx.await;
                    })
                    .expect("the server serves");
                Transport::Socket {
                    base: format!("http://{}", running.addr),
                    metrics_base: running.metrics_addr.map(|a| format!("http://{a}")),
                    shutdown: Some(tx),
                    handle: Some(handle),
                }
            }
        };
        Self {
            clock,
            http: client(),
            admin,
            dir,
            database_url,
            services,
            transport,
        }
    }

    /// Stops the server: a served one stops listening and finishes its requests; then
    /// the store is closed and its background threads joined. Returns what a restart
    /// on the same database needs.
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, String, ManualClock) {
        if let Transport::Socket {
            shutdown, handle, ..
        } = &mut self.transport
        {
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
            }
            if let Some(h) = handle.take() {
                let _ = h.await;
            }
        }
        self.services.close().await;
        (
            self.dir.clone(),
            self.database_url.clone(),
            self.clock.clone(),
        )
    }

    /// `http://127.0.0.1:PORT` of a served app.
    #[track_caller]
    pub fn base(&self) -> &str {
        match &self.transport {
            Transport::Socket { base, .. } => base,
            Transport::InProcess { .. } => {
                panic!("this app has no listener: start it with TestApp::serve")
            }
        }
    }

    /// `http://127.0.0.1:PORT` of a served app's metrics listener, unless the test
    /// turned it off.
    #[track_caller]
    pub fn metrics_base(&self) -> Option<&str> {
        match &self.transport {
            Transport::Socket { metrics_base, .. } => metrics_base.as_deref(),
            Transport::InProcess { .. } => {
                panic!("this app has no listener: start it with TestApp::serve")
            }
        }
    }

    /// Whether the management app (`/metrics`) is on.
    pub fn has_metrics(&self) -> bool {
        match &self.transport {
            Transport::Socket { metrics_base, .. } => metrics_base.is_some(),
            Transport::InProcess { metrics, .. } => metrics.is_some(),
        }
    }

    /// An absolute URL for a path of a served app.
    #[track_caller]
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// The URL the server names a path by (in links it hands out: `--public-url`, else
    /// the address it listens at; in-process, the configured listen address).
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.services.settings().public_base, path)
    }

    /// A request to the public app, to be given headers and a body.
    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            app: self,
            metrics: false,
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// A GET of the management app (`/metrics`), without credentials.
    pub async fn get_metrics(&self, path: &str) -> Resp {
        Req {
            metrics: true,
            ..self.request(Method::GET, path)
        }
        .send()
        .await
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.request(method, path);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await
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
            .request(method, path)
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        req.send().await
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.admin), None).await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.admin), Some(body))
            .await
    }

    /// PUT JSON (or nothing) as the admin.
    pub async fn put(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::PUT, path, Some(&self.admin), body).await
    }

    /// PATCH JSON as the admin.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.admin), Some(body))
            .await
    }

    /// DELETE as the admin.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.admin), None)
            .await
    }

    /// HEAD as the admin.
    pub async fn head(&self, path: &str) -> Resp {
        self.send(Method::HEAD, path, Some(&self.admin), None).await
    }

    /// Posts a form to the token endpoint.
    pub async fn token(&self, form: &[(&str, &str)]) -> Resp {
        self.send_raw(
            Method::POST,
            "/authenticate/connect/token",
            None,
            "application/x-www-form-urlencoded",
            form_body(form).into_bytes(),
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
        access_token(&self.password_grant(username, password).await, username)
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
        if let Transport::Socket { shutdown, .. } = &mut self.transport {
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// A request being built ([`TestApp::request`]).
pub struct Req<'a> {
    app: &'a TestApp,
    /// To the management app rather than the public one.
    metrics: bool,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl Req<'_> {
    /// Adds a header (another value if the name is there already).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body, labelled `application/json` unless a content type is set.
    pub fn json(mut self, body: &Value) -> Self {
        if !self.headers.contains_key("content-type") {
            self = self.header("content-type", "application/json");
        }
        self.body(serde_json::to_vec(body).expect("JSON"))
    }

    /// A body, as it is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends it and reads the whole response.
    pub async fn send(self) -> Resp {
        match &self.app.transport {
            Transport::InProcess { public, metrics } => {
                let app = if self.metrics {
                    metrics.as_ref().expect("the metrics app is on")
                } else {
                    public
                };
                call(app, self.into_request()).await
            }
            Transport::Socket {
                base, metrics_base, ..
            } => {
                let base = if self.metrics {
                    metrics_base.as_ref().expect("the metrics listener is on")
                } else {
                    base
                };
                let mut req = self
                    .app
                    .http
                    .request(self.method, format!("{base}{}", self.path))
                    .headers(self.headers);
                if let Some(body) = self.body {
                    req = req.body(body);
                }
                Resp::from(req.send().await.expect("the request is sent")).await
            }
        }
    }

    /// The request as a listener hands it to the app: the target in origin form as
    /// reqwest would send it (characters a URL cannot carry percent-encoded the same way),
    /// the headers a client adds, and the peer address.
    fn into_request(self) -> axum::http::Request<Body> {
        let url = reqwest::Url::parse(&format!("http://127.0.0.1{}", self.path))
            .unwrap_or_else(|e| panic!("{:?} is not a path: {e}", self.path));
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let length = self.body.as_ref().map(Vec::len);
        let mut req = axum::http::Request::builder()
            .method(self.method)
            .uri(target)
            .body(self.body.map_or_else(Body::empty, Body::from))
            .expect("a request");
        let headers = req.headers_mut();
        headers.insert("host", HeaderValue::from_static("127.0.0.1"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        if let Some(length) = length {
            headers.insert("content-length", HeaderValue::from(length));
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        req.extensions_mut().insert(ConnectInfo(CLIENT));
        req
    }
}

/// Calls an app in-process and reads the whole response.
async fn call(app: &App, req: axum::http::Request<Body>) -> Resp {
    let response = app.clone().oneshot(req).await.expect("the app answers");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the body is read");
    Resp::new(parts.status, parts.headers, &bytes)
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_body(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The access token of a successful grant, or a panic naming `who`.
#[track_caller]
fn access_token(r: &Resp, who: &str) -> String {
    assert_eq!(
        r.status,
        StatusCode::OK,
        "login of {who} failed: {}",
        r.body
    );
    r.body["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

// ---- the prepared database ----

/// Opens `config`'s database as `app::start` does.
async fn open_store(config: &Config) -> Arc<dyn gatehouse::store::Store> {
    gatehouse::app::open_store_with_pool(config.database_url.expose(), config.database_pool_size)
        .await
        .expect("the database opens")
}

/// Opens `config`'s database and makes it ready as a first start of the server makes it
/// (migrations, the built-in group, a signing key, the administrator from the admin
/// password); returns the open store and a token of `admin` from the password grant.
/// Both happen on services of their own, listening (for their settings) at `listening`,
/// dropped before this returns: the server under test, assembled over the same store,
/// starts with no login in its rate limits or metrics. (The store is opened once: on
/// PostgreSQL every opening runs sqlx's migrator, which holds a lock over the whole
/// database, so tests running at once would queue for it twice.)
async fn prepare(
    config: &Config,
    clock: &ManualClock,
    listening: SocketAddr,
) -> (Arc<dyn gatehouse::store::Store>, String) {
    let store = open_store(config).await;
    // What `app::assemble` does, but none of its background work (key reloads, audit
    // retention, webhook delivery): nothing of these services outlives this function.
    let services = Arc::new(
        Services::start(
            Arc::clone(&store),
            Arc::new(clock.clone()),
            config.settings_at(listening),
        )
        .await
        .expect("the services start"),
    );
    gatehouse::app::bootstrap_admin(&services, config)
        .await
        .expect("the administrator is bootstrapped");
    let public = tower::Layer::layer(
        &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
        gatehouse::http::router(services),
    );
    let form = form_body(&[
        ("grant_type", "contensis_classic"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ]);
    let mut req = axum::http::Request::post("/authenticate/connect/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("a request");
    req.extensions_mut().insert(ConnectInfo(CLIENT));
    let token = access_token(&call(&public, req).await, "admin");
    (store, token)
}

/// What of a configuration shapes the prepared database and the admin's token: a test
/// whose settings differ here is prepared on its own.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    admin_password: Option<String>,
    issuer: Option<String>,
    public_url: Option<String>,
    token_ttl_secs: i64,
    refresh_ttl_secs: i64,
}

impl Shape {
    fn of(c: &Config) -> Self {
        Self {
            admin_password: c.admin_password.as_ref().map(|p| p.expose().to_owned()),
            issuer: c.issuer.clone(),
            public_url: c.public_url.as_ref().map(|u| u.as_str().to_owned()),
            token_ttl_secs: c.token_ttl_secs,
            refresh_ttl_secs: c.refresh_ttl_secs,
        }
    }
}

/// A template older than this is not used: its token would be too close to expiry for
/// tests that move their clock.
const TEMPLATE_MAX_AGE: Millis = 10 * 60 * 1000;

/// The SQLite database every test starts from, prepared once per test process
/// ([`prepare`]), with its admin token.
struct Template {
    /// The database file, and its WAL if it kept one.
    db: Vec<u8>,
    wal: Option<Vec<u8>>,
    admin: String,
    shape: Shape,
    made_at: Millis,
}

static TEMPLATE: tokio::sync::OnceCell<Template> = tokio::sync::OnceCell::const_new();

const DB_FILE: &str = "gatehouse.db";

impl Template {
    async fn get() -> &'static Template {
        TEMPLATE.get_or_init(Self::make).await
    }

    async fn make() -> Template {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join(DB_FILE).display());
        let config = base_config(&url);
        let clock = ManualClock::new();
        let (store, admin) = prepare(&config, &clock, config.listen).await;
        store.close().await;
        drop(store);
        // Every connection is closed now, so the WAL is normally folded in and gone.
        let read = |name: String| std::fs::read(dir.path().join(name)).ok();
        Template {
            db: read(DB_FILE.to_owned()).expect("the template database"),
            wal: read(format!("{DB_FILE}-wal")).filter(|w| !w.is_empty()),
            admin,
            shape: Shape::of(&config),
            made_at: clock.now_ms(),
        }
    }

    /// Copies the template into `dir` as the database of `config` and returns the admin
    /// token, if the template fits `config` and is recent enough for `clock`.
    fn copy_if_fits(&self, config: &Config, clock: &ManualClock, dir: &Path) -> Option<String> {
        let fits = Shape::of(config) == self.shape
            && clock.now_ms() - self.made_at < TEMPLATE_MAX_AGE
            && config.database_url.expose() == format!("sqlite://{}", dir.join(DB_FILE).display());
        if !fits {
            return None;
        }
        std::fs::write(dir.join(DB_FILE), &self.db).expect("the database is copied");
        if let Some(wal) = &self.wal {
            std::fs::write(dir.join(format!("{DB_FILE}-wal")), wal).expect("the WAL is copied");
        }
        Some(self.admin.clone())
    }
}

// ---- databases ----

/// The backend the tests run on; panics on an unknown `GATEHOUSE_TEST_BACKEND`.
pub fn backend() -> TestBackend {
    gatehouse::config::test_backend().unwrap_or_else(|e| panic!("{e}"))
}

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    matches!(backend(), TestBackend::Postgres { .. })
}

/// The URL of an empty database of the test backend: a SQLite file in `dir`, or a new
/// PostgreSQL schema.
async fn fresh_url(dir: &tempfile::TempDir) -> String {
    match backend() {
        TestBackend::Sqlite => format!("sqlite://{}", dir.path().join(DB_FILE).display()),
        TestBackend::Postgres { url } => fresh_schema(&url).await,
    }
}

/// A temporary directory and the URL of an empty database of the test backend: a SQLite
/// file in that directory, or a new PostgreSQL schema (`gh_<epoch>_<uuid>`) reached
/// through a URL whose connections use it as their `search_path`.
pub async fn fresh_database() -> (Arc<tempfile::TempDir>, String) {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    let url = fresh_url(&dir).await;
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

// ---- responses ----

/// A response with its body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Reads a response that came over a socket.
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap_or_default();
        Self::new(status, headers, &bytes)
    }

    fn new(status: StatusCode, headers: HeaderMap, bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes).into_owned();
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

/// Polls `check` every few milliseconds until it gives a value, or panics with `what`
/// after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- real server processes ----

/// How long a node may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables of the test's environment a `gatehouse` process would read.
pub const CLEARED_ENV: &[&str] = &[
    "GATEHOUSE_DATABASE_URL",
    "GATEHOUSE_TOKEN",
    "GATEHOUSE_CLIENT_ID",
    "GATEHOUSE_CLIENT_SECRET",
    "GATEHOUSE_ADMIN_PASSWORD",
    "GATEHOUSE_LISTEN",
    "GATEHOUSE_CONFIG",
    "GATEHOUSE_ISSUER",
    "GATEHOUSE_PUBLIC_URL",
    "GATEHOUSE_LOCKOUT_THRESHOLD",
    "GATEHOUSE_TOKEN_TTL_SECS",
    "GATEHOUSE_LOG_JSON",
    "GATEHOUSE_METRICS_LISTEN",
    "RUST_LOG",
    "NO_COLOR",
];

/// The `gatehouse` binary with none of [`CLEARED_ENV`] inherited.
pub fn gatehouse_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for v in CLEARED_ENV {
        cmd.env_remove(v);
    }
    cmd
}

/// One `gatehouse serve --log-json` process on 127.0.0.1:0, its stderr in a file; killed
/// when dropped. The one way tests start server processes.
pub struct Node {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The metrics listener's address, when `--metrics-listen` was given.
    pub metrics_addr: Option<String>,
    child: Child,
    log: PathBuf,
}

impl Node {
    /// A node of a cluster: over `database_url`, with the shared public URL, the test
    /// admin password and no login rate limits (tests log in many times from one
    /// address).
    pub async fn start(database_url: &str, dir: &tempfile::TempDir, name: &str) -> Node {
        Self::start_with(database_url, dir.path(), name, |cmd| {
            cmd.args(["--public-url", NODES_PUBLIC_URL])
                .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("GATEHOUSE_LOGIN_RATE_PER_IP", "0")
                .env("GATEHOUSE_LOGIN_RATE_PER_USER", "0");
        })
        .await
    }

    /// `gatehouse serve --log-json --listen 127.0.0.1:0 --database URL`, after
    /// `configure` adds arguments and environment (the log is written to
    /// `dir/<name>.log`). Returns once the process logs where it listens (and, with
    /// `--metrics-listen`, where it serves metrics): the ports come from the log, so no
    /// other process can take one between a probe and the bind.
    pub async fn start_with(
        database_url: &str,
        dir: &Path,
        name: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Node {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = gatehouse_command();
        cmd.args(["serve", "--log-json", "--listen", "127.0.0.1:0"])
            .args(["--database", database_url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        configure(&mut cmd);
        let wants_metrics = cmd.get_args().any(|a| a == "--metrics-listen");
        let child = cmd.spawn().expect("the gatehouse binary starts");
        let mut node = Node {
            base: String::new(),
            addr: String::new(),
            metrics_addr: None,
            child,
            log,
        };
        let addr_of = |node: &Node, message: &str| {
            node.log_lines().iter().find_map(|l| {
                (l["fields"]["message"] == message)
                    .then(|| l["fields"]["addr"].as_str().map(str::to_owned))
                    .flatten()
            })
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let listening = addr_of(&node, "gatehouse listening");
            let metrics = addr_of(&node, "serving /metrics");
            if let Some(addr) = listening {
                if !wants_metrics || metrics.is_some() {
                    node.base = format!("http://{addr}");
                    node.addr = addr;
                    node.metrics_addr = metrics;
                    return node;
                }
            }
            if let Some(status) = node.exited() {
                panic!(
                    "gatehouse {name} exited with {status} before it listened:\n{}",
                    node.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse {name} was not listening within {START_TIMEOUT:?}:\n{}",
                node.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Kills the process with SIGKILL, as a power cut would, and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through kill(1): the crate has no unsafe code for libc).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (at most `limit`) for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {limit:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the process wrote to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's JSON lines.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many JSON log lines at `level` have a message containing `needle`.
    pub fn logged(&self, level: &str, needle: &str) -> usize {
        self.log_lines()
            .iter()
            .filter(|l| {
                l["level"] == level
                    && l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(needle))
            })
            .count()
    }

    /// Waits (at most `limit`) for a log line whose message contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, limit: Duration) {
        eventually(limit, &format!("a log line with {needle:?}"), || async {
            self.log_lines()
                .iter()
                .any(|l| {
                    l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(needle))
                })
                .then_some(())
        })
        .await;
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
