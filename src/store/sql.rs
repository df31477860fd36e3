//! SQL text and query building shared by the SQLite and PostgreSQL stores.
//!
//! Role: hold the statements that read the same on both databases (column lists, the
//! long inserts and updates, the checks behind the group and administrator invariants)
//! and build the paged list queries, so the two stores cannot drift apart on what a
//! list means. Where the dialects differ the builders take a [`Dialect`], as
//! [`filter_sql`] does. Booleans are written `TRUE`/`FALSE` and conflicts
//! `ON CONFLICT DO NOTHING`, which both databases accept.
//!
//! It must not execute SQL or name a driver type: each store binds [`SqlValue`]s and
//! runs the text with its own pool, and maps its own rows.

use serde_json::{Map, Value};

use super::filter_sql::{self, Columns, Dialect, SqlValue};
use super::{
    GroupColumns, GroupScope, ListQuery, PageRequest, StoreError, StoreResult, UniqueField,
    UserColumns, UserScope,
};
use crate::domain::api_key::ApiKey;
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{ApiKeyId, GroupId, UserId};
use crate::domain::user::{PasswordHash, Provider, User};

/// The user columns every user read selects (table alias `u`).
pub(crate) const USER_COLUMNS: &str = "u.id, u.username, u.email, u.first_name, u.last_name, \
    u.timezone, u.language, u.custom, u.provider_type, u.password_hash, \
    u.password_change_frequency, u.password_expirable, u.suspended, u.locked, \
    u.password_reset_required, u.opt_out_of_notifications, u.created, u.modified, \
    u.last_login, u.last_failed_login, u.expiry, u.password_changed, u.failed_login_attempts, \
    u.failed_since_success, u.successful_login_attempts, u.token_version";

/// The group columns every group read selects (alias `g`), with the direct counts.
pub(crate) const GROUP_COLUMNS: &str = "g.id, g.name, g.description, g.type, g.custom, \
    g.created, g.modified, \
    (SELECT COUNT(*) FROM group_members gm WHERE gm.group_seq = g.seq) AS user_count, \
    (SELECT COUNT(*) FROM group_children gcc WHERE gcc.parent_id = g.id) AS child_group_count";

/// The API key columns.
pub(crate) const API_KEY_COLUMNS: &str = "id, name, description, enabled, client_id, \
    secret_hash, user_id, created, created_by, modified, modified_by";

/// `$1` id: the user ([`USER_COLUMNS`]).
pub(crate) fn user_by_id() -> String {
    format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1")
}

/// `$1` id: the group with its counts ([`GROUP_COLUMNS`]).
pub(crate) fn group_by_id() -> String {
    format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = $1")
}

/// `$1` the value of `column`, a unique column of API keys (a fixed name, never client
/// input): the key ([`API_KEY_COLUMNS`]).
pub(crate) fn api_key_by(column: &'static str) -> String {
    format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE {column} = $1")
}

/// Whether `user` is in any of `groups`, directly or not, with its values; `None` when
/// `groups` is empty (the answer is no).
pub(crate) fn member_of_any(user: UserId, groups: &[GroupId]) -> Option<(String, Vec<SqlValue>)> {
    if groups.is_empty() {
        return None;
    }
    let mut params = vec![SqlValue::Text(user.to_string())];
    let set = push_ids(&mut params, groups);
    Some((format!("{IS_MEMBER_OF_ANY_HEAD} IN ({set}))"), params))
}

/// `$1` id, `$2` username, `$3` email, `$4` first name, `$5` last name, `$6`–`$9` the
/// same four folded with `name_key`, `$10` timezone, `$11` language, `$12` custom,
/// `$13` provider, `$14` password hash, `$15` change frequency, `$16` expirable,
/// `$17` suspended, `$18` locked, `$19` reset required, `$20` opt-out, `$21` created,
/// `$22` modified, `$23` expiry, `$24` password changed.
pub(crate) const INSERT_USER: &str = "INSERT INTO users (id, username, email, first_name, \
    last_name, username_lc, email_lc, first_name_lc, last_name_lc, timezone, language, custom, \
    provider_type, password_hash, password_change_frequency, password_expirable, suspended, \
    locked, password_reset_required, opt_out_of_notifications, created, modified, expiry, \
    password_changed) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
    $19, $20, $21, $22, $23, $24)";

/// `$1` key, `$2` user id.
pub(crate) const INSERT_IDENTIFIER: &str = "INSERT INTO user_identifiers (key, user_id, \
    user_seq) VALUES ($1, $2, (SELECT seq FROM users WHERE id = $2))";

/// `$1` group, `$2` user; an existing membership is left as it is. A group or user that
/// does not exist fails the `NOT NULL` rule ([`fk_or`] reads that as "not found").
pub(crate) const INSERT_MEMBER: &str = "INSERT INTO group_members (group_seq, user_seq) \
    VALUES ((SELECT seq FROM groups WHERE id = $1), (SELECT seq FROM users WHERE id = $2)) \
    ON CONFLICT DO NOTHING";

/// `$1` group, `$2` user: the direct membership.
pub(crate) const DELETE_MEMBER: &str = "DELETE FROM group_members \
    WHERE group_seq = (SELECT seq FROM groups WHERE id = $1) \
    AND user_seq = (SELECT seq FROM users WHERE id = $2)";

/// `$1` user: all of their names.
pub(crate) const DELETE_IDENTIFIERS: &str =
    "DELETE FROM user_identifiers WHERE user_seq = (SELECT seq FROM users WHERE id = $1)";

/// `$1` user, then the group placeholders to close with `)`: whether the user is in any
/// of the groups, directly or not.
pub(crate) const IS_MEMBER_OF_ANY_HEAD: &str = "SELECT EXISTS (SELECT 1 FROM group_members m \
    JOIN groups mg ON mg.seq = m.group_seq JOIN group_closure c ON c.descendant_id = mg.id \
    WHERE m.user_seq = (SELECT seq FROM users WHERE id = $1) AND c.ancestor_id";

/// Bulk import of (key, user id) pairs: this, a `VALUES` list, then
/// [`IMPORT_IDENTIFIERS_TAIL`].
pub(crate) const IMPORT_IDENTIFIERS_HEAD: &str = "INSERT INTO user_identifiers \
    (key, user_id, user_seq) SELECT v.column1, v.column2, u.seq FROM (";

/// See [`IMPORT_IDENTIFIERS_HEAD`].
pub(crate) const IMPORT_IDENTIFIERS_TAIL: &str = ") AS v JOIN users u ON u.id = v.column2";

