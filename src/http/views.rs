//! Response bodies: how users, groups and pages look on the wire (camelCase, RFC 3339
//! UTC timestamps with milliseconds). Secrets never appear here.
//!
//! Each view is a typed `Serialize` struct that also derives [`utoipa::ToSchema`], so the
//! OpenAPI document (`openapi.rs`) describes exactly the JSON that is sent. Fields are
//! declared in the byte order of their wire names: the bodies are byte-for-byte what
//! `serde_json::json!` (which sorts keys) produced before the views were typed, and a
//! unit test below keeps it so.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::clock::{Millis, format_rfc3339};
use crate::domain::group::Group;
use crate::domain::page::{Page, PageRequest};
use crate::domain::user::{Provider, User};

/// A timestamp as RFC 3339 text, or `null`.
pub fn time(ms: Option<Millis>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_rfc3339(ms)))
}

/// A timestamp as RFC 3339 text.
pub fn stamp(ms: Millis) -> String {
    format_rfc3339(ms)
}

/// A user (spec §4). `credentials.password` is never returned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserView {
    /// Creation time.
    #[schema(format = DateTime)]
    pub created: String,
    /// Where the credentials come from, and the password change frequency.
    pub credentials: CredentialsView,
    /// Free-form JSON object owned by the client.
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    /// Unique case-insensitively, also against every other user's username.
    pub email: String,
    /// The account stops working after this instant.
    #[schema(format = DateTime)]
    pub expiry: Option<String>,
    /// All failed logins ever.
    pub failed_login_attempts: i64,
    /// Failed logins since the last success (drives lockout).
    pub failed_login_attempts_since_last_success: i64,
    /// Optional profile field.
    pub first_name: Option<String>,
    /// The user's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Optional profile field.
    pub language: Option<String>,
    /// Last failed login.
    #[schema(format = DateTime)]
    pub last_failed_login: Option<String>,
    /// Last successful login.
    #[schema(format = DateTime)]
    pub last_login: Option<String>,
    /// Optional profile field.
    pub last_name: Option<String>,
    /// Last profile change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// Opted out of notifications.
    pub opt_out_of_notifications: bool,
    /// When the password was last set.
    #[schema(format = DateTime)]
    pub password_changed: Option<String>,
    /// Derived account state.
    pub status: StatusView,
    /// Successful logins ever.
    pub successful_login_attempts: i64,
    /// Optional profile field.
    pub timezone: Option<String>,
    /// Unique case-insensitively, also against every other user's email.
    pub username: String,
}

/// The `credentials` object of a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserCredentials)]
pub struct CredentialsView {
    /// Days after which an expirable password must be changed; 0 = never.
    pub password_change_frequency: i64,
    /// Where the credentials come from.
    pub provider: ProviderView,
}

/// `credentials.provider` of a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UserProvider)]
pub struct ProviderView {
    /// `null` for ordinary users; the key's client id for API-key users.
    pub name: Option<String>,
    /// `contensis` or `apiKey`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(contensis|apiKey)$")]
    pub kind: &'static str,
}

/// The `status` object of a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserStatus)]
pub struct StatusView {
    /// Not suspended and not expired.
    pub active: bool,
    /// Locked after too many failed logins.
    pub locked: bool,
    /// The password must be changed before the next login.
    pub password_reset_required: bool,
    /// Suspended by an administrator.
    pub suspended: bool,
}

/// A user as sent, its derived status computed at `now`.
pub fn user(u: &User, now: Millis) -> UserView {
    UserView {
        created: stamp(u.created),
        credentials: CredentialsView {
            password_change_frequency: u.password_change_frequency,
            provider: ProviderView {
                name: match u.provider {
                    Provider::Contensis => None,
                    Provider::ApiKey => Some(u.username.clone()),
                },
                kind: u.provider.as_str(),
            },
        },
        custom: u.custom.clone(),
        email: u.email.clone(),
        expiry: u.expiry.map(stamp),
        failed_login_attempts: u.failed_login_attempts,
        failed_login_attempts_since_last_success: u.failed_since_success,
        first_name: u.first_name.clone(),
        id: u.id.to_string(),
        language: u.language.clone(),
        last_failed_login: u.last_failed_login.map(stamp),
        last_login: u.last_login.map(stamp),
        last_name: u.last_name.clone(),
        modified: stamp(u.modified),
        opt_out_of_notifications: u.opt_out_of_notifications,
        password_changed: u.password_changed.map(stamp),
        status: StatusView {
            active: u.is_active(now),
            locked: u.locked,
            password_reset_required: u.password_reset_required(now),
            suspended: u.suspended,
        },
        successful_login_attempts: u.successful_login_attempts,
        timezone: u.timezone.clone(),
        username: u.username.clone(),
    }
}

