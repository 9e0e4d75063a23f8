//! Start-up errors an operator can act on: each names the path or port at
//! fault and the fix, instead of the operation that happened to fail first
//! ("compacting …/persistent.log: Permission denied" said which file, not
//! what to do).
//!
//! [`claim_data_dir`] runs before anything opens a file; [`fix_for`] gives
//! the fix for an error that reaches `nacre start` anyway (a port in use, a
//! file in the data directory that this user may not write).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cluster::members;
use crate::config::Config;

/// A start-up error with its fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "the data directory {} cannot be {doing}: {reason}. Choose another with --data-dir \
         (or NACRE_DATA_DIR, or data_dir in the config file), or let this user write there",
        path.display()
    )]
    /// The data directory cannot be created or written to.
    DataDir {
        /// The directory (as configured, made absolute).
        path: PathBuf,
        /// `created` or `written`.
        doing: &'static str,
        /// The operating system's error.
        reason: std::io::Error,
    },
    #[error(
        "the data directory {} is in use by another running nacre (it holds {LOCK_FILE} there): \
         stop that node, or give each node a directory of its own with --data-dir \
         (or NACRE_DATA_DIR, or data_dir in the config file)",
        path.display()
    )]
    /// Another process holds the data directory's lock.
    DataDirInUse {
        /// The directory (as configured, made absolute).
        path: PathBuf,
    },
}

/// Checks `cluster.members` before anything binds: each entry parses, none
/// is listed twice, and this node (`cluster.self_address`, else `bind`:`port`
/// with loopback for 0.0.0.0) is among them. `Cluster::new` checks the same
/// once bound; this says it before the data directory is touched.
pub fn check_members(config: &Config) -> anyhow::Result<()> {
    let c = &config.cluster;
    if c.members.is_empty() {
        return Ok(());
    }
    let listed = members::parse_members(&c.members).context("cluster.members")?;
    let own = SocketAddr::new(config.bind, config.port);
    if own.port() != 0 || !c.self_address.trim().is_empty() {
        members::find_self(&listed, &c.self_address, own)?;
    }
    Ok(())
}

/// The name of the file [`claim_data_dir`] writes and removes.
const PROBE_FILE: &str = ".nacre-write-check";

/// The file whose lock marks a data directory as in use.
pub const LOCK_FILE: &str = ".nacre.lock";

/// The data directory's lock, held while the node runs (released when
/// dropped, or by the kernel when the process dies, even by `kill -9`).
/// Holds nothing on a file system that cannot lock (a warning says so).
#[derive(Debug)]
pub struct DataDirLock {
    _file: Option<std::fs::File>,
}

/// Makes the data directory this node's, before the stores open their
/// files: creates it if needed, takes its lock (two nodes writing one
/// directory would interleave their logs and snapshots) and checks that
/// this user can write files in it. An error names the directory and the
/// fix; [`StartupError::DataDirInUse`] when another process holds the
/// lock (an advisory `flock`-style lock on [`LOCK_FILE`]: the file stays,
/// only the lock is the process's). A file system without locks (some
/// network and FUSE ones) is warned about, and the node starts unguarded.
pub fn claim_data_dir(path: &Path) -> Result<DataDirLock, StartupError> {
    let absolute = || std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let failed = |doing, reason| StartupError::DataDir {
        path: absolute(),
        doing,
        reason,
    };
    std::fs::create_dir_all(path).map_err(|e| failed("created", e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(LOCK_FILE))
        .map_err(|e| failed("written", e))?;
    let lock = match file.try_lock() {
        Ok(()) => DataDirLock { _file: Some(file) },
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StartupError::DataDirInUse { path: absolute() });
        }
        Err(std::fs::TryLockError::Error(reason)) => {
            tracing::warn!(
                dir = %absolute().display(),
                error = %reason,
                "the data directory cannot be locked: nothing stops a second node from using it too"
            );
            DataDirLock { _file: None }
        }
    };
    // The lock file may be left from an earlier run: a file created now
    // shows that new ones can be (the stores create theirs as they go).
    let probe = path.join(PROBE_FILE);
    std::fs::write(&probe, b"").map_err(|e| failed("written", e))?;
    std::fs::remove_file(&probe).map_err(|e| failed("written", e))?;
    Ok(lock)
}

