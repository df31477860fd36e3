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
/// constant-time. A hash that does not parse, or whose parameters are out of
/// [`check_stored_hash`]'s bounds (however it reached the database), never verifies and
/// costs nothing: its parameters would set the work.
pub fn verify_blocking(password: &str, hash: &PasswordHash) -> bool {
    if check_stored_hash(&hash.0).is_err() {
        return false;
    }
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

/// Jobs a server may have waiting per hashing thread ([`queue_bound`]). At ~20 ms a
/// job, a full queue is about 1.3 s of work: a burst past that is refused at once (503)
/// instead of growing the queue, and with it every later request's wait, without bound.
const QUEUE_PER_THREAD: usize = 64;

/// How many password jobs one server may have queued or running at once: the server
/// holds a permit of a semaphore this size around each [`hash`] and [`verify`] and
/// answers [`Busy`] when none is left. (The bound is the server's rather than the
/// queue's, so that several servers in one process, as in tests, do not refuse each
/// other's work; the command line, which hashes one password at a time, needs none.)
pub fn queue_bound() -> usize {
    hashing_threads() * QUEUE_PER_THREAD
}

fn hashing_threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// A job that waited longer than this is not run: its request has been answered by the
/// deadline or abandoned, or the server is so far behind that the answer would come too
/// late to matter.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The job was not run: the server's queue is full ([`queue_bound`]), or it waited past
/// `MAX_WAIT` (5 s). The caller answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password hashing thread is busy")]
pub struct Busy;

/// The hashing threads' queue. At most one argon2 computation per core runs at once:
/// each takes 19 MiB and a core for ~20 ms, so running more only adds memory without
/// finishing any sooner. Keeping them on a few threads of their own also keeps the
/// 19 MiB buffers in a few allocator arenas: on tokio's blocking pool every thread got
/// an arena of its own, and a burst of logins left 860 MB resident. Each server bounds
/// what it queues ([`queue_bound`]).
fn hashing_queue() -> &'static Mutex<mpsc::Sender<HashJob>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<HashJob>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let cores = hashing_threads();
        let (sender, jobs) = mpsc::channel::<HashJob>();
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
        Mutex::new(sender)
    })
}

/// Runs one argon2 computation on a hashing thread, in the caller's tracing span. A job
/// whose caller has gone (the request was dropped) or that waited past `MAX_WAIT` (5 s)
/// is skipped, so abandoned work never piles up in front of live requests.
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
    hashing_queue()
        .lock()
        .expect("the hashing queue is never poisoned")
        .send(job)
        .expect("the hashing threads never stop");
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

/// The largest argon2id memory cost a stored hash may ask for, in KiB (1 GiB).
pub const MAX_STORED_MEMORY_KIB: u32 = 1024 * 1024;
/// The most argon2id iterations a stored hash may ask for.
pub const MAX_STORED_ITERATIONS: u32 = 10;
/// The most argon2id lanes a stored hash may ask for.
pub const MAX_STORED_PARALLELISM: u32 = 16;
/// The longest stored hash accepted, in bytes (one at the bounds above with the longest
/// salt and output is under 200).
const MAX_STORED_HASH_LEN: usize = 512;

