//! Rate limits of the token endpoint, per client address and per username.
//!
//! Each limit is a GCRA token bucket (the `governor` crate) keyed in memory: `burst`
//! requests may come at once, then one more every `60 / per_minute` seconds. Every
//! token request counts against its client address (an IPv6 client by its /64, see
//! [`address_key`]); password-grant requests also count
//! against the (case-folded) username, whatever address they come from. The buckets
//! live in this process: with N nodes behind a load balancer a client may get up to N
//! times the limit. They run on the monotonic clock, not on [`crate::clock::Clock`].

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::names::name_key;

/// One limit: `per_minute` requests a minute on average, `burst` at once. A
/// `per_minute` of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute; 0 = unlimited.
    pub per_minute: u32,
    /// Requests allowed at once before the sustained rate applies (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: Self = Self {
        per_minute: 0,
        burst: 1,
    };

    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_minute)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Some(Quota::per_minute(rate).allow_burst(burst))
    }
}

/// The two limits of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimitSettings {
    /// Per client address (every grant).
    pub per_ip: RateLimit,
    /// Per username (password grant).
    pub per_user: RateLimit,
}

impl Default for LoginLimitSettings {
    /// The defaults of `gatehouse serve`.
    fn default() -> Self {
        Self {
            per_ip: RateLimit {
                per_minute: 60,
                burst: 30,
            },
            per_user: RateLimit {
                per_minute: 20,
                burst: 10,
            },
        }
    }
}

/// Which limit refused a request, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// `ip` or `user`, as in the `gatehouse_login_rate_limited_total` metric.
    pub limit: &'static str,
    /// Whole seconds until a retry can succeed (at least 1).
    pub retry_after_secs: u64,
}

/// The longest username key kept: longer names cannot exist (spec §1 caps strings at
/// 255 characters), and this bounds the memory one key takes.
const MAX_KEY_BYTES: usize = 1024;

/// Idle buckets are dropped every this many checks.
const PRUNE_EVERY: u64 = 1024;

/// The token endpoint's limiters.
pub struct LoginLimiter {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("per_ip", &self.per_ip.is_some())
            .field("per_user", &self.per_user.is_some())
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    /// Limiters for the settings.
    pub fn new(settings: LoginLimitSettings) -> Self {
        Self {
            per_ip: settings.per_ip.quota().map(RateLimiter::keyed),
            per_user: settings.per_user.quota().map(RateLimiter::keyed),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from the address's bucket and, when given, the username's.
    pub fn check(&self, addr: Option<IpAddr>, username: Option<&str>) -> Result<(), Refused> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        if let (Some(limiter), Some(addr)) = (&self.per_ip, addr) {
            limiter
                .check_key(&address_key(addr))
                .map_err(|n| refused("ip", n.wait_time_from(DefaultClock::default().now())))?;
        }
        if let (Some(limiter), Some(name)) = (&self.per_user, username) {
            let mut key = name_key(name);
            if key.len() > MAX_KEY_BYTES {
                let mut end = MAX_KEY_BYTES;
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                key.truncate(end);
            }
            limiter
                .check_key(&key)
                .map_err(|n| refused("user", n.wait_time_from(DefaultClock::default().now())))?;
        }
        Ok(())
    }

    /// Forgets buckets that are full again (they behave exactly like absent ones).
    fn prune(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_user {
            l.retain_recent();
        }
    }
}

/// The bucket an address counts against: an IPv4 address itself, also when it arrives
/// as an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack listener reports
/// IPv4 peers); an IPv6 address by its /64, the smallest block a network normally hands
/// one subscriber, so a client cannot take a fresh bucket from each of the 2^64
/// addresses it owns.
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn refused(limit: &'static str, wait: Duration) -> Refused {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refused {
        limit,
        retry_after_secs: secs.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_ip: RateLimit, per_user: RateLimit) -> LoginLimiter {
        LoginLimiter::new(LoginLimitSettings { per_ip, per_user })
    }

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn the_burst_passes_then_the_address_waits() {
        let l = limiter(
            RateLimit {
                per_minute: 6,
                burst: 3,
            },
            RateLimit::OFF,
        );
        for _ in 0..3 {
            l.check(IP, Some("a")).expect("within the burst");
        }
        let r = l.check(IP, Some("b")).expect_err("over the burst");
        assert_eq!(r.limit, "ip");
        assert!((1..=10).contains(&r.retry_after_secs), "{r:?}");
        // Another address is not affected.
        l.check(Some("10.0.0.1".parse().unwrap()), Some("a"))
            .expect("another address");
    }

    #[test]
    fn usernames_are_limited_across_addresses_and_case() {
        let l = limiter(
            RateLimit::OFF,
            RateLimit {
                per_minute: 1,
                burst: 2,
            },
        );
        l.check(Some("10.0.0.1".parse().unwrap()), Some("Alice"))
            .unwrap();
        l.check(Some("10.0.0.2".parse().unwrap()), Some("alice"))
            .unwrap();
        let r = l
            .check(Some("10.0.0.3".parse().unwrap()), Some("ALICE"))
            .expect_err("the username's bucket is empty");
        assert_eq!(r.limit, "user");
        assert!(r.retry_after_secs > 1 && r.retry_after_secs <= 60, "{r:?}");
        l.check(IP, Some("bob")).expect("another username");
        l.check(IP, None).expect("no username, no user limit");
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        let l = limiter(
            RateLimit {
                per_minute: 1,
                burst: 2,
            },
            RateLimit::OFF,
        );
        // Two addresses of one /64 empty its bucket; a third is refused.
        l.check(ip("2001:db8:1:2::1"), None).unwrap();
        l.check(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), None)
            .unwrap();
        let r = l
            .check(ip("2001:db8:1:2:1234:5678:9abc:def0"), None)
            .expect_err("the same /64");
        assert_eq!(r.limit, "ip");
        // The next /64 has its own bucket.
        l.check(ip("2001:db8:1:3::1"), None).expect("another /64");
        // An IPv4 client counts the same whichever way the listener reports it.
        l.check(ip("198.51.100.1"), None).unwrap();
        l.check(ip("::ffff:198.51.100.1"), None).unwrap();
        l.check(ip("198.51.100.1"), None)
            .expect_err("one bucket for both spellings");
    }

    #[test]
    fn zero_means_unlimited() {
        let l = limiter(RateLimit::OFF, RateLimit::OFF);
        for _ in 0..10_000 {
            l.check(IP, Some("a")).unwrap();
        }
    }

    #[test]
    fn huge_usernames_are_truncated_keys() {
        let l = limiter(
            RateLimit::OFF,
            RateLimit {
                per_minute: 1,
                burst: 1,
            },
        );
        let long = "é".repeat(10_000);
        l.check(IP, Some(&long)).unwrap();
        assert!(l.check(IP, Some(&long)).is_err());
    }
}
