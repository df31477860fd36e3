//! The verbs of gatehouse: authorize the caller, validate input, call the store.
//!
//! HTTP and the CLI are two front ends over these functions. Nothing here knows about
//! HTTP types or SQL; outcomes a client can act on are the closed set in [`Error`].

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod caller_cache;
pub mod directory;
pub mod groups;
pub mod import;
pub mod provisioning;
pub mod rate_limit;
pub mod users;
pub mod webhooks;

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use crate::auth::token::{KeyRing, generate_key};
use crate::clock::{Clock, Millis};
use crate::domain::audit::{Actor, ActorKind, Event, EventType, Origin};
use crate::domain::group::Group;
use crate::domain::ids::{GroupId, GroupRef, IdOrName, SYSTEM_ADMINISTRATORS_ID, UserId, UserRef};
use crate::domain::names::{FieldError, name_key};
use crate::domain::user::User;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, UniqueField};

/// An outcome the client can act on, one variant per status the API uses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("Authorization has been denied for this request.")]
    Unauthenticated,
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: `data` names what is missing, e.g. `{"group": "Admins"}`.
    #[error("{message}")]
    NotFound {
        /// A sentence for the client.
        message: String,
        /// What was missing.
        data: Value,
    },
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 422: a field breaks a rule; `data` names the field.
    #[error("{}", .0.reason)]
    Invalid(FieldError),
    /// 429: too many attempts from this address or for this user; retry after the
    /// given seconds.
    #[error("Too many attempts; retry after {retry_after_secs} s.")]
    RateLimited {
        /// Whole seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// 503: every password-hashing thread is busy and its queue is full; retry in a
    /// moment.
    #[error("The server is busy checking passwords; retry in a moment.")]
    Busy,
    /// 500: a real fault. The source is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound {
                message: "The resource no longer exists.".into(),
                data: Value::Null,
            },
            StoreError::Unique(UniqueField::Username) => {
                Self::Conflict("The username is already in use by another user.".into())
            }
            StoreError::Unique(UniqueField::Email) => {
                Self::Conflict("The email is already in use by another user.".into())
            }
            StoreError::Unique(UniqueField::GroupName) => {
                Self::Conflict("A group with that name already exists.".into())
            }
            StoreError::Unique(UniqueField::ApiKeyName) => {
                Self::Conflict("An API key with that name already exists.".into())
            }
            StoreError::Cycle => Self::Conflict(
                "A group cannot contain itself, directly or through its child groups.".into(),
            ),
            StoreError::LastAdmin => {
                Self::Conflict("System Administrators must keep at least one active member.".into())
            }
            StoreError::Other(source) => Self::Internal(source),
        }
    }
}

impl From<crate::auth::password::Busy> for Error {
    fn from(_: crate::auth::password::Busy) -> Self {
        Self::Busy
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// Shorthand for service results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is calling: the authenticated user and whether they administer everything.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user the token was issued to.
    pub user: User,
    /// Member of System Administrators, directly or through a child group.
    pub is_admin: bool,
}

/// The id of [`Caller::operator`]'s stand-in user: the nil UUID, which no user has
/// (user ids are random v4 UUIDs).
const OPERATOR_ID: UserId = UserId::from_uuid(uuid::Uuid::nil());

impl Caller {
    /// The operator of the installation: the command line working directly on the
    /// database, and the start-up bootstrap. An administrator with no account of its own
    /// (`@current` names nobody), so every rule but the permission check applies as to
    /// an administrator calling the API.
    pub fn operator() -> Self {
        let mut user = User::new("(operator)".into(), "(operator)".into(), 0);
        user.id = OPERATOR_ID;
        Self {
            user,
            is_admin: true,
        }
    }

    /// The actor audit events name for this caller.
    pub fn actor(&self) -> Actor {
        if self.is_operator() {
            return Actor::cli();
        }
        actor_of(&self.user)
    }

    /// Whether this is [`Caller::operator`].
    pub fn is_operator(&self) -> bool {
        self.user.id == OPERATOR_ID
    }

