//! Bulk import (`gatehouse import`): users, groups, memberships and child links, in
//! batches of one transaction each.
//!
//! A front door reads the file and hands each record over ([`Import::add`]); this module
//! decides what happens to it. Each record is checked as the API checks a create (names,
//! lengths, control characters, custom fields, the password policy, a bounded argon2id
//! `passwordHash`); a record that fails is refused and reported with its line, and
//! nothing of it is applied. Group and user names are resolved as the API resolves a
//! path segment ([`Services::try_resolve_group_id`], [`Services::try_resolve_user_id`]),
//! after the names the file itself defined. A user record is an existing user only by its
//! id, or by its username and email together; one that touches another user's names is
//! a conflict, reported, and none of its memberships is applied (the store decides,
//! inside the batch's transaction). Existing users and groups are skipped, so an
//! interrupted import is resumed by running it again. The format and rules are in
//! `docs/import.md`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Caller, Error, Result, Services};
use crate::auth::password::check_stored_hash;
use crate::clock::Millis;
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{GroupId, GroupRef, IdOrName, UserId};
use crate::domain::names::{self, FieldError, MAX_DESCRIPTION, MAX_STRING, name_key};
use crate::domain::password_policy;
use crate::domain::user::{PasswordHash, User};
use crate::store::{ImportBatch, ImportStats};

/// A user to create, or to match with an existing user.
#[derive(Debug, Clone, Default)]
pub struct ImportUser {
    /// The user's id (a UUID), for migrations that keep ids: the record then matches
    /// only the existing user with this id, or creates the user with it.
    pub id: Option<String>,
    /// Defaults to the email.
    pub username: Option<String>,
    /// Required.
    pub email: String,
    /// Optional profile field.
    pub first_name: Option<String>,
    /// Optional profile field.
    pub last_name: Option<String>,
    /// Optional profile field.
    pub timezone: Option<String>,
    /// Optional profile field.
    pub language: Option<String>,
    /// Free-form JSON object.
    pub custom: Map<String, Value>,
    /// A clear-text password, hashed with argon2id on the way in (slow).
    pub password: Option<String>,
    /// An existing argon2id PHC string, kept as it is.
    pub password_hash: Option<String>,
    /// Group names (or ids) to join.
    pub groups: Vec<String>,
}

/// A group to create (skipped if its name is taken).
#[derive(Debug, Clone, Default)]
pub struct ImportGroup {
    /// Its name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Free-form JSON object.
    pub custom: Map<String, Value>,
}

/// One record of an import.
#[derive(Debug, Clone)]
pub enum ImportRecord {
    /// A user, with the groups it joins.
    User(ImportUser),
    /// A group.
    Group(ImportGroup),
    /// A direct membership, by group and user name (or id).
    Member {
        /// The group's name or id.
        group: String,
        /// The user's id, username or email.
        user: String,
    },
    /// A child-group link, by name (or id).
    Child {
        /// The parent group's name or id.
        parent: String,
        /// The child group's name or id.
        child: String,
    },
}

/// Why a record was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// It breaks a rule.
    Refused,
    /// It touches another user's names.
    Conflict,
}

impl ProblemKind {
    /// `refused` or `conflict`, as the summary names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Conflict => "conflict",
        }
    }
}

/// A record that was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The record's line in the input.
    pub line: u64,
    /// Refused or in conflict.
    pub kind: ProblemKind,
    /// The field at fault, when one is.
    pub field: Option<&'static str>,
    /// A sentence for the operator.
    pub reason: String,
}

/// What an import did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTotals {
    /// Users created.
    pub users: u64,
    /// Users matched with an existing user (their memberships are applied to it).
    pub users_skipped: u64,
    /// Groups created.
    pub groups: u64,
    /// Groups whose name was taken.
    pub groups_skipped: u64,
    /// Memberships added (existing ones are not counted).
    pub members: u64,
    /// Child links added.
    pub children: u64,
}

/// A user record in the pending batch: its line and name keys, for the report.
struct Pending {
    line: u64,
    keys: [String; 2],
}

/// An import in progress: the pending batch and the names it can already resolve.
/// Made by [`Services::start_import`].
pub struct Import<'s> {
    services: &'s Services,
    caller: Caller,
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
    totals: ImportTotals,
    /// Problems not yet taken by the front door.
    problems: Vec<Problem>,
    now: Millis,
}

impl std::fmt::Debug for Import<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import")
            .field("pending", &self.pending)
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

