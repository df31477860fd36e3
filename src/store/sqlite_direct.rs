//! Direct SQLite access for the hot paths, beside sqlx.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to
//! it over a channel, so each statement costs two thread switches. Under load that was
//! more than half of the server's CPU time (a `perf` profile of the nested membership
//! check: futex waits and wake-ups around sqlx's channel). So every read, and the hot
//! writes, use rusqlite connections of their own; sqlx keeps the other writes.
//!
//! - [`Readers`]: read-only connections. Point lookups by a primary or unique key run
//!   *on the calling thread* (one B-tree descent, a few microseconds, cheaper than a
//!   switch to another thread); anything that scans (lists, searches, counts over many
//!   rows) runs on tokio's blocking pool, a few at a time.
//! - [`BatchWriter`]: one thread with one connection that commits membership changes in
//!   groups. It takes every change waiting in its queue, runs each in a savepoint of one
//!   transaction, commits once — one fsync for the batch, with `synchronous=FULL` — and
//!   only then answers each request. A change that fails rolls back to its savepoint
//!   alone. While a batch commits, the next one queues: under load, many requests share
//!   an fsync; alone, a request waits for just its own.
//! - [`Checkpointer`]: after the batch writer commits, a thread copies the WAL back into
//!   the database file (a passive checkpoint: it never blocks readers or writers). The
//!   batch writer's automatic checkpoints are off: one ran inside whichever commit
//!   crossed the WAL's size threshold and stalled every request of that batch. When
//!   writes never pause long enough for the WAL to start over, the batch writer restarts
//!   it between two batches (see [`checkpoint`]).
//!
//! All open the same database file as the sqlx pools. WAL lets the readers run beside
//! any writer; the batch writer and sqlx's writer take SQLite's write lock in turn
//! (`BEGIN IMMEDIATE`, with the same busy timeout).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{StoreError, StoreResult};

/// How long a connection waits for SQLite's write lock (the sqlx pools use the same).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle lookup connections kept for reuse; more are opened under a burst and closed
/// after. Lookups run on the async worker threads and never wait while holding one, so
/// about one per worker thread is in use.
const MAX_IDLE_LOOKUP: usize = 4;

/// Reads that may scan (lists, searches) running at once. Each holds a connection whose
/// page cache fills as it reads: unbounded, a burst of 32 lists opened 64 connections.
const BLOCKING_READS: usize = 4;

/// Page cache of each lookup connection, in KiB: most of the pages a membership check
/// reads at 100,000 users with integer keys (the name table, 13 MB, and the membership
/// index by user, 11.6 MB; BENCHMARKS.md), so a check seldom costs a `pread`; 24 MiB,
/// which holds them all, checked no faster. Lookups stay on a few connections (about
/// one per worker thread), so this is paid a few times over.
const LOOKUP_CACHE_KIB: i64 = 16 * 1024;

/// Page cache of each scanning connection, in KiB: a list or a search reads pages it
/// will seldom read again soon, and there are up to [`BLOCKING_READS`] of them.
const SCAN_CACHE_KIB: i64 = 4 * 1024;

/// Changes committed together at most: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 256;

/// How often the checkpointer copies the WAL into the database file. A page changed
/// many times between two rounds is copied once: under sustained membership adds, one
/// round a second wrote less to the disk than ten, and served 10-15% more adds
/// (BENCHMARKS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// WAL frames (pages) past which the WAL is made to start over: 16,384 frames of 4 KiB
/// is 64 MiB. Under sustained writes that is every checkpoint round, so the WAL file
/// stays about one round's size and is written over in place. The alternative, a WAL
/// that grows to 1 GiB before it starts over, served a third fewer adds while it grew
/// (about 22k/s against 29k/s in alternating runs): every commit appended to new
/// blocks, which the file system allocates and zeroes, and each sync then wrote the
/// file's size and extents as well. A restart holds writers back while it copies the
/// last frames and syncs the pages they changed ([`presync`] keeps that short), once a
/// second at full speed: a slightly higher add p99 (about 4 ms against 3.3 ms at
/// 100,000 users). Any pause in writes longer than a checkpoint round lets the WAL
/// start over without a restart.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// New frames a catch-up round may leave behind before the restart is asked for.
const RESTART_BACKLOG_FRAMES: i64 = 1_024;

