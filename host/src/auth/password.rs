//! Passwords: hashed with Argon2id (the `argon2` crate's defaults: 19 MiB,
//! 2 passes), checked off the async threads, and a successful check
//! remembered for a while so a client that sends its password on every
//! request (npm `nacos-naming` does, beats included: NACOS-AUTH.md §9)
//! costs a keyed hash and a map lookup, not an Argon2 run.
//!
//! The memory is keyed by HMAC-SHA256 of `username NUL password` under a
//! key made at start and never stored, so it holds no password; an entry
//! counts only while the user's generation is the one it was made under
//! (a password change forgets it at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

/// How long a successful check is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Most checks remembered; beyond it the oldest half is forgotten.
const MAX_REMEMBERED: usize = 10_000;
/// Argon2 runs at once: each takes ~19 MiB and tens of ms of one core.
const CONCURRENT_HASHES: usize = 2;

/// Hashes `password` for storage (PHC string).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// Whether `password` matches the stored `hash` (constant time in the
/// comparison, as the crate does it).
pub fn matches(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks passwords and remembers the successful ones (see the module documentation).
pub struct PasswordChecks {
    key: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    hashing: Arc<Semaphore>,
}

#[derive(Clone, Copy)]
struct Remembered {
    generation: u64,
    until: Instant,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        let mut key = [0u8; 32];
        // Without randomness the memory would be keyed by a guessable key;
        // an all-zero key still holds no password, only hashes of them.
        if getrandom::getrandom(&mut key).is_err() {
            tracing::warn!("no randomness for the password memory key");
        }
        PasswordChecks {
            key,
            remembered: Mutex::new(HashMap::new()),
            hashing: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
        }
    }
}

impl PasswordChecks {
    fn memo_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` is the password of `username`, whose stored hash
    /// is `hash` under `generation`.
    pub async fn check(&self, username: &str, password: &str, hash: &str, generation: u64) -> bool {
        let memo = self.memo_key(username, password);
        let now = Instant::now();
        {
            let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = remembered.get(&memo)
                && r.generation == generation
                && r.until > now
            {
                return true;
            }
        }
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_string(), hash.to_string());
        let ok = tokio::task::spawn_blocking(move || matches(&password, &hash))
            .await
            .unwrap_or(false);
        if ok {
            self.remember(memo, generation);
        }
        ok
    }

    fn remember(&self, memo: [u8; 32], generation: u64) {
        let now = Instant::now();
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if remembered.len() >= MAX_REMEMBERED {
            remembered.retain(|_, r| r.until > now);
            if remembered.len() >= MAX_REMEMBERED {
                let cut = now + REMEMBER / 2;
                remembered.retain(|_, r| r.until > cut);
            }
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
        }
        remembered.insert(
            memo,
            Remembered {
                generation,
                until: now + REMEMBER,
            },
        );
    }

    /// Hashes a new password off the async threads.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| "the node is shutting down".to_string())?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash(&password))
            .await
            .map_err(|e| format!("hashing the password failed: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_remembered_check_ends_with_the_generation() {
        let checks = PasswordChecks::default();
        let stored = hash("correct horse").expect("hashes");
        assert!(stored.starts_with("$argon2id$"));
        assert!(checks.check("ann", "correct horse", &stored, 1).await);
        assert!(!checks.check("ann", "wrong", &stored, 1).await);
        // Remembered: even a different stored hash is not consulted...
        assert!(checks.check("ann", "correct horse", "garbage", 1).await);
        // ...but only under the generation it was made under.
        assert!(!checks.check("ann", "correct horse", "garbage", 2).await);
        assert!(!checks.check("bob", "correct horse", "garbage", 1).await);
    }
}
