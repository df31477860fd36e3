//! Which user a username or email named, remembered by either store for the membership
//! check.
//!
//! A check by name costs a descent of `user_identifiers` (13 MB at 100,000 users, more
//! than a lookup connection's cache holds beside the membership index) before the
//! user's groups. Remembering the answer leaves one descent, but only while it is
//! still right. A counter, `graph_version.names` (SQLite's migration 0006,
//! PostgreSQL's 0004), is bumped by triggers on every change which can make a name stop
//! naming its user (an identifier row deleted or changed, a user deleted), so it holds
//! for every process and node writing the database (an import, an admin command). A remembered answer carries the counter it was
//! read under, and the check reads the counter again in the same statement as the
//! groups: if they differ, it asks the database again. New names do not bump it: only
//! names that were found are remembered.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::ids::UserId;

/// Names remembered at most: about 100 bytes each. When full, the cache starts over.
const CAPACITY: usize = 65_536;

/// What a name resolved to, and under which `graph_version.names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remembered {
    /// The user's integer key (`users.seq`).
    pub(crate) seq: i64,
    pub(crate) id: UserId,
    /// The counter the answer was read under.
    pub(crate) version: i64,
}

/// Name keys (folded with `name_key`) to the user they named.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The newest counter seen; every entry was read under it.
    version: i64,
    users: HashMap<String, (i64, UserId)>,
}

impl NameCache {
    /// The user `key` named when last asked, if remembered.
    pub(crate) fn get(&self, key: &str) -> Option<Remembered> {
        let inner = self.lock();
        inner.users.get(key).map(|&(seq, id)| Remembered {
            seq,
            id,
            version: inner.version,
        })
    }

    /// Remembers that `key` named the user (`seq`, `id`) in a read that saw the counter
    /// at `version`. A newer counter forgets everything remembered under an older one;
    /// an answer read under an older counter than the cache's is dropped.
    pub(crate) fn remember(&self, key: &str, version: i64, seq: i64, id: UserId) {
        let mut inner = self.lock();
        if version < inner.version {
            return;
        }
        if version > inner.version || inner.users.len() >= CAPACITY {
            inner.users.clear();
            inner.version = version;
        }
        inner.users.insert(key.to_owned(), (seq, id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a partial map of true answers.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> UserId {
        UserId::parse(&uuid::Uuid::from_u128(n).to_string()).unwrap()
    }

    #[test]
    fn answers_carry_the_counter_they_were_read_under() {
        let cache = NameCache::default();
        assert_eq!(cache.get("ann"), None);
        cache.remember("ann", 3, 10, id(1));
        assert_eq!(
            cache.get("ann"),
            Some(Remembered {
                seq: 10,
                id: id(1),
                version: 3
            })
        );
    }

    #[test]
    fn a_newer_counter_forgets_older_answers_and_an_older_one_is_dropped() {
        let cache = NameCache::default();
        cache.remember("ann", 3, 10, id(1));
        cache.remember("bob", 4, 11, id(2));
        assert_eq!(cache.get("ann"), None, "read under 3, the cache is at 4");
        assert_eq!(cache.get("bob").map(|r| r.version), Some(4));
        cache.remember("ann", 3, 10, id(1));
        assert_eq!(cache.get("ann"), None, "a late reader's older answer");
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = NameCache::default();
        for n in 0..CAPACITY {
            cache.remember(&format!("u{n}"), 1, n as i64, id(n as u128));
        }
        assert!(cache.get("u0").is_some());
        cache.remember("last", 1, -1, id(0));
        assert_eq!(cache.get("u0"), None);
        assert_eq!(cache.get("last").map(|r| r.seq), Some(-1));
    }
}