/// What a writer truncates the WAL file to when it starts over (bytes): more than the
/// WAL reaches before a restart, so that no commit pays for a truncation under load
/// (truncating 500 MB took 100 ms on the benchmark machine's file system). The
/// checkpointer truncates the WAL once writes stop ([`WAL_IDLE_BYTES`]).
pub(super) const WAL_SIZE_LIMIT: i64 = 2 * 1024 * 1024 * 1024;

/// WAL file size (bytes) past which the checkpointer truncates it after a round with no
/// changes, so a burst of writes does not keep its disk space.
const WAL_IDLE_BYTES: u64 = 64 * 1024 * 1024;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            // A row the write refers to is gone (as `sql::fk_or` reads it).
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL =>
            {
                Self::NotFound
            }
            other => Self::Other(Box::new(other)),
        }
    }
}

/// A column of an unexpected type, read through `get_ref`.
impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Other(Box::new(e))
    }
}

/// Read-only connections: for lookups by a key on the calling thread, and for scans on
/// the blocking pool. The two are kept apart so that a scan does not fill a lookup
/// connection's cache with pages no lookup wants (and each kind has a cache of its size).
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    lookup: Pool,
    scan: Pool,
    blocking: tokio::sync::Semaphore,
}

/// Idle connections of one kind.
#[derive(Debug)]
struct Pool {
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    cache_kib: i64,
}

impl Pool {
    fn new(max_idle: usize, cache_kib: i64) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            cache_kib,
        }
    }

    /// Runs `f` on an idle connection (the most recently used: its cache is the
    /// warmest), opening one if none is idle.
    fn with<R, E: Into<StoreError>>(
        &self,
        path: &Path,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> StoreResult<R> {
        let taken = self
            .idle
            .lock()
            .expect("the reader list is never poisoned")
            .pop();
        let conn = match taken {
            Some(c) => c,
            None => self.connect(path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().expect("the reader list is never poisoned");
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result.map_err(Into::into)
    }

    fn connect(&self, path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "cache_size", self.cache_kib.saturating_neg())?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

impl Readers {
    /// Readers of the database file at `path` (opened lazily).
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            lookup: Pool::new(MAX_IDLE_LOOKUP, LOOKUP_CACHE_KIB),
            scan: Pool::new(BLOCKING_READS, SCAN_CACHE_KIB),
            blocking: tokio::sync::Semaphore::new(BLOCKING_READS),
        }
    }

    /// Runs `f` on an idle lookup connection. Each statement is its own read
    /// transaction, so it sees every commit made before it started, by any connection.
    ///
    /// Only for lookups by a key: `f` runs on the caller's (async) thread.
    pub(super) fn read<R, E: Into<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> StoreResult<R> {
        self.lookup.with(&self.path, f)
    }

    /// Runs `f` on a scanning connection, on the calling thread: for a blocking thread
    /// that reads much (see [`Self::read_blocking`]).
    pub(super) fn scan<R, E: Into<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> StoreResult<R> {
        self.scan.with(&self.path, f)
    }

    /// Runs `f` on a read connection on tokio's blocking pool: for reads that may scan
    /// (lists, searches, counts), which must not hold an async thread.
    pub(super) async fn read_blocking<R, F>(self: &Arc<Self>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let _slot = self
            .blocking
            .acquire()
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.scan(f))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?
    }
}

/// One change of a batch: runs inside the batch's transaction, answers after the commit.
trait Job: Send {
    /// Runs the change; `false` if it failed (its savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the request: the change's result, or the commit's failure.
    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>);
}

struct Change<R, F> {
    work: Option<F>,
    result: Option<StoreResult<R>>,
    reply: oneshot::Sender<StoreResult<R>>,
}