fn check_optional_text(field: &'static str, v: Option<&String>) -> Result<(), FieldError> {
    v.map_or(Ok(()), |v| names::check_optional(field, v, MAX_STRING))
}

/// Checks a user record with the API's rules for a create (`service::users`); returns
/// the id it gives, if any.
fn check_user(u: &ImportUser, username: &str) -> Result<Option<UserId>, FieldError> {
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
fn check_group(g: &ImportGroup) -> Result<(), FieldError> {
    names::check_name("name", &g.name)?;
    if let Some(d) = &g.description {
        names::check_optional("description", d, MAX_DESCRIPTION)?;
    }
    names::check_custom("custom", &g.custom)
}

impl Services {
    /// Applies one batch of already-built users, groups, memberships and links in one
    /// transaction ([`crate::store::Store::import`]): existing users and groups are
    /// skipped or matched, conflicts reported. Administrators only. The records are
    /// taken as they are: [`Services::start_import`] checks them first; benchmarks use
    /// this to seed large directories.
    pub async fn import_batch(&self, caller: &Caller, batch: &ImportBatch) -> Result<ImportStats> {
        caller.require_admin()?;
        let event = self.event(caller, crate::domain::audit::EventType::UsersImported);
        let stats = self.store.import(batch, &event).await?;
        // Memberships and links may have made someone an administrator.
        self.callers_changed_all();
        Ok(stats)
    }

    /// Starts an import of records that are checked, resolved and applied in batches of
    /// `batch_size` records (at least one). Administrators only.
    pub fn start_import(&self, caller: &Caller, batch_size: usize) -> Result<Import<'_>> {
        caller.require_admin()?;
        Ok(Import {
            services: self,
            caller: caller.clone(),
            batch: ImportBatch::default(),
            pending: 0,
            batch_size: batch_size.max(1),
            groups: HashMap::new(),
            batch_users: HashMap::new(),
            batch_records: HashMap::new(),
            batch_member_records: Vec::new(),
            tainted_users: HashMap::new(),
            tainted_groups: HashMap::new(),
            totals: ImportTotals::default(),
            problems: Vec::new(),
            now: self.now(),
        })
    }
}

