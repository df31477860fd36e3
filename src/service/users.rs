//! User verbs: create, read, update, delete, list, and the user's groups.

use crate::domain::audit::EventType;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{Caller, Error, ListRequest, Patch, Result, Services};
use crate::clock::parse_rfc3339;
use crate::domain::group::Group;
use crate::domain::ids::{GroupId, GroupRef, SYSTEM_ADMINISTRATORS_ID, UserRef};
use crate::domain::names::{self, FieldError, MAX_STRING};
use crate::domain::password_policy;
use crate::domain::user::{Provider, User};
use crate::store::{GroupScope, OnAccept, Page, StoreError, UserScope};

/// The body of a create, update (PUT) or merge patch (PATCH). Read-only properties the
/// client sends back (`id`, `status`, counters, ...) are simply not read.
/// A user's create or update, as a front door read it (HTTP: `http::users::UserBody`).
#[derive(Debug, Default, Clone)]
pub struct UserInput {
    /// Defaults to the email on create.
    pub username: Patch<String>,
    /// Required on create.
    pub email: Patch<String>,
    /// Optional profile field.
    pub first_name: Patch<String>,
    /// Optional profile field.
    pub last_name: Patch<String>,
    /// Optional profile field.
    pub timezone: Patch<String>,
    /// Optional profile field.
    pub language: Patch<String>,
    /// Free-form JSON object.
    pub custom: Patch<Map<String, Value>>,
    /// Password (create only) and change frequency.
    pub credentials: Option<CredentialsInput>,
    /// RFC 3339 instant after which the account stops working; must be in the future.
    pub expiry: Patch<String>,
    /// Opted out of notifications.
    pub opt_out_of_notifications: Patch<bool>,
}

/// The `credentials` object of a user body.
#[derive(Debug, Default, Clone)]
pub struct CredentialsInput {
    /// The initial password (create only; use the password endpoint to change it).
    pub password: Option<String>,
    /// Days before an expirable password must be changed; 0 = never.
    pub password_change_frequency: Patch<i64>,
}

/// The body of `POST /users/{user}/credentials/password`.
#[derive(Debug, Clone)]
pub struct PasswordInput {
    /// The current password; required when changing one's own.
    pub existing: Option<String>,
    /// The new password.
    pub new: String,
}

/// What `POST /users/{user}/actions` does: a change of the user's status.
pub use crate::store::StateChange as UserAction;

/// How an update treats the `custom` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// `PUT`: a given `custom` replaces the stored one.
    Replace,
    /// `PATCH`: a given `custom` is merged into the stored one as an RFC 7396 merge
    /// patch (`null` removes a key; objects merge recursively).
    MergePatch,
}

/// Applies an RFC 7396 JSON merge patch to an object.
pub fn merge_patch(
    mut target: Map<String, Value>,
    patch: Map<String, Value>,
) -> Map<String, Value> {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) => {
                let base = match target.remove(&key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                target.insert(key, Value::Object(merge_patch(base, inner)));
            }
            other => {
                target.insert(key, other);
            }
        }
    }
    target
}

/// Options of `POST /users`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CreateOptions {
    /// Create the user suspended.
    pub suspended: bool,
    /// Require a password change at first login.
    pub force_password_reset: bool,
}

fn optional_text(field: &'static str, p: &Patch<String>) -> Result<()> {
    if let Patch::Value(v) = p {
        names::check_optional(field, v, MAX_STRING)?;
    }
    Ok(())
}

fn parse_expiry(p: &Patch<String>, now: i64) -> Result<Patch<i64>> {
    Ok(match p {
        Patch::Absent => Patch::Absent,
        Patch::Null => Patch::Null,
        Patch::Value(s) => {
            let at = parse_rfc3339(s).ok_or_else(|| {
                Error::BadRequest("expiry must be an RFC 3339 date and time.".into())
            })?;
            if at <= now {
                return Err(FieldError::new("expiry", "expiry must be in the future").into());
            }
            Patch::Value(at)
        }
    })
}

