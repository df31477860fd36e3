//! Persistence behind one object-safe trait, [`Store`], with one implementation per
//! database (SQLite now, PostgreSQL beside it).
//!
//! Every method is one transaction at the level of intent ("add these members", "remove
//! this child link") so that the invariants the database must keep (unique names, the
//! group closure, no cycles, at least one administrator) are checked in the same
//! transaction as the write, whichever node makes it. No sqlx type appears in a
//! signature, and nothing here knows about HTTP.

pub mod audit;
pub mod filter_sql;
mod group_graph;
mod import_match;
mod name_cache;
pub mod postgres;
mod sql;
pub mod sqlite;
mod transactions;
mod tx;

use std::collections::HashSet;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{Delivery, Event, Record, Webhook};
use crate::domain::group::Group;
use crate::domain::ids::{ApiKeyId, GroupId, UserId};
use crate::domain::user::{PasswordHash, User};
use crate::query::ast::{Expr, OrderBy, Relation};
use filter_sql::{Columns, Ctx, FtsIndex};

/// What went wrong in the store, in terms the service layer can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to change does not exist (any more).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit.
    #[error("{0:?} is already in use")]
    Unique(UniqueField),
    /// The change would make a group contain itself.
    #[error("the change would create a cycle of groups")]
    Cycle,
    /// The change would leave System Administrators without an active member.
    #[error("the change would leave System Administrators without an active member")]
    LastAdmin,
    /// Anything else: a real fault.
    #[error(transparent)]
    Other(#[from] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Other(Box::new(other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Other(Box::new(e))
    }
}

/// A row named the way a path segment names it: by id when the segment parses as one,
/// else (or when no row has that id) by its folded name key (`name_key`).
#[derive(Debug, Clone, Copy)]
pub struct Named<'a, Id> {
    /// The segment as an id, if it parses as one.
    pub id: Option<Id>,
    /// The segment folded with `name_key`.
    pub key: &'a str,
}

/// What [`Store::check_member`] and [`Store::add_member_named`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberCheck {
    /// The group, if it exists.
    pub group: Option<GroupId>,
    /// The user, if they exist.
    pub user: Option<UserId>,
    /// Whether both exist and the user is in the group (for an add: is now a direct
    /// member).
    pub member: bool,
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// The username equals another user's username or email.
    Username,
    /// The email equals another user's username or email.
    Email,
    /// The group name is taken.
    GroupName,
    /// The API key name is taken.
    ApiKeyName,
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

pub use crate::domain::page::{Page, PageRequest};

/// Filters, ordering and paging shared by every list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Case-insensitive "contains" over the resource's text fields (`q`).
    pub q: Option<String>,
    /// A parsed ZenQL or JSON filter.
    pub filter: Option<Expr>,
    /// Ordering; empty means the resource's default order.
    pub order: OrderBy,
    /// The page wanted.
    pub page: PageRequest,
    /// What `now()` and `currentUser()` mean in the filter.
    pub ctx: Ctx,
}

impl ListQuery {
    /// A query for everything, in default order, with the given page.
    pub fn page(page: PageRequest, ctx: Ctx) -> Self {
        Self {
            q: None,
            filter: None,
            order: OrderBy(Vec::new()),
            page,
            ctx,
        }
    }
}

/// How users' fields map to columns (table alias `u`), the same on every backend.
/// Username, email and names map to copies lower-cased in Rust (`*_lc`), so that
/// case-insensitive comparison folds Unicode on SQLite too (whose `lower()` is ASCII-only).
#[derive(Debug, Clone, Copy)]
pub struct UserColumns;

