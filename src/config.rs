//! Configuration: one typed tree with defaults in code, overridden by an optional TOML
//! file (`--config`), then by `GATEHOUSE_*` environment variables, then by command-line
//! flags. Clap reads flags and the environment; [`matches_with_file`] adds the file's
//! values for the settings neither set. This is the only module that reads the
//! environment. Secrets are redacted from `Debug`. Every setting is documented in
//! `docs/configuration.md`.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args};

use crate::service::rate_limit::{LoginLimitSettings, RateLimit};

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

/// Where the token service lives under the public URL; the default `iss` is the public
/// URL with this path, so that, as OpenID Connect Discovery requires, the discovery
/// document sits at `<iss>/.well-known/openid-configuration`.
pub const ISSUER_PATH: &str = "/authenticate";

/// The base URL clients reach the service at (`--public-url`), checked at load time:
/// `http` or `https`, a host, an optional path prefix, no user info, query or fragment.
/// Kept without a trailing slash, with the scheme and host lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| Err(format!("{s:?} is not a public base URL: {why}"));
        if s.contains('#') {
            return bad("it has a fragment");
        }
        let Ok(uri) = s.parse::<axum::http::Uri>() else {
            return bad("expected an absolute URL such as https://auth.example.com");
        };
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => "http",
            Some("https") => "https",
            _ => return bad("the scheme must be http or https"),
        };
        let Some(authority) = uri.authority() else {
            return bad("it has no host");
        };
        if authority.as_str().contains('@') {
            return bad("it has user info");
        }
        if authority.host().is_empty() {
            return bad("it has no host");
        }
        if uri.query().is_some() {
            return bad("it has a query");
        }
        let authority = authority.as_str().to_ascii_lowercase();
        let path = uri.path().trim_end_matches('/');
        Ok(Self(format!("{scheme}://{authority}{path}")))
    }
}

/// A database URL whose `Debug` hides its passwords ([`redact_url`]), so
/// `--print-config` and any log of the settings never show them.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, password included; call only where the database is opened.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// A database URL fit for a log line: the password of `scheme://user:password@host` and
/// the value of every query parameter whose name ends in `password` (`password=`,
/// `sslpassword=`) become `***`. It errs on the side of hiding: the credentials end at
/// the last `@`, so a password with a raw `@`, `/` or `?` in it is hidden too.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    let mut rest_from = 0;
    if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) {
        let start = scheme + 3;
        if at > start {
            if let Some((user, _)) = url[start..at].split_once(':') {
                out = format!("{}{user}:***{}", &url[..start], &url[at..]);
            }
            rest_from = out.rfind('@').unwrap_or(0);
        }
    }
    let Some(q) = out[rest_from..].find('?').map(|q| rest_from + q) else {
        return out;
    };
    let params: Vec<String> = out[q + 1..]
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                format!("{key}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{}?{}", &out[..q], params.join("&"))
}