/// Bulk import of (group id, user id) pairs: this, a `VALUES` list, then
/// [`IMPORT_MEMBERS_TAIL`]. Existing memberships are left; a group or user that does not
/// exist fails the `NOT NULL` rule, as in [`INSERT_MEMBER`]. (`WHERE true` lets SQLite
/// parse `ON CONFLICT` after a `SELECT`.)
pub(crate) const IMPORT_MEMBERS_HEAD: &str = "INSERT INTO group_members (group_seq, user_seq) SELECT \
    (SELECT seq FROM groups WHERE id = v.column1), (SELECT seq FROM users WHERE id = v.column2) \
    FROM (";

/// See [`IMPORT_MEMBERS_HEAD`].
pub(crate) const IMPORT_MEMBERS_TAIL: &str = ") AS v WHERE true ON CONFLICT DO NOTHING";

/// The `UPDATE` of the profile columns that differ between `before` (the row as the
/// caller read it) and `after`, with its values (`$1` is the id); `None` when nothing
/// differs. Columns the change does not touch are not written, so two edits of
/// different fields that race never undo each other. The text is built from fixed
/// column names only; every value is bound, and a cleared field is the literal `NULL`.
pub(crate) fn profile_update(before: &User, after: &User) -> Option<(String, Vec<SqlValue>)> {
    use crate::domain::names::name_key;
    let mut set: Vec<String> = Vec::new();
    let mut params = vec![SqlValue::Text(after.id.to_string())];
    let mut put = |set: &mut Vec<String>, column: &str, value: Option<SqlValue>| match value {
        Some(v) => {
            let n = push(&mut params, v);
            set.push(format!("{column} = {n}"));
        }
        None => set.push(format!("{column} = NULL")),
    };
    let text = |s: &str| Some(SqlValue::Text(s.to_owned()));
    let opt_text = |s: &Option<String>, fold: bool| {
        s.as_deref()
            .map(|s| SqlValue::Text(if fold { name_key(s) } else { s.to_owned() }))
    };
    if before.username != after.username {
        put(&mut set, "username", text(&after.username));
        put(&mut set, "username_lc", text(&name_key(&after.username)));
    }
    if before.email != after.email {
        put(&mut set, "email", text(&after.email));
        put(&mut set, "email_lc", text(&name_key(&after.email)));
    }
    if before.first_name != after.first_name {
        put(&mut set, "first_name", opt_text(&after.first_name, false));
        put(&mut set, "first_name_lc", opt_text(&after.first_name, true));
    }
    if before.last_name != after.last_name {
        put(&mut set, "last_name", opt_text(&after.last_name, false));
        put(&mut set, "last_name_lc", opt_text(&after.last_name, true));
    }
    if before.timezone != after.timezone {
        put(&mut set, "timezone", opt_text(&after.timezone, false));
    }
    if before.language != after.language {
        put(&mut set, "language", opt_text(&after.language, false));
    }
    if before.custom != after.custom {
        put(&mut set, "custom", text(&custom_text(&after.custom)));
    }
    if before.password_change_frequency != after.password_change_frequency {
        let v = SqlValue::Int(after.password_change_frequency);
        put(&mut set, "password_change_frequency", Some(v));
    }
    if before.opt_out_of_notifications != after.opt_out_of_notifications {
        let v = SqlValue::Bool(after.opt_out_of_notifications);
        put(&mut set, "opt_out_of_notifications", Some(v));
    }
    if before.expiry != after.expiry {
        put(&mut set, "expiry", after.expiry.map(SqlValue::Int));
    }
    if set.is_empty() {
        return None;
    }
    put(&mut set, "modified", Some(SqlValue::Int(after.modified)));
    Some((
        format!("UPDATE users SET {} WHERE id = $1", set.join(", ")),
        params,
    ))
}

/// Whether a profile change renames the user (their identifier rows must follow).
pub(crate) fn renames(before: &User, after: &User) -> bool {
    before.username != after.username || before.email != after.email
}

/// Whether a profile change gives an administrator an expiry (or a new one): the
/// last-administrator rule then also asks for an administrator who never expires.
pub(crate) fn sets_expiry(before: &User, after: &User) -> bool {
    after.expiry.is_some() && before.expiry != after.expiry
}

/// `$1` the key's user, `$2` its name (the user's first name), `$3` modified, `$4` the
/// name folded with `name_key`.
pub(crate) const RENAME_API_KEY_USER: &str = "UPDATE users SET first_name = $2, \
    first_name_lc = $4, modified = $3 WHERE id = $1";

/// `$1` id, `$2` hash, `$3` now. Bumping `token_version` ends every earlier token.
pub(crate) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2, \
    password_changed = $3, modified = $3, password_reset_required = FALSE, \
    token_version = token_version + 1 WHERE id = $1";

/// `$1` id: a password proven by the password endpoint ends the run of failures, as a
/// successful login does.
pub(crate) const RESET_FAILURES: &str = "UPDATE users SET failed_since_success = 0 WHERE id = $1";

/// `$1` id, `$2` now.
pub(crate) const RECORD_LOGIN_SUCCESS: &str = "UPDATE users SET last_login = $2, \
    successful_login_attempts = successful_login_attempts + 1, failed_since_success = 0 \
    WHERE id = $1";

/// `$1` id, `$2` now, `$3` failures that lock (0 = never). Locking ends the user's
/// access tokens (`token_version`); the store revokes the refresh tokens in the same
/// transaction.
pub(crate) const RECORD_LOGIN_FAILURE: &str = "UPDATE users SET last_failed_login = $2, \
    failed_login_attempts = failed_login_attempts + 1, \
    failed_since_success = failed_since_success + 1, \
    locked = CASE WHEN $3 > 0 AND failed_since_success + 1 >= $3 THEN TRUE ELSE locked END, \
    token_version = token_version + \
        CASE WHEN $3 > 0 AND failed_since_success + 1 = $3 THEN 1 ELSE 0 END \
    WHERE id = $1";

/// Whether a status change ends the user's refresh tokens as well as (for a suspension)
/// their access tokens. Lifting a suspension or a lock revives nothing.
pub(crate) fn revokes_refresh_tokens(change: super::StateChange) -> bool {
    use super::StateChange;
    matches!(
        change,
        StateChange::Suspend | StateChange::ForcePasswordReset
    )
}

/// The `SET` list of a status change (fixed text, never client input).
pub(crate) fn state_change_set(change: super::StateChange) -> &'static str {
    use super::StateChange;
    match change {
        StateChange::Suspend => "suspended = TRUE, token_version = token_version + 1",
        StateChange::Unsuspend => "suspended = FALSE",
        StateChange::Unlock => "locked = FALSE, failed_since_success = 0",
        StateChange::ForcePasswordReset => "password_reset_required = TRUE",
        StateChange::SetPasswordToExpirable => "password_expirable = TRUE",
    }
}

