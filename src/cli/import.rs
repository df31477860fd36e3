//! `gatehouse import FILE`: bulk-load users, groups, memberships and child links from
//! JSON lines or CSV, straight into the database, in batches of one transaction each.
//!
//! This module reads the file (bounded lines, JSON lines or CSV), shows progress and
//! reports; what happens to each record is decided by the service
//! ([`crate::service::import`]): checked as the API checks a create, names resolved as
//! the API resolves them, conflicts reported, existing users and groups skipped (so an
//! interrupted import is resumed by running it again). The format and rules are in
//! `docs/import.md`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::admin::DatabaseArg;
use crate::clock::SystemClock;
use crate::service::import::{self, Import, ImportGroup, ImportRecord, ImportUser, ProblemKind};
use crate::service::{Caller, Services};

/// The exit code of a run under `--strict` that refused a record or met a conflict: a
/// rule refused them, as every command's 4 says (1 is an import stopped by an error, 2 a
/// command-line error; README.md lists every code).
pub const STRICT_EXIT: u8 = super::output::EXIT_REFUSED;

/// A line longer than this is refused unread (the API's request bodies are as bounded).
const MAX_LINE: usize = 1024 * 1024;

/// The summary lists at most this many problems; stderr has every one.
const MAX_LISTED: usize = 1000;

/// What `run` returns under `--strict` when records were refused or conflicted; the
/// binary exits with [`STRICT_EXIT`].
#[derive(Debug, thiserror::Error)]
#[error("{0} record(s) were refused or conflicted, and --strict was given")]
pub struct StrictFailure(pub u64);

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line, with a `type` of user, group, member or child.
    Jsonl,
    /// Users only, with a header row (username, email, firstName, lastName, groups, ...).
    Csv,
}

/// Arguments of `gatehouse import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file to load.
    pub file: PathBuf,
    /// The format; by default taken from the file's extension (.csv, else JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Records per transaction.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// No progress bar (for logs and scripts).
    #[arg(long)]
    pub quiet: bool,
    /// Exit with code 4 if any record was refused or conflicted (the rest is still
    /// loaded). Without it, such records are reported and the exit code is 0.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub db: DatabaseArg,
}

/// One record of the input.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record {
    User(UserRecord),
    Group(GroupRecord),
    Member { group: String, user: String },
    Child { parent: String, child: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRecord {
    /// The user's id (a UUID), for migrations that keep ids: the record then matches
    /// only the existing user with this id, or creates the user with it.
    id: Option<String>,
    username: Option<String>,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    timezone: Option<String>,
    language: Option<String>,
    #[serde(default)]
    custom: Map<String, serde_json::Value>,
    /// A clear-text password, hashed with argon2id on the way in (slow: ~20 ms each).
    password: Option<String>,
    /// An existing argon2id PHC string, kept as it is.
    password_hash: Option<String>,
    /// Group names (or ids) to join.
    #[serde(default, deserialize_with = "groups_field")]
    groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct GroupRecord {
    name: String,
    description: Option<String>,
    #[serde(default)]
    custom: Map<String, serde_json::Value>,
}

/// `groups` is a JSON array, or (in CSV) one string separated by `;` or `|`.
fn groups_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Groups {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Groups::deserialize(d)? {
        Groups::List(v) => v,
        Groups::Text(s) => s
            .split([';', '|'])
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A record that was not applied, as the summary and stderr report it.
#[derive(Debug, Clone, Serialize)]
struct Problem {
    line: u64,
    /// `refused` (it breaks a rule) or `conflict` (it touches another user's names).
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    reason: String,
}

impl From<import::Problem> for Problem {
    fn from(p: import::Problem) -> Self {
        Self {
            line: p.line,
            kind: p.kind.as_str(),
            field: p.field,
            reason: p.reason,
        }
    }
}

impl From<Record> for ImportRecord {
    fn from(r: Record) -> Self {
        match r {
            Record::User(u) => Self::User(u.into()),
            Record::Group(g) => Self::Group(ImportGroup {
                name: g.name,
                description: g.description,
                custom: g.custom,
            }),
            Record::Member { group, user } => Self::Member { group, user },
            Record::Child { parent, child } => Self::Child { parent, child },
        }
    }
}

impl From<UserRecord> for ImportUser {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            timezone: u.timezone,
            language: u.language,
            custom: u.custom,
            password: u.password,
            password_hash: u.password_hash,
            groups: u.groups,
        }
    }
}

/// What the run reports: every problem on stderr as it is found, the first
/// [`MAX_LISTED`] in the summary.
struct Report {
    conflicts: u64,
    refused: u64,
    problems: Vec<Problem>,
    bar: ProgressBar,
}

impl Report {
    fn add(&mut self, problem: Problem) {
        let text = match problem.field {
            Some(f) => format!(
                "line {}: {}: {f}: {}",
                problem.line, problem.kind, problem.reason
            ),
            None => format!(
                "line {}: {}: {}",
                problem.line, problem.kind, problem.reason
            ),
        };
        self.bar.suspend(|| eprintln!("{text}"));
        if problem.kind == ProblemKind::Conflict.as_str() {
            self.conflicts += 1;
        } else {
            self.refused += 1;
        }
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        }
    }

    /// Reports what `import` found while it took a record or applied a batch, then
    /// passes `result` on.
    fn after(
        &mut self,
        import: &mut Import<'_>,
        result: crate::service::Result<()>,
    ) -> crate::service::Result<()> {
        for p in import.take_problems() {
            self.add(p.into());
        }
        result
    }
}

fn detect(path: &Path, format: Option<Format>) -> Format {
    format.unwrap_or_else(|| {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Format::Csv
        } else {
            Format::Jsonl
        }
    })
}

