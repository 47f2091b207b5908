//! The durable outbox (SPEC §6.4, §6.3): a request that must tell the outside world
//! something (a mail, a back-channel logout) only [`enqueue`]s a row in its own transaction;
//! background workers deliver it after the commit, retrying with exponential backoff and
//! giving up (recorded with the reason) after a day.
//!
//! Delivery is at-least-once. Instances never deliver one message at the same time: a
//! worker claims due rows under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write
//! lock on SQLite), and only the claim's holder may record the outcome. A worker that dies
//! between delivering and recording leaves a lease that runs out, and the message is
//! delivered once more; receivers dedupe on the message id handed to [`Sender::deliver`].
//!
//! What a message is and how it travels belongs to a [`Sender`], one per kind, registered
//! with [`Outbox::register`]; this module owns claiming, retrying and giving up, and
//! nothing about SMTP or HTTP.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use crate::store::outbox::{self as rows, NewMessage};
use crate::store::{DbConnection, DbPool, QueryResult};

/// Why one delivery attempt failed.
#[derive(Debug)]
pub enum DeliveryError {
    /// Worth another try later (receiver down, timeout, 4xx SMTP reply, 5xx HTTP answer).
    Retry(String),
    /// No retry can succeed (malformed payload, a receiver that refuses the message for good).
    Permanent(String),
}

/// Delivers the messages of one kind. Called on a worker thread, never on an async worker,
/// so it may block (SMTP, HTTP, file writes).
pub trait Sender: Send + Sync {
    /// The `kind` of the messages it delivers, e.g. `mail`.
    fn kind(&self) -> &'static str;
    /// Delivers one message. `id` stays the same over every attempt of it, so it can name
    /// the message to the receiver for deduplication (a `Message-ID`, a `jti`).
    fn deliver(&self, id: &str, payload: &str) -> Result<(), DeliveryError>;
}

/// When workers look for work and how failed attempts are spaced.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// How often an idle worker looks for due messages (`TESSERA_OUTBOX_POLL_INTERVAL`).
    pub poll_interval: Duration,
    /// The wait after the first failed attempt, doubling with each further one
    /// (`TESSERA_OUTBOX_BACKOFF`), in seconds.
    pub backoff_base: i64,
    /// The longest wait between two attempts, in seconds.
    pub backoff_max: i64,
    /// How long after enqueueing a message is given up, in seconds (24 h).
    pub give_up_after: i64,
    /// How long a claim holds a message for one worker, in seconds: longer than any attempt
    /// takes (senders time out well before it).
    pub lease: i64,
}

impl RetryPolicy {
    /// The default spacing with the given poll interval and backoff base.
    pub fn new(poll_interval: Duration, backoff_base: i64) -> Self {
        RetryPolicy {
            poll_interval,
            backoff_base: backoff_base.max(1),
            backoff_max: 3600,
            give_up_after: 86_400,
            lease: 300,
        }
    }

    /// The wait before the next attempt after `failures` failed ones (1 → the base).
    pub fn backoff(&self, failures: i32) -> i64 {
        let exponent = (failures.max(1) - 1).min(30) as u32;
        self.backoff_base
            .saturating_mul(1i64 << exponent)
            .min(self.backoff_max)
    }
}

thread_local! {
    /// Set by [`enqueue`] on the thread that ran it. Messages are enqueued deep inside
    /// domain transactions (a session's end, from a dozen call sites) that know nothing of
    /// the workers; the code that ran the transaction asks [`take_enqueued`] afterwards and
    /// wakes them, so a message leaves at once instead of at the next poll.
    static ENQUEUED: Cell<bool> = const { Cell::new(false) };
}

/// True when this thread enqueued a message since the last call (the flag is cleared).
/// A message of a transaction that was rolled back still sets it: the wake-up it causes
/// then finds nothing, which is harmless.
pub fn take_enqueued() -> bool {
    ENQUEUED.with(|flag| flag.replace(false))
}