    /// Refuses anyone but administrators.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "You do not have permission to perform this action.".into(),
            ))
        }
    }

    /// Refuses a standard user who names anyone but themself, before any lookup, so
    /// that 403 versus 404 cannot reveal which usernames or emails exist.
    pub fn require_may_address(&self, r: &UserRef) -> Result<()> {
        if self.is_admin {
            return Ok(());
        }
        let own = match r {
            UserRef::Current => true,
            UserRef::Key(k) => {
                let key = name_key(&k.name);
                k.id == Some(self.user.id)
                    || key == name_key(&self.user.username)
                    || key == name_key(&self.user.email)
            }
        };
        if own { Ok(()) } else { self.require_admin() }
    }

    /// Refuses anyone but administrators and the user `id` themself.
    pub fn require_self_or_admin(&self, id: UserId) -> Result<()> {
        if self.is_admin || self.user.id == id {
            Ok(())
        } else {
            self.require_admin()
        }
    }
}

tokio::task_local! {
    /// Where the current operation came from (request id, client address), set by the
    /// front door around each request: every audit event records it.
    static ORIGIN: Origin;
}

/// Runs `operation` with `origin` as the origin of the events it records. The actor is
/// not part of it: every operation takes its caller explicitly.
pub async fn with_origin<F: std::future::Future>(origin: Origin, operation: F) -> F::Output {
    ORIGIN.scope(origin, operation).await
}

/// The current operation's origin (none outside [`with_origin`], e.g. on the CLI).
fn origin() -> Origin {
    ORIGIN.try_with(Clone::clone).unwrap_or_default()
}

/// Settings the services need, parsed from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `iss` of issued tokens.
    pub issuer: String,
    /// The base URL clients reach the service at, without a trailing slash: the
    /// discovery document's URLs start with it.
    pub public_base: String,
    /// Access-token lifetime in seconds.
    pub token_ttl_secs: i64,
    /// Consecutive failed logins that lock an account (0 = never).
    pub lockout_threshold: u32,
    /// Refresh-token lifetime in seconds.
    pub refresh_ttl_secs: i64,
    /// Rate limits of the token endpoint.
    pub login_limits: rate_limit::LoginLimitSettings,
    /// Whether the token endpoint takes the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// How long an authenticated caller is reused (at most 2 s; zero: never).
    pub caller_cache_ttl: std::time::Duration,
    /// The group (name or id) whose members may provision over SCIM besides the
    /// administrators; `None`: administrators only.
    pub scim_group: Option<String>,
    /// The group whose members (besides administrators) read the whole directory over
    /// LDAP (`--ldap-search-group`); `None`: administrators only.
    pub directory_readers: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "gatehouse".into(),
            public_base: "http://127.0.0.1:8080".into(),
            token_ttl_secs: 3600,
            lockout_threshold: 5,
            refresh_ttl_secs: 14 * 86_400,
            login_limits: rate_limit::LoginLimitSettings::default(),
            trust_forwarded_for: false,
            caller_cache_ttl: std::time::Duration::from_secs(1),
            scim_group: None,
            directory_readers: None,
        }
    }
}

/// A list as a client asks for it: free text, a parsed filter, the order and the page.
/// The service completes it with what `now()` and `currentUser()` mean
/// (`Services::list_query`), so no front door builds a store query itself.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// Case-insensitive "contains" over the resource's text fields (`q`).
    pub q: Option<String>,
    /// A parsed ZenQL or JSON filter.
    pub filter: Option<crate::query::ast::Expr>,
    /// Ordering; empty means the resource's default order.
    pub order: crate::query::ast::OrderBy,
    /// The page wanted.
    pub page: crate::domain::page::PageRequest,
}

impl ListRequest {
    /// Everything, in the default order, on the given page.
    pub fn page(page: crate::domain::page::PageRequest) -> Self {
        Self {
            q: None,
            filter: None,
            order: crate::query::ast::OrderBy(Vec::new()),
            page,
        }
    }
}

/// Everything a request needs, shared by all of them.
pub struct Services {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<KeyRing>>,
    settings: Settings,
    metrics: Metrics,
    login_limiter: rate_limit::LoginLimiter,
    callers: caller_cache::CallerCache,
    /// When a token with an unknown key id last made this node re-read the keys.
    keys_reloaded_at: std::sync::atomic::AtomicI64,
    /// Password jobs this server may have queued or running
    /// ([`crate::auth::password::queue_bound`]).
    hashing: tokio::sync::Semaphore,
    /// Per-resource turns for SCIM's read-modify-write changes.
    turns: provisioning::Turns,
}

