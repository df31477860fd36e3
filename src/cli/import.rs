//! `gatehouse import FILE`: bulk-load users, groups, memberships and child links from
//! JSON lines or CSV, straight into the database, in batches of one transaction each.
//!
//! Each record is checked as the API checks a create (names, lengths, control
//! characters, custom fields, the password policy, a bounded argon2id `passwordHash`);
//! a record that fails is refused and reported with its line, and nothing of it is
//! applied. A user record is an existing user only by its id, or by its username and
//! email together; one that touches another user's names is a conflict, reported, and
//! none of its memberships is applied (the store decides, inside the batch's
//! transaction). Existing users and groups are skipped, so an interrupted import is
//! resumed by running it again. The format and rules are in `docs/import.md`.

use std::collections::HashMap;
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
use crate::auth::password::check_stored_hash;
use crate::clock::SystemClock;
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{GroupId, UserId};
use crate::domain::names::{self, FieldError, MAX_DESCRIPTION, MAX_STRING, name_key};
use crate::domain::password_policy;
use crate::domain::user::{PasswordHash, User};
use crate::service::Services;
use crate::store::{ImportBatch, ImportStats};

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

/// A user record in the pending batch: its line and name keys, for the report.
struct Pending {
    line: u64,
    keys: [String; 2],
}

/// The import in progress: the pending batch and the names it can already resolve.
struct Importer {
    services: Services,
    batch: ImportBatch,
    pending: usize,
    batch_size: usize,
    /// Group name keys to ids, for groups seen so far (existing or created).
    groups: HashMap<String, GroupId>,
    /// Username and email keys of users in the pending batch.
    batch_users: HashMap<String, UserId>,
    /// The pending batch's user records by their (provisional) id.
    batch_records: HashMap<UserId, Pending>,
    /// The pending batch's `member` records that name one of its user records.
    batch_member_records: Vec<(UserId, u64)>,
    /// Names (user keys, ids, group keys) of records that were refused or conflicted,
    /// with their line: a later record naming one is refused rather than resolved to
    /// whoever holds that name in the database.
    tainted_users: HashMap<String, u64>,
    tainted_groups: HashMap<String, u64>,
    stats: ImportStats,
    conflicts: u64,
    refused: u64,
    problems: Vec<Problem>,
    bar: ProgressBar,
    now: i64,
}

/// The first broken rule of a record, as the API would name it.
type Refusal = FieldError;

fn check_optional_text(field: &'static str, v: Option<&String>) -> Result<(), Refusal> {
    v.map_or(Ok(()), |v| names::check_optional(field, v, MAX_STRING))
}

/// Checks a user record with the API's rules for a create (`service::users`).
fn check_user(u: &UserRecord, username: &str) -> Result<Option<UserId>, Refusal> {
    names::check_email(&u.email)?;
    names::check_name("username", username)?;
    check_optional_text("firstName", u.first_name.as_ref())?;
    check_optional_text("lastName", u.last_name.as_ref())?;
    check_optional_text("timezone", u.timezone.as_ref())?;
    check_optional_text("language", u.language.as_ref())?;
    names::check_custom("custom", &u.custom)?;
    let id = match &u.id {
        Some(id) => {
            Some(UserId::parse(id).ok_or_else(|| FieldError::new("id", "id must be a UUID"))?)
        }
        None => None,
    };
    match (&u.password, &u.password_hash) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "password",
                "give password or passwordHash, not both",
            ));
        }
        (Some(p), None) => {
            password_policy::check(p, &[u.first_name.as_deref(), u.last_name.as_deref()])?;
        }
        (None, Some(h)) => {
            check_stored_hash(h).map_err(|reason| FieldError::new("passwordHash", reason))?;
        }
        (None, None) => {}
    }
    Ok(id)
}

/// Checks a group record with the API's rules for a create (`service::groups`).
fn check_group(g: &GroupRecord) -> Result<(), Refusal> {
    names::check_name("name", &g.name)?;
    if let Some(d) = &g.description {
        names::check_optional("description", d, MAX_DESCRIPTION)?;
    }
    names::check_custom("custom", &g.custom)
}

