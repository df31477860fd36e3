//! Every write transaction of the stores, written once against the executor [`Tx`].
//!
//! Role: the control flow of each `Store` method that changes state (which statements
//! run, in what order, what a missing row means, when the last-administrator guard and
//! the cycle check run, where a lock is taken), whichever database runs it. Each store
//! begins the transaction (SQLite `BEGIN IMMEDIATE`; PostgreSQL `begin`, retried on a
//! deadlock), calls the function here and commits what it returns `Ok`; an `Err` is
//! dropped, which rolls the transaction back.
//!
//! Locks ([`Tx::lock`]) are taken where PostgreSQL needs them (module documentation of
//! `postgres.rs`): always graph before admin, and before any row is written. On SQLite
//! they are nothing: the transaction holds the database's write lock from its start.
//!
//! It must not name a driver or a dialect: SQL text comes from `sql.rs`.

use std::collections::{HashMap, HashSet};

use super::audit::{self, record};
use super::filter_sql::SqlValue;
use super::import_match::{Decision, Known, Matcher};
use super::sql::{self, RowColumns, fk_or, parse_uuid, unique_or};
use super::tx::{Lock, RowLock, Tx, id, opt_text, text};
use super::{
    ImportBatch, ImportStats, OnAccept, PasswordAttempt, RefreshToken, RefreshUse, Settled,
    StateChange, StoreError, StoreResult, StoredKey, UniqueField,
};
use crate::clock::Millis;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{Actor, ActorKind, Event, EventType};
use crate::domain::group::Group;
use crate::domain::ids::{
    ApiKeyId, GroupId, SYSTEM_ADMINISTRATORS_ID, SYSTEM_ADMINISTRATORS_NAME, UserId,
};
use crate::domain::names::name_key;
use crate::domain::user::{PasswordHash, User};

/// Rows per multi-row statement in imports (24 values a user row: well under SQLite's
/// 32,766 and PostgreSQL's 65,535 bound parameters).
const IMPORT_CHUNK: usize = 500;

// ---- building blocks ----

/// Inserts the identifier keys of a user, naming which field collided.
async fn insert_identifiers(tx: &mut impl Tx, user: &User) -> StoreResult<()> {
    let username_key = name_key(&user.username);
    let email_key = name_key(&user.email);
    tx.execute(sql::INSERT_IDENTIFIER, &[text(&username_key), id(user.id)])
        .await
        .map_err(|e| unique_or(e, UniqueField::Username))?;
    if email_key != username_key {
        tx.execute(sql::INSERT_IDENTIFIER, &[text(email_key), id(user.id)])
            .await
            .map_err(|e| unique_or(e, UniqueField::Email))?;
    }
    Ok(())
}

/// Inserts a user row and its identifier keys.
async fn insert_user(tx: &mut impl Tx, user: &User) -> StoreResult<()> {
    tx.execute(sql::INSERT_USER, &sql::user_values(user))
        .await
        .map_err(|e| unique_or(e, UniqueField::Username))?;
    insert_identifiers(tx, user).await
}

/// Makes `user` a direct member of `groups`, in a fixed order so that two transactions
/// adding overlapping sets cannot deadlock on each other's rows.
async fn insert_memberships(tx: &mut impl Tx, user: UserId, groups: &[GroupId]) -> StoreResult<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> = groups.iter().map(ToString::to_string).collect();
    ids.sort();
    ids.dedup();
    tx.lock(Lock::Members).await?;
    for g in ids {
        tx.execute(sql::INSERT_MEMBER, &[text(g), id(user)])
            .await
            .map_err(fk_or)?;
    }
    Ok(())
}

/// Reads a user in a transaction; with `lock`, locking the row (PostgreSQL's
/// `FOR UPDATE`; SQLite's transaction holds the write lock already), so that a decision
/// made on the row holds until the transaction ends.
async fn read_user(tx: &mut impl Tx, user: UserId, lock: bool) -> StoreResult<Option<User>> {
    let lock = if lock {
        tx.row_lock(RowLock::Update)
    } else {
        ""
    };
    let text = sql::user_by_id() + lock;
    let row = tx.fetch_optional(&text, &[id(user)]).await?;
    row.as_ref().map(sql::user_from).transpose()
}

