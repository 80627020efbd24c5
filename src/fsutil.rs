//! Writing files the way users expect from a tool that handles keys: nothing half-written
//! (temp file in the same directory + rename), private keys mode 0600, and no overwriting of an
//! existing key or certificate without `--force`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file that could not be written or read, named with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file exists and may not be replaced.
    #[error("{} already exists; pass --force to overwrite it", .0.display())]
    Exists(PathBuf),
    /// An I/O error.
    #[error("{doing} {}", path.display())]
    Io {
        /// What failed: "cannot read", "cannot write", "cannot create directory"…
        doing: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl FileError {
    pub(crate) fn io(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            doing,
            path,
            source,
        }
    }
}

type Result<T> = std::result::Result<T, FileError>;

/// Whether an existing file may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse if the file exists (keys, certificates).
    Refuse,
    /// Replace it (`--force`, or outputs that are not secrets).
    Allow,
}

impl Overwrite {
    /// `Allow` when `force` is set.
    #[must_use]
    pub fn from_force(force: bool) -> Self {
        if force {
            Self::Allow
        } else {
            Self::Refuse
        }
    }
}

/// File permissions for a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0644 (subject to umask).
    Public,
    /// 0600: private keys.
    Private,
}

/// Fails with a message naming `path` if it exists and `overwrite` is `Refuse`.
///
/// # Errors
/// When the file exists and may not be replaced.
pub fn check_overwrite(path: &Path, overwrite: Overwrite) -> Result<()> {
    if overwrite == Overwrite::Refuse && path.exists() {
        return Err(FileError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, then rename.
///
/// # Errors
/// When the file exists and `overwrite` is `Refuse`, or on any I/O error (named with the path).
pub fn write_atomic(path: &Path, data: &[u8], mode: Mode, overwrite: Overwrite) -> Result<()> {
    write_via_temp(path, data, mode, overwrite, true)
}

/// Writes a build output that can be made again (a signed image, a signature file): atomic like
/// [`write_atomic`] — readers never see a partial file — but without the fsync, as compilers and
/// imgtool do. Keys, certificates and state files use [`write_atomic`].
///
/// # Errors
/// Any I/O error, named with the path.
pub fn write_output(path: &Path, data: &[u8]) -> Result<()> {
    write_via_temp(path, data, Mode::Public, Overwrite::Allow, false)
}

fn write_via_temp(
    path: &Path,
    data: &[u8],
    mode: Mode,
    overwrite: Overwrite,
    durable: bool,
) -> Result<()> {
    check_overwrite(path, overwrite)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(FileError::io("cannot create directory", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".otactl-")
        .tempfile_in(dir)
        .map_err(FileError::io("cannot create a temporary file in", dir))?;
    set_mode(tmp.as_file(), mode).map_err(FileError::io("cannot set permissions for", path))?;
    tmp.write_all(data)
        .map_err(FileError::io("cannot write", path))?;
    if durable {
        tmp.as_file()
            .sync_all()
            .map_err(FileError::io("cannot write", path))?;
    }
    if overwrite == Overwrite::Refuse {
        // Hard-link style "create new": fails if someone created the file meanwhile.
        tmp.persist_noclobber(path)
            .map_err(|e| FileError::io("cannot create", path)(e.error))?;
    } else {
        tmp.persist(path)
            .map_err(|e| FileError::io("cannot write", path)(e.error))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: Mode) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = match mode {
        Mode::Private => 0o600,
        Mode::Public => 0o644,
    };
    file.set_permissions(fs::Permissions::from_mode(bits))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: Mode) -> io::Result<()> {
    Ok(())
}

/// Reads a whole file, naming it in the error.
///
/// # Errors
/// I/O errors, with the path.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(FileError::io("cannot read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_and_keeps_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        write_atomic(&p, b"one", Mode::Private, Overwrite::Refuse).unwrap();
        let err = write_atomic(&p, b"two", Mode::Private, Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", Mode::Private, Overwrite::Allow).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
