//! Persistent data: persistent instances and service definitions.
//!
//! On a standalone node they go through a write-ahead log in the data
//! directory (`persistent.log`): a write is appended (and, by default, synced
//! to disk) before it is applied and acknowledged, so nothing acknowledged is
//! lost by a crash. At start-up the log is replayed into the registry and
//! rewritten compacted. The Raft cluster mode replaces this store.
//!
//! Log frame: `u32 length (LE) | u32 FNV-1a of payload (LE) | payload`, where
//! the payload is a MessagePack [`Write`]. A torn frame at the end (a crash
//! mid-append) is dropped at replay; a corrupt frame elsewhere stops the
//! replay with an error rather than serving half the data silently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{ConsistencyError, Write, apply};
use crate::notifier::Notifier;
use crate::registry::Registry;

const LOG_FILE: &str = "persistent.log";
/// A frame larger than this is corruption, not data.
const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// The standalone node's persistent store (see the module documentation).
pub struct PersistentStore {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    notifier: Notifier,
    log: Mutex<File>,
    sync: bool,
}

impl PersistentStore {
    /// Opens (or creates) the log under `data_dir`, replays it into `registry`
    /// and compacts it.
    pub fn open(
        data_dir: &Path,
        registry: Arc<Registry>,
        notifier: Notifier,
        sync: bool,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join(LOG_FILE);
        let writes: Vec<Write> =
            read_log(&path).with_context(|| format!("replaying {}", path.display()))?;
        let replayed = writes.len();
        for write in writes {
            apply(&registry, &notifier, write);
        }
        compact(&path, &registry).with_context(|| format!("compacting {}", path.display()))?;
        let log = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        tracing::info!(path = %path.display(), replayed, "persistent store ready");
        Ok(PersistentStore {
            inner: Arc::new(Inner {
                registry,
                notifier,
                log: Mutex::new(log),
                sync,
            }),
        })
    }

    /// Appends `write` to the log (synced unless `persistent.sync_writes` is off),
    /// then applies it. Fails with [`ConsistencyError::Storage`] when the log
    /// cannot be written; the registry is then unchanged.
    pub async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // Log and apply under one lock so the registry sees writes in log order.
            let mut log = inner.log.lock().unwrap_or_else(|e| e.into_inner());
            let frame = encode_frame(&write)?;
            log.write_all(&frame)?;
            if inner.sync {
                log.sync_data()?;
            }
            apply(&inner.registry, &inner.notifier, write);
            Ok(())
        })
        .await
        .map_err(|_| ConsistencyError::ShuttingDown)?
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// One log frame holding `value` (see the module documentation).
pub(super) fn encode_frame<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let payload = rmp_serde::to_vec(value).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Every whole frame of the log at `path` (none if it does not exist).
pub(super) fn read_log<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut writes = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        if rest.len() < 8 {
            tracing::warn!(
                bytes = rest.len(),
                "dropping torn frame at the end of the log"
            );
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let sum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes"),
            ));
        }
        let end = 8 + len as usize;
        if rest.len() < end {
            tracing::warn!(
                bytes = rest.len(),
                "dropping torn frame at the end of the log"
            );
            break;
        }
        let payload = &rest[8..end];
        if fnv1a(payload) != sum {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame checksum mismatch",
            ));
        }
        let write = rmp_serde::from_slice(payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        writes.push(write);
        rest = &rest[end..];
    }
    Ok(writes)
}

/// Rewrites the log as the minimal set of puts that rebuilds the persistent
/// part of the registry.
fn compact(path: &Path, registry: &Registry) -> io::Result<()> {
    let puts = super::persistent_records(registry)
        .into_iter()
        .map(Write::Put);
    rewrite_log(path, puts)
}

/// Replaces the log at `path` by one frame per value, atomically (temp
/// file, sync, rename, sync of the folder).
pub(super) fn rewrite_log<T: serde::Serialize>(
    path: &Path,
    values: impl IntoIterator<Item = T>,
) -> io::Result<()> {
    let tmp: PathBuf = path.with_extension("log.tmp");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        for value in values {
            out.write_all(&encode_frame(&value)?)?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::Record;
    use crate::registry::model::{Instance, ServiceKey, ServiceMeta};

    fn persistent_instance(ip: &str) -> Record {
        Record::Instance {
            service: ServiceKey::new("public", "DEFAULT_GROUP", "db"),
            instance: Instance {
                weight: 2.0,
                ephemeral: false,
                ..Instance::for_test(ip, 5432, 1)
            },
        }
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_reopen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store =
            PersistentStore::open(dir.path(), Arc::new(Registry::new()), Notifier::new(), true)?;
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "db");
        store
            .write(Write::Put(Record::Service(ServiceMeta::new(key.clone()))))
            .await?;
        store
            .write(Write::Put(persistent_instance("10.0.0.1")))
            .await?;
        store
            .write(Write::Put(persistent_instance("10.0.0.2")))
            .await?;
        store
            .write(Write::Remove(persistent_instance("10.0.0.1").key()))
            .await?;
        drop(store);

        let registry = Arc::new(Registry::new());
        let _reopened = PersistentStore::open(dir.path(), registry.clone(), Notifier::new(), true)?;
        let service = registry.service(&key).expect("service restored");
        let ips: Vec<String> = service.instances().into_iter().map(|i| i.id.ip).collect();
        assert_eq!(ips, vec!["10.0.0.2".to_string()]);
        Ok(())
    }

    #[test]
    fn torn_tail_is_dropped_corruption_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(LOG_FILE);
        let mut bytes = encode_frame(&Write::Put(persistent_instance("10.0.0.1")))?;
        let good = bytes.len();
        bytes.extend_from_slice(&encode_frame(&Write::Put(persistent_instance("10.0.0.2")))?[..10]);
        fs::write(&path, &bytes)?;
        assert_eq!(read_log::<Write>(&path)?.len(), 1);

        bytes.truncate(good);
        bytes[good - 1] ^= 0xff;
        fs::write(&path, &bytes)?;
        assert!(read_log::<Write>(&path).is_err());
        Ok(())
    }
}