/// Settings of `gatehouse serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// A TOML file with settings, keyed by flag name (`listen = "0.0.0.0:8080"`,
    /// `lockout-threshold = 10`). Flags and environment variables win over it.
    #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective settings (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(
        long = "database",
        env = "GATEHOUSE_DATABASE_URL",
        default_value = "sqlite://gatehouse.db"
    )]
    pub database_url: DatabaseUrl,

    /// Most connections one process opens to PostgreSQL (ignored for SQLite). Size it so
    /// that nodes × pool size stays below the server's `max_connections`.
    #[arg(long, env = "GATEHOUSE_DATABASE_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(60..=86_400))]
    pub token_ttl_secs: i64,

    /// How long, in milliseconds, an authenticated caller is reused before its user is
    /// read again (0..=2000; 0 = every request reads it). This node's own changes take
    /// effect at once regardless; this bounds how late another node's are seen.
    #[arg(long, env = "GATEHOUSE_CALLER_CACHE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=2000))]
    pub caller_cache_ms: u64,

    /// Days the audit log keeps an event (0 = forever). Older events are removed in
    /// the background, never while a webhook still has to deliver them.
    #[arg(long, env = "GATEHOUSE_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,

    /// How often, in milliseconds, this node looks for webhook deliveries that are due
    /// (100..=60000).
    #[arg(long, env = "GATEHOUSE_WEBHOOK_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub webhook_poll_ms: u64,

    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_REFRESH_TTL_SECS", default_value_t = 14 * 86_400, value_parser = clap::value_parser!(i64).range(60..))]
    pub refresh_ttl_secs: i64,

    /// Consecutive failed logins that lock an account (0 = never lock).
    #[arg(long, env = "GATEHOUSE_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// The base URL clients reach this service at (`https://auth.example.com`, http or
    /// https, no query or fragment). The discovery document's URLs and the tokens' `iss`
    /// (`<public URL>/authenticate`) come from it, never from a request's `Host` or
    /// `X-Forwarded-*` headers. Unset: `http://<listen address>`. Every node of one
    /// service must use the same.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<PublicUrl>,

    /// Overrides the `iss` claim of issued tokens (default: `<public URL>/authenticate`),
    /// e.g. to keep the issuer of an existing deployment. Every node of one service must
    /// use the same.
    #[arg(long, env = "GATEHOUSE_ISSUER")]
    pub issuer: Option<String>,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "GATEHOUSE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Serve Prometheus metrics at `GET /metrics` on this separate management address
    /// (e.g. `127.0.0.1:9090`), for scrapers only; off when unset. The public listener
    /// never serves them.
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Token requests per minute from one client address, sustained (0 = unlimited).
    #[arg(long, env = "GATEHOUSE_LOGIN_RATE_PER_IP", default_value_t = 60)]
    pub login_rate_per_ip: u32,

    /// Token requests one client address may send at once before the rate applies.
    #[arg(long, env = "GATEHOUSE_LOGIN_BURST_PER_IP", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_burst_per_ip: u32,

    /// Password-grant requests per minute for one username, from any address (0 =
    /// unlimited).
    #[arg(long, env = "GATEHOUSE_LOGIN_RATE_PER_USER", default_value_t = 20)]
    pub login_rate_per_user: u32,

    /// Password-grant requests for one username at once before the rate applies.
    #[arg(long, env = "GATEHOUSE_LOGIN_BURST_PER_USER", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_burst_per_user: u32,

    /// Take the client address for rate limits from the last `X-Forwarded-For` entry.
    /// Only behind a reverse proxy that appends it; otherwise clients choose their own.
    #[arg(long, env = "GATEHOUSE_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// The group (name or id) whose members, besides System Administrators, may
    /// provision users and groups over SCIM at `/scim/v2` (e.g. the group of the API key
    /// an identity provider uses). Unset: administrators only.
    #[arg(long, env = "GATEHOUSE_SCIM_GROUP", value_name = "GROUP")]
    pub scim_group: Option<String>,
    /// Serve LDAP (read-only, plus binds, Who am I and password modify) on this address,
    /// e.g. `127.0.0.1:3890`; off when unset. See docs/ldap.md.
    #[arg(long, env = "GATEHOUSE_LDAP_LISTEN", value_name = "ADDR")]
    pub ldap_listen: Option<SocketAddr>,

    /// Serve LDAP over TLS (LDAPS) on this address, e.g. `127.0.0.1:6360`; needs
    /// `--ldap-tls-cert` and `--ldap-tls-key`. Off when unset.
    #[arg(long, env = "GATEHOUSE_LDAPS_LISTEN", value_name = "ADDR")]
    pub ldaps_listen: Option<SocketAddr>,

    /// The base DN of the LDAP tree: users under `ou=people,<base>`, groups under
    /// `ou=groups,<base>`.
    #[arg(
        long,
        env = "GATEHOUSE_LDAP_BASE_DN",
        default_value = "dc=example,dc=com",
        value_name = "DN"
    )]
    pub ldap_base_dn: String,

    /// Members of this group (besides administrators) may search the whole LDAP tree,
    /// e.g. a group holding the API keys of Nextcloud or Gitea. Unset: administrators
    /// only. Everyone else sees their own entry and their groups.
    #[arg(long, env = "GATEHOUSE_LDAP_SEARCH_GROUP", value_name = "GROUP")]
    pub ldap_search_group: Option<String>,

    /// PEM certificate chain for LDAPS and StartTLS.
    #[arg(long, env = "GATEHOUSE_LDAP_TLS_CERT", value_name = "FILE")]
    pub ldap_tls_cert: Option<PathBuf>,

    /// PEM private key for LDAPS and StartTLS.
    #[arg(long, env = "GATEHOUSE_LDAP_TLS_KEY", value_name = "FILE")]
    pub ldap_tls_key: Option<PathBuf>,

    /// Most LDAP connections open at once (both listeners); past it a new connection is
    /// told `busy` and closed.
    #[arg(long, env = "GATEHOUSE_LDAP_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ldap_max_connections: u32,

    /// Seconds an LDAP connection may stay silent before it is closed.
    #[arg(long, env = "GATEHOUSE_LDAP_IDLE_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ldap_idle_timeout_secs: u64,

    /// Password of the bootstrap `admin` user, read from `GATEHOUSE_ADMIN_PASSWORD` only
    /// (never a flag, so it does not show in process listings).
    #[arg(skip)]
    pub admin_password: Option<Secret>,

    /// Problems found while loading (unknown keys and variables), logged at start-up.
    #[arg(skip)]
    pub warnings: Vec<String>,
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
        self.warnings.extend(unknown_variables());
        self
    }

    /// The defaults, as for `gatehouse serve` with no flags or environment.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let limits = LoginLimitSettings::default();
        Self {
            config: None,
            print_config: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: DatabaseUrl(database_url.into()),
            database_pool_size: 10,
            token_ttl_secs: 3600,
            caller_cache_ms: 1000,
            audit_retention_days: 365,
            webhook_poll_ms: 1000,
            refresh_ttl_secs: 14 * 86_400,
            lockout_threshold: 5,
            public_url: None,
            issuer: None,
            log_json: false,
            metrics_listen: None,
            login_rate_per_ip: limits.per_ip.per_minute,
            login_burst_per_ip: limits.per_ip.burst,
            login_rate_per_user: limits.per_user.per_minute,
            login_burst_per_user: limits.per_user.burst,
            trust_forwarded_for: false,
            scim_group: None,
            ldap_listen: None,
            ldaps_listen: None,
            ldap_base_dn: "dc=example,dc=com".into(),
            ldap_search_group: None,
            ldap_tls_cert: None,
            ldap_tls_key: None,
            ldap_max_connections: 1024,
            ldap_idle_timeout_secs: 300,
            admin_password: None,
            warnings: Vec::new(),
        }
    }

    /// The settings the services use, for a server at the configured listen address.
    pub fn settings(&self) -> crate::service::Settings {
        self.settings_at(self.listen)
    }

    /// The base URL clients reach a server listening at `listening` at: `--public-url`,
    /// else `http://<listening>` (the address actually bound, so port 0 names the port
    /// the system chose).
    pub fn public_base(&self, listening: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().to_owned(),
            None => format!("http://{listening}"),
        }
    }

    /// The settings the services use, for a server listening at `listening`.
    pub fn settings_at(&self, listening: SocketAddr) -> crate::service::Settings {
        let public_base = self.public_base(listening);
        crate::service::Settings {
            issuer: self
                .issuer
                .clone()
                .unwrap_or_else(|| format!("{public_base}{ISSUER_PATH}")),
            public_base,
            token_ttl_secs: self.token_ttl_secs,
            caller_cache_ttl: std::time::Duration::from_millis(self.caller_cache_ms),
            lockout_threshold: self.lockout_threshold,
            refresh_ttl_secs: self.refresh_ttl_secs,
            login_limits: LoginLimitSettings {
                per_ip: RateLimit {
                    per_minute: self.login_rate_per_ip,
                    burst: self.login_burst_per_ip,
                },
                per_user: RateLimit {
                    per_minute: self.login_rate_per_user,
                    burst: self.login_burst_per_user,
                },
            },
            trust_forwarded_for: self.trust_forwarded_for,
            scim_group: self.scim_group.clone(),
            directory_readers: self.ldap_search_group.clone(),
        }
    }
}

