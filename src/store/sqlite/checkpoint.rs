//! The checkpointer: after the batch writer commits, a thread copies the WAL back into
//! the database file (a passive checkpoint: it never blocks readers or writers). The
//! batch writer's automatic checkpoints are off: one ran inside whichever commit crossed
//! the WAL's size threshold and stalled every request of that batch. When writes never
//! pause long enough for the WAL to start over, the batch writer restarts it between two
//! batches (see [`checkpoint`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::readers::BUSY_TIMEOUT;
use crate::store::{StoreError, StoreResult};

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

/// Checkpoints the WAL in the background after the batch writer has written, and
/// truncates it once no connection has committed for a round, until dropped. (sqlx's
/// writer keeps SQLite's own automatic checkpoints for its own writes.)
#[derive(Debug)]
pub(super) struct Checkpointer {
    /// Dropping the sender ends the thread at its next wait.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` whenever `wrote` was set; sets
    /// `restart_wanted` when the WAL should start over.
    pub(super) fn start(
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
        let thread = std::thread::Builder::new()
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
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Ends the thread after the round in progress, if any, and waits for it (blocking).
    pub(super) fn stop(&self) {
        self.stop
            .lock()
            .expect("the stop lock is never poisoned")
            .take();
        let thread = self
            .thread
            .lock()
            .expect("the handle lock is never poisoned")
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Whether [`Checkpointer::stop`] has joined the thread.
    #[cfg(test)]
    pub(super) fn stopped(&self) -> bool {
        self.thread.lock().expect("never poisoned").is_none()
    }
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
pub(super) fn restart(conn: &Connection) -> rusqlite::Result<()> {
    let started = Instant::now();
    let (busy, frames, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    tracing::debug!(busy, frames, copied, took = ?started.elapsed(), "WAL restarted");
    Ok(())
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
