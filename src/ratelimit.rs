//! Per-client-address limits on credential-guessing requests (password and MFA grants,
//! registration, failed client authentication), kept in memory by each instance. Account
//! locks, which all instances must agree on, live in the database instead.

use std::net::IpAddr;
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
        limiter.check_key(&ip).map_err(|not_until| {
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
    fn no_rate_means_no_limit() {
        let limiter = LoginLimiter::new(None);
        for _ in 0..1000 {
            assert!(limiter.check("192.0.2.1".parse().unwrap()).is_ok());
        }
    }
}
