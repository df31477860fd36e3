//! API tests: the real server on an ephemeral port over a fresh SQLite file per test,
//! driven over HTTP. One test binary, so the crate links once.

mod helpers;

mod auth;
mod credentials;
mod groups;
mod import;
mod membership;
mod query;
mod users;
