//! Field rules shared by users and groups: lengths, emails, and the case-insensitive key
//! under which names are unique.

/// Most strings are at most this many characters (spec §1).
pub const MAX_STRING: usize = 255;
/// Descriptions are at most this many characters.
pub const MAX_DESCRIPTION: usize = 2000;
/// `custom` objects are at most this many bytes once serialised.
pub const MAX_CUSTOM_BYTES: usize = 64 * 1024;

/// The key under which a username, email or group name is unique: Unicode lower case.
/// Computed here, not in SQL, so that SQLite and PostgreSQL agree on every character.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// A broken field rule: the field's wire name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON property name, e.g. `email`.
    pub field: &'static str,
    /// A sentence for the client.
    pub reason: String,
}

impl FieldError {
    /// A new field error.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks a required short string (a username, an email, a group or key name): not
/// blank, at most 255, and no control characters at all: unlike free text, a name
/// lands in log lines and terminals, where a newline forges a line and an escape
/// rewrites the screen.
pub fn check_name(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, format!("{field} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    check_optional(field, value, MAX_STRING)
}

/// Checks an optional string's length and characters.
pub fn check_optional(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// Checks an email address: one `@`, a non-empty local part and domain, no spaces.
/// Deliberately permissive beyond that (`admin@localhost` is valid): the only reliable
/// check of an address is sending mail to it, which is not our job.
pub fn check_email(value: &str) -> Result<(), FieldError> {
    check_name("email", value)?;
    let invalid = || FieldError::new("email", "email is not a valid email address");
    let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@') && local.contains('@')
        || value.chars().any(char::is_whitespace)
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(invalid());
    }
    Ok(())
}

/// Checks a `custom` object's serialised size, and that no key or string in it holds a
/// NUL character: PostgreSQL's `jsonb`, which custom-property queries cast to, cannot
/// represent one, so a single such value would break those queries for every row.
pub fn check_custom(
    field: &'static str,
    custom: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), FieldError> {
    let size = serde_json::to_vec(custom)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_BYTES {
        return Err(FieldError::new(
            field,
            format!("{field} must be at most {MAX_CUSTOM_BYTES} bytes when serialised"),
        ));
    }
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    if custom.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(FieldError::new(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_rejects_nul_anywhere() {
        let obj = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        assert!(check_custom("custom", &obj(serde_json::json!({"a": ["b", {"c": 1}]}))).is_ok());
        for bad in [
            serde_json::json!({"a\0": 1}),
            serde_json::json!({"a": "x\0"}),
            serde_json::json!({"a": [{"b": ["\0"]}]}),
        ] {
            assert!(check_custom("custom", &obj(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_fold_unicode_case() {
        assert_eq!(name_key("ÉCOLE Admins"), "école admins");
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.com",
            "admin@localhost",
            "t.durden@fightclub.com",
            "a+b@x.io",
        ] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@b.com",
            "a@",
            "a b@c.com",
            "a@.com",
            "a@b..com",
            "a@b.",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(check_name("username", &"é".repeat(255)).is_ok());
        assert!(check_name("username", &"é".repeat(256)).is_err());
        assert!(check_name("username", "  ").is_err());
        assert!(check_name("username", "a\u{0}b").is_err());
        for control in [
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{1b}[2Jb",
            "a\u{7f}b",
            "a\u{85}b",
        ] {
            assert!(check_name("username", control).is_err(), "{control:?}");
        }
        assert!(check_optional("description", "two\nlines\tand a tab", MAX_DESCRIPTION).is_ok());
    }
}
