//! Per-address limits are counted in the database (SPEC §6.8): two instances on one
//! database give an address one budget between them, not one each, however the attempts
//! are spread or raced, and the budget refills after its period.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;

/// Two instances on one fresh database, limited to `count` attempts per `per_secs` seconds
/// per address and trusting the loopback proxy, so a test can speak for many addresses.
async fn two_instances(backend: Backend, count: u32, per_secs: u64) -> [Arc<TestApp>; 2] {
    let first = spawn_app_with(backend, |s| {
        s.login_rate_limit = Some(tessera::ratelimit::Rate { count, per_secs });
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let second = start(first.settings.clone(), first.dir.clone()).await;
    [Arc::new(first), Arc::new(second)]
}

static NAMES: AtomicUsize = AtomicUsize::new(0);

/// A password attempt for a fresh unknown username (so that the account lock never answers)
/// from `ip`, as forwarded by the trusted proxy; returns the status and `Retry-After`.
async fn attempt(app: &TestApp, ip: &str) -> (u16, Option<u64>) {
    let username = format!("nobody{}", NAMES.fetch_add(1, Ordering::Relaxed));
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("grant_type", "password"),
            ("username", username.as_str()),
            ("password", "whatever123"),
        ])
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status().as_u16(), retry_after)
}

both_backends! {
    async fn attempts_alternating_between_instances_share_one_budget(backend) {
        let apps = two_instances(backend, 6, 60).await;
        let mut statuses = Vec::new();
        for i in 0..10 {
            let (status, retry_after) = attempt(&apps[i % 2], "198.51.100.20").await;
            if status == 429 {
                let wait = retry_after.expect("429 carries Retry-After");
                // One attempt every 10 s refills the budget of 6 per minute.
                assert!((1..=10).contains(&wait), "Retry-After {wait}");
            }
            statuses.push(status);
        }
        assert_eq!(statuses, [400, 400, 400, 400, 400, 400, 429, 429, 429, 429]);
        // Another address has a budget of its own on either instance.
        assert_eq!(attempt(&apps[1], "198.51.100.21").await.0, 400);
        assert_eq!(attempt(&apps[0], "198.51.100.21").await.0, 400);
    }

    async fn concurrent_attempts_across_instances_never_pass_more_than_the_budget(backend) {
        let apps = two_instances(backend, 5, 60).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = apps[i % 2].clone();
            tasks.push(tokio::spawn(async move { attempt(&app, "203.0.113.9").await }));
        }
        let mut passed = 0;
        for task in tasks {
            let (status, retry_after) = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("an attempt hung")
                .unwrap();
            match status {
                400 => passed += 1,
                429 => assert!(retry_after.is_some(), "429 carries Retry-After"),
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(passed, 5, "exactly the budget passes between both instances");
    }

    async fn the_shared_budget_refills_after_its_period(backend) {
        let apps = two_instances(backend, 3, 1).await;
        for app in [&apps[0], &apps[1], &apps[0]] {
            assert_eq!(attempt(app, "192.0.2.44").await.0, 400);
        }
        let (status, retry_after) = attempt(&apps[1], "192.0.2.44").await;
        assert_eq!(status, 429);
        assert_eq!(retry_after, Some(1));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for app in [&apps[1], &apps[0], &apps[1]] {
            assert_eq!(attempt(app, "192.0.2.44").await.0, 400, "the budget is full again");
        }
        assert_eq!(attempt(&apps[0], "192.0.2.44").await.0, 429);
    }

    async fn forwarded_client_addresses_are_counted_per_client_across_instances(backend) {
        let apps = two_instances(backend, 2, 60).await;
        // Both instances see the requests come from the proxy at 127.0.0.1; each forwarded
        // client still has its own budget, shared between the instances.
        assert_eq!(attempt(&apps[0], "198.51.100.30").await.0, 400);
        assert_eq!(attempt(&apps[1], "198.51.100.30").await.0, 400);
        assert_eq!(attempt(&apps[0], "198.51.100.31").await.0, 400);
        assert_eq!(attempt(&apps[1], "198.51.100.30").await.0, 429);
        assert_eq!(attempt(&apps[0], "198.51.100.30").await.0, 429);
        assert_eq!(attempt(&apps[1], "198.51.100.31").await.0, 400);
        assert_eq!(attempt(&apps[0], "198.51.100.31").await.0, 429);
        // The right-most untrusted entry is the client: a spoofed left-most one is ignored.
        assert_eq!(attempt(&apps[1], "10.9.9.9, 198.51.100.30").await.0, 429);
        // One IPv6 /64 is one client on either instance.
        assert_eq!(attempt(&apps[0], "2001:db8:7::1").await.0, 400);
        assert_eq!(attempt(&apps[1], "2001:db8:7::2").await.0, 400);
        assert_eq!(attempt(&apps[0], "2001:db8:7::3").await.0, 429);
    }
}
