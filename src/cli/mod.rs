//! The `gatehouse` command line: one binary, a subcommand per task.

pub mod admin;
pub mod audit;
pub mod docs;
pub mod group;
pub mod import;
pub mod output;
pub mod serve;
pub mod target;
pub mod user;

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
    Serve(Box<crate::config::Config>),
    /// Recovery commands that work directly on the database.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Read the audit log directly from the database.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage API keys directly on the database.
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Manage users, on the database or through a running server (--server).
    User(user::UserArgs),
    /// Manage groups and memberships, on the database or through a running server.
    Group(group::GroupArgs),
    /// Bulk-load users, groups and memberships from JSON lines or CSV (idempotent).
    Import(import::ImportArgs),
    /// Apply database migrations and exit.
    Migrate {
        /// Database URL.
        #[arg(
            long = "database",
            env = "GATEHOUSE_DATABASE_URL",
            hide_env_values = true,
            default_value = "sqlite://gatehouse.db"
        )]
        database_url: String,
    },
    /// Print a shell completion script (e.g. `gatehouse completions bash > /etc/bash_completion.d/gatehouse`).
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one per command with --dir.
    Man(docs::ManArgs),
}

/// Parses a command line (program name first), reading `serve`'s config file when one
/// is named, and runs it.
pub fn main_from(args: Vec<OsString>) -> anyhow::Result<()> {
    crate::app::install_tls_provider();
    let (matches, warnings) = crate::config::matches_with_file(&Cli::command(), args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!(e.render()))?;
    if let Command::Serve(config) = &mut cli.command {
        config.warnings.extend(warnings);
    }
    run(cli)
}

/// The process's exit code for a run's result, the error printed to stderr in one line.
/// The codes (README.md, "Exit codes"): 0 success; 1 any other error; 2 a command line
/// that cannot be used; 3 a user or group that was named does not exist; 4 a rule
/// refused the change (and `import --strict` with records refused or in conflict).
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    let Err(e) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    // `{:#}` puts the causes on the same line: "opening …: unable to open database file".
    eprintln!("Error: {e:#}");
    let code = if let Some(f) = e.downcast_ref::<output::Failure>() {
        f.exit_code()
    } else if e.downcast_ref::<import::StrictFailure>().is_some() {
        output::EXIT_REFUSED
    } else {
        output::EXIT_OTHER
    };
    std::process::ExitCode::from(code)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(config) => runtime.block_on(serve::run(config.with_environment())),
        Command::Audit(cmd) => runtime.block_on(async {
            serve::init_logging(false);
            audit::run_audit(cmd).await
        }),
        Command::Admin(cmd) => runtime.block_on(async {
            serve::init_logging(false);
            admin::run_admin(cmd).await
        }),
        Command::Apikey(cmd) => runtime.block_on(async {
            serve::init_logging(false);
            admin::run_api_key(cmd).await
        }),
        Command::User(args) => runtime.block_on(async {
            serve::init_logging_quiet();
            user::run(args).await
        }),
        Command::Group(args) => runtime.block_on(async {
            serve::init_logging_quiet();
            group::run(args).await
        }),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
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
