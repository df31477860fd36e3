//! The `gatehouse` command line: one binary, a subcommand per task.

pub mod admin;
pub mod import;
pub mod serve;

use std::ffi::OsString;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// gatehouse: a users-and-groups security server speaking the Contensis Security API.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(crate::config::Config),
    /// Recovery commands that work directly on the database.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Manage API keys directly on the database.
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Bulk-load users, groups and memberships from JSON lines or CSV (idempotent).
    Import(import::ImportArgs),
    /// Apply database migrations and exit.
    Migrate {
        /// Database URL.
        #[arg(
            long = "database",
            env = "GATEHOUSE_DATABASE_URL",
            default_value = "sqlite://gatehouse.db"
        )]
        database_url: String,
    },
}

/// Parses a command line (program name first), reading `serve`'s config file when one
/// is named, and runs it.
pub fn main_from(args: Vec<OsString>) -> anyhow::Result<()> {
    let (matches, warnings) = crate::config::matches_with_file(&Cli::command(), args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!(e.render()))?;
    if let Command::Serve(config) = &mut cli.command {
        config.warnings.extend(warnings);
    }
    run(cli)
}

/// The process's exit code for a run's result: 0 on success; on an error, the error
/// printed to stderr (as `anyhow` prints one from `main`) and 1, or
/// [`import::STRICT_EXIT`] for an import under `--strict` that refused or met a conflict.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            if e.downcast_ref::<import::StrictFailure>().is_some() {
                std::process::ExitCode::from(import::STRICT_EXIT)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(config) => runtime.block_on(serve::run(config.with_environment())),
        Command::Admin(cmd) => runtime.block_on(async {
            serve::init_logging(false);
            admin::run_admin(cmd).await
        }),
        Command::Apikey(cmd) => runtime.block_on(async {
            serve::init_logging(false);
            admin::run_api_key(cmd).await
        }),
        Command::Import(args) => runtime.block_on(async {
            serve::init_logging(false);
            import::run(args).await
        }),
        Command::Migrate { database_url } => runtime.block_on(async {
            serve::init_logging(false);
            crate::app::open_store(&database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