/// Reads a user who must exist.
async fn stored_user(tx: &mut impl Tx, user: UserId, lock: bool) -> StoreResult<User> {
    read_user(tx, user, lock).await?.ok_or(StoreError::NotFound)
}

/// Whether `user` is, directly or through child groups, in System Administrators.
async fn is_admin(tx: &mut impl Tx, user: UserId) -> StoreResult<bool> {
    tx.fetch_flag(sql::IS_ADMIN, &[id(user), id(SYSTEM_ADMINISTRATORS_ID)])
        .await
}

/// Whether `group` is System Administrators or lies below it.
async fn is_under_admins(tx: &mut impl Tx, group: GroupId) -> StoreResult<bool> {
    tx.fetch_flag(sql::IS_UNDER, &[id(SYSTEM_ADMINISTRATORS_ID), id(group)])
        .await
}

/// The last-administrator guard: refuses the transaction if System Administrators has
/// no member left who could sign in at `now` (not suspended, locked or expired). Call it
/// only holding [`Lock::Admin`], taken before the transaction decided what it removes.
async fn admin_guard(tx: &mut impl Tx, now: Millis) -> StoreResult<()> {
    let left = tx
        .fetch_flag(
            sql::ADMIN_LEFT,
            &[id(SYSTEM_ADMINISTRATORS_ID), SqlValue::Int(now)],
        )
        .await?;
    if left {
        Ok(())
    } else {
        Err(StoreError::LastAdmin)
    }
}

/// Adds the edge parent → child and its closure rows; `Ok(false)` if it existed. Refuses
/// an edge that would make a group contain itself. Call it only holding [`Lock::Graph`],
/// so that the cycle check sees every other node's committed edges.
async fn link_child(tx: &mut impl Tx, parent: GroupId, child: GroupId) -> StoreResult<bool> {
    if child == parent {
        return Err(StoreError::Cycle);
    }
    let (p, c) = (id(parent), id(child));
    if tx
        .fetch_flag(sql::IS_UNDER, &[c.clone(), p.clone()])
        .await?
    {
        return Err(StoreError::Cycle);
    }
    let added = tx
        .execute(sql::INSERT_CHILD, &[p.clone(), c.clone()])
        .await
        .map_err(fk_or)?;
    if added == 0 {
        return Ok(false);
    }
    tx.execute(sql::EXTEND_CLOSURE, &[p, c]).await?;
    Ok(true)
}

/// Rebuilds the closure rows of every group at or below `top` from the edges. Called,
/// holding [`Lock::Graph`], after an edge into that subtree went away; the cost is the
/// subtree's size times its depth.
async fn rebuild_closure_below(tx: &mut impl Tx, top: &[String]) -> StoreResult<()> {
    let mut below: Vec<String> = Vec::new();
    for t in top {
        below.extend(tx.fetch_texts(sql::DESCENDANTS, &[text(t)]).await?);
    }
    below.sort();
    below.dedup();
    for d in below {
        let d = [text(d)];
        tx.execute(sql::CLEAR_ANCESTORS, &d).await?;
        tx.execute(sql::INSERT_ANCESTORS, &d).await?;
    }
    Ok(())
}

/// Inserts a group and its reflexive closure row; with `if_new`, a taken id or name is
/// no error and `Ok(false)` says so.
async fn insert_group(tx: &mut impl Tx, group: &Group, if_new: bool) -> StoreResult<bool> {
    let values = [
        id(group.id),
        text(&group.name),
        text(name_key(&group.name)),
        opt_text(group.description.as_deref()),
        text(group.kind.as_str()),
        text(sql::custom_text(&group.custom)),
        SqlValue::Int(group.created),
        SqlValue::Int(group.modified),
    ];
    let insert = if if_new {
        sql::INSERT_GROUP_IF_NEW
    } else {
        sql::INSERT_GROUP
    };
    let done = tx
        .execute(insert, &values)
        .await
        .map_err(|e| unique_or(e, UniqueField::GroupName))?;
    if done == 0 {
        return Ok(false);
    }
    tx.execute(sql::INSERT_SELF_CLOSURE, &[id(group.id)])
        .await?;
    Ok(true)
}