/// Flags that make no sense in a file.
const NOT_IN_FILES: &[&str] = &["config", "print-config", "help", "version"];

/// Variables that are read but are not flags.
const OTHER_VARIABLES: &[&str] = &["GATEHOUSE_ADMIN_PASSWORD", "GATEHOUSE_TEST_BACKEND"];

/// Parses `args` (program name first) with `cmd`, exiting on usage errors, `--help` and
/// `--version` as clap does. When the `serve` subcommand names a config file (flag or
/// `GATEHOUSE_CONFIG`), its values are added for every setting that neither a flag nor
/// an environment variable set, so the order of precedence is flags, environment, file,
/// defaults. Returns the matches and warnings about unknown keys in the file.
pub fn matches_with_file(
    cmd: &clap::Command,
    args: Vec<OsString>,
) -> anyhow::Result<(ArgMatches, Vec<String>)> {
    let matches = cmd.clone().get_matches_from(args.clone());
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok((matches, Vec::new()));
    };
    let Some(path) = serve.get_one::<PathBuf>("config").cloned() else {
        return Ok((matches, Vec::new()));
    };
    let serve_cmd = cmd
        .find_subcommand("serve")
        .context("the command line has a serve subcommand")?;
    let (extra, warnings) = file_args(serve_cmd, serve, &path)?;
    let mut all = args;
    all.extend(extra);
    let matches = cmd
        .clone()
        .try_get_matches_from(all)
        .map_err(|e| anyhow::anyhow!("in {}: {}", path.display(), e.render()))?;
    Ok((matches, warnings))
}

