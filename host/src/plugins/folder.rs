//! The plugin folder as the only source of plugin files.
//!
//! Manifests and components are read from the folder and nowhere else:
//! whoever can put a manifest there must not be able to make the node read
//! another file (a secret, `/dev/zero`, a FIFO that never answers) and show
//! it in `GET /nacre/v1/plugins`, which needs no credential. So:
//! - a file counts only if, after resolving symbolic links, it is inside the
//!   folder (links within the folder are fine: Kubernetes mounts ConfigMaps
//!   that way);
//! - only regular files are opened, and the type is checked before opening
//!   (a FIFO or device is never opened, so never waited on), the file is
//!   opened with `O_NOFOLLOW | O_NONBLOCK` and checked again on the open
//!   descriptor (the same file, still regular, still within its size cap);
//! - sizes are capped before anything is read ([`Kind::cap`]);
//! - errors name the file and the rule, never its content.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;
/// Largest component read, in bytes (a Python component is ≈ 18 MiB).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// Manifests considered in one folder; the rest (by name) are ignored.
pub const MAX_MANIFESTS: usize = 128;

/// The two kinds of plugin file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `*.toml` manifest, at most [`MAX_MANIFEST_BYTES`].
    Manifest,
    /// A `.wasm` component, at most [`MAX_COMPONENT_BYTES`].
    Component,
}

impl Kind {
    /// The size cap of this kind of file, in bytes.
    pub fn cap(self) -> u64 {
        match self {
            Kind::Manifest => MAX_MANIFEST_BYTES,
            Kind::Component => MAX_COMPONENT_BYTES,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Component => "component",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a plugin file was not read. Never carries the file's content.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path, or the file a link leads to, is outside the plugin folder.
    #[error("{path}: a {kind} must be a file inside the plugin folder {folder}")]
    OutsideFolder {
        /// The path as named (in the manifest, or listed in the folder).
        path: PathBuf,
        /// What the file was to be.
        kind: Kind,
        /// The plugin folder as configured.
        folder: PathBuf,
    },
    /// The path is a directory, a FIFO, a device or a socket: reading one could
    /// block or never end, so it is refused before it is opened.
    #[error("{path} is a {file_type}, not a regular file: a {kind} must be one")]
    NotRegular {
        /// The path as named.
        path: PathBuf,
        /// What the file was to be.
        kind: Kind,
        /// What it is instead (`directory`, `FIFO`, ...).
        file_type: &'static str,
    },
    /// The file is larger than its kind's cap; nothing of it is read.
    #[error("{path} is {bytes} bytes, more than the {cap} bytes a {kind} may have")]
    TooLarge {
        /// The path as named.
        path: PathBuf,
        /// What the file was to be.
        kind: Kind,
        /// Its size, bytes.
        bytes: u64,
        /// The cap for its kind, bytes.
        cap: u64,
    },
    /// The file's identity or size changed between the check and the read
    /// (it was replaced while the node loaded it).
    #[error("{path} changed while it was being read")]
    Changed {
        /// The path as named.
        path: PathBuf,
    },
    /// The operating system refused an operation on the file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`opening`, `reading`, `resolving`, ...).
        op: &'static str,
        /// The path as named.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// What a reload compares to tell whether a file changed, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(metadata: &Metadata) -> FileStamp {
        FileStamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// A plugin folder, resolved once per use.
pub struct PluginFolder {
    /// The folder as configured (what paths in messages start with).
    dir: PathBuf,
    /// The folder with every link resolved: files must resolve to below it.
    root: PathBuf,
}

impl PluginFolder {
    /// Resolves `dir` (links included) once; fails with [`FileError::Io`] when it
    /// does not exist or cannot be resolved.
    pub fn open(dir: &Path) -> Result<PluginFolder, FileError> {
        let root = std::fs::canonicalize(dir).map_err(|source| FileError::Io {
            op: "resolving",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(PluginFolder {
            dir: dir.to_path_buf(),
            root,
        })
    }

    /// The manifests (`*.toml`) directly in the folder, sorted by name, at
    /// most [`MAX_MANIFESTS`]. Other files and subfolders are not looked at.
    pub(crate) fn manifests(&self) -> Result<Vec<PathBuf>, FileError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| FileError::Io {
            op: "listing",
            path: self.dir.clone(),
            source,
        })?;
        let mut manifests: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        manifests.sort();
        if manifests.len() > MAX_MANIFESTS {
            tracing::warn!(folder = %self.dir.display(), found = manifests.len(), "more manifests than a plugin folder may hold; only the first {MAX_MANIFESTS} by name are considered");
            manifests.truncate(MAX_MANIFESTS);
        }
        Ok(manifests)
    }

    /// The stamp of the file at `path`, checked like [`Self::read`] checks it, without opening it.
    pub(crate) fn stamp(&self, path: &Path, kind: Kind) -> Result<FileStamp, FileError> {
        let real = self.confine(path, kind)?;
        let metadata = metadata(&real, path)?;
        regular(&metadata, path, kind)?;
        Ok(FileStamp::of(&metadata))
    }

    /// The content of the file at `path` (inside the folder, regular, within
    /// its kind's size cap), and its stamp.
    pub fn read(&self, path: &Path, kind: Kind) -> Result<(Vec<u8>, FileStamp), FileError> {
        let real = self.confine(path, kind)?;
        let before = metadata(&real, path)?;
        regular(&before, path, kind)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&real)
            .map_err(|source| FileError::Io {
                op: "opening",
                path: path.to_path_buf(),
                source,
            })?;
        let opened = file.metadata().map_err(|source| FileError::Io {
            op: "checking",
            path: path.to_path_buf(),
            source,
        })?;
        // The file opened must be the one checked: nothing swapped in between.
        if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
            return Err(FileError::Changed {
                path: path.to_path_buf(),
            });
        }
        regular(&opened, path, kind)?;
        let bytes = read_capped(file, path, kind, opened.len())?;
        Ok((bytes, FileStamp::of(&opened)))
    }

    /// `path` with links resolved, if that is inside the folder.
    fn confine(&self, path: &Path, kind: Kind) -> Result<PathBuf, FileError> {
        let outside = || FileError::OutsideFolder {
            path: path.to_path_buf(),
            kind,
            folder: self.dir.clone(),
        };
        // Only names built from the folder reach here, but a relative `path`
        // would resolve against the working directory: refuse it as well.
        if !path.starts_with(&self.dir) {
            return Err(outside());
        }
        let real = std::fs::canonicalize(path).map_err(|source| FileError::Io {
            op: "resolving",
            path: path.to_path_buf(),
            source,
        })?;
        if real.starts_with(&self.root) && real != self.root {
            Ok(real)
        } else {
            Err(outside())
        }
    }
}

fn metadata(real: &Path, shown: &Path) -> Result<Metadata, FileError> {
    std::fs::metadata(real).map_err(|source| FileError::Io {
        op: "checking",
        path: shown.to_path_buf(),
        source,
    })
}

/// Refuses anything but a regular file within `kind`'s cap.
fn regular(metadata: &Metadata, path: &Path, kind: Kind) -> Result<(), FileError> {
    use std::os::unix::fs::FileTypeExt;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let name = if file_type.is_dir() {
            "directory"
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "device"
        } else if file_type.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind,
            file_type: name,
        });
    }
    if metadata.len() > kind.cap() {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            kind,
            bytes: metadata.len(),
            cap: kind.cap(),
        });
    }
    Ok(())
}

