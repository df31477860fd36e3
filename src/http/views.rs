//! Response bodies: how users, groups and pages look on the wire (camelCase, RFC 3339
//! UTC timestamps with milliseconds). Secrets never appear here.

use serde_json::{Value, json};

use crate::clock::{Millis, format_rfc3339};
use crate::domain::group::Group;
use crate::domain::user::{Provider, User};
use crate::store::{Page, PageRequest};

/// A timestamp as RFC 3339 text, or `null`.
pub fn time(ms: Option<Millis>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_rfc3339(ms)))
}

/// A user as JSON, its derived status computed at `now`.
pub fn user(u: &User, now: Millis) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        "email": u.email,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "timezone": u.timezone,
        "language": u.language,
        "custom": u.custom,
        "credentials": {
            "provider": {
                "type": u.provider.as_str(),
                "name": match u.provider {
                    Provider::Contensis => Value::Null,
                    Provider::ApiKey => Value::String(u.username.clone()),
                },
            },
            "passwordChangeFrequency": u.password_change_frequency,
        },
        "status": {
            "active": u.is_active(now),
            "suspended": u.suspended,
            "locked": u.locked,
            "passwordResetRequired": u.password_reset_required(now),
        },
        "created": time(Some(u.created)),
        "modified": time(Some(u.modified)),
        "lastLogin": time(u.last_login),
        "lastFailedLogin": time(u.last_failed_login),
        "expiry": time(u.expiry),
        "passwordChanged": time(u.password_changed),
        "optOutOfNotifications": u.opt_out_of_notifications,
        "failedLoginAttempts": u.failed_login_attempts,
        "failedLoginAttemptsSinceLastSuccess": u.failed_since_success,
        "successfulLoginAttempts": u.successful_login_attempts,
    })
}

/// A group as JSON.
pub fn group(g: &Group) -> Value {
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "description": g.description,
        "type": g.kind.as_str(),
        "userCount": g.user_count,
        "childGroupCount": g.child_group_count,
        "custom": g.custom,
        "created": time(Some(g.created)),
        "modified": time(Some(g.modified)),
    })
}

/// A paged list (spec §1).
pub fn page<T>(page: &Page<T>, req: PageRequest, item: impl Fn(&T) -> Value) -> Value {
    let size = i64::from(req.size);
    json!({
        "pageIndex": req.index,
        "pageSize": req.size,
        "totalCount": page.total,
        "pageCount": (page.total + size - 1) / size,
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
    })
}
