//! The user: what is stored, and the derived status rules.

use std::fmt;

use serde_json::{Map, Value};

use super::ids::UserId;
use crate::clock::Millis;

/// Milliseconds in a day, for `passwordChangeFrequency` (days).
const DAY_MS: i64 = 86_400_000;

/// Where a user's credentials come from (`credentials.provider.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// A username and password managed by gatehouse.
    Contensis,
    /// The user behind an API key; it authenticates with the key's secret.
    ApiKey,
}

impl Provider {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contensis => "contensis",
            Self::ApiKey => "apiKey",
        }
    }

    /// Parses the stored name; unknown values read as `Contensis`.
    pub fn from_stored(s: &str) -> Self {
        if s == "apiKey" {
            Self::ApiKey
        } else {
            Self::Contensis
        }
    }
}

/// An argon2id PHC string. Its `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The id.
    pub id: UserId,
    /// Unique case-insensitively, also against every other user's email.
    pub username: String,
    /// Unique case-insensitively, also against every other user's username.
    pub email: String,
    /// Optional profile fields.
    pub first_name: Option<String>,
    /// Optional profile field.
    pub last_name: Option<String>,
    /// Optional profile field (an IANA zone name, not checked).
    pub timezone: Option<String>,
    /// Optional profile field (a language tag, not checked).
    pub language: Option<String>,
    /// Free-form JSON object owned by the client.
    pub custom: Map<String, Value>,
    /// Where the credentials come from.
    pub provider: Provider,
    /// Days after which a password expires when the user is expirable; 0 = never.
    pub password_change_frequency: i64,
    /// Set by the `setPasswordToExpirable` action.
    pub password_expirable: bool,
    /// Suspended by an administrator.
    pub suspended: bool,
    /// Locked after too many failed logins.
    pub locked: bool,
    /// The stored flag; see [`User::password_reset_required`] for the effective value.
    pub password_reset_flag: bool,
    /// Opted out of notifications.
    pub opt_out_of_notifications: bool,
    /// Creation time.
    pub created: Millis,
    /// Last profile change.
    pub modified: Millis,
    /// Last successful login.
    pub last_login: Option<Millis>,
    /// Last failed login.
    pub last_failed_login: Option<Millis>,
    /// The account stops working after this instant.
    pub expiry: Option<Millis>,
    /// When the password was last set.
    pub password_changed: Option<Millis>,
    /// All failed logins ever.
    pub failed_login_attempts: i64,
    /// Failed logins since the last success (drives lockout).
    pub failed_since_success: i64,
    /// All successful logins ever.
    pub successful_login_attempts: i64,
    /// Tokens carry this number; bumping it revokes every token issued before.
    pub token_version: i64,
    /// The password hash, when a password is set.
    pub password_hash: Option<PasswordHash>,
}

impl User {
    /// A new, active gatehouse-managed user created at `now`, with no profile fields, no
    /// password and fresh counters; callers set the rest with struct update syntax.
    pub fn new(username: String, email: String, now: Millis) -> Self {
        Self {
            id: UserId::new(),
            username,
            email,
            first_name: None,
            last_name: None,
            timezone: None,
            language: None,
            custom: Map::new(),
            provider: Provider::Contensis,
            password_change_frequency: 0,
            password_expirable: false,
            suspended: false,
            locked: false,
            password_reset_flag: false,
            opt_out_of_notifications: false,
            created: now,
            modified: now,
            last_login: None,
            last_failed_login: None,
            expiry: None,
            password_changed: None,
            failed_login_attempts: 0,
            failed_since_success: 0,
            successful_login_attempts: 0,
            token_version: 0,
            password_hash: None,
        }
    }

    /// Sets a password hash, recording `now` as when it was set.
    pub fn with_password(mut self, hash: Option<PasswordHash>, now: Millis) -> Self {
        self.password_changed = hash.as_ref().map(|_| now);
        self.password_hash = hash;
        self
    }

    /// Whether the account has passed its expiry.
    pub fn is_expired(&self, now: Millis) -> bool {
        self.expiry.is_some_and(|e| e <= now)
    }

    /// `status.active`: not suspended and not expired.
    pub fn is_active(&self, now: Millis) -> bool {
        !self.suspended && !self.is_expired(now)
    }

    /// Whether a proven password may be accepted at all: the account is managed here
    /// and neither suspended, locked nor expired. The password endpoint needs only this
    /// (a user whose password must be reset sets a new one by proving the old).
    pub fn may_prove_password(&self, now: Millis) -> bool {
        self.provider == Provider::Contensis
            && !self.suspended
            && !self.locked
            && !self.is_expired(now)
    }

    /// Whether the password grant may sign the account in: it may prove its password
    /// and no password reset is due.
    pub fn may_log_in(&self, now: Millis) -> bool {
        self.may_prove_password(now) && !self.password_reset_required(now)
    }

    /// `status.passwordResetRequired`: the flag, or an expirable password that is older
    /// than `passwordChangeFrequency` days.
    pub fn password_reset_required(&self, now: Millis) -> bool {
        if self.password_reset_flag {
            return true;
        }
        if !self.password_expirable || self.password_change_frequency <= 0 {
            return false;
        }
        let changed = self.password_changed.unwrap_or(self.created);
        now.saturating_sub(changed) > self.password_change_frequency.saturating_mul(DAY_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            password_changed: Some(0),
            ..User::new("u".into(), "u@x".into(), 0)
        }
    }

    #[test]
    fn active_means_not_suspended_and_not_expired() {
        let mut u = user();
        assert!(u.is_active(10));
        u.expiry = Some(10);
        assert!(u.is_active(9));
        assert!(!u.is_active(10));
        u.expiry = None;
        u.suspended = true;
        assert!(!u.is_active(10));
    }

    #[test]
    fn expirable_passwords_age_out() {
        let mut u = user();
        u.password_change_frequency = 30;
        assert!(!u.password_reset_required(31 * DAY_MS), "not expirable yet");
        u.password_expirable = true;
        assert!(!u.password_reset_required(29 * DAY_MS));
        assert!(u.password_reset_required(31 * DAY_MS));
    }

    #[test]
    fn hash_debug_is_redacted() {
        let h = PasswordHash("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