/// `$1` id, `$2` name, `$3` name key, `$4` description, `$5` type, `$6` custom,
/// `$7` created, `$8` modified.
pub(crate) const INSERT_GROUP: &str = "INSERT INTO groups (id, name, name_key, description, \
    type, custom, created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Like [`INSERT_GROUP`], doing nothing when the id or name is taken (for imports).
pub(crate) const INSERT_GROUP_IF_NEW: &str = "INSERT INTO groups (id, name, name_key, \
    description, type, custom, created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT DO NOTHING";

/// `$1` parent, `$2` child; an existing link is left as it is.
pub(crate) const INSERT_CHILD: &str = "INSERT INTO group_children (parent_id, child_id) \
    VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// `$1` id, `$2` name, `$3` name key, `$4` description, `$5` custom, `$6` modified.
pub(crate) const UPDATE_GROUP: &str = "UPDATE groups SET name = $2, name_key = $3, \
    description = $4, custom = $5, modified = $6 WHERE id = $1";

/// `$1` id, `$2` name, `$3` name key, `$4` description, `$5` now; does nothing if the
/// group exists.
pub(crate) const INSERT_SYSTEM_GROUP: &str = "INSERT INTO groups (id, name, name_key, \
    description, type, custom, created, modified) VALUES ($1, $2, $3, $4, 'sys', '{}', $5, $5) \
    ON CONFLICT DO NOTHING";

/// `$1` group: its reflexive closure row.
pub(crate) const INSERT_SELF_CLOSURE: &str = "INSERT INTO group_closure (ancestor_id, \
    descendant_id) VALUES ($1, $1) ON CONFLICT DO NOTHING";

/// `$1` user, `$2` System Administrators: whether the user is in it, directly or not.
pub(crate) const IS_ADMIN: &str = "SELECT EXISTS (SELECT 1 FROM group_members m \
    JOIN groups mg ON mg.seq = m.group_seq JOIN group_closure c ON c.descendant_id = mg.id \
    WHERE m.user_seq = (SELECT seq FROM users WHERE id = $1) AND c.ancestor_id = $2)";

/// Both stores. `$1` group id (or NULL), `$2` group name key, `$3` user id (or NULL),
/// `$4` user key: the group and user they name (id first), whether the user is in the
/// group through the closure, and the graph's version. One row; NULL where nothing is
/// named.
pub(crate) const MEMBER_CHECK: &str = "SELECT g.id, u.id, EXISTS (SELECT 1 FROM group_members m \
    JOIN groups mg ON mg.seq = m.group_seq JOIN group_closure c ON c.descendant_id = mg.id \
    WHERE m.user_seq = u.seq AND c.ancestor_id = g.id), \
    (SELECT n FROM graph_version WHERE id = 1) \
    FROM (SELECT COALESCE((SELECT id FROM groups WHERE id = $1), \
    (SELECT id FROM groups WHERE name_key = $2)) AS id) AS g, \
    (SELECT COALESCE((SELECT id FROM users WHERE id = $3), \
    (SELECT user_id FROM user_identifiers WHERE key = $4)) AS id, \
    COALESCE((SELECT seq FROM users WHERE id = $3), \
    (SELECT user_seq FROM user_identifiers WHERE key = $4)) AS seq) AS u";

/// Both stores. `$1` user id (or NULL), `$2` username or email key: the graph's
/// version and the names' (`graph_version.n`, `.names`), then the user's id and integer
/// key (by id first, else by name) and the integer key of each of their direct groups.
/// One row with no group when they have none; one row of NULLs but the versions when
/// there is no such user (`graph_version` has exactly one row). Each join is one
/// primary-key or covering-index search.
pub(crate) const USER_GROUPS: &str = "SELECT v.n, v.names, COALESCE(u.id, i.user_id), \
    COALESCE(u.seq, i.user_seq), m.group_seq \
    FROM graph_version v \
    LEFT JOIN users u ON u.id = $1 \
    LEFT JOIN user_identifiers i ON u.seq IS NULL AND i.key = $2 \
    LEFT JOIN group_members m ON m.user_seq = COALESCE(u.seq, i.user_seq) \
    WHERE v.id = 1";

/// SQLite only (PostgreSQL asks for many users at once: `postgres/check_batch.rs`). `$1`
/// a user's integer key: the graph's version and the names', then the integer key of
/// each of the user's direct groups (one row with no group when none).
pub(crate) const GROUPS_OF_USER_SEQ: &str = "SELECT v.n, v.names, m.group_seq \
    FROM graph_version v LEFT JOIN group_members m ON m.user_seq = $1 WHERE v.id = 1";

/// SQLite only. `$1` group id (or NULL), `$2` group name key, `$3` user id (or NULL),
/// `$4` user key: the group's id, integer key and name and the user's id, integer key
/// and username (by id first, else by name), the names for the add's audit record. One
/// row; NULLs where nothing is named.
pub(crate) const RESOLVE_GROUP_AND_USER: &str = "SELECT COALESCE(ga.id, gb.id), \
    COALESCE(ga.seq, gb.seq), COALESCE(ga.name, gb.name), COALESCE(u.id, i.user_id), \
    COALESCE(u.seq, i.user_seq), COALESCE(u.username, n.username) \
    FROM (SELECT 1) AS one \
    LEFT JOIN groups ga ON ga.id = $1 \
    LEFT JOIN groups gb ON ga.id IS NULL AND gb.name_key = $2 \
    LEFT JOIN users u ON u.id = $3 \
    LEFT JOIN user_identifiers i ON u.seq IS NULL AND i.key = $4 \
    LEFT JOIN users n ON u.seq IS NULL AND n.seq = i.user_seq";

/// SQLite only. `$1` group's integer key, `$2` user's: the direct membership, left as it
/// is if it exists.
pub(crate) const INSERT_MEMBER_BY_KEYS: &str = "INSERT INTO group_members (group_seq, \
    user_seq) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// `$1` System Administrators, `$2` group: whether the group is it or lies below it.
pub(crate) const IS_UNDER: &str = "SELECT EXISTS (SELECT 1 FROM group_closure \
    WHERE ancestor_id = $1 AND descendant_id = $2)";

/// `$1` System Administrators, `$2` an instant: whether it has a member who can sign in
/// then: not suspended, not locked, not expired at `$2`, and, for an API key's user, an
/// enabled key.
pub(crate) const ADMIN_LEFT: &str = "SELECT EXISTS (SELECT 1 FROM group_closure c \
    JOIN groups mg ON mg.id = c.descendant_id JOIN group_members m ON m.group_seq = mg.seq \
    JOIN users u ON u.seq = m.user_seq \
    WHERE c.ancestor_id = $1 AND u.suspended = FALSE AND u.locked = FALSE \
    AND (u.expiry IS NULL OR u.expiry > $2) \
    AND (u.provider_type <> 'apiKey' OR EXISTS (SELECT 1 FROM api_keys k \
    WHERE k.user_id = u.id AND k.enabled = TRUE)))";

