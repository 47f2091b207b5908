//! The durable outbox (SPEC §6.4): claims, delivery, retries with backoff, giving up, and
//! one delivery per message with several workers on one database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera::outbox::{self, DeliveryError, Outbox, RetryPolicy, Sender};
use tessera::store::outbox as rows;

use crate::helpers::{spawn_app, TestApp};

/// A sender of kind `test` that records what it delivers and fails as told.
#[derive(Default)]
struct Recorder {
    delivered: Mutex<Vec<(String, String)>>,
    /// Fail (for retry) this many attempts first.
    fail_first: AtomicUsize,
    /// Fail every attempt for good.
    permanent: bool,
    attempts: AtomicUsize,
}

impl Sender for Recorder {
    fn kind(&self) -> &'static str {
        "test"
    }
    fn deliver(&self, id: &str, payload: &str) -> Result<(), DeliveryError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.permanent {
            return Err(DeliveryError::Permanent("receiver refused it".into()));
        }
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(DeliveryError::Retry("connection refused".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
        self.delivered
            .lock()
            .unwrap()
            .push((id.to_string(), payload.to_string()));
        Ok(())
    }
}

/// A [`Recorder`] that takes 200 ms per message.
struct Slow(Recorder);

impl Sender for Slow {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn deliver(&self, id: &str, payload: &str) -> Result<(), DeliveryError> {
        std::thread::sleep(Duration::from_millis(200));
        self.0.deliver(id, payload)
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::new(Duration::from_millis(100), 1)
}

fn enqueue(app: &TestApp, payload: &str) -> String {
    let mut conn = app.state.db.get().unwrap();
    outbox::enqueue(&mut conn, "test", payload, tessera::now()).unwrap()
}

fn row(app: &TestApp, id: &str) -> rows::Message {
    let mut conn = app.state.db.get().unwrap();
    rows::find(&mut conn, id).unwrap().expect("the outbox row")
}

fn run_once(app: &TestApp, outbox: &Outbox, sender: &Recorder) -> usize {
    outbox.run_once(&app.state.db, sender).unwrap()
}

both_backends! {
    async fn a_message_is_delivered_once_and_its_payload_dropped(backend) {
        let app = spawn_app(backend).await;
        let id = enqueue(&app, "hello");
        let sender = Recorder::default();
        let outbox = Outbox::new(policy());
        assert_eq!(run_once(&app, &outbox, &sender), 1);
        assert_eq!(
            *sender.delivered.lock().unwrap(),
            vec![(id.clone(), "hello".to_string())]
        );
        let message = row(&app, &id);
        assert!(message.sent_at.is_some());
        assert_eq!(message.attempts, 1);
        assert_eq!(message.payload, "", "a delivered payload is not kept");
        assert_eq!(run_once(&app, &outbox, &sender), 0, "nothing is delivered twice");
    }

    async fn a_failed_attempt_is_retried_after_the_backoff(backend) {
        let app = spawn_app(backend).await;
        let id = enqueue(&app, "retry me");
        let sender = Recorder { fail_first: AtomicUsize::new(1), ..Default::default() };
        let outbox = Outbox::new(policy());
        let before = tessera::now();
        assert_eq!(run_once(&app, &outbox, &sender), 1);
        let message = row(&app, &id);
        assert_eq!(message.attempts, 1);
        assert!(message.sent_at.is_none() && message.failed_at.is_none());
        assert!(message.next_attempt_at > before, "the retry waits for the backoff");
        assert_eq!(message.last_error.as_deref(), Some("connection refused"));
        assert_eq!(run_once(&app, &outbox, &sender), 0, "not due before the backoff");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(run_once(&app, &outbox, &sender), 1);
        let message = row(&app, &id);
        assert!(message.sent_at.is_some());
        assert_eq!(message.attempts, 2);
        assert_eq!(sender.delivered.lock().unwrap().len(), 1);
    }

    async fn a_message_failing_for_a_day_is_given_up_with_the_reason(backend) {
        let app = spawn_app(backend).await;
        let now = tessera::now();
        {
            let mut conn = app.state.db.get().unwrap();
            rows::insert(&mut conn, &rows::NewMessage {
                id: "old-message",
                kind: "test",
                payload: "secret link",
                created_at: now - 86_400,
                next_attempt_at: now,
            })
            .unwrap();
        }
        let sender = Recorder { fail_first: AtomicUsize::new(usize::MAX), ..Default::default() };
        let outbox = Outbox::new(policy());
        assert_eq!(run_once(&app, &outbox, &sender), 1);
        let message = row(&app, "old-message");
        assert!(message.failed_at.is_some(), "given up: {message:?}");
        assert!(message.sent_at.is_none());
        let reason = message.last_error.unwrap();
        assert!(reason.contains("gave up") && reason.contains("connection refused"), "{reason}");
        assert_eq!(message.payload, "", "an abandoned payload is not kept");
        assert_eq!(run_once(&app, &outbox, &sender), 0, "never tried again");
    }

    async fn a_permanent_failure_is_given_up_at_once(backend) {
        let app = spawn_app(backend).await;
        let id = enqueue(&app, "bad");
        let sender = Recorder { permanent: true, ..Default::default() };
        let outbox = Outbox::new(policy());
        assert_eq!(run_once(&app, &outbox, &sender), 1);
        let message = row(&app, &id);
        assert!(message.failed_at.is_some());
        assert_eq!(message.last_error.as_deref(), Some("receiver refused it"));
        assert_eq!(sender.attempts.load(Ordering::SeqCst), 1);
    }

    async fn a_claimed_message_is_claimed_again_only_after_its_lease_runs_out(backend) {
        let app = spawn_app(backend).await;
        let id = enqueue(&app, "leased");
        let now = tessera::now();
        let mut conn = app.state.db.get().unwrap();
        let first = rows::claim_due(&mut conn, &["test"], now, now + 300, "worker-a", 10).unwrap();
        assert_eq!(first.len(), 1);
        let second = rows::claim_due(&mut conn, &["test"], now + 10, now + 310, "worker-b", 10).unwrap();
        assert!(second.is_empty(), "a live lease keeps the message from other workers");
        // Worker a died between delivering and recording: once its lease is over the message
        // is due again (the one resend the contract allows).
        let later = rows::claim_due(&mut conn, &["test"], now + 301, now + 601, "worker-b", 10).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].id, id);
        assert!(!rows::mark_sent(&mut conn, &id, "worker-a", now + 302).unwrap(),
            "a worker that lost its claim records nothing");
        assert!(rows::mark_sent(&mut conn, &id, "worker-b", now + 302).unwrap());
    }

    async fn a_claim_its_own_worker_abandoned_is_taken_again_at_that_workers_next_poll(backend) {
        let app = spawn_app(backend).await;
        let id = enqueue(&app, "abandoned");
        let now = tessera::now();
        let mut conn = app.state.db.get().unwrap();
        // Worker a claims, then loses the database before it can deliver or record.
        assert_eq!(rows::claim_due(&mut conn, &["test"], now, now + 300, "worker-a", 10).unwrap().len(), 1);
        let other = rows::claim_due(&mut conn, &["test"], now + 1, now + 301, "worker-b", 10).unwrap();
        assert!(other.is_empty(), "another worker still waits for the lease");
        let again = rows::claim_due(&mut conn, &["test"], now + 1, now + 301, "worker-a", 10).unwrap();
        assert_eq!(again.len(), 1, "its own worker takes it again at once");
        assert_eq!(again[0].id, id);
    }

    async fn a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(backend) {
        let app = spawn_app(backend).await;
        let mut conn = app.state.db.get().unwrap();
        let result: Result<(), tessera::error::Error> = tessera::store::transaction(&mut conn, |conn| {
            outbox::enqueue(conn, "test", "rolled back", tessera::now())?;
            Err(tessera::error::Error::InvalidRequest("the change failed".into()))
        });
        assert!(result.is_err());
        drop(conn);
        let sender = Recorder::default();
        assert_eq!(run_once(&app, &Outbox::new(policy()), &sender), 0);
        assert!(sender.delivered.lock().unwrap().is_empty());
    }

    async fn messages_of_kinds_without_a_sender_stay_queued(backend) {
        let app = spawn_app(backend).await;
        let mut conn = app.state.db.get().unwrap();
        let id = outbox::enqueue(&mut conn, "other-kind", "{}", tessera::now()).unwrap();
        drop(conn);
        let sender = Recorder::default();
        let outbox = Outbox::new(policy());
        assert_eq!(run_once(&app, &outbox, &sender), 0);
        let message = row(&app, &id);
        assert!(message.sent_at.is_none() && message.failed_at.is_none());
        assert_eq!(message.attempts, 0);
    }

    async fn one_outbox_runs_one_batch_of_a_kind_at_a_time(backend) {
        let app = spawn_app(backend).await;
        let ids: Vec<String> = (0..3).map(|i| enqueue(&app, &format!("m{i}"))).collect();
        let slow = Arc::new(Slow(Recorder::default()));
        let outbox = Arc::new(Outbox::new(policy()));
        let pool = app.state.db.clone();
        let first = {
            let (outbox, slow, pool) = (outbox.clone(), slow.clone(), pool.clone());
            std::thread::spawn(move || outbox.run_once(&pool, slow.as_ref()).unwrap())
        };
        std::thread::sleep(Duration::from_millis(150));
        // Its own claims are the first run's, in flight: a second run must not retake them.
        assert_eq!(outbox.run_once(&pool, slow.as_ref()).unwrap(), 0);
        assert_eq!(first.join().unwrap(), 3);
        let mut delivered: Vec<String> = slow.0.delivered.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        delivered.sort();
        let mut ids = ids;
        ids.sort();
        assert_eq!(delivered, ids, "each message once");
    }

    async fn two_workers_on_one_database_deliver_each_message_once(backend) {
        let app = spawn_app(backend).await;
        let mut ids: Vec<String> = (0..60).map(|i| enqueue(&app, &format!("m{i}"))).collect();
        let sender = Arc::new(Recorder::default());
        let pool = app.state.db.clone();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let outbox = Arc::new(Outbox::new(policy()));
                let sender = sender.clone();
                let pool = pool.clone();
                std::thread::spawn(move || {
                    // Each worker claims in small batches until nothing is left.
                    let mut idle = 0;
                    while idle < 3 {
                        match outbox.run_once(&pool, sender.as_ref()).unwrap() {
                            0 => {
                                idle += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            _ => idle = 0,
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let mut delivered: Vec<String> =
            sender.delivered.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        delivered.sort();
        ids.sort();
        assert_eq!(delivered, ids, "every message delivered, none twice");
    }
}