fn check_frequency(p: &Patch<i64>) -> Result<()> {
    if let Patch::Value(days) = p {
        if *days < 0 {
            return Err(FieldError::new(
                "passwordChangeFrequency",
                "passwordChangeFrequency must be zero or a positive number of days",
            )
            .into());
        }
    }
    Ok(())
}

/// The audit summary of a profile change: each changed field with its new value, for
/// fields that are not secret (`custom` by its changed keys only, since clients put
/// anything there). `before` is `None` for a new user.
fn profile_summary(
    before: Option<&User>,
    after: &User,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut out = serde_json::Map::new();
    let mut field = |name: &str, old: Option<Value>, new: Value| {
        if old.as_ref() != Some(&new) {
            out.insert(name.to_owned(), new);
        }
    };
    field(
        "username",
        before.map(|b| json!(b.username)),
        json!(after.username),
    );
    field("email", before.map(|b| json!(b.email)), json!(after.email));
    field(
        "firstName",
        before.map(|b| json!(b.first_name)),
        json!(after.first_name),
    );
    field(
        "lastName",
        before.map(|b| json!(b.last_name)),
        json!(after.last_name),
    );
    field(
        "timezone",
        before.map(|b| json!(b.timezone)),
        json!(after.timezone),
    );
    field(
        "language",
        before.map(|b| json!(b.language)),
        json!(after.language),
    );
    field(
        "expiry",
        before.map(|b| json!(b.expiry)),
        json!(after.expiry),
    );
    field(
        "passwordChangeFrequency",
        before.map(|b| json!(b.password_change_frequency)),
        json!(after.password_change_frequency),
    );
    field(
        "optOutOfNotifications",
        before.map(|b| json!(b.opt_out_of_notifications)),
        json!(after.opt_out_of_notifications),
    );
    if before.is_none() {
        out.insert("suspended".into(), json!(after.suspended));
        out.insert(
            "passwordResetRequired".into(),
            json!(after.password_reset_flag),
        );
        out.insert("hasPassword".into(), json!(after.password_hash.is_some()));
    }
    let empty = serde_json::Map::new();
    let old_custom = before.map_or(&empty, |b| &b.custom);
    let mut keys: Vec<&String> = after
        .custom
        .iter()
        .filter(|(k, v)| old_custom.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(old_custom.keys().filter(|k| !after.custom.contains_key(*k)))
        .collect();
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        out.insert("customKeys".into(), json!(keys));
    }
    out
}

impl Services {
    /// `POST /users`.
    pub async fn create_user(
        &self,
        caller: &Caller,
        input: UserInput,
        opts: CreateOptions,
    ) -> Result<User> {
        self.create_user_in(caller, input, opts, &[]).await
    }