impl Columns for UserColumns {
    fn column(&self, field: &str) -> &'static str {
        match field {
            "id" => "u.id",
            "email" => "u.email_lc",
            "firstName" => "u.first_name_lc",
            "lastName" => "u.last_name_lc",
            "timezone" => "u.timezone",
            "language" => "u.language",
            "created" => "u.created",
            "modified" => "u.modified",
            "lastLogin" => "u.last_login",
            "expiry" => "u.expiry",
            "passwordChanged" => "u.password_changed",
            "status.suspended" => "u.suspended",
            "status.locked" => "u.locked",
            "status.passwordResetRequired" => "u.password_reset_required",
            // `username`, and anything the field set does not know (it cannot reach here).
            _ => "u.username_lc",
        }
    }

    fn custom_column(&self) -> &'static str {
        "u.custom"
    }

    fn free_text_columns(&self) -> &'static [&'static str] {
        &[
            "u.username_lc",
            "u.email_lc",
            "u.first_name_lc",
            "u.last_name_lc",
        ]
    }

    fn is_folded(&self, column: &str) -> bool {
        // Ids are written in lower case (hyphenated UUIDs) by construction.
        matches!(
            column,
            "u.id" | "u.username_lc" | "u.email_lc" | "u.first_name_lc" | "u.last_name_lc"
        )
    }

    fn equality_index(&self, column: &str) -> Option<&'static str> {
        // The email has no index of its own; every email is a key of `user_identifiers`
        // (folded the same way), whose primary key finds its user.
        (column == "u.email_lc")
            .then_some("u.seq IN (SELECT user_seq FROM user_identifiers WHERE key = {})")
    }

    fn relation(&self, rel: Relation) -> Option<&'static str> {
        match rel {
            Relation::MemberOf { nested: false } => Some(
                "u.seq IN (SELECT user_seq FROM group_members \
                 WHERE group_seq = (SELECT seq FROM groups WHERE id = {}))",
            ),
            Relation::MemberOf { nested: true } => Some(
                "u.seq IN (SELECT m.user_seq FROM group_closure c JOIN groups mg \
                 ON mg.id = c.descendant_id JOIN group_members m ON m.group_seq = mg.seq \
                 WHERE c.ancestor_id = {})",
            ),
            Relation::Provider => Some("u.provider_type = {}"),
            Relation::HasMemberUser | Relation::HasChildGroup => None,
        }
    }

    fn relation_any(&self, rel: Relation) -> Option<&'static str> {
        match rel {
            // A user in any group, nested or not, is a direct member of one.
            Relation::MemberOf { .. } => {
                Some("EXISTS (SELECT 1 FROM group_members WHERE user_seq = u.seq)")
            }
            Relation::Provider | Relation::HasMemberUser | Relation::HasChildGroup => None,
        }
    }

    fn fts(&self, column: &str) -> Option<FtsIndex> {
        let fts_column = match column {
            "u.username_lc" => "username",
            "u.email_lc" => "email",
            "u.first_name_lc" => "first_name",
            "u.last_name_lc" => "last_name",
            _ => return None,
        };
        Some(FtsIndex {
            table: "users_fts",
            key: "u.seq",
            column: fts_column,
        })
    }
}

/// How groups' fields map to columns (table alias `g`).
#[derive(Debug, Clone, Copy)]
pub struct GroupColumns;

impl Columns for GroupColumns {
    fn column(&self, field: &str) -> &'static str {
        match field {
            "id" => "g.id",
            "description" => "g.description",
            "type" => "g.type",
            "created" => "g.created",
            "modified" => "g.modified",
            _ => "g.name_key",
        }
    }

    fn custom_column(&self) -> &'static str {
        "g.custom"
    }

    fn free_text_columns(&self) -> &'static [&'static str] {
        &["g.name_key", "g.description"]
    }

    fn is_folded(&self, column: &str) -> bool {
        matches!(column, "g.id" | "g.name_key")
    }

    fn relation(&self, rel: Relation) -> Option<&'static str> {
        match rel {
            Relation::HasMemberUser => Some(
                "g.seq IN (SELECT group_seq FROM group_members \
                 WHERE user_seq = (SELECT seq FROM users WHERE id = {}))",
            ),
            Relation::HasChildGroup => {
                Some("g.id IN (SELECT parent_id FROM group_children WHERE child_id = {})")
            }
            Relation::MemberOf { .. } | Relation::Provider => None,
        }
    }

    fn relation_any(&self, rel: Relation) -> Option<&'static str> {
        match rel {
            Relation::HasMemberUser => {
                Some("EXISTS (SELECT 1 FROM group_members WHERE group_seq = g.seq)")
            }
            Relation::HasChildGroup => {
                Some("EXISTS (SELECT 1 FROM group_children WHERE parent_id = g.id)")
            }
            Relation::MemberOf { .. } | Relation::Provider => None,
        }
    }
}