/// `Err(NotFound)` when a statement that must change a row changed none.
fn found(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

// ---- users ----

/// [`super::Store::ensure_system_group`].
pub(crate) async fn ensure_system_group(tx: &mut impl Tx, now: Millis) -> StoreResult<()> {
    let values = [
        id(SYSTEM_ADMINISTRATORS_ID),
        text(SYSTEM_ADMINISTRATORS_NAME),
        text(name_key(SYSTEM_ADMINISTRATORS_NAME)),
        text("Members may call every endpoint."),
        SqlValue::Int(now),
    ];
    tx.execute(sql::INSERT_SYSTEM_GROUP, &values).await?;
    tx.execute(sql::INSERT_SELF_CLOSURE, &[id(SYSTEM_ADMINISTRATORS_ID)])
        .await?;
    Ok(())
}

/// [`super::Store::create_user`].
pub(crate) async fn create_user(
    tx: &mut impl Tx,
    user: &User,
    groups: &[GroupId],
    event: &Event,
) -> StoreResult<()> {
    insert_user(tx, user).await?;
    insert_memberships(tx, user.id, groups).await?;
    record(tx, event).await
}

/// [`super::Store::update_user_profile`].
pub(crate) async fn update_user_profile(
    tx: &mut impl Tx,
    before: &User,
    after: &User,
    event: &Event,
) -> StoreResult<User> {
    let user = after.id;
    let guards = sql::sets_expiry(before, after);
    if guards {
        tx.lock(Lock::Admin).await?;
    }
    if let Some((text, params)) = sql::profile_update(before, after) {
        let done = tx
            .execute(&text, &params)
            .await
            .map_err(|e| unique_or(e, UniqueField::Username))?;
        found(done)?;
    }
    let stored = stored_user(tx, user, false).await?;
    if sql::renames(before, after) {
        tx.execute(sql::DELETE_IDENTIFIERS, &[id(user)]).await?;
        insert_identifiers(tx, &stored).await?;
    }
    if guards && is_admin(tx, user).await? {
        admin_guard(tx, Millis::MAX).await?;
    }
    record(tx, event).await?;
    Ok(stored)
}

/// [`super::Store::set_password`].
pub(crate) async fn set_password(
    tx: &mut impl Tx,
    user: UserId,
    hash: &PasswordHash,
    now: Millis,
    event: &Event,
) -> StoreResult<()> {
    let done = tx
        .execute(
            sql::SET_PASSWORD,
            &[id(user), text(&hash.0), SqlValue::Int(now)],
        )
        .await?;
    found(done)?;
    tx.execute(sql::REVOKE_USER_TOKENS, &[id(user)]).await?;
    record(tx, event).await
}

/// [`super::Store::recover_user`].
pub(crate) async fn recover_user(
    tx: &mut impl Tx,
    user: UserId,
    hash: &PasswordHash,
    groups: &[GroupId],
    now: Millis,
    event: &Event,
) -> StoreResult<()> {
    let done = tx
        .execute(
            sql::RECOVER_USER,
            &[id(user), text(&hash.0), SqlValue::Int(now)],
        )
        .await?;
    found(done)?;
    tx.execute(sql::REVOKE_USER_TOKENS, &[id(user)]).await?;
    insert_memberships(tx, user, groups).await?;
    record(tx, event).await
}

/// [`super::Store::admin_can_sign_in`].
pub(crate) async fn admin_can_sign_in(tx: &mut impl Tx, now: Millis) -> StoreResult<bool> {
    tx.fetch_flag(
        sql::ADMIN_CAN_SIGN_IN,
        &[id(SYSTEM_ADMINISTRATORS_ID), SqlValue::Int(now)],
    )
    .await
}

/// [`super::Store::set_user_state`].
pub(crate) async fn set_user_state(
    tx: &mut impl Tx,
    user: UserId,
    change: StateChange,
    now: Millis,
    event: &Event,
) -> StoreResult<()> {
    let removes_admin = change == StateChange::Suspend;
    if removes_admin {
        tx.lock(Lock::Admin).await?;
    }
    let done = tx
        .execute(
            &sql::state_change_sql(change),
            &[id(user), SqlValue::Int(now)],
        )
        .await?;
    found(done)?;
    if removes_admin && is_admin(tx, user).await? {
        admin_guard(tx, now).await?;
    }
    if sql::revokes_refresh_tokens(change) {
        tx.execute(sql::REVOKE_USER_TOKENS, &[id(user)]).await?;
    }
    record(tx, event).await
}

/// [`super::Store::record_login`].
pub(crate) async fn record_login(
    tx: &mut impl Tx,
    user: UserId,
    now: Millis,
    event: &Event,
) -> StoreResult<User> {
    let done = tx
        .execute(sql::RECORD_LOGIN_SUCCESS, &[id(user), SqlValue::Int(now)])
        .await?;
    found(done)?;
    record(tx, event).await?;
    stored_user(tx, user, false).await
}

/// [`super::Store::settle_password_attempt`]. The row is read locked: on SQLite the
/// transaction's `BEGIN IMMEDIATE` took the write lock first, on PostgreSQL `FOR UPDATE`
/// makes every other attempt (on any node) wait for this one to end and then read the
/// row as this one left it.
pub(crate) async fn settle_password_attempt(
    tx: &mut impl Tx,
    user: UserId,
    attempt: PasswordAttempt<'_>,
    now: Millis,
    event: &Event,
) -> StoreResult<Settled> {
    let before = stored_user(tx, user, true).await?;
    let key = [id(user)];
    let accepted = attempt.accepted_by(&before, now);
    if accepted {
        match attempt.on_accept {
            OnAccept::Login => {
                tx.execute(sql::RECORD_LOGIN_SUCCESS, &[id(user), SqlValue::Int(now)])
                    .await?;
            }
            OnAccept::SetPassword(hash) => {
                tx.execute(
                    sql::SET_PASSWORD,
                    &[id(user), text(&hash.0), SqlValue::Int(now)],
                )
                .await?;
                tx.execute(sql::REVOKE_USER_TOKENS, &key).await?;
                tx.execute(sql::RESET_FAILURES, &key).await?;
            }
        }
    } else if before.password_hash.is_some() {
        let lock_after = SqlValue::Int(i64::from(attempt.lock_after));
        tx.execute(
            sql::RECORD_LOGIN_FAILURE,
            &[id(user), SqlValue::Int(now), lock_after],
        )
        .await?;
    }
    let after = stored_user(tx, user, false).await?;
    let newly_locked = after.locked && !before.locked;
    if newly_locked {
        tx.execute(sql::REVOKE_USER_TOKENS, &key).await?;
    }
    if accepted {
        record(tx, event).await?;
    } else {
        let mut failed = event.clone();
        failed.kind = EventType::LoginFailed;
        record(tx, &failed).await?;
        if newly_locked {
            failed.kind = EventType::LoginLockedOut;
            record(tx, &failed).await?;
        }
    }
    Ok(if accepted {
        Settled::Accepted(after)
    } else {
        Settled::Refused {
            user: after,
            newly_locked,
        }
    })
}

/// [`super::Store::revoke_refresh_tokens`].
pub(crate) async fn revoke_refresh_tokens(tx: &mut impl Tx, user: UserId) -> StoreResult<()> {
    tx.execute(sql::REVOKE_USER_TOKENS, &[id(user)]).await?;
    Ok(())
}

/// [`super::Store::delete_user`].
pub(crate) async fn delete_user(
    tx: &mut impl Tx,
    user: UserId,
    now: Millis,
    event: &Event,
) -> StoreResult<bool> {
    tx.lock(Lock::Admin).await?;
    let was_admin = is_admin(tx, user).await?;
    // Before the row goes, so the record names the user.
    record(tx, event).await?;
    let removed = tx.execute(sql::DELETE_USER, &[id(user)]).await?;
    if removed == 0 {
        return Ok(false);
    }
    if was_admin {
        admin_guard(tx, now).await?;
    }
    Ok(true)
}

// ---- groups ----

/// [`super::Store::create_group`].
pub(crate) async fn create_group(
    tx: &mut impl Tx,
    group: &Group,
    event: &Event,
) -> StoreResult<()> {
    insert_group(tx, group, false).await?;
    record(tx, event).await
}

/// [`super::Store::update_group`].
pub(crate) async fn update_group(
    tx: &mut impl Tx,
    group: &Group,
    event: &Event,
) -> StoreResult<()> {
    let values = [
        id(group.id),
        text(&group.name),
        text(name_key(&group.name)),
        opt_text(group.description.as_deref()),
        text(sql::custom_text(&group.custom)),
        SqlValue::Int(group.modified),
    ];
    let done = tx
        .execute(sql::UPDATE_GROUP, &values)
        .await
        .map_err(|e| unique_or(e, UniqueField::GroupName))?;
    found(done)?;
    record(tx, event).await
}

/// [`super::Store::delete_group`].
pub(crate) async fn delete_group(
    tx: &mut impl Tx,
    group: GroupId,
    now: Millis,
    event: &Event,
) -> StoreResult<bool> {
    tx.lock(Lock::Graph).await?;
    tx.lock(Lock::Admin).await?;
    let admin_related = is_under_admins(tx, group).await?;
    let children = tx.fetch_texts(sql::CHILDREN_OF, &[id(group)]).await?;
    // Before the row goes, so the record names the group; rolled back if it is gone.
    record(tx, event).await?;
    let removed = tx.execute(sql::DELETE_GROUP, &[id(group)]).await?;
    if removed == 0 {
        return Ok(false);
    }
    rebuild_closure_below(tx, &children).await?;
    if admin_related {
        admin_guard(tx, now).await?;
    }
    Ok(true)
}

// ---- membership ----

/// [`super::Store::add_members`]: in a fixed order, so that two transactions adding
/// overlapping sets to one group cannot deadlock on each other's rows.
pub(crate) async fn add_members(
    tx: &mut impl Tx,
    group: GroupId,
    users: &[UserId],
    event: &Event,
) -> StoreResult<()> {
    let mut ids: Vec<UserId> = users.to_vec();
    ids.sort_by_key(ToString::to_string);
    ids.dedup();
    tx.lock(Lock::Members).await?;
    for u in ids {
        let added = tx
            .execute(sql::INSERT_MEMBER, &[id(group), id(u)])
            .await
            .map_err(fk_or)?;
        if added > 0 {
            record(tx, &event.clone().user(u)).await?;
        }
    }
    Ok(())
}

/// [`super::Store::remove_member`].
pub(crate) async fn remove_member(
    tx: &mut impl Tx,
    group: GroupId,
    user: UserId,
    now: Millis,
    event: &Event,
) -> StoreResult<bool> {
    tx.lock(Lock::Admin).await?;
    let removed = tx
        .execute(sql::DELETE_MEMBER, &[id(group), id(user)])
        .await?;
    if removed == 0 {
        return Ok(false);
    }
    record(tx, event).await?;
    if is_under_admins(tx, group).await? {
        admin_guard(tx, now).await?;
    }
    Ok(true)
}

/// [`super::Store::add_children`].
pub(crate) async fn add_children(
    tx: &mut impl Tx,
    parent: GroupId,
    children: &[GroupId],
    event: &Event,
) -> StoreResult<()> {
    // Before the cycle check: see `postgres.rs`.
    tx.lock(Lock::Graph).await?;
    for child in children {
        if link_child(tx, parent, *child).await? {
            audit::record_child(tx, event, *child).await?;
        }
    }
    Ok(())
}

/// [`super::Store::remove_child`].
pub(crate) async fn remove_child(
    tx: &mut impl Tx,
    parent: GroupId,
    child: GroupId,
    now: Millis,
    event: &Event,
) -> StoreResult<bool> {
    tx.lock(Lock::Graph).await?;
    tx.lock(Lock::Admin).await?;
    let removed = tx
        .execute(sql::DELETE_CHILD, &[id(parent), id(child)])
        .await?;
    if removed == 0 {
        return Ok(false);
    }
    audit::record_child(tx, event, child).await?;
    let admin_related = is_under_admins(tx, parent).await?;
    rebuild_closure_below(tx, &[child.to_string()]).await?;
    if admin_related {
        admin_guard(tx, now).await?;
    }
    Ok(true)
}

/// [`super::Store::import`], in one transaction, in multi-row statements of
/// [`IMPORT_CHUNK`] rows.
pub(crate) async fn import(
    tx: &mut impl Tx,
    batch: &ImportBatch,
    event: &Event,
) -> StoreResult<ImportStats> {
    let mut stats = ImportStats::default();
    if !batch.children.is_empty() {
        tx.lock(Lock::Graph).await?;
    }
    // Users: read every user a record could be (by its names, or by its id when the
    // record gave one) and decide each record against those rows (module
    // `import_match`). On SQLite the transaction holds the write lock; on PostgreSQL the
    // rows are locked until it ends (`FOR SHARE`), so the decision holds when it is acted
    // on: a concurrent rename or email change waits for this batch, and one committed
    // just before is what `FOR SHARE` returns. A name taken after the read makes a fresh
    // record's insert fail; the PostgreSQL store then runs the batch again. An existing
    // user's memberships go to that user; a conflict's are dropped.
    let mut matcher = Matcher::default();
    let mut remap: HashMap<UserId, UserId> = HashMap::new();
    let mut dropped: HashSet<UserId> = HashSet::new();
    let mut fresh: Vec<&User> = Vec::with_capacity(batch.users.len());
    for chunk in batch.users.chunks(IMPORT_CHUNK) {
        let keys: Vec<String> = chunk
            .iter()
            .flat_map(|u| [name_key(&u.username), name_key(&u.email)])
            .collect();
        let given: Vec<String> = chunk
            .iter()
            .filter(|u| batch.ids_given.contains(&u.id))
            .map(|u| u.id.to_string())
            .collect();
        let lock = tx.row_lock(RowLock::Share);
        let (text, params) = sql::import_candidates(tx.dialect(), keys, given, lock);
        for row in tx.fetch_all(&text, &params).await? {
            matcher.add(Known {
                id: parse_uuid(&row.text("id")?, UserId::from_uuid)?,
                username_key: row.text("username_lc")?,
                email_key: row.text("email_lc")?,
            });
        }
        for user in chunk {
            match matcher.decide(
                user,
                batch.ids_given.contains(&user.id),
                !batch.existing_only.contains(&user.id),
            ) {
                Decision::Fresh => fresh.push(user),
                Decision::Existing(id) => {
                    remap.insert(user.id, id);
                    stats.users_skipped += 1;
                }
                Decision::Conflict(reason) => {
                    dropped.insert(user.id);
                    stats.conflicts.push((user.id, reason));
                }
            }
        }
    }
    for chunk in fresh.chunks(IMPORT_CHUNK) {
        let rows = chunk.iter().map(|u| sql::user_values(u));
        let (insert, params) = sql::multi_row(tx.dialect(), sql::import_users_head(), rows, "");
        tx.execute_once(&insert, &params)
            .await
            .map_err(|e| unique_or(e, UniqueField::Username))?;
        let pairs = chunk.iter().flat_map(|u| {
            let (uk, ek) = (name_key(&u.username), name_key(&u.email));
            let email = (ek != uk).then(|| [text(ek), id(u.id)]);
            std::iter::once([text(uk), id(u.id)]).chain(email)
        });
        let (insert, params) = sql::multi_row(
            tx.dialect(),
            sql::IMPORT_IDENTIFIERS_HEAD,
            pairs,
            sql::IMPORT_IDENTIFIERS_TAIL,
        );
        tx.execute_once(&insert, &params)
            .await
            .map_err(|e| unique_or(e, UniqueField::Email))?;
        stats.users += chunk.len() as u64;
    }
    for group in &batch.groups {
        if insert_group(tx, group, true).await? {
            stats.groups += 1;
        } else {
            stats.groups_skipped += 1;
        }
    }
    let members: Vec<[SqlValue; 2]> = batch
        .members
        .iter()
        .filter(|(_, u)| !dropped.contains(u))
        .map(|(g, u)| [id(g), id(remap.get(u).unwrap_or(u))])
        .collect();
    if !members.is_empty() {
        tx.lock(Lock::Members).await?;
    }
    for chunk in members.chunks(IMPORT_CHUNK) {
        let (text, params) = sql::multi_row(
            tx.dialect(),
            sql::IMPORT_MEMBERS_HEAD,
            chunk.iter().cloned(),
            sql::IMPORT_MEMBERS_TAIL,
        );
        stats.members += tx.execute_once(&text, &params).await.map_err(fk_or)?;
    }
    for (parent, child) in &batch.children {
        if link_child(tx, *parent, *child).await? {
            stats.children += 1;
        }
    }
    let event = event
        .clone()
        .with("users", stats.users)
        .with("groups", stats.groups)
        .with("members", stats.members)
        .with("children", stats.children)
        .with("conflicts", stats.conflicts.len());
    record(tx, &event).await?;
    Ok(stats)
}

// ---- refresh tokens ----

/// [`super::Store::insert_refresh_token`]. Serialized with a revocation of the same
/// family (`postgres.rs`).
pub(crate) async fn insert_refresh_token(tx: &mut impl Tx, t: &RefreshToken) -> StoreResult<()> {
    tx.lock(Lock::Family(&t.family)).await?;
    let values = [
        text(&t.token_hash),
        text(&t.family),
        id(t.user_id),
        text(&t.scope),
        SqlValue::Int(t.created),
        SqlValue::Int(t.expires),
    ];
    tx.execute(sql::INSERT_REFRESH_TOKEN, &values)
        .await
        .map_err(fk_or)?;
    Ok(())
}

/// [`super::Store::use_refresh_token`]: spends the token if it is live; a spent one
/// presented again revokes its family.
pub(crate) async fn use_refresh_token(
    tx: &mut impl Tx,
    token_hash: &str,
    now: Millis,
    event: &Event,
) -> StoreResult<RefreshUse> {
    let spent = tx
        .fetch_optional(
            sql::SPEND_REFRESH_TOKEN,
            &[text(token_hash), SqlValue::Int(now)],
        )
        .await?;
    if let Some(row) = spent {
        return Ok(RefreshUse::Valid(RefreshToken {
            token_hash: row.text("token_hash")?,
            family: row.text("family")?,
            user_id: parse_uuid(&row.text("user_id")?, UserId::from_uuid)?,
            scope: row.text("scope")?,
            created: row.int("created")?,
            expires: row.int("expires")?,
        }));
    }
    let Some(row) = tx
        .fetch_optional(sql::REFRESH_TOKEN_STATE, &[text(token_hash)])
        .await?
    else {
        return Ok(RefreshUse::Invalid);
    };
    if row.flag("revoked")? || !row.flag("used")? {
        // Revoked, or live but expired.
        return Ok(RefreshUse::Invalid);
    }
    let family = row.text("family")?;
    tx.lock(Lock::Family(&family)).await?;
    tx.execute(sql::REVOKE_FAMILY, &[text(&family)]).await?;
    let owner = parse_uuid(&row.text("user_id")?, UserId::from_uuid)?;
    record(tx, &event.clone().user(owner)).await?;
    Ok(RefreshUse::Reused)
}

/// [`super::Store::revoke_refresh_family`]. Decided under the family's lock by the
/// update itself: of two revocations of one family, only the first changes rows and
/// records an event.
pub(crate) async fn revoke_refresh_family(
    tx: &mut impl Tx,
    token_hash: &str,
    event: &Event,
) -> StoreResult<bool> {
    let Some(row) = tx
        .fetch_optional(sql::REFRESH_TOKEN_STATE, &[text(token_hash)])
        .await?
    else {
        return Ok(false);
    };
    let family = row.text("family")?;
    tx.lock(Lock::Family(&family)).await?;
    if tx
        .execute(sql::REVOKE_LIVE_FAMILY, &[text(&family)])
        .await?
        == 0
    {
        return Ok(false);
    }
    let owner = parse_uuid(&row.text("user_id")?, UserId::from_uuid)?;
    let mut event = event.clone().user(owner);
    // Whoever holds a user's refresh token acts as that user.
    if let Some(user) = read_user(tx, owner, false).await? {
        event.actor = Actor {
            kind: ActorKind::User,
            id: Some(owner),
            name: Some(user.username),
        };
    }
    record(tx, &event).await?;
    Ok(true)
}

// ---- API keys ----

/// [`super::Store::create_api_key`].
pub(crate) async fn create_api_key(
    tx: &mut impl Tx,
    key: &ApiKey,
    user: &User,
    groups: &[GroupId],
    event: &Event,
) -> StoreResult<()> {
    insert_user(tx, user).await?;
    insert_memberships(tx, user.id, groups).await?;
    let values = [
        id(key.id),
        text(&key.name),
        text(name_key(&key.name)),
        opt_text(key.description.as_deref()),
        SqlValue::Bool(key.enabled),
        text(&key.client_id),
        text(&key.secret_hash),
        id(key.user_id),
        SqlValue::Int(key.created),
        opt_text(key.created_by.map(|u| u.to_string())),
        SqlValue::Int(key.modified),
        opt_text(key.modified_by.map(|u| u.to_string())),
    ];
    tx.execute(sql::INSERT_API_KEY, &values)
        .await
        .map_err(|e| unique_or(e, UniqueField::ApiKeyName))?;
    record(tx, event).await
}

/// [`super::Store::update_api_key`]. Disabling a key may take an administrator away.
pub(crate) async fn update_api_key(
    tx: &mut impl Tx,
    key: &ApiKey,
    event: &Event,
) -> StoreResult<()> {
    if !key.enabled {
        tx.lock(Lock::Admin).await?;
    }
    let values = [
        id(key.id),
        text(&key.name),
        text(name_key(&key.name)),
        opt_text(key.description.as_deref()),
        SqlValue::Bool(key.enabled),
        SqlValue::Int(key.modified),
        opt_text(key.modified_by.map(|u| u.to_string())),
    ];
    let done = tx
        .execute(sql::UPDATE_API_KEY, &values)
        .await
        .map_err(|e| unique_or(e, UniqueField::ApiKeyName))?;
    found(done)?;
    let rename = [
        id(key.user_id),
        text(&key.name),
        SqlValue::Int(key.modified),
        text(name_key(&key.name)),
    ];
    tx.execute(sql::RENAME_API_KEY_USER, &rename).await?;
    if !key.enabled && is_admin(tx, key.user_id).await? {
        admin_guard(tx, key.modified).await?;
    }
    record(tx, event).await
}

/// [`super::Store::delete_api_key`].
pub(crate) async fn delete_api_key(
    tx: &mut impl Tx,
    key: ApiKeyId,
    now: Millis,
    event: &Event,
) -> StoreResult<bool> {
    tx.lock(Lock::Admin).await?;
    let user = tx.fetch_texts(sql::API_KEY_USER, &[id(key)]).await?;
    let Some(user) = user.into_iter().next() else {
        return Ok(false);
    };
    let user_id = parse_uuid(&user, UserId::from_uuid)?;
    let was_admin = is_admin(tx, user_id).await?;
    record(tx, event).await?;
    // The key row goes with its user (ON DELETE CASCADE).
    tx.execute(sql::DELETE_USER, &[text(user)]).await?;
    if was_admin {
        admin_guard(tx, now).await?;
    }
    Ok(true)
}

// ---- signing keys ----

/// [`super::Store::insert_signing_key`].
pub(crate) async fn insert_signing_key(
    tx: &mut impl Tx,
    key: &StoredKey,
    event: &Event,
) -> StoreResult<()> {
    let values = [
        text(&key.kid),
        text(&key.algorithm),
        SqlValue::Blob(key.private_key.clone()),
        SqlValue::Blob(key.public_key.clone()),
        SqlValue::Int(key.created),
    ];
    tx.execute(sql::INSERT_SIGNING_KEY, &values).await?;
    record(tx, event).await
}

/// [`super::Store::delete_signing_key`].
pub(crate) async fn delete_signing_key(
    tx: &mut impl Tx,
    kid: &str,
    event: &Event,
) -> StoreResult<bool> {
    let removed = tx.execute(sql::DELETE_SIGNING_KEY, &[text(kid)]).await? > 0;
    if removed {
        record(tx, event).await?;
    }
    Ok(removed)
}
