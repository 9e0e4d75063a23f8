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
//!
//! A wrong password is remembered too, for a minute: a client still sending
//! an old password after a change (npm `nacos-naming` beats every 5 s) costs
//! a keyed hash per request instead of an Argon2 run, and the throttle counts
//! its repeats once, so it cannot lock its user out; guessing, which tries
//! new passwords, is counted in full.

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
/// How long a failed check is remembered (the throttle's window).
const REMEMBER_WRONG: Duration = Duration::from_secs(60);
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
    wrong: Mutex<HashMap<[u8; 32], Remembered>>,
    hashing: Arc<Semaphore>,
}

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right.
    Right,
    /// A wrong password not tried in the last minute.
    Wrong,
    /// The same wrong password again within the minute.
    WrongAgain,
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
            wrong: Mutex::new(HashMap::new()),
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

    /// Whether `password` was found right for `username` under
    /// `generation` lately: the cheap check, before any hash is looked at.
    pub fn recalls_right(&self, username: &str, password: &str, generation: u64) -> bool {
        recalled(
            &self.remembered,
            &self.memo_key(username, password),
            generation,
        )
    }

    /// Whether `password` is the password of `username`, whose stored hash
    /// is `hash` under `generation`.
    pub async fn check(
        &self,
        username: &str,
        password: &str,
        hash: &str,
        generation: u64,
    ) -> Verdict {
        let memo = self.memo_key(username, password);
        if recalled(&self.remembered, &memo, generation) {
            return Verdict::Right;
        }
        if recalled(&self.wrong, &memo, generation) {
            return Verdict::WrongAgain;
        }
        let Ok(_permit) = self.hashing.acquire().await else {
            return Verdict::Wrong;
        };
        let (password, hash) = (password.to_string(), hash.to_string());
        let ok = tokio::task::spawn_blocking(move || matches(&password, &hash))
            .await
            .unwrap_or(false);
        if ok {
            remember(&self.remembered, memo, generation, REMEMBER);
            Verdict::Right
        } else {
            remember(&self.wrong, memo, generation, REMEMBER_WRONG);
            Verdict::Wrong
        }
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

/// Whether `memo` is remembered in `map` under `generation`, unexpired.
fn recalled(map: &Mutex<HashMap<[u8; 32], Remembered>>, memo: &[u8; 32], generation: u64) -> bool {
    let held = map.lock().unwrap_or_else(|e| e.into_inner());
    held.get(memo)
        .is_some_and(|r| r.generation == generation && r.until > Instant::now())
}

/// Remembers `memo` in `map` for `ttl`, keeping the map bounded.
fn remember(
    map: &Mutex<HashMap<[u8; 32], Remembered>>,
    memo: [u8; 32],
    generation: u64,
    ttl: Duration,
) {
    let now = Instant::now();
    let mut remembered = map.lock().unwrap_or_else(|e| e.into_inner());
    if remembered.len() >= MAX_REMEMBERED {
        remembered.retain(|_, r| r.until > now);
        if remembered.len() >= MAX_REMEMBERED {
            let cut = now + ttl / 2;
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
            until: now + ttl,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_remembered_check_ends_with_the_generation() {
        let checks = PasswordChecks::default();
        let stored = hash("correct horse").expect("hashes");
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(
            checks.check("ann", "correct horse", &stored, 1).await,
            Verdict::Right
        );
        assert_eq!(
            checks.check("ann", "wrong", &stored, 1).await,
            Verdict::Wrong
        );
        assert_eq!(
            checks.check("ann", "wrong", &stored, 1).await,
            Verdict::WrongAgain
        );
        assert_eq!(
            checks.check("ann", "wrong 2", &stored, 1).await,
            Verdict::Wrong
        );
        // Remembered: even a different stored hash is not consulted...
        assert_eq!(
            checks.check("ann", "correct horse", "garbage", 1).await,
            Verdict::Right
        );
        // ...but only under the generation it was made under.
        assert_eq!(
            checks.check("ann", "correct horse", "garbage", 2).await,
            Verdict::Wrong
        );
        assert_eq!(
            checks.check("bob", "correct horse", "garbage", 1).await,
            Verdict::Wrong
        );
        // A wrong password under an old generation may be right under the new one.
        let next = hash("wrong").expect("hashes");
        assert_eq!(checks.check("ann", "wrong", &next, 3).await, Verdict::Right);
    }
}