/// The fix for the causes an operator meets at start, if `error` is one:
/// the HTTP, gRPC or UDP port taken, a bind address not of this machine, no
/// permission on a file of the data directory.
pub fn fix_for(error: &anyhow::Error, config: &Config) -> Option<String> {
    let kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)?;
    Some(match kind {
        ErrorKind::AddrInUse => {
            let grpc = match (config.grpc.enabled, config.grpc.port, config.port) {
                (false, _, _) => String::new(),
                (true, 0, 0) => "grpc.port / NACRE_GRPC_PORT (gRPC, now HTTP + 1000), ".into(),
                (true, 0, http) => format!(
                    "grpc.port / NACRE_GRPC_PORT (gRPC, now {} = HTTP + 1000), ",
                    u32::from(http) + 1000
                ),
                (true, port, _) => format!("grpc.port / NACRE_GRPC_PORT (gRPC, now {port}), "),
            };
            format!(
                "another process (another nacre?) is listening on a port this node needs: stop \
                 it, or choose other ports with --port / NACRE_PORT (HTTP, now {}), {grpc}\
                 push.udp_port / NACRE_PUSH_UDP_PORT (UDP, now {})",
                config.port, config.push.udp_port
            )
        }
        ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine: choose one with --bind / NACRE_BIND \
             (0.0.0.0 listens on all)",
            config.bind
        ),
        ErrorKind::PermissionDenied => format!(
            "let this user write the data directory {} and every file in it, or choose \
             another with --data-dir / NACRE_DATA_DIR (a port below 1024 also needs \
             privileges: see --port)",
            config.data_dir.display()
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_that_cannot_be_created_is_named_with_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("file written");
        let error = claim_data_dir(&file.join("data")).expect_err("under a file");
        let text = error.to_string();
        assert!(
            text.contains("a-file/data") && text.contains("--data-dir"),
            "{text}"
        );
        let fresh = dir.path().join("fresh");
        let _lock = claim_data_dir(&fresh).expect("a fresh folder is fine");
        assert!(!fresh.join(PROBE_FILE).exists());
        assert!(fresh.join(LOCK_FILE).exists());
    }

    #[test]
    fn a_data_dir_is_locked_by_one_node_at_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = claim_data_dir(dir.path()).expect("the first lock");
        let refused = claim_data_dir(dir.path()).expect_err("a second holder");
        assert!(matches!(refused, StartupError::DataDirInUse { .. }));
        let text = refused.to_string();
        assert!(
            text.contains(&dir.path().display().to_string()) && text.contains("--data-dir"),
            "{text}"
        );
        drop(held);
        claim_data_dir(dir.path()).expect("free again once the first is dropped");
    }

    #[test]
    fn a_member_list_must_name_this_node() {
        let mut config = Config::default();
        config.cluster.members = vec!["127.0.0.1:8848".into(), "127.0.0.1:8858".into()];
        let error = |config: &Config| {
            check_members(config)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert_eq!(error(&config), "", "0.0.0.0:8848 is 127.0.0.1:8848, listed");
        config.port = 9000;
        let err = error(&config);
        assert!(
            err.contains("127.0.0.1:9000") && err.contains("not in cluster.members"),
            "{err}"
        );
        config.port = 8848;
        config.cluster.members.push("localhost:1".into());
        let err = error(&config);
        assert!(
            err.contains("cluster.members") && err.contains("localhost:1"),
            "{err}"
        );
    }

    #[test]
    fn a_port_in_use_gets_the_fix() {
        let taken = std::io::Error::from(ErrorKind::AddrInUse);
        let error = anyhow::Error::from(taken).context("binding 0.0.0.0:8848");
        let fix = fix_for(&error, &Config::default()).unwrap_or_default();
        assert!(fix.contains("--port") && fix.contains("8848"), "{fix}");
        assert!(
            fix.contains("grpc.port") && fix.contains("9848 = HTTP + 1000"),
            "{fix}"
        );
        let mut config = Config {
            port: 0,
            ..Config::default()
        };
        let fix = fix_for(&error, &config).unwrap_or_default();
        assert!(fix.contains("(gRPC, now HTTP + 1000)"), "{fix}");
        config.grpc.enabled = false;
        let fix = fix_for(&error, &config).unwrap_or_default();
        assert!(!fix.contains("grpc.port"), "gRPC off: {fix}");
        let other = anyhow::anyhow!("something else");
        assert_eq!(fix_for(&other, &Config::default()), None);
    }
}
