//! The admin console (docs/console.md): plain ES modules and one stylesheet from
//! `console/`, compiled into the binary and served at `/admin`, GET and HEAD only.
//!
//! The console is a client of the public API like any other: it holds no rights of its
//! own, so these routes serve static bytes and nothing else. They are mounted outside
//! the OpenAPI table (`openapi.rs`), which describes the API, not its web client.
//! Every answer carries a strict Content-Security-Policy and refuses framing.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use super::AppState;
use super::error::ApiError;

/// Where the console is served.
pub const PREFIX: &str = "/admin";

/// The policy of every console response: scripts, styles and API calls from this origin
/// only, no inline script or style, no framing, no forms posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $type:expr,)*) => {
        &[$(Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        },)*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The console's files; `index.html` is the page at `/admin`.
static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "app.js" => JS,
    "api.js" => JS,
    "ui.js" => JS,
    "users.js" => JS,
    "groups.js" => JS,
    "keys.js" => JS,
    "audit.js" => JS,
    "favicon.svg" => "image/svg+xml",
};

/// A strong ETag per asset (SHA-256 of its bytes), in [`ASSETS`] order.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.body);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header value")
        })
        .collect()
});

/// The console's routes: `/admin` (and `/admin/`, which the trailing-slash layer
/// trims) and `/admin/<file>`. GET only (axum answers HEAD from it; other methods 405,
/// with the console's headers like every answer here).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, get(index))
        .route("/admin/{*file}", get(file))
        .layer(axum::middleware::map_response(secure))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

/// The named asset, `304` when the client's copy is current, or `404`.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, "No such console file.").into_response();
    };
    let (asset, etag) = (&ASSETS[i], &ETAGS[i]);
    let current = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag.to_str().unwrap_or_default() || t.trim() == "*");
    let mut response = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = asset.body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.clone());
    // Revalidate every time: a new binary serves new files under the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Adds the headers every console response carries.
async fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_console_folder_is_served_and_typed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        served.sort();
        assert_eq!(on_disk, served, "console/ and the asset table differ");
        for a in ASSETS {
            if a.name.ends_with(".js") {
                assert_eq!(a.content_type, JS, "{}", a.name);
            }
        }
    }

    #[test]
    fn no_file_has_inline_script_or_style() {
        let html = ASSETS.iter().find(|a| a.name == "index.html").unwrap();
        let html = std::str::from_utf8(html.body).unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="));
        assert!(!html.contains("<style"));
    }
}
