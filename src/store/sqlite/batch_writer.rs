//! The group-commit writer: one thread with one rusqlite connection that commits
//! membership changes in groups. It takes every change waiting in its queue, runs each in
//! a savepoint of one transaction, commits once (one fsync for the batch, with
//! `synchronous=FULL`), and only then answers each request. A change that fails rolls
//! back to its savepoint alone. While a batch commits, the next one queues: under load,
//! many requests share an fsync; alone, a request waits for just its own.
//!
//! An add is one statement, and its audit event waits in the batch ([`Batch::defer_event`])
//! to be inserted with the other adds' events in a few multi-row statements: before the
//! next change that is not such an add runs (so events keep the order of their changes)
//! and before the commit. So an add needs no savepoint: a failing statement undoes
//! itself, and a failing flush fails the whole batch. With a webhook endpoint enabled,
//! an add records its event itself, in a savepoint, as every other change does.
//!
//! It opens the same database file as sqlx's writer; the two take SQLite's write lock in
//! turn (`BEGIN IMMEDIATE`, with the same busy timeout).

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::audit_index::AuditIndexer;
use super::checkpoint::{Checkpointer, WAL_SIZE_LIMIT, restart};
use super::readers::BUSY_TIMEOUT;
use crate::store::audit::{EVENT_VALUES, insert_events_sql};
use crate::store::filter_sql::SqlValue;
use crate::store::{StoreError, StoreResult};

/// Changes committed together at most: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 256;

/// The transaction of a batch, as its changes see it.
pub(super) struct Batch<'c> {
    conn: &'c Connection,
    /// Whether an enabled webhook endpoint exists (read once, at the batch's start):
    /// if not, events need no outbox rows.
    pub(super) webhooks: bool,
    /// Events of the adds run so far, not inserted yet (each [`EVENT_VALUES`] values).
    events: RefCell<Vec<Vec<SqlValue>>>,
}

/// The multi-row inserts that flush deferred events, largest first: a batch's events
/// take a few statements, and four shapes of statement stay prepared.
const EVENT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The text of each [`EVENT_CHUNKS`] insert, made once (it keys the statement cache).
static EVENT_INSERTS: std::sync::LazyLock<[String; 4]> =
    std::sync::LazyLock::new(|| EVENT_CHUNKS.map(insert_events_sql));

impl Batch<'_> {
    /// Keeps an add's event (`audit::named_event_values`) to insert with the batch's
    /// others. Only for a change that runs without a savepoint ([`BatchWriter::write_add`])
    /// in a batch without webhooks: the event is inserted even if the change fails later.
    pub(super) fn defer_event(&self, values: Vec<SqlValue>) {
        debug_assert_eq!(values.len(), EVENT_VALUES);
        self.events.borrow_mut().push(values);
    }

    /// Inserts the deferred events, in the order they were deferred.
    fn flush_events(&self) -> rusqlite::Result<()> {
        let events = std::mem::take(&mut *self.events.borrow_mut());
        let mut rest = events.as_slice();
        for (rows, sql) in EVENT_CHUNKS.into_iter().zip(EVENT_INSERTS.iter()) {
            while rest.len() >= rows {
                let (chunk, tail) = rest.split_at(rows);
                let mut stmt = self.conn.prepare_cached(sql)?;
                for (i, value) in chunk.iter().flatten().enumerate() {
                    stmt.raw_bind_parameter(i + 1, value)?;
                }
                stmt.raw_execute()?;
                rest = tail;
            }
        }
        Ok(())
    }
}

impl std::ops::Deref for Batch<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Whether the database has an enabled webhook endpoint (asked in the batch's
/// transaction, so no endpoint can appear before it commits).
const ANY_WEBHOOK: &str = "SELECT EXISTS (SELECT 1 FROM webhooks WHERE enabled)";

/// One change of a batch: runs inside the batch's transaction, answers after the commit.
trait Job: Send {
    /// Runs the change; `false` if it failed (its savepoint is rolled back).
    fn run(&mut self, batch: &Batch<'_>) -> bool;
    /// Answers the request: the change's result, or the commit's failure.
    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>);
    /// Whether the change is one statement that may defer its event
    /// ([`BatchWriter::write_add`]).
    fn is_add(&self) -> bool;
}

struct Change<R, F> {
    work: Option<F>,
    is_add: bool,
    result: Option<StoreResult<R>>,
    reply: oneshot::Sender<StoreResult<R>>,
}

impl<R, F> Job for Change<R, F>
where
    R: Send,
    F: FnOnce(&Batch<'_>) -> StoreResult<R> + Send,
{
    fn run(&mut self, batch: &Batch<'_>) -> bool {
        let work = self.work.take().expect("a change runs once");
        let result = work(batch);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Other("the change did not run".into())),
            // The commit failed: nothing of the batch is stored, whatever the change said.
            (Err(e), _) => Err(StoreError::Other(
                format!("the batch's commit failed: {e}").into(),
            )),
        };
        // The request may have gone away (client hung up): the change stands anyway.
        let _ = self.reply.send(result);
    }

    fn is_add(&self) -> bool {
        self.is_add
    }
}

/// The group-commit writer: one thread, one connection, a queue of changes.
#[derive(Debug)]
pub(super) struct BatchWriter {
    /// `None` once [`BatchWriter::stop`] ran.
    queue: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Checkpointer,
}

