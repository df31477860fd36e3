//! Audit events: who changed what, when, from where (docs/audit.md).
//!
//! The service builds one [`Event`] per change and hands it to the store with the change,
//! which records it in the same transaction. Names of targets are filled in by that
//! transaction, as they are at that moment; the event carries ids, and a name only where
//! no row has it (a login attempt for an unknown name, a deleted key).

use serde_json::{Map, Value};

use super::ids::{GroupId, UserId};
use crate::clock::Millis;

macro_rules! event_types {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// What happened. The wire name is `resource.verb`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            /// Every type, in documentation order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    UserCreated = "user.created": "A user was created.",
    UserUpdated = "user.updated": "A user's profile changed (the summary names the fields).",
    UserDeleted = "user.deleted": "A user was deleted.",
    PasswordChanged = "user.passwordChanged": "A user changed their own password.",
    PasswordReset = "user.passwordReset": "Someone else set a user's password.",
    UserSuspended = "user.suspended": "The suspend action.",
    UserUnsuspended = "user.unsuspended": "The unsuspend action.",
    UserUnlocked = "user.unlocked": "The unlock action.",
    PasswordResetForced = "user.passwordResetForced": "The forcePasswordReset action.",
    PasswordExpirable = "user.passwordExpirable": "The setPasswordToExpirable action.",
    UsersImported = "user.imported": "A batch of `gatehouse import` (the summary counts it).",
    GroupCreated = "group.created": "A group was created.",
    GroupUpdated = "group.updated": "A group's name or description changed.",
    GroupDeleted = "group.deleted": "A group was deleted.",
    MemberAdded = "group.memberAdded": "A user became a direct member of a group.",
    MemberRemoved = "group.memberRemoved": "A user stopped being a direct member of a group.",
    ChildAdded = "group.childAdded": "A group became a child of another (target: the parent; summary: the child).",
    ChildRemoved = "group.childRemoved": "A child-group link was removed.",
    ApiKeyCreated = "apiKey.created": "An API key was created.",
    ApiKeyUpdated = "apiKey.updated": "An API key's name, description or enabled flag changed.",
    ApiKeyDisabled = "apiKey.disabled": "An API key was disabled.",
    ApiKeyDeleted = "apiKey.deleted": "An API key was deleted.",
    SigningKeyRotated = "signingKey.rotated": "A new token-signing key was made the newest.",
    SigningKeyRetired = "signingKey.retired": "A token-signing key was removed.",
    LoginSucceeded = "login.succeeded": "A password or API-key login succeeded.",
    LoginFailed = "login.failed": "A login was refused (wrong password, closed account, unknown name).",
    LoginLockedOut = "login.lockedOut": "A failed login locked the account.",
    RefreshTokenReused = "refreshToken.reused": "A spent refresh token was presented again; its family was revoked.",
    RefreshTokenRevoked = "refreshToken.revoked": "A refresh token was revoked (sign-out at the revocation endpoint); its family with it.",
    WebhookCreated = "webhook.created": "A webhook endpoint was registered.",
    WebhookUpdated = "webhook.updated": "A webhook endpoint changed.",
    WebhookDeleted = "webhook.deleted": "A webhook endpoint was removed.",
}

impl EventType {
    /// Parses a wire name (exactly as [`EventType::as_str`] gives it).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// What kind of party acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A signed-in user.
    User,
    /// A script signed in with an API key (its user acts).
    ApiKey,
    /// The operator on the command line (or the server's own start-up).
    Cli,
    /// Nobody signed in (a login attempt).
    Anonymous,
}

impl ActorKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "apiKey",
            Self::Cli => "cli",
            Self::Anonymous => "anonymous",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// What kind of party.
    pub kind: ActorKind,
    /// The user (for an API key: the key's user).
    pub id: Option<UserId>,
    /// Their username at that moment (for an API key: the key's user's name).
    pub name: Option<String>,
}

impl Actor {
    /// The operator on the command line.
    pub fn cli() -> Self {
        Self {
            kind: ActorKind::Cli,
            id: None,
            name: Some("cli".into()),
        }
    }

