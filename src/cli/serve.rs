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
    tracing::info!(addr = %running.addr, database = %redact_url(&config.database_url), "gatehouse listening");
    handle.await??;
    tracing::info!("stopped");
    Ok(())
}

/// Hides a password in a database URL before it is logged.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_not_logged() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            super::redact_url("sqlite://gatehouse.db"),
            "sqlite://gatehouse.db"
        );
    }
}