/// Which users a user list draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum UserScope {
    /// Every user.
    All,
    /// The members of a group; `inherited` adds members of descendant groups, except
    /// those reached only through `excluded` groups.
    MembersOf {
        /// The group.
        group: GroupId,
        /// Include members of descendant groups.
        inherited: bool,
        /// Groups whose subtrees are not followed.
        excluded: Vec<GroupId>,
    },
}

/// Which groups a group list draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupScope {
    /// Every group.
    All,
    /// The groups a user belongs to; `inherited` adds every ancestor.
    OfUser {
        /// The user.
        user: UserId,
        /// Include ancestors of the direct groups.
        inherited: bool,
        /// Groups left out, with what is reached only through them.
        excluded: Vec<GroupId>,
    },
    /// The child groups of a group; `inherited` gives every descendant.
    ChildrenOf {
        /// The parent.
        group: GroupId,
        /// All descendants rather than direct children.
        inherited: bool,
        /// Include the group itself.
        include_self: bool,
        /// Groups left out, with what is reached only through them.
        excluded: Vec<GroupId>,
    },
}

/// A password attempt, settled by [`Store::settle_password_attempt`] in one transaction
/// against the account as it is then, not as it was when the password was checked.
#[derive(Debug, Clone, Copy)]
pub struct PasswordAttempt<'a> {
    /// The stored hash the claimed password was checked against and matched; `None`
    /// when it did not match (or was checked against the dummy hash).
    pub matched: Option<&'a PasswordHash>,
    /// Consecutive failures that lock the account (0 = never).
    pub lock_after: u32,
    /// What an accepted attempt does.
    pub on_accept: OnAccept<'a>,
}

/// What an accepted password attempt does.
#[derive(Debug, Clone, Copy)]
pub enum OnAccept<'a> {
    /// Sign in (password grant): the account must be able to log in
    /// ([`User::may_log_in`]).
    Login,
    /// Set this new password (password endpoint): the account must be able to prove its
    /// password ([`User::may_prove_password`]); a due reset is what this clears.
    SetPassword(&'a PasswordHash),
}

/// How a password attempt was settled, with the user as they are afterwards.
#[derive(Debug, Clone)]
pub enum Settled {
    /// The password was right, still the stored one, and the account could use it: the
    /// success is recorded (or the new password set).
    Accepted(User),
    /// Anything else. An account with a password has the failure counted, and is locked
    /// (its refresh tokens revoked) at the threshold.
    Refused {
        /// The user as they are afterwards.
        user: User,
        /// This failure locked the account.
        newly_locked: bool,
    },
}

impl PasswordAttempt<'_> {
    /// The one rule that decides an attempt, called by every store inside the settling
    /// transaction with the row read there: the password matched the hash that is still
    /// stored, and the account may use it now.
    pub fn accepted_by(&self, user: &User, now: Millis) -> bool {
        let proven = self
            .matched
            .is_some_and(|h| user.password_hash.as_ref() == Some(h));
        proven
            && match self.on_accept {
                OnAccept::Login => user.may_log_in(now),
                OnAccept::SetPassword(_) => user.may_prove_password(now),
            }
    }
}

/// A change of a user's status, made through the actions endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// Suspend: no logins, tokens refused.
    Suspend,
    /// Lift a suspension.
    Unsuspend,
    /// Lift a lockout and reset the consecutive-failure count.
    Unlock,
    /// Require a new password at next login.
    ForcePasswordReset,
    /// Let the password expire after `passwordChangeFrequency` days.
    SetPasswordToExpirable,
}

/// A refresh token as stored (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The rotation chain this token belongs to.
    pub family: String,
    /// Whose token it is.
    pub user_id: UserId,
    /// The scope it was granted with.
    pub scope: String,
    /// Issued at.
    pub created: Millis,
    /// Unusable from this instant.
    pub expires: Millis,
}

