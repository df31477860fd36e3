//! A short-lived cache of authenticated callers, keyed by a digest of the bearer token.
//!
//! Authenticating a request means verifying the token's signature and reading the user's
//! row and administrator status. For the second or so after that, the same token gets
//! the same answer from here. Two rules bound what that can get wrong (spec §2):
//!
//! - **This node sees its own changes at once.** Every change that can alter a caller —
//!   the user's row (suspend, lock, password, delete, profile, logins), their group
//!   memberships, an API key, the group graph — invalidates the affected entries right
//!   after it commits. An entry records the invalidation counter as it was *before* its
//!   rows were read, so an authentication that raced a change can never store the old
//!   answer as fresh.
//! - **Other nodes' changes arrive within the time-to-live** (at most 2 s, 1 s by
//!   default): entries older than that are read again.
//!
//! The token's own expiry and the user's expiry are checked on every hit. The map holds
//! SHA-256 digests of tokens, never the tokens themselves, and is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::Caller;
use crate::clock::Millis;
use crate::domain::ids::UserId;

/// Entries kept at most; when full, stale entries go first, then everything.
const MAX_ENTRIES: usize = 10_000;

/// The longest time-to-live allowed: spec §2's bound for other nodes.
pub const MAX_TTL: Duration = Duration::from_secs(2);

/// A token's digest: the cache key.
pub type TokenDigest = [u8; 32];

/// Hashes a bearer token for the cache.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// See the module documentation.
#[derive(Debug)]
pub struct CallerCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Counts invalidations; entries remember its value from before their reads.
    tick: u64,
    /// The tick of the last invalidation of everyone.
    all: u64,
    /// The tick (and time) of each user's last invalidation, kept for one TTL.
    users: HashMap<UserId, (u64, Instant)>,
    entries: HashMap<TokenDigest, Entry>,
}

#[derive(Debug)]
struct Entry {
    caller: Arc<Caller>,
    tick: u64,
    stored: Instant,
    token_expires: Millis,
}

impl Inner {
    fn fresh(&self, e: &Entry, ttl: Duration) -> bool {
        e.stored.elapsed() < ttl
            && e.tick >= self.all
            && self
                .users
                .get(&e.caller.user.id)
                .is_none_or(|(stamp, _)| e.tick >= *stamp)
    }
}

impl CallerCache {
    /// A cache whose entries live `ttl` (capped at [`MAX_TTL`]); zero turns it off.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            inner: Mutex::default(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the caller cache is never poisoned")
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The counter to pass to [`put`](Self::put): read it before reading the caller.
    pub fn begin(&self) -> u64 {
        self.inner().tick
    }

    /// The cached caller for a token, if fresh, unexpired and not invalidated.
    pub fn get(&self, key: &TokenDigest, now: Millis) -> Option<Arc<Caller>> {
        if !self.enabled() {
            return None;
        }
        let caller = {
            let inner = self.inner();
            let e = inner.entries.get(key)?;
            if !inner.fresh(e, self.ttl) || now >= e.token_expires {
                return None;
            }
            e.caller.clone()
        };
        if caller.user.is_expired(now) {
            return None;
        }
        Some(caller)
    }

    /// Remembers a caller read after [`begin`](Self::begin) returned `tick`; a change
    /// that committed since then makes this a no-op.
    pub fn put(&self, key: TokenDigest, caller: &Arc<Caller>, tick: u64, token_expires: Millis) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner();
        let entry = Entry {
            caller: Arc::clone(caller),
            tick,
            stored: Instant::now(),
            token_expires,
        };
        if !inner.fresh(&entry, self.ttl) {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            let stale: Vec<TokenDigest> = inner
                .entries
                .iter()
                .filter(|(_, e)| !inner.fresh(e, ttl))
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                inner.entries.remove(&k);
            }
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(key, entry);
    }

    /// Forgets what is cached for these users (their row, memberships or keys changed).
    pub fn invalidate_users(&self, users: &[UserId]) {
        if !self.enabled() || users.is_empty() {
            return;
        }
        let mut inner = self.inner();
        inner.tick += 1;
        let (tick, ttl) = (inner.tick, self.ttl);
        if inner.users.len() + users.len() > MAX_ENTRIES {
            // A stamp older than one TTL guards nothing: every entry it could refuse
            // has expired anyway.
            inner.users.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        if inner.users.len() + users.len() > MAX_ENTRIES {
            inner.all = tick;
            inner.users.clear();
            inner.entries.clear();
            return;
        }
        let now = Instant::now();
        for u in users {
            inner.users.insert(*u, (tick, now));
        }
    }

    /// Forgets everything (the group graph changed: anyone's admin status may have).
    pub fn invalidate_all(&self) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner();
        inner.tick += 1;
        inner.all = inner.tick;
        inner.users.clear();
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::User;

    fn caller(name: &str) -> Arc<Caller> {
        Arc::new(Caller {
            user: User::new(name.into(), format!("{name}@example.com"), 0),
            is_admin: false,
        })
    }

    const LATER: Millis = 1_000_000;

    #[test]
    fn a_put_caller_is_found_until_its_user_is_invalidated() {
        let cache = CallerCache::new(Duration::from_secs(1));
        let (a, b) = (caller("a"), caller("b"));
        let (ka, kb) = (digest("token-a"), digest("token-b"));
        cache.put(ka, &a, cache.begin(), LATER);
        cache.put(kb, &b, cache.begin(), LATER);
        assert_eq!(cache.get(&ka, 1).map(|c| c.user.id), Some(a.user.id));
        cache.invalidate_users(&[a.user.id]);
        assert!(cache.get(&ka, 1).is_none(), "a's entry must be gone");
        assert!(cache.get(&kb, 1).is_some(), "b is untouched");
        cache.invalidate_all();
        assert!(cache.get(&kb, 1).is_none());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let cache = CallerCache::new(Duration::from_secs(1));
        let a = caller("a");
        let tick = cache.begin(); // the read starts...
        cache.invalidate_users(&[a.user.id]); // ...a change commits meanwhile...
        cache.put(digest("t"), &a, tick, LATER); // ...and the old answer arrives
        assert!(cache.get(&digest("t"), 1).is_none());
        // Read again after the change: stored.
        cache.put(digest("t"), &a, cache.begin(), LATER);
        assert!(cache.get(&digest("t"), 1).is_some());
    }

    #[test]
    fn expired_tokens_entries_and_disabled_caches_answer_nothing() {
        let cache = CallerCache::new(Duration::from_secs(1));
        let a = caller("a");
        cache.put(digest("t"), &a, cache.begin(), 50);
        assert!(cache.get(&digest("t"), 49).is_some());
        assert!(cache.get(&digest("t"), 50).is_none(), "the token expired");

        let short = CallerCache::new(Duration::from_millis(20));
        short.put(digest("t"), &a, short.begin(), LATER);
        assert!(short.get(&digest("t"), 1).is_some(), "within the TTL");
        {
            // 30 ms older, without waiting for them: as if stored earlier.
            let mut inner = short.inner();
            let entry = inner.entries.get_mut(&digest("t")).expect("the entry");
            entry.stored = entry
                .stored
                .checked_sub(Duration::from_millis(30))
                .expect("an earlier instant");
        }
        assert!(short.get(&digest("t"), 1).is_none(), "older than the TTL");

        let off = CallerCache::new(Duration::ZERO);
        off.put(digest("t"), &a, off.begin(), LATER);
        assert!(off.get(&digest("t"), 1).is_none());
        assert_eq!(CallerCache::new(Duration::from_secs(60)).ttl, MAX_TTL);
    }
}
