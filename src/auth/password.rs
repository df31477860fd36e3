//! Password hashing with argon2id at OWASP's recommended parameters (m = 19 MiB, t = 2,
//! p = 1). Hashing is CPU- and memory-bound, so it runs on threads of its own — one per
//! core — and never on the async workers or tokio's blocking pool.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    PasswordHash as PhcHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::oneshot;

use crate::domain::user::PasswordHash;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations (OWASP: 2).
pub const ITERATIONS: u32 = 2;
/// Lanes (OWASP: 1).
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("the OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (blocking; call through [`hash`] from async code).
pub fn hash_blocking(password: &str) -> PasswordHash {
    let salt = SaltString::generate(&mut OsRng);
    let phc = hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters and a fresh salt cannot fail");
    PasswordHash(phc.to_string())
}

/// Checks a password against a stored hash (blocking). The comparison inside argon2 is
/// constant-time. A hash that does not parse never verifies.
pub fn verify_blocking(password: &str, hash: &PasswordHash) -> bool {
    match PhcHash::new(&hash.0) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the user does not exist (or has
/// no password) so that a login takes as long whether or not the name is known.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking(&uuid::Uuid::new_v4().to_string()))
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Jobs that may wait per hashing thread. At ~20 ms a job, a full queue is about
/// 1.3 s of work: a burst past that is refused at once (503) instead of growing the
/// queue, and with it every later request's wait, without bound.
const QUEUE_PER_THREAD: usize = 64;

/// A job that waited longer than this is not run: its request has been answered by the
/// deadline or abandoned, or the server is so far behind that the answer would come too
/// late to matter.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The hashing threads could not take the job (the queue is full, or it waited past
/// [`MAX_WAIT`]): the caller answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password hashing thread is busy")]
pub struct Busy;

/// The hashing threads' queue. At most one argon2 computation per core runs at once:
/// each takes 19 MiB and a core for ~20 ms, so running more only adds memory without
/// finishing any sooner. Keeping them on a few threads of their own also keeps the
/// 19 MiB buffers in a few allocator arenas: on tokio's blocking pool every thread got
/// an arena of its own, and a burst of logins left 860 MB resident. The queue is bounded
/// ([`QUEUE_PER_THREAD`]).
fn hashing_queue() -> &'static mpsc::SyncSender<HashJob> {
    static QUEUE: OnceLock<mpsc::SyncSender<HashJob>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (sender, jobs) = mpsc::sync_channel::<HashJob>(cores * QUEUE_PER_THREAD);
        let jobs = std::sync::Arc::new(Mutex::new(jobs));
        for n in 0..cores {
            let jobs = std::sync::Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("gatehouse-argon2-{n}"))
                .spawn(move || {
                    loop {
                        let job = jobs
                            .lock()
                            .expect("the hashing queue is never poisoned")
                            .recv();
                        match job {
                            // A panicking job drops its reply (its request fails);
                            // the thread lives on for the next.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => break,
                        }
                    }
                })
                .expect("a hashing thread starts");
        }
        sender
    })
}

/// Runs one argon2 computation on a hashing thread, in the caller's tracing span; or
/// refuses at once when the queue is full. A job whose caller has gone (the request
/// was dropped) or that waited past [`MAX_WAIT`] is skipped, so abandoned work never
/// piles up in front of live requests.
async fn run_bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    let (reply, answer) = oneshot::channel();
    let span = tracing::Span::current();
    let queued = Instant::now();
    let job: HashJob = Box::new(move || {
        if reply.is_closed() {
            return;
        }
        if queued.elapsed() > MAX_WAIT {
            let _ = reply.send(Err(Busy));
            return;
        }
        let _ = reply.send(Ok(span.in_scope(work)));
    });
    match hashing_queue().try_send(job) {
        Ok(()) => {}
        Err(mpsc::TrySendError::Full(_)) => return Err(Busy),
        Err(mpsc::TrySendError::Disconnected(_)) => unreachable!("the hashing threads never stop"),
    }
    // A job that panicked dropped its reply: refuse that one request like a busy queue.
    answer.await.unwrap_or(Err(Busy))
}

/// Hashes on a hashing thread.
pub async fn hash(password: String) -> Result<PasswordHash, Busy> {
    run_bounded(move || hash_blocking(&password)).await
}

/// Verifies on a hashing thread. With `None` it verifies against a dummy hash and
/// returns false, taking the same time as a real check.
pub async fn verify(password: String, hash: Option<PasswordHash>) -> Result<bool, Busy> {
    run_bounded(move || match hash {
        Some(h) => verify_blocking(&password, &h),
        None => {
            verify_blocking(&password, dummy_hash());
            false
        }
    })
    .await
}

/// Computes the dummy hash ahead of the first login, so that first unknown-user login
/// is not slower than the rest.
pub fn warm_up() {
    let _ = dummy_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash_blocking("Correct-Horse-1");
        assert!(
            h.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.0
        );
        assert!(verify_blocking("Correct-Horse-1", &h));
        assert!(!verify_blocking("correct-horse-1", &h));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash_blocking("same"), hash_blocking("same"));
    }

    #[test]
    fn garbage_hash_never_verifies() {
        assert!(!verify_blocking("x", &PasswordHash("not a hash".into())));
    }
}