impl<R, F> Job for Change<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> StoreResult<R> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let work = self.work.take().expect("a change runs once");
        let result = work(conn);
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
}

/// The group-commit writer: one thread, one connection, a queue of changes.
#[derive(Debug)]
pub(super) struct BatchWriter {
    queue: Mutex<mpsc::Sender<Box<dyn Job>>>,
    _checkpointer: Checkpointer,
}

impl BatchWriter {
    /// Opens the writer's connection and starts its thread, and the checkpointer that
    /// copies what it writes. Both end when the writer is dropped.
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
        conn.set_prepared_statement_cache_capacity(32);
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let wrote = Arc::new(AtomicBool::new(false));
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let checkpointer =
            Checkpointer::start(path, Arc::clone(&wrote), Arc::clone(&restart_wanted))?;
        std::thread::Builder::new()
            .name("gatehouse-batch-writer".into())
            .spawn(move || run_batches(&conn, &jobs, &wrote, &restart_wanted))
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self {
            queue: Mutex::new(queue),
            _checkpointer: checkpointer,
        })
    }

    /// Runs `work` in the next batch and returns its result once the batch is durable.
    pub(super) async fn write<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Change {
            work: Some(work),
            result: None,
            reply,
        });
        self.queue
            .lock()
            .expect("the writer queue is never poisoned")
            .send(job)
            .map_err(|_| StoreError::Other("the batch writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("the batch writer has stopped".into()))?
    }
}

