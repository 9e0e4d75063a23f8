//! Client authentication and authorization, for both front doors
//! (docs/AUTH.md; the protocol and the clients: NACOS-AUTH.md).
//!
//! A request's [`Credentials`] are read where real clients put them (the
//! doors do that); [`Auth::check`] authenticates them — a token, or a
//! username and password — and authorizes the caller for what the route or
//! request [`Need`]s, by the users, roles and permissions of
//! [`crate::accounts`]. Those tables change only through
//! [`AccountsStore`] (Raft in a cluster), so every member decides alike.
//!
//! With `auth.enabled` off every check passes (as Nacos), but the login
//! routes still answer, since clients configured with credentials log in at
//! start and fail when they cannot.

pub mod bootstrap;
pub mod password;
pub mod resource;
pub mod throttle;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError, RwLockReadGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::accounts::{AccountChange, SharedTables, Tables};
pub use crate::accounts::{check_password, check_username};
use crate::clock::now_millis;
use crate::config::AuthConfig;
use crate::consistency::{AccountsStore, ConsistencyError};
pub use resource::Need;
use token::{Claims, TokenError};

/// Where a request carried its credential, borrowed from the request; any
/// may be absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// `accessToken` (parameter or header) or `Authorization: Bearer …`.
    pub token: Option<&'a str>,
    /// `username`, with `password`: checked on the request itself (npm
    /// `nacos-naming` never logs in).
    pub username: Option<&'a str>,
    /// See `username`.
    pub password: Option<&'a str>,
}

/// Who made a request, as the routes see it (a request extension on HTTP).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Caller {
    /// The authenticated user; `None` when auth is off.
    pub username: Option<String>,
}

/// Why a request was refused. The texts are Nacos's where it has one: its
/// console logs out on `unknown user!`, `token invalid!`, `token expired!`.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Denied {
    /// No credential, or a wrong username or password.
    #[error("unknown user!")]
    UnknownUser,
    /// A token that does not verify.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// Authenticated, but not permitted.
    #[error("authorization failed!")]
    Forbidden,
    /// Too many failed logins for the user or from the address; seconds to wait.
    #[error("too many failed logins for this user or from this address; try again in {0} s")]
    Throttled(u64),
    /// The cluster has not agreed on a signing key yet (just started).
    #[error("auth is starting: no signing key is agreed yet; try again")]
    NotReady,
}

/// A failed user, role or permission change.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Bad input or a refused change (HTTP 400, Nacos's texts).
    #[error("{0}")]
    Invalid(String),
    /// The store could not make it durable.
    #[error(transparent)]
    Store(#[from] ConsistencyError),
}

/// What a successful login hands back (Nacos's login answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Issued {
    /// The token to send back as `accessToken`.
    pub token: String,
    /// Seconds it lives.
    pub ttl_seconds: u64,
    /// Whether the user is the global admin.
    pub global_admin: bool,
    /// The user.
    pub username: String,
}

/// The caller `username`, if the tables allow them `need`.
fn authorize(tables: &Tables, username: String, need: &Need) -> Result<Caller, Denied> {
    if resource::allowed(tables, &username, need) {
        Ok(Caller {
            username: Some(username),
        })
    } else {
        Err(Denied::Forbidden)
    }
}

/// The node's auth: settings, tables, store, password checks and throttle.
pub struct Auth {
    enabled: bool,
    admin_username: String,
    ttl_seconds: u64,
    tables: SharedTables,
    store: AccountsStore,
    passwords: password::PasswordChecks,
    throttle: throttle::Throttle,
    write_timeout: Duration,
    /// Tokens whose signature was checked, with their claims: a client
    /// sends the same token on every request, so the decoding and the MAC
    /// are done once per token, the expiry, key and generation every time.
    verified: Mutex<HashMap<String, Claims, foldhash::fast::RandomState>>,
}

/// Most verified tokens remembered; beyond it the memory starts over.
const MAX_VERIFIED: usize = 4096;

/// A token answered to logins while auth is off (r-nacos answers the same);
/// nothing checks it.
pub const AUTH_DISABLED_TOKEN: &str = "AUTH_DISABLED";

impl Auth {
    /// Auth over `tables`, changed through `store`.
    pub fn new(
        config: &AuthConfig,
        tables: SharedTables,
        store: AccountsStore,
        write_timeout: Duration,
    ) -> Auth {
        Auth {
            enabled: config.enabled,
            admin_username: config.admin_username.clone(),
            ttl_seconds: config.token_ttl_seconds,
            tables,
            store,
            passwords: password::PasswordChecks::default(),
            throttle: throttle::Throttle::new(
                config.failures_per_user_per_minute,
                config.failures_per_source_per_minute,
            ),
            write_timeout,
            verified: Mutex::new(HashMap::default()),
        }
    }

    /// Whether credentials are required.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The name the first admin gets (`auth.admin_username`).
    pub fn admin_username(&self) -> &str {
        &self.admin_username
    }

