//! API tests: the real server on an ephemeral port over a fresh database per test (a
//! SQLite file, or a PostgreSQL schema with `GATEHOUSE_TEST_BACKEND=postgres`), driven
//! over HTTP. One test binary, so the crate links once.

mod helpers;

mod attacks;
mod audit;
mod auth;
mod backend_parity;
mod cli;
mod console;
mod crash;
mod credentials;
mod docs;
mod groups;
mod import;
mod membership;
mod multinode;
mod openapi;
mod ops;
mod process;
mod query;
mod revocation;
mod scim;
mod upgrade;
mod users;
mod webhooks;