impl Importer {
    /// Reports a record that was not applied.
    fn report(&mut self, problem: Problem) {
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
        if problem.kind == "conflict" {
            self.conflicts += 1;
        } else {
            self.refused += 1;
        }
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        }
    }

    fn refuse(&mut self, line: u64, field: Option<&'static str>, reason: String) {
        self.report(Problem {
            line,
            kind: "refused",
            field,
            reason,
        });
    }

    /// A refusal if `name` names a group whose own record was not applied.
    fn tainted_group(&self, name: &str) -> Option<String> {
        self.tainted_groups.get(&name_key(name)).map(|line| {
            format!("group '{name}' is the group of line {line}, which was not applied")
        })
    }

    async fn group_id(&mut self, name: &str) -> anyhow::Result<GroupId> {
        let key = name_key(name);
        if let Some(id) = self.groups.get(&key) {
            return Ok(*id);
        }
        let found = match GroupId::parse(name) {
            Some(id) if self.services.store().group_exists(id).await? => Some(id),
            _ => self.services.store().find_group_by_key(&key).await?,
        };
        let id = found.with_context(|| {
            format!("group '{name}' is neither in the database nor defined earlier in the file")
        })?;
        self.groups.insert(key, id);
        Ok(id)
    }

    async fn user_id(&mut self, name: &str) -> anyhow::Result<UserId> {
        let key = name_key(name);
        if let Some(id) = self.batch_users.get(&key) {
            return Ok(*id);
        }
        if let Some(id) = UserId::parse(name) {
            if self.services.store().user_exists(id).await? {
                return Ok(id);
            }
        }
        self.services
            .store()
            .find_user_by_key(&key)
            .await?
            .with_context(|| {
                format!("user '{name}' is neither in the database nor earlier in the file")
            })
    }

    /// Whether a user record could be new: none of its names (nor its id) is held in
    /// the database or earlier in the batch. Read before the batch; the store decides
    /// again inside it.
    async fn could_be_new(&self, keys: &[String; 2], id: Option<UserId>) -> anyhow::Result<bool> {
        for key in keys {
            if self.batch_users.contains_key(key)
                || self.services.store().find_user_by_key(key).await?.is_some()
            {
                return Ok(false);
            }
        }
        match id {
            Some(id) => Ok(!self.services.store().user_exists(id).await?),
            None => Ok(true),
        }
    }

    async fn add(&mut self, record: Record, line: u64) -> anyhow::Result<()> {
        match record {
            Record::Group(g) => {
                let key = name_key(&g.name);
                if let Err(e) = check_group(&g) {
                    self.tainted_groups.insert(key, line);
                    self.refuse(line, Some(e.field), e.reason);
                    return Ok(());
                }
                self.tainted_groups.remove(&key);
                if self.groups.contains_key(&key) {
                    self.stats.groups_skipped += 1;
                    return Ok(());
                }
                if let Some(id) = self.services.store().find_group_by_key(&key).await? {
                    self.groups.insert(key, id);
                    self.stats.groups_skipped += 1;
                    return Ok(());
                }
                // The batch inserts its groups before its memberships and links, so later
                // records in the same batch may already name this group.
                let id = GroupId::new();
                self.groups.insert(key, id);
                self.batch.groups.push(Group {
                    id,
                    name: g.name,
                    description: g.description,
                    kind: GroupType::Contensis,
                    custom: g.custom,
                    created: self.now,
                    modified: self.now,
                    user_count: 0,
                    child_group_count: 0,
                });
                self.pending += 1;
            }
            Record::User(u) => return self.add_user(u, line).await,
            Record::Member { group, user } => {
                if let Some(reason) = self.tainted_group(&group) {
                    self.refuse(line, Some("group"), reason);
                    return Ok(());
                }
                let key = name_key(&user);
                if let Some(&at) = self.tainted_users.get(&key) {
                    let reason =
                        format!("user '{user}' is the user of line {at}, which was not applied");
                    self.refuse(line, Some("user"), reason);
                    return Ok(());
                }
                let g = self.group_id(&group).await?;
                let u = self.user_id(&user).await?;
                if self.batch_records.contains_key(&u) {
                    self.batch_member_records.push((u, line));
                }
                self.batch.members.push((g, u));
                self.pending += 1;
            }
            Record::Child { parent, child } => {
                for (field, name) in [("parent", &parent), ("child", &child)] {
                    if let Some(reason) = self.tainted_group(name) {
                        self.refuse(line, Some(field), reason);
                        return Ok(());
                    }
                }
                let p = self.group_id(&parent).await?;
                let c = self.group_id(&child).await?;
                self.batch.children.push((p, c));
                self.pending += 1;
            }
        }
        self.flush_if_full().await
    }

    async fn add_user(&mut self, u: UserRecord, line: u64) -> anyhow::Result<()> {
        let username = u.username.clone().unwrap_or_else(|| u.email.clone());
        let keys = [name_key(&username), name_key(&u.email)];
        let id = match check_user(&u, &username) {
            Ok(id) => id,
            Err(e) => {
                self.taint_user(&keys, u.id.as_deref().map(name_key), line);
                self.refuse(line, Some(e.field), e.reason);
                return Ok(());
            }
        };
        for g in &u.groups {
            if let Some(reason) = self.tainted_group(g) {
                self.taint_user(&keys, id.map(|id| id.to_string()), line);
                self.refuse(line, Some("groups"), reason);
                return Ok(());
            }
        }
        let mut groups = Vec::with_capacity(u.groups.len());
        for g in &u.groups {
            groups.push(self.group_id(g).await?);
        }
        // A batch names each user once: a second record with the same id goes into the
        // next batch, where it matches the first.
        if let Some(id) = id {
            if self.batch_records.contains_key(&id) {
                self.flush().await?;
            }
        }
        // Hashing is slow (~20 ms), so a clear-text password is hashed only for a record
        // that can be a new user. One that cannot is sent as "must exist": if the store
        // finds it new after all (the user went away meanwhile), it is reported as a
        // conflict rather than created without its password.
        let existing_only = u.password.is_some() && !self.could_be_new(&keys, id).await?;
        let hash = match (u.password, u.password_hash) {
            (Some(_), _) if existing_only => None,
            (Some(p), _) => Some(crate::auth::password::hash(p).await?),
            (None, Some(h)) => Some(PasswordHash(h)),
            (None, None) => None,
        };
        let mut user = User {
            first_name: u.first_name,
            last_name: u.last_name,
            timezone: u.timezone,
            language: u.language,
            custom: u.custom,
            ..User::new(username, u.email, self.now).with_password(hash, self.now)
        };
        if let Some(id) = id {
            user.id = id;
            self.batch.ids_given.insert(id);
        }
        let id = user.id;
        if existing_only {
            self.batch.existing_only.insert(id);
        }
        for key in &keys {
            self.tainted_users.remove(key);
            self.batch_users.entry(key.clone()).or_insert(id);
        }
        self.tainted_users.remove(&id.to_string());
        self.batch_records.insert(id, Pending { line, keys });
        self.batch.users.push(user);
        for g in groups {
            self.batch.members.push((g, id));
        }
        self.pending += 1;
        self.flush_if_full().await
    }

    /// Remembers the names of a user record that was not applied.
    fn taint_user(&mut self, keys: &[String; 2], id: Option<String>, line: u64) {
        for key in keys.iter().cloned().chain(id) {
            self.tainted_users.insert(key, line);
        }
    }

    async fn flush_if_full(&mut self) -> anyhow::Result<()> {
        if self.pending >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let records = std::mem::take(&mut self.batch_records);
        let member_records = std::mem::take(&mut self.batch_member_records);
        self.pending = 0;
        self.batch_users.clear();
        if batch.users.is_empty()
            && batch.groups.is_empty()
            && batch.members.is_empty()
            && batch.children.is_empty()
        {
            return Ok(());
        }
        let event = self.services.event(
            &crate::service::Caller::operator(),
            crate::domain::audit::EventType::UsersImported,
        );
        let s = self.services.store().import(&batch, &event).await?;
        self.stats.users += s.users;
        self.stats.users_skipped += s.users_skipped;
        self.stats.groups += s.groups;
        self.stats.groups_skipped += s.groups_skipped;
        self.stats.members += s.members;
        self.stats.children += s.children;
        // A conflict's memberships were not applied, nor those of `member` records that
        // named it; later records naming it are refused (`tainted_users`).
        let mut conflicted: HashMap<UserId, u64> = HashMap::new();
        for (id, reason) in s.conflicts {
            let line = records.get(&id).map_or(0, |p| p.line);
            if let Some(p) = records.get(&id) {
                let keys = p.keys.clone();
                let given = batch.ids_given.contains(&id).then(|| id.to_string());
                self.taint_user(&keys, given, line);
            }
            conflicted.insert(id, line);
            self.report(Problem {
                line,
                kind: "conflict",
                field: None,
                reason,
            });
        }
        for (id, line) in member_records {
            if let Some(at) = conflicted.get(&id) {
                let reason = format!("the user is the user of line {at}, which was not applied");
                self.refuse(line, Some("user"), reason);
            }
        }
        Ok(())
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
    let now = services.now();
    let mut importer = Importer {
        services,
        batch: ImportBatch::default(),
        pending: 0,
        batch_size: args.batch.max(1),
        groups: HashMap::new(),
        batch_users: HashMap::new(),
        batch_records: HashMap::new(),
        batch_member_records: Vec::new(),
        tainted_users: HashMap::new(),
        tainted_groups: HashMap::new(),
        stats: ImportStats::default(),
        conflicts: 0,
        refused: 0,
        problems: Vec::new(),
        bar: bar.clone(),
        now,
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
                    let reason = format!("the line is longer than {MAX_LINE} bytes");
                    importer.refuse(n, None, reason);
                    continue;
                }
                let line =
                    std::str::from_utf8(&buf).with_context(|| format!("line {n}: not UTF-8"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: Record = serde_json::from_str(line)
                    .with_context(|| format!("line {n}: not a valid record"))?;
                importer
                    .add(record, n)
                    .await
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
                importer
                    .add(Record::User(row), line)
                    .await
                    .with_context(|| format!("line {line}"))?;
            }
        }
    }
    importer.flush().await?;
    bar.finish_and_clear();
    let s = importer.stats;
    let mut problems = importer.problems;
    problems.sort_by_key(|p| p.line);
    let listed = problems.len() as u64;
    let (conflicts, refused) = (importer.conflicts, importer.refused);
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

    #[test]
    fn user_records_are_checked_as_the_api_checks_a_create() {
        let record = |v: serde_json::Value| -> UserRecord { serde_json::from_value(v).unwrap() };
        let field = |v: serde_json::Value| {
            let u = record(v);
            let username = u.username.clone().unwrap_or_else(|| u.email.clone());
            check_user(&u, &username).err().map(|e| e.field)
        };
        assert_eq!(field(serde_json::json!({"email": "a@example.com"})), None);
        assert_eq!(field(serde_json::json!({"email": "nope"})), Some("email"));
        assert_eq!(
            field(serde_json::json!({"email": "a@example.com", "username": "a\u{1b}b"})),
            Some("username")
        );
        assert_eq!(
            field(serde_json::json!({"email": "a@example.com", "id": "not-a-uuid"})),
            Some("id")
        );
        assert_eq!(
            field(serde_json::json!({"email": "a@example.com", "password": "short"})),
            Some("password")
        );
        assert_eq!(
            field(serde_json::json!({"email": "a@example.com", "passwordHash": "$argon2id$"})),
            Some("passwordHash")
        );
        assert_eq!(
            field(serde_json::json!({"email": "a@example.com", "language": "x".repeat(256)})),
            Some("language")
        );
    }
}
