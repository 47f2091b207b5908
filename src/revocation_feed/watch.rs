//! Waiting for the feed (`?wait=`) without a database connection or a thread per waiting
//! request: one poller thread per instance reads what is new in the feed every
//! [`POLL_INTERVAL`], only while someone waits, and publishes it through a `tokio` watch
//! channel; a waiting request is a future on that channel, and is answered from the
//! entries the poller already read. Revocations made through any instance on the same
//! database are seen within one interval.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{watch, Semaphore, SemaphorePermit};

use crate::error::Result;
use crate::revocation_feed::cursor::CursorKey;
use crate::revocation_feed::{Lifetimes, Page, MAX_PAGE};
use crate::store::revocations::{self as store, Revocation};
use crate::store::DbPool;

/// How often the poller reads the feed while requests wait.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How many recent entries the poller keeps for waiting requests.
const KEPT: usize = 1000;

/// The end of the feed as the poller last read it: every entry with a position in
/// `(floor, head]`, oldest first.
#[derive(Debug, Clone)]
pub struct Tail {
    pub head: i64,
    pub floor: i64,
    pub entries: Vec<Revocation>,
}

/// An instance's view of the feed: the cursor key and the shared tail.
#[derive(Debug)]
pub struct Feed {
    pub cursor_key: CursorKey,
    tail: watch::Sender<Arc<Tail>>,
    /// Whether the tail was kept up to date since the last reload (it is not while nobody
    /// waits).
    current: AtomicBool,
    /// Whether the last poll failed (so a database outage is logged once).
    failing: AtomicBool,
    /// Bounds the feed's database work in flight (to a few reads, within the pool's size):
    /// a thousand verifiers reconnecting at once then queue here, as futures, instead of
    /// each taking a blocking thread (and its stack) and the pool growing to its maximum.
    gate: Semaphore,
}

impl Feed {
    /// A feed view that knows nothing yet, running at most `concurrency` database reads at
    /// once.
    pub fn new(cursor_key: CursorKey, concurrency: usize) -> Self {
        let (tail, _) = watch::channel(Arc::new(Tail {
            head: -1,
            floor: i64::MAX,
            entries: Vec::new(),
        }));
        Feed {
            cursor_key,
            tail,
            current: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            gate: Semaphore::new(concurrency.max(1)),
        }
    }

    /// Waits for a turn to read the database for a feed request.
    pub async fn turn(&self) -> Result<SemaphorePermit<'_>> {
        self.gate
            .acquire()
            .await
            .map_err(|e| crate::error::Error::internal("the feed's gate", e))
    }

    /// How many requests are waiting now.
    pub fn waiting(&self) -> usize {
        self.tail.receiver_count()
    }

    /// One poll: nothing while nobody waits; otherwise what is new since the last one (or,
    /// after a pause, the head alone: a waiting request whose position is below the new
    /// floor reads the database once instead).
    pub fn poll(&self, pool: &DbPool) {
        if self.waiting() == 0 {
            self.current.store(false, Ordering::Relaxed);
            return;
        }
        match self.poll_once(pool) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    log::info!("revocation feed poll works again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    log::warn!("revocation feed poll failed: {e}");
                }
            }
        }
    }

    fn poll_once(&self, pool: &DbPool) -> Result<()> {
        let mut conn = pool.get()?;
        if !self.current.load(Ordering::Relaxed) {
            let head = store::head(&mut conn)?;
            self.tail.send_replace(Arc::new(Tail {
                head,
                floor: head,
                entries: Vec::new(),
            }));
            self.current.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let tail = self.tail.borrow().clone();
        let new = store::after(&mut conn, tail.head, None, KEPT as i64)?;
        let Some(last) = new.last() else {
            return Ok(());
        };
        let head = last.seq;
        let mut entries = tail.entries.clone();
        entries.extend(new);
        let mut floor = tail.floor;
        if entries.len() > KEPT {
            let dropped: Vec<Revocation> = entries.drain(..entries.len() - KEPT).collect();
            floor = dropped.last().map_or(floor, |row| row.seq);
        }
        self.tail.send_replace(Arc::new(Tail {
            head,
            floor,
            entries,
        }));
        Ok(())
    }

    /// Waits up to `wait` for live entries after `position`, answering from the poller's
    /// tail; `read` (a database read after `position`) is called only when the tail does not
    /// reach back to `position`. Times out with an empty page at `position`.
    pub async fn wait_after<F, Fut>(
        &self,
        lifetimes: Lifetimes,
        position: i64,
        limit: i64,
        wait: Duration,
        now: impl Fn() -> i64,
        mut read: F,
    ) -> Result<Page>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Page>>,
    {
        let mut receiver = self.tail.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = position;
        loop {
            let newer = tokio::time::timeout_at(deadline, receiver.wait_for(|t| t.head > seen));
            let tail = match newer.await {
                Ok(Ok(tail)) => Arc::clone(&tail),
                Ok(Err(_)) | Err(_) => {
                    return Ok(Page {
                        items: Vec::new(),
                        position,
                    })
                }
            };
            let page = if tail.floor <= position {
                lifetimes.page(&tail.entries, position, limit.min(MAX_PAGE), now())
            } else {
                read().await?
            };
            if !page.items.is_empty() {
                return Ok(page);
            }
            seen = tail.head;
        }
    }
}

/// Starts the instance's poller thread, reading through `db`; it ends when the feed is
/// dropped (with the instance's state).
pub fn spawn_poller(feed: Weak<Feed>, db: DbPool) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tessera-feed".into())
        .spawn(move || loop {
            std::thread::sleep(POLL_INTERVAL);
            let Some(feed) = feed.upgrade() else { break };
            feed.poll(&db);
        })
        .map(|_| ())
}