/// A reader that advances a progress bar by the bytes it reads.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Runs `gatehouse import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta} {msg}")
            .expect("a valid template"),
    );
    let reader = BufReader::new(Counted {
        inner: file,
        bar: bar.clone(),
    });
    let store = crate::app::open_store_for_import(&args.db.database_url).await?;
    let services = Services::start(
        store,
        Arc::new(SystemClock),
        crate::service::Settings::default(),
    )
    .await?;
    let mut import = services.start_import(&Caller::operator(), args.batch)?;
    let mut report = Report {
        conflicts: 0,
        refused: 0,
        problems: Vec::new(),
        bar: bar.clone(),
    };
    match detect(&args.file, args.format) {
        Format::Jsonl => {
            let mut reader = reader;
            let mut buf = Vec::new();
            let mut n: u64 = 0;
            while let Some(fits) = read_line_bounded(&mut reader, &mut buf, MAX_LINE)
                .with_context(|| format!("reading line {}", n + 1))?
            {
                n += 1;
                if !fits {
                    report.add(Problem {
                        line: n,
                        kind: ProblemKind::Refused.as_str(),
                        field: None,
                        reason: format!("the line is longer than {MAX_LINE} bytes"),
                    });
                    continue;
                }
                let line =
                    std::str::from_utf8(&buf).with_context(|| format!("line {n}: not UTF-8"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: Record = serde_json::from_str(line)
                    .with_context(|| format!("line {n}: not a valid record"))?;
                let added = import.add(record.into(), n).await;
                report
                    .after(&mut import, added)
                    .with_context(|| format!("line {n}"))?;
            }
        }
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(reader);
            let headers = csv.headers().context("reading the CSV header")?.clone();
            let mut record = csv::StringRecord::new();
            let mut n: u64 = 0;
            loop {
                n += 1;
                let more = csv
                    .read_record(&mut record)
                    .with_context(|| format!("CSV record {n}"))?;
                if !more {
                    break;
                }
                let line = record.position().map_or(n + 1, |p| p.line());
                let row: UserRecord = record
                    .deserialize(Some(&headers))
                    .with_context(|| format!("line {line}: not a valid record"))?;
                let added = import.add(ImportRecord::User(row.into()), line).await;
                report
                    .after(&mut import, added)
                    .with_context(|| format!("line {line}"))?;
            }
        }
    }
    let finished = import.finish().await;
    report.after(&mut import, finished)?;
    bar.finish_and_clear();
    let s = import.totals().clone();
    let mut problems = report.problems;
    problems.sort_by_key(|p| p.line);
    let listed = problems.len() as u64;
    let (conflicts, refused) = (report.conflicts, report.refused);
    println!(
        "{}",
        serde_json::json!({
            "users": s.users, "usersSkipped": s.users_skipped,
            "groups": s.groups, "groupsSkipped": s.groups_skipped,
            "memberships": s.members, "childLinks": s.children,
            "conflicts": conflicts, "refused": refused,
            "problems": problems,
            "problemsNotListed": conflicts + refused - listed,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    );
    if args.strict && conflicts + refused > 0 {
        return Err(StrictFailure(conflicts + refused).into());
    }
    Ok(())
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, keeping at most `max` bytes
/// in memory: `Some(true)` for a line, `Some(false)` for one that was longer (the rest
/// of it is skipped), `None` at the end of the input.
fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut read_any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(read_any.then_some(fits));
        }
        read_any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        if fits && buf.len() + part.len() <= max {
            buf.extend_from_slice(part);
        } else {
            fits = false;
            buf.clear();
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(fits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_within_their_bound() {
        let mut r = std::io::BufReader::with_capacity(4, &b"ab\r\ncdefgh\n\nxyz"[..]);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while let Some(fits) = read_line_bounded(&mut r, &mut buf, 5).unwrap() {
            seen.push((fits, String::from_utf8(buf.clone()).unwrap()));
        }
        let want = [(true, "ab"), (false, ""), (true, ""), (true, "xyz")];
        let want: Vec<(bool, String)> = want.iter().map(|(f, s)| (*f, s.to_string())).collect();
        assert_eq!(seen, want);
    }
}
