//! Per-client-address limits on credential-guessing requests (password and MFA grants,
//! registration, failed client authentication), kept in memory by each instance. Account
//! locks, which all instances must agree on, live in the database instead.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A per-address request rate: `count` requests per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per_secs: u64,
}

/// Parses `30/min`, `5/s`, `100/h`, or `0` (no limit).
pub fn parse_rate(text: &str) -> anyhow::Result<Option<Rate>> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let (count, unit) = text
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("expected N/s, N/min or N/h, got `{text}`"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("expected N/s, N/min or N/h, got `{text}`"))?;
    let per_secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        other => anyhow::bail!("unknown period `{other}` (use s, min or h)"),
    };
    Ok((count > 0).then_some(Rate { count, per_secs }))
}

/// A keyed limiter, or none when limits are off.
pub struct LoginLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("enabled", &self.limiter.is_some())
            .finish()
    }
}

impl LoginLimiter {
    /// `count` requests per period, with the whole count available as a burst.
    pub fn new(rate: Option<Rate>) -> Self {
        let limiter = rate.and_then(|rate| {
            let count = NonZeroU32::new(rate.count)?;
            let period = Duration::from_secs(rate.per_secs) / rate.count;
            let quota = Quota::with_period(period)?.allow_burst(count);
            Some(RateLimiter::keyed(quota))
        });
        LoginLimiter { limiter }
    }

    /// Takes one request from the address's allowance; `Err(seconds)` says how long to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&limit_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets addresses whose allowance is full again, so memory stays bounded.
    pub fn clean(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The address a budget belongs to. One IPv6 subscriber is normally handed a whole /64, so
/// keying by the full address would give each of its 2^64 addresses a fresh budget; an
/// IPv4-mapped address (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers)
/// is the IPv4 client it stands for.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_zero_disables() {
        assert_eq!(
            parse_rate("30/min").unwrap(),
            Some(Rate {
                count: 30,
                per_secs: 60
            })
        );
        assert_eq!(parse_rate("0").unwrap(), None);
        assert!(parse_rate("30").is_err());
    }

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let limiter = LoginLimiter::new(Some(Rate {
            count: 3,
            per_secs: 60,
        }));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
        }
        let wait = limiter.check(ip).unwrap_err();
        assert!((1..=20).contains(&wait), "wait was {wait}");
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |text: &str| limit_key(text.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(key("2001:db8:1:2:abcd::9"), key("2001:db8:1:2::"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:198.51.100.7"), key("198.51.100.7"));
        assert_eq!(key("198.51.100.7").to_string(), "198.51.100.7");
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
        // `::1` is IPv6 loopback, not a mapped address: it stays IPv6.
        assert_eq!(key("::1").to_string(), "::");
    }

    #[test]
    fn addresses_of_one_64_share_a_budget() {
        let limiter = LoginLimiter::new(Some(Rate {
            count: 2,
            per_secs: 60,
        }));
        assert!(limiter.check("2001:db8::1".parse().unwrap()).is_ok());
        assert!(limiter.check("2001:db8::2".parse().unwrap()).is_ok());
        assert!(limiter.check("2001:db8::3".parse().unwrap()).is_err());
        assert!(limiter.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
        assert!(limiter.check("::ffff:192.0.2.9".parse().unwrap()).is_ok());
        assert!(limiter.check("192.0.2.9".parse().unwrap()).is_ok());
        assert!(limiter.check("192.0.2.9".parse().unwrap()).is_err());
    }

    #[test]
    fn no_rate_means_no_limit() {
        let limiter = LoginLimiter::new(None);
        for _ in 0..1000 {
            assert!(limiter.check("192.0.2.1".parse().unwrap()).is_ok());
        }
    }
}