impl Import<'_> {
    /// Takes the records reported as not applied since the last call, in the order they
    /// were found (also after [`Import::add`] or [`Import::finish`] failed).
    pub fn take_problems(&mut self) -> Vec<Problem> {
        std::mem::take(&mut self.problems)
    }

    /// What the import did so far (the pending batch not included).
    pub fn totals(&self) -> &ImportTotals {
        &self.totals
    }

    /// Applies the pending batch. Call once after the last record.
    pub async fn finish(&mut self) -> Result<()> {
        self.flush().await
    }

    fn report(
        &mut self,
        line: u64,
        kind: ProblemKind,
        field: Option<&'static str>,
        reason: String,
    ) {
        self.problems.push(Problem {
            line,
            kind,
            field,
            reason,
        });
    }

    fn refuse(&mut self, line: u64, field: Option<&'static str>, reason: String) {
        self.report(line, ProblemKind::Refused, field, reason);
    }

    /// A refusal if `name` names a group whose own record was not applied.
    fn tainted_group(&self, name: &str) -> Option<String> {
        self.tainted_groups.get(&name_key(name)).map(|line| {
            format!("group '{name}' is the group of line {line}, which was not applied")
        })
    }

    async fn group_id(&mut self, name: &str) -> Result<GroupId> {
        let key = name_key(name);
        if let Some(id) = self.groups.get(&key) {
            return Ok(*id);
        }
        let id = self
            .services
            .try_resolve_group_id(&GroupRef::group(name))
            .await?
            .ok_or_else(|| Error::NotFound {
                message: format!(
                    "group '{name}' is neither in the database nor defined earlier in the file"
                ),
                data: json!({ "group": name }),
            })?;
        self.groups.insert(key, id);
        Ok(id)
    }

    async fn user_id(&mut self, name: &str) -> Result<UserId> {
        if let Some(id) = self.batch_users.get(&name_key(name)) {
            return Ok(*id);
        }
        self.services
            .try_resolve_user_id(&IdOrName::parse(name, UserId::parse))
            .await?
            .ok_or_else(|| Error::NotFound {
                message: format!(
                    "user '{name}' is neither in the database nor earlier in the file"
                ),
                data: json!({ "user": name }),
            })
    }

    /// Whether a user record could be new: none of its names (nor its id) is held in
    /// the database or earlier in the batch. Read before the batch; the store decides
    /// again inside it.
    async fn could_be_new(&self, keys: &[String; 2], id: Option<UserId>) -> Result<bool> {
        let store = self.services.store();
        for key in keys {
            if self.batch_users.contains_key(key) || store.find_user_by_key(key).await?.is_some() {
                return Ok(false);
            }
        }
        match id {
            Some(id) => Ok(!store.user_exists(id).await?),
            None => Ok(true),
        }
    }

    /// Takes one record, found at `line` of the input. A record that breaks a rule is
    /// reported ([`Import::take_problems`]); an error (a name that resolves to nothing,
    /// a database fault) stops the import.
    pub async fn add(&mut self, record: ImportRecord, line: u64) -> Result<()> {
        match record {
            ImportRecord::Group(g) => {
                let key = name_key(&g.name);
                if let Err(e) = check_group(&g) {
                    self.tainted_groups.insert(key, line);
                    self.refuse(line, Some(e.field), e.reason);
                    return Ok(());
                }
                self.tainted_groups.remove(&key);
                if self.groups.contains_key(&key) {
                    self.totals.groups_skipped += 1;
                    return Ok(());
                }
                if let Some(id) = self.services.store().find_group_by_key(&key).await? {
                    self.groups.insert(key, id);
                    self.totals.groups_skipped += 1;
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
            ImportRecord::User(u) => return self.add_user(u, line).await,
            ImportRecord::Member { group, user } => {
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
            ImportRecord::Child { parent, child } => {
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

    async fn add_user(&mut self, u: ImportUser, line: u64) -> Result<()> {
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
        // Hashing is slow, so a clear-text password is hashed only for a record that can
        // be a new user. One that cannot is sent as "must exist": if the store finds it
        // new after all (the user went away meanwhile), it is reported as a conflict
        // rather than created without its password.
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

    async fn flush_if_full(&mut self) -> Result<()> {
        if self.pending >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
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
        let s = self.services.import_batch(&self.caller, &batch).await?;
        self.totals.users += s.users;
        self.totals.users_skipped += s.users_skipped;
        self.totals.groups += s.groups;
        self.totals.groups_skipped += s.groups_skipped;
        self.totals.members += s.members;
        self.totals.children += s.children;
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
            self.report(line, ProblemKind::Conflict, None, reason);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_records_are_checked_as_the_api_checks_a_create() {
        let field = |u: ImportUser| {
            let username = u.username.clone().unwrap_or_else(|| u.email.clone());
            check_user(&u, &username).err().map(|e| e.field)
        };
        let base = || ImportUser {
            email: "a@example.com".into(),
            ..ImportUser::default()
        };
        assert_eq!(field(base()), None);
        assert_eq!(
            field(ImportUser {
                email: "nope".into(),
                ..base()
            }),
            Some("email")
        );
        assert_eq!(
            field(ImportUser {
                username: Some("a\u{1b}b".into()),
                ..base()
            }),
            Some("username")
        );
        assert_eq!(
            field(ImportUser {
                id: Some("not-a-uuid".into()),
                ..base()
            }),
            Some("id")
        );
        assert_eq!(
            field(ImportUser {
                password: Some("short".into()),
                ..base()
            }),
            Some("password")
        );
        assert_eq!(
            field(ImportUser {
                password_hash: Some("$argon2id$".into()),
                ..base()
            }),
            Some("passwordHash")
        );
        assert_eq!(
            field(ImportUser {
                language: Some("x".repeat(256)),
                ..base()
            }),
            Some("language")
        );
        assert_eq!(
            field(ImportUser {
                password: Some("Sturdy-Pass-42".into()),
                password_hash: Some("$argon2id$".into()),
                ..base()
            }),
            Some("password"),
            "password and passwordHash together"
        );
    }

    #[test]
    fn group_records_are_checked_as_the_api_checks_a_create() {
        let field = |g: ImportGroup| check_group(&g).err().map(|e| e.field);
        let base = || ImportGroup {
            name: "Staff".into(),
            ..ImportGroup::default()
        };
        assert_eq!(field(base()), None);
        assert_eq!(
            field(ImportGroup {
                name: " ".into(),
                ..base()
            }),
            Some("name")
        );
        assert_eq!(
            field(ImportGroup {
                description: Some("x".repeat(MAX_DESCRIPTION + 1)),
                ..base()
            }),
            Some("description")
        );
    }
}
