//! The password policy of spec §4. Pure: the caller supplies the names to avoid and,
//! on a change, whether the new password equals the current one.

use super::names::FieldError;

/// Minimum length in characters.
pub const MIN_LENGTH: usize = 8;

/// Maximum length in bytes (UTF-8). Longer passwords, new or claimed, are refused before
/// any hashing on every path, so the work one request can ask of argon2 is bounded.
pub const MAX_BYTES: usize = 1024;

/// Whether a claimed or new password is short enough to be hashed at all.
pub fn within_bound(password: &str) -> bool {
    password.len() <= MAX_BYTES
}

/// Checks `password` against the policy. `names` are the user's first and last names;
/// those of three or more characters must not appear in the password (case-insensitive).
pub fn check(password: &str, names: &[Option<&str>]) -> Result<(), FieldError> {
    let err = |rule: &str| FieldError::new("password", rule.to_owned());
    if !within_bound(password) {
        return Err(err("password must be at most 1024 bytes long"));
    }
    if password.chars().count() < MIN_LENGTH {
        return Err(err("password must be at least 8 characters long"));
    }
    let classes = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password
            .chars()
            .any(|c| c.is_ascii_digit() || c.is_numeric()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|&&b| b).count() < 3 {
        return Err(err(
            "password must contain at least three of: lowercase letters, uppercase letters, digits, symbols",
        ));
    }
    let lower = password.to_lowercase();
    for name in names.iter().flatten() {
        let name = name.trim().to_lowercase();
        if name.chars().count() >= 3 && lower.contains(&name) {
            return Err(err(
                "password must not contain the user's first or last name",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> bool {
        check(p, &[Some("Tyler"), Some("Durden")]).is_ok()
    }

    #[test]
    fn length() {
        assert!(!ok("Ab1!"));
        assert!(ok("Abcdef1!"));
    }

    #[test]
    fn three_of_four_classes() {
        assert!(!ok("abcdefgh1"));
        assert!(ok("abcdefgH1"));
        assert!(ok("abcdefg!1"));
        assert!(ok("ABCDEFG!1"));
        assert!(!ok("ABCDEFGHI"));
    }

    #[test]
    fn names_of_three_or_more_characters_are_forbidden() {
        assert!(!ok("xxTYLERxx1!"));
        assert!(!ok("durden#Pass1"));
        assert!(check("Al-Pass-1word", &[Some("Al"), None]).is_ok());
    }
}
