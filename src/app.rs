//! Assembles a running gatehouse: opens the store, bootstraps the built-in group and
//! the first administrator, builds the router and serves it with graceful shutdown.

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::ServiceExt;
use axum::extract::Request;
use tokio::net::TcpListener;
use tower::Layer as _;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tracing::Instrument as _;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::ids::{SYSTEM_ADMINISTRATORS_ID, UserRef};
use crate::service::users::{CreateOptions, CredentialsInput, UserInput};
use crate::service::{Caller, Error as ServiceError, Patch, Services};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::{SqliteStore, Workload};

/// Opens the store named by a database URL, with the default PostgreSQL pool size.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with_pool(url, crate::store::postgres::DEFAULT_POOL_SIZE).await
}

/// Opens the store for `gatehouse import`: on SQLite, with the writer tuned for bulk
/// loads ([`Workload::BulkLoad`]).
pub async fn open_store_for_import(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open_for(url, Workload::BulkLoad)
            .await
            .with_context(|| format!("opening the SQLite database {url}"))?;
        return Ok(Arc::new(store));
    }
    open_store(url).await
}

/// Opens the store named by a database URL: `sqlite:` for [`SqliteStore`],
/// `postgres://` or `postgresql://` for [`PgStore`] with at most `pool_size` connections
/// (SQLite ignores it: it has one writer by design).
pub async fn open_store_with_pool(url: &str, pool_size: u32) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url)
            .await
            .with_context(|| format!("opening the SQLite database {url}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = PgStore::open_with_pool_size(url, pool_size)
            .await
            .with_context(|| {
                format!(
                    "opening the PostgreSQL database {}",
                    crate::config::redact_url(url)
                )
            })?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("unsupported database URL (expected sqlite:// or postgres://)")
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it serves `/metrics`, if `--metrics-listen` asks for it.
    pub metrics_addr: Option<SocketAddr>,
    /// Where it serves LDAP, if `--ldap-listen` asks for it.
    pub ldap_addr: Option<SocketAddr>,
    /// Where it serves LDAPS, if `--ldaps-listen` asks for it.
    pub ldaps_addr: Option<SocketAddr>,
    /// Its services, for tests that need to reach behind the HTTP API.
    pub services: Arc<Services>,
}

/// Makes sure someone can administer the installation, following what the operator
/// meant (README.md, "The first administrator"):
///
/// - System Administrators has a member who can sign in ([`Store::admin_can_sign_in`]):
///   nothing changes; a `GATEHOUSE_ADMIN_PASSWORD` is ignored, with one warning that says
///   why (start-up never overwrites an administrator's password).
/// - It has none, and `GATEHOUSE_ADMIN_PASSWORD` is set: the user `admin` is created with
///   that password in System Administrators, or, if it exists, repaired in one
///   transaction (the password set, unlocked, unsuspended, a past expiry cleared, put
///   back into System Administrators).
/// - It has none, the variable is unset and the database has no users: `admin` is
///   created with a random password printed once to the log. With users but no
///   administrator who can sign in, a warning says how to recover.
pub async fn bootstrap_admin(services: &Services, config: &Config) -> anyhow::Result<()> {
    if services.admin_can_sign_in().await? {
        if config.admin_password.is_some() {
            tracing::warn!(
                "GATEHOUSE_ADMIN_PASSWORD is set but was ignored: System Administrators already \
                 has a member who can sign in, and start-up never changes an administrator's \
                 password (use `gatehouse admin reset-password USER` to set one)"
            );
        }
        return Ok(());
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None if services.has_no_users().await? => (random_password(), true),
        None => {
            tracing::warn!(
                "System Administrators has no member who can sign in: set \
                 GATEHOUSE_ADMIN_PASSWORD and restart to create or repair the user `admin`, \
                 or run `gatehouse admin reset-password USER`"
            );
            return Ok(());
        }
    };
    let weak = |e: ServiceError| match e {
        ServiceError::Invalid(f) => {
            anyhow::anyhow!("GATEHOUSE_ADMIN_PASSWORD is too weak: {}", f.reason)
        }
        // The cause chain stays attached: an internal error says what failed below it.
        e => anyhow::Error::new(e).context("could not set up the administrator `admin`"),
    };
    let operator = Caller::operator();
    let admin = UserRef::parse("admin");
    let exists = match services.resolve_user_id(Some(&operator), &admin).await {
        Ok(_) => true,
        Err(ServiceError::NotFound { .. }) => false,
        Err(e) => return Err(weak(e)),
    };
    if exists {
        services
            .recover_account(&operator, &admin, &password, true)
            .await
            .map_err(weak)?;
        tracing::info!(
            username = "admin",
            "System Administrators had no member who could sign in: repaired the user `admin` \
             from GATEHOUSE_ADMIN_PASSWORD (password set, unlocked, unsuspended, past expiry \
             cleared, member of System Administrators)"
        );
        return Ok(());
    }
    let input = UserInput {
        username: Patch::Value("admin".into()),
        email: Patch::Value("admin@localhost".into()),
        credentials: Some(CredentialsInput {
            password: Some(password.clone()),
            ..CredentialsInput::default()
        }),
        ..UserInput::default()
    };
    let created = services
        .create_user_in(
            &operator,
            input,
            CreateOptions::default(),
            &[SYSTEM_ADMINISTRATORS_ID],
        )
        .await;
    match created {
        Ok(_) => {}
        // Another node bootstrapped the same database at the same moment.
        Err(ServiceError::Conflict(_)) if services.admin_can_sign_in().await? => {
            return Ok(());
        }
        Err(e) => return Err(weak(e)),
    }
    if generated {
        // Printed once, on purpose: there is no other way to learn it.
        tracing::warn!(
            username = "admin",
            password = %password,
            "created the first administrator with a random password; set GATEHOUSE_ADMIN_PASSWORD to choose one"
        );
    } else {
        tracing::info!(
            username = "admin",
            "created the administrator `admin` from GATEHOUSE_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

/// A random password that satisfies the policy.
pub fn random_password() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let body: String = (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    // Guarantees three character classes whatever the random part drew.
    format!("{body}-Aa7")
}

/// Re-reads the signing keys every minute, so a rotation anywhere reaches every node.
fn spawn_key_reloader(services: Arc<Services>) {
    let weak = Arc::downgrade(&services);
    drop(services);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(services) = weak.upgrade() else {
                break;
            };
            if let Err(e) = services.reload_keys().await {
                tracing::warn!(error = %e, "could not reload signing keys");
            }
        }
    });
}

/// The LDAP front door and its listeners (plain, LDAPS), for [`serve`].
pub struct LdapListeners {
    server: Arc<crate::ldap::Server>,
    plain: Option<TcpListener>,
    tls: Option<TcpListener>,
}

impl std::fmt::Debug for LdapListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapListeners")
            .field("plain", &self.plain)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The LDAP front door and its listeners, when `--ldap-listen` or `--ldaps-listen` asks
/// for them; the settings are checked first.
async fn ldap_listeners(
    config: &Config,
    services: &Arc<Services>,
) -> anyhow::Result<Option<LdapListeners>> {
    if config.ldap_listen.is_none() && config.ldaps_listen.is_none() {
        return Ok(None);
    }
    let tree = crate::ldap::dn::Tree::new(&config.ldap_base_dn).with_context(|| {
        format!(
            "--ldap-base-dn {:?} is not a DN such as dc=example,dc=com",
            config.ldap_base_dn
        )
    })?;
    let tls = match (&config.ldap_tls_cert, &config.ldap_tls_key) {
        (Some(cert), Some(key)) => Some(crate::ldap::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--ldap-tls-cert and --ldap-tls-key go together"),
    };
    if config.ldaps_listen.is_some() && tls.is_none() {
        anyhow::bail!("--ldaps-listen needs --ldap-tls-cert and --ldap-tls-key");
    }
    let bind = |at: Option<SocketAddr>| async move {
        match at {
            Some(at) => TcpListener::bind(at)
                .await
                .map(Some)
                .with_context(|| format!("binding the LDAP listener {at}")),
            None => Ok(None),
        }
    };
    let plain = bind(config.ldap_listen).await?;
    let ldaps = bind(config.ldaps_listen).await?;
    let settings = crate::ldap::Settings {
        tree,
        tls,
        max_connections: usize::try_from(config.ldap_max_connections).unwrap_or(usize::MAX),
        idle_timeout: std::time::Duration::from_secs(config.ldap_idle_timeout_secs),
    };
    Ok(Some(LdapListeners {
        server: crate::ldap::Server::new(services.clone(), settings),
        plain,
        tls: ldaps,
    }))
}

/// The public and the management apps as they are served: the router with trailing
/// slashes trimmed.
pub type App = NormalizePath<axum::Router>;

/// A gatehouse ready to serve but not listening: its services, bootstrapped, with their
/// background work started, and the two apps [`start`] serves. Tests drive
/// [`Assembled::public`] in-process (inserting the client's `ConnectInfo<SocketAddr>`,
/// as the listener does).
#[derive(Debug)]
pub struct Assembled {
    /// The services the apps share.
    pub services: Arc<Services>,
    /// The public API (`--listen`).
    pub public: App,
    /// The management app (`--metrics-listen`): `/metrics`.
    pub metrics: App,
}

/// Starts the services over `store` for a server whose public listener is bound at
/// `listening` (without `--public-url`, the issuer and the discovery document's URLs
/// name it), bootstraps the administrator, starts the background work (key reloads,
/// audit retention, webhook delivery) and builds the apps.
pub async fn assemble(
    store: Arc<dyn Store>,
    config: &Config,
    clock: Arc<dyn Clock>,
    listening: SocketAddr,
) -> anyhow::Result<Assembled> {
    let services = Arc::new(Services::start(store, clock, config.settings_at(listening)).await?);
    // Its log lines carry the span `bootstrap`, not a request's.
    bootstrap_admin(&services, config)
        .instrument(tracing::info_span!("bootstrap"))
        .await?;
    crate::auth::password::warm_up();
    spawn_key_reloader(services.clone());
    crate::service::audit::spawn_retention(services.clone(), config.audit_retention_days);
    install_tls_provider();
    crate::service::webhooks::spawn_delivery(
        services.clone(),
        std::time::Duration::from_millis(config.webhook_poll_ms),
    );
    let public =
        NormalizePathLayer::trim_trailing_slash().layer(crate::http::router(services.clone()));
    let metrics = NormalizePathLayer::trim_trailing_slash()
        .layer(crate::http::metrics::router(services.clone()));
    Ok(Assembled {
        services,
        public,
        metrics,
    })
}

/// Opens the database, bootstraps, binds the listeners (the public one and, with
/// `--metrics-listen`, the management one; the LDAP ones when asked for) and serves
/// until `shutdown` resolves, when all stop accepting and finish the requests in
/// flight. Returns once it is listening; the servers run on a spawned task, whose
/// result is the first error of any.
pub async fn start(
    config: &Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(Running, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let store =
        open_store_with_pool(config.database_url.expose(), config.database_pool_size).await?;
    // Bound before the services start: without `--public-url` the issuer and the
    // discovery URLs name the address actually bound.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let assembled = assemble(store, config, clock, listener.local_addr()?).await?;
    let metrics_listener = match config.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("binding the metrics listener {at}"))?,
        ),
        None => None,
    };
    let ldap = ldap_listeners(config, &assembled.services).await?;
    Ok(serve(
        assembled,
        listener,
        metrics_listener,
        ldap,
        shutdown,
    )?)
}

