//! A few connections of the store's own for its hottest statements (the membership
//! check, the grouped adds), handed out and back without a round trip.
//!
//! sqlx's pool pings every connection as it comes back (`Floating::return_to_pool`, in a
//! task of its own), so each statement through it costs PostgreSQL a second round trip
//! and the node a task. A lane connection is taken from a list and put back on it after
//! its statement succeeded; one whose statement failed, or whose request went away
//! halfway, is closed instead, so no connection goes back in an unknown state. One idle
//! for more than [`super::PING_IDLE`] is pinged before it is used (a restarted database
//! server answers the ping's failure with a new connection, not a failed request).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc};

use super::PING_IDLE;
use crate::store::StoreResult;

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Lane {
    options: PgConnectOptions,
    /// Connections not in use, with when each was put back.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    /// One per connection the lane may hold.
    permits: Semaphore,
}

/// A lane connection in use; give it back with [`Lane::put`].
pub(super) struct Taken<'a> {
    pub(super) conn: PgConnection,
    _permit: SemaphorePermit<'a>,
}

impl Lane {
    /// A lane of at most `size` connections (at least 1), opened as they are needed.
    pub(super) fn new(options: PgConnectOptions, size: u32) -> Self {
        Self {
            options,
            idle: Mutex::default(),
            permits: Semaphore::new(usize::try_from(size.max(1)).unwrap_or(1)),
        }
    }

    /// Waits for a connection: an idle one, else a new one.
    pub(super) async fn take(&self) -> StoreResult<Taken<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| crate::store::StoreError::Other(Box::new(e)))?;
        loop {
            let next = self.lock().pop();
            let Some((mut conn, since)) = next else {
                break;
            };
            if since.elapsed() <= PING_IDLE || conn.ping().await.is_ok() {
                return Ok(Taken {
                    conn,
                    _permit: permit,
                });
            }
        }
        let conn = PgConnection::connect_with(&self.options).await?;
        Ok(Taken {
            conn,
            _permit: permit,
        })
    }

    /// Gives back a connection whose statements all succeeded.
    pub(super) fn put(&self, taken: Taken<'_>) {
        self.lock().push((taken.conn, Instant::now()));
    }

    /// Closes the idle connections (those in use close as they are dropped).
    pub(super) async fn close(&self) {
        self.permits.close();
        let idle: Vec<_> = self.lock().drain(..).collect();
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        // Nothing panics while holding it; a poisoned list is still a list.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue of a batch worker (the grouped adds', the shared checks'), which its
/// workers take turns at.
pub(super) type Jobs<P> = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<P>>>;

/// Starts `workers` tasks (at least one) on the current runtime, each running `run` over
/// one new queue, and returns the queue's sender. They end when it is dropped and the
/// queue is empty.
pub(super) fn start_workers<P, F, Fut>(
    lane: &Arc<Lane>,
    workers: usize,
    run: F,
) -> mpsc::UnboundedSender<P>
where
    P: Send + 'static,
    F: Fn(Arc<Lane>, Jobs<P>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (queue, jobs) = mpsc::unbounded_channel();
    let jobs: Jobs<P> = Arc::new(tokio::sync::Mutex::new(jobs));
    for _ in 0..workers.max(1) {
        tokio::spawn(run(Arc::clone(lane), Arc::clone(&jobs)));
    }
    queue
}

/// A batch worker's next batch (the grouped adds', the shared checks'): waits for the
/// next request in `jobs` and takes every one queued behind it, up to `max`. `None` once
/// the queue is closed and empty. Workers take turns at the queue, so each request joins
/// exactly one batch.
pub(super) async fn next_batch<P>(jobs: &Jobs<P>, max: usize) -> Option<Vec<P>> {
    let mut jobs = jobs.lock().await;
    let first = jobs.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match jobs.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}
