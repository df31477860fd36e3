//! Which existing user, if any, an imported user record is. Both stores read the
//! candidate rows inside the import's transaction (PostgreSQL locks them), feed them
//! here, and act on the answer in the same transaction.
//!
//! A record is the existing user U only when
//! - its id is U's id (and neither its username nor its email names another user), or
//! - it carries no id, its username is U's username and its email is U's email.
//!
//! Anything else that touches an existing name is a conflict, and the record's
//! memberships are not applied. Names alone are not enough: a user can change their own
//! email, so "the email matches" says only who holds the email *now* (issue #16: a user
//! took the email of an administrator-to-be and received their groups).

use std::collections::HashMap;

use crate::domain::ids::UserId;
use crate::domain::names::name_key;
use crate::domain::user::User;

/// A user as the matching sees it: the id and the two folded names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) id: UserId,
    pub(crate) username_key: String,
    pub(crate) email_key: String,
}

/// What to do with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nobody holds its id or names: insert it.
    Fresh,
    /// It is this existing user: insert nothing, give its memberships to that user.
    Existing(UserId),
    /// It touches another user's names: insert nothing, apply none of its memberships.
    Conflict(String),
}

/// The users a batch's records may be, by id and by name key; records found fresh are
/// added as they are decided, so a later record of the same batch can be them.
#[derive(Debug, Default)]
pub(crate) struct Matcher {
    rows: Vec<Known>,
    by_id: HashMap<UserId, usize>,
    by_key: HashMap<String, usize>,
}

impl Matcher {
    /// Adds a user read from the database (or decided fresh earlier in the batch).
    pub(crate) fn add(&mut self, row: Known) {
        let n = self.rows.len();
        self.by_id.entry(row.id).or_insert(n);
        self.by_key.entry(row.username_key.clone()).or_insert(n);
        self.by_key.entry(row.email_key.clone()).or_insert(n);
        self.rows.push(row);
    }

