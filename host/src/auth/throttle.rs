//! Failed-login throttling, per user and per source address: a fixed
//! one-minute window per key; once a key has had its allowance of failures
//! in the window, every attempt under it (even a correct one) is refused
//! until the window ends. Nacos has none (NACOS-AUTH.md §2); r-nacos limits
//! console logins similarly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked at most; beyond it the finished windows are dropped, and if
/// that is not enough, all (an attacker spraying names must not grow memory).
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Hash, PartialEq, Eq)]
enum Key {
    User(String),
    Source(IpAddr),
}

struct Window {
    started: Instant,
    failures: u32,
}

/// The failure counters.
pub struct Throttle {
    per_user: u32,
    per_source: u32,
    windows: Mutex<HashMap<Key, Window>>,
}

impl Throttle {
    /// Allows `per_user` failures per user and `per_source` per address a minute.
    pub fn new(per_user: u32, per_source: u32) -> Throttle {
        Throttle {
            per_user,
            per_source,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds until the window ends)` if attempts for `username` or
    /// from `source` are refused now.
    pub fn blocked(&self, username: &str, source: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.is_empty() {
            return None; // the usual case: no failure lately, nothing to build
        }
        let mut keys = vec![(Key::User(username.to_string()), self.per_user)];
        if let Some(ip) = source {
            keys.push((Key::Source(ip), self.per_source));
        }
        keys.into_iter()
            .filter_map(|(key, limit)| {
                let window = windows.get(&key)?;
                let ends = window.started + WINDOW;
                (window.failures >= limit && ends > now)
                    .then(|| ends.saturating_duration_since(now).as_secs().max(1))
            })
            .max()
    }

    /// Counts one failed attempt for `username` and `source`.
    pub fn failed(&self, username: &str, source: Option<IpAddr>) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, w| w.started + WINDOW > now);
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        let mut keys = vec![Key::User(username.to_string())];
        if let Some(ip) = source {
            keys.push(Key::Source(ip));
        }
        for key in keys {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if window.started + WINDOW <= now {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_blocked_after_its_allowance_and_others_are_not() {
        let throttle = Throttle::new(3, 100);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..2 {
            throttle.failed("ann", ip);
        }
        assert_eq!(throttle.blocked("ann", ip), None);
        throttle.failed("ann", ip);
        assert!(throttle.blocked("ann", ip).is_some_and(|s| s <= 60));
        assert_eq!(throttle.blocked("bob", ip), None);
    }

    #[test]
    fn a_source_is_blocked_whatever_name_it_tries() {
        let throttle = Throttle::new(100, 2);
        let ip = Some(IpAddr::from([127, 0, 0, 9]));
        throttle.failed("a", ip);
        throttle.failed("b", ip);
        assert!(throttle.blocked("c", ip).is_some());
        assert_eq!(
            throttle.blocked("c", Some(IpAddr::from([127, 0, 0, 8]))),
            None
        );
    }
}
