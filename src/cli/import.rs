//! `gatehouse import FILE`: bulk-load users, groups, memberships and child links from
//! JSON lines or CSV, straight into the database, in batches of one transaction each.
//!
//! Idempotent: users whose username or email exists and groups whose name exists are
//! skipped (their memberships are still applied), so an interrupted import is resumed by
//! running it again. The format is documented in `docs/import.md`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::Map;

use super::admin::DatabaseArg;
use crate::clock::SystemClock;
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{GroupId, UserId};
use crate::domain::names::{self, name_key};
use crate::domain::user::{PasswordHash, User};
use crate::service::Services;
use crate::store::{ImportBatch, ImportStats};

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
    stats: ImportStats,
    now: i64,
}

impl Importer {
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

    async fn add(&mut self, record: Record) -> anyhow::Result<()> {
        match record {
            Record::Group(g) => {
                names::check_name("name", &g.name).map_err(|e| anyhow::anyhow!(e.reason))?;
                let key = name_key(&g.name);
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
            Record::User(u) => {
                let username = u.username.clone().unwrap_or_else(|| u.email.clone());
                names::check_email(&u.email).map_err(|e| anyhow::anyhow!(e.reason))?;
                names::check_name("username", &username).map_err(|e| anyhow::anyhow!(e.reason))?;
                let mut groups = Vec::with_capacity(u.groups.len());
                for g in &u.groups {
                    groups.push(self.group_id(g).await?);
                }
                // Hashing is slow, so a clear-text password is only hashed for a user
                // who does not exist yet. Otherwise the store skips users whose name is
                // taken and gives their memberships to the user holding the name.
                if u.password.is_some() {
                    if let Some(id) = self
                        .services
                        .store()
                        .find_user_by_key(&name_key(&username))
                        .await?
                    {
                        self.stats.users_skipped += 1;
                        for g in groups {
                            self.batch.members.push((g, id));
                        }
                        self.pending += 1;
                        return self.flush_if_full().await;
                    }
                }
                let hash = match (u.password, u.password_hash) {
                    (_, Some(h)) if h.starts_with("$argon2id$") => Some(PasswordHash(h)),
                    (_, Some(_)) => bail!("passwordHash must be an argon2id PHC string"),
                    (Some(p), None) => Some(crate::auth::password::hash(p).await?),
                    (None, None) => None,
                };
                let user = User {
                    first_name: u.first_name,
                    last_name: u.last_name,
                    timezone: u.timezone,
                    language: u.language,
                    custom: u.custom,
                    ..User::new(username.clone(), u.email.clone(), self.now)
                        .with_password(hash, self.now)
                };
                let id = user.id;
                self.batch_users.entry(name_key(&username)).or_insert(id);
                self.batch_users.entry(name_key(&u.email)).or_insert(id);
                self.batch.users.push(user);
                for g in groups {
                    self.batch.members.push((g, id));
                }
                self.pending += 1;
            }
            Record::Member { group, user } => {
                let g = self.group_id(&group).await?;
                let u = self.user_id(&user).await?;
                self.batch.members.push((g, u));
                self.pending += 1;
            }
            Record::Child { parent, child } => {
                let p = self.group_id(&parent).await?;
                let c = self.group_id(&child).await?;
                self.batch.children.push((p, c));
                self.pending += 1;
            }
        }
        self.flush_if_full().await
    }

    async fn flush_if_full(&mut self) -> anyhow::Result<()> {
        if self.pending >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        if batch.users.is_empty()
            && batch.groups.is_empty()
            && batch.members.is_empty()
            && batch.children.is_empty()
        {
            return Ok(());
        }
        let s = self.services.store().import(&batch).await?;
        self.stats.users += s.users;
        self.stats.users_skipped += s.users_skipped;
        self.stats.groups += s.groups;
        self.stats.groups_skipped += s.groups_skipped;
        self.stats.members += s.members;
        self.stats.children += s.children;
        self.pending = 0;
        self.batch_users.clear();
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
        stats: ImportStats::default(),
        now,
    };
    match detect(&args.file, args.format) {
        Format::Jsonl => {
            for (n, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("reading line {}", n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: Record = serde_json::from_str(&line)
                    .with_context(|| format!("line {}: not a valid record", n + 1))?;
                importer
                    .add(record)
                    .await
                    .with_context(|| format!("line {}", n + 1))?;
            }
        }
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(reader);
            for (n, row) in csv.deserialize::<UserRecord>().enumerate() {
                let row = row.with_context(|| format!("CSV record {}", n + 1))?;
                importer
                    .add(Record::User(row))
                    .await
                    .with_context(|| format!("CSV record {}", n + 1))?;
            }
        }
    }
    importer.flush().await?;
    bar.finish_and_clear();
    let s = importer.stats;
    println!(
        "{}",
        serde_json::json!({
            "users": s.users, "usersSkipped": s.users_skipped,
            "groups": s.groups, "groupsSkipped": s.groups_skipped,
            "memberships": s.members, "childLinks": s.children,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