/// `$1` System Administrators, `$2` now: whether a member (direct, or through a child
/// group) can sign in: neither suspended, locked nor expired, and either with a password
/// or an API-key user whose key is enabled. Start-up asks this before it creates or
/// repairs the `admin` user ([`ADMIN_LEFT`] does not ask for a password: it guards
/// removals, and a member without one still counts there).
pub(crate) const ADMIN_CAN_SIGN_IN: &str = "SELECT EXISTS (SELECT 1 FROM group_closure c \
    JOIN groups mg ON mg.id = c.descendant_id JOIN group_members m ON m.group_seq = mg.seq \
    JOIN users u ON u.seq = m.user_seq \
    WHERE c.ancestor_id = $1 AND u.suspended = FALSE AND u.locked = FALSE \
    AND (u.expiry IS NULL OR u.expiry > $2) \
    AND ((u.provider_type <> 'apiKey' AND u.password_hash IS NOT NULL) \
    OR (u.provider_type = 'apiKey' AND EXISTS (SELECT 1 FROM api_keys k \
    WHERE k.user_id = u.id AND k.enabled = TRUE))))";

/// `$1` id, `$2` password hash, `$3` now: a recovery in one statement: the new password
/// (earlier tokens revoked, a due reset cleared), the lockout and the suspension lifted,
/// an expiry that has passed cleared.
pub(crate) const RECOVER_USER: &str = "UPDATE users SET password_hash = $2, \
    password_changed = $3, modified = $3, password_reset_required = FALSE, \
    token_version = token_version + 1, locked = FALSE, failed_since_success = 0, \
    suspended = FALSE, expiry = CASE WHEN expiry <= $3 THEN NULL ELSE expiry END \
    WHERE id = $1 AND provider_type <> 'apiKey'";

/// `$1` parent, `$2` child: closure rows for every (ancestor of parent, descendant of
/// child) pair, after the edge was added.
pub(crate) const EXTEND_CLOSURE: &str = "INSERT INTO group_closure (ancestor_id, \
    descendant_id) SELECT a.ancestor_id, d.descendant_id FROM group_closure a, group_closure d \
    WHERE a.descendant_id = $1 AND d.ancestor_id = $2 ON CONFLICT DO NOTHING";

/// `$1` group: drops its non-reflexive closure rows before they are recomputed.
pub(crate) const CLEAR_ANCESTORS: &str =
    "DELETE FROM group_closure WHERE descendant_id = $1 AND ancestor_id <> $1";

/// `$1` group: recomputes its ancestors from the edges. (`WHERE TRUE` keeps SQLite from
/// reading `ON CONFLICT` as a join constraint.)
pub(crate) const INSERT_ANCESTORS: &str = "WITH RECURSIVE up(a) AS ( \
    SELECT parent_id FROM group_children WHERE child_id = $1 \
    UNION SELECT gc.parent_id FROM group_children gc JOIN up ON gc.child_id = up.a) \
    INSERT INTO group_closure (ancestor_id, descendant_id) SELECT a, $1 FROM up WHERE TRUE \
    ON CONFLICT DO NOTHING";

/// `$1` token hash, `$2` family, `$3` user, `$4` scope, `$5` created, `$6` expires. A
/// token joining a family that was already revoked (its predecessor was reused while it
/// was being issued) is stored revoked.
pub(crate) const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, \
    family, user_id, scope, created, expires, revoked) SELECT $1, $2, $3, $4, $5, $6, \
    EXISTS (SELECT 1 FROM refresh_tokens WHERE family = $2 AND revoked)";

/// `$1` family.
pub(crate) const REVOKE_FAMILY: &str = "UPDATE refresh_tokens SET revoked = TRUE WHERE family = $1";

/// `$1` family: revokes what of it is still live (none left: nothing changes).
pub(crate) const REVOKE_LIVE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked = TRUE WHERE family = $1 AND NOT revoked";

/// `$1` user.
pub(crate) const REVOKE_USER_TOKENS: &str =
    "UPDATE refresh_tokens SET revoked = TRUE WHERE user_id = $1";

/// `$1` id, `$2` name, `$3` name key, `$4` description, `$5` enabled, `$6` client id,
/// `$7` secret hash, `$8` user, `$9` created, `$10` created by, `$11` modified,
/// `$12` modified by.
pub(crate) const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, name, name_key, \
    description, enabled, client_id, secret_hash, user_id, created, created_by, modified, \
    modified_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// `$1` id, `$2` name, `$3` name key, `$4` description, `$5` enabled, `$6` modified,
/// `$7` modified by.
pub(crate) const UPDATE_API_KEY: &str = "UPDATE api_keys SET name = $2, name_key = $3, \
    description = $4, enabled = $5, modified = $6, modified_by = $7 WHERE id = $1";

/// `$1` user.
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

/// `$1` group.
pub(crate) const DELETE_GROUP: &str = "DELETE FROM groups WHERE id = $1";

/// `$1` parent, `$2` child: the edge.
pub(crate) const DELETE_CHILD: &str =
    "DELETE FROM group_children WHERE parent_id = $1 AND child_id = $2";

/// `$1` group: its direct children.
pub(crate) const CHILDREN_OF: &str = "SELECT child_id FROM group_children WHERE parent_id = $1";

/// `$1` group: it and every group below it.
pub(crate) const DESCENDANTS: &str =
    "SELECT descendant_id FROM group_closure WHERE ancestor_id = $1";

/// `$1` key: the id of its user.
pub(crate) const API_KEY_USER: &str = "SELECT user_id FROM api_keys WHERE id = $1";

/// `$1` token hash, `$2` now: spends a live token and returns it; nothing when it is
/// unknown, spent, revoked or expired. Of two transactions racing here, the second
/// waits for the first's row lock and then finds `used` set, so it updates nothing.
pub(crate) const SPEND_REFRESH_TOKEN: &str = "UPDATE refresh_tokens SET used = TRUE \
    WHERE token_hash = $1 AND NOT used AND NOT revoked AND expires > $2 \
    RETURNING token_hash, family, user_id, scope, created, expires";

/// `$1` token hash: what became of a token.
pub(crate) const REFRESH_TOKEN_STATE: &str =
    "SELECT family, used, revoked, user_id FROM refresh_tokens WHERE token_hash = $1";

/// Every signing key, newest first.
pub(crate) const SIGNING_KEYS: &str = "SELECT kid, algorithm, private_key, public_key, created \
    FROM signing_keys ORDER BY created DESC, kid";

