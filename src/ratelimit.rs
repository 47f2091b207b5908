//! Per-client-address limits on credential-guessing requests (password and MFA grants,
//! registration, password-reset requests, failed client authentication). The budgets are
//! counted in the database (`store::rate_limits`), so an address has one budget however many
//! instances serve it (SPEC §6.8); the attempts they limit touch the database anyway.

use std::net::{IpAddr, Ipv6Addr};

use crate::error::Error;
use crate::store::{self, DbConnection};

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

/// The login limit: `count` attempts per period with the whole count available as a burst,
/// refilling evenly (one attempt every period / count), or none when limits are off.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimiter {
    rate: Option<Rate>,
}

/// The limit's name in its keys, so other limits can share the table.
const LOGIN: &str = "login";

impl LoginLimiter {
    pub fn new(rate: Option<Rate>) -> Self {
        LoginLimiter { rate }
    }

    /// False when limits are off, so a caller need not touch the database at all.
    pub fn enabled(&self) -> bool {
        self.rate.is_some()
    }

    /// Takes one attempt from the address's budget; `RateLimited` says how many seconds to
    /// wait, `Unavailable` that the database cannot count it (the attempt is refused then,
    /// as it could not be decided either).
    pub fn check(&self, conn: &mut DbConnection, ip: IpAddr) -> Result<(), Error> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let (interval_ms, tolerance_ms) = gcra_params(rate);
        let key = format!("{LOGIN}:{}", limit_key(ip));
        let wait_ms = store::rate_limits::take(conn, &key, interval_ms, tolerance_ms)?;
        match wait_ms {
            ..=0 => Ok(()),
            wait => Err(Error::RateLimited {
                retry_after: retry_after_secs(wait),
            }),
        }
    }
}

/// GCRA's emission interval (period / count) and burst tolerance (`count - 1` intervals),
/// in milliseconds.
fn gcra_params(rate: Rate) -> (i64, i64) {
    let period_ms = i64::try_from(rate.per_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let interval_ms = (period_ms / i64::from(rate.count.max(1))).max(1);
    let tolerance_ms = interval_ms.saturating_mul(i64::from(rate.count.max(1) - 1));
    (interval_ms, tolerance_ms)
}

/// A wait in milliseconds as whole seconds for `Retry-After`, rounded up: a client that
/// waits what it is told finds the attempt available.
fn retry_after_secs(wait_ms: i64) -> u64 {
    u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1)
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
    fn the_interval_spreads_the_period_over_the_budget() {
        let params = |count, per_secs| gcra_params(Rate { count, per_secs });
        assert_eq!(params(3, 60), (20_000, 40_000));
        assert_eq!(params(30, 60), (2_000, 58_000));
        assert_eq!(params(3, 1), (333, 666));
        assert_eq!(params(1, 1), (1_000, 0));
        // More attempts than milliseconds still refills at some pace.
        assert_eq!(params(5000, 1), (1, 4999));
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(20_000), 20);
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
}
