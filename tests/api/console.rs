//! The admin console's static files (docs/console.md): served at `/admin` by GET and
//! HEAD only, with their content types and the console's security headers on every
//! answer, and every file the page loads is one the server has.

use reqwest::{Method, StatusCode};

use crate::helpers::{Resp, TestApp, assert_error_shape};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
    data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

async fn fetch(app: &TestApp, method: Method, path: &str) -> Resp {
    app.request(method, path).send().await
}

#[track_caller]
fn assert_secured(r: &Resp, what: &str) {
    assert_eq!(r.headers["content-security-policy"], CSP, "{what}");
    assert_eq!(r.headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(r.headers["referrer-policy"], "no-referrer", "{what}");
}

#[tokio::test]
async fn admin_answers_the_page_with_the_policy_and_frame_headers_and_no_token() {
    let app = TestApp::spawn().await;
    for path in ["/admin", "/admin/", "/admin/index.html"] {
        let r = fetch(&app, Method::GET, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(
            r.headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert!(
            r.text
                .contains(r#"<script type="module" src="/admin/app.js">"#)
        );
        assert!(!r.text.contains("<script>") && !r.text.contains("style="));
        assert_secured(&r, path);
        assert_eq!(r.headers["cache-control"], "no-cache", "{path}");
    }
    let head = fetch(&app, Method::HEAD, "/admin").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty());
    assert_secured(&head, "HEAD /admin");
}

#[tokio::test]
async fn assets_have_their_content_types_and_revalidate_by_etag() {
    let app = TestApp::spawn().await;
    for (path, content_type) in [
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/api.js", "text/javascript; charset=utf-8"),
        ("/admin/app.css", "text/css; charset=utf-8"),
        ("/admin/favicon.svg", "image/svg+xml"),
    ] {
        let r = fetch(&app, Method::GET, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["content-type"], content_type, "{path}");
        assert_secured(&r, path);
        let etag = r.headers["etag"].to_str().unwrap().to_owned();
        let again = app
            .request(Method::GET, path)
            .header("if-none-match", &etag)
            .send()
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.text.is_empty());
        assert_secured(&again, path);
        let stale = app
            .request(Method::GET, path)
            .header("if-none-match", "\"something-else\"")
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn every_file_the_page_and_its_modules_load_is_served() {
    let app = TestApp::spawn().await;
    let page = fetch(&app, Method::GET, "/admin").await.text;
    let mut wanted: Vec<String> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("/admin/"))
        .map(str::to_owned)
        .collect();
    let mut seen = Vec::new();
    while let Some(path) = wanted.pop() {
        if seen.contains(&path) {
            continue;
        }
        let r = fetch(&app, Method::GET, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path} is loaded but not served");
        if path.ends_with(".js") {
            // `import ... from "./x.js"`: relative to /admin/.
            for piece in r.text.split("from \"./").skip(1) {
                let name = piece.split('"').next().unwrap();
                wanted.push(format!("/admin/{name}"));
            }
        }
        seen.push(path);
    }
    assert!(seen.len() >= 8, "{seen:?}");
}

#[tokio::test]
async fn an_unknown_file_is_404_in_the_error_envelope_and_nothing_else_is_read() {
    let app = TestApp::spawn().await;
    for path in [
        "/admin/nope.js",
        "/admin/..%2fCargo.toml",
        "/admin/app.js/x",
        "/admin/APP.JS",
    ] {
        let r = fetch(&app, Method::GET, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_error_shape(&r.body);
        assert_secured(&r, path);
    }
    // A dot segment leaves the console before routing: the API's 404, never a file.
    for path in ["/admin/%2e%2e/Cargo.toml", "/admin/../Cargo.toml"] {
        let r = fetch(&app, Method::GET, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_error_shape(&r.body);
        assert!(!r.text.contains("[package]"));
    }
}

#[tokio::test]
async fn no_console_route_accepts_a_write() {
    let app = TestApp::spawn().await;
    for path in ["/admin", "/admin/", "/admin/app.js", "/admin/nope"] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = app.send(method.clone(), path, Some(&app.admin), None).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                r.text
            );
            assert_secured(&r, path);
        }
    }
}

#[tokio::test]
async fn the_console_is_not_in_the_api_document() {
    let app = TestApp::spawn().await;
    let doc = fetch(&app, Method::GET, "/api/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.keys().all(|p| !p.starts_with("/admin")),
        "{:?}",
        paths.keys()
    );
}