/// The least time between two key reloads caused by tokens with an unknown key id.
const KEY_RELOAD_GAP: Millis = 5_000;

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Prepares the services: ensures the built-in group and a signing key exist.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<Self> {
        let now = clock.now_ms();
        store.ensure_system_group(now).await?;
        let keys = load_keys(store.as_ref(), &settings.issuer, now).await?;
        Ok(Self {
            store,
            clock,
            keys: RwLock::new(Arc::new(keys)),
            login_limiter: rate_limit::LoginLimiter::new(settings.login_limits),
            callers: caller_cache::CallerCache::new(settings.caller_cache_ttl),
            keys_reloaded_at: std::sync::atomic::AtomicI64::new(Millis::MIN),
            hashing: tokio::sync::Semaphore::new(crate::auth::password::queue_bound()),
            turns: provisioning::Turns::default(),
            settings,
            metrics: Metrics::new(),
        })
    }

    /// Call after a change to these users' rows, memberships or keys has committed:
    /// their cached callers are read again.
    fn callers_changed(&self, users: &[UserId]) {
        self.callers.invalidate_users(users);
    }

    /// Call after a change that may alter anyone's administrator status (the group
    /// graph, API keys) has committed.
    fn callers_changed_all(&self) {
        self.callers.invalidate_all();
    }

    /// Hashes a password, or [`Error::Busy`] when this server's password queue is full.
    pub(crate) async fn hash_password(
        &self,
        password: String,
    ) -> Result<crate::domain::user::PasswordHash> {
        let _permit = self.hashing.try_acquire().map_err(|_| Error::Busy)?;
        Ok(crate::auth::password::hash(password).await?)
    }

    /// Verifies a password (against the dummy hash with `None`), or [`Error::Busy`] when
    /// this server's password queue is full.
    pub(crate) async fn verify_password(
        &self,
        password: String,
        hash: Option<crate::domain::user::PasswordHash>,
    ) -> Result<bool> {
        let _permit = self.hashing.try_acquire().map_err(|_| Error::Busy)?;
        Ok(crate::auth::password::verify(password, hash).await?)
    }

    /// The store's query for a client's list request, made by `caller` now.
    fn list_query(&self, caller: &Caller, req: &ListRequest) -> crate::store::ListQuery {
        crate::store::ListQuery {
            q: req.q.clone(),
            filter: req.filter.clone(),
            order: req.order.clone(),
            page: req.page,
            ctx: crate::store::filter_sql::Ctx {
                now_ms: self.now(),
                current_user_id: caller.user.id.to_string(),
            },
        }
    }

    /// Whether the store's reads may be dropped halfway (see
    /// [`crate::store::Store::reads_are_cancel_safe`]).
    pub fn reads_are_cancel_safe(&self) -> bool {
        self.store.reads_are_cancel_safe()
    }

    /// Whether a membership check may be dropped halfway (see
    /// [`crate::store::Store::checks_are_cancel_safe`]).
    pub fn checks_are_cancel_safe(&self) -> bool {
        self.store.checks_are_cancel_safe()
    }

    /// The current time.
    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The store, for the operations of this module and its children only: front doors
    /// (HTTP, the command line) and `app` call operations, never the store.
    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Whether System Administrators has a member who can sign in now (the start-up
    /// bootstrap's question, `app::bootstrap_admin`).
    pub(crate) async fn admin_can_sign_in(&self) -> Result<bool> {
        Ok(self.store.admin_can_sign_in(self.now()).await?)
    }

    /// Whether the directory has no user at all (a fresh installation).
    pub(crate) async fn has_no_users(&self) -> Result<bool> {
        Ok(self.store.count_users().await? == 0)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics as OpenMetrics text, with the pool gauges read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.store.pool_stats())
    }

    /// The current key ring.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .expect("the key lock is never poisoned")
            .clone()
    }

    /// Re-reads the signing keys from the database, so keys made by another node (or by
    /// `gatehouse admin rotate-key`) are used and accepted here too.
    pub async fn reload_keys(&self) -> Result<()> {
        let keys = self.store.signing_keys().await?;
        if let Some(ring) = KeyRing::new(&self.settings.issuer, &keys) {
            *self.keys.write().expect("the key lock is never poisoned") = Arc::new(ring);
        }
        Ok(())
    }

    /// Whether a token with an unknown key id may make this node re-read the keys now:
    /// at most once per [`KEY_RELOAD_GAP`] (claimed atomically, so a burst of forged
    /// tokens costs one read).
    fn may_reload_keys(&self, now: Millis) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.keys_reloaded_at.load(Ordering::Relaxed);
        now.saturating_sub(last) >= KEY_RELOAD_GAP
            && self
                .keys_reloaded_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Retires a signing key: it is deleted, so tokens signed with it fail here at once
    /// and on other nodes at their next key reload (each minute). The newest remaining
    /// key signs. The only key cannot be retired (rotate first).
    pub async fn retire_key(&self, kid: &str) -> Result<()> {
        let keys = self.store.signing_keys().await?;
        if !keys.iter().any(|k| k.kid == kid) {
            return Err(Error::NotFound {
                message: format!("No signing key has the id {kid:?}."),
                data: serde_json::json!({ "kid": kid }),
            });
        }
        if keys.len() == 1 {
            return Err(Error::Conflict(
                "The only signing key cannot be retired; rotate the key first.".into(),
            ));
        }
        let event = self
            .event(&Caller::operator(), EventType::SigningKeyRetired)
            .key(kid, None);
        self.store.delete_signing_key(kid, &event).await?;
        self.reload_keys().await
    }

    /// Adds a new signing key; this node signs with it at once, others after their next
    /// reload. Tokens signed with older keys stay valid until they expire.
    pub async fn rotate_key(&self) -> Result<String> {
        let key = generate_key(self.now());
        let event = self
            .event(&Caller::operator(), EventType::SigningKeyRotated)
            .key(&key.kid, None);
        self.store.insert_signing_key(&key, &event).await?;
        self.reload_keys().await?;
        Ok(key.kid)
    }

    /// Closes the store and waits for its background work to end
    /// ([`Store::close`]): for a process that goes on without this server (tests).
    /// Requests still arriving fail.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// An audit event of `kind` by `caller`, now, from the current origin.
    pub(crate) fn event(&self, caller: &Caller, kind: EventType) -> Event {
        Event::new(kind, caller.actor(), origin(), self.now())
    }

    /// An audit event by `user`, who proved who they are without a token (a password
    /// change proving the existing password).
    pub(crate) fn event_by(&self, user: &User, kind: EventType) -> Event {
        Event::new(kind, actor_of(user), origin(), self.now())
    }

    /// An audit event with nobody signed in (login attempts).
    pub(crate) fn anonymous_event(&self, kind: EventType) -> Event {
        Event::new(kind, Actor::anonymous(), origin(), self.now())
    }

    /// Answers when the database does.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Finds the user a path segment names, or 404 naming it.
    pub async fn resolve_user(&self, caller: Option<&Caller>, r: &UserRef) -> Result<User> {
        let key = match r {
            UserRef::Current => return current(caller).map(|c| c.user.clone()),
            UserRef::Key(key) => key,
        };
        if let Some(id) = key.id {
            if let Some(user) = self.store.get_user(id).await? {
                return Ok(user);
            }
        }
        if let Some(id) = self.store.find_user_by_key(&name_key(&key.name)).await? {
            if let Some(user) = self.store.get_user(id).await? {
                return Ok(user);
            }
        }
        Err(user_not_found(&key.name))
    }

    /// Finds only the id of the user a segment names (cheaper), or 404.
    pub async fn resolve_user_id(&self, caller: Option<&Caller>, r: &UserRef) -> Result<UserId> {
        match r {
            UserRef::Current => current(caller).map(|c| c.user.id),
            UserRef::Key(key) => self
                .try_resolve_user_id(key)
                .await?
                .ok_or_else(|| user_not_found(&key.name)),
        }
    }

    /// Finds the id of the user an id, username or email names, if any: the id
    /// interpretation first, then the name.
    pub async fn try_resolve_user_id(&self, key: &IdOrName<UserId>) -> Result<Option<UserId>> {
        if let Some(id) = key.id {
            if self.store.user_exists(id).await? {
                return Ok(Some(id));
            }
        }
        Ok(self.store.find_user_by_key(&name_key(&key.name)).await?)
    }

    /// Finds the group a path segment names, or 404 naming it.
    pub async fn resolve_group(&self, r: &GroupRef) -> Result<Group> {
        let id = self.resolve_group_id(r).await?;
        self.store
            .get_group(id)
            .await?
            .ok_or_else(|| group_not_found(&r.name))
    }

    /// Finds only the id of the group a segment names, or 404.
    pub async fn resolve_group_id(&self, r: &GroupRef) -> Result<GroupId> {
        self.try_resolve_group_id(r)
            .await?
            .ok_or_else(|| group_not_found(&r.name))
    }

    /// Finds the id of the group a segment names, if any.
    pub async fn try_resolve_group_id(&self, r: &GroupRef) -> Result<Option<GroupId>> {
        if let Some(id) = r.id {
            if self.store.group_exists(id).await? {
                return Ok(Some(id));
            }
        }
        Ok(self.store.find_group_by_key(&name_key(&r.name)).await?)
    }

    /// Whether `user` is an administrator.
    pub async fn is_admin(&self, user: UserId) -> Result<bool> {
        Ok(self
            .store
            .is_member(user, &[SYSTEM_ADMINISTRATORS_ID])
            .await?)
    }
}