/// Adds a message of `kind` to the outbox, due now, and returns its id. Call it inside the
/// transaction of the change the message reports, so that the two commit or vanish together.
pub fn enqueue(
    conn: &mut DbConnection,
    kind: &str,
    payload: &str,
    now: i64,
) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    rows::insert(
        conn,
        &NewMessage {
            id: &id,
            kind,
            payload,
            created_at: now,
            next_attempt_at: now,
        },
    )?;
    ENQUEUED.with(|flag| flag.set(true));
    Ok(id)
}

/// What one attempt came to, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Failed; tried again at this time.
    Retry(i64),
    /// Given up on.
    Failed,
}

/// The senders of this instance and the policy its workers follow.
pub struct Outbox {
    senders: Vec<Arc<dyn Sender>>,
    policy: RetryPolicy,
    /// Names this instance's claims.
    worker_id: String,
    /// Set by [`Outbox::wake`] so that a worker starts at once instead of at its next poll.
    wake: (Mutex<bool>, Condvar),
    /// The kinds a [`Outbox::run_once`] is working on now. A worker retakes the rows its own
    /// id still claims (`store::outbox::claim_due`), so two runs of one kind at once would
    /// take each other's rows in flight; the second returns at once instead.
    running: Mutex<HashSet<&'static str>>,
}

/// One kind's turn in [`Outbox::run_once`], given back when dropped.
struct Turn<'a> {
    running: &'a Mutex<HashSet<&'static str>>,
    kind: &'static str,
}

