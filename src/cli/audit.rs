//! `gatehouse audit export`: the audit log as JSON lines, for compliance archives.

use std::io::Write as _;

use clap::{Args, Subcommand, ValueEnum};

use super::admin::{DatabaseArg, services};
use crate::clock::parse_rfc3339;
use crate::service::Caller;
use crate::service::webhooks::payload;

/// `gatehouse audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write every event recorded at or after --since, oldest first, one JSON object per
    /// line (the shape of a webhook delivery's body).
    Export(ExportArgs),
}

/// The output formats of `audit export`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
}

/// `gatehouse audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// RFC 3339 date-time: export events recorded at or after it (default: all).
    #[arg(long)]
    since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    #[command(flatten)]
    db: DatabaseArg,
}

/// Runs an `audit` command.
pub async fn run_audit(cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Export(args) = cmd;
    let since = match args.since.as_deref() {
        None => 0,
        Some(s) => parse_rfc3339(s).ok_or_else(|| {
            anyhow::anyhow!("--since must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z")
        })?,
    };
    let Format::Jsonl = args.format;
    let services = services(&args.db.database_url).await?;
    let operator = Caller::operator();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = 0;
    loop {
        let chunk = services.export_audit(&operator, after, since).await?;
        let Some(last) = chunk.last() else {
            break;
        };
        after = last.seq;
        for record in &chunk {
            writeln!(out, "{}", payload(record))?;
        }
    }
    out.flush()?;
    Ok(())
}