/// A user as an actor (an API key's user as the API key).
fn actor_of(user: &User) -> Actor {
    let kind = match user.provider {
        crate::domain::user::Provider::ApiKey => ActorKind::ApiKey,
        crate::domain::user::Provider::Contensis => ActorKind::User,
    };
    Actor {
        kind,
        id: Some(user.id),
        name: Some(user.username.clone()),
    }
}

/// The caller `@current` names: 401 without one, 400 for the operator, who has no
/// account.
fn current(caller: Option<&Caller>) -> Result<&Caller> {
    match caller {
        None => Err(Error::Unauthenticated),
        Some(c) if c.is_operator() => Err(Error::BadRequest(
            "'@current' names the signed-in user, and there is none here; name the user by id, username or email.".into(),
        )),
        Some(c) => Ok(c),
    }
}

async fn load_keys(store: &dyn Store, issuer: &str, now: Millis) -> Result<KeyRing> {
    let mut keys = store.signing_keys().await?;
    if keys.is_empty() {
        let key = generate_key(now);
        let event = Event::new(EventType::SigningKeyRotated, Actor::cli(), origin(), now)
            .key(&key.kid, None)
            .with("reason", "first start");
        store.insert_signing_key(&key, &event).await?;
        keys = store.signing_keys().await?;
    }
    KeyRing::new(issuer, &keys)
        .ok_or_else(|| Error::Internal("no usable signing key in the database".into()))
}

/// 404 for a user identifier.
pub fn user_not_found(name: &str) -> Error {
    Error::NotFound {
        message: format!("User '{name}' was not found."),
        data: json!({ "user": name }),
    }
}

/// 404 for a group identifier.
pub fn group_not_found(name: &str) -> Error {
    Error::NotFound {
        message: format!("Group '{name}' was not found."),
        data: json!({ "group": name }),
    }
}

/// A field in a create, update or merge-patch body: absent, explicitly `null`, or set.
/// (`Option<Option<T>>` with a name that says what each case means.)
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    /// The property was not in the body: leave the field as it is.
    #[default]
    Absent,
    /// The property was `null`: clear the field.
    Null,
    /// The property had a value.
    Value(T),
}

impl<T> Patch<T> {
    /// The value, if one was given.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Applies the patch to an optional field.
    pub fn apply_to(self, field: &mut Option<T>) {
        match self {
            Self::Absent => {}
            Self::Null => *field = None,
            Self::Value(v) => *field = Some(v),
        }
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|o| o.map_or(Self::Null, Self::Value))
    }
}
