//! gatehouse: a users-and-groups security server that speaks the Contensis Security API.
//!
//! Layers, outermost first: [`cli`] and [`http`] are front ends over [`service`], which
//! applies the rules of [`domain`] and persists through the [`store`] trait. [`auth`]
//! holds the credential primitives, [`clock`] is the only reader of time and [`config`]
//! the only reader of the environment. See ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod query;
pub mod service;
pub mod store;

#[cfg(test)]
mod layering {
    //! The layering rules of ARCHITECTURE.md, checked by reading the sources.

    fn sources(dir: &str) -> Vec<(String, String)> {
        let root = format!("{}/src/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&root).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                out.push((path.display().to_string(), text));
            }
        }
        assert!(!out.is_empty(), "no sources in {root}");
        out
    }

    fn forbid(dir: &str, needles: &[&str]) {
        for (path, text) in sources(dir) {
            for needle in needles {
                assert!(!text.contains(needle), "{path} must not use `{needle}`");
            }
        }
    }

    #[test]
    fn domain_does_no_io() {
        forbid(
            "domain",
            &["axum::", "sqlx::", "tokio::", "crate::store", "crate::http"],
        );
    }

    #[test]
    fn store_knows_nothing_of_http() {
        forbid("store", &["axum::", "crate::http", "crate::service"]);
    }

    #[test]
    fn service_knows_nothing_of_http_or_sql() {
        forbid("service", &["axum::", "sqlx::", "crate::http"]);
    }

    #[test]
    fn handlers_hold_no_sql() {
        forbid(
            "http",
            &["sqlx::", "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"],
        );
    }
}