/// Serves an assembled gatehouse: its public app on `listener`, with each connection's
/// peer address as `ConnectInfo<SocketAddr>`, its management app on `metrics_listener`
/// and the LDAP front door on its listeners, until `shutdown` resolves (see [`start`]).
pub fn serve(
    assembled: Assembled,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    ldap: Option<LdapListeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(Running, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let Assembled {
        services,
        public: app,
        metrics: metrics_app,
    } = assembled;
    let addr = listener.local_addr()?;
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let ldap_addr = ldap
        .as_ref()
        .and_then(|l| l.plain.as_ref())
        .map(TcpListener::local_addr)
        .transpose()?;
    let ldaps_addr = ldap
        .as_ref()
        .and_then(|l| l.tls.as_ref())
        .map(TcpListener::local_addr)
        .transpose()?;
    // One signal stops every listener.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        // An error means the sender is gone: stop as well.
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let ldap_stop = stopping.clone();
    let handle = tokio::spawn(async move {
        let ldap = async move {
            match ldap {
                Some(l) => l.server.serve(l.plain, l.tls, ldap_stop).await,
                None => Ok(()),
            }
        };
        let app = ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
        let public = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stopping.clone()))
            .into_future();
        let metrics = async move {
            let Some(metrics_listener) = metrics_listener else {
                return Ok(());
            };
            let metrics_app = ServiceExt::<Request>::into_make_service(metrics_app);
            axum::serve(metrics_listener, metrics_app)
                .with_graceful_shutdown(stopped(stopping))
                .await
        };
        let (public, metrics, ldap) = tokio::join!(public, metrics, ldap);
        public.and(metrics).and(ldap)
    });
    Ok((
        Running {
            addr,
            metrics_addr,
            ldap_addr,
            ldaps_addr,
            services,
        },
        handle,
    ))
}

/// Installs rustls's ring provider for the process's HTTPS clients (webhook delivery, the
/// CLI's `--server`): ring is the crypto the tree already has. Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
