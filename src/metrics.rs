//! Prometheus metrics of one instance: requests and latency by route, tokens issued by grant,
//! login failures, lockouts, refresh-token reuse, revocations, the active signing key's age
//! and the database pool. Rendered as Prometheus text by `GET /metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The counters and histograms of one instance.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub tokens_issued: IntCounterVec,
    pub login_failures: IntCounter,
    pub account_lockouts: IntCounter,
    pub refresh_reuse: IntCounter,
    pub revocations: IntCounter,
    /// Token responses of the last hour on this instance, for the console's overview.
    pub tokens_last_hour: LastHour,
    signing_key_age: IntGauge,
    db_pool: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

/// The `method` label: a client may send any token as its method, and each would otherwise
/// become a series held forever.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every tessera metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        Metrics {
            http_requests: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "tessera_http_requests_total",
                        "HTTP requests by route, method and status",
                    ),
                    &["route", "method", "status"],
                )
                .expect("valid metric"),
            ),
            http_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "tessera_http_request_duration_seconds",
                        "HTTP request latency by route",
                    )
                    .buckets(buckets),
                    &["route"],
                )
                .expect("valid metric"),
            ),
            tokens_issued: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "tessera_tokens_issued_total",
                        "Token responses by grant type",
                    ),
                    &["grant_type"],
                )
                .expect("valid metric"),
            ),
            login_failures: register(
                &registry,
                IntCounter::new("tessera_login_failures_total", "Failed credential checks")
                    .expect("valid metric"),
            ),
            account_lockouts: register(
                &registry,
                IntCounter::new(
                    "tessera_account_lockouts_total",
                    "Accounts locked after repeated failures",
                )
                .expect("valid metric"),
            ),
            refresh_reuse: register(
                &registry,
                IntCounter::new(
                    "tessera_refresh_reuse_detected_total",
                    "Spent refresh tokens presented again (session revoked)",
                )
                .expect("valid metric"),
            ),
            revocations: register(
                &registry,
                IntCounter::new(
                    "tessera_revocations_total",
                    "Sessions and access tokens revoked",
                )
                .expect("valid metric"),
            ),
            signing_key_age: register(
                &registry,
                IntGauge::new(
                    "tessera_signing_key_age_seconds",
                    "Seconds since the active signing key started signing",
                )
                .expect("valid metric"),
            ),
            db_pool: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "tessera_db_pool_connections",
                        "Database pool connections by state",
                    ),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            tokens_last_hour: LastHour::default(),
            registry,
        }
    }

    /// Records one HTTP request. `route` must be a route template or `unmatched`, never a
    /// request path: every distinct label value is a series kept for the life of the process.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method_label(method), &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }

    /// Renders the Prometheus text format, after updating the gauges read at scrape time.
    pub fn render(
        &self,
        key_active_since_ms: Option<i64>,
        now_ms: i64,
        pool_connections: u32,
        pool_idle: u32,
    ) -> String {
        self.signing_key_age.set(
            key_active_since_ms
                .map(|since| (now_ms - since).max(0) / 1000)
                .unwrap_or(0),
        );
        self.db_pool
            .with_label_values(&["idle"])
            .set(i64::from(pool_idle));
        self.db_pool
            .with_label_values(&["active"])
            .set(i64::from(pool_connections.saturating_sub(pool_idle)));
        let mut buffer = Vec::new();
        // Encoding into memory cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_seven_share_one_label() {
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("OPTIONS"), "OPTIONS");
        assert_eq!(method_label("get"), "other");
        assert_eq!(method_label("TRACE"), "other");
        assert_eq!(method_label(&"X".repeat(30_000)), "other");
    }
}

/// A count over the last hour, kept by minute in a ring of 60 slots: each slot remembers
/// which minute it counts, and a slot from an older hour starts again at zero. Lock-free; an
/// increment racing the reset of its slot at a minute's turn may be lost, which an
/// at-a-glance figure can afford. One instance's count, like every metric here.
pub struct LastHour {
    slots: [(AtomicI64, AtomicU64); 60],
}

impl Default for LastHour {
    fn default() -> Self {
        LastHour {
            slots: std::array::from_fn(|_| (AtomicI64::new(i64::MIN), AtomicU64::new(0))),
        }
    }
}

impl std::fmt::Debug for LastHour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LastHour")
    }
}

impl LastHour {
    /// Counts one event at `now` (unix seconds).
    pub fn record(&self, now: i64) {
        let minute = now.div_euclid(60);
        let (tag, count) = &self.slots[minute.rem_euclid(60) as usize];
        let seen = tag.load(Ordering::Acquire);
        if seen != minute
            && tag
                .compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            count.store(0, Ordering::Release);
        }
        count.fetch_add(1, Ordering::AcqRel);
    }

    /// The events of the 60 minutes up to `now`.
    pub fn total(&self, now: i64) -> u64 {
        let minute = now.div_euclid(60);
        self.slots
            .iter()
            .filter(|(tag, _)| {
                let at = tag.load(Ordering::Acquire);
                at <= minute && at > minute - 60
            })
            .map(|(_, count)| count.load(Ordering::Acquire))
            .sum()
    }
}

#[cfg(test)]
mod last_hour_tests {
    use super::*;

    #[test]
    fn the_last_hour_counts_sixty_minutes_and_forgets_older_ones() {
        let counter = LastHour::default();
        counter.record(1_000_000);
        counter.record(1_000_030);
        counter.record(1_000_000 + 59 * 60);
        assert_eq!(counter.total(1_000_000 + 59 * 60), 3);
        // An hour later the first minute's slot is reused and starts from zero: the first
        // event has left the hour, the other two have not.
        counter.record(1_000_000 + 3600);
        assert_eq!(counter.total(1_000_000 + 3600), 3);
        assert_eq!(counter.total(1_000_000 + 3600 + 60), 2);
        assert_eq!(counter.total(1_000_000 + 3 * 3600), 0);
    }
}