impl BatchWriter {
    /// Opens the writer's connection and starts its thread, and the checkpointer that
    /// copies what it writes. Both end when the writer is dropped (without waiting for
    /// them) or stopped ([`BatchWriter::stop`], which waits).
    pub(super) fn start(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        // Retry every 100 µs rather than on SQLite's default back-off (1, 2, 5, 10 … ms):
        // a restarting checkpoint waits for readers that finish in microseconds, and
        // spent 80 ms in the back-off every time.
        conn.busy_handler(Some(retry_busy))?;
        // Per-connection settings: the same durability and integrity as sqlx's writer.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        // A change's savepoint copies each page it touches first into a statement
        // journal, which spilled to a temporary file past 64 KiB of a batch: two system
        // calls per page. Kept in memory, it is a copy.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(32);
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let wrote = Arc::new(AtomicBool::new(false));
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let checkpointer =
            Checkpointer::start(path, Arc::clone(&wrote), Arc::clone(&restart_wanted))?;
        let thread = std::thread::Builder::new()
            .name("gatehouse-batch-writer".into())
            .spawn(move || run_batches(&conn, &jobs, &wrote, &restart_wanted))
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            checkpointer,
        })
    }

    /// Stops the writer once the changes already queued are committed, then the
    /// checkpointer, and waits for both threads to end (blocking). Later writes fail.
    pub(super) fn stop(&self) {
        self.queue
            .lock()
            .expect("the writer queue is never poisoned")
            .take();
        let thread = self
            .thread
            .lock()
            .expect("the writer's handle is never poisoned")
            .take();
        if let Some(thread) = thread {
            // A panic there has been reported by the panic hook already.
            let _ = thread.join();
        }
        self.checkpointer.stop();
    }

    /// Whether [`BatchWriter::stop`] has joined both threads.
    #[cfg(test)]
    pub(super) fn stopped(&self) -> bool {
        let writer = self.thread.lock().expect("never poisoned").is_none();
        writer && self.checkpointer.stopped()
    }

    /// Runs `work` in the next batch, in a savepoint of its own, and returns its result
    /// once the batch is durable.
    pub(super) async fn write<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Batch<'_>) -> StoreResult<R> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// [`BatchWriter::write`] for a change that writes with one statement at most, and
    /// defers its event ([`Batch::defer_event`]) if the batch has no webhooks: it runs
    /// without a savepoint then, since a failing statement undoes itself.
    pub(super) async fn write_add<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Batch<'_>) -> StoreResult<R> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<R, F>(&self, work: F, is_add: bool) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Batch<'_>) -> StoreResult<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Change {
            work: Some(work),
            is_add,
            result: None,
            reply,
        });
        self.queue
            .lock()
            .expect("the writer queue is never poisoned")
            .as_ref()
            .ok_or_else(|| StoreError::Other("the batch writer has stopped".into()))?
            .send(job)
            .map_err(|_| StoreError::Other("the batch writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("the batch writer has stopped".into()))?
    }
}

/// The batch writer's busy handler: wait 100 µs and retry, for up to [`BUSY_TIMEOUT`].
fn retry_busy(attempt: i32) -> bool {
    const PAUSE: Duration = Duration::from_micros(100);
    let waited = PAUSE.saturating_mul(u32::try_from(attempt).unwrap_or(u32::MAX));
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(PAUSE);
    true
}

fn run_batches(
    conn: &Connection,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
    wrote: &AtomicBool,
    restart_wanted: &AtomicBool,
) {
    let mut indexer = AuditIndexer::new();
    loop {
        let first = match jobs.recv_timeout(indexer.wait()) {
            Ok(first) => Some(first),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(first) = first {
            run_batch(conn, jobs, first, wrote);
        }
        // Between batches, after answering: see `audit_index`.
        match indexer.tick(conn) {
            Ok(true) => wrote.store(true, Ordering::Release),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "indexing the audit trail failed; the next pass retries")
            }
        }
        // Between batches, after answering: see `checkpoint`.
        if restart_wanted.swap(false, Ordering::AcqRel) {
            if let Err(e) = restart(conn) {
                tracing::warn!(error = %e, "WAL restart failed; the checkpointer will ask again");
            }
        }
    }
}

/// Takes `first` and every change waiting behind it (up to [`MAX_BATCH`]), commits them
/// together and answers each.
fn run_batch(
    conn: &Connection,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
    first: Box<dyn Job>,
    wrote: &AtomicBool,
) {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    let committed = commit_batch(conn, &mut batch);
    if committed.is_ok() {
        wrote.store(true, Ordering::Release);
    }
    if let Err(e) = &committed {
        tracing::error!(error = %e, changes = batch.len(), "a batch of changes failed to commit");
    }
    for job in batch {
        job.answer(committed.as_ref().map(|_| ()));
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let ran = (|| {
        // Prepared once: `execute_batch` would parse each of them for every change.
        let step = |sql: &str| conn.prepare_cached(sql)?.execute([]).map(|_| ());
        let webhooks = conn
            .prepare_cached(ANY_WEBHOOK)?
            .query_row([], |r| r.get(0))?;
        let tx = Batch {
            conn,
            webhooks,
            events: RefCell::new(Vec::new()),
        };
        for job in batch.iter_mut() {
            if job.is_add() && !webhooks {
                job.run(&tx);
            } else {
                tx.flush_events()?;
                step("SAVEPOINT change")?;
                if !job.run(&tx) {
                    step("ROLLBACK TO change")?;
                }
                step("RELEASE change")?;
            }
            // An I/O error or a full disk can make SQLite roll back the whole
            // transaction: then the later changes would commit one by one.
            if conn.is_autocommit() {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the batch's transaction was rolled back".into()),
                ));
            }
        }
        tx.flush_events()?;
        conn.execute_batch("COMMIT")
    })();
    if ran.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    ran
}