impl<'a> Turn<'a> {
    fn take(running: &'a Mutex<HashSet<&'static str>>, kind: &'static str) -> Option<Self> {
        let mut kinds = running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // `then`, not `then_some`: a `Turn` made and dropped here would take the lock again.
        kinds.insert(kind).then(|| Turn { running, kind })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut kinds = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kinds.remove(self.kind);
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("kinds", &self.kinds())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// How many messages one claim takes at most.
const CLAIM_BATCH: i64 = 20;

impl Outbox {
    /// An outbox with no senders yet.
    pub fn new(policy: RetryPolicy) -> Self {
        Outbox {
            senders: Vec::new(),
            policy,
            worker_id: uuid::Uuid::new_v4().to_string(),
            wake: (Mutex::new(false), Condvar::new()),
            running: Mutex::new(HashSet::new()),
        }
    }

    /// Adds the sender of one kind (a second sender of the same kind replaces the first).
    pub fn register(&mut self, sender: Arc<dyn Sender>) {
        self.senders.retain(|s| s.kind() != sender.kind());
        self.senders.push(sender);
    }

    /// The kinds this instance delivers.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.senders.iter().map(|s| s.kind()).collect()
    }

    /// True when messages of `kind` have a sender here.
    pub fn has_sender(&self, kind: &str) -> bool {
        self.senders.iter().any(|s| s.kind() == kind)
    }

    /// The policy the workers follow.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Tells the workers of this instance to look for due messages now (call after the
    /// enqueueing transaction committed). Other instances find them at their next poll.
    pub fn wake(&self) {
        let (flag, condvar) = &self.wake;
        if let Ok(mut woken) = flag.lock() {
            *woken = true;
            condvar.notify_all();
        }
    }

    /// Waits up to the poll interval, or until [`Outbox::wake`].
    fn wait(&self) {
        let (flag, condvar) = &self.wake;
        let Ok(woken) = flag.lock() else {
            std::thread::sleep(self.policy.poll_interval);
            return;
        };
        let mut woken = match condvar.wait_timeout_while(woken, self.policy.poll_interval, |w| !*w)
        {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
        *woken = false;
    }

    /// Claims a batch of due messages of `sender`'s kind, delivers each, and records the
    /// outcomes; returns how many were claimed (0 while another run of the kind is working).
    pub fn run_once(&self, pool: &DbPool, sender: &dyn Sender) -> anyhow::Result<usize> {
        let Some(_turn) = Turn::take(&self.running, sender.kind()) else {
            return Ok(0);
        };
        let now = crate::now();
        let claimed = {
            let mut conn = pool.get()?;
            rows::claim_due(
                &mut conn,
                &[sender.kind()],
                now,
                now + self.policy.lease,
                &self.worker_id,
                CLAIM_BATCH,
            )?
        };
        for message in &claimed {
            let result = sender.deliver(&message.id, &message.payload);
            let mut conn = pool.get()?;
            self.record(&mut conn, message, result, crate::now())?;
        }
        Ok(claimed.len())
    }

    /// Records one attempt's result for a message this instance claimed.
    pub fn record(
        &self,
        conn: &mut DbConnection,
        message: &rows::Message,
        result: Result<(), DeliveryError>,
        now: i64,
    ) -> QueryResult<Outcome> {
        let failures = message.attempts + 1;
        let (outcome, held) = match result {
            Ok(()) => {
                log::info!(
                    "outbox: delivered {} message {} (attempt {failures})",
                    message.kind,
                    message.id
                );
                (
                    Outcome::Sent,
                    rows::mark_sent(conn, &message.id, &self.worker_id, now)?,
                )
            }
            Err(DeliveryError::Permanent(error)) => {
                log::warn!(
                    "outbox: gave up {} message {}: {error}",
                    message.kind,
                    message.id
                );
                (
                    Outcome::Failed,
                    rows::mark_failed(conn, &message.id, &self.worker_id, now, &error)?,
                )
            }
            Err(DeliveryError::Retry(error)) => {
                let next = now + self.policy.backoff(failures);
                if next > message.created_at + self.policy.give_up_after {
                    let reason = format!("gave up after {failures} attempts in 24 h: {error}");
                    log::warn!("outbox: {} message {} {reason}", message.kind, message.id);
                    (
                        Outcome::Failed,
                        rows::mark_failed(conn, &message.id, &self.worker_id, now, &reason)?,
                    )
                } else {
                    log::info!(
                        "outbox: {} message {} attempt {failures} failed, retrying in {} s: {error}",
                        message.kind,
                        message.id,
                        next - now
                    );
                    (
                        Outcome::Retry(next),
                        rows::mark_retry(conn, &message.id, &self.worker_id, next, &error)?,
                    )
                }
            }
        };
        if !held {
            // The lease ran out during the attempt and another worker took the message over.
            log::warn!(
                "outbox: lost the claim on {} message {} before recording it",
                message.kind,
                message.id
            );
        }
        Ok(outcome)
    }
}

/// Starts one worker thread per registered kind, so a slow receiver of one kind never
/// delays another. Each stops once `outbox` is dropped.
pub fn spawn_workers(outbox: &Arc<Outbox>, pool: DbPool) -> std::io::Result<()> {
    for sender in &outbox.senders {
        let weak: Weak<Outbox> = Arc::downgrade(outbox);
        let sender = sender.clone();
        let pool = pool.clone();
        std::thread::Builder::new()
            .name(format!("tessera-outbox-{}", sender.kind()))
            .spawn(move || work(weak, pool, sender))?;
    }
    Ok(())
}

fn work(outbox: Weak<Outbox>, pool: DbPool, sender: Arc<dyn Sender>) {
    loop {
        let Some(outbox) = outbox.upgrade() else {
            break;
        };
        // Drain what is due, then wait for the next poll (or a wake-up).
        loop {
            match outbox.run_once(&pool, sender.as_ref()) {
                Ok(n) if n as i64 == CLAIM_BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    log::warn!("outbox: {} worker: {e:#}", sender.kind());
                    break;
                }
            }
        }
        outbox.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy::new(Duration::from_secs(1), 30);
        assert_eq!(policy.backoff(1), 30);
        assert_eq!(policy.backoff(2), 60);
        assert_eq!(policy.backoff(3), 120);
        assert_eq!(policy.backoff(10), 3600);
        assert_eq!(policy.backoff(1000), 3600);
    }
}
