//! The test harness: [`TestApp::spawn`] starts gatehouse on 127.0.0.1:0 with a fresh
//! SQLite file, a manual clock and a known admin password, and offers request helpers
//! named after API actions.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Once};

use gatehouse::clock::ManualClock;
use gatehouse::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The bootstrap admin's password in every test app.
pub const ADMIN_PASSWORD: &str = "Admin-Pass-123";
/// A password that satisfies the policy, for test users.
pub const PASSWORD: &str = "Sturdy-Pass-42";

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
        let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let database_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        Self::spawn_on(dir, database_url, ManualClock::new(), tweak).await
    }

    /// Starts a server over an existing database (for restart tests).
    pub async fn spawn_on(
        dir: Arc<tempfile::TempDir>,
        database_url: String,
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        init_logging();
        let mut config = Config::for_database(database_url.clone());
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        tweak(&mut config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (running, handle) = gatehouse::app::start(&config, Arc::new(clock.clone()), async {
            let _ = rx.await;
        })
        .await
        .expect("the server starts");
        let mut app = Self {
            base: format!("http://{}", running.addr),
            clock,
            http: reqwest::Client::new(),
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

    /// Logs in with the password grant and returns the access token, or panics.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .token(&[
                ("grant_type", "contensis_classic"),
                ("username", username),
                ("password", password),
            ])
            .await;
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
    async fn from(r: reqwest::Response) -> Self {
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