/// `$1` kid, `$2` algorithm, `$3` private key, `$4` public key, `$5` created.
pub(crate) const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, algorithm, \
    private_key, public_key, created) VALUES ($1, $2, $3, $4, $5)";

/// `$1` kid.
pub(crate) const DELETE_SIGNING_KEY: &str = "DELETE FROM signing_keys WHERE kid = $1";

/// The `UPDATE` of a status change: `$1` id, `$2` now.
pub(crate) fn state_change_sql(change: super::StateChange) -> String {
    let set = state_change_set(change);
    format!("UPDATE users SET {set}, modified = $2 WHERE id = $1")
}

/// The values of [`INSERT_USER`], in its placeholder order.
pub(crate) fn user_values(u: &User) -> [SqlValue; 24] {
    use super::tx::{id, opt_int, opt_text, text};
    use crate::domain::names::name_key;
    [
        id(u.id),
        text(&u.username),
        text(&u.email),
        opt_text(u.first_name.as_deref()),
        opt_text(u.last_name.as_deref()),
        text(name_key(&u.username)),
        text(name_key(&u.email)),
        opt_text(u.first_name.as_deref().map(name_key)),
        opt_text(u.last_name.as_deref().map(name_key)),
        opt_text(u.timezone.as_deref()),
        opt_text(u.language.as_deref()),
        text(custom_text(&u.custom)),
        text(u.provider.as_str()),
        opt_text(u.password_hash.as_ref().map(|h| h.0.as_str())),
        SqlValue::Int(u.password_change_frequency),
        SqlValue::Bool(u.password_expirable),
        SqlValue::Bool(u.suspended),
        SqlValue::Bool(u.locked),
        SqlValue::Bool(u.password_reset_flag),
        SqlValue::Bool(u.opt_out_of_notifications),
        SqlValue::Int(u.created),
        SqlValue::Int(u.modified),
        opt_int(u.expiry),
        opt_int(u.password_changed),
    ]
}

/// A multi-row insert: `head`, then `VALUES` with one tuple of placeholders per row of
/// `rows`, then `tail`; and the values, in placeholder order.
pub(crate) fn multi_row<const N: usize>(
    dialect: Dialect,
    head: &str,
    rows: impl IntoIterator<Item = [SqlValue; N]>,
    tail: &str,
) -> (String, Vec<SqlValue>) {
    let mut params = Vec::new();
    let mut tuples = Vec::new();
    for row in rows {
        let tuple: Vec<String> = row
            .into_iter()
            .map(|v| placeholder(dialect, &mut params, v))
            .collect();
        tuples.push(format!("({})", tuple.join(", ")));
    }
    (format!("{head} VALUES {}{tail}", tuples.join(", ")), params)
}

/// A placeholder for a value used once, in order: `$N` on PostgreSQL, a plain `?` on
/// SQLite. SQLite finds a named parameter's name by walking a list of every name in the
/// statement, and the drivers ask for each parameter's name to bind it: with `$N`, a
/// statement of thousands of values (an import's multi-row insert) spent most of the
/// import in that walk. Anonymous `?`s have no name to look up and bind by position.
fn placeholder(dialect: Dialect, params: &mut Vec<SqlValue>, v: SqlValue) -> String {
    match dialect {
        Dialect::Postgres => push(params, v),
        Dialect::Sqlite => {
            params.push(v);
            "?".to_owned()
        }
    }
}

/// The head of a multi-row insert of users: [`INSERT_USER`] up to its `VALUES`.
pub(crate) fn import_users_head() -> &'static str {
    INSERT_USER
        .split_once(" VALUES ")
        .map_or(INSERT_USER, |(head, _)| head)
}

/// The users an import's records could be: those holding any of `keys` (folded names)
/// and those with any of the `given` ids, as `(id, username_lc, email_lc)` rows, read
/// with `row_lock` (locked until the transaction ends where that matters).
pub(crate) fn import_candidates(
    dialect: Dialect,
    keys: Vec<String>,
    given: Vec<String>,
    row_lock: &str,
) -> (String, Vec<SqlValue>) {
    const HEAD: &str = "SELECT id, username_lc, email_lc FROM users WHERE id IN \
        (SELECT user_id FROM user_identifiers WHERE key";
    match dialect {
        Dialect::Postgres => (
            format!("{HEAD} = ANY($1)) OR id = ANY($2){row_lock}"),
            vec![SqlValue::TextArray(keys), SqlValue::TextArray(given)],
        ),
        Dialect::Sqlite => {
            let mut params = Vec::new();
            let list = |params: &mut Vec<SqlValue>, items: Vec<String>| {
                let marks: Vec<String> = items
                    .into_iter()
                    .map(|k| placeholder(dialect, params, SqlValue::Text(k)))
                    .collect();
                marks.join(", ")
            };
            let keys = list(&mut params, keys);
            let mut text = format!("{HEAD} IN ({keys}))");
            if !given.is_empty() {
                let given = list(&mut params, given);
                text += &format!(" OR id IN ({given})");
            }
            (format!("{text}{row_lock}"), params)
        }
    }
}

/// Maps a write error: a unique-index hit names `field`, otherwise as [`fk_or`].
pub(crate) fn unique_or(e: impl Into<StoreError>, field: UniqueField) -> StoreError {
    let e = e.into();
    let unique = match &e {
        StoreError::Other(inner) => {
            if let Some(sqlx::Error::Database(db)) = inner.downcast_ref::<sqlx::Error>() {
                db.is_unique_violation()
            } else if let Some(rusqlite::Error::SqliteFailure(f, _)) =
                inner.downcast_ref::<rusqlite::Error>()
            {
                f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            } else {
                false
            }
        }
        _ => false,
    };
    if unique {
        return StoreError::Unique(field);
    }
    fk_or(e)
}

/// Maps a write error: a foreign-key hit, or a `NOT NULL` integer key that a lookup of a
/// user or group by id left empty, means a row the write refers to is gone. (rusqlite's
/// errors are mapped so where they become [`StoreError`]s.)
pub(crate) fn fk_or(e: impl Into<StoreError>) -> StoreError {
    let e = e.into();
    if let StoreError::Other(inner) = &e {
        if let Some(sqlx::Error::Database(db)) = inner.downcast_ref::<sqlx::Error>() {
            if matches!(
                db.kind(),
                sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::NotNullViolation
            ) {
                return StoreError::NotFound;
            }
        }
    }
    e
}

/// The columns of one fetched row, whichever driver fetched it: lets every store map a
/// user row with the one [`user_from`].
pub(crate) trait RowColumns {
    /// A text column.
    fn text(&self, column: &str) -> StoreResult<String>;
    /// A nullable text column.
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    /// An integer column.
    fn int(&self, column: &str) -> StoreResult<i64>;
    /// A nullable integer column.
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    /// A boolean column.
    fn flag(&self, column: &str) -> StoreResult<bool>;
}