/// What using a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// A live token, now spent: issue a new one in the same family.
    Valid(RefreshToken),
    /// A spent token presented again: the whole family has been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Rows to load in bulk (seeding, migration from another system). Ids are chosen by
/// the caller; see [`Store::import`] for what happens to rows that already exist.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Users to create, or to match with existing users (see [`Store::import`]).
    pub users: Vec<User>,
    /// The users of [`Self::users`] whose id came from the input: such a record matches
    /// the existing user with that id. The others' ids are fresh, and only both names
    /// together can match.
    pub ids_given: HashSet<UserId>,
    /// The users of [`Self::users`] that must match an existing user: the importer
    /// skipped hashing their clear-text password because a read before the batch found
    /// them. If the batch's own decision finds them new after all, they are reported
    /// as a conflict rather than created without their password.
    pub existing_only: HashSet<UserId>,
    /// Groups to create.
    pub groups: Vec<Group>,
    /// Direct memberships (group, user).
    pub members: Vec<(GroupId, UserId)>,
    /// Child-group links (parent, child).
    pub children: Vec<(GroupId, GroupId)>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Users created.
    pub users: u64,
    /// Users not created because they match an existing user (their memberships are
    /// applied to that user).
    pub users_skipped: u64,
    /// Users neither created nor matched because they touch another user's names
    /// (none of their memberships is applied): the batch's user id and why.
    pub conflicts: Vec<(UserId, String)>,
    /// Groups created.
    pub groups: u64,
    /// Groups skipped because the name was taken.
    pub groups_skipped: u64,
    /// Memberships added (existing ones are not counted).
    pub members: u64,
    /// Child links added.
    pub children: u64,
}

/// How full one connection pool is, for the `gatehouse_db_pool_*` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's name: `writer` and `reader` on SQLite, `main` on PostgreSQL.
    pub pool: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections not in use.
    pub idle: usize,
    /// The most connections the pool opens.
    pub max: u32,
}

/// Reads a sqlx pool's counters.
pub(crate) fn pool_stats<DB: sqlx::Database>(pool: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
    PoolStats {
        pool,
        size: p.size(),
        idle: p.num_idle(),
        max: p.options().get_max_connections(),
    }
}

pub use crate::domain::signing_key::StoredKey;
pub use audit::{Attempt, AuditFilter};