/// Checkpoints the WAL in the background after the batch writer has written, and
/// truncates it once no connection has committed for a round, until dropped. (sqlx's
/// writer keeps SQLite's own automatic checkpoints for its own writes.)
#[derive(Debug)]
struct Checkpointer {
    _stop: Mutex<mpsc::Sender<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` whenever `wrote` was set; sets
    /// `restart_wanted` when the WAL should start over.
    fn start(
        path: &Path,
        wrote: Arc<AtomicBool>,
        restart_wanted: Arc<AtomicBool>,
    ) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let wal = wal_path(path);
        // Opened only to be synced (`presync`): fsync works through any descriptor.
        let database = std::fs::File::open(path).map_err(|e| StoreError::Other(Box::new(e)))?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gatehouse-checkpoint".into())
            .spawn(move || {
                let mut seen = None; // `PRAGMA data_version` at the previous round
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if !wrote.swap(false, Ordering::AcqRel) {
                        // Truncate only when no connection at all, in this process or
                        // another (an import), committed during the last round.
                        let now = data_version(&conn).ok();
                        if now.is_some() && now == std::mem::replace(&mut seen, now) {
                            if let Err(e) = truncate_idle(&conn, &wal, WAL_IDLE_BYTES) {
                                tracing::warn!(error = %e, "WAL truncation failed; will retry");
                            }
                        }
                        continue;
                    }
                    match checkpoint(&conn, WAL_RESTART_FRAMES) {
                        Ok(Round {
                            oversized: true, ..
                        }) => {
                            presync(&database);
                            catch_up(&conn);
                            restart_wanted.store(true, Ordering::Release);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            wrote.store(true, Ordering::Release); // try again next round
                            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self {
            _stop: Mutex::new(stop),
        })
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

/// What one passive checkpoint found.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Frames copied into the database so far (all of the WAL at the round's start).
    copied: i64,
    /// Whether the WAL is past the restart limit.
    oversized: bool,
}

/// One round of the checkpointer: a passive checkpoint, which never waits. Reports
/// whether the WAL has grown past `restart_past` frames ([`WAL_RESTART_FRAMES`]) and
/// should start over.
///
/// Under writes that never pause, a passive checkpoint copies the frames it saw, but
/// more have been appended by the time it ends, and SQLite starts the WAL over only
/// once every frame is copied. So the batch writer, asked by this, runs a restarting
/// checkpoint itself between two batches ([`restart`]): just after this round it has
/// only the last few milliseconds' frames to copy. (Run from here, a restarting
/// checkpoint waited on the busy handler for the writer's lock: up to seconds.)
fn checkpoint(conn: &Connection, restart_past: i64) -> rusqlite::Result<Round> {
    let started = Instant::now();
    let (frames, copied): (i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })?;
    tracing::debug!(frames, copied, took = ?started.elapsed(), "passive WAL checkpoint");
    Ok(Round {
        copied,
        oversized: frames > restart_past,
    })
}

/// Before a restart: passive rounds until one finds fewer than
/// [`RESTART_BACKLOG_FRAMES`] new frames (at most five), so that the writer's restart,
/// which holds writes back, copies and syncs only the last few milliseconds' frames.
fn catch_up(conn: &Connection) {
    let mut copied = -1;
    for _ in 0..5 {
        match checkpoint(conn, WAL_RESTART_FRAMES) {
            Ok(round) if copied >= 0 && round.copied - copied < RESTART_BACKLOG_FRAMES => return,
            Ok(round) => copied = round.copied,
            Err(_) => return,
        }
    }
}

/// Before a restart: syncs the database file from the checkpointer's thread, which
/// holds no lock, so that the restart, which holds writers back, has only the pages
/// copied after this to sync. SQLite syncs the database file only after a checkpoint
/// that copied the whole WAL, which under continuous writes is the restart's: without
/// this, the restart flushed a whole round of copied pages (22-32 ms once a second at a
/// million users, add p99 13.6-19.6 ms); with it, 4-18 ms (add p99 about 9.3 ms), the
/// same adds a second. A failure is only logged: the restart then syncs everything
/// itself.
fn presync(database: &std::fs::File) {
    let started = Instant::now();
    match database.sync_data() {
        Ok(()) => {
            tracing::debug!(took = ?started.elapsed(), "database file synced before a restart")
        }
        Err(e) => tracing::warn!(error = %e, "database file sync before a WAL restart failed"),
    }
}

/// Changes whenever another connection, in any process, has committed since this
/// connection last asked.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// The WAL file beside the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// After a round with no changes: when the WAL file is larger than `past` bytes,
/// checkpoints it whole and truncates it (waiting for the write lock, which is free or
/// soon free when nothing is being changed). Returns whether it truncated.
fn truncate_idle(conn: &Connection, wal: &Path, past: u64) -> rusqlite::Result<bool> {
    let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    if size <= past {
        return Ok(false);
    }
    let started = Instant::now();
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    tracing::debug!(size, busy, took = ?started.elapsed(), "idle WAL truncated");
    Ok(busy == 0)
}

/// A restarting checkpoint: copies what is left of the WAL, waits for readers of it to
/// finish, so the next write starts the WAL over (and truncates the file to
/// [`WAL_SIZE_LIMIT`]).
fn restart(conn: &Connection) -> rusqlite::Result<()> {
    let started = Instant::now();
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    tracing::debug!(busy, frames, copied, took = ?started.elapsed(), "WAL restarted");
    Ok(())
}

fn run_batches(
    conn: &Connection,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
    wrote: &AtomicBool,
    restart_wanted: &AtomicBool,
) {
    while let Ok(first) = jobs.recv() {
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
        // Between batches, after answering: see `checkpoint`.
        if restart_wanted.swap(false, Ordering::AcqRel) {
            if let Err(e) = restart(conn) {
                tracing::warn!(error = %e, "WAL restart failed; the checkpointer will ask again");
            }
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let ran = (|| {
        for job in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT change")?;
            if job.run(conn) {
                conn.execute_batch("RELEASE change")?;
            } else {
                conn.execute_batch("ROLLBACK TO change; RELEASE change")?;
            }
        }
        conn.execute_batch("COMMIT")
    })();
    if ran.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    ran
}

/// Where each column of a statement's result is, by name.
#[derive(Debug)]
pub(super) struct ColumnIndex(HashMap<String, usize>);

impl ColumnIndex {
    pub(super) fn of(stmt: &rusqlite::Statement<'_>) -> Self {
        let names = stmt.column_names().into_iter();
        Self(names.enumerate().map(|(i, n)| (n.to_owned(), i)).collect())
    }

    fn get(&self, column: &str) -> StoreResult<usize> {
        self.0.get(column).copied().ok_or_else(|| {
            StoreError::Other(rusqlite::Error::InvalidColumnName(column.to_owned()).into())
        })
    }
}

/// A rusqlite row read by column name (`sql::user_from` and its siblings). rusqlite
/// finds a name by fetching and comparing every column's name on each read; for a user
/// row of 30 columns that was 40% of the CPU of serving a page of users. Here the
/// positions are looked up once per statement ([`ColumnIndex`]).
pub(super) struct ByName<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    columns: &'a ColumnIndex,
}

impl<'a, 'stmt> ByName<'a, 'stmt> {
    pub(super) fn new(row: &'a rusqlite::Row<'stmt>, columns: &'a ColumnIndex) -> Self {
        Self { row, columns }
    }

    /// The row itself, to read by position.
    pub(super) fn row(&self) -> &rusqlite::Row<'stmt> {
        self.row
    }

    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> StoreResult<T> {
        Ok(self.row.get(self.columns.get(column)?)?)
    }
}

/// Maps the one row of a `query_row` by column name.
pub(super) fn by_name<T>(row: &rusqlite::Row<'_>, map: impl FnOnce(&ByName<'_, '_>) -> T) -> T {
    let columns = ColumnIndex::of(row.as_ref());
    map(&ByName::new(row, &columns))
}

impl super::sql::RowColumns for ByName<'_, '_> {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        self.get(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with a table `t (x BLOB)` and no automatic checkpoints: a writer
    /// connection and a second one to checkpoint with.
    fn wal_database(path: &Path) -> (Connection, Connection) {
        let writer = Connection::open(path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; \
                 PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB);",
            )
            .unwrap();
        (writer, Connection::open(path).unwrap())
    }

    /// A writer that never stops appending must not grow the WAL without bound: once it
    /// is past the limit, a checkpoint round asks for a restart, and after the writer's
    /// restart its next write starts the WAL over.
    #[test]
    fn a_checkpoint_round_starts_an_oversized_wal_over() {
        const LIMIT: i64 = 2_000;
        let dir = tempfile::tempdir().unwrap();
        let (writer, checkpointer) = wal_database(&dir.path().join("wal.db"));
        let page = vec![7u8; 4000];
        let mut insert = writer.prepare("INSERT INTO t (x) VALUES (?1)").unwrap();
        insert.execute([&page]).unwrap();
        assert!(
            !checkpoint(&checkpointer, LIMIT).unwrap().oversized,
            "a small WAL is left alone"
        );

        for _ in 0..(LIMIT + 500) {
            insert.execute([&page]).unwrap();
        }
        assert!(
            checkpoint(&checkpointer, LIMIT).unwrap().oversized,
            "past the limit: restart"
        );
        // Frames appended after the passive round, as under load; then the writer's
        // restart, after which its next write starts the WAL over.
        for _ in 0..50 {
            insert.execute([&page]).unwrap();
        }
        restart(&writer).unwrap();
        insert.execute([&page]).unwrap();
        let frames: i64 = checkpointer
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap_or(-1);
        assert!(
            (0..20).contains(&frames),
            "the WAL started over: {frames} frames"
        );
    }

    /// Once writes stop, a WAL file grown past the idle limit is truncated, with every
    /// change in the database file; a small one is left as it is.
    #[test]
    fn an_idle_round_truncates_a_large_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idle.db");
        let wal = wal_path(&path);
        let (writer, checkpointer) = wal_database(&path);
        let page = vec![7u8; 4000];
        for _ in 0..300 {
            writer
                .execute("INSERT INTO t (x) VALUES (?1)", [&page])
                .unwrap();
        }
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > 1_000_000, "the WAL grew: {grown} bytes");

        assert!(
            !truncate_idle(&checkpointer, &wal, grown).unwrap(),
            "under the limit"
        );
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), grown);

        assert!(truncate_idle(&checkpointer, &wal, 1_000_000).unwrap());
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "truncated");
        let rows: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 300, "every change is in the database file");
    }
}
