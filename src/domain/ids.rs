//! Typed ids, so a group id can never be passed where a user id is expected, and the
//! parsing of path identifiers (spec §1) into what they can mean.

use std::fmt;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// Parses the canonical or simple text form of a UUID.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

id_type!(
    /// The id of a user (including the user behind an API key).
    UserId
);
id_type!(
    /// The id of a group.
    GroupId
);
id_type!(
    /// The id of an API key (not of its user).
    ApiKeyId
);

/// The built-in `System Administrators` group has the same id in every installation, so
/// that every node and every tool can find it without a lookup by name.
pub const SYSTEM_ADMINISTRATORS_ID: GroupId =
    GroupId::from_uuid(uuid::uuid!("4a1f0c5e-0000-4000-8000-000000000001"));

/// The name of the built-in administrators group.
pub const SYSTEM_ADMINISTRATORS_NAME: &str = "System Administrators";

/// What a user path segment can mean (spec §1): the caller, or a value that is tried as
/// an id first (when it parses as one) and then as a username or email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// `@current`: the authenticated caller.
    Current,
    /// An id, username or email.
    Key(IdOrName<UserId>),
}

impl UserRef {
    /// Parses an already percent-decoded path segment.
    pub fn parse(segment: &str) -> Self {
        if segment.eq_ignore_ascii_case("@current") {
            Self::Current
        } else {
            Self::Key(IdOrName::parse(segment, UserId::parse))
        }
    }
}

/// A path segment that may be an id or a name; the id interpretation is tried first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdOrName<I> {
    /// The segment as an id, when it parses as a UUID.
    pub id: Option<I>,
    /// The segment as given.
    pub name: String,
}

impl<I> IdOrName<I> {
    /// Splits `segment` into its possible meanings.
    pub fn parse(segment: &str, parse_id: impl Fn(&str) -> Option<I>) -> Self {
        Self {
            id: parse_id(segment),
            name: segment.to_owned(),
        }
    }
}

/// A group path segment: an id or a group name.
pub type GroupRef = IdOrName<GroupId>;

impl GroupRef {
    /// Parses an already percent-decoded group segment.
    pub fn group(segment: &str) -> Self {
        Self::parse(segment, GroupId::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_recognised_case_insensitively() {
        assert_eq!(UserRef::parse("@current"), UserRef::Current);
        assert_eq!(UserRef::parse("@Current"), UserRef::Current);
    }

    #[test]
    fn uuid_segments_carry_both_meanings() {
        let id = UserId::new();
        let UserRef::Key(key) = UserRef::parse(&id.to_string()) else {
            panic!("expected a key")
        };
        assert_eq!(key.id, Some(id));
        assert_eq!(key.name, id.to_string());
    }

    #[test]
    fn names_are_not_ids() {
        let g = GroupRef::group("Paper Street Soap Company");
        assert_eq!(g.id, None);
        assert_eq!(g.name, "Paper Street Soap Company");
    }

    #[test]
    fn sysadmin_id_is_stable() {
        assert_eq!(
            SYSTEM_ADMINISTRATORS_ID.to_string(),
            "4a1f0c5e-0000-4000-8000-000000000001"
        );
    }
}