/// Reads a TOML settings file and turns each of its keys that `matches` did not get from
/// a flag or the environment into a flag (`--key=value`), so clap parses and checks file
/// values exactly as it does flags. Keys are flag names; `_` may stand for `-`.
pub fn file_args(
    cmd: &clap::Command,
    matches: &ArgMatches,
    path: &Path,
) -> anyhow::Result<(Vec<OsString>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing the config file {}", path.display()))?;
    let mut args = Vec::new();
    let mut warnings = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()))
            .filter(|_| !NOT_IN_FILES.contains(&flag.as_str()));
        let Some(arg) = arg else {
            warnings.push(format!(
                "{}: unknown setting {key:?} ignored",
                path.display()
            ));
            continue;
        };
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) if matches!(arg.get_action(), ArgAction::SetTrue) => {
                if b {
                    args.push(OsString::from(format!("--{flag}")));
                }
                continue;
            }
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!(
                "{}: {key} must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        args.push(OsString::from(format!("--{flag}={text}")));
    }
    Ok((args, warnings))
}

/// Warnings for `GATEHOUSE_*` variables that no setting reads (likely typos).
fn unknown_variables() -> Vec<String> {
    use clap::CommandFactory as _;
    let cmd = crate::cli::Cli::command();
    let mut known: Vec<String> = OTHER_VARIABLES.iter().map(|v| (*v).to_owned()).collect();
    let mut stack = vec![&cmd];
    while let Some(c) = stack.pop() {
        known.extend(
            c.get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
        stack.extend(c.get_subcommands());
    }
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("GATEHOUSE_") && !known.contains(k))
        .map(|k| format!("environment variable {k} is not a gatehouse setting; ignored"))
        .collect()
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

    use clap::{CommandFactory as _, FromArgMatches as _};

    /// The `serve` settings for a command line, with the file it names.
    fn serve(args: &[&str]) -> (Config, Vec<String>) {
        let mut argv: Vec<OsString> = vec!["gatehouse".into(), "serve".into()];
        argv.extend(args.iter().map(OsString::from));
        let (matches, warnings) =
            matches_with_file(&crate::cli::Cli::command(), argv).expect("valid settings");
        match crate::cli::Cli::from_arg_matches(&matches).unwrap().command {
            crate::cli::Command::Serve(c) => (*c, warnings),
            other => panic!("{other:?}"),
        }
    }

    /// The error for a `serve` command line clap refuses.
    fn serve_err(args: &[&str]) -> String {
        let mut argv: Vec<OsString> = vec!["gatehouse".into(), "serve".into()];
        argv.extend(args.iter().map(OsString::from));
        crate::cli::Cli::command()
            .try_get_matches_from(argv)
            .unwrap_err()
            .to_string()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_file_fills_what_flags_leave_at_their_defaults() {
        let f = file(
            "issuer = \"file\"\nlockout_threshold = 9\nlog-json = true\n\
             metrics_listen = \"127.0.0.1:9090\"\nlisten = \"0.0.0.0:9000\"\n\
             login-burst-per-ip = 3\nnot-a-key = 1\n",
        );
        let path = f.path().to_str().unwrap();
        let (c, warnings) = serve(&["--config", path, "--issuer", "flag"]);
        assert_eq!(
            c.issuer.as_deref(),
            Some("flag"),
            "a flag wins over the file"
        );
        assert_eq!(c.lockout_threshold, 9, "`_` stands for `-`");
        assert!(c.log_json);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.login_burst_per_ip, 3);
        assert_eq!(c.token_ttl_secs, 3600, "neither: the default");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("not-a-key"));
        assert_eq!(c.config.as_deref(), Some(f.path()));
    }

    #[test]
    fn public_urls_are_checked_and_normalized() {
        for (given, kept) in [
            ("https://auth.example.com", "https://auth.example.com"),
            ("https://auth.example.com/", "https://auth.example.com"),
            (
                "HTTPS://Auth.Example.COM:8443/",
                "https://auth.example.com:8443",
            ),
            ("http://10.0.0.5:8080/gate/", "http://10.0.0.5:8080/gate"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            let url: PublicUrl = given.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(url.as_str(), kept, "{given}");
        }
        for bad in [
            "",
            "auth.example.com",
            "/authenticate",
            "ftp://auth.example.com",
            "javascript:alert(1)",
            "https://auth.example.com/?next=x",
            "https://auth.example.com/#top",
            "https://user:pw@auth.example.com",
            "https://auth example.com",
            "https://auth.example.com/\n",
            "https://",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad:?}");
        }
        let err = serve_err(&["--public-url", "https://auth.example.com/?a=b"]);
        assert!(err.contains("query"), "{err}");
    }

    #[test]
    fn the_issuer_and_discovery_urls_come_from_the_public_url_or_the_listen_address() {
        let listening: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let (c, _) = serve(&["--public-url", "https://auth.example.com/"]);
        let s = c.settings_at(listening);
        assert_eq!(s.public_base, "https://auth.example.com");
        assert_eq!(s.issuer, "https://auth.example.com/authenticate");
        let (c, _) = serve(&["--listen", "0.0.0.0:8080"]);
        assert_eq!(c.settings().public_base, "http://0.0.0.0:8080");
        let s = c.settings_at(listening);
        assert_eq!(s.public_base, "http://127.0.0.1:4321");
        assert_eq!(s.issuer, "http://127.0.0.1:4321/authenticate");
        let (c, _) = serve(&["--public-url", "https://a.example", "--issuer", "legacy"]);
        let s = c.settings_at(listening);
        assert_eq!(
            (s.public_base.as_str(), s.issuer.as_str()),
            ("https://a.example", "legacy")
        );
    }

    #[test]
    fn without_a_file_the_defaults_match_for_database() {
        let (c, warnings) = serve(&["--database", "sqlite::memory:"]);
        assert!(warnings.is_empty());
        let d = Config::for_database("sqlite::memory:");
        assert_eq!(c.settings().login_limits, d.settings().login_limits);
        assert_eq!(c.metrics_listen, None, "off by default");
        assert_eq!(c.metrics_listen, d.metrics_listen);
        assert_eq!(c.lockout_threshold, d.lockout_threshold);
    }

    #[test]
    fn file_values_are_checked_like_flags() {
        let f = file("token-ttl-secs = 5\n");
        let argv: Vec<OsString> = ["gatehouse", "serve", "--config"]
            .into_iter()
            .map(OsString::from)
            .chain([f.path().as_os_str().to_owned()])
            .collect();
        let err = matches_with_file(&crate::cli::Cli::command(), argv).unwrap_err();
        assert!(err.to_string().contains("token-ttl-secs"), "{err}");
        let f = file("listen = [1, 2]\n");
        let argv: Vec<OsString> = ["gatehouse", "serve", "--config"]
            .into_iter()
            .map(OsString::from)
            .chain([f.path().as_os_str().to_owned()])
            .collect();
        assert!(matches_with_file(&crate::cli::Cli::command(), argv).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::for_database("postgres://u:pw-Secret@h/db?sslpassword=ssl-Secret");
        c.admin_password = Some(Secret::new("hunter2-Secret"));
        let printed = format!("{c:#?}");
        for secret in ["pw-Secret", "ssl-Secret", "hunter2"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains(r#""postgres://u:***@h/db?sslpassword=***""#));
        assert_eq!(
            c.database_url.expose(),
            "postgres://u:pw-Secret@h/db?sslpassword=ssl-Secret"
        );
    }

    #[test]
    fn database_passwords_are_not_logged() {
        for (url, shown) in [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            (
                "postgresql://u:secret@h:5432/db",
                "postgresql://u:***@h:5432/db",
            ),
            ("postgres://u:se@c:r/et@h/db", "postgres://u:***@h/db"),
            ("postgres://u:se?cret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:secret@h/db?sslmode=require&options=-c%20x%3Dy",
                "postgres://u:***@h/db?sslmode=require&options=-c%20x%3Dy",
            ),
            (
                "postgres://h/db?user=u&password=secret&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://u:secret@h/db?PASSWORD=secret&sslpassword=secret",
                "postgres://u:***@h/db?PASSWORD=***&sslpassword=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("sqlite://gatehouse.db", "sqlite://gatehouse.db"),
            ("sqlite:///var/lib/a@b.db", "sqlite:///var/lib/a@b.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("secret"), "{url}");
        }
    }
}
