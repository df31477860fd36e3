//! Webhooks (docs/audit.md): a receiver run by the test on 127.0.0.1 gets every event
//! exactly once, signed, in order, after having been down for a while; a delivery that
//! keeps failing for 24 hours is marked failed with its last error; two nodes on one
//! database never deliver the same event twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::TestApp;

/// What the receiver got: (signature header, body).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that answers 500 while `up` is false.
struct Receiver {
    url: String,
    up: Arc<AtomicBool>,
    got: Received,
}

impl Receiver {
    async fn start(up: bool) -> Self {
        let up = Arc::new(AtomicBool::new(up));
        let got: Received = Arc::default();
        let (u, g) = (up.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (u, g) = (u.clone(), g.clone());
                async move {
                    if !u.load(Ordering::SeqCst) {
                        return AxumStatus::INTERNAL_SERVER_ERROR;
                    }
                    let sig = headers
                        .get("x-gatehouse-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    g.lock().unwrap().push((sig, body.to_vec()));
                    AxumStatus::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, up, got }
    }

    /// The event bodies received so far.
    fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// Waits until `n` events arrived (or panics after 20 s).
    async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.got.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events arrived",
                self.got.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks a signature header as a receiver would (docs/audit.md).
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn fast_app() -> TestApp {
    TestApp::spawn_with(|c| c.webhook_poll_ms = 100).await
}

async fn register(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let r = app
        .post(
            "/api/security/webhooks",
            json!({"url": url, "eventTypes": types}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Polls `check` every 50 ms for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_once_signed_and_in_order() {
    let app = fast_app().await;
    let receiver = Receiver::start(false).await;
    let (hook, secret) = register(&app, &receiver.url, json!(["group.created"])).await;
    for name in ["A", "B", "C"] {
        app.create_group(name).await;
    }
    // Not subscribed: never delivered.
    app.create_user("ursula", "ursula@example.com").await;
    // The receiver answers 500: the first delivery is retried, the queue waits behind it.
    let failed_once = || async {
        let r = app
            .get(&format!(
                "/api/security/webhooks/{hook}/deliveries?state=pending"
            ))
            .await;
        r.body
            .as_array()
            .and_then(|a| a.first())
            .is_some_and(|d| d["attempts"].as_i64() >= Some(1) && d["lastError"] == "HTTP 500")
    };
    eventually("a failed attempt", failed_once).await;
    assert!(receiver.events().is_empty());
    // Back up; retries come after their backoff (the server's clock is the test's).
    receiver.up.store(true, Ordering::SeqCst);
    app.clock.advance_ms(20 * 60_000);
    receiver.wait_for(3).await;
    // Nothing more arrives: every event exactly once.
    app.clock.advance_ms(20 * 60_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = receiver.events();
    assert_eq!(events.len(), 3, "{events:#?}");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["target"]["groupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C"], "in order");
    assert!(events.iter().all(|e| e["type"] == "group.created"));
    for (sig, body) in receiver.got.lock().unwrap().iter() {
        assert!(verify(&secret, sig, body), "bad signature {sig}");
        assert!(!verify("another-secret", sig, body));
    }
    let pending = app
        .get(&format!(
            "/api/security/webhooks/{hook}/deliveries?state=pending"
        ))
        .await;
    assert_eq!(pending.body, json!([]));
}

#[tokio::test]
async fn a_delivery_failing_for_a_day_is_marked_failed_with_its_last_error() {
    let mut app = fast_app().await;
    let receiver = Receiver::start(false).await;
    let (hook, _) = register(&app, &receiver.url, json!(["group.created"])).await;
    app.create_group("Doomed").await;
    eventually("a first failure", || async {
        let r = app
            .get(&format!(
                "/api/security/webhooks/{hook}/deliveries?state=pending"
            ))
            .await;
        r.body
            .as_array()
            .is_some_and(|a| a.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1)))
    })
    .await;
    app.clock.advance_ms(25 * 3_600_000);
    // The admin's token expired meanwhile.
    app.admin = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    eventually("the delivery to be marked failed", || async {
        let r = app
            .get(&format!(
                "/api/security/webhooks/{hook}/deliveries?state=failed"
            ))
            .await;
        r.body.as_array().is_some_and(|a| {
            a.len() == 1 && a[0]["state"] == "failed" && a[0]["lastError"] == "HTTP 500"
        })
    })
    .await;
    // The queue moves on: a later event is delivered once the receiver is back.
    receiver.up.store(true, Ordering::SeqCst);
    app.create_group("Later").await;
    receiver.wait_for(1).await;
    assert_eq!(receiver.events()[0]["target"]["groupName"], "Later");
}

#[tokio::test]
async fn two_nodes_on_one_database_never_deliver_an_event_twice() {
    let app = fast_app().await;
    let other = TestApp::spawn_on(
        app.dir.clone(),
        app.database_url.clone(),
        app.clock.clone(),
        |c| c.webhook_poll_ms = 100,
    )
    .await;
    let receiver = Receiver::start(true).await;
    register(&app, &receiver.url, json!(["group.created"])).await;
    let n = 30;
    for i in 0..n {
        let node = if i % 2 == 0 { &app } else { &other };
        node.create_group(&format!("G{i}")).await;
    }
    receiver.wait_for(n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = receiver.events();
    let ids: HashSet<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(events.len(), n, "duplicates: {}", events.len() - ids.len());
    assert_eq!(ids.len(), n);
}

/// A raw receiver whose behaviour the test switches: 0 closes each connection at once,
/// 1 reads the request and never answers, 2 answers 204 and records the body.
struct RawReceiver {
    url: String,
    mode: Arc<std::sync::atomic::AtomicU8>,
    got: Arc<Mutex<Vec<String>>>,
}

impl RawReceiver {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let (m, g) = (mode.clone(), got.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (m, g) = (m.clone(), g.clone());
                tokio::spawn(async move {
                    match m.load(Ordering::SeqCst) {
                        0 => drop(sock),
                        1 => {
                            let mut buf = vec![0u8; 65536];
                            let _ = sock.read(&mut buf).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        _ => {
                            let mut buf = vec![0u8; 65536];
                            let mut req = Vec::new();
                            // Read headers and the body (Content-Length).
                            loop {
                                let Ok(n) = sock.read(&mut buf).await else {
                                    return;
                                };
                                if n == 0 {
                                    return;
                                }
                                req.extend_from_slice(&buf[..n]);
                                let text = String::from_utf8_lossy(&req).to_string();
                                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                                    let len = head
                                        .lines()
                                        .find_map(|l| {
                                            l.to_ascii_lowercase()
                                                .strip_prefix("content-length:")
                                                .map(|v| v.trim().parse::<usize>().unwrap())
                                        })
                                        .unwrap_or(0);
                                    if body.len() >= len {
                                        g.lock().unwrap().push(body.to_owned());
                                        break;
                                    }
                                }
                            }
                            let _ = sock
                                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                                .await;
                        }
                    }
                });
            }
        });
        Self { url, mode, got }
    }
}

/// The last error of the oldest pending delivery, once it has `attempts` attempts.
async fn last_error_after(app: &TestApp, hook: &str, attempts: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app
            .get(&format!(
                "/api/security/webhooks/{hook}/deliveries?state=pending"
            ))
            .await;
        if let Some(d) = r.body.as_array().and_then(|a| a.first())
            && d["attempts"].as_i64() >= Some(attempts)
        {
            return d["lastError"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no attempt {attempts}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_that_closes_or_hangs_is_retried_and_never_blocks_a_request() {
    let app = fast_app().await;
    let receiver = RawReceiver::start().await;
    let (hook, _) = register(&app, &receiver.url, json!(["group.created"])).await;
    app.create_group("Patient").await;
    let closed = last_error_after(&app, &hook, 1).await;
    assert!(!closed.is_empty(), "a closed connection is an error");
    // Now it hangs: the delivery times out; meanwhile requests are answered at once.
    receiver.mode.store(1, Ordering::SeqCst);
    app.clock.advance_ms(20 * 60_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    app.create_group("Unhindered").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a hanging receiver slowed a request: {:?}",
        started.elapsed()
    );
    assert_eq!(last_error_after(&app, &hook, 2).await, "timed out");
    // Back to normal: both events arrive, once each, in order.
    receiver.mode.store(2, Ordering::SeqCst);
    app.clock.advance_ms(20 * 60_000);
    eventually("both deliveries", || async {
        receiver.got.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<Value> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let names: Vec<&str> = got
        .iter()
        .map(|e| e["target"]["groupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Patient", "Unhindered"]);
}

#[tokio::test]
async fn retention_removes_old_events_but_keeps_those_still_to_be_delivered() {
    let app = TestApp::spawn_with(|c| c.audit_retention_days = 1).await;
    let receiver = Receiver::start(false).await;
    register(&app, &receiver.url, json!(["group.created"])).await;
    app.create_group("Kept").await;
    app.create_user("gone", "gone@example.com").await;
    let (dir, url, clock) = app.stop().await;
    clock.advance_ms(2 * 86_400_000);
    // The retention task runs when the server starts, then hourly.
    let app = TestApp::spawn_on(dir, url, clock, |c| c.audit_retention_days = 1).await;
    eventually("old events to go", || async {
        let r = app.get("/api/security/audit?type=user.created").await;
        r.body["totalCount"] == 0
    })
    .await;
    // The undelivered group.created stays until its endpoint has it.
    let r = app.get("/api/security/audit?type=group.created").await;
    assert_eq!(r.body["totalCount"], 1, "{}", r.body);
    // New events are kept.
    app.create_user("fresh", "fresh@example.com").await;
    let r = app
        .get("/api/security/audit?type=user.created&target=fresh")
        .await;
    assert_eq!(r.body["totalCount"], 1);
}