/// Any sqlx row (PostgreSQL's, SQLite's) reads its columns through sqlx's decoding.
impl<R> RowColumns for R
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get(column)?)
    }
}

/// Binds [`SqlValue`]s for a sqlx driver: `text` prepares each text (PostgreSQL swaps
/// NUL), `array` binds a list of texts where the database has arrays.
pub(crate) fn sqlx_arguments<'q, DB>(
    params: &[SqlValue],
    text: fn(&str) -> String,
    array: fn(&mut DB::Arguments<'q>, Vec<String>) -> Result<(), sqlx::error::BoxDynError>,
) -> Result<DB::Arguments<'q>, sqlx::Error>
where
    DB: sqlx::Database,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use sqlx::Arguments as _;
    let mut args = DB::Arguments::<'q>::default();
    for p in params {
        match p {
            SqlValue::Null => args.add(None::<i64>),
            SqlValue::NullText => args.add(None::<String>),
            SqlValue::Bool(b) => args.add(*b),
            SqlValue::Int(i) => args.add(*i),
            SqlValue::Real(r) => args.add(*r),
            SqlValue::Text(s) => args.add(text(s)),
            SqlValue::Blob(b) => args.add(b.clone()),
            SqlValue::TextArray(a) => array(&mut args, a.iter().map(|s| text(s)).collect()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// Maps a row selected with [`USER_COLUMNS`].
pub(crate) fn user_from(row: &impl RowColumns) -> StoreResult<User> {
    Ok(User {
        id: stored_id(&row.text("id")?, UserId::parse)?,
        username: row.text("username")?,
        email: row.text("email")?,
        first_name: row.opt_text("first_name")?,
        last_name: row.opt_text("last_name")?,
        timezone: row.opt_text("timezone")?,
        language: row.opt_text("language")?,
        custom: parse_custom(&row.text("custom")?),
        provider: Provider::from_stored(&row.text("provider_type")?),
        password_hash: row.opt_text("password_hash")?.map(PasswordHash),
        password_change_frequency: row.int("password_change_frequency")?,
        password_expirable: row.flag("password_expirable")?,
        suspended: row.flag("suspended")?,
        locked: row.flag("locked")?,
        password_reset_flag: row.flag("password_reset_required")?,
        opt_out_of_notifications: row.flag("opt_out_of_notifications")?,
        created: row.int("created")?,
        modified: row.int("modified")?,
        last_login: row.opt_int("last_login")?,
        last_failed_login: row.opt_int("last_failed_login")?,
        expiry: row.opt_int("expiry")?,
        password_changed: row.opt_int("password_changed")?,
        failed_login_attempts: row.int("failed_login_attempts")?,
        failed_since_success: row.int("failed_since_success")?,
        successful_login_attempts: row.int("successful_login_attempts")?,
        token_version: row.int("token_version")?,
    })
}

fn stored_id<T>(text: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(text)
        .ok_or_else(|| StoreError::Other(format!("a stored id is not a uuid: {text}").into()))
}

/// Maps a row selected with [`GROUP_COLUMNS`].
pub(crate) fn group_from(row: &impl RowColumns) -> StoreResult<Group> {
    Ok(Group {
        id: stored_id(&row.text("id")?, GroupId::parse)?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        kind: GroupType::parse(&row.text("type")?).unwrap_or(GroupType::Contensis),
        custom: parse_custom(&row.text("custom")?),
        created: row.int("created")?,
        modified: row.int("modified")?,
        user_count: row.int("user_count")?,
        child_group_count: row.int("child_group_count")?,
    })
}

/// Maps a row selected with [`API_KEY_COLUMNS`].
pub(crate) fn api_key_from(row: &impl RowColumns) -> StoreResult<ApiKey> {
    let opt_user = |v: Option<String>| v.and_then(|s| UserId::parse(&s));
    Ok(ApiKey {
        id: stored_id(&row.text("id")?, ApiKeyId::parse)?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        enabled: row.flag("enabled")?,
        client_id: row.text("client_id")?,
        secret_hash: row.text("secret_hash")?,
        user_id: stored_id(&row.text("user_id")?, UserId::parse)?,
        created: row.int("created")?,
        created_by: opt_user(row.opt_text("created_by")?),
        modified: row.int("modified")?,
        modified_by: opt_user(row.opt_text("modified_by")?),
    })
}

/// Parses a stored id.
pub(crate) fn parse_uuid<T>(s: &str, wrap: fn(uuid::Uuid) -> T) -> Result<T, sqlx::Error> {
    uuid::Uuid::parse_str(s)
        .map(wrap)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Parses a stored `custom` object (an unreadable one reads as empty).
pub(crate) fn parse_custom(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Serializes `custom` for storage.
pub(crate) fn custom_text(custom: &Map<String, Value>) -> String {
    serde_json::to_string(custom).unwrap_or_else(|_| "{}".to_owned())
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern and wraps it in `%`.
/// Unicode lower case, like the stored `name_key` and PostgreSQL's `lower()`. (SQLite's
/// `lower()` folds ASCII only, so there a one- or two-letter non-ASCII user search can
/// miss; longer ones go through the trigram index, which folds Unicode.)
fn contains_pattern(q: &str) -> String {
    filter_sql::like_pattern(q, true, true)
}

/// Where a list's `q` looks: a full-text index (SQLite, users), and the columns a plain
/// `LIKE` scans when there is no index or the term is too short for trigrams.
struct TextSearch {
    fts: Option<(&'static str, &'static str)>,
    columns: &'static [&'static str],
}

const USER_SEARCH: TextSearch = TextSearch {
    fts: Some(("users_fts", "u.seq")),
    columns: &[
        "u.username_lc",
        "u.email_lc",
        "u.first_name_lc",
        "u.last_name_lc",
    ],
};

const GROUP_SEARCH: TextSearch = TextSearch {
    fts: None,
    columns: &["g.name_key"],
};

/// Quotes a search term as one FTS5 phrase (doubling any `"`), so no FTS5 syntax in the
/// term is interpreted.
pub(crate) fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// Pushes a parameter and returns its `$N` placeholder.
pub(crate) fn push(params: &mut Vec<SqlValue>, p: SqlValue) -> String {
    params.push(p);
    format!("${}", params.len())
}

/// Placeholders for a list of group ids, e.g. `$3, $4`.
pub(crate) fn push_ids(params: &mut Vec<SqlValue>, ids: &[GroupId]) -> String {
    ids.iter()
        .map(|id| push(params, SqlValue::Text(id.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for a list of text values, e.g. `$3, $4`.
pub(crate) fn push_texts(params: &mut Vec<SqlValue>, values: &[String]) -> String {
    values
        .iter()
        .map(|v| push(params, SqlValue::Text(v.clone())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A paged list query: `with` is a CTE prefix or empty, `wheres` are ANDed, `params` are
/// bound to the `$N` placeholders in order.
#[derive(Debug)]
pub(crate) struct ListSql {
    select: &'static str,
    from: &'static str,
    with: String,
    wheres: Vec<String>,
    order: String,
    /// The values to bind, in placeholder order: first those of the `WHERE` (and `WITH`),
    /// then those of the `ORDER BY`, then limit and offset.
    pub(crate) params: Vec<SqlValue>,
    /// How many of `params` the `WHERE` and `WITH` use.
    where_params: usize,
}

impl ListSql {
    /// The values [`ListSql::count_sql`] binds. PostgreSQL refuses a statement bound with
    /// more values than it has placeholders, so the ordering's are left out.
    pub(crate) fn count_params(&self) -> &[SqlValue] {
        &self.params[..self.where_params]
    }

    /// Whether the list is every row of its table (no scope, filter or search).
    pub(crate) fn is_everything(&self) -> bool {
        self.with.is_empty() && self.wheres.is_empty()
    }

    /// `SELECT COUNT(*)` over the matches; bind [`ListSql::count_params`].
    pub(crate) fn count_sql(&self) -> String {
        format!(
            "{} SELECT COUNT(*) FROM {}{}",
            self.with,
            self.from,
            self.filter()
        )
    }

    /// The query for one page; binds the limit and offset.
    pub(crate) fn page_sql(&mut self, page: PageRequest) -> String {
        let offset = i64::from(page.index) * i64::from(page.size);
        let limit = push(&mut self.params, SqlValue::Int(i64::from(page.size)));
        let off = push(&mut self.params, SqlValue::Int(offset));
        format!(
            "{} SELECT {} FROM {}{} ORDER BY {} LIMIT {limit} OFFSET {off}",
            self.with,
            self.select,
            self.from,
            self.filter(),
            self.order
        )
    }

    fn filter(&self) -> String {
        if self.wheres.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.wheres.join(" AND "))
        }
    }

    /// A list of `select` from `from` (no `WITH`), for lists built elsewhere
    /// (`audit.rs`).
    pub(crate) fn new(
        select: &'static str,
        from: &'static str,
        wheres: Vec<String>,
        order: String,
        params: Vec<SqlValue>,
        where_params: usize,
    ) -> Self {
        Self {
            select,
            from,
            with: String::new(),
            wheres,
            order,
            params,
            where_params,
        }
    }

    /// Every API key, by name.
    pub(crate) fn api_keys() -> Self {
        Self {
            select: API_KEY_COLUMNS,
            from: "api_keys",
            with: String::new(),
            wheres: Vec::new(),
            order: "name_key ASC, id ASC".to_owned(),
            params: Vec::new(),
            where_params: 0,
        }
    }

    /// The users a scope and query select.
    pub(crate) fn users(scope: &UserScope, query: &ListQuery, dialect: Dialect) -> Self {
        Self::users_matching(scope, query, dialect, None)
    }

    /// Users, with `q` answered by a prepared FTS5 query (`fts_match`, SQLite) rather
    /// than the phrase of the whole term; see `SqliteStore::trigram_plan`.
    pub(crate) fn users_matching(
        scope: &UserScope,
        query: &ListQuery,
        dialect: Dialect,
        fts_match: Option<String>,
    ) -> Self {
        let mut params = Vec::new();
        let mut wheres = Vec::new();
        let mut with = String::new();
        match scope {
            UserScope::All => {}
            UserScope::MembersOf {
                group,
                inherited: false,
                ..
            } => {
                let g = push(&mut params, SqlValue::Text(group.to_string()));
                wheres.push(format!(
                    "u.seq IN (SELECT user_seq FROM group_members \
                     WHERE group_seq = (SELECT seq FROM groups WHERE id = {g}))"
                ));
            }
            UserScope::MembersOf {
                group,
                inherited: true,
                excluded,
            } if excluded.is_empty() => {
                let g = push(&mut params, SqlValue::Text(group.to_string()));
                wheres.push(format!(
                    "u.seq IN (SELECT m.user_seq FROM group_closure c JOIN groups mg \
                     ON mg.id = c.descendant_id JOIN group_members m ON m.group_seq = mg.seq \
                     WHERE c.ancestor_id = {g})"
                ));
            }
            UserScope::MembersOf {
                group, excluded, ..
            } => {
                let g = push(&mut params, SqlValue::Text(group.to_string()));
                let x = push_ids(&mut params, excluded);
                with = format!(
                    "WITH RECURSIVE reach(id) AS (SELECT {g} UNION SELECT gc.child_id \
                     FROM group_children gc JOIN reach r ON gc.parent_id = r.id \
                     WHERE gc.child_id NOT IN ({x}))"
                );
                wheres.push(
                    "u.seq IN (SELECT m.user_seq FROM group_members m JOIN groups mg \
                     ON mg.seq = m.group_seq WHERE mg.id IN (SELECT id FROM reach))"
                        .to_owned(),
                );
            }
        }
        let (order, where_params) = list_terms(
            query,
            &UserColumns,
            dialect,
            &USER_SEARCH,
            fts_match,
            "u.username_lc",
            "u.id",
            &mut wheres,
            &mut params,
        );
        Self {
            select: USER_COLUMNS,
            from: "users u",
            with,
            wheres,
            order,
            params,
            where_params,
        }
    }

    /// The groups a scope and query select.
    pub(crate) fn groups(scope: &GroupScope, query: &ListQuery, dialect: Dialect) -> Self {
        let mut params = Vec::new();
        let mut wheres = Vec::new();
        let mut with = String::new();
        match scope {
            GroupScope::All => {}
            GroupScope::OfUser {
                user,
                inherited,
                excluded,
            } => {
                let u = push(&mut params, SqlValue::Text(user.to_string()));
                let u = format!("(SELECT seq FROM users WHERE id = {u})");
                if excluded.is_empty() {
                    wheres.push(if *inherited {
                        format!(
                            "g.id IN (SELECT c.ancestor_id FROM group_members m JOIN groups mg \
                             ON mg.seq = m.group_seq JOIN group_closure c \
                             ON c.descendant_id = mg.id WHERE m.user_seq = {u})"
                        )
                    } else {
                        format!(
                            "g.seq IN (SELECT group_seq FROM group_members WHERE user_seq = {u})"
                        )
                    });
                } else {
                    let x = push_ids(&mut params, excluded);
                    if *inherited {
                        with = format!(
                            "WITH RECURSIVE reach(id) AS (SELECT mg.id FROM group_members m \
                             JOIN groups mg ON mg.seq = m.group_seq \
                             WHERE m.user_seq = {u} AND mg.id NOT IN ({x}) UNION SELECT gc.parent_id \
                             FROM group_children gc JOIN reach r ON gc.child_id = r.id \
                             WHERE gc.parent_id NOT IN ({x}))"
                        );
                        wheres.push("g.id IN (SELECT id FROM reach)".to_owned());
                    } else {
                        wheres.push(format!(
                            "g.seq IN (SELECT group_seq FROM group_members WHERE user_seq = {u}) \
                             AND g.id NOT IN ({x})"
                        ));
                    }
                }
            }
            GroupScope::ChildrenOf {
                group,
                inherited,
                include_self,
                excluded,
            } => {
                let g = push(&mut params, SqlValue::Text(group.to_string()));
                let set = if !*inherited {
                    let x = if excluded.is_empty() {
                        String::new()
                    } else {
                        format!(" AND child_id NOT IN ({})", push_ids(&mut params, excluded))
                    };
                    format!("SELECT child_id FROM group_children WHERE parent_id = {g}{x}")
                } else if excluded.is_empty() {
                    format!("SELECT descendant_id FROM group_closure WHERE ancestor_id = {g}")
                } else {
                    let x = push_ids(&mut params, excluded);
                    with = format!(
                        "WITH RECURSIVE reach(id) AS (SELECT {g} UNION SELECT gc.child_id \
                         FROM group_children gc JOIN reach r ON gc.parent_id = r.id \
                         WHERE gc.child_id NOT IN ({x}))"
                    );
                    "SELECT id FROM reach".to_owned()
                };
                let own = if *include_self {
                    format!("(g.id IN ({set}) OR g.id = {g})")
                } else {
                    format!("(g.id IN ({set}) AND g.id <> {g})")
                };
                wheres.push(own);
            }
        }
        let (order, where_params) = list_terms(
            query,
            &GroupColumns,
            dialect,
            &GROUP_SEARCH,
            None,
            "lower(g.name)",
            "g.id",
            &mut wheres,
            &mut params,
        );
        Self {
            select: GROUP_COLUMNS,
            from: "groups g",
            with,
            wheres,
            order,
            params,
            where_params,
        }
    }
}

/// Adds the `WHERE` terms of a list's `q` and filter, and returns its `ORDER BY` (the
/// requested order, or `default_key` ascending in byte order, with `tie` last) and how
/// many parameters the `WHERE` uses.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per resource; a struct would only rename the arguments"
)]
fn list_terms(
    query: &ListQuery,
    cols: &dyn Columns,
    dialect: Dialect,
    search: &TextSearch,
    fts_match: Option<String>,
    default_key: &str,
    tie: &str,
    wheres: &mut Vec<String>,
    params: &mut Vec<SqlValue>,
) -> (String, usize) {
    if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
        match (dialect, search.fts) {
            // A prepared query over the term's rarest trigrams finds a superset of the
            // matches cheaply; the LIKE keeps exactly those that contain the term.
            (Dialect::Sqlite, Some((table, key))) if fts_match.is_some() => {
                let m = push(params, SqlValue::Text(fts_match.unwrap_or_default()));
                let p = push(params, SqlValue::Text(contains_pattern(q)));
                let any: Vec<String> = search
                    .columns
                    .iter()
                    .map(|c| format!("{c} LIKE {p} ESCAPE '\\'"))
                    .collect();
                wheres.push(format!(
                    "{key} IN (SELECT rowid FROM {table} WHERE {table} MATCH {m}) AND ({})",
                    any.join(" OR ")
                ));
            }
            // The trigram index is SQLite's; trigram matching needs three characters.
            (Dialect::Sqlite, Some((table, key))) if q.chars().count() >= 3 => {
                let p = push(params, SqlValue::Text(fts_phrase(q)));
                wheres.push(format!(
                    "{key} IN (SELECT rowid FROM {table} WHERE {table} MATCH {p})"
                ));
            }
            _ => {
                let p = push(params, SqlValue::Text(contains_pattern(q)));
                let any: Vec<String> = search
                    .columns
                    .iter()
                    .map(|c| format!("{c} LIKE {p} ESCAPE '\\'"))
                    .collect();
                wheres.push(format!("({})", any.join(" OR ")));
            }
        }
    }
    if let Some(filter) = &query.filter {
        wheres.push(filter_sql::translate(
            filter, cols, dialect, &query.ctx, params,
        ));
    }
    let where_params = params.len();
    let order = filter_sql::order_by_sql(&query.order, cols, dialect, params);
    let order = if order.is_empty() {
        format!("{default_key}{} ASC, {tie} ASC", dialect.byte_order())
    } else {
        format!("{order}, {tie} ASC")
    };
    (order, where_params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_row_insert_numbers_its_placeholders_row_by_row() {
        let rows = [
            [SqlValue::Text("a".into()), SqlValue::Int(1)],
            [SqlValue::Text("b".into()), SqlValue::NullText],
        ];
        let (text, params) = multi_row(
            Dialect::Postgres,
            "INSERT INTO t (x, y)",
            rows.clone(),
            " ON CONFLICT DO NOTHING",
        );
        assert_eq!(
            text,
            "INSERT INTO t (x, y) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(params.len(), 4);
        // SQLite: anonymous placeholders, bound by position (no name walk per value).
        let (text, params) = multi_row(Dialect::Sqlite, "INSERT INTO t (x, y)", rows, "");
        assert_eq!(text, "INSERT INTO t (x, y) VALUES (?, ?), (?, ?)");
        assert_eq!(params.len(), 4);
        assert_eq!(params[2], SqlValue::Text("b".into()));
        assert!(import_users_head().ends_with("password_changed)"));
        assert_eq!(
            user_values(&User::new("u".into(), "e@x.io".into(), 1)).len(),
            24
        );
    }

    #[test]
    fn import_candidates_bind_every_key_on_both_dialects() {
        let keys = vec!["ann".to_owned(), "ann@x.io".to_owned()];
        let given = vec!["id-1".to_owned()];
        let (text, params) = import_candidates(Dialect::Sqlite, keys.clone(), given.clone(), "");
        assert!(text.ends_with("key IN (?, ?)) OR id IN (?)"), "{text}");
        assert_eq!(params.len(), 3);
        let (text, _) = import_candidates(Dialect::Sqlite, keys.clone(), Vec::new(), "");
        assert!(text.ends_with("key IN (?, ?))"), "{text}");
        let (text, params) = import_candidates(Dialect::Postgres, keys, given, " FOR SHARE");
        assert!(
            text.ends_with("= ANY($1)) OR id = ANY($2) FOR SHARE"),
            "{text}"
        );
        assert_eq!(params.len(), 2);
    }
}