    /// The tables, for reading.
    pub fn tables(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Authenticates `credentials` (from `source`) and authorizes the caller
    /// for `need`. With auth off: passes, with no user.
    pub async fn check(
        &self,
        credentials: &Credentials<'_>,
        source: Option<IpAddr>,
        need: &Need,
    ) -> Result<Caller, Denied> {
        if !self.enabled {
            return Ok(Caller::default());
        }
        // The common cases, a known token and a remembered password, are
        // decided under one read of the tables.
        {
            let tables = self.tables();
            if let Some(username) = self.recognise(credentials, source, &tables)? {
                return authorize(&tables, username, need);
            }
        }
        let username = self.authenticate(credentials, source).await?;
        authorize(&self.tables(), username, need)
    }

    /// Who `credentials` belong to: the token's user if a token is given
    /// (a bad token is refused even if a password is given too), else the
    /// user whose password it is.
    pub async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        source: Option<IpAddr>,
    ) -> Result<String, Denied> {
        if let Some(username) = self.recognise(credentials, source, &self.tables())? {
            return Ok(username);
        }
        match (credentials.username, credentials.password) {
            (Some(username), Some(password)) => {
                self.check_password(username, password, source).await?;
                Ok(username.to_string())
            }
            _ => Err(Denied::UnknownUser),
        }
    }

    /// The user of `credentials` when it is known without hashing: a
    /// token's, or a password's remembered as right. `None`: a password
    /// that must be checked against its hash. Errors: a bad token, no
    /// credential, a throttled user or source.
    fn recognise(
        &self,
        credentials: &Credentials<'_>,
        source: Option<IpAddr>,
        tables: &Tables,
    ) -> Result<Option<String>, Denied> {
        if let Some(token) = credentials.token {
            return self.verify_token(token, tables).map(Some);
        }
        let (Some(username), Some(password)) = (credentials.username, credentials.password) else {
            return Err(Denied::UnknownUser);
        };
        if let Some(wait) = self.throttle.blocked(username, source) {
            return Err(Denied::Throttled(wait));
        }
        let remembered = tables.user(username).is_some_and(|user| {
            self.passwords
                .recalls_right(username, password, user.generation)
        });
        Ok(remembered.then(|| username.to_string()))
    }

    fn verify_token(&self, token: &str, tables: &Tables) -> Result<String, Denied> {
        let now = unix_seconds();
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(claims) = verified.get(token)
            && token::still_valid(claims, tables, now)
        {
            return Ok(claims.sub.clone());
        }
        let claims = token::verify(token, tables, now)?;
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(token.to_string(), claims.clone());
        Ok(claims.sub)
    }

    /// Checks a password not remembered as right against the stored hash
    /// (the throttle was consulted by [`Auth::recognise`]).
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<(), Denied> {
        let stored = self
            .tables()
            .user(username)
            .map(|u| (u.password_hash.clone(), u.generation));
        let verdict = match stored {
            Some((hash, generation)) => {
                self.passwords
                    .check(username, password, &hash, generation)
                    .await
            }
            None => {
                // The same work for an unknown name as for a wrong password,
                // so timing does not tell which names exist.
                let _ = self.passwords.hash(password).await;
                password::Verdict::Wrong
            }
        };
        match verdict {
            password::Verdict::Right => Ok(()),
            password::Verdict::Wrong => {
                self.throttle.failed(username, source);
                Err(Denied::UnknownUser)
            }
            // A client repeating a stale password is not guessing: counted once.
            password::Verdict::WrongAgain => Err(Denied::UnknownUser),
        }
    }

    /// Logs in with a password (or a token, as Nacos 2.x accepts on the login
    /// route) and issues a token. With auth off any credentials log in and
    /// get [`AUTH_DISABLED_TOKEN`].
    pub async fn login(
        &self,
        credentials: &Credentials<'_>,
        source: Option<IpAddr>,
    ) -> Result<Issued, Denied> {
        if !self.enabled {
            return Ok(Issued {
                token: AUTH_DISABLED_TOKEN.to_string(),
                ttl_seconds: self.ttl_seconds,
                global_admin: true,
                username: credentials.username.unwrap_or_default().to_string(),
            });
        }
        let username = self.authenticate(credentials, source).await?;
        self.issue(&username)
    }

    /// A fresh token for `username`.
    pub fn issue(&self, username: &str) -> Result<Issued, Denied> {
        let tables = self.tables();
        let user = tables.user(username).ok_or(Denied::UnknownUser)?;
        let key = tables.signing_key().ok_or(Denied::NotReady)?;
        let claims = Claims {
            sub: username.to_string(),
            generation: user.generation,
            exp: unix_seconds() + self.ttl_seconds,
            kid: key.id,
        };
        Ok(Issued {
            token: token::sign(&claims, key),
            ttl_seconds: self.ttl_seconds,
            global_admin: tables.is_admin(username),
            username: username.to_string(),
        })
    }

    /// Makes `change` durable everywhere and applied here.
    pub async fn write(&self, change: AccountChange) -> Result<(), AccountError> {
        let deadline = Instant::now() + self.write_timeout;
        Ok(self.store.write(change, deadline).await?)
    }

    /// Waits until the tables here hold every change committed anywhere
    /// before the call (see [`AccountsStore::linearize`]); a handler checking
    /// a change's precondition against [`Self::tables`] calls it first, so a
    /// user created through one member can be given a role through another
    /// at once.
    ///
    /// # Errors
    ///
    /// [`AccountError::Store`] (retryable) without a leader or at the write
    /// timeout.
    pub async fn linearize(&self) -> Result<(), AccountError> {
        let deadline = Instant::now() + self.write_timeout;
        Ok(self.store.linearize(deadline).await?)
    }

    /// Whether this member may make a start-up change (first key, first admin).
    pub fn may_initiate(&self) -> bool {
        self.store.may_initiate()
    }

    /// Hashes a new password (after checking it), off the async threads.
    pub async fn hash_new_password(&self, password: &str) -> Result<String, AccountError> {
        check_password("password", password).map_err(AccountError::Invalid)?;
        self.passwords
            .hash(password)
            .await
            .map_err(AccountError::Invalid)
    }
}

fn unix_seconds() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0) / 1000
}
