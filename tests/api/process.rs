//! The real `gatehouse` binary as an operator runs it: JSON logs that carry the request
//! id and the error's `logId`, graceful shutdown on SIGTERM, and the precedence of
//! flags, environment variables and the config file.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// A `gatehouse serve --log-json` process over a fresh database, with a metrics
/// listener and `RUST_LOG` as given (none: the server's default).
async fn server(rust_log: Option<&str>) -> (Node, std::sync::Arc<tempfile::TempDir>) {
    let (dir, database_url) = fresh_database().await;
    let node = Node::start_with(&database_url, dir.path(), "server", |cmd| {
        cmd.args(["--metrics-listen", "127.0.0.1:0"])
            .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN_PASSWORD);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
    })
    .await;
    (node, dir)
}

fn gatehouse() -> Command {
    let mut cmd = gatehouse_command();
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// The `request_id` of the span a JSON log line was written in.
fn span_request_id(line: &Value) -> Option<&str> {
    line["span"]["request_id"].as_str().or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .find_map(|s| s["request_id"].as_str())
    })
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_the_error_log_id() {
    let (server, _dir) = server(None).await;
    let http = client();
    let r = http
        .get(format!("{}/api/security/users/someone", server.base))
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-request-id"], "trace-me-7");
    let body: Value = r.json().await.unwrap();
    let log_id = body["logId"].as_str().expect("a logId").to_owned();
    // A generated request id, on a 404 this time.
    let r = http
        .get(format!("{}/no/such/endpoint", server.base))
        .send()
        .await
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let log_id_404 = body["logId"].as_str().unwrap().to_owned();

    // The log is written as it happens, by the process: poll it.
    let what = format!("log lines with logId {log_id} and {log_id_404}");
    let (line, line_404) = eventually(Duration::from_secs(5), &what, || async {
        let lines = server.log_lines();
        let find = |id: &str| lines.iter().find(|l| l["fields"]["log_id"] == id).cloned();
        find(&log_id).zip(find(&log_id_404))
    })
    .await;
    assert_eq!(span_request_id(&line), Some("trace-me-7"), "{line}");
    assert_eq!(line["fields"]["status"], 401, "{line}");
    assert_eq!(
        span_request_id(&line_404),
        Some(generated.as_str()),
        "{line_404}"
    );
    // Every line written inside a request has its request id (start-up's lines are in
    // the span `bootstrap`).
    let lines = server.log_lines();
    let in_requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("span").is_some() && l["spans"][0]["name"] != "bootstrap")
        .collect();
    assert!(!in_requests.is_empty());
    for l in in_requests {
        assert!(span_request_id(l).is_some(), "{l}");
    }
}

/// Reads an HTTP/1.1 response from a raw socket until the peer closes or the body is
/// complete (the server sends `content-length`).
fn read_response(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the response: {e}"),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(usize::MAX);
            if body.len() >= len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    // tower_http's debug line marks the moment a request enters the app.
    let (mut server, _dir) = server(Some("info,sqlx=warn,tower_http=debug")).await;
    let metrics_addr = server.metrics_addr.clone().expect("a metrics listener");
    let metrics = client()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers");
    assert_eq!(metrics.status(), StatusCode::OK);
    let body = format!(
        "grant_type=contensis_classic&username=admin&password={}",
        enc(ADMIN_PASSWORD)
    );
    let (first, rest) = body.split_at(10);
    // A request whose body is still arriving when the signal comes: in flight.
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    write!(
        stream,
        "POST /authenticate/connect/token HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{first}",
        server.addr,
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    eventually(
        Duration::from_secs(10),
        "the server has taken the request in",
        || async {
            server
                .log_lines()
                .iter()
                .any(|l| {
                    l["fields"]["message"] == "started processing request"
                        && l["span"]["path"] == "/authenticate/connect/token"
                })
                .then_some(())
        },
    )
    .await;
    server.terminate();
    // New connections are no longer accepted, on either listener...
    eventually(
        Duration::from_secs(10),
        "the listeners close once shutdown starts",
        || async {
            (TcpStream::connect(&server.addr).is_err()
                && TcpStream::connect(&metrics_addr).is_err())
            .then_some(())
        },
    )
    .await;
    // ...but the process waits for the request in flight, which waits for its body.
    assert!(
        server.exited().is_none(),
        "the server waits for the request in flight:\n{}",
        server.log_text()
    );
    stream.write_all(rest.as_bytes()).unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"), "{response}");
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// Runs `gatehouse serve --print-config` with extra arguments and environment.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = gatehouse();
    cmd.args(["serve", "--print-config"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the gatehouse binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

fn write_file(dir: &Path, text: &str) -> String {
    let path = dir.join("gatehouse.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn flags_beat_environment_beats_config_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        r#"
issuer = "from-file"
lockout-threshold = 7
token_ttl_secs = 999
log-json = false
login-rate-per-ip = 5
bogus-setting = 1
"#,
    );
    let (out, err) = print_config(
        &["--config", &file, "--token-ttl-secs", "120"],
        &[
            ("GATEHOUSE_ISSUER", "from-env"),
            ("GATEHOUSE_TOKEN_TTL_SECS", "300"),
            ("GATEHOUSE_NOT_A_SETTING", "x"),
        ],
    );
    assert!(out.contains(r#""from-env""#), "{out}");
    assert!(out.contains("token_ttl_secs: 120,"), "{out}");
    assert!(out.contains("lockout_threshold: 7,"), "{out}");
    assert!(out.contains("login_rate_per_ip: 5,"), "{out}");
    assert!(out.contains("listen: 127.0.0.1:8080,"), "{out}");
    assert!(out.contains("login_rate_per_user: 20,"), "{out}");
    assert!(
        err.contains("bogus-setting"),
        "unknown keys are warned about: {err}"
    );
    assert!(err.contains("GATEHOUSE_NOT_A_SETTING"), "{err}");

    // GATEHOUSE_CONFIG names the file too.
    let (out, _) = print_config(&[], &[("GATEHOUSE_CONFIG", &file)]);
    assert!(out.contains(r#""from-file""#), "{out}");
    assert!(out.contains("token_ttl_secs: 999,"), "{out}");
}

#[test]
fn print_config_hides_database_passwords() {
    let (out, _) = print_config(
        &[
            "--database",
            "postgres://gate:pw-in-userinfo@db.internal/gh?sslmode=require&password=pw-in-query",
        ],
        &[],
    );
    assert!(!out.contains("pw-in-"), "{out}");
    assert!(
        out.contains(r#""postgres://gate:***@db.internal/gh?sslmode=require&password=***""#),
        "{out}"
    );
}

#[test]
fn a_bad_value_in_the_config_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "lockout-threshold = \"many\"\n");
    let out = gatehouse()
        .args(["serve", "--print-config", "--config", &file])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file) && err.contains("many"), "{err}");
}