/// Checks a password hash that comes from outside (an import) before it is stored:
/// it must be an argon2id PHC string, version 19, with a salt, a hash output, and
/// parameters inside argon2's own minimums and our maximums (m ≤ 1 GiB, t ≤ 10,
/// p ≤ 16). Every login verifies against the stored hash with the hash's own
/// parameters, so a hash with `t=4294967295` or a huge `m` would tie up a hashing
/// thread on every login: one line of an import file would plant a denial of service.
/// The error names the rule that was broken.
pub fn check_stored_hash(phc: &str) -> Result<(), String> {
    if phc.len() > MAX_STORED_HASH_LEN {
        return Err(format!(
            "passwordHash must be at most {MAX_STORED_HASH_LEN} characters"
        ));
    }
    let parsed =
        PhcHash::new(phc).map_err(|e| format!("passwordHash is not a PHC string ({e})"))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(format!(
            "passwordHash must use argon2id, not {}",
            parsed.algorithm
        ));
    }
    if parsed.version != Some(Version::V0x13.into()) {
        return Err("passwordHash must be argon2 version 19 (v=19)".to_owned());
    }
    if let Some((name, _)) = parsed
        .params
        .iter()
        .find(|(name, _)| !matches!(name.as_str(), "m" | "t" | "p"))
    {
        return Err(format!(
            "passwordHash has the parameter '{name}'; only m, t and p are supported"
        ));
    }
    // argon2's own rules: minimums (m ≥ 8 × p, t ≥ 1, p ≥ 1), an output of 4+ bytes.
    let params = Params::try_from(&parsed)
        .map_err(|e| format!("passwordHash has invalid argon2 parameters ({e})"))?;
    if params.m_cost() > MAX_STORED_MEMORY_KIB {
        return Err(format!(
            "passwordHash memory cost m={} is above the maximum of {MAX_STORED_MEMORY_KIB} KiB",
            params.m_cost()
        ));
    }
    if params.t_cost() > MAX_STORED_ITERATIONS {
        return Err(format!(
            "passwordHash time cost t={} is above the maximum of {MAX_STORED_ITERATIONS}",
            params.t_cost()
        ));
    }
    if params.p_cost() > MAX_STORED_PARALLELISM {
        return Err(format!(
            "passwordHash parallelism p={} is above the maximum of {MAX_STORED_PARALLELISM}",
            params.p_cost()
        ));
    }
    let salt = parsed
        .salt
        .ok_or_else(|| "passwordHash has no salt".to_owned())?;
    let mut buf = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let salt_len = salt
        .decode_b64(&mut buf)
        .map_err(|e| format!("passwordHash has an invalid salt ({e})"))?
        .len();
    if salt_len < argon2::MIN_SALT_LEN {
        return Err(format!(
            "passwordHash salt must be at least {} bytes",
            argon2::MIN_SALT_LEN
        ));
    }
    if parsed.hash.is_none() {
        return Err("passwordHash has no hash output".to_owned());
    }
    Ok(())
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

    fn phc(params: &str) -> String {
        // A real hash, with its parameter section replaced.
        let h = hash_blocking("Correct-Horse-1").0;
        let rest = h.splitn(5, '$').collect::<Vec<_>>();
        format!("$argon2id$v=19${params}${}", rest[4])
    }

    #[test]
    fn stored_hashes_of_our_own_pass_the_check() {
        assert_eq!(check_stored_hash(&hash_blocking("x").0), Ok(()));
        assert_eq!(check_stored_hash(&phc("m=1048576,t=10,p=16")), Ok(()));
    }

    #[test]
    fn stored_hashes_outside_the_bounds_are_refused_naming_the_bound() {
        let refused = |phc: &str, says: &str| {
            let e = check_stored_hash(phc).expect_err(phc);
            assert!(e.contains(says), "{phc}: {e}");
        };
        refused(&phc("m=19456,t=4294967295,p=1"), "t=4294967295");
        refused(&phc("m=4194304,t=2,p=1"), "m=4194304");
        refused(&phc("m=1048577,t=2,p=1"), "memory cost");
        refused(&phc("m=19456,t=11,p=1"), "time cost");
        refused(&phc("m=19456,t=2,p=17"), "parallelism");
        refused(&phc("m=19456,t=0,p=1"), "invalid argon2 parameters");
        refused(&phc("m=7,t=2,p=1"), "invalid argon2 parameters");
        refused(&phc("m=19456,t=2,p=1,keyid=AAAA"), "'keyid'");
        refused(&phc("m=19456,t=99999999999,p=1"), "");
    }

    #[test]
    fn stored_hashes_must_be_argon2id_v19_with_salt_and_output() {
        let h = hash_blocking("x").0;
        for (bad, says) in [
            ("", "not a PHC string"),
            ("$argon2id$", "not a PHC string"),
            ("not a hash", "not a PHC string"),
            (&h.replacen("argon2id", "argon2i", 1), "argon2id"),
            (&h.replacen("v=19", "v=16", 1), "version 19"),
            (&h.replacen("$v=19", "", 1), "version 19"),
            ("$argon2id$v=19$m=19456,t=2,p=1", "no salt"),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
                "no hash output",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNo",
                "salt",
            ),
            ("$2b$12$abcdefghijklmnopqrstuv", "not a PHC string"),
            (
                "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                "argon2id",
            ),
        ] {
            let e = check_stored_hash(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(check_stored_hash(&format!("{h}{}", "A".repeat(600))).is_err());
    }

    #[test]
    fn a_hash_out_of_bounds_never_verifies_and_is_never_computed() {
        let good = hash_blocking("Correct-Horse-1");
        let costly = good.0.replace("t=2", "t=4294967295");
        let started = std::time::Instant::now();
        assert!(!verify_blocking("Correct-Horse-1", &PasswordHash(costly)));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn garbage_hash_never_verifies() {
        assert!(!verify_blocking("x", &PasswordHash("not a hash".into())));
    }
}