/// A group (spec §5). Counts are direct members.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Group)]
pub struct GroupView {
    /// Direct child groups.
    pub child_group_count: i64,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created: String,
    /// Free-form JSON object owned by the client.
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    /// Optional description.
    pub description: Option<String>,
    /// The group's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// Unique case-insensitively.
    pub name: String,
    /// `sys` (built in), `contensis` or `external`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(sys|contensis|external)$")]
    pub kind: &'static str,
    /// Direct user members.
    pub user_count: i64,
}

/// A group as sent.
pub fn group(g: &Group) -> GroupView {
    GroupView {
        child_group_count: g.child_group_count,
        created: stamp(g.created),
        custom: g.custom.clone(),
        description: g.description.clone(),
        id: g.id.to_string(),
        modified: stamp(g.modified),
        name: g.name.clone(),
        kind: g.kind.as_str(),
        user_count: g.user_count,
    }
}

/// A paged list (spec §1).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Page)]
pub struct PageView<T: ToSchema> {
    /// The items on this page; empty past the end.
    pub items: Vec<T>,
    /// How many pages there are at this page size.
    pub page_count: i64,
    /// Zero-based page index.
    pub page_index: u32,
    /// Items per page, 1 to 1000.
    pub page_size: u32,
    /// How many items match in all.
    pub total_count: i64,
}

/// A paged list of views made by `item`.
pub fn page<T, V: ToSchema>(
    page: &Page<T>,
    req: PageRequest,
    item: impl Fn(&T) -> V,
) -> PageView<V> {
    let size = i64::from(req.size);
    PageView {
        items: page.items.iter().map(item).collect(),
        page_count: (page.total + size - 1) / size,
        page_index: req.index,
        page_size: req.size,
        total_count: page.total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::group::GroupType;
    use crate::domain::ids::{GroupId, UserId};

    /// Serializing a view directly gives the same bytes as going through a
    /// `serde_json::Value` (whose keys are sorted), i.e. what `json!` produced.
    fn assert_sorted<T: Serialize>(view: &T) {
        let direct = serde_json::to_string(view).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(view).unwrap()).unwrap();
        assert_eq!(direct, sorted);
    }

    fn sample_user(provider: Provider) -> User {
        let mut custom = Map::new();
        custom.insert("b".into(), Value::from(1));
        custom.insert("a".into(), Value::Null);
        User {
            id: UserId::new(),
            username: "tyler".into(),
            email: "tyler@example.com".into(),
            first_name: Some("Tyler".into()),
            last_name: None,
            timezone: None,
            language: Some("en".into()),
            custom,
            provider,
            password_change_frequency: 0,
            password_expirable: false,
            suspended: false,
            locked: false,
            password_reset_flag: false,
            opt_out_of_notifications: false,
            created: 1,
            modified: 2,
            last_login: Some(3),
            last_failed_login: None,
            expiry: None,
            password_changed: Some(4),
            failed_login_attempts: 0,
            failed_since_success: 0,
            successful_login_attempts: 1,
            token_version: 0,
            password_hash: None,
        }
    }

    #[test]
    fn views_serialize_with_sorted_keys() {
        for provider in [Provider::Contensis, Provider::ApiKey] {
            let u = user(&sample_user(provider), 10);
            assert_sorted(&u);
            assert_sorted(&page(
                &Page {
                    items: vec![u.clone()],
                    total: 1,
                },
                PageRequest { index: 0, size: 25 },
                Clone::clone,
            ));
        }
        assert_sorted(&group(&Group {
            id: GroupId::new(),
            name: "Editors".into(),
            description: None,
            kind: GroupType::Contensis,
            custom: Map::new(),
            created: 1,
            modified: 2,
            user_count: 3,
            child_group_count: 4,
        }));
    }
}
