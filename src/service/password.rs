//! Password hashing with argon2id, on a small fixed pool of threads.
//!
//! argon2 is memory-hard on purpose: each hash fills several MiB. Run on tokio's blocking pool,
//! a burst of logins would spread that over dozens of threads, and the allocator keeps each
//! thread's memory afterwards (hundreds of MiB of RSS). Two dedicated threads bound it to two
//! hashes' worth, reused.

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// OWASP's argon2id setting for 7 MiB of memory (m=7 MiB, t=5, p=1): as strong as the
/// 19 MiB / t=2 default, with a third of the memory.
const MEMORY_KIB: u32 = 7 * 1024;
const ITERATIONS: u32 = 5;
const THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for i in 0..THREADS {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(%err, "could not start a password hashing thread");
            }
        }
        Mutex::new(sender)
    })
}

/// Runs `work` on the hashing threads and waits for it without blocking the runtime.
async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    pool()
        .lock()
        .map_err(|_| Error::internal("password pool poisoned"))?
        .send(job)
        .map_err(|_| Error::internal("password hashing threads are gone"))?;
    result
        .await
        .map_err(|_| Error::internal("password hashing job was dropped"))
}

fn argon2() -> Argon2<'static> {
    // These parameters are valid by construction; fall back to the crate default otherwise.
    let params = Params::new(MEMORY_KIB, ITERATIONS, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=…`) for `password`.
pub async fn hash(password: String) -> Result<String> {
    run(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(Error::internal)
    })
    .await?
}

/// Whether `password` matches `phc` (whatever argon2 parameters it was made with).
pub async fn verify(phc: String, password: String) -> Result<bool> {
    run(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let first = hash("secret".into()).await.expect("hash");
        let second = hash("secret".into()).await.expect("hash");
        assert_ne!(first, second, "salted");
        assert!(
            first.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
            "{first}"
        );
        assert!(
            verify(first.clone(), "secret".into())
                .await
                .expect("verify")
        );
        assert!(!verify(first, "wrong".into()).await.expect("verify"));
        assert!(
            !verify("not a hash".into(), "secret".into())
                .await
                .expect("verify")
        );
    }
}