/// Reads at most the cap, even if the file grew after it was checked.
fn read_capped(file: File, path: &Path, kind: Kind, expected: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::with_capacity(expected.min(kind.cap()) as usize);
    file.take(kind.cap() + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > kind.cap() {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            kind,
            bytes: bytes.len() as u64,
            cap: kind.cap(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (tempfile::TempDir, tempfile::TempDir, PluginFolder) {
        let inside = tempfile::tempdir().expect("dir");
        let outside = tempfile::tempdir().expect("dir");
        let folder = PluginFolder::open(inside.path()).expect("folder");
        (inside, outside, folder)
    }

    #[test]
    fn reads_regular_files_inside_and_links_that_stay_inside() {
        let (inside, _outside, folder) = folder();
        let file = inside.path().join("a.toml");
        std::fs::write(&file, "name = \"a\"").expect("written");
        let link = inside.path().join("b.toml");
        std::os::unix::fs::symlink(&file, &link).expect("link");
        assert_eq!(
            folder.read(&file, Kind::Manifest).expect("read").0,
            b"name = \"a\""
        );
        assert_eq!(
            folder.read(&link, Kind::Manifest).expect("read").0,
            b"name = \"a\""
        );
        assert_eq!(
            folder.manifests().expect("listed"),
            vec![file.clone(), link.clone()]
        );
        assert_eq!(
            folder.stamp(&file, Kind::Manifest).expect("stamp"),
            folder.stamp(&link, Kind::Manifest).expect("stamp")
        );
    }

    #[test]
    fn refuses_links_out_special_files_and_oversized_files_without_echoing_them() {
        let (inside, outside, folder) = folder();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "root:x:0:0:SECRET").expect("written");
        let link = inside.path().join("passwd.toml");
        std::os::unix::fs::symlink(&secret, &link).expect("link");
        let error = folder.read(&link, Kind::Manifest).expect_err("outside");
        assert!(matches!(error, FileError::OutsideFolder { .. }), "{error}");
        assert!(!error.to_string().contains("SECRET"));

        let zero = inside.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
        assert!(matches!(
            folder.read(&zero, Kind::Component),
            Err(FileError::OutsideFolder { .. })
        ));

        let dir = inside.path().join("dir.toml");
        std::fs::create_dir(&dir).expect("dir");
        assert!(matches!(
            folder.read(&dir, Kind::Manifest),
            Err(FileError::NotRegular {
                file_type: "directory",
                ..
            })
        ));

        let big = inside.path().join("big.toml");
        let file = std::fs::File::create(&big).expect("created");
        file.set_len(MAX_MANIFEST_BYTES + 1).expect("sparse");
        assert!(matches!(
            folder.read(&big, Kind::Manifest),
            Err(FileError::TooLarge { .. })
        ));
        assert!(
            folder.read(&big, Kind::Component).is_ok(),
            "a component may be larger"
        );

        let elsewhere = outside.path().join("x.toml");
        std::fs::write(&elsewhere, "x").expect("written");
        assert!(matches!(
            folder.read(&elsewhere, Kind::Manifest),
            Err(FileError::OutsideFolder { .. })
        ));
    }
}
