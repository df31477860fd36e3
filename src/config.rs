//! Configuration: one typed tree with defaults in code, overridden by `GATEHOUSE_*`
//! environment variables and then by command-line flags (clap reads both). This is the
//! only module that reads the environment. Secrets are redacted from `Debug`.

use std::fmt;
use std::net::SocketAddr;

use clap::Args;

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Settings of `gatehouse serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(
        long = "database",
        env = "GATEHOUSE_DATABASE_URL",
        default_value = "sqlite://gatehouse.db"
    )]
    pub database_url: String,

    /// Most connections one process opens to PostgreSQL (ignored for SQLite). Size it so
    /// that nodes × pool size stays below the server's `max_connections`.
    #[arg(long, env = "GATEHOUSE_DATABASE_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(60..=86_400))]
    pub token_ttl_secs: i64,

    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_REFRESH_TTL_SECS", default_value_t = 14 * 86_400, value_parser = clap::value_parser!(i64).range(60..))]
    pub refresh_ttl_secs: i64,

    /// Consecutive failed logins that lock an account (0 = never lock).
    #[arg(long, env = "GATEHOUSE_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// The `iss` claim of issued tokens; every node of one service must use the same.
    #[arg(long, env = "GATEHOUSE_ISSUER", default_value = "gatehouse")]
    pub issuer: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "GATEHOUSE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Password of the bootstrap `admin` user, read from `GATEHOUSE_ADMIN_PASSWORD` only
    /// (never a flag, so it does not show in process listings).
    #[arg(skip)]
    pub admin_password: Option<Secret>,
}

impl Config {
    /// Fills in the settings that come only from the environment.
    pub fn with_environment(mut self) -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "config.rs is where the environment is read"
        )]
        let admin = std::env::var("GATEHOUSE_ADMIN_PASSWORD").ok();
        self.admin_password = admin.filter(|p| !p.is_empty()).map(Secret::new);
        self
    }

    /// The defaults, as for `gatehouse serve` with no flags or environment.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            database_pool_size: 10,
            token_ttl_secs: 3600,
            refresh_ttl_secs: 14 * 86_400,
            lockout_threshold: 5,
            issuer: "gatehouse".into(),
            log_json: false,
            admin_password: None,
        }
    }

    /// The settings the services use.
    pub fn settings(&self) -> crate::service::Settings {
        crate::service::Settings {
            issuer: self.issuer.clone(),
            token_ttl_secs: self.token_ttl_secs,
            lockout_threshold: self.lockout_threshold,
            refresh_ttl_secs: self.refresh_ttl_secs,
        }
    }
}

/// Whether `TEST_LOG` asks tests to show logs.
pub fn test_log_enabled() -> bool {
    #[expect(
        clippy::disallowed_methods,
        reason = "config.rs is where the environment is read"
    )]
    let v = std::env::var_os("TEST_LOG");
    v.is_some()
}

/// The database the integration tests run on, chosen by `GATEHOUSE_TEST_BACKEND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestBackend {
    /// Unset, empty or `sqlite`: a fresh SQLite file per test.
    Sqlite,
    /// `postgres`: a fresh schema per test on the server at `TEST_POSTGRES_URL`
    /// (default `postgres://postgres@127.0.0.1:5432/test`).
    Postgres {
        /// The server and database to create schemas in.
        url: String,
    },
}

/// Reads `GATEHOUSE_TEST_BACKEND` and `TEST_POSTGRES_URL` for the test harness. Any
/// other backend name is an error, so a typo cannot silently test SQLite instead.
pub fn test_backend() -> Result<TestBackend, String> {
    #[expect(
        clippy::disallowed_methods,
        reason = "config.rs is where the environment is read"
    )]
    let (backend, url) = (
        std::env::var("GATEHOUSE_TEST_BACKEND").unwrap_or_default(),
        std::env::var("TEST_POSTGRES_URL").ok(),
    );
    match backend.trim().to_ascii_lowercase().as_str() {
        "" | "sqlite" => Ok(TestBackend::Sqlite),
        "postgres" | "postgresql" => Ok(TestBackend::Postgres {
            url: url
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        }),
        other => Err(format!(
            "GATEHOUSE_TEST_BACKEND={other:?}: expected \"sqlite\" or \"postgres\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::for_database("sqlite::memory:");
        c.admin_password = Some(Secret::new("hunter2-Secret"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
