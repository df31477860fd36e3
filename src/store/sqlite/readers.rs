//! The read connections: rusqlite, read-only, beside sqlx's writer.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to
//! it over a channel, so each statement costs two thread switches. Under load that was
//! more than half of the server's CPU time (a `perf` profile of the nested membership
//! check: futex waits and wake-ups around sqlx's channel). So every read uses rusqlite
//! connections of its own. Point lookups by a primary or unique key run *on the calling
//! thread* (one B-tree descent, cheaper than a switch to another thread); anything that
//! scans (lists, searches, counts over many rows) runs on tokio's blocking pool, a few at
//! a time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, StoreResult};

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