    /// Decides one record. `id_given`: the record named its id (otherwise the id is a
    /// fresh one the importer chose, and only the names can match). `may_be_new`:
    /// false when the record must be an existing user (see
    /// [`super::ImportBatch::existing_only`]); a fresh answer is then a conflict.
    pub(crate) fn decide(&mut self, user: &User, id_given: bool, may_be_new: bool) -> Decision {
        let uk = name_key(&user.username);
        let ek = name_key(&user.email);
        let by_name = self.by_key.get(&uk).copied();
        let by_email = self.by_key.get(&ek).copied();
        let by_id = if id_given {
            self.by_id.get(&user.id).copied()
        } else {
            None
        };
        let decision = match (id_given, by_id) {
            (true, Some(n)) => {
                let other =
                    |h: Option<usize>| h.is_some_and(|h| self.rows[h].id != self.rows[n].id);
                if other(by_name) {
                    Decision::Conflict(format!(
                        "username '{}' belongs to another user than {}",
                        user.username, user.id
                    ))
                } else if other(by_email) {
                    Decision::Conflict(format!(
                        "email '{}' belongs to another user than {}",
                        user.email, user.id
                    ))
                } else {
                    Decision::Existing(self.rows[n].id)
                }
            }
            (true, None) => match by_name.or(by_email) {
                None => Decision::Fresh,
                Some(h) => Decision::Conflict(format!(
                    "the username or email belongs to user {}, not to the record's id {}",
                    self.rows[h].id, user.id
                )),
            },
            (false, _) => match (by_name, by_email) {
                (None, None) => Decision::Fresh,
                (Some(a), Some(b)) if a == b => {
                    let row = &self.rows[a];
                    if row.username_key == uk && row.email_key == ek {
                        Decision::Existing(row.id)
                    } else {
                        Decision::Conflict(format!(
                            "user {} holds these names, but its username is not '{}' or its \
                             email is not '{}'",
                            row.id, user.username, user.email
                        ))
                    }
                }
                (Some(a), Some(b)) => Decision::Conflict(format!(
                    "username '{}' belongs to user {} and email '{}' to user {}",
                    user.username, self.rows[a].id, user.email, self.rows[b].id
                )),
                (Some(a), None) => Decision::Conflict(format!(
                    "username '{}' belongs to user {}, whose email is not '{}'",
                    user.username, self.rows[a].id, user.email
                )),
                (None, Some(b)) => Decision::Conflict(format!(
                    "email '{}' belongs to user {}, whose username is not '{}'",
                    user.email, self.rows[b].id, user.username
                )),
            },
        };
        if decision == Decision::Fresh && !may_be_new {
            return Decision::Conflict(
                "the user this record named when it was read has changed since; run the \
                 import again"
                    .to_owned(),
            );
        }
        if decision == Decision::Fresh {
            self.add(Known {
                id: user.id,
                username_key: uk,
                email_key: ek,
            });
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: &str, email: &str) -> User {
        User::new(username.into(), email.into(), 0)
    }

    fn known(u: &User) -> Known {
        Known {
            id: u.id,
            username_key: name_key(&u.username),
            email_key: name_key(&u.email),
        }
    }

    fn matcher(existing: &[&User]) -> Matcher {
        let mut m = Matcher::default();
        for u in existing {
            m.add(known(u));
        }
        m
    }

    fn is_conflict(d: &Decision) -> bool {
        matches!(d, Decision::Conflict(_))
    }

    #[test]
    fn both_names_of_one_user_match_it_case_insensitively() {
        let alice = user("alice", "alice@example.com");
        let mut m = matcher(&[&alice]);
        assert_eq!(
            m.decide(&user("ALICE", "Alice@Example.com"), false, true),
            Decision::Existing(alice.id)
        );
    }

    #[test]
    fn one_name_alone_is_a_conflict() {
        // The attack of issue #16: mallory took boss's email before the import.
        let mallory = user("mallory", "boss@example.com");
        let mut m = matcher(&[&mallory]);
        assert!(is_conflict(&m.decide(
            &user("boss", "boss@example.com"),
            false,
            true
        )));
        assert!(is_conflict(&m.decide(
            &user("mallory", "other@example.com"),
            false,
            true
        )));
        // A record without a username defaults it to the email: that names mallory
        // twice, but mallory's username is not the email.
        assert!(is_conflict(&m.decide(
            &user("boss@example.com", "boss@example.com"),
            false,
            true
        )));
    }

    #[test]
    fn names_of_two_users_or_swapped_names_are_a_conflict() {
        let a = user("a", "a@example.com");
        let b = user("b", "b@example.com");
        let swapped = user("c@example.com", "c");
        let mut m = matcher(&[&a, &b, &swapped]);
        assert!(is_conflict(&m.decide(
            &user("a", "b@example.com"),
            false,
            true
        )));
        assert!(is_conflict(&m.decide(
            &user("c", "c@example.com"),
            false,
            true
        )));
    }

    #[test]
    fn an_id_matches_unless_its_names_belong_to_someone_else() {
        let a = user("a", "a@example.com");
        let b = user("b", "b@example.com");
        let mut m = matcher(&[&a, &b]);
        let mut renamed = user("a-new", "a-new@example.com");
        renamed.id = a.id;
        assert_eq!(m.decide(&renamed, true, true), Decision::Existing(a.id));
        let mut takes_b = user("a", "b@example.com");
        takes_b.id = a.id;
        assert!(is_conflict(&m.decide(&takes_b, true, true)));
        // An unknown id with the names of an existing user is not that user.
        let stranger = user("a", "a@example.com");
        assert!(is_conflict(&m.decide(&stranger, true, true)));
        // An unknown id with free names is new.
        assert_eq!(
            m.decide(&user("d", "d@example.com"), true, true),
            Decision::Fresh
        );
    }

    #[test]
    fn a_fresh_record_is_matched_by_a_later_one_of_the_same_batch() {
        let mut m = Matcher::default();
        let first = user("t", "t@example.com");
        assert_eq!(m.decide(&first, false, true), Decision::Fresh);
        assert_eq!(
            m.decide(&user("t", "t@example.com"), false, true),
            Decision::Existing(first.id)
        );
        assert!(is_conflict(&m.decide(
            &user("t", "x@example.com"),
            false,
            true
        )));
    }

    #[test]
    fn a_record_that_must_exist_but_does_not_is_a_conflict_and_not_remembered() {
        let mut m = Matcher::default();
        let gone = user("g", "g@example.com");
        assert!(is_conflict(&m.decide(&gone, false, false)));
        assert_eq!(
            m.decide(&user("g", "g@example.com"), false, true),
            Decision::Fresh
        );
    }
}
