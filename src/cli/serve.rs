//! `gatehouse serve`: logs, start, wait for Ctrl-C or SIGTERM, drain, exit.

use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::clock::SystemClock;
use crate::config::Config;

/// Sets up `tracing` to stderr, human-readable or JSON. `RUST_LOG` refines the filter.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Sets up `tracing` to stderr for the directory commands: warnings only by default
/// (their output is on stdout), `RUST_LOG` to see more.
pub fn init_logging_quiet() {
    use std::io::IsTerminal as _;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Runs the server until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_json);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.print_config {
        println!("{config:#?}");
        return Ok(());
    }
    let (running, handle) =
        crate::app::start(&config, Arc::new(SystemClock), shutdown_signal()).await?;
    tracing::info!(addr = %running.addr, database = %config.database_url, "gatehouse listening");
    if config.public_url.is_none() && config.listen.ip().is_unspecified() {
        tracing::warn!(
            public_url = %running.services.settings().public_base,
            "no --public-url: the discovery document and the tokens' issuer name the listen \
             address, which clients cannot reach; set --public-url to the URL they use"
        );
    }
    if let Some(addr) = running.metrics_addr {
        tracing::info!(addr = %addr, "serving /metrics");
    }
    if let Some(addr) = running.ldap_addr {
        tracing::info!(addr = %addr, base = %config.ldap_base_dn, "serving LDAP");
    }
    if let Some(addr) = running.ldaps_addr {
        tracing::info!(addr = %addr, base = %config.ldap_base_dn, "serving LDAPS");
    }
    handle.await??;
    tracing::info!("stopped");
    Ok(())
}
