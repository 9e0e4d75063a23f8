//! Raft's state machine: the persistent half of the registry.
//!
//! Applying a committed entry is [`consistency::apply`](super::super::apply),
//! the same function every store ends in, so listeners, push and plugins see
//! Raft's changes like any other. A snapshot is every persistent record (see
//! [`persistent_records`]); it is kept in the same database as the log, and at
//! start-up loaded into the registry before openraft replays the committed
//! entries after it.

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use redb::Database;
use serde::{Deserialize, Serialize};

use super::log_store::{blocking, decode, encode, read_meta, write_meta_bytes};
use crate::accounts::{AccountChange, SharedTables, Tables};
use crate::consistency::{Key, Record, Write, apply, persistent_records};
use crate::notifier::Notifier;
use crate::registry::Registry;
use crate::wire::{RaftApplied, RaftTypes};

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const SNAPSHOT: &str = "snapshot";

/// What a snapshot holds: every persistent record and the auth tables.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    records: Vec<Record>,
    accounts: Tables,
}

impl SnapshotData {
    /// Decodes a snapshot; one written before the auth tables were part of
    /// it is its records alone.
    fn decode(bytes: &[u8]) -> Result<SnapshotData, openraft::AnyError> {
        decode(bytes).or_else(|e| match decode::<Vec<Record>>(bytes) {
            Ok(records) => Ok(SnapshotData {
                records,
                accounts: Tables::default(),
            }),
            Err(_) => Err(e),
        })
    }
}

/// A snapshot as stored: its metadata and the MessagePack [`SnapshotData`].
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// Applies committed entries to the registry and builds and installs snapshots.
pub struct StateMachine {
    registry: Arc<Registry>,
    notifier: Notifier,
    accounts: SharedTables,
    db: Arc<Database>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshots_built: u64,
}

impl StateMachine {
    /// Opens the state machine, loading the stored snapshot (if any) into the registry.
    pub async fn open(
        registry: Arc<Registry>,
        notifier: Notifier,
        accounts: SharedTables,
        db: Arc<Database>,
    ) -> anyhow::Result<StateMachine> {
        let stored: Option<StoredSnapshot> = blocking(&db, |db| read_meta(db, SNAPSHOT))
            .await
            .map_err(|e| anyhow::anyhow!("reading the Raft snapshot: {e}"))?;
        let mut machine = StateMachine {
            registry,
            notifier,
            accounts,
            db,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots_built: 0,
        };
        if let Some(stored) = stored {
            let data = SnapshotData::decode(&stored.data)
                .map_err(|e| anyhow::anyhow!("decoding the Raft snapshot: {e}"))?;
            let count = data.records.len();
            machine.replace_all(data);
            machine.last_applied = stored.meta.last_log_id;
            machine.membership = stored.meta.last_membership;
            tracing::info!(records = count, last_applied = ?machine.last_applied, "loaded Raft snapshot");
        }
        Ok(machine)
    }

    /// Makes the registry's persistent records and the auth tables exactly
    /// the snapshot's.
    fn replace_all(&self, SnapshotData { records, accounts }: SnapshotData) {
        self.apply_accounts(AccountChange::Restore(accounts));
        let wanted: HashSet<Key> = records.iter().map(Record::key).collect();
        for existing in persistent_records(&self.registry) {
            let key = existing.key();
            if !wanted.contains(&key) {
                apply(&self.registry, &self.notifier, Write::Remove(key));
            }
        }
        for record in records {
            apply(&self.registry, &self.notifier, Write::Put(record));
        }
    }

    fn apply_accounts(&self, change: AccountChange) {
        let mut tables = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        tables.apply(change);
    }

    fn snapshot_of(stored: StoredSnapshot) -> Snapshot<RaftTypes> {
        Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }
    }
}

/// Builds a snapshot from records captured when it was asked for, so the
/// snapshot matches `last_applied` exactly.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    data: SnapshotData,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    id: String,
}

impl RaftSnapshotBuilder<RaftTypes> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<RaftTypes>> {
        let data = encode(&self.data).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id: self.id.clone(),
            },
            data,
        };
        let bytes = encode(&stored).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        blocking(&self.db, move |db| write_meta_bytes(db, SNAPSHOT, &bytes))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        tracing::info!(records = self.data.records.len(), last_applied = ?self.last_applied, "built Raft snapshot");
        Ok(StateMachine::snapshot_of(stored))
    }
}

impl RaftStateMachine<RaftTypes> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<RaftApplied>>
    where
        I: IntoIterator<Item = Entry<RaftTypes>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(command) => {
                    for write in command.writes {
                        apply(&self.registry, &self.notifier, write);
                    }
                    for change in command.accounts {
                        self.apply_accounts(change);
                    }
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            replies.push(RaftApplied {});
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        let index = self.last_applied.map_or(0, |l| l.index);
        SnapshotBuilder {
            db: Arc::clone(&self.db),
            data: SnapshotData {
                records: persistent_records(&self.registry),
                accounts: self
                    .accounts
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            },
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            id: format!("{index}-{}", self.snapshots_built),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let decoded = SnapshotData::decode(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let bytes = encode(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        blocking(&self.db, move |db| write_meta_bytes(db, SNAPSHOT, &bytes))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let count = decoded.records.len();
        self.replace_all(decoded);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(records = count, last_applied = ?self.last_applied, "installed Raft snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<RaftTypes>>> {
        let stored: Option<StoredSnapshot> = blocking(&self.db, |db| read_meta(db, SNAPSHOT))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(StateMachine::snapshot_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::{NamespaceMeta, ServiceKey, ServiceMeta};

    fn service(name: &str) -> Record {
        Record::Service(ServiceMeta::new(ServiceKey::new(
            "public",
            "DEFAULT_GROUP",
            name,
        )))
    }

    #[test]
    fn a_snapshot_keeps_records_and_accounts() -> anyhow::Result<()> {
        let mut accounts = Tables::default();
        accounts.apply(AccountChange::CreateUser {
            username: "ann".into(),
            password_hash: "h".into(),
        });
        let namespace = Record::Namespace(NamespaceMeta {
            id: "prod".into(),
            show_name: "Production".into(),
            description: String::new(),
        });
        let bytes = encode(&SnapshotData {
            records: vec![service("db"), namespace.clone()],
            accounts,
        })?;
        let read = SnapshotData::decode(&bytes)?;
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[1], namespace);
        assert!(read.accounts.user("ann").is_some());
        Ok(())
    }

    #[test]
    fn a_snapshot_from_before_auth_is_its_records_with_no_accounts() -> anyhow::Result<()> {
        let bytes = encode(&vec![service("db"), service("cache")])?;
        let read = SnapshotData::decode(&bytes)?;
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.accounts.users().count(), 0);
        Ok(())
    }

    #[test]
    fn a_snapshot_that_is_neither_is_refused() {
        assert!(SnapshotData::decode(b"\xc1 not messagepack").is_err());
        assert!(SnapshotData::decode(&[]).is_err());
    }
}