/// The persistence interface. See the module documentation.
///
/// Methods that can take away an administrator take `now`: the last-administrator rule
/// counts members that are neither suspended nor expired at that instant.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database is reachable.
    async fn ping(&self) -> StoreResult<()>;

    /// Whether a read may be dropped halfway (its request cancelled) without harm. sqlx's
    /// transactions are not safe to drop while they begin, so a store whose reads use
    /// them says no, and the HTTP layer then runs every request to the end
    /// (the `deadline` middleware in `http`), not only those that may change state.
    fn reads_are_cancel_safe(&self) -> bool {
        false
    }

    /// Whether a membership check ([`Store::check_member`], with the reads that
    /// authenticate its caller before it: [`Store::get_user`], [`Store::api_key_of_user`],
    /// [`Store::is_member`], [`Store::signing_keys`]) may be dropped halfway without
    /// harm, so that `HEAD /groups/{group}/users/{user}` can run in place even where
    /// other reads may not. True wherever reads are.
    fn checks_are_cancel_safe(&self) -> bool {
        self.reads_are_cancel_safe()
    }

    /// The state of each connection pool (no database round trip).
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Ends the store's background work and closes its pooled connections, waiting for
    /// both (SQLite: the writer connection closed, the batch writer's and the
    /// checkpointer's threads joined; PostgreSQL: the pool closed). Writes fail
    /// afterwards. For a process that goes on after it is done with a database (tests
    /// that start a server again on the same file); a server just exits.
    async fn close(&self);

    /// Creates the System Administrators group if missing.
    async fn ensure_system_group(&self, now: Millis) -> StoreResult<()>;

    /// How many users exist.
    async fn count_users(&self) -> StoreResult<i64>;

    // ---- users ----

    /// Inserts a new user and makes it a direct member of `groups`.
    async fn create_user(&self, user: &User, groups: &[GroupId], event: &Event) -> StoreResult<()>;

    /// Whether a user with this id exists.
    async fn user_exists(&self, id: UserId) -> StoreResult<bool>;

    /// Reads a user by id.
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;

    /// Finds the user whose username or email has the given case-folded key.
    async fn find_user_by_key(&self, key: &str) -> StoreResult<Option<UserId>>;

    /// Writes the profile fields (username, email, names, timezone, language, custom,
    /// passwordChangeFrequency, optOutOfNotifications, expiry) in which `after` differs
    /// from `before` (the user as the caller read them), and `modified`; columns the
    /// change does not touch keep what they hold now, so racing edits of different
    /// fields never undo each other. Giving an administrator an expiry is refused
    /// ([`StoreError::LastAdmin`]) unless another administrator who never expires could
    /// still sign in. Returns the user as stored afterwards.
    async fn update_user_profile(
        &self,
        before: &User,
        after: &User,
        event: &Event,
    ) -> StoreResult<User>;

    /// Makes an account usable again with a new password, in one transaction: sets the
    /// hash (revoking earlier tokens, clearing a due reset), lifts a lockout and a
    /// suspension, clears an expiry that has passed, and makes the user a direct member
    /// of `groups`. [`StoreError::NotFound`] when there is no such user, or it is an
    /// API-key user (which has no password).
    async fn recover_user(
        &self,
        id: UserId,
        hash: &PasswordHash,
        groups: &[GroupId],
        now: Millis,
        event: &Event,
    ) -> StoreResult<()>;

    /// Whether System Administrators has a member, direct or through a child group, who
    /// can sign in at `now`: not suspended, locked or expired, and with a password, or
    /// an API-key user with an enabled key.
    async fn admin_can_sign_in(&self, now: Millis) -> StoreResult<bool>;

    /// Applies a status change. Suspending the last active administrator is refused.
    async fn set_user_state(
        &self,
        id: UserId,
        change: StateChange,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()>;

    /// Sets a new password hash, records when, and revokes earlier tokens.
    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Millis,
        event: &Event,
    ) -> StoreResult<()>;

    /// Records a successful login that proved no password (an API key's), and returns the
    /// user as it is afterwards.
    async fn record_login(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<User>;

    /// Settles a password attempt in one transaction: reads the account there (locking
    /// its row), decides with [`PasswordAttempt::accepted_by`], and records the outcome.
    /// So a lock, suspension or password change committed while the password was being
    /// checked is seen, and no two attempts can both act on a state read earlier.
    async fn settle_password_attempt(
        &self,
        id: UserId,
        attempt: PasswordAttempt<'_>,
        now: Millis,
        event: &Event,
    ) -> StoreResult<Settled>;

    /// Revokes every refresh token of a user (they can no longer use them).
    async fn revoke_refresh_tokens(&self, id: UserId) -> StoreResult<()>;

    /// Deletes a user with its memberships. `Ok(false)` when there was no such user.
    async fn delete_user(&self, id: UserId, now: Millis, event: &Event) -> StoreResult<bool>;

    /// Lists users.
    async fn list_users(&self, scope: &UserScope, query: &ListQuery) -> StoreResult<Page<User>>;

    // ---- groups ----

    /// Inserts a new group.
    async fn create_group(&self, group: &Group, event: &Event) -> StoreResult<()>;

    /// Whether a group with this id exists.
    async fn group_exists(&self, id: GroupId) -> StoreResult<bool>;

    /// Reads a group with its counts.
    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>>;

    /// Finds a group by its case-folded name key.
    async fn find_group_by_key(&self, key: &str) -> StoreResult<Option<GroupId>>;

    /// Writes name, description, custom and modified.
    async fn update_group(&self, group: &Group, event: &Event) -> StoreResult<()>;

    /// Deletes a group, its memberships and child links. `Ok(false)` if it did not exist.
    async fn delete_group(&self, id: GroupId, now: Millis, event: &Event) -> StoreResult<bool>;

    /// Lists groups.
    async fn list_groups(&self, scope: &GroupScope, query: &ListQuery) -> StoreResult<Page<Group>>;

    // ---- membership ----

    /// Adds users as direct members (already-members are left as they are), all or nothing.
    async fn add_members(&self, group: GroupId, users: &[UserId], event: &Event)
    -> StoreResult<()>;

    /// The group and the user path segments name: by id when the segment parses as one
    /// and such a row exists, else by name key.
    async fn resolve_named(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<(Option<GroupId>, Option<UserId>)> {
        let group = match group.id {
            Some(id) if self.group_exists(id).await? => Some(id),
            _ => self.find_group_by_key(group.key).await?,
        };
        let user = match user.id {
            Some(id) if self.user_exists(id).await? => Some(id),
            _ => self.find_user_by_key(user.key).await?,
        };
        Ok((group, user))
    }

    /// Resolves a group and a user as path segments name them
    /// ([`Store::resolve_named`]) and, when both exist, makes the user a direct member
    /// (an existing membership is left as it is): the add of one member in one call, so
    /// a store may resolve and insert in the same transaction.
    async fn add_member_named(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
        event: &Event,
    ) -> StoreResult<MemberCheck> {
        add_member_resolving(self, group, user, event).await
    }

    /// Removes a direct member. `Ok(false)` when the user was not a direct member.
    async fn remove_member(
        &self,
        group: GroupId,
        user: UserId,
        now: Millis,
        event: &Event,
    ) -> StoreResult<bool>;

    /// Whether `user` is in any of `groups`, directly or through child groups.
    async fn is_member(&self, user: UserId, groups: &[GroupId]) -> StoreResult<bool>;

    /// Resolves a group and a user as path segments name them and tells whether the user
    /// is in the group, directly or through child groups: the membership check in one
    /// call (a store may answer it in one read).
    async fn check_member(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        let (group, user) = self.resolve_named(group, user).await?;
        let member = match (group, user) {
            (Some(g), Some(u)) => self.is_member(u, &[g]).await?,
            _ => false,
        };
        Ok(MemberCheck {
            group,
            user,
            member,
        })
    }

    /// Adds child groups (existing links are left as they are), all or nothing; refuses
    /// with [`StoreError::Cycle`] if any would make a group contain itself.
    async fn add_children(
        &self,
        parent: GroupId,
        children: &[GroupId],
        event: &Event,
    ) -> StoreResult<()>;

    /// Removes a child link. `Ok(false)` when there was no such link.
    async fn remove_child(
        &self,
        parent: GroupId,
        child: GroupId,
        now: Millis,
        event: &Event,
    ) -> StoreResult<bool>;

    /// Loads a batch in one transaction. A user record that is an existing user (the
    /// same id; or, without an id, the same username and email) is skipped and its
    /// memberships go to that user; one that touches another user's names is a
    /// conflict, reported in [`ImportStats::conflicts`], and none of its memberships is
    /// applied. The decision is taken against the rows as they are inside the
    /// transaction (on PostgreSQL, locked until it ends). Groups whose name is taken are
    /// skipped (so a rerun is idempotent); memberships and links that exist are left; a
    /// link that would close a cycle fails the batch. Memberships and links may name
    /// rows created earlier in the same batch.
    async fn import(&self, batch: &ImportBatch, event: &Event) -> StoreResult<ImportStats>;

    // ---- refresh tokens ----

    /// Stores a new refresh token.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;

    /// Spends a refresh token, atomically: a second use of the same token revokes its
    /// whole family, whichever node sees it.
    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Millis,
        event: &Event,
    ) -> StoreResult<RefreshUse>;

    /// Revokes the family of a refresh token (RFC 7009 revocation): `Ok(false)`, and no
    /// event, when the token is unknown or its family has nothing live left. The event
    /// is recorded with the token's user as actor and target.
    async fn revoke_refresh_family(&self, token_hash: &str, event: &Event) -> StoreResult<bool>;

    // ---- API keys ----

    /// Inserts a key together with its user, made a direct member of `groups`.
    async fn create_api_key(
        &self,
        key: &ApiKey,
        user: &User,
        groups: &[GroupId],
        event: &Event,
    ) -> StoreResult<()>;

    /// Reads a key by id.
    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>>;

    /// Reads a key by its client id.
    async fn find_api_key_by_client_id(&self, client_id: &str) -> StoreResult<Option<ApiKey>>;

    /// Reads the key a user belongs to, if it is an API-key user.
    async fn api_key_of_user(&self, user: UserId) -> StoreResult<Option<ApiKey>>;

    /// Lists keys by name.
    async fn list_api_keys(&self, page: PageRequest) -> StoreResult<Page<ApiKey>>;

    /// Writes name, description, enabled and the modification stamp.
    async fn update_api_key(&self, key: &ApiKey, event: &Event) -> StoreResult<()>;

    /// Deletes a key and its user. `Ok(false)` if there was no such key.
    async fn delete_api_key(&self, id: ApiKeyId, now: Millis, event: &Event) -> StoreResult<bool>;

    // ---- signing keys ----

    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Stores a new signing key.
    async fn insert_signing_key(&self, key: &StoredKey, event: &Event) -> StoreResult<()>;

    /// Deletes a signing key. `Ok(false)` if there was no such key.
    async fn delete_signing_key(&self, kid: &str, event: &Event) -> StoreResult<bool>;

    // ---- the audit trail and webhooks (`audit.rs`) ----

    /// Records an event that changes nothing else (a refused login of an unknown name).
    async fn record_event(&self, event: &Event) -> StoreResult<()>;

    /// Lists events, newest first unless the query orders them.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        query: &ListQuery,
    ) -> StoreResult<Page<Record>>;

    /// Up to `limit` events after `after_seq` recorded at or after `since`, oldest first.
    async fn audit_after(
        &self,
        after_seq: i64,
        since: Millis,
        limit: i64,
    ) -> StoreResult<Vec<Record>>;

    /// Removes up to `limit` events recorded before `cutoff` that no webhook still has to
    /// deliver; returns how many.
    async fn prune_audit(&self, cutoff: Millis, limit: i64) -> StoreResult<u64>;

    /// Registers a webhook endpoint.
    async fn create_webhook(&self, hook: &Webhook, event: &Event) -> StoreResult<()>;

    /// Changes an endpoint (not its secret). `Ok(false)` if there is none.
    async fn update_webhook(&self, hook: &Webhook, event: &Event) -> StoreResult<bool>;

    /// Removes an endpoint and its queue. `Ok(false)` if there is none.
    async fn delete_webhook(&self, id: &str, event: &Event) -> StoreResult<bool>;

    /// One endpoint.
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>>;

    /// Every endpoint.
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// An endpoint's deliveries in a state (`pending` oldest first, `failed` newest first).
    async fn webhook_deliveries(
        &self,
        id: &str,
        state: &str,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Claims an endpoint with a due delivery for `owner` until `lease_until`.
    async fn claim_webhook(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<Webhook>>;

    /// The oldest pending delivery of an endpoint, with its event.
    async fn next_delivery(&self, webhook: &str) -> StoreResult<Option<(Delivery, Record)>>;

    /// Settles a delivery attempt if `owner` still holds the lease (extended to
    /// `lease_until`); `Ok(false)` if another node took the endpoint over.
    async fn settle_delivery(
        &self,
        webhook: &str,
        owner: &str,
        delivery: i64,
        attempt: &Attempt,
        lease_until: Millis,
    ) -> StoreResult<bool>;

    /// Gives up a lease.
    async fn release_webhook(&self, webhook: &str, owner: &str) -> StoreResult<()>;

    /// Pending deliveries and when the oldest was queued.
    async fn outbox_depth(&self) -> StoreResult<(i64, Option<Millis>, i64)>;
}

/// [`Store::add_member_named`] as two calls: [`Store::resolve_named`], then
/// [`Store::add_members`] in a transaction of its own.
async fn add_member_resolving<S: Store + ?Sized>(
    store: &S,
    group: Named<'_, GroupId>,
    user: Named<'_, UserId>,
    event: &Event,
) -> StoreResult<MemberCheck> {
    let (group, user) = store.resolve_named(group, user).await?;
    let member = match (group, user) {
        (Some(g), Some(u)) => {
            store.add_members(g, &[u], &event.clone().group(g)).await?;
            true
        }
        _ => false,
    };
    Ok(MemberCheck {
        group,
        user,
        member,
    })
}
