//! Where changes to the auth tables go: a log of their own in the data
//! directory (`accounts.log`) on a standalone node, Raft in a cluster (the
//! same log as persistent instances, so every member agrees on users, roles,
//! permissions and signing keys; see `raft::state_machine`).
//!
//! The standalone log uses the persistent store's frames (length, checksum,
//! MessagePack [`AccountChange`]); at start-up it is replayed and rewritten as
//! one [`AccountChange::Restore`] frame.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::persistent::{encode_frame, read_log, rewrite_log};
use super::{ConsistencyError, Deadline, RaftStore};
use crate::accounts::{AccountChange, SharedTables, Tables};

const LOG_FILE: &str = "accounts.log";

/// The auth tables' store (see the module documentation).
pub enum AccountsStore {
    /// A standalone node's own log.
    Local(AccountsLog),
    /// A cluster member: through the Raft leader.
    Raft(Arc<RaftStore>),
}

impl AccountsStore {
    /// Makes `change` durable (on a majority, in a cluster) and applies it to
    /// the tables, by `deadline`.
    pub async fn write(
        &self,
        change: AccountChange,
        deadline: Deadline,
    ) -> Result<(), ConsistencyError> {
        match self {
            AccountsStore::Local(log) => log.write(change).await,
            AccountsStore::Raft(raft) => raft.write_accounts(change, deadline).await,
        }
    }

    /// Waits until the tables here hold every change committed before the
    /// call (a leader-checked read in a cluster; at once on a standalone
    /// node), by `deadline`. A change whose precondition is checked against
    /// the tables (the user exists, the role is held) calls it first: a
    /// follower applies a committed change up to a heartbeat after the
    /// leader acknowledged it.
    ///
    /// # Errors
    ///
    /// `NoLeader` without a majority or a leader to confirm the read,
    /// `Timeout` at `deadline` (both retryable: HTTP 503).
    pub async fn linearize(&self, deadline: Deadline) -> Result<(), ConsistencyError> {
        match self {
            AccountsStore::Local(_) => Ok(()),
            AccountsStore::Raft(raft) => raft.linearize(deadline).await,
        }
    }

    /// Whether this member may start a change on its own initiative (the
    /// first signing key, the configured first admin): the standalone node,
    /// or the Raft leader — so members do not race each other at start-up.
    pub fn may_initiate(&self) -> bool {
        match self {
            AccountsStore::Local(_) => true,
            AccountsStore::Raft(raft) => raft.is_leader(),
        }
    }
}

/// A standalone node's log of account changes.
pub struct AccountsLog {
    inner: Arc<Inner>,
}

struct Inner {
    tables: SharedTables,
    log: Mutex<File>,
}

impl AccountsLog {
    /// Opens (or creates) the log under `data_dir`, replays it into `tables`
    /// and compacts it.
    pub fn open(data_dir: &Path, tables: SharedTables) -> anyhow::Result<AccountsLog> {
        use anyhow::Context as _;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join(LOG_FILE);
        let changes: Vec<AccountChange> =
            read_log(&path).with_context(|| format!("replaying {}", path.display()))?;
        let snapshot = {
            let mut held = tables.write().unwrap_or_else(|e| e.into_inner());
            for change in changes {
                held.apply(change);
            }
            held.clone()
        };
        compact(&path, snapshot).with_context(|| format!("compacting {}", path.display()))?;
        let log = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(AccountsLog {
            inner: Arc::new(Inner {
                tables,
                log: Mutex::new(log),
            }),
        })
    }

    /// Appends `change` and syncs it to disk, then applies it. Fails with
    /// [`ConsistencyError::Storage`] when the log cannot be written; the
    /// tables are then unchanged.
    pub async fn write(&self, change: AccountChange) -> Result<(), ConsistencyError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut log = inner.log.lock().unwrap_or_else(|e| e.into_inner());
            log.write_all(&encode_frame(&change)?)?;
            log.sync_data()?;
            inner
                .tables
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply(change);
            Ok(())
        })
        .await
        .map_err(|_| ConsistencyError::ShuttingDown)?
    }
}

fn compact(path: &Path, tables: Tables) -> std::io::Result<()> {
    rewrite_log(path, [AccountChange::Restore(tables)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::ADMIN_ROLE;

    #[tokio::test]
    async fn changes_survive_a_reopen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let tables = SharedTables::default();
        let log = AccountsLog::open(dir.path(), Arc::clone(&tables))?;
        log.write(AccountChange::BootstrapAdmin {
            username: "root".into(),
            password_hash: "h".into(),
        })
        .await?;
        log.write(AccountChange::CreateUser {
            username: "ann".into(),
            password_hash: "h2".into(),
        })
        .await?;
        drop(log);

        let reopened = SharedTables::default();
        let _log = AccountsLog::open(dir.path(), Arc::clone(&reopened))?;
        let held = reopened.read().map_err(|_| anyhow::anyhow!("poisoned"))?;
        assert!(held.is_admin("root"));
        assert!(held.user("ann").is_some());
        assert_eq!(held.roles_of("root").collect::<Vec<_>>(), vec![ADMIN_ROLE]);
        assert_eq!(
            *held,
            *tables.read().map_err(|_| anyhow::anyhow!("poisoned"))?
        );
        Ok(())
    }
}