    /// Nobody signed in.
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
            name: None,
        }
    }
}

/// Where a request came from: set by the front door, recorded with each event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The request's `x-request-id` (HTTP) or a per-operation id (other front doors).
    pub request_id: Option<String>,
    /// The client's address as the front door sees it.
    pub client_addr: Option<String>,
}

/// The objects an event is about. Names are read by the recording transaction from the
/// rows with these ids; `*_name` is kept only where there is no row to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// A user.
    pub user: Option<UserId>,
    /// A name for the user when no row has it (an unknown login name).
    pub user_name: Option<String>,
    /// A group.
    pub group: Option<GroupId>,
    /// An API key's id, a signing key's `kid`, or a webhook's id.
    pub key: Option<String>,
    /// The key's name at that moment.
    pub key_name: Option<String>,
}

/// One audit event, as the service hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When.
    pub at: Millis,
    /// What.
    pub kind: EventType,
    /// Who.
    pub actor: Actor,
    /// About what.
    pub target: Target,
    /// Changed field names and non-secret new values. Never a password, hash, secret or
    /// token.
    pub summary: Map<String, Value>,
    /// From where.
    pub origin: Origin,
}

impl Event {
    /// An event with an empty target and summary.
    pub fn new(kind: EventType, actor: Actor, origin: Origin, at: Millis) -> Self {
        Self {
            at,
            kind,
            actor,
            target: Target::default(),
            summary: Map::new(),
            origin,
        }
    }

    /// About a user.
    pub fn user(mut self, user: UserId) -> Self {
        self.target.user = Some(user);
        self
    }

    /// About a group.
    pub fn group(mut self, group: GroupId) -> Self {
        self.target.group = Some(group);
        self
    }

    /// About a key (API key, signing key or webhook), with its name.
    pub fn key(mut self, id: impl ToString, name: Option<String>) -> Self {
        self.target.key = Some(id.to_string());
        self.target.key_name = name;
        self
    }

    /// Adds one entry to the summary.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.summary.insert(field.to_owned(), value.into());
        self
    }
}

/// One recorded event, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The event's id: its position in the log (never reused).
    pub seq: i64,
    /// When.
    pub at: Millis,
    /// The event type's wire name (kept as text: a newer server may know more types).
    pub kind: String,
    /// `user`, `apiKey`, `cli` or `anonymous`.
    pub actor_type: String,
    /// The acting user.
    pub actor_id: Option<String>,
    /// Their name then.
    pub actor_name: Option<String>,
    /// The user the event is about.
    pub user_id: Option<String>,
    /// Their name then.
    pub user_name: Option<String>,
    /// The group the event is about.
    pub group_id: Option<String>,
    /// Its name then.
    pub group_name: Option<String>,
    /// The key (API key, signing key, webhook) the event is about.
    pub key_id: Option<String>,
    /// Its name then.
    pub key_name: Option<String>,
    /// What changed.
    pub summary: Map<String, Value>,
    /// The request that made it.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// A webhook endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id (a UUID).
    pub id: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    /// The HMAC key that signs each delivery. Shown once, at creation.
    pub secret: String,
    /// Optional description.
    pub description: Option<String>,
    /// Disabled endpoints are sent nothing, and nothing is queued for them.
    pub enabled: bool,
    /// The event types it receives; `*` for all.
    pub event_types: Vec<String>,
    /// Creation time.
    pub created: Millis,
    /// Who created it.
    pub created_by: Option<String>,
    /// Last change.
    pub modified: Millis,
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queued delivery as the API shows it (failed ones, and the pending queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The outbox row.
    pub seq: i64,
    /// The event delivered.
    pub event_seq: i64,
    /// `pending` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was queued.
    pub created: Millis,
    /// When the next attempt is due (pending).
    pub next_attempt: Millis,
    /// The last error, e.g. `HTTP 500` or `timed out`.
    pub last_error: Option<String>,
    /// The receiver's last status code, if it answered.
    pub last_status: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(seen.insert(t.as_str()), "{} twice", t.as_str());
        }
        assert_eq!(EventType::parse("user.Created"), None);
        assert_eq!(EventType::parse("*"), None);
    }
}