    /// Creates a user who is, in the same transaction, a direct member of `groups`
    /// (`gatehouse user create --admin`, the bootstrap's `admin`): all or nothing.
    #[tracing::instrument(skip_all)]
    pub async fn create_user_in(
        &self,
        caller: &Caller,
        input: UserInput,
        opts: CreateOptions,
        groups: &[GroupId],
    ) -> Result<User> {
        caller.require_admin()?;
        let now = self.now();
        let email = match &input.email {
            Patch::Value(e) => e.clone(),
            _ => return Err(FieldError::new("email", "email is required").into()),
        };
        names::check_email(&email)?;
        let username = match &input.username {
            Patch::Value(u) => u.clone(),
            _ => email.clone(),
        };
        names::check_name("username", &username)?;
        optional_text("firstName", &input.first_name)?;
        optional_text("lastName", &input.last_name)?;
        optional_text("timezone", &input.timezone)?;
        optional_text("language", &input.language)?;
        let custom = input.custom.value().cloned().unwrap_or_default();
        names::check_custom("custom", &custom)?;
        let expiry = parse_expiry(&input.expiry, now)?;
        let creds = input.credentials.unwrap_or_default();
        check_frequency(&creds.password_change_frequency)?;
        let first_name = input.first_name.value().cloned();
        let last_name = input.last_name.value().cloned();
        let password_hash = match creds.password {
            Some(p) => {
                password_policy::check(&p, &[first_name.as_deref(), last_name.as_deref()])?;
                Some(self.hash_password(p).await?)
            }
            None => None,
        };
        let user = User {
            first_name,
            last_name,
            timezone: input.timezone.value().cloned(),
            language: input.language.value().cloned(),
            custom,
            password_change_frequency: creds
                .password_change_frequency
                .value()
                .copied()
                .unwrap_or(0),
            suspended: opts.suspended,
            password_reset_flag: opts.force_password_reset,
            opt_out_of_notifications: input
                .opt_out_of_notifications
                .value()
                .copied()
                .unwrap_or(false),
            expiry: expiry.value().copied(),
            ..User::new(username, email, now).with_password(password_hash, now)
        };
        let mut event = self.event(caller, EventType::UserCreated).user(user.id);
        event.summary = profile_summary(None, &user);
        if !groups.is_empty() {
            event = event.with(
                "groups",
                groups.iter().map(ToString::to_string).collect::<Vec<_>>(),
            );
        }
        self.store()
            .create_user(&user, groups, &event)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => super::group_not_found(
                    &groups
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                e => e.into(),
            })?;
        tracing::info!(user_id = %user.id, username = %user.username, "user created");
        Ok(user)
    }

    /// Recovery (`gatehouse admin reset-password`, and the start-up bootstrap with
    /// `GATEHOUSE_ADMIN_PASSWORD`): gives the user `r` names the password `new` and
    /// makes the account usable again, in one transaction: lockout and suspension
    /// lifted, an expiry that has passed cleared, earlier tokens revoked; with `admin`,
    /// also a direct member of System Administrators. The password policy applies as
    /// everywhere; API-key users have no password.
    #[tracing::instrument(skip_all)]
    pub async fn recover_account(
        &self,
        caller: &Caller,
        r: &UserRef,
        new: &str,
        admin: bool,
    ) -> Result<User> {
        caller.require_admin()?;
        if !password_policy::within_bound(new) {
            return Err(FieldError::new("new", "password must be at most 1024 bytes long").into());
        }
        let user = self.resolve_user(Some(caller), r).await?;
        if user.provider != Provider::Contensis {
            return Err(FieldError::new("new", "API-key users have no password").into());
        }
        password_policy::check(
            new,
            &[user.first_name.as_deref(), user.last_name.as_deref()],
        )?;
        let hash = self.hash_password(new.to_owned()).await?;
        let groups: &[GroupId] = if admin {
            &[SYSTEM_ADMINISTRATORS_ID]
        } else {
            &[]
        };
        let event = self
            .event(caller, EventType::PasswordReset)
            .user(user.id)
            .with("recovery", true)
            .with("admin", admin);
        self.store()
            .recover_user(user.id, &hash, groups, self.now(), &event)
            .await?;
        self.callers_changed(&[user.id]);
        tracing::info!(user_id = %user.id, username = %user.username, admin, "account recovered: password set, unlocked, unsuspended");
        let stored = self.store().get_user(user.id).await?;
        stored.ok_or_else(|| super::user_not_found(&user.username))
    }

    /// `GET /users/{user}`.
    pub async fn get_user(&self, caller: &Caller, r: &UserRef) -> Result<User> {
        caller.require_may_address(r)?;
        let user = self.resolve_user(Some(caller), r).await?;
        caller.require_self_or_admin(user.id)?;
        Ok(user)
    }

    /// `PUT` and `PATCH /users/{user}`: the given fields change, `null` clears.
    #[tracing::instrument(skip_all)]
    pub async fn update_user(
        &self,
        caller: &Caller,
        r: &UserRef,
        input: UserInput,
        mode: UpdateMode,
    ) -> Result<User> {
        caller.require_may_address(r)?;
        let before = self.resolve_user(Some(caller), r).await?;
        caller.require_self_or_admin(before.id)?;
        let mut user = before.clone();
        let now = self.now();
        match input.username {
            Patch::Value(u) => {
                names::check_name("username", &u)?;
                user.username = u;
            }
            Patch::Null => {
                return Err(FieldError::new("username", "username must not be empty").into());
            }
            Patch::Absent => {}
        }
        match input.email {
            Patch::Value(e) => {
                names::check_email(&e)?;
                user.email = e;
            }
            Patch::Null => return Err(FieldError::new("email", "email is required").into()),
            Patch::Absent => {}
        }
        optional_text("firstName", &input.first_name)?;
        optional_text("lastName", &input.last_name)?;
        optional_text("timezone", &input.timezone)?;
        optional_text("language", &input.language)?;
        input.first_name.apply_to(&mut user.first_name);
        input.last_name.apply_to(&mut user.last_name);
        input.timezone.apply_to(&mut user.timezone);
        input.language.apply_to(&mut user.language);
        match input.custom {
            Patch::Value(c) => {
                user.custom = match mode {
                    UpdateMode::Replace => c,
                    UpdateMode::MergePatch => merge_patch(std::mem::take(&mut user.custom), c),
                };
                names::check_custom("custom", &user.custom)?;
            }
            Patch::Null => user.custom = Map::new(),
            Patch::Absent => {}
        }
        if let Patch::Value(v) = input.opt_out_of_notifications {
            user.opt_out_of_notifications = v;
        }
        // Expiry and password change frequency are the administrators' to set. A user
        // may send their own values back unchanged (clients send whole objects).
        let expiry = match &input.expiry {
            Patch::Value(s) if parse_rfc3339(s).is_some_and(|at| Some(at) == user.expiry) => {
                Patch::Absent
            }
            other => parse_expiry(other, now)?,
        };
        let mut new_expiry = user.expiry;
        expiry.apply_to(&mut new_expiry);
        let frequency = input
            .credentials
            .map(|c| c.password_change_frequency)
            .unwrap_or_default();
        check_frequency(&frequency)?;
        let new_frequency = frequency
            .value()
            .copied()
            .unwrap_or(user.password_change_frequency);
        if !caller.is_admin
            && (new_expiry != user.expiry || new_frequency != user.password_change_frequency)
        {
            return Err(Error::Forbidden(
                "Only administrators may change expiry or passwordChangeFrequency.".into(),
            ));
        }
        user.expiry = new_expiry;
        user.password_change_frequency = new_frequency;
        user.modified = now;
        let mut event = self.event(caller, EventType::UserUpdated).user(user.id);
        event.summary = profile_summary(Some(&before), &user);
        let stored = self
            .store()
            .update_user_profile(&before, &user, &event)
            .await?;
        self.callers_changed(&[user.id]);
        Ok(stored)
    }

    /// `DELETE /users/{user}`.
    #[tracing::instrument(skip_all)]
    pub async fn delete_user(&self, caller: &Caller, r: &UserRef) -> Result<()> {
        caller.require_may_address(r)?;
        let id = self.resolve_user_id(Some(caller), r).await?;
        caller.require_self_or_admin(id)?;
        let event = self.event(caller, EventType::UserDeleted).user(id);
        if !self.store().delete_user(id, self.now(), &event).await? {
            return Err(super::user_not_found(&id.to_string()));
        }
        self.callers_changed(&[id]);
        tracing::info!(user_id = %id, "user deleted");
        Ok(())
    }

    /// `GET /users`.
    pub async fn list_users(&self, caller: &Caller, query: &ListRequest) -> Result<Page<User>> {
        caller.require_admin()?;
        Ok(self
            .store()
            .list_users(&UserScope::All, &self.list_query(caller, query))
            .await?)
    }

    /// `GET /users/{user}/groups`.
    pub async fn user_groups(
        &self,
        caller: &Caller,
        r: &UserRef,
        inherited: bool,
        excluded: &[GroupRef],
        query: &ListRequest,
    ) -> Result<Page<Group>> {
        caller.require_may_address(r)?;
        let user = self.resolve_user_id(Some(caller), r).await?;
        caller.require_self_or_admin(user)?;
        let excluded = self.resolve_excluded(excluded).await?;
        let scope = GroupScope::OfUser {
            user,
            inherited,
            excluded,
        };
        Ok(self
            .store()
            .list_groups(&scope, &self.list_query(caller, query))
            .await?)
    }

    /// `HEAD /users/{user}/groups/{g1},{g2}`: in any of them, directly or inherited.
    /// Unknown groups in the list are skipped; if none is known the answer is 404.
    pub async fn user_in_any_group(
        &self,
        caller: &Caller,
        r: &UserRef,
        groups: &[GroupRef],
    ) -> Result<bool> {
        caller.require_may_address(r)?;
        let user = self.resolve_user_id(Some(caller), r).await?;
        caller.require_self_or_admin(user)?;
        let mut ids = Vec::with_capacity(groups.len());
        for g in groups {
            if let Some(id) = self.try_resolve_group_id(g).await? {
                ids.push(id);
            }
        }
        Ok(self.store().is_member(user, &ids).await?)
    }

    /// `POST /users/{user}/actions`.
    #[tracing::instrument(skip_all, fields(action = ?change))]
    pub async fn user_action(
        &self,
        caller: &Caller,
        r: &UserRef,
        change: UserAction,
    ) -> Result<()> {
        caller.require_admin()?;
        let id = self.resolve_user_id(Some(caller), r).await?;
        let kind = match change {
            UserAction::Suspend => EventType::UserSuspended,
            UserAction::Unsuspend => EventType::UserUnsuspended,
            UserAction::Unlock => EventType::UserUnlocked,
            UserAction::ForcePasswordReset => EventType::PasswordResetForced,
            UserAction::SetPasswordToExpirable => EventType::PasswordExpirable,
        };
        let event = self.event(caller, kind).user(id);
        self.store()
            .set_user_state(id, change, self.now(), &event)
            .await?;
        self.callers_changed(&[id]);
        tracing::info!(user_id = %id, "user status changed");
        Ok(())
    }

    /// `POST /users/{user}/credentials/password`.
    ///
    /// With a token: administrators may set anyone else's password without `existing`;
    /// everyone must prove `existing` to change their own. Without a token, proving
    /// `existing` is the only way in: that is how a user whose password must be reset
    /// (and who therefore cannot log in) sets a new one. Unauthenticated failures are
    /// all the same 401, with the same work whether or not the user exists, so the
    /// endpoint cannot be used to find out which users exist.
    ///
    /// Proving `existing` is a password attempt like a login: rate-limited per client
    /// address and per account (429), counted toward the lockout when wrong, and
    /// accepted only if the account can still use its password in the transaction that
    /// sets the new one.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        caller: Option<&Caller>,
        r: &UserRef,
        input: PasswordInput,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        for (field, value) in [
            ("new", Some(&input.new)),
            ("existing", input.existing.as_ref()),
        ] {
            if value.is_some_and(|v| !password_policy::within_bound(v)) {
                return Err(
                    FieldError::new(field, "password must be at most 1024 bytes long").into(),
                );
            }
        }
        let Some(caller) = caller else {
            return self
                .change_password_proving(None, r, input, client_addr)
                .await;
        };
        caller.require_may_address(r)?;
        let user = self.resolve_user(Some(caller), r).await?;
        caller.require_self_or_admin(user.id)?;
        if caller.user.id == user.id || !caller.is_admin {
            return self
                .change_password_proving(Some(user), r, input, client_addr)
                .await;
        }
        // An administrator setting someone else's password.
        if user.provider != Provider::Contensis {
            return Err(FieldError::new("new", "API-key users have no password").into());
        }
        password_policy::check(
            &input.new,
            &[user.first_name.as_deref(), user.last_name.as_deref()],
        )?;
        if self
            .verify_password(input.new.clone(), user.password_hash.clone())
            .await?
        {
            return Err(FieldError::new(
                "new",
                "the new password must differ from the current one",
            )
            .into());
        }
        let hash = self.hash_password(input.new).await?;
        let event = self.event(caller, EventType::PasswordReset).user(user.id);
        self.store()
            .set_password(user.id, &hash, self.now(), &event)
            .await?;
        self.callers_changed(&[user.id]);
        tracing::info!(user_id = %user.id, "password set by an administrator; earlier tokens revoked");
        Ok(())
    }

    /// A password change that proves `existing`: by the user themselves (`user` given,
    /// a wrong `existing` is 409) or without a token (`user` resolved here, every
    /// failure 401).
    async fn change_password_proving(
        &self,
        user: Option<User>,
        r: &UserRef,
        input: PasswordInput,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        let authenticated = user.is_some();
        let refused = || {
            if authenticated {
                Error::Conflict("The existing password is not correct.".into())
            } else {
                Error::Unauthenticated
            }
        };
        let user = match user {
            Some(u) => Some(u),
            None => match self.resolve_user(None, r).await {
                Ok(u) => Some(u),
                Err(Error::NotFound { .. } | Error::Unauthenticated) => None,
                Err(e) => return Err(e),
            },
        };
        let account = match (&user, r) {
            (Some(u), _) => u.id.to_string(),
            (None, UserRef::Key(k)) => crate::domain::names::name_key(&k.name),
            (None, UserRef::Current) => String::new(),
        };
        self.limit_attempt(client_addr, Some(&account))?;
        let Some(existing) = input.existing else {
            return Err(if authenticated {
                FieldError::new(
                    "existing",
                    "existing is required to change your own password",
                )
                .into()
            } else {
                Error::Unauthenticated
            });
        };
        let matched = self.check_claim(user.as_ref(), existing.clone()).await?;
        let Some(user) = user else {
            if let UserRef::Key(k) = r {
                self.record_unknown_login(&k.name).await?;
            }
            return Err(refused());
        };
        if matched.is_none() {
            // Counted as a failed attempt; nothing matched, so it is never accepted.
            let event = self
                .event_by(&user, EventType::PasswordChanged)
                .user(user.id);
            self.settle_attempt(&user, None, OnAccept::Login, &event)
                .await?;
            return Err(refused());
        }
        password_policy::check(
            &input.new,
            &[user.first_name.as_deref(), user.last_name.as_deref()],
        )?;
        // `existing` is the current password, so comparing the two texts is comparing
        // with the current password, without another argon2 run.
        if input.new == existing {
            return Err(FieldError::new(
                "new",
                "the new password must differ from the current one",
            )
            .into());
        }
        let hash = self.hash_password(input.new).await?;
        if self
            .settle_attempt(
                &user,
                matched,
                OnAccept::SetPassword(&hash),
                &self
                    .event_by(&user, EventType::PasswordChanged)
                    .user(user.id),
            )
            .await?
            .is_none()
        {
            return Err(refused());
        }
        tracing::info!(user_id = %user.id, "password changed; earlier tokens revoked");
        Ok(())
    }

    /// Resolves `excludedGroups`; names that match no group are ignored.
    pub(crate) async fn resolve_excluded(
        &self,
        refs: &[GroupRef],
    ) -> Result<Vec<crate::domain::ids::GroupId>> {
        let mut ids = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some(id) = self.try_resolve_group_id(r).await? {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let target =
            obj(json!({"keep": 1, "drop": 2, "nested": {"a": 1, "b": 2}, "scalar": {"x": 1}}));
        let patch =
            obj(json!({"drop": null, "add": 3, "nested": {"b": null, "c": 3}, "scalar": 5}));
        assert_eq!(
            Value::Object(merge_patch(target, patch)),
            json!({"keep": 1, "add": 3, "nested": {"a": 1, "c": 3}, "scalar": 5})
        );
    }
}
