//! Raft's log and vote, on disk in a redb database (`raft.redb` in the data
//! directory; docs/DESIGN-RAFT.md says why redb).
//!
//! Tables: `log` maps an index to a MessagePack entry; `meta` holds the vote,
//! the committed log id, the last purged log id and the current snapshot.
//! Every write is one redb transaction committed with immediate durability
//! (fsync), so what openraft was told is on disk is on disk.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::RaftTypes;

pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Runs blocking database work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    db: &Arc<Database>,
    work: impl FnOnce(&Database) -> Result<T, AnyError> + Send + 'static,
) -> Result<T, AnyError> {
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || work(&db))
        .await
        .map_err(|e| AnyError::error(format!("storage task failed: {e}")))?
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    rmp_serde::to_vec(value).map_err(|e| AnyError::new(&e))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnyError> {
    rmp_serde::from_slice(bytes).map_err(|e| AnyError::new(&e))
}

fn db_error(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

/// Reads one `meta` value.
pub(super) fn read_meta<T: DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, AnyError> {
    let txn = db.begin_read().map_err(db_error)?;
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db_error(e)),
    };
    match table.get(key).map_err(db_error)? {
        Some(bytes) => decode(bytes.value()).map(Some),
        None => Ok(None),
    }
}

/// Writes one `meta` value durably.
pub(super) fn write_meta<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
) -> Result<(), AnyError> {
    write_meta_bytes(db, key, &encode(value)?)
}

/// Writes one already encoded `meta` value durably.
pub(super) fn write_meta_bytes(db: &Database, key: &str, bytes: &[u8]) -> Result<(), AnyError> {
    write_meta_with(db, key, bytes, Durability::Immediate)
}

fn write_meta_with(
    db: &Database,
    key: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), AnyError> {
    let mut txn = db.begin_write().map_err(db_error)?;
    txn.set_durability(durability);
    {
        let mut table = txn.open_table(META).map_err(db_error)?;
        table.insert(key, bytes).map_err(db_error)?;
    }
    txn.commit().map_err(db_error)
}

/// The last committed log id this node knows of.
pub(super) fn read_committed(db: &Database) -> Result<Option<LogId<NodeId>>, AnyError> {
    Ok(read_meta::<Option<LogId<NodeId>>>(db, COMMITTED)?.flatten())
}

/// The log store; cheap to clone (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// The log store in `db` (the same database as the state machine's snapshot).
    pub fn new(db: Arc<Database>) -> LogStore {
        LogStore { db }
    }
}

impl RaftLogReader<RaftTypes> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<RaftTypes>>> {
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        blocking(&self.db, move |db| {
            let txn = db.begin_read().map_err(db_error)?;
            let table = match txn.open_table(LOG) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db_error(e)),
            };
            let mut entries = Vec::new();
            for item in table.range::<u64>((start, end)).map_err(db_error)? {
                let (_, value) = item.map_err(db_error)?;
                entries.push(decode(value.value())?);
            }
            Ok(entries)
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<RaftTypes> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<RaftTypes>> {
        blocking(&self.db, |db| {
            let last_purged: Option<LogId<NodeId>> = read_meta(db, LAST_PURGED)?;
            let txn = db.begin_read().map_err(db_error)?;
            let last_log = match txn.open_table(LOG) {
                Ok(table) => match table.last().map_err(db_error)? {
                    Some((_, value)) => Some(decode::<Entry<RaftTypes>>(value.value())?.log_id),
                    None => None,
                },
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(db_error(e)),
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last_log.or(last_purged),
            })
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let vote = *vote;
        blocking(&self.db, move |db| write_meta(db, VOTE, &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        blocking(&self.db, |db| read_meta(db, VOTE))
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    /// The committed index is a hint for a faster restart (openraft does not
    /// need it), so it costs no disk sync of its own: it reaches the disk
    /// with the next log append, which is synced.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        blocking(&self.db, move |db| {
            write_meta_with(db, COMMITTED, &encode(&committed)?, Durability::None)
        })
        .await
        .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        blocking(&self.db, read_committed)
            .await
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<RaftTypes>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<RaftTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<RaftTypes>> = entries.into_iter().collect();
        let result = blocking(&self.db, move |db| {
            let txn = db.begin_write().map_err(db_error)?;
            {
                let mut table = txn.open_table(LOG).map_err(db_error)?;
                for entry in &entries {
                    let bytes = encode(entry)?;
                    table
                        .insert(entry.log_id.index, bytes.as_slice())
                        .map_err(db_error)?;
                }
            }
            txn.commit().map_err(db_error)
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        blocking(&self.db, move |db| {
            let txn = db.begin_write().map_err(db_error)?;
            {
                let mut table = txn.open_table(LOG).map_err(db_error)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(db_error)?;
            }
            txn.commit().map_err(db_error)
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        blocking(&self.db, move |db| {
            let bytes = encode(&log_id)?;
            let txn = db.begin_write().map_err(db_error)?;
            {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                meta.insert(LAST_PURGED, bytes.as_slice())
                    .map_err(db_error)?;
                let mut table = txn.open_table(LOG).map_err(db_error)?;
                table
                    .retain_in(..=log_id.index, |_, _| false)
                    .map_err(db_error)?;
            }
            txn.commit().map_err(db_error)
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod suite {
    //! openraft's own storage test suite, run on the log store and the state
    //! machine together, each build in a fresh temporary database.

    use std::sync::Arc;

    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::LogStore;
    use crate::consistency::raft::state_machine::StateMachine;
    use crate::notifier::Notifier;
    use crate::registry::Registry;
    use crate::wire::RaftTypes;

    struct Fresh;

    impl StoreBuilder<RaftTypes, LogStore, StateMachine, tempfile::TempDir> for Fresh {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
            let io = |e: &dyn std::fmt::Display| {
                StorageError::from(openraft::StorageIOError::<u64>::write(
                    openraft::AnyError::error(e.to_string()),
                ))
            };
            let dir = tempfile::tempdir().map_err(|e| io(&e))?;
            let db = redb::Database::create(dir.path().join("raft.redb")).map_err(|e| io(&e))?;
            let db = Arc::new(db);
            let machine = StateMachine::open(
                Arc::new(Registry::new()),
                Notifier::new(),
                Default::default(),
                Arc::clone(&db),
            )
            .await
            .map_err(|e| io(&e))?;
            Ok((dir, LogStore::new(db), machine))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        if let Err(e) = Suite::test_all(Fresh) {
            panic!("openraft's storage suite failed: {e}");
        }
    }
}
